"""Feishu webhook end to end: the fake Feishu encrypts, signs and POSTs to a running perfloop app."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from adapters.feishu.adapter import FeishuAdapter
from adapters.feishu.render import render_card
from adapters.registry import AdapterRegistry
from bot.app.http import create_app
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.context import Context, Reply
from bot.core.router import Router
from cards.actions import Action, action, pack
from cards.model import Button, Card, Form, Header, Markdown, TextInput
from storage.models import AuditLog, InboundEvent, OutboxMessage
from tests.fakes.feishu import FakeFeishu, Posted, card_problem, feishu_settings, serve
from tests.support.factories import Org, seed_org


@action("fstest.ack")
class FsAck(Action):
    n: int


@action("fstest.form")
class FsForm(Action):
    n: int


router = Router()


@router.action(FsAck)
async def ack(ctx: Context, payload: FsAck) -> Reply:
    ctx.audit("fstest.ack", "test", payload.n)
    return Reply(
        toast="已确认",
        card=Card(
            header=Header(title=f"已确认 {payload.n}", colour="green"), elements=[Markdown(text="谢谢")]
        ),
    )


@router.action(FsForm)
async def submit(ctx: Context, payload: FsForm) -> Reply:
    assert ctx.event is not None and ctx.event.kind == "card_action"
    ctx.audit("fstest.form", "test", payload.n, **dict(ctx.event.form))
    return Reply(toast="已保存")


def form_card(payload: FsForm) -> Card:
    return Card(
        header=Header(title="进展"),
        elements=[
            Form(
                name="checkin",
                inputs=[TextInput(name="progress", label="进展")],
                submit=Button(label="提交", value=pack(payload)),
            )
        ],
    )


async def photo(ctx: Context, ref: str) -> Reply:
    data = await ctx.download(ref)
    ctx.audit("fstest.photo", "test", None, ref=ref, size=len(data), sha=hashlib.sha256(data).hexdigest())
    return Reply(toast="收到")


@pytest.fixture
async def fake(clock: FixedClock) -> AsyncIterator[FakeFeishu]:
    f = FakeFeishu(now=lambda: clock.now().timestamp())
    await f.start()
    yield f
    await f.close()


@pytest.fixture
async def fs_service(settings: Settings, clock: FixedClock, fake: FakeFeishu) -> AsyncIterator[Service]:
    s = feishu_settings(settings, fake)
    registry = AdapterRegistry()
    registry.add(FeishuAdapter.from_settings(s))
    svc = build_service(s, clock=clock, registry=registry)
    svc.run_outbox = False
    svc.dispatcher.router.include(router)
    svc.dispatcher.router.images.insert(0, photo)
    yield svc
    await svc.close()


@pytest.fixture
async def fs_org(fs_service: Service, fake: FakeFeishu) -> Org:
    async with fs_service.factory() as session, session.begin():
        return await seed_org(session, platform="feishu", app_id=fake.app_id)


@pytest.fixture
async def callback_url(fs_service: Service, fs_org: Org) -> AsyncIterator[str]:
    runner, base = await serve(create_app(fs_service))
    yield base + "/callbacks/feishu"
    await runner.cleanup()


async def count(svc: Service, model: Any) -> int:
    async with svc.factory() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def audits(svc: Service, action_name: str) -> list[AuditLog]:
    async with svc.factory() as s:
        return list(await s.scalars(select(AuditLog).where(AuditLog.action == action_name)))


async def test_url_verification_challenge(callback_url: str, fake: FakeFeishu, fs_service: Service) -> None:
    posted = await fake.deliver(callback_url, fake.url_verification("ajls384kdjx98XX"), sign=False)
    assert posted.status == 200
    assert posted.body == {"challenge": "ajls384kdjx98XX"}
    bad = fake.url_verification("x")
    bad["token"] = "not-the-token"
    assert (await fake.deliver(callback_url, bad, sign=False)).status == 401
    assert await count(fs_service, InboundEvent) == 0


async def test_encrypted_click_answered_with_updated_card_in_time(
    callback_url: str, fake: FakeFeishu, fs_service: Service
) -> None:
    posted = await fake.deliver(callback_url, fake.card_click("emp1", pack(FsAck(n=7)), message_id="om_77"))
    assert posted.status == 200
    assert posted.seconds < 3.0
    assert posted.body["toast"] == {"type": "success", "content": "已确认"}
    card = posted.body["card"]
    assert card["type"] == "raw"
    assert card["data"]["schema"] == "2.0"
    assert card["data"]["header"]["title"]["content"] == "已确认 7"
    assert card["data"]["config"]["update_multi"] is True
    assert card_problem(card["data"]) is None
    assert [a.entity_id for a in await audits(fs_service, "fstest.ack")] == [7]
    # The card travelled inline: nothing was queued to patch it afterwards.
    assert await count(fs_service, OutboxMessage) == 0


async def test_form_submit_is_stored(callback_url: str, fake: FakeFeishu, fs_service: Service) -> None:
    """Issue 16 #16: the fake strips ``behaviors`` from a form submit, as Lark documents; the submit
    button's rendered name routes it."""
    submit_button = render_card(form_card(FsForm(n=3)))["body"]["elements"][0]["elements"][-1]
    assert submit_button["form_action_type"] == "submit"
    click = fake.card_click(
        "emp2",
        pack(FsForm(n=3)),
        name=submit_button["name"],
        form_value={"progress": "完成接口联调", "due": "2026-12-01 +0800", "tags": ["a", "b"], "note": None},
    )
    assert click["event"]["action"]["value"] == {}
    posted = await fake.deliver(callback_url, click)
    assert posted.status == 200 and posted.body == {"toast": {"type": "success", "content": "已保存"}}
    [row] = await audits(fs_service, "fstest.form")
    assert row.entity_id == 3
    assert row.detail == {"progress": "完成接口联调", "due": "2026-12-01", "tags": ["a", "b"]}


