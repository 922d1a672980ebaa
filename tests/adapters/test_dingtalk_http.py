"""DingTalk in HTTP-callback mode, end to end over loopback: the fake signs, encrypts and clicks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from dingtalk.crypto import DingTalkCrypto
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.dingtalk.adapter import DingTalkAdapter
from adapters.registry import AdapterRegistry
from bot.app.http import create_app
from bot.app.service import build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.events import MemberChanged
from cards.actions import pack
from storage.models import Person, Workspace
from tests.fakes.dingtalk import AES_KEY, APP_KEY, TOKEN, dingtalk_settings, free_port
from tests.fakes.dingtalk_harness import DtAccept, Env, accept_card, note_card, running

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def env(settings: Settings, clock: FixedClock) -> AsyncIterator[Env]:
    async with running(settings, clock, mode="http") as e:
        yield e


async def test_text_message_gets_a_reply_through_batch_send(env: Env) -> None:
    msg = env.fake.robot_message("emp1", text="/help")
    resp = await env.fake.post_robot(env.bot_url, msg, timestamp_ms=env.now_ms)
    assert resp.status == 200
    await env.service.outbox.drain()
    [sent] = env.fake.batch_sends
    assert sent["userIds"] == ["emp1"] and sent["msgKey"] == "sampleMarkdown"
    assert json.loads(sent["msgParam"])["title"]


async def test_card_click_updates_db_and_card_by_out_track_id(env: Env) -> None:
    item_id = await env.new_item(env.org.emp1.id)
    await env.send_card(env.org.emp1.id, accept_card(item_id), "dt:accept")
    [(out_track_id, card)] = env.fake.cards.items()
    body = card["body"]
    assert body["callbackType"] == "HTTP" and body["callbackRouteKey"] in env.fake.callback_routes
    assert body["openSpaceId"] == "dtv1.card//IM_ROBOT.emp1"
    [button] = json.loads(card["params"]["sys_full_json_obj"])["msgButtons"]
    click = env.fake.card_callback(out_track_id, "emp1", button)
    status, _ = await env.fake.click_http(body["callbackRouteKey"], click)
    assert status == 200
    assert (await env.item(item_id)).status == "accepted"
    await env.service.outbox.drain()
    [upd] = env.fake.card_updates
    assert upd["outTrackId"] == out_track_id
    assert json.loads(upd["cardData"]["cardParamMap"]["sys_full_json_obj"])["msgButtons"] == []
    assert env.fake.cards[out_track_id]["params"]["title"] == "Accepted"
    # DingTalk retries the same click: answered, nothing happens twice.
    before = await env.inbound_count()
    status, _ = await env.fake.click_http(body["callbackRouteKey"], click)
    assert status == 200 and await env.inbound_count() == before
    await env.service.outbox.drain()
    assert len(env.fake.card_updates) == 1


async def test_text_answers_are_collected_in_chat(env: Env) -> None:
    item_id = await env.new_item(env.org.emp1.id)
    await env.send_card(env.org.emp1.id, note_card(item_id), "dt:note")
    [(out_track_id, card)] = env.fake.cards.items()
    [button] = json.loads(card["params"]["sys_full_json_obj"])["msgButtons"]
    route = card["body"]["callbackRouteKey"]
    await env.fake.click_http(route, env.fake.card_callback(out_track_id, "emp1", button))
    await env.service.outbox.drain()
    assert "What happened?" in env.fake.batch_sends[-1]["msgParam"]
    for answer in ("fixed the build", "write tests"):
        await env.fake.post_robot(
            env.bot_url, env.fake.robot_message("emp1", text=answer), timestamp_ms=env.now_ms
        )
        await env.service.outbox.drain()
    item = await env.item(item_id)
    assert item.status == "done" and item.deliverable == "fixed the build / write tests"
    assert env.fake.card_updates[-1]["outTrackId"] == out_track_id


async def test_picture_is_downloaded(env: Env) -> None:
    env.fake.files["dlcode1"] = b"\x89PNG\r\n\x1a\n" + b"x" * 1000
    msg = env.fake.robot_message("emp1", download_code="dlcode1")
    resp = await env.fake.post_robot(env.bot_url, msg, timestamp_ms=env.now_ms)
    assert resp.status == 200
    [audit] = await env.audits("dttest.image")
    assert audit.detail == {"size": 1008, "head": "89504e470d0a1a0a"}


@pytest.mark.parametrize("case", ["bad_sign", "stale", "wrong_secret", "no_headers"])
async def test_forged_robot_messages_are_rejected_with_nothing_written(env: Env, case: str) -> None:
    msg = env.fake.robot_message("emp1", text="/help")
    ts = env.now_ms - 2 * 3600 * 1000 if case == "stale" else env.now_ms
    if case == "no_headers":
        async with env.fake.session.post(f"{env.bot_url}/callbacks/dingtalk", json=msg) as r:
            status = r.status
    else:
        resp = await env.fake.post_robot(
            env.bot_url,
            msg,
            timestamp_ms=ts,
            sign="AAAA" if case == "bad_sign" else None,
            secret="not-the-secret" if case == "wrong_secret" else None,
        )
        status = resp.status
    assert status == 401
    assert await env.inbound_count() == 0 and await env.outbox_rows() == []


async def test_forged_card_click_is_rejected(env: Env) -> None:
    item_id = await env.new_item(env.org.emp1.id)
    await env.send_card(env.org.emp1.id, accept_card(item_id), "dt:accept")
    [(out_track_id, card)] = env.fake.cards.items()
    [button] = json.loads(card["params"]["sys_full_json_obj"])["msgButtons"]
    click = env.fake.card_callback(out_track_id, "emp1", button)
    async with env.fake.session.post(f"{env.bot_url}/callbacks/dingtalk?card_token=guess", json=click) as r:
        assert r.status == 401
    assert await env.inbound_count() == 0 and (await env.item(item_id)).status == "open"


async def _sent_accept_card(env: Env) -> tuple[int, str, str, dict[str, Any]]:
    item_id = await env.new_item(env.org.emp1.id)
    await env.send_card(env.org.emp1.id, accept_card(item_id), "dt:accept")
    [(out_track_id, card)] = env.fake.cards.items()
    [button] = env.fake.buttons(out_track_id)
    return item_id, out_track_id, card["body"]["callbackRouteKey"], button


async def test_click_routes_by_the_button_params_alone(env: Env) -> None:
    """Issue 16 #15: the fake's click carries only what the button's ``params`` carry, no action ids."""
    item_id, out_track_id, route, button = await _sent_accept_card(env)
    click = env.fake.card_callback(out_track_id, "emp1", button)
    assert "actionIds" not in json.loads(click["content"])["cardPrivateData"]
    status, _ = await env.fake.click_http(route, click)
    assert status == 200 and (await env.item(item_id)).status == "accepted"


