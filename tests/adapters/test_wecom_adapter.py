"""The WeCom adapter end to end: the fake WeCom on loopback on one side, the real perfloop aiohttp app on the
other, callbacks encrypted and signed exactly as WeCom does, and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from PIL import Image as PILImage
from sqlalchemy import func, select, update
from yarl import URL

from adapters.base import PermanentError, RateLimited, TransientError
from adapters.registry import AdapterRegistry
from adapters.wecom.adapter import WeComAdapter
from adapters.wecom.client import MediaTooLarge, WeComAPIError
from adapters.wecom.crypto import signature
from bot.app.doctor import run_checks
from bot.app.http import create_app
from bot.app.orgsync_job import OrgSyncJob
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.context import Context, Reply
from bot.core.events import CardAction
from bot.core.router import Router
from cards.actions import Action, action
from cards.catalogue import Translator
from cards.model import Actions, Button, Card, Form, Header, Image, Markdown, Note, TextInput
from storage.media import MediaStore
from storage.models import CardMessage, CheckIn, Evidence, InboundEvent, OutboxMessage, Person
from tests.fakes.wecom import FakeWeCom, SentMessage, validate_template_card
from tests.support.factories import Org, seed_org

pytestmark = pytest.mark.timeout(60)


@action("wecomtest.ack")
class WecomTestAck(Action):
    checkin_id: int


router = Router()


def checkin_card(checkin_id: int, *, done: bool = False) -> Card:
    value = f'wecomtest.ack|{{"checkin_id":{checkin_id}}}'
    card = Card(
        header=Header(title="双周check-in", subtitle="2026-W48"),
        elements=[
            Markdown(text="张三的进展：**接口联调完成**"),
            Form(
                name="checkin",
                inputs=[TextInput(name="comment", label="给张三的反馈")],
                submit=Button(label="确认", value=value, style="primary"),
            ),
            Actions(buttons=[Button(label="约1:1", value='wecomtest.ack|{"checkin_id":0}')]),
        ],
        summary="张三的check-in",
    )
    if done:
        card = Card(
            header=card.header,
            elements=[Note(text="已确认"), Actions(buttons=[Button(label="已确认", value=value)])],
        )
        card = card.disabled()
    return card


@router.action(WecomTestAck)
async def acknowledge(ctx: Context, payload: WecomTestAck) -> Reply:
    result = await ctx.session.execute(
        update(CheckIn)
        .where(CheckIn.id == payload.checkin_id, CheckIn.status == "open")
        .values(status="acknowledged", answered_by_id=ctx.person.id, answered_at=ctx.now)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise ctx.refuse("common.already_done")
    return Reply(toast="ok", card=checkin_card(payload.checkin_id, done=True))


@action("wecomtest.comment")
class WecomTestComment(Action):
    checkin_id: int


async def comment_form(ctx: Context, payload: WecomTestComment) -> Form:
    value = f'wecomtest.comment|{{"checkin_id":{payload.checkin_id}}}'
    return Form(
        name="comment",
        inputs=[TextInput(name="comment", label="给张三的反馈", required=True)],
        submit=Button(label="提交反馈", value=value),
    )


@router.action(WecomTestComment, form=comment_form)
async def comment(ctx: Context, payload: WecomTestComment) -> Reply:
    assert ctx.event is not None and isinstance(ctx.event, CardAction)
    await ctx.session.execute(
        update(CheckIn)
        .where(CheckIn.id == payload.checkin_id)
        .values(manager_comment=ctx.event.form["comment"])
    )
    return Reply(toast="ok", card=checkin_card(payload.checkin_id, done=True))


@router.image()
async def keep_photo(ctx: Context, media_ref: str) -> Reply:
    data = await ctx.download(media_ref)
    stored = await MediaStore(
        ctx.settings.media.dir, max_bytes=ctx.settings.media.max_image_bytes
    ).store_image(data)
    ctx.session.add(
        Evidence(
            person_id=ctx.person.id,
            file_path=str(stored.path),
            sha256=stored.info.sha256,
            size=stored.info.size,
            mime=stored.info.mime,
            platform_media_ref=media_ref,
        )
    )
    return Reply(toast="saved")


@dataclass
class Env:
    fake: FakeWeCom
    service: Service
    adapter: WeComAdapter
    org: Org
    url: str
    clock: FixedClock

    async def count(self, model: type) -> int:
        async with self.service.factory() as s:
            return int(await s.scalar(select(func.count()).select_from(model)) or 0)

    async def as_person(self, person: Person, fn: Callable[[Context], Awaitable[None]]) -> None:
        await self.service.dispatcher.run_for_person(person.id, fn)


def wecom_settings(db_url: str, tmp_path: object, fake: FakeWeCom, **wecom: object) -> Settings:
    cfg = {
        "enabled": True,
        "api_base": fake.url,
        "corp_id": fake.corp_id,
        "agent_id": fake.agent_id,
        "secret": fake.secret,
        "token": fake.token,
        "encoding_aes_key": fake.encoding_aes_key,
        **wecom,
    }
    return Settings(
        database={"url": db_url},
        media={"dir": tmp_path / "media"},  # type: ignore[operator]
        sim={"enabled": False},
        wecom=cfg,
    )


@pytest.fixture
async def fake(clock: FixedClock) -> AsyncIterator[FakeWeCom]:
    f = FakeWeCom(now=lambda: clock.now().timestamp())
    for uid in ("leader", "hr", "hrbp", "mgr", "smgr", "emp1", "emp2", "seller"):
        f.add_user(uid, uid, [1])
    await f.start()
    yield f
    await f.close()


@pytest.fixture
async def env(db_url: str, tmp_path: object, fake: FakeWeCom, clock: FixedClock) -> AsyncIterator[Env]:
    settings = wecom_settings(db_url, tmp_path, fake)
    service = build_service(settings, clock=clock, registry=AdapterRegistry.from_settings(settings))
    service.run_outbox = False
    service.dispatcher.router = router  # only this file's handlers: the flows have their own tests
    adapter = service.registry.get("wecom")
    assert isinstance(adapter, WeComAdapter)
    adapter.client.rate_limit_pause = 0.01
    async with service.factory() as session, session.begin():
        org = await seed_org(session, platform="wecom", app_id=fake.corp_id)
    server = TestServer(create_app(service), host="127.0.0.1")
    await server.start_server()
    try:
        yield Env(fake, service, adapter, org, str(server.make_url("")).rstrip("/"), clock)
    finally:
        await server.close()
        await service.close()


async def open_checkin(env: Env) -> int:
    async with env.service.factory() as s, s.begin():
        checkin = CheckIn(person_id=env.org.emp1.id, period="2026-W48", status="open", due_at=env.clock.now())
        s.add(checkin)
        await s.flush()
        return checkin.id


async def send_card(env: Env, person: Person, card: Card, key: str | None = None) -> SentMessage:
    async def enqueue(ctx: Context) -> None:
        ctx.outbox.send(ctx.person, card, card_key=key)

    before = len(env.fake.messages)
    await env.as_person(person, enqueue)
    await env.service.outbox.drain()
    assert len(env.fake.messages) == before + 1
    return env.fake.messages[-1]


async def settle(env: Env) -> None:
    """Let the adapter's after-answer background tasks finish."""
    for _ in range(100):
        if not env.adapter._tasks:
            return
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------------- callbacks
async def test_url_verification_echoes_the_decrypted_echostr(env: Env) -> None:
    status, text = await env.fake.verify_url(env.url, echo="6358762014396489234")
    assert (status, text) == (200, "6358762014396489234")