async def test_photo_is_downloaded_through_the_message_resource_api(
    callback_url: str, fake: FakeFeishu, fs_service: Service
) -> None:
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    png = buf.getvalue()
    msg = fake.image_message("emp1", png)
    posted = await fake.deliver(callback_url, msg)
    assert posted.status == 200 and posted.body == {"msg": "success"}
    [row] = await audits(fs_service, "fstest.photo")
    assert row.detail["size"] == len(png) and row.detail["sha"] == hashlib.sha256(png).hexdigest()
    mid = msg["event"]["message"]["message_id"]
    assert (
        "GET",
        f"/open-apis/im/v1/messages/{mid}/resources/" + row.detail["ref"].split(":")[1],
    ) in fake.requests


@pytest.mark.parametrize(
    "attack",
    [
        "bad_signature",
        "unsigned",
        "unsigned_garbage",
        "bad_token",
        "bad_ciphertext",
        "plaintext",
        "oversized",
        "oversized_huge",
        "oversized_chunked",
    ],
)
async def test_untrustworthy_callbacks_write_nothing(
    attack: str, callback_url: str, fake: FakeFeishu, fs_service: Service
) -> None:
    event = fake.card_click("emp1", pack(FsAck(n=1)))
    if attack == "bad_signature":
        posted = await fake.deliver(callback_url, event, signature_override="0" * 64)
    elif attack == "unsigned":
        posted = await fake.deliver(callback_url, event, sign=False)
    elif attack == "unsigned_garbage":  # no padding oracle: undecryptable and unsigned look the same
        posted = await fake.deliver(callback_url, event, sign=False, encrypt_key="a different key")
    elif attack == "bad_token":
        posted = await fake.deliver(callback_url, fake.card_click("emp1", pack(FsAck(n=1)), token="forged"))
    elif attack == "bad_ciphertext":
        posted = await fake.deliver(callback_url, event, encrypt_key="a different key")
    elif attack == "plaintext":
        import json

        posted = await fake.post(
            callback_url, json.dumps(event).encode(), {"Content-Type": "application/json"}
        )
    elif attack == "oversized_chunked":
        # No Content-Length (chunked transfer): the adapter must stop reading at its own cap.
        event["event"]["action"]["form_value"] = {"blob": "x" * 120_000}
        body, headers = fake.seal(event)

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 8192):
                yield body[i : i + 8192]

        async with (
            aiohttp.ClientSession() as http,
            http.post(callback_url, data=chunks(), headers=headers) as r,
        ):
            posted = Posted(r.status, await r.text(), 0.0)
    else:
        size = 120_000 if attack == "oversized" else 300_000
        event["event"]["action"]["form_value"] = {"blob": "x" * size}
        posted = await fake.deliver(callback_url, event)
    expected = {
        "bad_signature": 401,
        "unsigned": 401,
        "unsigned_garbage": 401,
        "bad_token": 401,
        "bad_ciphertext": 400,
        "plaintext": 400,
    }.get(attack, 413)
    assert posted.status == expected
    assert await count(fs_service, InboundEvent) == 0
    assert await count(fs_service, OutboxMessage) == 0
    assert await count(fs_service, AuditLog) == 0


async def test_duplicate_delivery_is_processed_once(
    callback_url: str, fake: FakeFeishu, fs_service: Service
) -> None:
    text = fake.text_message("emp1", "/help")
    first = await fake.deliver(callback_url, text)
    again = await fake.deliver(callback_url, text)  # Feishu's retry: same event_id, fresh encryption
    assert first.status == again.status == 200
    click = fake.card_click("emp1", pack(FsAck(n=9)))
    a = await fake.deliver(callback_url, click)
    b = await fake.deliver(callback_url, click)
    assert a.body == b.body and a.body["card"]["data"]["header"]["title"]["content"] == "已确认 9"
    assert await count(fs_service, InboundEvent) == 2
    assert len(await audits(fs_service, "fstest.ack")) == 1
    async with fs_service.factory() as s:
        rows = list(await s.scalars(select(OutboxMessage)))
    assert [r.recipients for r in rows] == [["emp1"]]  # one help card, not two
    await fs_service.outbox.drain()
    assert [m.receive_id for m in fake.messages] == ["emp1"]
    assert fake.messages[0].receive_id_type == "open_id"
    assert fake.messages[0].uuid == f"perfloop-outbox-{rows[0].id}"


