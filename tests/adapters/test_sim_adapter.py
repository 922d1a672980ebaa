"""SimAdapter: rendering, the in-memory "platform" (send/update/media), HTTP callbacks, the page API."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from adapters.base import PermanentError
from adapters.sim.adapter import SimAdapter
from adapters.sim.render import markdown_html, render_card
from bot.app.demo import seed_demo
from bot.app.http import create_app
from bot.app.orgsync import apply_org
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.context import Context, Refused, Reply
from bot.core.events import CardAction
from bot.core.router import Router
from cards.actions import Action, action, pack
from cards.model import (
    Actions,
    Button,
    Card,
    DatePicker,
    Divider,
    Fields,
    Form,
    Header,
    Image,
    KeyValue,
    Markdown,
    Note,
    Option,
    Select,
    TextInput,
)
from handlers.help.help import router as help_router
from storage.media import MediaStore
from storage.models import InboundEvent, Person, Workspace


@action("simunit.answer")
class SimUnitAnswer(Action):
    item: int


@action("simunit.refuse")
class SimUnitRefuse(Action):
    item: int


def _card(title: str = "检查", *, item: int = 1) -> Card:
    return Card(
        header=Header(title=title),
        elements=[Actions(buttons=[Button(label="好", value=pack(SimUnitAnswer(item=item)))])],
    )


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x00\xff\x00"))
        + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------------------------- render
def test_render_draws_every_element_kind() -> None:
    card = Card(
        header=Header(title="三二一复盘", subtitle="2026-11", colour="purple"),
        summary="请完成本月复盘",
        elements=[
            Markdown(text="**一件**实事"),
            Fields(items=[KeyValue(label="周期", value="2026-Q4")]),
            Image(media_id="abc123", alt="图表"),
            Note(text="截止 11-30"),
            Divider(),
            Actions(
                buttons=[
                    Button(label="确认", value=pack(SimUnitAnswer(item=3)), style="primary"),
                    Button(label="已处理", value=pack(SimUnitAnswer(item=4)), disabled=True),
                ]
            ),
            Form(
                name="review",
                inputs=[
                    TextInput(name="solid", label="实事", multiline=True, required=True, max_length=300),
                    TextInput(name="short", label="一句话", placeholder="简短些"),
                    Select(name="level", label="程度", options=[Option(label="高", value="h")], default="h"),
                    DatePicker(name="due", label="截止", default="2026-12-01"),
                ],
                submit=Button(label="提交", value=pack(SimUnitAnswer(item=5)), style="primary"),
                cancel=Button(label="稍后", value=pack(SimUnitAnswer(item=6))),
            ),
        ],
    )
    out = render_card(card)
    assert out["header"] == {"title": "三二一复盘", "subtitle": "2026-11", "colour": "purple"}
    assert out["summary"] == "请完成本月复盘"
    kinds = [e["kind"] for e in out["elements"]]
    assert kinds == ["markdown", "fields", "image", "note", "divider", "actions", "form"]
    md, fields, image, note, _div, actions, form = out["elements"]
    assert md["html"] == "<p><strong>一件</strong>实事</p>"
    assert fields["items"] == [{"label": "周期", "value": "2026-Q4"}]
    assert image == {"kind": "image", "src": "/sim/media/abc123", "alt": "图表"}
    assert note["text"] == "截止 11-30"
    assert [b["disabled"] for b in actions["buttons"]] == [False, True]
    assert actions["buttons"][0]["style"] == "primary"
    assert actions["buttons"][0]["value"] == pack(SimUnitAnswer(item=3))
    solid, short, level, due = form["inputs"]
    assert solid == {
        "kind": "text_input",
        "name": "solid",
        "label": "实事",
        "placeholder": "",
        "multiline": True,
        "required": True,
        "max_length": 300,
        "default": "",
    }
    assert short["multiline"] is False and short["placeholder"] == "简短些"
    assert level["options"] == [{"label": "高", "value": "h"}] and level["default"] == "h"
    assert due == {
        "kind": "date_picker",
        "name": "due",
        "label": "截止",
        "required": False,
        "default": "2026-12-01",
    }
    assert form["submit"]["label"] == "提交" and form["cancel"]["label"] == "稍后"
    assert SimAdapter().render(card) == out


def test_markdown_is_escaped_and_only_web_links_become_links() -> None:
    out = markdown_html(
        '<img src=x onerror="alert(1)">\n[ok](https://example.com/a)\n[bad](javascript:alert(1))'
    )
    assert "<img" not in out and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in out
    assert '<a href="https://example.com/a" target="_blank" rel="noopener noreferrer">ok</a>' in out
    assert "javascript:" in out and 'href="javascript' not in out
    assert markdown_html("- 一\n- 二\n完") == "<ul><li>一</li><li>二</li></ul><p>完</p>"
    assert markdown_html("`x<y`") == "<p><code>x&lt;y</code></p>"


# ---------------------------------------------------------------------------------------------- platform
async def test_send_many_update_and_resend_with_the_same_key() -> None:
    sim = SimAdapter()
    async with sim.conversations.subscribe("a") as queue:
        result = await sim.send_many(["a", "b", "c"], _card("第一张"), idempotency_key="k1")
        assert set(result.message_refs) == {"a", "b", "c"}
        assert len(set(result.message_refs.values())) == 3
        again = await sim.send_many(["a", "b", "c"], _card("第一张"), idempotency_key="k1")
        assert again.message_refs == result.message_refs
        assert [len(sim.conversations.messages(u)) for u in "abc"] == [1, 1, 1]

        event = queue.get_nowait()
        assert event is not None and event["type"] == "message"
        assert event["message"]["card"]["header"]["title"] == "第一张"
        assert event["message"]["sender"] == "bot"

        ref = result.message_refs["a"]
        await sim.send("a", _card("第二张"), idempotency_key="k2")
        await sim.update(ref, _card("已更新"), recipient="a")
        history = sim.conversations.messages("a")
        assert [m.card["header"]["title"] for m in history if m.card] == ["已更新", "第二张"]
        assert history[0].id == ref and history[0].version == 2
        queue.get_nowait()  # the second send
        update = queue.get_nowait()
        assert update is not None and update["type"] == "update" and update["message"]["id"] == ref
        assert queue.empty()

    with pytest.raises(PermanentError):
        await sim.update(ref, _card(), recipient="b")  # not b's message
    with pytest.raises(PermanentError):
        await sim.update("sim-999", _card(), recipient="a")


async def test_media_upload_download_and_limits() -> None:
    sim = SimAdapter()
    ref = await sim.upload_media(b"chart-bytes", filename="chart.png", mime="image/png")
    assert await sim.download_media(ref, max_bytes=100) == b"chart-bytes"
    with pytest.raises(PermanentError):
        await sim.download_media(ref, max_bytes=5)
    with pytest.raises(PermanentError):
        await sim.download_media("simimg-nothing", max_bytes=100)


async def test_closing_ends_subscriptions() -> None:
    sim = SimAdapter()
    async with sim.conversations.subscribe("a") as queue:
        await sim.on_shutdown()
        assert await asyncio.wait_for(queue.get(), 1) is None
    async with sim.conversations.subscribe("late") as queue:
        assert queue.get_nowait() is None


# ---------------------------------------------------------------------------------------------- over HTTP
@dataclass
class Harness:
    client: TestClient[Any, Any]
    service: Service
    sim: SimAdapter
    seen: list[CardAction]
    images: list[bytes]

    async def post(self, body: Any, status: int = 200) -> dict[str, Any]:
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        resp = await self.client.post(
            "/callbacks/sim", data=data, headers={"Content-Type": "application/json"}
        )
        payload: dict[str, Any] = await resp.json()
        assert resp.status == status, payload
        return payload

    async def inbound_count(self) -> int:
        async with self.service.factory() as session:
            return int(await session.scalar(select(func.count()).select_from(InboundEvent)) or 0)


def _test_router(seen: list[CardAction], images: list[bytes]) -> Router:
    router = Router()

    @router.action(SimUnitAnswer)
    async def answer(ctx: Context, payload: SimUnitAnswer) -> Reply:
        assert isinstance(ctx.event, CardAction)
        seen.append(ctx.event)
        return Reply(toast=f"收到 {payload.item}", card=_card("已处理", item=payload.item).disabled())

    @router.action(SimUnitRefuse)
    async def refuse(ctx: Context, payload: SimUnitRefuse) -> Reply:
        raise Refused("不可以", card=_card("已失效", item=payload.item).disabled())

    @router.image()
    async def image(ctx: Context, media_ref: str) -> Reply:
        images.append(await ctx.download(media_ref))
        return Reply(toast="图片已收到")

    return router


@pytest.fixture
async def harness(db_url: str, tmp_path: Path, clock: FixedClock) -> AsyncIterator[Harness]:
    settings = Settings(database={"url": db_url}, media={"dir": tmp_path / "media"}, sim={"enabled": True})
    service = build_service(settings, clock=clock)
    service.run_outbox = False  # tests drain the outbox themselves
    seen: list[CardAction] = []
    images: list[bytes] = []
    service.dispatcher.router = Router()  # only the handlers these tests are about
    service.dispatcher.router.include(help_router)
    service.dispatcher.router.include(_test_router(seen, images))
    async with service.factory() as session, session.begin():
        await seed_demo(session)
    sim = service.registry.get("sim")
    assert isinstance(sim, SimAdapter)
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(service)))
    await client.start_server()
    try:
        yield Harness(client, service, sim, seen, images)
    finally:
        await client.close()


async def test_text_reaches_the_dispatcher_and_a_resend_counts_once(harness: Harness) -> None:
    body = {"type": "text", "user": "zhoujie", "text": "/help", "client_event_id": "abcdef012345"}
    answer = await harness.post(body)
    assert answer["ok"] is True and answer["event_id"] == "sim-abcdef012345"
    await harness.post(body)  # the page resending the same submission
    await harness.service.outbox.drain()
    history = harness.sim.conversations.messages("zhoujie")
    assert [(m.sender, m.kind) for m in history] == [("user", "text"), ("bot", "card")]
    assert history[0].text == "/help"
    assert history[1].card is not None and history[1].card["header"]["title"] == "perfloop 使用帮助"
    assert await harness.inbound_count() == 1


async def test_click_with_form_updates_the_card_in_place(harness: Harness) -> None:
    await harness.sim.send("zhoujie", _card("请确认", item=9), idempotency_key="k")
    ref = harness.sim.conversations.messages("zhoujie")[0].id
    answer = await harness.post(
        {
            "type": "action",
            "user": "zhoujie",
            "value": pack(SimUnitAnswer(item=9)),
            "form": {"note": "今天完成", "tags": ["a", "b"]},
            "message_ref": ref,
        }
    )
    assert answer["toast"] == "收到 9" and answer["toast_kind"] == "success"
    event = harness.seen[0]
    assert (event.platform, event.workspace, event.sender_id) == ("sim", "sim", "zhoujie")
    assert event.form == {"note": "今天完成", "tags": ["a", "b"]} and event.message_ref == ref
    assert event.event_id.startswith("sim-") and len(event.event_id) > 20
    await harness.service.outbox.drain()
    [message] = harness.sim.conversations.messages("zhoujie")
    assert message.id == ref and message.version == 2
    assert message.card is not None and message.card["header"]["title"] == "已处理"
    assert message.card["elements"][0]["buttons"][0]["disabled"] is True


async def test_a_card_in_the_answer_replaces_the_clicked_card_at_once(harness: Harness) -> None:
    await harness.sim.send("lina", _card("旧卡片"), idempotency_key="k")
    ref = harness.sim.conversations.messages("lina")[0].id
    answer = await harness.post(
        {"type": "action", "user": "lina", "value": pack(SimUnitRefuse(item=1)), "message_ref": ref}
    )
    assert answer["toast"] == "不可以" and answer["toast_kind"] == "error"
    assert answer["card"]["header"]["title"] == "已失效"
    [message] = harness.sim.conversations.messages("lina")
    assert message.card == answer["card"] and message.version == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        ({"type": "sms", "user": "u", "text": "x"}, 400),
        ({"type": "text", "user": "u", "text": "x", "admin": True}, 400),
        ({"type": "text", "text": "x"}, 400),
        ({"type": "text", "user": "u", "text": ""}, 400),
        ({"type": "action", "user": "u", "value": "simunit.answer|{}", "form": {"a": "x" * 2001}}, 400),
        ({"type": "action", "user": "u", "value": "simunit.answer|{}", "message_ref": "../etc"}, 400),
        ({"type": "text", "user": "u", "text": "x", "client_event_id": "short"}, 400),
        ({"type": "image", "user": "u", "mime": "image/png", "data_base64": "!!!!"}, 400),
    ],
)
async def test_malformed_callbacks_are_rejected_and_leave_no_trace(
    harness: Harness, body: Any, status: int
) -> None:
    answer = await harness.post(body, status=status)
    assert answer["error"]
    assert await harness.inbound_count() == 0
    assert harness.sim.conversations.users() == []


async def test_get_on_the_callback_is_refused(harness: Harness) -> None:
    resp = await harness.client.get("/callbacks/sim")
    assert resp.status == 405


async def test_image_as_base64_and_as_multipart_reaches_handlers(harness: Harness) -> None:
    png = _png()
    await harness.post(
        {
            "type": "image",
            "user": "hanmei",
            "mime": "image/png",
            "data_base64": base64.b64encode(png).decode(),
        }
    )
    form = FormData()
    form.add_field("type", "image")
    form.add_field("user", "hanmei")
    form.add_field("file", png, filename="p.png", content_type="image/png")
    resp = await harness.client.post("/callbacks/sim", data=form)
    assert resp.status == 200, await resp.text()
    assert harness.images == [png, png]
    shown = [m for m in harness.sim.conversations.messages("hanmei") if m.kind == "image"]
    assert len(shown) == 2 and shown[0].src is not None
    served = await harness.client.get(shown[0].src)
    assert served.status == 200 and served.content_type == "image/png" and await served.read() == png

    # What the page claims is not trusted: bytes that are no image (or another type than claimed) reach the
    # flows like a platform's media, which refuse them in the person's language (issue 15 #13), and the
    # bubble serves them as what they really are, never as the claimed image type.
    for data, claimed in ((b"not a png", "image/png"), (b"<svg onload=alert(1)>", "image/svg+xml")):
        form = FormData()
        form.add_field("user", "hanmei")
        form.add_field("file", data, filename="p.png", content_type=claimed)
        resp = await harness.client.post("/callbacks/sim", data=form)
        assert resp.status == 200, await resp.text()
    assert harness.images[2:] == [b"not a png", b"<svg onload=alert(1)>"]
    shown = [m for m in harness.sim.conversations.messages("hanmei") if m.kind == "image"]
    for bubble in shown[2:]:
        assert bubble.src is not None
        served = await harness.client.get(bubble.src)
        assert served.content_type == "application/octet-stream"


async def test_page_people_messages_and_clock(harness: Harness, clock: FixedClock) -> None:
    page = await harness.client.get("/sim")
    html = await page.text()
    assert page.status == 200 and '<html lang="zh-CN">' in html and "perfloop 模拟器" in html
    assert "__SIM_BOOT__" not in html
    english = await (await harness.client.get("/sim?lang=en")).text()
    assert "perfloop simulator" in english and '<html lang="en">' in english
    assert (await harness.client.get("/sim/static/sim.js")).status == 200

    await harness.sim.send("machao", _card("给马超"), idempotency_key="k")
    people = (await (await harness.client.get("/sim/api/people")).json())["people"]
    assert len(people) == 40
    by_id = {p["user_id"]: p for p in people}
    assert by_id["machao"]["name"] == "马超" and by_id["machao"]["department"] == "研发部"
    assert by_id["machao"]["messages"] == 1 and by_id["machao"]["last"]["text"] == "给马超"
    assert by_id["zhouyaqin"]["roles"] == ["hr_admin", "manager", "employee"]
    assert by_id["liujianguo"]["department"] == ""

    messages = await (await harness.client.get("/sim/api/messages", params={"user": "machao"})).json()
    assert [m["card"]["header"]["title"] for m in messages["messages"]] == ["给马超"]
    assert (await harness.client.get("/sim/api/messages")).status == 400

    before = clock.now()
    moved = await harness.client.post("/sim/api/clock", json={"days": 3})
    assert moved.status == 200
    assert clock.now() - before == timedelta(days=3)
    assert (await moved.json())["now"] == clock.now().isoformat()
    for bad in ({"days": 0}, {"days": -1}, {"weeks": 1}, {"days": "x"}):
        resp = await harness.client.post("/sim/api/clock", json=bad)
        assert resp.status == 400, bad
    assert clock.now() - before == timedelta(days=3)


async def test_people_carry_their_zone_and_manager(harness: Harness) -> None:
    """The page shows times in the person's zone (as their cards do) and who each person reports to."""
    async with harness.service.factory() as session, session.begin():
        person = await session.scalar(select(Person).where(Person.platform_user_id == "machao"))
        assert person is not None
        person.timezone = "Europe/Berlin"
        other = await session.scalar(select(Person).where(Person.platform_user_id == "luobin"))
        assert other is not None
        other.timezone = "Mars/Olympus_Mons"  # an unknown name falls back like the cards do
    boot = await (await harness.client.get("/sim")).text()
    assert '"timezone": "Asia/Shanghai"' in boot
    people = (await (await harness.client.get("/sim/api/people")).json())["people"]
    by_id = {p["user_id"]: p for p in people}
    assert by_id["machao"]["timezone"] == "Europe/Berlin"
    assert by_id["luobin"]["timezone"] == "Asia/Shanghai"
    assert by_id["machao"]["manager"] == "黄静" and by_id["zhoujie"]["manager"] == "赵磊"
    assert by_id["liujianguo"]["manager"] is None