async def test_url_verification_tolerates_an_unencoded_plus(env: Env) -> None:
    """Some proxies pass the base64 echostr through without percent-encoding; '+' then reads as a space."""
    fake = env.fake
    ts = str(int(env.clock.now().timestamp()))
    for attempt in range(50):
        echostr = fake.crypto.encrypt(f"echo-{attempt}")
        if "+" in echostr:
            break
    assert "+" in echostr
    sig = signature(fake.token, ts, "123", echostr)
    url = URL(
        f"{env.url}/callbacks/wecom?msg_signature={sig}&timestamp={ts}&nonce=123&echostr={echostr}",
        encoded=True,
    )
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert (resp.status, await resp.text()) == (200, f"echo-{attempt}")
    bad = URL(
        f"{env.url}/callbacks/wecom?msg_signature={'0' * 40}&timestamp={ts}&nonce=123&echostr={echostr}",
        encoded=True,
    )
    async with aiohttp.ClientSession() as http, http.get(bad) as resp:
        assert resp.status == 403


async def test_checkin_card_click_updates_db_and_the_clicked_card(env: Env) -> None:
    checkin_id = await open_checkin(env)
    sent = await send_card(env, env.org.manager, checkin_card(checkin_id), key=f"checkin:{checkin_id}")
    body = sent.body
    assert (
        body["touser"] == "mgr"
        and body["agentid"] == env.fake.agent_id
        and body["msgtype"] == "template_card"
    )
    assert body["enable_duplicate_check"] == 1
    card = sent.card
    assert validate_template_card(card) == []
    assert card["card_type"] == "button_interaction"
    assert card["button_list"][0] == {
        "type": 0,
        "text": "确认",
        "style": 1,
        "key": f'wecomtest.ack|{{"checkin_id":{checkin_id}}}',
    }
    assert "· 给张三的反馈" in card["sub_title_text"]
    async with env.service.factory() as s:  # the send's response_code is kept for later updates
        ref = await s.scalar(
            select(CardMessage.message_ref).where(CardMessage.card_key == f"checkin:{checkin_id}")
        )
    assert ref == f"rc:{card['task_id']}:{sent.response_code}"

    xml, code = env.fake.click_xml("mgr", sent, card["button_list"][0]["key"])
    status, text = await env.fake.deliver(env.url, xml)
    assert (status, text) == (200, "")
    assert env.fake.callback_seconds[-1] < 5.0
    async with env.service.factory() as s:
        row = await s.get(CheckIn, checkin_id)
        assert row is not None and row.status == "acknowledged" and row.answered_by_id == env.org.manager.id

    await env.service.outbox.drain()
    assert len(env.fake.updates) == 1
    upd = env.fake.updates[0]
    assert upd.response_code == code and upd.userids == ["mgr"]
    assert upd.body["agentid"] == env.fake.agent_id
    assert upd.body["template_card"]["replace_text"] == "已确认"
    assert validate_template_card(upd.body["template_card"]) == []


