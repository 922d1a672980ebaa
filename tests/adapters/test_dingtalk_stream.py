"""DingTalk in Stream mode: perfloop's dingtalk-stream client connects to the fake gateway over a real
WebSocket, and the fake pushes robot messages, card clicks and org events as Stream frames."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.events import MemberChanged
from storage.models import Workspace
from tests.fakes.dingtalk_harness import Env, accept_card, note_card, running

pytestmark = pytest.mark.timeout(60)

ROBOT = "/v1.0/im/bot/messages/get"
CARD = "/v1.0/card/instances/callback"


@pytest.fixture
async def env(settings: Settings, clock: FixedClock) -> AsyncIterator[Env]:
    async with running(settings, clock, mode="stream") as e:
        await asyncio.wait_for(e.fake.ws_connected.wait(), 10)
        yield e


async def test_connection_subscribes_to_robot_card_and_events(env: Env) -> None:
    [subs] = env.fake.opened_subscriptions
    assert {"type": "CALLBACK", "topic": ROBOT} in subs
    assert {"type": "CALLBACK", "topic": CARD} in subs
    assert {"type": "EVENT", "topic": "*"} in subs


async def test_robot_text_frame_is_dispatched_and_acked(env: Env) -> None:
    ack = await env.fake.push_frame(ROBOT, env.fake.robot_message("emp1", text="/help"), message_id="f1")
    assert ack["code"] == 200 and ack["headers"]["messageId"] == "f1"
    await env.service.outbox.drain()
    [sent] = env.fake.batch_sends
    assert sent["userIds"] == ["emp1"]
    # Stream frames enter through the app's one ingress, counted like HTTP callbacks.
    counted = env.service.metrics.registry.get_sample_value(
        "perfloop_callbacks_total", {"platform": "dingtalk", "result": "processed"}
    )
    assert counted == 1


async def test_card_click_frame_updates_db_and_card(env: Env) -> None:
    item_id = await env.new_item(env.org.emp1.id)
    await env.send_card(env.org.emp1.id, accept_card(item_id), "dt:accept")
    [(out_track_id, card)] = env.fake.cards.items()
    assert card["body"]["callbackType"] == "STREAM" and "callbackRouteKey" not in card["body"]
    [button] = json.loads(card["params"]["sys_full_json_obj"])["msgButtons"]
    click = env.fake.card_callback(out_track_id, "emp1", button)
    ack = await env.fake.push_frame(CARD, click, message_id="c1")
    assert ack["code"] == 200 and json.loads(ack["data"]) == {"response": {}}
    assert (await env.item(item_id)).status == "accepted"
    # Redelivery of the same click (new frame id, same content) changes nothing.
    before = await env.inbound_count()
    await env.fake.push_frame(CARD, click, message_id="c2")
    assert await env.inbound_count() == before
    await env.service.outbox.drain()
    [upd] = env.fake.card_updates
    assert upd["outTrackId"] == out_track_id


async def test_text_answers_collected_over_stream(env: Env) -> None:
    item_id = await env.new_item(env.org.emp2.id)
    await env.send_card(env.org.emp2.id, note_card(item_id), "dt:note")
    [(out_track_id, card)] = env.fake.cards.items()
    [button] = json.loads(card["params"]["sys_full_json_obj"])["msgButtons"]
    # The other reading of the platform: the click carries only the button id in actionIds.
    await env.fake.push_frame(CARD, env.fake.card_callback(out_track_id, "emp2", button["id"]))
    for answer in ("a", "b"):
        await env.fake.push_frame(ROBOT, env.fake.robot_message("emp2", text=answer))
    item = await env.item(item_id)
    assert item.status == "done" and item.deliverable == "a / b"


async def test_duplicate_robot_frames_are_handled_once(env: Env) -> None:
    msg = env.fake.robot_message("emp1", text="/help", msg_id="msgSAME")
    for i in range(3):
        await env.fake.push_frame(ROBOT, msg, message_id=f"d{i}")
    await env.service.outbox.drain()
    assert len(env.fake.batch_sends) == 1 and await env.inbound_count() == 1


async def test_picture_frame_is_downloaded(env: Env) -> None:
    env.fake.files["pic9"] = b"\xff\xd8\xff" + b"j" * 500
    await env.fake.push_frame(ROBOT, env.fake.robot_message("emp1", download_code="pic9"))
    [audit] = await env.audits("dttest.image")
    assert audit.detail["size"] == 503


async def test_malformed_frame_is_acked_and_ignored(env: Env) -> None:
    ack = await env.fake.push_frame(CARD, {"outTrackId": "x", "userId": "emp1", "content": "{not json"})
    assert ack["code"] == 200
    assert await env.inbound_count() == 0


async def test_org_event_frame(env: Env) -> None:
    seen: list[tuple[str, str]] = []

    async def hook(session: AsyncSession, workspace: Workspace, event: MemberChanged) -> None:
        seen.append((event.change, event.user_id))

    env.service.dispatcher.member_hook = hook
    headers = {
        "eventId": "ev1",
        "eventType": "user_add_org",
        "eventBornTime": "1700000000000",
        "eventCorpId": "dingcorp0001",
        "eventUnifiedAppId": "app",
    }
    for _ in range(2):
        ack = await env.fake.push_frame(
            "*", {"userId": ["newbie"]}, frame_type="EVENT", extra_headers=headers
        )
        assert ack["code"] == 200
    assert seen == [("created", "newbie")]


async def test_reconnects_after_gateway_disconnect(env: Env) -> None:
    await env.fake.push_frame("disconnect", {}, frame_type="SYSTEM", timeout=5)
    for _ in range(100):
        if len(env.fake.opened_subscriptions) >= 2 and env.fake.ws_connected.is_set():
            break
        await asyncio.sleep(0.05)
    assert len(env.fake.opened_subscriptions) == 2
    ack = await env.fake.push_frame(ROBOT, env.fake.robot_message("emp1", text="/help"))
    assert ack["code"] == 200
