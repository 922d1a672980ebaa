"""The simulator in real headless Chromium: pick a person, get a card, fill it in, see the follow-up live."""

from __future__ import annotations

import struct
import time
import zlib
from datetime import timedelta

import pytest
from playwright.async_api import Browser, FilePayload, Page, expect
from sqlalchemy import select

from bot.core.context import Context, Reply
from bot.core.router import Router
from cards.actions import Action, action, pack
from cards.model import (
    Actions,
    Button,
    Card,
    DatePicker,
    Fields,
    Form,
    Header,
    KeyValue,
    Markdown,
    Option,
    Select,
    TextInput,
)
from storage.models import InboundEvent, Person
from tests.support.browser import PAGE_TIMEOUT_MS, SimServer, eventually

pytestmark = pytest.mark.browser


@action("simtest.report")
class SimTestReport(Action):
    ticket: int


router = Router()


@router.action(SimTestReport)
async def report(ctx: Context, payload: SimTestReport) -> Reply:
    assert ctx.event is not None and ctx.event.kind == "card_action"
    form = ctx.event.form
    ctx.outbox.send(
        ctx.person,
        Card(
            header=Header(title="已收到进展", colour="green"),
            elements=[
                Fields(
                    items=[
                        KeyValue(label="工单", value=str(payload.ticket)),
                        KeyValue(label="进展", value=str(form["progress"])),
                        KeyValue(label="心情", value=str(form.get("mood", ""))),
                        KeyValue(label="日期", value=str(form.get("due", ""))),
                    ]
                )
            ],
        ),
    )
    done = Card(
        header=Header(title="本周进展", colour="grey"),
        elements=[
            Markdown(text=f"{ctx.person.name} 已提交"),
            Actions(buttons=[_submit(payload.ticket, True)]),
        ],
    )
    return Reply(toast="提交成功", card=done)


def _submit(ticket: int, disabled: bool = False) -> Button:
    return Button(label="提交", value=pack(SimTestReport(ticket=ticket)), style="primary", disabled=disabled)


def _form_card(ticket: int) -> Card:
    return Card(
        header=Header(title="本周进展", subtitle="请在周五前填写"),
        elements=[
            Markdown(text="**本周**做了什么？<script>alert(1)</script>"),
            Form(
                name="weekly",
                inputs=[
                    TextInput(name="progress", label="进展", multiline=True, required=True),
                    Select(
                        name="mood",
                        label="心情",
                        options=[Option(label="顺利", value="good"), Option(label="有阻碍", value="blocked")],
                    ),
                    DatePicker(name="due", label="下次检查"),
                ],
                submit=_submit(ticket),
            ),
        ],
    )


@pytest.fixture
def sim_routers() -> list[Router]:
    return [router]


async def test_pick_person_fill_form_and_see_follow_up_live(sim_server: SimServer, sim_page: Page) -> None:
    started = time.monotonic()
    page = sim_page
    await page.goto(sim_server.sim_url)
    await expect(page.locator("li.person")).to_have_count(40)
    await page.locator("#search").fill("研发")
    await expect(page.locator("li.person")).to_have_count(14)
    await page.locator('li.person[data-user="zhoujie"]').click()
    await page.locator('body[data-stream="open"]').wait_for()
    await expect(page.locator("#acting-as")).to_contain_text("周杰")

    await sim_server.push("zhoujie", _form_card(7))
    card = sim_server.card(page, "本周进展")
    await expect(card).to_be_visible()
    # Markdown is rendered, never executed: the script tag shows as text.
    await expect(card.locator(".md strong")).to_have_text("本周")
    await expect(card.locator(".md")).to_contain_text("<script>")

    submit = card.get_by_role("button", name="提交")
    await submit.click()  # empty required input: refused on the page, nothing posted
    await expect(page.locator(".toast.warning")).to_contain_text("进展")

    await card.locator('textarea[name="progress"]').fill("完成了登录页重构")
    await card.locator('select[name="mood"]').select_option("blocked")
    await card.locator('input[name="due"]').fill("2026-12-04")
    await submit.click()

    follow_up = sim_server.card(page, "已收到进展")
    await expect(follow_up).to_contain_text("完成了登录页重构")
    await expect(follow_up).to_contain_text("blocked")
    await expect(follow_up).to_contain_text("2026-12-04")
    await expect(page.locator(".toast.success")).to_have_text("提交成功")
    # The clicked card was replaced in place: same message, no form, the button greyed out.
    original = page.locator(".msg.bot").first
    await expect(original.locator(".md")).to_contain_text("周杰 已提交")
    await expect(original.locator("form")).to_have_count(0)
    await expect(original.get_by_role("button", name="提交")).to_be_disabled()
    await expect(page.locator(".msg.bot")).to_have_count(2)

    # Everything arrived over the live stream: the page was never reloaded.
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert time.monotonic() - started < 20


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"\x00\xff\x00\x00"  # one red pixel
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


