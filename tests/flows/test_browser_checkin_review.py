"""The flows in real headless Chromium on the simulator: HR kicks off a cycle; an employee and their manager
go through check-in → acknowledge and 3-2-1 → action item, every click through the page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from bot.core.context import Context
from handlers.checkin.checkin import open_checkin
from handlers.review321.review321 import open_review
from storage.models import ActionItem, CheckIn, Cycle, CycleParticipant, Review321
from tests.support.browser import SimServer, eventually

pytestmark = pytest.mark.browser

DUE = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


async def _as(sim_server: SimServer, user_id: str, fn: Callable[[Context], Awaitable[None]]) -> None:
    person = await sim_server.person(user_id)
    await sim_server.service.dispatcher.run_for_person(person.id, fn)
    sim_server.service.outbox.notify()


async def test_hr_kicks_off_a_cycle_from_the_simulator(sim_server: SimServer, sim_page: Page) -> None:
    page = sim_page
    await sim_server.open_chat(page, "zhouyaqin")  # the demo's HR admin
    await page.locator("#text").fill("/kickoff 2026-Q1 研发部")
    await page.locator("#text").press("Enter")
    preview = sim_server.card(page, "确认启动考核周期 2026-Q1")
    await expect(preview).to_contain_text("14")  # 研发部 head-count in the demo organisation
    await preview.get_by_role("button", name="确认启动").click()
    await expect(page.locator(".toast.success")).to_contain_text("已通知 14 人")
    await expect(preview.get_by_role("button", name="确认启动")).to_be_disabled()

    async with sim_server.service.factory() as session:
        cycle = await session.scalar(select(Cycle).where(Cycle.code == "2026-Q1"))
        assert cycle is not None and cycle.status == "active"
        assert len(list(await session.scalars(select(CycleParticipant.id)))) == 14

    await sim_server.open_chat(page, "zhoujie")
    kickoff = sim_server.card(page, "考核周期 2026-Q1 开始了")
    await kickoff.get_by_role("button", name="知道了").click()
    await expect(kickoff.get_by_role("button", name="知道了")).to_be_disabled()


async def test_checkin_then_acknowledge(sim_server: SimServer, sim_page: Page) -> None:
    page = sim_page

    async def start(ctx: Context) -> None:
        assert await open_checkin(ctx, period="2026-11-27", due_at=DUE) is not None

    await _as(sim_server, "zhoujie", start)
    await sim_server.open_chat(page, "zhoujie")
    card = sim_server.card(page, "进度对话 · 2026-11-27")
    await card.locator('select[name="goal_overall"]').select_option("70")
    await card.locator('textarea[name="obstacles"]').fill("支付回调联调等运维开白名单")
    await card.locator('textarea[name="support"]').fill("请帮忙催一下运维")
    await card.get_by_role("button", name="提交").click()
    await expect(page.locator(".toast.success")).to_contain_text("已通知上级")
    await expect(sim_server.card(page, "进度已提交 · 2026-11-27")).to_contain_text("70%")

    await sim_server.open_chat(page, "zhaolei")  # 周杰's manager
    summary = sim_server.card(page, "周杰 的进度对话 · 2026-11-27")
    await expect(summary).to_contain_text("支付回调联调等运维开白名单")
    await expect(summary.get_by_role("button")).to_have_count(1)  # one way to answer (issue 15 #9)
    await expect(summary.locator('select[name="decision"]')).to_have_value("acknowledged")
    await summary.get_by_role("button", name="发送回复").click()
    await expect(page.locator(".toast.success")).to_contain_text("已阅")
    await expect(summary.get_by_role("button", name="发送回复")).to_have_count(0)
    await expect(summary).to_contain_text("赵磊")

    async with sim_server.service.factory() as session:
        checkin = await session.scalar(select(CheckIn))
        assert checkin is not None and checkin.status == "acknowledged"

    await sim_server.open_chat(page, "zhoujie")
    await expect(sim_server.card(page, "上级已回复你的进度对话 · 2026-11-27")).to_contain_text("赵磊 已阅")


async def test_review_321_becomes_an_action_item(sim_server: SimServer, sim_page: Page) -> None:
    page = sim_page

    async def start(ctx: Context) -> None:
        assert await open_review(ctx, period="2026-11", due_at=DUE) is not None

    await _as(sim_server, "zhoujie", start)
    await sim_server.open_chat(page, "zhoujie")
    card = sim_server.card(page, "3-2-1 月度复盘 · 2026-11")
    await card.locator('textarea[name="solid_action"]').fill("把发布检查单做成模板")
    await card.locator('textarea[name="change_brought"]').fill("回滚次数从 3 次降到 0 次")
    await card.locator('textarea[name="blocker"]').fill("测试环境经常被占用")
    await card.locator('textarea[name="new_action"]').fill("每天站会后 10 分钟同步测试环境排期")
    await card.locator('input[name="deadline"]').fill("2026-12-04")
    await card.get_by_role("button", name="提交").click()
    await expect(page.locator(".toast.success")).to_contain_text("已通知上级")

    await sim_server.open_chat(page, "zhaolei")
    review = sim_server.card(page, "周杰 的 3-2-1 复盘 · 2026-11")
    await review.locator('input[name="deadline"]').fill("2026-12-11")
    await review.get_by_role("button", name="确认并生成行动项").click()
    await expect(page.locator(".toast.success")).to_contain_text("行动项已生成")

    async def item_created() -> bool:
        async with sim_server.service.factory() as session:
            return await session.scalar(select(ActionItem.id)) is not None

    await eventually(item_created)
    manager = await sim_server.person("zhaolei")
    async with sim_server.service.factory() as session:
        item = await session.scalar(select(ActionItem))
        row = await session.scalar(select(Review321))
        assert item is not None and row is not None
        assert (item.source, item.deliverable, item.deadline.isoformat()) == (
            "review",
            "每天站会后 10 分钟同步测试环境排期",
            "2026-12-11",
        )
        assert row.action_item_id == item.id and row.status == "confirmed"
        assert item.acceptor_id == manager.id

    await sim_server.open_chat(page, "zhoujie")
    await expect(sim_server.card(page, "复盘已确认，新的行动项 · 2026-11")).to_contain_text("2026-12-11")