async def test_contact_change_reaches_the_member_hook(
    callback_url: str, fake: FakeFeishu, fs_service: Service
) -> None:
    seen: list[tuple[str, str]] = []

    async def hook(session: Any, workspace: Any, event: Any) -> None:
        seen.append((event.change, event.user_id))

    fs_service.dispatcher.member_hook = hook
    posted = await fake.deliver(callback_url, fake.user_changed("deleted", "ou_gone"))
    assert posted.status == 200
    assert seen == [("deleted", "ou_gone")]


async def test_plaintext_mode_without_encrypt_key(
    settings: Settings, clock: FixedClock, fake: FakeFeishu
) -> None:
    """An app configured without an Encrypt Key: plain JSON bodies, authenticated by the token alone."""
    import json

    s = feishu_settings(settings, fake, encrypt_key="")
    registry = AdapterRegistry()
    registry.add(FeishuAdapter.from_settings(s))
    svc = build_service(s, clock=clock, registry=registry)
    svc.run_outbox = False
    async with svc.factory() as session, session.begin():
        await seed_org(session, platform="feishu", app_id=fake.app_id)
    runner, base = await serve(create_app(svc))
    url = base + "/callbacks/feishu"
    plain = {"Content-Type": "application/json"}
    try:
        challenge = await fake.post(url, json.dumps(fake.url_verification("c1")).encode(), plain)
        assert (challenge.status, challenge.body) == (200, {"challenge": "c1"})
        forged = await fake.post(
            url, json.dumps(fake.text_message("emp1", "/help", token="x")).encode(), plain
        )
        assert forged.status == 401
        sealed = await fake.deliver(url, fake.text_message("emp1", "/help"))  # we cannot decrypt this
        assert sealed.status == 400
        assert await count(svc, InboundEvent) == 0
        ok = await fake.post(url, json.dumps(fake.text_message("emp1", "/help")).encode(), plain)
        assert ok.status == 200 and await count(svc, InboundEvent) == 1
    finally:
        await runner.cleanup()
        await svc.close()


async def test_a_text_with_a_lone_surrogate_is_read_and_answered(
    callback_url: str, fake: FakeFeishu, fs_service: Service
) -> None:
    """Issue 16 #8: a lone surrogate (``\\ud800``, which no UTF-8 text can hold) in a message made the
    callback a 400 to Feishu, and the sender heard nothing. Now it is replaced (U+FFFD) and the message is
    processed like any other: here the help command, answered with one card."""
    posted = await fake.deliver(callback_url, fake.text_message("emp1", "/help \ud800"))
    assert posted.status == 200
    async with fs_service.factory() as s:
        events = list(await s.scalars(select(InboundEvent)))
        rows = list(await s.scalars(select(OutboxMessage)))
    assert len(events) == 1
    assert [r.recipients for r in rows] == [["emp1"]]  # the help card: the sender hears back


async def test_signed_events_outside_the_replay_window_are_refused(
    callback_url: str, fake: FakeFeishu, fs_service: Service, clock: FixedClock
) -> None:
    """Issue 16 #7: a correctly signed two-day-old event was processed. The window admits Feishu's own
    retries (15 s, 5 min, 1 h, 6 h after the first push: ~7.1 h) and refuses what is older or from the
    future beyond the clock tolerance, by the signed request timestamp and by ``create_time`` alike."""
    now = clock.now().timestamp()
    for age, expected in ((2 * 86400, 401), (-600, 401), (7.2 * 3600, 200), (0, 200)):
        fake.now = lambda age=age: now - age
        posted = await fake.deliver(callback_url, fake.text_message("emp1", "/help"))
        assert posted.status == expected, (age, posted)
    assert await count(fs_service, InboundEvent) == 2
    # A fresh request carrying an old event (create_time two days back) is refused too.
    fake.now = lambda: now - 2 * 86400
    stale = fake.text_message("emp1", "/help")
    fake.now = lambda: now
    posted = await fake.deliver(callback_url, stale)
    assert posted.status == 401 and "create_time" in posted.body["error"]
    assert await count(fs_service, InboundEvent) == 2


async def test_the_feishu_window_is_configurable(
    settings: Settings, clock: FixedClock, fake: FakeFeishu
) -> None:
    s = feishu_settings(settings, fake, replay_window_seconds=3600, clock_tolerance_seconds=0)
    adapter = FeishuAdapter.from_settings(s)
    assert (adapter.replay.window, adapter.replay.tolerance) == (3600, 0)
    default = FeishuAdapter.from_settings(feishu_settings(settings, fake))
    assert default.replay.window >= 7.5 * 3600  # above Feishu's retry schedule