async def test_typing_and_uploading_go_through_the_dispatcher(sim_server: SimServer, sim_page: Page) -> None:
    page = sim_page
    await sim_server.open_chat(page, "lina")
    await expect(page.locator(".chat .placeholder")).to_be_visible()

    await page.locator("#text").fill("/help")
    await page.locator("#text").press("Enter")
    await expect(page.locator(".msg.user .bubble")).to_have_text("/help")
    await expect(sim_server.card(page, "perfloop 使用帮助")).to_be_visible()

    png = _png()
    await page.locator("#upload").set_input_files(
        files=[FilePayload(name="photo.png", mimeType="image/png", buffer=png)]
    )
    image = page.locator(".msg.user img")
    await expect(image).to_have_count(1)
    src = await image.get_attribute("src")
    assert src is not None and src.startswith("/sim/media/simimg-")
    # The bytes the page uploaded are what a handler downloads through the adapter.
    assert await sim_server.adapter.download_media(src.rsplit("/", 1)[1], max_bytes=10_000) == png
    assert await image.evaluate("img => img.complete && img.naturalWidth") == 1

    async def image_dispatched() -> bool:
        async with sim_server.service.factory() as session:
            kinds = await session.scalars(select(InboundEvent.kind))
            return "image" in kinds.all()

    await eventually(image_dispatched)


async def test_fast_forward_moves_the_service_clock(sim_server: SimServer, sim_page: Page) -> None:
    before = sim_server.service.clock.now()
    await sim_page.goto(sim_server.sim_url)
    await sim_page.locator("#ff-week").click()
    await expect(sim_page.locator(".toast.success")).to_be_visible()
    assert (sim_server.service.clock.now() - before).days == 7


# ------------------------------------------------ issue 15 #17: the person's zone, +1 hour, language


async def test_times_are_the_persons_zone_not_the_browsers(sim_server: SimServer, browser: Browser) -> None:
    """The browser sits in New York; 周杰 lives in Shanghai and 马超 in Berlin: the page shows their times."""
    async with sim_server.service.factory() as session, session.begin():
        machao = await session.scalar(select(Person).where(Person.platform_user_id == "machao"))
        assert machao is not None
        machao.timezone = "Europe/Berlin"
    context = await browser.new_context(locale="zh-CN", timezone_id="America/New_York")
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = await context.new_page()
    try:
        await sim_server.open_chat(page, "zhoujie")  # the clock is 2026-11-24 02:00 UTC
        await expect(page.locator("#clock-now")).to_contain_text("10:00")
        await expect(page.locator("#clock-zone")).to_have_text("Asia/Shanghai")
        await page.locator("#text").fill("/help")
        await page.locator("#text").press("Enter")
        await expect(page.locator(".msg.user time")).to_contain_text("10:00")

        await page.locator('li.person[data-user="machao"]').click()
        await expect(page.locator("#clock-now")).to_contain_text("03:00")
        await expect(page.locator("#clock-zone")).to_have_text("Europe/Berlin")
    finally:
        await context.close()


async def test_one_hour_forward_and_the_manager_in_the_picker(sim_server: SimServer, sim_page: Page) -> None:
    before = sim_server.service.clock.now()
    await sim_server.open_chat(sim_page, "zhoujie")
    await expect(sim_page.locator('li.person[data-user="zhoujie"] .dept')).to_contain_text("赵磊")
    await expect(sim_page.locator('li.person[data-user="zhaolei"] .dept')).to_contain_text("王志强")
    await sim_page.locator("#ff-hour").click()
    await expect(sim_page.locator(".toast.success")).to_be_visible()
    assert sim_server.service.clock.now() - before == timedelta(hours=1)
    await expect(sim_page.locator("#clock-now")).to_contain_text("11:00")


async def test_a_person_switches_to_english_cards_included(sim_server: SimServer, sim_page: Page) -> None:
    page = sim_page
    await sim_server.open_chat(page, "zhoujie")
    await page.locator("#lang").click()
    await expect(page.locator(".toast.success")).to_contain_text("English")
    await expect(page.locator("#send")).to_have_text("Send")  # the page chrome…
    assert (await sim_server.person("zhoujie")).locale == "en"
    await page.locator("#text").fill("/help")
    await page.locator("#text").press("Enter")
    await expect(sim_server.card(page, "perfloop help")).to_be_visible()  # …and the cards
    await expect(page.locator("#lang")).to_have_text("Switch to 中文")

    await page.reload()  # the choice outlives a reload: it is the person's, in the database
    await page.locator('body[data-stream="open"]').wait_for()
    await expect(page.locator("#lang")).to_have_text("Switch to 中文")