async def test_the_same_callback_twice_has_one_effect(env: Env) -> None:
    checkin_id = await open_checkin(env)
    sent = await send_card(env, env.org.manager, checkin_card(checkin_id))
    xml, _ = env.fake.click_xml("mgr", sent, f'wecomtest.ack|{{"checkin_id":{checkin_id}}}')
    body, query = env.fake.signed(xml)
    first = await env.fake.post(env.url, body, query)
    retry = await env.fake.post(env.url, body, query)  # WeCom's retry: the very same request
    assert first == retry == (200, "")
    await env.service.outbox.drain()
    await settle(env)
    assert await env.count(InboundEvent) == 1
    assert len(env.fake.updates) == 1
    assert [m for m in env.fake.messages if m.body["msgtype"] == "text"] == []  # no refusal was shown


async def test_a_refused_click_is_explained_in_chat(env: Env) -> None:
    checkin_id = await open_checkin(env)
    sent = await send_card(env, env.org.manager, checkin_card(checkin_id))
    key = f'wecomtest.ack|{{"checkin_id":{checkin_id}}}'
    await env.fake.deliver(env.url, env.fake.click_xml("mgr", sent, key)[0])
    env.clock.advance(timedelta(seconds=3))
    status, _ = await env.fake.deliver(env.url, env.fake.click_xml("mgr", sent, key)[0])
    assert status == 200
    await settle(env)
    texts = [m for m in env.fake.shown_to("mgr") if m.body["msgtype"] == "text"]
    assert [m.body["text"]["content"] for m in texts] == [Translator("zh-CN")("common.already_done")]
    assert await env.count(InboundEvent) == 2


async def test_a_used_response_code_falls_back_to_a_fresh_card(env: Env) -> None:
    checkin_id = await open_checkin(env)
    sent = await send_card(env, env.org.manager, checkin_card(checkin_id))
    xml, code = env.fake.click_xml("mgr", sent, f'wecomtest.ack|{{"checkin_id":{checkin_id}}}')
    await env.fake.deliver(env.url, xml)
    env.fake.expire_code(code)  # e.g. 72 h passed before the outbox got to it
    await env.service.outbox.drain()
    assert env.fake.updates == [] and len(env.fake.rejected_updates) == 1
    fresh = env.fake.shown_to("mgr")[-1]
    assert fresh is not sent and fresh.card["replace_text"] == "已确认"
    async with env.service.factory() as s:
        statuses = (await s.scalars(select(OutboxMessage.status))).all()
    assert set(statuses) == {"sent"}


