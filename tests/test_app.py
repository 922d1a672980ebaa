"""The HTTP service: health, callback routing, body limit, JSON request logs."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Service, create_app
from bot.logs import JsonFormatter


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
