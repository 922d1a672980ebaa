"""The HTTP service: health, callback routing, body limit, JSON request logs."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app.http import create_app
from bot.app.logs import JsonFormatter
from bot.app.service import Service


@pytest.fixture
async def client(service: Service) -> TestClient:  # type: ignore[misc]
    service.run_outbox = False
    app = create_app(service)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_healthz_pings_the_database(client: TestClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and body["platforms"] == ["rec"]
    assert resp.headers["X-Request-Id"]


async def test_unknown_platform_is_404(client: TestClient) -> None:
    resp = await client.post("/callbacks/slack", data=b"{}")
    assert resp.status == 404


async def test_rejected_callback_is_a_clean_json_error(client: TestClient) -> None:
    resp = await client.post("/callbacks/rec", data=b"{}")
    assert resp.status == 404
    assert "error" in await resp.json()


async def test_oversized_body_is_413(service: Service) -> None:
    service.settings = service.settings.model_copy(
        update={"server": service.settings.server.model_copy(update={"max_body_bytes": 2048})}
    )
    service.run_outbox = False

    from aiohttp import web

    from adapters.base import CallbackRejected

    class Reader:
        async def __call__(self, request: web.Request) -> None:
            await request.read()
            raise CallbackRejected(400, "unreachable")

    rec = service.registry.get("rec")
    rec.parse_callback = Reader()  # type: ignore[method-assign]
    async with TestClient(TestServer(create_app(service))) as c:
        resp = await c.post("/callbacks/rec", data=b"x" * 4096)
        assert resp.status == 413


def test_json_log_lines_mask_secrets() -> None:
    record = logging.makeLogRecord(
        {
            "msg": "calling %s",
            "args": ("gettoken",),
            "levelname": "INFO",
            "name": "perfloop.wecom",
            "corpsecret": "abc",
            "path": "/x",
        }
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "calling gettoken"
    assert line["corpsecret"] == "***" and line["path"] == "/x"


async def test_metrics_count_callbacks_sends_and_depth(
    service: Service, org: object, recorder: object
) -> None:
    from adapters.base import TransientError
    from bot.core.events import TextMessage

    service.run_outbox = False
    rec = service.registry.get("rec")
    async with TestClient(TestServer(create_app(service))) as c:
        await c.post("/callbacks/rec", data=b"{}")  # rejected by the recording adapter
        await service.dispatcher.dispatch(
            TextMessage(platform="rec", workspace="rec-app", event_id="m1", sender_id="emp1", text="/help")
        )
        await service.dispatcher.dispatch(
            TextMessage(platform="rec", workspace="rec-app", event_id="m2", sender_id="emp2", text="/help")
        )
        text = await (await c.get("/metrics")).text()
        assert 'perfloop_outbox_depth{status="pending"} 2.0' in text
        assert 'perfloop_callbacks_total{platform="rec",result="rejected"} 1.0' in text
        rec.fail_next.append(TransientError("503"))  # type: ignore[attr-defined]
        assert await service.outbox.drain_once() == 2
        text = await (await c.get("/metrics")).text()
    assert 'perfloop_outbox_sends_total{op="send",platform="rec",result="retry"} 1.0' in text
    assert 'perfloop_outbox_sends_total{op="send",platform="rec",result="sent"} 1.0' in text
    assert "perfloop_rate_limit_wait_seconds" in text