async def test_one_hour_forward(harness: Harness, clock: FixedClock) -> None:
    before = clock.now()
    moved = await harness.client.post("/sim/api/clock", json={"hours": 1})
    assert moved.status == 200 and clock.now() - before == timedelta(hours=1)


async def test_language_switch_changes_the_persons_cards(harness: Harness) -> None:
    switched = await harness.client.post("/sim/api/people/zhoujie/locale", json={"locale": "en"})
    assert switched.status == 200 and (await switched.json())["locale"] == "en"
    async with harness.service.factory() as session:
        person = await session.scalar(select(Person).where(Person.platform_user_id == "zhoujie"))
        assert person is not None and person.locale == "en"
    people = (await (await harness.client.get("/sim/api/people")).json())["people"]
    assert {p["user_id"]: p["locale"] for p in people}["zhoujie"] == "en"

    await harness.post({"type": "text", "user": "zhoujie", "text": "/help"})
    await harness.service.outbox.drain()
    [card] = [m.card for m in harness.sim.conversations.messages("zhoujie") if m.card is not None]
    assert card["header"]["title"] == "perfloop help"

    back = await harness.client.post("/sim/api/people/zhoujie/locale", json={"locale": "zh-CN"})
    assert (await back.json())["locale"] == "zh-CN"
    for path, body, status in (
        ("/sim/api/people/zhoujie/locale", {"locale": "fr"}, 400),
        ("/sim/api/people/zhoujie/locale", {"locale": "en", "x": 1}, 400),
        ("/sim/api/people/nobody/locale", {"locale": "en"}, 404),
    ):
        resp = await harness.client.post(path, json=body)
        assert resp.status == status, (path, body)