def _changed(click: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**click, **fields}


async def test_replayed_click_with_a_changed_field_is_the_same_event(env: Env) -> None:
    """Issue 16 #6: the event id was a hash of the whole body, so one changed field made a new event."""
    item_id, out_track_id, route, button = await _sent_accept_card(env)
    click = env.fake.card_callback(out_track_id, "emp1", button)
    assert (await env.fake.click_http(route, click))[0] == 200
    before = await env.inbound_count()
    content = json.loads(click["content"])
    content["cardPrivateData"]["params"]["extra"] = "x"
    for replay in (
        _changed(click, extension='{"x":1}'),
        _changed(click, spaceId="somewhere-else", corpId="dingother"),
        _changed(click, content=json.dumps(content)),
    ):
        status, _ = await env.fake.click_http(route, replay)
        assert status == 200
    assert await env.inbound_count() == before
    await env.service.outbox.drain()
    assert len(env.fake.card_updates) == 1 and (await env.item(item_id)).status == "accepted"


@pytest.mark.parametrize(
    "case", ["other_person", "other_card", "other_button", "forged", "missing", "expired"]
)
async def test_click_without_a_valid_card_token_is_refused_with_nothing_written(env: Env, case: str) -> None:
    """Issue 16 #6: the static URL token alone let a captured click be re-aimed or replayed for ever."""
    item_id, out_track_id, route, button = await _sent_accept_card(env)
    click = env.fake.card_callback(out_track_id, "emp1", button)
    content = json.loads(click["content"])
    params = content["cardPrivateData"]["params"]
    if case == "other_person":
        click = _changed(click, userId="emp2", spaceId="emp2")
    elif case == "other_card":
        click = _changed(click, outTrackId="pl-" + "0" * 40)
    elif case == "other_button":
        params["value"] = pack(DtAccept(item_id=item_id + 1))
    elif case == "forged":
        params["pl_sig"] = "99999999999." + "0" * 32
    elif case == "missing":
        del params["pl_sig"]
    elif case == "expired":
        ttl = env.service.settings.dingtalk.card_click_ttl_days
        env.clock.advance(timedelta(days=ttl, seconds=1))
    if case in ("other_button", "forged", "missing"):
        click = _changed(click, content=json.dumps(content))
    status, _ = await env.fake.click_http(route, click)
    assert status == 401
    assert await env.inbound_count() == 0 and len(await env.outbox_rows()) == 1  # only the card itself
    assert (await env.item(item_id)).status == "open"


