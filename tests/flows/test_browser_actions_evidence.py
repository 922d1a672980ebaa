"""Flows II in real headless Chromium on the simulator: a manager asks for a photo, the employee uploads
one from the page, the manager sees it and rates it; the clock is fast-forwarded from the page and the
overdue item escalates; a leader's digest arrives with its trend chart."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Page, expect
from sqlalchemy import select

from bot.app.flows import SCHEDULE
from handlers.digest.digest import send_digest
from scheduler.engine import Scheduler
from scheduler.table import JobTable
from storage.models import ActionItem, Evidence
from tests.support.browser import SimServer, eventually

pytestmark = pytest.mark.browser


def photo(tmp_path: Path) -> Path:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 200)).save(buf, format="JPEG")
    path = tmp_path / "shelf.jpg"
    path.write_bytes(buf.getvalue())
    return path


async def say(page: Page, text: str) -> None:
    await page.locator("#text").fill(text)
    await page.locator("#text").press("Enter")


async def test_photo_rated_item_escalated_and_digest_with_chart(
    sim_server: SimServer, sim_page: Page, tmp_path: Path
) -> None:
    page, service = sim_page, sim_server.service
    # The manager creates an action item due tomorrow and asks for a photo of it.
    await sim_server.open_chat(page, "zhaolei")
    await say(page, "/action @周杰 2026-11-25 整理 A/B 测试报告并发到群里")
    await expect(page.get_by_text("已创建行动项")).to_be_visible()

    async def item_exists() -> bool:
        async with service.factory() as s:
            return await s.scalar(select(ActionItem.id)) is not None

    await eventually(item_exists)
    async with service.factory() as s:
        item = (await s.scalars(select(ActionItem))).one()
    await say(page, f"/evidence @周杰 {item.id}")

    # The employee gets the request and uploads a photo from the page.
    await sim_server.open_chat(page, "zhoujie")
    await expect(sim_server.card(page, "请发送关键动作照片")).to_be_visible()
    await page.locator("#upload").set_input_files(str(photo(tmp_path)))

    async def stored() -> bool:
        async with service.factory() as s:
            return await s.scalar(select(Evidence.id)) is not None

    await eventually(stored, timeout=10)

    # The manager sees the photo itself on the rating card and rates it.
    await sim_server.open_chat(page, "zhaolei")
    rating = sim_server.card(page, "请评价行动照片")
    await expect(rating.locator("img")).to_be_visible()
    assert await rating.locator("img").evaluate("img => img.naturalWidth") == 64
    # One way to rate: the form (rating + comment + submit), no duplicate one-tap buttons.
    assert await rating.get_by_role("button", name="达标").count() == 0
    await rating.locator('select[name="rating"]').select_option("meets")
    await rating.locator('textarea[name="comment"]').fill("A 区 12 个价签全部到位")
    await rating.get_by_role("button", name="提交评价").click()

    async def rated() -> bool:
        async with service.factory() as s:
            return await s.scalar(select(Evidence.rating)) == "meets"

    await eventually(rated)
    await expect(sim_server.card(page, "行动照片已评价")).to_be_visible()
    await sim_server.open_chat(page, "zhoujie")
    await expect(sim_server.card(page, "你的行动照片：达标")).to_be_visible()
    await expect(sim_server.card(page, "关键动作照片已收到")).to_be_visible()

    # Fast-forward from the page: the deadline passes, the scheduler's ticks escalate the item.
    scheduler = Scheduler(service, JobTable(SCHEDULE))
    for _ in range(3):
        before = service.clock.now()
        await page.locator("#ff-day").click()

        async def advanced(before: object = before) -> bool:
            return service.clock.now() > before  # type: ignore[operator]

        await eventually(advanced, timeout=15)
        await scheduler.tick()
        service.outbox.notify()
    await sim_server.open_chat(page, "zhoujie")
    await expect(sim_server.card(page, "行动项已逾期")).to_be_visible()
    await sim_server.open_chat(page, "zhaolei")
    await expect(sim_server.card(page, "团队成员的行动项逾期")).to_be_visible()

    # A leader's digest carries the rendered trend chart.
    leader = await sim_server.person("liujianguo")
    await service.dispatcher.run_for_person(leader.id, lambda ctx: send_digest(ctx, day=ctx.now.date()))
    service.outbox.notify()
    await sim_server.open_chat(page, "liujianguo")
    chart = page.locator(".msg.bot .card img").last
    await expect(chart).to_be_visible()
    assert await chart.evaluate("img => img.naturalWidth") > 200