async def test_text_questions_are_answered_in_chat_after_the_submit_click(env: Env) -> None:
    checkin_id = await open_checkin(env)
    value = f'wecomtest.comment|{{"checkin_id":{checkin_id}}}'
    form = Form(
        name="comment",
        inputs=[TextInput(name="comment", label="给张三的反馈")],
        submit=Button(label="提交反馈", value=value),
    )
    sent = await send_card(env, env.org.manager, Card(header=Header(title="反馈"), elements=[form]))
    assert sent.card["card_type"] == "button_interaction" and "· 给张三的反馈" in sent.card["sub_title_text"]
    xml, code = env.fake.click_xml("mgr", sent, value)
    assert (await env.fake.deliver(env.url, xml))[0] == 200
    await env.service.outbox.drain()
    question = env.fake.shown_to("mgr")[-1]
    assert question is not sent and "给张三的反馈" in question.card["sub_title_text"]
    env.clock.advance(timedelta(seconds=5))
    assert (await env.fake.deliver(env.url, env.fake.text_xml("mgr", "做得好，继续压测")))[0] == 200
    async with env.service.factory() as s:
        row = await s.get(CheckIn, checkin_id)
        assert row is not None and row.manager_comment == "做得好，继续压测"
    await env.service.outbox.drain()
    assert [u.response_code for u in env.fake.updates] == [code]


async def test_a_photo_is_downloaded_and_stored(env: Env) -> None:
    buf = io.BytesIO()
    PILImage.new("RGB", (32, 24), (200, 30, 30)).save(buf, format="PNG")
    photo = buf.getvalue()
    media_id = env.fake.add_media(photo, "image/png")
    status, _ = await env.fake.deliver(env.url, env.fake.image_xml("emp1", media_id))
    assert status == 200
    async with env.service.factory() as s:
        ev = await s.scalar(select(Evidence))
    assert ev is not None and ev.person_id == env.org.emp1.id
    assert ev.sha256 == hashlib.sha256(photo).hexdigest() and ev.platform_media_ref == media_id
    with open(ev.file_path, "rb") as fh:
        assert fh.read() == photo
    assert ("media/get", 0) in env.fake.calls


async def test_media_download_is_size_capped(env: Env) -> None:
    media_id = env.fake.add_media(b"\xff\xd8\xff" + b"x" * 5000)
    assert len(await env.adapter.download_media(media_id, max_bytes=6000)) == 5003
    with pytest.raises(MediaTooLarge):
        await env.adapter.download_media(media_id, max_bytes=4096)
    with pytest.raises(WeComAPIError) as err:
        await env.adapter.download_media("no-such-media", max_bytes=4096)
    assert err.value.errcode == 40007


async def test_forged_and_hostile_callbacks_are_rejected_and_write_nothing(env: Env) -> None:
    fake = env.fake
    xml = fake.text_xml("emp1", "hello")
    body, query = fake.signed(xml)
    encrypt = body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    tampered = encrypt[:40] + ("A" if encrypt[40] != "A" else "B") + encrypt[41:]
    resigned_body, resigned_query = body.replace(encrypt, tampered), dict(query)
    resigned_query["msg_signature"] = signature(fake.token, query["timestamp"], query["nonce"], tampered)
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<xml><FromUserName>emp1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>"
        "<Content>&x;</Content><MsgId>9</MsgId></xml>"
    )
    xxe_body, xxe_query = fake.signed(xxe)  # even correctly encrypted and signed
    outer_xxe = '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><Encrypt>&x;</Encrypt></xml>'
    stale_body, stale_query = fake.signed(xml, timestamp=str(int(env.clock.now().timestamp()) - 3600))
    cases = {
        "bad signature": (body, {**query, "msg_signature": "f" * 40}, 403),
        "tampered ciphertext": (resigned_body, query, 403),
        "tampered and re-signed": (resigned_body, resigned_query, 403),
        "xxe inside": (xxe_body, xxe_query, 400),
        "xxe envelope": (outer_xxe, query, 400),
        "1 MB body": (b"<xml>" + b"A" * (1024 * 1024) + b"</xml>", query, 413),
        "stale timestamp": (stale_body, stale_query, 403),
        "no signature": (body, {"timestamp": query["timestamp"], "nonce": query["nonce"]}, 400),
    }
    for name, (payload, q, expected) in cases.items():
        status, _ = await fake.post(env.url, payload, q)
        assert status == expected, name
    assert await env.count(InboundEvent) == 0
    assert await env.count(OutboxMessage) == 0
    assert await env.count(Evidence) == 0
    ok = await fake.post(env.url, body, query)  # the untouched original still goes through
    assert ok == (200, "") and await env.count(InboundEvent) == 1


