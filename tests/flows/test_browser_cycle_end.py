"""Issue 20, "Done when": in real headless Chromium on the simulator, HR releases the grades and closes the
cycle after its preview, an employee appeals from their grade card, the HRBP changes the grade on the
appeal card, and the employee sees the change."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from storage.models import Cycle, CycleParticipant, Goal, Grade, GradeAppeal
from tests.support.browser import SimServer, eventually

pytestmark = pytest.mark.browser

CODE = "2026-Q4"


async def say(page: Page, text: str) -> None:
    await page.locator("#text").fill(text)
    await page.locator("#text").press("Enter")


async def seed_cycle(sim_server: SimServer) -> int:
    """An active cycle for two of 赵磊's reports, goals confirmed, grades proposed by 赵磊."""
    zhoujie = await sim_server.person("zhoujie")
    wuhao = await sim_server.person("wuhao")
    zhaolei = await sim_server.person("zhaolei")
    async with sim_server.service.factory() as s, s.begin():
        cycle = Cycle(
            workspace_id=zhoujie.workspace_id,
            code=CODE,
            status="active",
            starts_on=date(2026, 10, 1),
            ends_on=date(2026, 12, 31),
            started_at=datetime(2026, 10, 1, tzinfo=UTC),
        )
        s.add(cycle)
        await s.flush()
        for person, grade in ((zhoujie, "C"), (wuhao, "B")):
            s.add(CycleParticipant(cycle_id=cycle.id, person_id=person.id, goals_status="confirmed"))
            s.add(Goal(cycle_id=cycle.id, person_id=person.id, objective="A/B 测试平台上线", weight=100))
            s.add(
                Grade(
                    cycle_id=cycle.id,
                    person_id=person.id,
                    department_id=person.department_id,
                    grade=grade,
                    reason="平台按期上线，但两次回滚",
                    proposed_by_id=zhaolei.id,
                )
            )
        return cycle.id


async def test_close_appeal_change_seen(sim_server: SimServer, sim_page: Page) -> None:
    page, service = sim_page, sim_server.service
    cycle_id = await seed_cycle(sim_server)

    # HR releases the grades (after the confirmation) and closes the cycle after its preview.
    await sim_server.open_chat(page, "zhouyaqin")
    await say(page, "/grades")
    dist = sim_server.card(page, f"{CODE} 评级分布")
    await dist.get_by_role("button", name="发布结果…").click()
    confirm = sim_server.card(page, f"确认发布 {CODE} 绩效结果？")
    await confirm.get_by_role("button", name="确认发布 2 人").click()

    async def released() -> bool:
        async with service.factory() as s:
            return set(await s.scalars(select(Grade.status))) == {"released"}

    await eventually(released)
    await say(page, f"/closecycle {CODE}")
    preview = sim_server.card(page, f"结束考核周期 {CODE}")
    await expect(preview).to_be_visible()
    await preview.get_by_role("button", name="结束并顺延未完成事项").click()
    final = sim_server.card(page, f"确认结束考核周期 {CODE}？")
    await final.get_by_role("button", name="确认结束").click()

    async def closed() -> bool:
        async with service.factory() as s:
            return await s.scalar(select(Cycle.status).where(Cycle.id == cycle_id)) == "closed"

    await eventually(closed)

    # The employee has both cards; he appeals from his grade card.
    await sim_server.open_chat(page, "zhoujie")
    await expect(sim_server.card(page, f"考核周期 {CODE} 已结束")).to_be_visible()
    grade_card = sim_server.card(page, f"{CODE} 绩效结果")
    await expect(grade_card).to_contain_text("C")
    await grade_card.get_by_role("button", name="我要申诉").click()
    form = sim_server.card(page, f"对 {CODE} 绩效结果申诉")
    await form.locator('textarea[name="reason"]').fill("平台提前两周上线，两次回滚都是上游变更引起，已附复盘")
    await form.get_by_role("button", name="提交申诉").click()

    async def appealed() -> bool:
        async with service.factory() as s:
            return await s.scalar(select(GradeAppeal.status)) == "open"

    await eventually(appealed)
    await expect(sim_server.card(page, f"已收到你对 {CODE} 评级的申诉")).to_be_visible()

    # 研发部's HRBP changes the grade, with a reason, on the one form of the appeal card.
    await sim_server.open_chat(page, "sunli")
    decision = sim_server.card(page, f"周杰 对 {CODE} 评级的申诉")
    await expect(decision).to_contain_text("上游变更")
    await decision.locator('select[name="decision"]').select_option("changed")
    await decision.locator('select[name="grade"]').select_option("B")
    await decision.locator('textarea[name="reason"]').fill("复盘确认回滚由上游变更引起，按期上线且提前两周")
    await decision.get_by_role("button", name="提交决定").click()

    async def changed() -> bool:
        async with service.factory() as s:
            grade = await s.scalar(select(Grade.grade).join(GradeAppeal, GradeAppeal.grade_id == Grade.id))
            return grade == "B"

    await eventually(changed)

    # The employee sees the change.
    await sim_server.open_chat(page, "zhoujie")
    outcome = sim_server.card(page, f"你对 {CODE} 评级的申诉：等级已调整")
    await expect(outcome).to_be_visible()
    await expect(outcome).to_contain_text("C → B")
    await expect(outcome).to_contain_text("上游变更")
    await say(page, "/history")
    await expect(sim_server.card(page, "周杰 的记录")).to_contain_text("申诉结果：C → B")
    assert not sim_server.page_errors
