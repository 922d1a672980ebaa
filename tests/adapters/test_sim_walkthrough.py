"""The README's demo walk-through, step by step, in headless Chromium (issue 15: "a browser test walks the
README's demo steps and checks the cards named above").

Every step is what a visitor does on the page: pick the person the README names, type the command it
gives, tap or choose what it says. The scheduler's tick, which the demo runs every few seconds, is run
directly after each fast-forward. Other work changes the cards' wording, so the checks hold to what the
README names: who gets a card, which choices it offers, what lands in the database, where a chart is.
"""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image as PILImage
from playwright.async_api import FilePayload, Locator, Page, expect
from sqlalchemy import func, select

from bot.app.demo import current_quarter, play_peer_round
from bot.app.flows import SCHEDULE
from bot.core.localtime import local_today
from scheduler.jobs import SchedulerRunner
from scheduler.table import JobTable
from storage.models import ActionItem, CheckIn, Cycle, CycleParticipant, Evidence, Goal, Person
from tests.support.browser import SimServer, eventually

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CONCRETE = "周四 15:00 前把支付回调压测脚本跑通，并把报告发到群里"
"""Free text that a vague-comment guard has no reason to bounce: an actor, a time, a deliverable."""


class Walk:
    """The page, acting as one person after another."""

    def __init__(self, server: SimServer, page: Page) -> None:
        self.server = server
        self.page = page
        self.runner = SchedulerRunner(server.service, JobTable([*SCHEDULE]))

    async def as_person(self, user_id: str) -> None:
        person = await self.server.person(user_id)
        await self.page.locator(f'li.person[data-user="{user_id}"]').click()
        await expect(self.page.locator("#acting-as")).to_contain_text(person.name)
        await self.page.locator('body[data-stream="open"]').wait_for()

    async def say(self, text: str) -> None:
        before = await self.page.locator(".msg.user .bubble").count()
        await self.page.locator("#text").fill(text)
        await self.page.locator("#text").press("Enter")
        await expect(self.page.locator(".msg.user .bubble")).to_have_count(before + 1)

    def cards(self, title: str = "") -> Locator:
        """Bot cards whose title contains ``title`` (CSS ``*=""`` would match none, so no title = all)."""
        return self.page.locator(f'.msg.bot .card[data-title*="{title}"]' if title else ".msg.bot .card")

    def card(self, *, title: str = "", has: str = "") -> Locator:
        """The newest bot card whose title contains ``title`` and which contains ``has`` (a selector)."""
        cards = self.cards(title)
        if has:
            cards = cards.filter(has=self.page.locator(has))
        return cards.last

    def offering(self, choice: str, *, title: str = "") -> Locator:
        """The newest card offering ``choice``, as a button or as an option of a select."""
        return (
            self.cards(title)
            .filter(has=self.page.locator(f'button:text-is("{choice}"), option:text-is("{choice}")'))
            .last
        )

    async def choose(self, card: Locator, choice: str, fill: dict[str, str] | None = None) -> None:
        """Tap ``choice``, or pick it in the card's select, fill the rest and submit: one way per card."""
        button = card.locator(f'button:text-is("{choice}")')
        if await button.count():
            before = await self.page.locator(".toast").count()
            await button.first.click()
            await expect(self.page.locator(".toast")).not_to_have_count(before)  # the click was answered
            return
        picker = card.locator("select").filter(has=self.page.locator(f'option:text-is("{choice}")'))
        await picker.first.select_option(label=choice)
        await self.submit(card, fill or {})

    async def submit(self, card: Locator, fill: dict[str, str]) -> None:
        form = card.locator("form").first
        for name, value in fill.items():
            field = form.locator(f'[name="{name}"]')
            if await field.evaluate("f => f.tagName") == "SELECT":
                await field.select_option(value)
            else:
                await field.fill(value)
        for choice in await form.locator("select:not([multiple])").all():
            if not await choice.input_value():
                options = await choice.locator("option").all()
                await choice.select_option(index=min(4, len(options) - 1))
        for text in await form.locator("textarea, input[type=text]").all():
            if await text.get_attribute("required") is not None and not await text.input_value():
                await text.fill(CONCRETE)
        await form.locator(".buttons button").first.click()

    async def fast_forward_week(self) -> None:
        await self.page.locator("#ff-week").click()
        await expect(self.page.locator(".toast.success").last).to_be_visible()
        await self.runner.beat()

    async def count(self, model: type[object], *where: object) -> int:
        async with self.server.service.factory() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _photo() -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (64, 48), (30, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


async def test_the_readme_walk_through(sim_server: SimServer, sim_page: Page) -> None:
    service = sim_server.service
    walk = Walk(sim_server, sim_page)
    await walk.runner.elect()
    today = local_today(service.clock.now(), service.settings.schedule.default_timezone)
    cycle = current_quarter(today)
    zhoujie, zhaolei = await sim_server.person("zhoujie"), await sim_server.person("zhaolei")
    await sim_page.goto(sim_server.sim_url)

    # 1. 周雅琴 (HR admin): /kickoff <this quarter>, confirm the preview → everyone gets the kickoff card.
    await walk.as_person("zhouyaqin")
    await walk.say(f"/kickoff {cycle}")
    preview = walk.card(title=cycle)
    await expect(preview.locator(".btn.primary")).to_be_enabled()
    await preview.locator(".btn.primary").first.click()

    async def started() -> bool:
        return await walk.count(CycleParticipant) == 40

    await eventually(started)
    async with service.factory() as session:
        row = await session.scalar(select(Cycle).where(Cycle.code == cycle))
    assert row is not None and row.status == "active"

    # 2. 周杰: 知道了 on the kickoff card, then /goals and /checkin, filled in and submitted.
    await walk.as_person("zhoujie")
    await walk.choose(walk.offering("知道了", title=cycle), "知道了")
    await walk.say("/goals")
    goals = walk.card(has='form[data-form="goals"]')
    await walk.submit(
        goals,
        {
            "objective_1": "支付回调稳定可靠",
            "key_results_1": "12 月 20 日前把支付回调失败率从 0.8% 降到 0.1%",
            "weight_1": "100",
        },
    )

    async def goals_in() -> bool:
        return await walk.count(Goal, Goal.person_id == zhoujie.id) == 1

    await eventually(goals_in)

    # 3. 赵磊: confirm 周杰's goals (the check-in then asks per goal), and answer the check-in.
    await walk.as_person("zhaolei")
    await walk.choose(walk.offering("确认目标", title="周杰"), "确认目标")
    await expect(sim_page.locator(".toast").last).to_be_visible()
    await walk.as_person("zhoujie")
    await walk.say("/checkin")
    checkin = walk.card(has='form[data-form="checkin"]')
    await expect(checkin).to_be_visible()
    await walk.submit(checkin, {})

    async def checked_in() -> bool:
        return await walk.count(CheckIn, CheckIn.person_id == zhoujie.id, CheckIn.status != "open") == 1

    await eventually(checked_in)

    await walk.as_person("zhaolei")
    summary = walk.offering("需要 1:1 跟进", title="周杰")
    await expect(summary).to_contain_text("已阅")  # both choices the README names are on the card
    await walk.choose(summary, "需要 1:1 跟进", {"comment": CONCRETE})

    async def follow_up() -> bool:
        return await walk.count(ActionItem, ActionItem.owner_id == zhaolei.id) == 1

    await eventually(follow_up)

    # 4. 赵磊: /evidence @周杰 → 周杰 sends a photo with 📷 → 赵磊 rates it 达标 / 待提升 / 需支持.
    await walk.say("/evidence @周杰")
    await walk.as_person("zhoujie")
    await expect(walk.card(title="照片")).to_be_visible()
    await sim_page.locator("#upload").set_input_files(
        files=[FilePayload(name="photo.png", mimeType="image/png", buffer=_photo())]
    )
    await expect(sim_page.locator(".msg.user img")).to_have_count(1)
    await walk.as_person("zhaolei")
    rating = walk.offering("达标")
    await expect(rating.locator("img")).to_have_count(1)
    for choice in ("待提升", "需支持"):
        offered = rating.locator(f'button:text-is("{choice}"), option:text-is("{choice}")')
        await expect(offered).to_have_count(1)
    await walk.choose(rating, "达标")

    async def rated() -> bool:
        return await walk.count(Evidence, Evidence.rating == "meets") == 1

    await eventually(rated)

    # 5. 赵磊 gives 周杰 an action item due in a few days; a week on, 周杰 and 赵磊 hear it is overdue,
    #    a week later the HRBP 孙丽; the leaders get the daily digest with its trend chart.
    deadline = (today + timedelta(days=3)).isoformat()
    await walk.say(f"/action @周杰 {deadline} 提交压测报告")

    async def assigned() -> bool:
        return await walk.count(ActionItem, ActionItem.owner_id == zhoujie.id) == 1

    await eventually(assigned)
    await walk.fast_forward_week()
    await walk.as_person("zhoujie")
    await expect(walk.card(title="逾期")).to_be_visible()
    await walk.as_person("zhaolei")
    await expect(walk.card(title="逾期")).to_be_visible()
    await walk.fast_forward_week()
    await walk.as_person("sunli")
    await expect(walk.card(title="逾期")).to_be_visible()
    for leader in ("liujianguo", "chensiyuan"):
        await walk.as_person(leader)
        await expect(walk.card(has="img")).to_be_visible()  # the digest, with its trend chart

    # 6. --peer-round: this quarter's cycle (already started in step 1), one round for 周杰; 赵磊 sees the
    #    aggregate card with the radar chart, 周杰 his own summary with /feedback.
    await play_peer_round(service, asyncio.Event())
    service.outbox.notify()
    await walk.as_person("zhaolei")
    aggregate = walk.card(title="周杰", has="img")
    await expect(aggregate).to_be_visible()
    await expect(aggregate).to_contain_text(cycle)
    await walk.as_person("zhoujie")
    await walk.say("/feedback")
    await expect(walk.card(title=cycle, has="img")).to_be_visible()
    async with service.factory() as session:
        codes = list(await session.scalars(select(Cycle.code)))
        assert await session.scalar(select(Person.locale).where(Person.id == zhoujie.id)) == "zh-CN"
    assert codes == [cycle]  # the round ran in the current cycle, not in one made up beside it


def test_the_readme_names_this_quarter_and_whom_to_look_at() -> None:
    """The walk-through the browser test follows is the README's: this quarter's cycle, named people."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    walk = readme[readme.index("A walk through the demo") : readme.index("`make test` needs PostgreSQL")]
    assert "this quarter" in walk and "/kickoff " in walk
    for name in ("周雅琴", "周杰", "赵磊", "孙丽", "刘建国"):
        assert name in walk, name
    peer_step = walk.split("\n6. ", 1)[1]
    assert "--peer-round" in peer_step and "赵磊" in peer_step