# ---------------------------------------------------------------------- sending
async def test_broadcast_batches_recipients_and_reports_invalid_users(env: Env) -> None:
    card = Card(header=Header(title="Q1 kickoff"), elements=[Markdown(text="Goals due Friday")])
    result = await env.adapter.send_many(["emp1", "emp2", "ghost"], card, idempotency_key="k1")
    sent = env.fake.messages[-1]
    assert sent.body["touser"] == "emp1|emp2|ghost" and sent.card["card_type"] == "text_notice"
    assert result.invalid_recipients == ["ghost"]
    assert result.message_refs == {"emp1": f"msgid:{sent.msgid}", "emp2": f"msgid:{sent.msgid}"}
    nobody = await env.adapter.send_many(["ghost", "ghost2"], card, idempotency_key="k2")
    assert nobody.invalid_recipients == ["ghost", "ghost2"] and nobody.message_refs == {}


async def test_a_resend_of_the_same_outbox_row_is_not_shown_twice(env: Env) -> None:
    card = Card(
        header=Header(title="Reminder"),
        elements=[Actions(buttons=[Button(label="Done", value='wecomtest.ack|{"checkin_id":1}')])],
    )
    first = await env.adapter.send("emp1", card, idempotency_key="perfloop-outbox-7")
    again = await env.adapter.send("emp1", card, idempotency_key="perfloop-outbox-7")
    other = await env.adapter.send("emp1", card, idempotency_key="perfloop-outbox-8")
    assert first.message_refs == again.message_refs != other.message_refs
    assert len(env.fake.shown_to("emp1")) == 2
    task_ids = [m.card["task_id"] for m in env.fake.shown]
    assert len(set(task_ids)) == len(task_ids)


async def test_token_expiry_mid_broadcast_refreshes_once(env: Env) -> None:
    people = env.org.everyone

    async def enqueue(ctx: Context) -> None:
        for i, p in enumerate(people):
            ctx.outbox.send(p, Card(header=Header(title=f"Digest {i}"), elements=[Markdown(text="...")]))

    await env.as_person(env.org.hr, enqueue)
    env.service.outbox.cfg.batch_size = 2
    rows = await env.service.outbox.claim(2)
    await env.service.outbox._record(
        {r.id: r for r in rows}, list(await asyncio.gather(*(env.service.outbox._deliver(r) for r in rows)))
    )
    assert env.fake.token_fetches() == 1
    env.fake.expire_tokens()
    await env.service.outbox.drain()
    assert env.fake.token_fetches() == 2
    assert env.adapter.client.token_fetches == 2
    assert sorted(m.recipients[0] for m in env.fake.shown) == sorted(p.platform_user_id for p in people)
    assert ("message/send", 42001) in env.fake.calls