async def _next_event(resp: Any) -> tuple[str, Any]:
    name = ""
    while True:
        line = (await asyncio.wait_for(resp.content.readline(), 5)).decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name:
            return name, json.loads(line.removeprefix("data: "))


async def test_stream_pushes_new_and_updated_messages(harness: Harness) -> None:
    resp = await harness.client.get("/sim/api/stream", params={"user": "zhoujie"})
    assert resp.content_type == "text/event-stream"
    assert (await _next_event(resp))[0] == "ready"
    result = await harness.sim.send("zhoujie", _card("推送"), idempotency_key="k")
    await harness.sim.send("lina", _card("别人的"), idempotency_key="k2")
    name, data = await _next_event(resp)
    assert name == "message" and data["message"]["card"]["header"]["title"] == "推送"
    await harness.sim.update(result.message_refs["zhoujie"], _card("改了"), recipient="zhoujie")
    name, data = await _next_event(resp)
    assert name == "update" and data["message"]["card"]["header"]["title"] == "改了"
    assert data["message"]["version"] == 2

    started = time.monotonic()
    await harness.client.close()  # shutdown must not wait for the open stream
    assert time.monotonic() - started < 5


async def test_list_org_reads_back_the_seeded_workspace(harness: Harness) -> None:
    org = await harness.sim.list_org()
    assert len(org.members) == 40
    assert {d.name for d in org.departments} == {"研发部", "销售部", "市场部", "职能部"}
    rnd = next(d for d in org.departments if d.name == "研发部")
    assert rnd.leader_ids == ["wangzhiqiang"]
    zhoujie = next(m for m in org.members if m.user_id == "zhoujie")
    assert zhoujie.manager_id == "zhaolei" and zhoujie.department_ids == ["rnd"]

    # The org sync job reads the simulator's org back: applying it must change nobody.
    async with harness.service.factory() as session:
        before = {
            p.platform_user_id: (p.manager_id, p.hrbp_id, p.department_id, p.roles, p.active)
            for p in await session.scalars(select(Person))
        }
    async with harness.service.factory() as session, session.begin():
        ws = await session.scalar(select(Workspace).where(Workspace.platform == "sim"))
        assert ws is not None
        report = await apply_org(session, ws, org, default_timezone="Asia/Shanghai", default_locale="zh-CN")
    assert report.people_added == report.people_deactivated == report.departments_added == 0
    async with harness.service.factory() as session:
        after = {
            p.platform_user_id: (p.manager_id, p.hrbp_id, p.department_id, p.roles, p.active)
            for p in await session.scalars(select(Person))
        }
    assert after == before


async def test_stored_media_is_served_by_sha256(harness: Harness) -> None:
    """Evidence photos and charts live in the app's media store; the page loads them by their sha256."""
    png = _png()
    store = MediaStore(harness.service.settings.media.dir, max_bytes=10**6)
    stored = await store.store_image(png)
    resp = await harness.client.get(f"/sim/media/{stored.info.sha256}")
    assert resp.status == 200 and await resp.read() == png
    assert (await harness.client.get(f"/sim/media/{'0' * 64}")).status == 404
    assert (await harness.client.get("/sim/media/simimg-unknown")).status == 404


async def test_disabled_simulator_exposes_nothing(db_url: str, tmp_path: Path) -> None:
    settings = Settings(database={"url": db_url}, media={"dir": tmp_path}, sim={"enabled": False})
    service = build_service(settings)
    service.run_outbox = False
    async with TestClient(TestServer(create_app(service))) as client:
        for path in ("/sim", "/sim/api/people", "/sim/static/sim.js", "/sim/api/clock"):
            assert (await client.get(path)).status == 404, path
        assert (
            await client.post("/callbacks/sim", json={"type": "text", "user": "u", "text": "x"})
        ).status == 404
        assert (await client.post("/sim/api/clock", json={"days": 1})).status == 404
