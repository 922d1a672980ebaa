"""Long-connection mode: lark-oapi's real ``ws.Client`` (in its own thread) against the fake's endpoint.

The fake answers ``POST /callback/ws/endpoint`` and speaks lark-oapi's protobuf ``Frame`` on a local
websocket; events pushed as DATA frames travel SDK → our bridge → the service loop's dispatcher, and the
card-action answer comes back in the SDK's response frame.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from adapters.feishu.adapter import FeishuAdapter
from adapters.feishu.inbound import submit_name
from adapters.registry import AdapterRegistry
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.context import Context, Reply
from bot.core.router import Router
from cards.actions import Action, action, pack
from cards.model import Card, Header, Markdown
from storage.models import AuditLog, InboundEvent, OutboxMessage
from tests.fakes.feishu import FakeFeishu, feishu_settings
from tests.support.factories import seed_org


@action("fstest.ws")
class WsClick(Action):
    n: int


router = Router()


@router.action(WsClick)
async def clicked(ctx: Context, payload: WsClick) -> Reply:
    assert ctx.event is not None and ctx.event.kind == "card_action"
    ctx.audit("fstest.ws", "test", payload.n, **dict(ctx.event.form))
    return Reply(
        toast="好的", card=Card(header=Header(title=f"已处理 {payload.n}"), elements=[Markdown(text="ok")])
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeFeishu]:
    f = FakeFeishu()
    await f.start()
    yield f
    await f.close()


@pytest.fixture
async def ws_service(settings: Settings, clock: FixedClock, fake: FakeFeishu) -> AsyncIterator[Service]:
    s = feishu_settings(settings, fake, mode="websocket")
    registry = AdapterRegistry()
    registry.add(FeishuAdapter.from_settings(s))
    svc = build_service(s, clock=clock, registry=registry)
    svc.run_outbox = False
    svc.dispatcher.router.include(router)
    async with svc.factory() as session, session.begin():
        await seed_org(session, platform="feishu", app_id=fake.app_id)
    yield svc
    await svc.close()


async def test_long_connection_delivers_events_and_answers_clicks(
    ws_service: Service, fake: FakeFeishu
) -> None:
    adapter = ws_service.registry.get("feishu")
    assert isinstance(adapter, FeishuAdapter)
    await adapter.start()
    try:
        await fake.wait_ws_connected()
        assert fake.ws_endpoint_requests == [{"AppID": fake.app_id, "AppSecret": fake.app_secret}]

        packed = pack(WsClick(n=5))
        click = fake.card_click(
            "emp1", packed, name=submit_name("plan", packed), form_value={"due": "2026-12-02 +0800"}
        )
        code, answer = await fake.ws_push(click)
        assert code == 200
        assert answer["toast"] == {"type": "success", "content": "好的"}
        assert answer["card"]["type"] == "raw"
        assert answer["card"]["data"]["header"]["title"]["content"] == "已处理 5"

        code, again = await fake.ws_push(click)  # redelivery: same event id, same stored answer
        assert code == 200 and again == answer

        code, none = await fake.ws_push(fake.text_message("emp1", "/help"))
        assert code == 200 and none is None
        # Long-connection events enter through the app's one ingress, counted like HTTP callbacks.
        counted = ws_service.metrics.registry.get_sample_value(
            "perfloop_callbacks_total", {"platform": "feishu", "result": "processed"}
        )
        assert counted == 3
    finally:
        await adapter.close()
    assert adapter.long_connection is None
    assert [t for t in threading.enumerate() if t.name == "feishu-long-connection"] == []
    async with ws_service.factory() as s:
        assert await s.scalar(select(func.count()).select_from(InboundEvent)) == 2
        [row] = list(await s.scalars(select(AuditLog).where(AuditLog.action == "fstest.ws")))
        assert row.entity_id == 5 and row.detail == {"due": "2026-12-02"}
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 1  # the /help card


async def test_webhook_closed_without_verification_token(settings: Settings, fake: FakeFeishu) -> None:
    s = feishu_settings(settings, fake, mode="websocket")
    s = s.model_copy(update={"feishu": s.feishu.model_copy(update={"verification_token": ""})})
    adapter = FeishuAdapter.from_settings(s)
    assert adapter.verification_token == ""
    from aiohttp.test_utils import make_mocked_request

    from adapters.base import CallbackRejected

    with pytest.raises(CallbackRejected) as exc:
        await adapter.parse_callback(make_mocked_request("POST", "/callbacks/feishu"))
    assert exc.value.status == 404
    await adapter.close()


async def test_transient_fault_answers_the_frame_500_so_feishu_redelivers(
    ws_service: Service, fake: FakeFeishu
) -> None:
    """Issue 16 #1: when a transient database fault outlasts the dispatcher's retry, the long connection's
    response frame says 500 (the SDK's answer to a raised handler), never a 200 with nothing recorded."""
    from sqlalchemy.exc import DBAPIError

    faults = [2]
    real_process = ws_service.dispatcher._process

    # Inside the transaction of one event, or of a group of clicks (issue 22): the fault fails the whole try.
    async def flaky(session: object, event: object, **kw: object) -> object:
        if faults[0]:
            faults[0] -= 1
            raise DBAPIError("SELECT 1", None, Exception("connection is closed"), connection_invalidated=True)
        return await real_process(session, event, **kw)  # type: ignore[arg-type]

    ws_service.dispatcher._process = flaky  # type: ignore[assignment,method-assign]
    adapter = ws_service.registry.get("feishu")
    await adapter.start()
    try:
        await fake.wait_ws_connected()
        click = fake.card_click("emp1", pack(WsClick(n=9)))
        code, _answer = await fake.ws_push(click)
        assert code == 500
        code, answer = await fake.ws_push(click)  # Feishu's redelivery
        assert code == 200 and answer["toast"]["content"] == "好的"
    finally:
        await adapter.close()
    async with ws_service.factory() as s:
        assert await s.scalar(select(func.count()).select_from(InboundEvent)) == 1