async def test_rate_limit_45009_is_retried_later_and_nothing_is_lost(env: Env) -> None:
    people = env.org.everyone

    async def enqueue(ctx: Context) -> None:
        for p in people:
            ctx.outbox.send(p, Card(header=Header(title="Nudge"), elements=[Markdown(text=p.name)]))

    await env.as_person(env.org.hr, enqueue)
    env.fake.rate_limit_per_minute = 3
    await env.service.outbox.drain()
    assert len(env.fake.shown) == 3
    assert sum(1 for path, code in env.fake.calls if code == 45009) == len(people) - 3
    async with env.service.factory() as s:
        pending = (await s.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending"))).all()
    assert len(pending) == len(people) - 3 and all("45009" in (r.last_error or "") for r in pending)
    for _ in range(5):  # each minute WeCom lets three more through
        env.clock.advance(timedelta(seconds=61))
        await env.service.outbox.drain()
    assert sorted(m.recipients[0] for m in env.fake.shown) == sorted(p.platform_user_id for p in people)
    async with env.service.factory() as s:
        assert set((await s.scalars(select(OutboxMessage.status))).all()) == {"sent"}


async def test_server_errors_and_busy_answers_are_transient_and_retried(env: Env) -> None:
    card = Card(header=Header(title="Ping"), elements=[Markdown(text="...")])
    for answer in (502, -1):
        env.fake.fail_next(answer)
        with pytest.raises(TransientError):
            await env.adapter.send("emp1", card, idempotency_key=f"t{answer}")
    env.fake.fail_next(45033)
    with pytest.raises(RateLimited):
        await env.adapter.send("emp1", card, idempotency_key="t45033")

    async def enqueue(ctx: Context) -> None:
        ctx.outbox.send(ctx.person, card)

    env.fake.fail_next(503)
    await env.as_person(env.org.emp2, enqueue)
    await env.service.outbox.drain()
    assert env.fake.shown_to("emp2") == []
    env.clock.advance(timedelta(minutes=5))
    await env.service.outbox.drain()
    assert len(env.fake.shown_to("emp2")) == 1


async def test_an_unreachable_wecom_is_a_transient_error(env: Env, fake: FakeWeCom) -> None:
    await fake.close()
    with pytest.raises(TransientError):
        await env.adapter.client.token(force=True)


async def test_card_images_are_uploaded_and_follow_the_card(env: Env) -> None:
    buf = io.BytesIO()
    PILImage.new("RGB", (40, 20), (0, 90, 200)).save(buf, format="PNG")
    store = MediaStore(env.service.settings.media.dir, max_bytes=env.service.settings.media.max_image_bytes)
    stored = await store.store_image(buf.getvalue())
    card = Card(
        header=Header(title="Trend"), elements=[Image(media_id=stored.info.sha256, alt="30-day trend")]
    )
    await env.adapter.send("leader", card, idempotency_key="img-1")
    await env.adapter.send("hr", card, idempotency_key="img-2")
    assert len(env.fake.uploads) == 1 and env.fake.uploads[0][1] == buf.getvalue()
    images = [m for m in env.fake.shown if m.body["msgtype"] == "image"]
    assert [m.recipients for m in images] == [["leader"], ["hr"]]
    assert images[0].body["image"]["media_id"] == env.fake.uploads[0][0]


# ---------------------------------------------------------------------- org and credentials
async def test_org_sync_reads_departments_members_and_direct_leaders(env: Env) -> None:
    fake = env.fake
    fake.users.clear()
    fake.add_department(1, "公司")
    fake.add_department(2, "研发部", 1, leaders=["mgr"])
    fake.add_department(3, "销售部", 1, leaders=["smgr"])
    fake.add_user("leader", "刘总", [1])
    fake.add_user("mgr", "王经理", [2], direct_leader=["leader"])
    fake.add_user("emp1", "张三", [2, 3], direct_leader=["mgr", "smgr"])
    fake.add_user("smgr", "孙经理", [3], direct_leader=["leader"])
    fake.add_user("gone", "离职者", [3], status=2)
    org = await env.adapter.list_org()
    assert [(d.id, d.parent_id, d.leader_ids) for d in org.departments] == [
        ("1", None, []),
        ("2", "1", ["mgr"]),
        ("3", "1", ["smgr"]),
    ]
    members = {m.user_id: m for m in org.members}
    assert set(members) == {"leader", "mgr", "emp1", "smgr", "gone"}
    assert members["emp1"].manager_id == "mgr" and members["emp1"].department_ids == ["2", "3"]
    assert members["leader"].manager_id is None
    assert members["gone"].active is False

    report = await OrgSyncJob(env.service).sync("wecom")  # applied to the database by the core org sync
    async with env.service.factory() as s:
        people = {p.platform_user_id: p for p in (await s.scalars(select(Person))).all()}
    assert people["emp1"].manager_id == people["mgr"].id
    assert not people["emp2"].active  # not in WeCom any more: deactivated, not deleted
    assert report.people_deactivated >= 1


async def test_member_change_callback_reaches_the_org_sync(env: Env) -> None:
    OrgSyncJob(env.service)  # installs the dispatcher's member hook
    status, _ = await env.fake.deliver(env.url, env.fake.contact_xml("delete_user", "emp2"))
    assert status == 200
    async with env.service.factory() as s:
        emp2 = await s.scalar(select(Person).where(Person.platform_user_id == "emp2"))
    assert emp2 is not None and emp2.active is False
    assert await env.adapter.get_member("emp1") is not None
    assert await env.adapter.get_member("nobody") is None


async def test_check_credentials_for_doctor(env: Env, db_url: str, tmp_path: object) -> None:
    checks = {c.name: c for c in await run_checks(env.service.settings)}
    assert checks["wecom credentials"].ok, checks["wecom credentials"].detail
    bad = wecom_settings(db_url, tmp_path, env.fake, secret="wrong-secret")
    checks = {c.name: c for c in await run_checks(bad)}
    assert not checks["wecom credentials"].ok
    assert "40001" in checks["wecom credentials"].detail
    with pytest.raises(PermanentError):
        await WeComAdapter.from_settings(bad).check_credentials()


# ------------------------------------------------------------- issue 16 #17: per-person codes, member limits
def _buttons_card(title: str) -> Card:
    return Card(
        header=Header(title=title),
        elements=[Actions(buttons=[Button(label="Done", value='wecomtest.ack|{"checkin_id":1}')])],
    )


async def test_an_update_to_every_recipient_of_a_multi_recipient_card_updates_their_own_card(
    env: Env,
) -> None:
    """The response_code of one message/send is shared by its recipients and single-use: updating recipient 2
    with it arrived as a fresh card. Cards that can be updated now go out one call per person."""
    people = ["emp1", "emp2", "mgr"]
    result = await env.adapter.send_many(
        people, _buttons_card("Kickoff"), idempotency_key="perfloop-outbox-41"
    )
    assert set(result.message_refs) == set(people) and len(set(result.message_refs.values())) == 3
    assert all(len(env.fake.shown_to(uid)) == 1 for uid in people)
    shown = len(env.fake.shown)
    for uid in people:
        await env.adapter.update(result.message_refs[uid], _buttons_card("Kickoff").disabled(), recipient=uid)
    assert env.fake.rejected_updates == []
    assert sorted(u.userids[0] for u in env.fake.updates) == sorted(people)
    assert len(env.fake.shown) == shown  # nobody got a fresh card
    # A resend of the same row (after a crash) is recognised per person, not shown twice.
    again = await env.adapter.send_many(
        people, _buttons_card("Kickoff"), idempotency_key="perfloop-outbox-41"
    )
    assert again.message_refs == result.message_refs and len(env.fake.shown) == shown


async def test_the_fake_drops_a_31st_message_to_one_member_in_a_minute_and_the_1001st_in_an_hour(
    env: Env,
) -> None:
    for i in range(31):
        card = Card(header=Header(title=f"Note {i}"), elements=[Markdown(text="x")])
        await env.adapter.send("emp1", card, idempotency_key=f"k{i}")
    assert len(env.fake.shown_to("emp1")) == 30
    [dropped] = env.fake.dropped_for("emp1")
    assert dropped.body["template_card"]["main_title"]["title"] == "Note 30"
    assert env.fake.shown_to("emp2") == [] and env.fake.dropped_for("emp2") == []
    # The hour: 1,000 messages spread over 50 minutes get through, the next one is dropped.
    for _ in range(1000):
        env.clock.advance(timedelta(seconds=3))
        assert env.fake._member_slot("emp2")
    env.clock.advance(timedelta(seconds=60))
    assert not env.fake._member_slot("emp2")


async def test_the_outbox_never_sends_one_member_more_than_wecom_keeps(env: Env) -> None:
    """With the configured caps off, WeCom's per-member limits still hold: nothing dropped, the rest waits."""
    env.service.outbox.per_person.per_minute = 0
    env.service.outbox.per_person.per_hour = 0

    async def enqueue(ctx: Context) -> None:
        for i in range(40):
            ctx.outbox.send(ctx.person, Card(header=Header(title=f"Ping {i}"), elements=[Markdown(text="x")]))

    await env.as_person(env.org.emp1, enqueue)
    await env.service.outbox.drain()
    first_minute = len(env.fake.shown_to("emp1"))
    assert 0 < first_minute < 30 and env.fake.dropped_for("emp1") == []
    for _ in range(3):
        env.clock.advance(timedelta(seconds=61))
        await env.service.outbox.drain()
    assert len(env.fake.shown_to("emp1")) == 40 and env.fake.dropped_for("emp1") == []
    async with env.service.factory() as s:
        assert set((await s.scalars(select(OutboxMessage.status))).all()) == {"sent"}