async def test_an_updated_card_gets_fresh_click_tokens(env: Env) -> None:
    """A card that keeps changing keeps working: each update re-issues the tokens with a new expiry."""
    item_id = await env.new_item(env.org.emp1.id)
    await env.send_card(env.org.emp1.id, note_card(item_id), "dt:note")
    [(out_track_id, card)] = env.fake.cards.items()
    [first] = env.fake.buttons(out_track_id)
    env.clock.advance(timedelta(days=2))
    await env.adapter.update(out_track_id, note_card(item_id), recipient="emp1")
    [renewed] = env.fake.buttons(out_track_id)
    assert renewed["params"]["pl_sig"] != first["params"]["pl_sig"]
    assert (
        int(renewed["params"]["pl_sig"].split(".")[0]) - int(first["params"]["pl_sig"].split(".")[0])
        == 2 * 86400
    )
    status, _ = await env.fake.click_http(
        card["body"]["callbackRouteKey"], env.fake.card_callback(out_track_id, "emp1", renewed)
    )
    assert status == 200 and await env.inbound_count() == 1


async def test_oversized_body_is_rejected(env: Env) -> None:
    msg = env.fake.robot_message("emp1", text="x" * (env.service.settings.server.max_body_bytes + 10))
    resp = await env.fake.post_robot(env.bot_url, msg, timestamp_ms=env.now_ms)
    assert resp.status == 413
    assert await env.inbound_count() == 0


async def test_duplicate_robot_message_is_handled_once(env: Env) -> None:
    msg = env.fake.robot_message("emp1", text="/help", msg_id="msgDUP")
    for _ in range(3):
        resp = await env.fake.post_robot(env.bot_url, msg, timestamp_ms=env.now_ms)
        assert resp.status == 200
    await env.service.outbox.drain()
    assert len(env.fake.batch_sends) == 1 and await env.inbound_count() == 1


async def test_event_subscription_check_url_and_encrypted_success(env: Env) -> None:
    status, answer = await env.fake.post_event(
        env.bot_url, {"EventType": "check_url"}, timestamp_ms=env.now_ms
    )
    assert status == 200
    assert set(answer) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    text = DingTalkCrypto(TOKEN, AES_KEY, APP_KEY).decrypt_encrypt_str(
        answer["msg_signature"], answer["timeStamp"], answer["nonce"], answer["encrypt"]
    )
    assert text == "success"
    assert await env.inbound_count() == 0


async def test_member_left_event_reaches_the_dispatcher_once(env: Env) -> None:
    seen: list[tuple[str, str]] = []

    async def hook(session: AsyncSession, workspace: Workspace, event: MemberChanged) -> None:
        seen.append((event.change, event.user_id))

    env.service.dispatcher.member_hook = hook
    event = {
        "EventType": "user_leave_org",
        "UserId": ["emp2", "seller"],
        "CorpId": "dingcorp0001",
        "TimeStamp": str(env.now_ms),
    }
    for _ in range(2):
        status, answer = await env.fake.post_event(env.bot_url, event, timestamp_ms=env.now_ms)
        assert status == 200 and "encrypt" in answer
    assert sorted(seen) == [("deleted", "emp2"), ("deleted", "seller")]


