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


async def test_transient_fault_is_503_so_the_platform_delivers_again(
    service: Service, org: object, recorder: object
) -> None:
    """Issue 16 #1: a transient database fault that outlasts the dispatcher's one retry is answered 503 with
    Retry-After (never 200-and-forget); the redelivery is processed once; a handler bug is counted."""
    from aiohttp import web
    from sqlalchemy import func, select
    from sqlalchemy.exc import DBAPIError

    from bot.core.events import TextMessage
    from storage.models import InboundEvent

    service.run_outbox = False
    rec = service.registry.get("rec")
    faults = [2]
    real_dispatch = service.dispatcher._dispatch

    async def flaky(event: TextMessage) -> object:
        if faults[0]:
            faults[0] -= 1
            raise DBAPIError("SELECT 1", None, Exception("connection is closed"), connection_invalidated=True)
        return await real_dispatch(event)

    async def parse(request: web.Request) -> TextMessage:
        body = await request.json()
        return TextMessage(
            platform="rec", workspace="rec-app", event_id=body["id"], sender_id="emp1", text=body["text"]
        )

    service.dispatcher._dispatch = flaky  # type: ignore[assignment,method-assign]
    rec.parse_callback = parse  # type: ignore[method-assign]
    async with TestClient(TestServer(create_app(service))) as c:
        first = await c.post("/callbacks/rec", json={"id": "e1", "text": "/help"})
        assert first.status == 503 and first.headers["Retry-After"]
        again = await c.post("/callbacks/rec", json={"id": "e1", "text": "/help"})
        assert again.status == 200
        metrics = await (await c.get("/metrics")).text()
    assert 'perfloop_callbacks_total{platform="rec",result="retry"} 1.0' in metrics
    assert 'perfloop_callbacks_total{platform="rec",result="processed"} 1.0' in metrics
    async with service.factory() as s:
        assert await s.scalar(select(func.count()).select_from(InboundEvent)) == 1


def _with_server(service: Service, **server: object) -> None:
    service.settings = service.settings.model_copy(
        update={"server": service.settings.server.model_copy(update=server)}
    )
    service.run_outbox = False


async def test_metrics_token_guards_metrics_not_healthz(service: Service) -> None:
    """Issue 16 #14: with ``metrics_token`` set, /metrics needs the bearer token; /healthz does not."""
    _with_server(service, metrics_token="s3cret-metrics")
    async with TestClient(TestServer(create_app(service))) as c:
        assert (await c.get("/metrics")).status == 401
        wrong = await c.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
        right = await c.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
        assert right.status == 200 and "perfloop_callbacks" in await right.text()
        assert (await c.get("/healthz")).status == 200


async def test_admin_listener_takes_metrics_off_the_public_port(service: Service) -> None:
    """Issue 16 #14: with ``admin_port`` set, /metrics is served only there; /healthz answers on both."""
    import socket

    import aiohttp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        admin_port = probe.getsockname()[1]
    _with_server(service, admin_port=admin_port, admin_host="127.0.0.1")
    async with TestClient(TestServer(create_app(service))) as c:
        assert (await c.get("/metrics")).status == 404
        assert (await c.get("/healthz")).status == 200
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{admin_port}/metrics") as resp:
                assert resp.status == 200 and "perfloop_callbacks" in await resp.text()
            async with http.get(f"http://127.0.0.1:{admin_port}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{admin_port}/callbacks/rec") as resp:
                assert resp.status == 404  # the admin listener serves nothing else
    with socket.socket() as again:  # stopped with the app: the port is free again
        again.bind(("127.0.0.1", admin_port))


def test_admin_port_must_differ_from_the_public_port() -> None:
    from pydantic import ValidationError

    from bot.core.config import Settings

    with pytest.raises(ValidationError, match="admin_port"):
        Settings(server={"port": 8080, "admin_port": 8080})
    assert Settings(server={"port": 8080, "admin_port": 9090}).server.admin_port == 9090
