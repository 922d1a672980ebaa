"""Issue 17's "Done when", in real headless Chromium on the simulator: a leader sets a company objective, the
head of R&D aligns a department objective to it, an engineer aligns his goal to that with a key result and
moves the key result in a check-in, and the leader's ``/okr tree`` shows the tree rolled up from the number
he typed. Every form is filled in and submitted on the page; only the cycle's start and the check-in's
opening (the scheduler's jobs) are called directly, as the other browser tests do."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.async_api import Locator, Page, expect
from sqlalchemy import select

from bot.app.kickoff_cli import kickoff_from_cli
from bot.core.context import Context
from cards.okr import bar
from handlers.checkin.checkin import open_checkin
from handlers.goals.progress import blend
from storage.models import CheckIn, Goal, KeyResult, KeyResultValue
from tests.support.browser import SimServer, eventually

pytestmark = pytest.mark.browser

CODE = "2026-Q4"
"""The quarter the test clock (24 November 2026) is in."""
COMPANY = ("交付质量业内领先", "线上故障从 12 次降到 3 次")
DEPARTMENT = ("研发交付又快又稳", "自动化测试覆盖率从 40% 提高到 80%")
PERSON = ("支付链路稳定", "补齐 20 个支付回调自动化用例")
TARGET, TYPED = 20, 12
"""The engineer's key result runs from 0 to 20 cases; the check-in says 12 are done."""


async def _say(sim_server: SimServer, page: Page, user_id: str, text: str) -> None:
    await sim_server.open_chat(page, user_id)
    await page.locator("#text").fill(text)
    await page.locator("#text").press("Enter")


async def _submit(page: Page, form: Locator, fill: dict[str, str], choose: dict[str, str]) -> None:
    for name, value in fill.items():
        await form.locator(f'[name="{name}"]').fill(value)
    for name, value in choose.items():
        await form.locator(f'select[name="{name}"]').select_option(value)
    before = await page.locator(".toast").count()
    await form.locator(".buttons button").first.click()
    await expect(page.locator(".toast")).not_to_have_count(before)  # the submit was answered


async def _goal(sim_server: SimServer, objective: str) -> Goal:
    found: list[Goal] = []

    async def saved() -> bool:
        async with sim_server.service.factory() as session:
            goal = await session.scalar(select(Goal).where(Goal.objective == objective))
        found[:] = [goal] if goal is not None else []
        return bool(found)

    await eventually(saved)
    return found[0]


async def test_a_company_objective_rolls_up_from_a_check_in(sim_server: SimServer, sim_page: Page) -> None:
    page = sim_page
    service = sim_server.service
    await kickoff_from_cli(
        service, code=CODE, departments=["研发部"], hr_user_id="zhouyaqin", allow_past=True
    )
    service.outbox.notify()

    # 刘建国 (leader): the company objective.
    await _say(sim_server, page, "liujianguo", "/objective company")
    form = sim_server.card(page, f"公司目标 · {CODE}").locator('form[data-form="objectives"]')
    await _submit(page, form, {"objective_1": COMPANY[0], "key_results_1": COMPANY[1]}, {})
    company = await _goal(sim_server, COMPANY[0])
    assert (company.level, company.parent_id) == ("company", None)

    # 王志强 (head of 研发部): a department objective, aligned to the company's in the form's select.
    await _say(sim_server, page, "wangzhiqiang", "/objective department")
    card = sim_server.card(page, f"研发部 部门目标 · {CODE}")
    await expect(card.locator('select[name="parent_1"] option')).to_contain_text([COMPANY[0]])
    form = card.locator('form[data-form="objectives"]')
    fill = {"objective_1": DEPARTMENT[0], "key_results_1": DEPARTMENT[1]}
    await _submit(page, form, fill, {"parent_1": str(company.id)})
    department = await _goal(sim_server, DEPARTMENT[0])
    assert (department.level, department.parent_id) == ("department", company.id)

    # 周杰 (an engineer in 研发部): his goal, aligned to the department objective, with one key result.
    await _say(sim_server, page, "zhoujie", "/goals")
    form = page.locator('.msg.bot .card form[data-form="goals"]').last
    await expect(form.locator('select[name="parent_1"] option')).to_contain_text([DEPARTMENT[0]])
    fill = {"objective_1": PERSON[0], "key_results_1": PERSON[1], "weight_1": "100"}
    await _submit(page, form, fill, {"parent_1": str(department.id)})
    mine = await _goal(sim_server, PERSON[0])
    assert (mine.level, mine.parent_id, mine.weight) == ("person", department.id, 100)
    async with service.factory() as session:
        kr = await session.scalar(select(KeyResult).where(KeyResult.goal_id == mine.id))
    assert kr is not None and (kr.start_value, kr.target_value, kr.unit) == (0, TARGET, "个")

    # The check-in (opened as the scheduler would) asks for the key result's current value.
    async def start(ctx: Context) -> None:
        assert await open_checkin(ctx, period="2026-11-27", due_at=datetime(2026, 11, 27, 8, tzinfo=UTC))

    zhoujie = await sim_server.person("zhoujie")
    await service.dispatcher.run_for_person(zhoujie.id, start)
    service.outbox.notify()
    card = sim_server.card(page, "进度对话 · 2026-11-27")
    await expect(card).to_contain_text(PERSON[1])
    await card.locator(f'[name="kr_{kr.id}"]').fill(str(TYPED))
    await card.locator('textarea[name="obstacles"]').fill("测试环境每周三下午被压测占用")
    await card.get_by_role("button", name="提交").click()
    await expect(page.locator(".toast.success").last).to_contain_text("已通知上级")

    async def recorded() -> bool:
        async with service.factory() as session:
            row = await session.scalar(select(KeyResultValue).where(KeyResultValue.key_result_id == kr.id))
            checkin = await session.scalar(select(CheckIn).where(CheckIn.person_id == zhoujie.id))
        return row is not None and checkin is not None and (row.value, row.source) == (TYPED, "checkin")

    await eventually(recorded)

    # 刘建国: /okr tree. Each objective counts its own key results (nothing reported yet) and what is aligned
    # to it equally, so 12 of 20 cases is 60 % for 周杰, 30 % for 研发部 and 15 % for the company.
    person = TYPED / TARGET
    dept = blend(0.0, True, person)
    top = blend(0.0, True, dept)
    assert (round(person * 100), round(dept * 100), round(top * 100)) == (60, 30, 15)
    await _say(sim_server, page, "liujianguo", "/okr tree")
    tree = sim_server.card(page, f"公司目标 · 目标树 · {CODE}")
    await expect(tree).to_contain_text(f"{COMPANY[0]}（刘建国）")
    await expect(tree).to_contain_text(bar(top))
    await expect(tree).to_contain_text(f"{DEPARTMENT[0]} {round(dept * 100)}%")
    await expect(tree).to_contain_text(f"{PERSON[0]} {round(person * 100)}%")
    # A leader sees the coverage: of 研发部's 14 participants, 王志强 and 周杰 own a goal below it.
    await expect(tree).to_contain_text("覆盖 14%（2/14 人）")
    await expect(tree.locator("img")).to_have_count(1)  # the tree picture