async def test_bad_ciphertext_is_rejected_with_nothing_written(env: Env) -> None:
    status, _ = await env.fake.post_event(
        env.bot_url,
        {"EventType": "user_add_org", "UserId": ["x"]},
        timestamp_ms=env.now_ms,
        encrypt="bm90IGEgcmVhbCBjaXBoZXJ0ZXh0IGF0IGFsbA==",
    )
    assert status == 401
    assert await env.inbound_count() == 0
    async with env.service.factory() as s:
        emp1 = await s.get(Person, env.org.emp1.id)
        assert emp1 is not None and emp1.active


async def test_stale_event_timestamp_is_rejected(env: Env) -> None:
    event = {"EventType": "user_leave_org", "UserId": ["emp2"]}
    status, _ = await env.fake.post_event(env.bot_url, event, timestamp_ms=env.now_ms - 2 * 3600 * 1000)
    assert status == 401
    assert await env.inbound_count() == 0


async def _signature_claims(env: Env) -> int:
    from storage.models import SignatureClaim

    return await env.count(SignatureClaim)


async def test_a_robot_signature_carries_one_message_only(env: Env, settings: Settings) -> None:
    """Issue 16 #5: DingTalk signs only the timestamp, so one captured ``timestamp`` + ``sign`` pair let
    anyone post any body as anyone for an hour (an outsider paused a manager's prompts). Each pair is now
    remembered with its first ``msgId``: another message with it is refused (401, nothing written), the
    same message is DingTalk's retry and answered by the dedupe; the memory is in the database, so a
    restarted or second replica refuses the replay too."""
    ts = env.now_ms
    first = env.fake.robot_message("emp1", text="/help", msg_id="msg-first")
    assert (await env.fake.post_robot(env.bot_url, first, timestamp_ms=ts)).status == 200
    assert await env.inbound_count() == 1
    outbox_before = len(await env.outbox_rows())

    forged = env.fake.robot_message("mgr", text="/pause 30", msg_id="msg-forged")
    assert (await env.fake.post_robot(env.bot_url, forged, timestamp_ms=ts, exact=True)).status == 401
    assert await env.inbound_count() == 1 and len(await env.outbox_rows()) == outbox_before

    retry = await env.fake.post_robot(env.bot_url, first, timestamp_ms=ts)  # the platform's retry
    assert retry.status == 200
    assert await env.inbound_count() == 1 and len(await env.outbox_rows()) == outbox_before

    # Another replica (or this one restarted) on the same database: a fresh adapter, the same memory.
    port = free_port()
    cfg = dingtalk_settings(settings, env.fake.url, mode="http", bot_port=port)
    registry = AdapterRegistry()
    registry.add(DingTalkAdapter.from_settings(cfg))
    replica = build_service(cfg, clock=env.clock, registry=registry)
    replica.run_outbox = False
    runner = web.AppRunner(create_app(replica))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        again = await env.fake.post_robot(f"http://127.0.0.1:{port}", forged, timestamp_ms=ts, exact=True)
        assert again.status == 401
        fresh = env.fake.robot_message("emp1", text="/help", msg_id="msg-next")
        ok = await env.fake.post_robot(f"http://127.0.0.1:{port}", fresh, timestamp_ms=ts + 1)
        assert ok.status == 200
    finally:
        await runner.cleanup()
        await replica.close()
    assert await env.inbound_count() == 2

    # Bounded by the window: once the pairs are older than it, the next claim forgets them.
    assert await _signature_claims(env) == 2
    env.clock.advance(timedelta(seconds=3601))
    late = env.fake.robot_message("emp1", text="/help", msg_id="msg-late")
    assert (await env.fake.post_robot(env.bot_url, late, timestamp_ms=env.now_ms)).status == 200
    assert await _signature_claims(env) == 1
