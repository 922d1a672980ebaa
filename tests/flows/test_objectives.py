"""Company and department objectives (issue 17 item 2): who may set them, the form and its key results (same
parser and guard as a person's goals), a department objective aligning to a company objective, a person's
goal aligning to their department's (and its parents') objectives, and what submitting again replaces."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.app.kickoff_cli import kickoff_from_cli
from bot.app.service import Service
from cards.flow_actions import GoalsEdit, GoalsSubmit
from cards.goal_actions import ObjectiveSubmit
from cards.model import Card, Select
from storage.models import AuditLog, Cycle, Department, Goal, KeyResult, Person
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, last_to, last_update, say, text_of

COMPANY = {
    "objective_1": "华东市场份额第一",
    "key_results_1": "华东区收入从 8000 万元提高到 1.2 亿元\n签约 50 家新客户",
    "objective_2": "系统稳定可靠",
    "key_results_2": "可用性从 99.5% 提高到 99.95%",
    "objective_3": "组织能力",
    "key_results_3": "招聘 30 名工程师",
}


async def _start(service: Service, code: str = "2026-Q1") -> int:
    await kickoff_from_cli(service, code=code, departments=["研发部"], hr_user_id="hr", allow_past=True)
    await service.outbox.drain()
    async with service.factory() as s:
        cycle_id = await s.scalar(select(Cycle.id).where(Cycle.code == code))
    assert cycle_id is not None
    return cycle_id


async def _objectives(service: Service, cycle_id: int, level: str) -> list[Goal]:
    async with service.factory() as s:
        rows = await s.scalars(
            select(Goal)
            .where(Goal.cycle_id == cycle_id, Goal.level == level)
            .order_by(Goal.position, Goal.id)
        )
        return list(rows)


def _inputs(card: Card) -> dict[str, Any]:
    return {i.name: i for f in card.forms() for i in f.inputs}


async def _command(service: Service, recorder: RecordingAdapter, who: str, text: str) -> Card:
    answer = await say(service, who, text)
    assert answer.toast_kind != "error", answer.toast
    await service.outbox.drain()
    return last_to(recorder, who)


async def test_company_objectives_by_a_leader(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    cycle_id = await _start(service)
    form = await _command(service, recorder, "leader", "/objective company")
    assert form.header.title == "公司目标 · 2026-Q1"
    submit = button(form, ObjectiveSubmit)
    assert (submit.cycle_id, submit.department_id) == (cycle_id, None)
    assert [i.name for f in form.forms() for i in f.inputs][:3] == [
        "objective_1",
        "key_results_1",
        "objective_2",
    ]

    answer = await click(service, "leader", submit, COMPANY)
    assert answer.toast == "已保存 3 个目标。", answer.toast
    saved = await _objectives(service, cycle_id, "company")
    assert [(g.objective, g.weight, g.person_id, g.department_id) for g in saved] == [
        ("华东市场份额第一", 34, org.leader.id, None),
        ("系统稳定可靠", 33, org.leader.id, None),
        ("组织能力", 33, org.leader.id, None),
    ]
    async with service.factory() as s:
        krs = list(await s.scalars(select(KeyResult).where(KeyResult.goal_id == saved[0].id)))
    assert [(k.start_value, k.target_value, k.unit) for k in krs] == [(0.8, 1.2, "亿元"), (0.0, 50.0, "家")]
    async with service.factory() as s:
        audit = await s.scalar(select(AuditLog).where(AuditLog.action == "objectives.set"))
    assert audit is not None and audit.detail["level"] == "company"

    # the same guard as a person's goals
    bad = dict(COMPANY, key_results_2="提升系统稳定性")
    answer = await click(service, "hr", submit, bad)
    assert answer.toast_kind == "error" and "避免大而空" in (answer.toast or "")
    assert len(await _objectives(service, cycle_id, "company")) == 3


async def test_who_may_set_which_objectives(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    cycle_id = await _start(service)
    answer = await say(service, "emp1", "/objective company")
    assert answer.toast_kind == "error" and "只有 HR 管理员或公司领导" in (answer.toast or "")
    answer = await say(service, "emp1", "/objective")
    assert "/goals" in (answer.toast or "")
    # a forged click changes nothing and says who may
    answer = await click(service, "emp1", ObjectiveSubmit(cycle_id=cycle_id), COMPANY)
    assert answer.toast_kind == "error" and "只有 HR 管理员或公司领导" in (answer.toast or "")
    answer = await click(
        service, "mgr", ObjectiveSubmit(cycle_id=cycle_id, department_id=org.sales.id), COMPANY
    )
    assert answer.toast_kind == "error" and "只有“销售部”的负责人或 HR 管理员" in (answer.toast or "")
    assert await _objectives(service, cycle_id, "company") == []
    assert await _objectives(service, cycle_id, "department") == []

    answer = await say(service, "mgr", "/objective department 销售部")
    assert answer.toast_kind == "error" and "销售部" in (answer.toast or "")
    answer = await say(service, "hr", "/objective department")
    assert "/objective department 部门名" in (answer.toast or "")
    answer = await say(service, "hr", "/objective department 市场部")
    assert "没有找到名为“市场部”的部门" in (answer.toast or "")
    # HR may set any department's; a head gets their own with no word at all
    form = await _command(service, recorder, "hr", "/设定目标 部门 销售部")
    assert button(form, ObjectiveSubmit).department_id == org.sales.id
    form = await _command(service, recorder, "mgr", "/objective")
    assert button(form, ObjectiveSubmit).department_id == org.rnd.id and "研发部" in form.header.title
    # another workspace's department is not a department here
    answer = await click(service, "hr", ObjectiveSubmit(cycle_id=cycle_id, department_id=999_999), COMPANY)
    assert answer.toast_kind == "error"


async def test_no_running_cycle(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    answer = await say(service, "leader", "/objective company")
    assert answer.toast_kind == "error" and "没有进行中的考核周期" in (answer.toast or "")


async def test_department_objectives_align_to_company_objectives(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle_id = await _start(service)
    await click(service, "leader", ObjectiveSubmit(cycle_id=cycle_id), COMPANY)
    share, stable, people = await _objectives(service, cycle_id, "company")

    form = await _command(service, recorder, "mgr", "/objective department")
    parent = _inputs(form)["parent_1"]
    assert isinstance(parent, Select) and parent.required  # company objectives exist: must align
    assert [o.value for o in parent.options] == [str(share.id), str(stable.id), str(people.id)]
    assert parent.options[0].label == "公司：华东市场份额第一"

    submit = button(form, ObjectiveSubmit)
    dept = {
        "objective_1": "计费平台高可用",
        "key_results_1": "计费系统可用性从 99.5% 提高到 99.99%",
        "objective_2": "研发团队扩充",
        "key_results_2": "招聘 8 名工程师",
        "parent_2": str(people.id),
        "objective_3": "技术分享",
        "key_results_3": "交付：《研发知识库》",
    }
    # objective 3 reads like none of the company's: it must be chosen
    answer = await click(service, "mgr", submit, dept)
    assert answer.toast_kind == "error" and "第 3 个目标要对齐到一个公司目标" in (answer.toast or "")
    assert await _objectives(service, cycle_id, "department") == []
    # a forged parent (a department objective is not a company objective)
    answer = await click(service, "mgr", submit, dict(dept, parent_3="none", parent_1=str(share.id + 1000)))
    assert "不在可选范围内" in (answer.toast or "")

    answer = await click(service, "mgr", submit, dict(dept, parent_3=str(people.id)), message_ref="d")
    await service.outbox.drain()
    assert answer.toast == "已保存 3 个目标。", answer.toast
    saved = await _objectives(service, cycle_id, "department")
    assert [(g.parent_id, g.department_id, g.person_id) for g in saved] == [
        (stable.id, org.rnd.id, org.manager.id),  # unchosen: the suggestion (可用性)
        (people.id, org.rnd.id, org.manager.id),
        (people.id, org.rnd.id, org.manager.id),
    ]
    assert "对齐：公司：系统稳定可靠" in text_of(last_update(recorder, "mgr"))


async def test_a_persons_goal_aligns_to_their_departments_and_its_parents_objectives(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle_id = await _start(service)
    async with service.factory() as s, s.begin():
        team = Department(
            workspace_id=org.workspace.id, platform_dept_id="d1a", name="平台组", parent_id=org.rnd.id
        )
        s.add(team)
        await s.flush()
        emp2 = await s.get(Person, org.emp2.id)
        assert emp2 is not None
        emp2.department_id = team.id
        team_id = team.id
    rnd_form = {"objective_1": "计费平台高可用", "key_results_1": "计费系统可用性从 99.5% 提高到 99.99%"}
    await click(service, "mgr", ObjectiveSubmit(cycle_id=cycle_id, department_id=org.rnd.id), rnd_form)
    await click(
        service,
        "hr",
        ObjectiveSubmit(cycle_id=cycle_id, department_id=team_id),
        {"objective_1": "平台组交付", "key_results_1": "交付：统一网关"},
    )
    await click(
        service,
        "hr",
        ObjectiveSubmit(cycle_id=cycle_id, department_id=org.sales.id),
        {"objective_1": "销售冲刺", "key_results_1": "签约 40 家客户"},
    )
    [rnd_obj] = [
        g for g in await _objectives(service, cycle_id, "department") if g.department_id == org.rnd.id
    ]

    await click(service, "emp2", GoalsEdit(cycle_id=cycle_id))
    await service.outbox.drain()
    parent = _inputs(last_to(recorder, "emp2"))["parent_1"]
    assert isinstance(parent, Select)
    labels = [o.label for o in parent.options]
    assert labels == ["平台组：平台组交付", "研发部：计费平台高可用", "Not aligned"]  # not 销售部's

    goal = {
        "objective_1": "Billing uptime",
        "key_results_1": "计费系统可用性从 99.9% 提高到 99.99%",
        "weight_1": "100",
    }
    answer = await click(service, "emp2", GoalsSubmit(cycle_id=cycle_id), goal)
    assert answer.toast_kind == "success", answer.toast
    async with service.factory() as s:
        mine = await s.scalar(select(Goal).where(Goal.person_id == org.emp2.id))
    assert mine is not None and mine.parent_id == rnd_obj.id


async def test_submitting_again_keeps_objectives_others_align_to(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle_id = await _start(service)
    submit = ObjectiveSubmit(cycle_id=cycle_id, department_id=org.rnd.id)
    first = {
        "objective_1": "计费平台高可用",
        "key_results_1": "计费系统可用性从 99.5% 提高到 99.99%",
        "objective_2": "技术分享",
        "key_results_2": "交付：《研发知识库》",
    }
    await click(service, "mgr", submit, first)
    available, sharing = await _objectives(service, cycle_id, "department")
    goal = {"objective_1": "计费高可用", "key_results_1": "计费故障从 5 次降到 1 次", "weight_1": "100"}
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), dict(goal, parent_1=str(available.id)))

    # the form shows both, and says which stays whatever is submitted
    form = await _command(service, recorder, "mgr", "/objective department")
    assert _inputs(form)["objective_1"].default == "计费平台高可用"
    assert "计费平台高可用" in text_of(form) and "保留" in text_of(form)

    second = {"objective_1": "研发效率", "key_results_1": "发布周期从 14 天缩短到 7 天"}
    answer = await click(service, "mgr", submit, second, message_ref="again")
    await service.outbox.drain()
    assert answer.toast == "已保存 1 个目标。"
    now = await _objectives(service, cycle_id, "department")
    assert [g.objective for g in now] == ["研发效率", "计费平台高可用"]
    assert now[1].id == available.id and sharing.id not in {g.id for g in now}
    assert [g.weight for g in now] == [50, 50]
    card = text_of(last_update(recorder, "mgr"))
    assert "已有下级目标对齐，保留不变" in card and "1 个目标对齐到这里" in card
    async with service.factory() as s:
        mine = await s.scalar(select(Goal).where(Goal.person_id == org.emp1.id))
    assert mine is not None and mine.parent_id == available.id

    # the same text again edits it in place: new key results, same row, still aligned
    third = {"objective_1": "计费平台高可用", "key_results_1": "计费系统可用性从 99.5% 提高到 99.999%"}
    await click(service, "mgr", submit, third)
    [kept] = [
        g for g in await _objectives(service, cycle_id, "department") if g.objective == "计费平台高可用"
    ]
    assert kept.id == available.id
    async with service.factory() as s:
        [kr] = list(await s.scalars(select(KeyResult).where(KeyResult.goal_id == kept.id)))
    assert kr.target_value == 99.999


async def test_vague_deliverables_on_objectives_are_asked_about_once(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle_id = await _start(service)
    vague = {"objective_1": "组织能力", "key_results_1": "交付：更好的团队氛围"}
    submit = ObjectiveSubmit(cycle_id=cycle_id)
    answer = await click(service, "leader", submit, vague)
    assert answer.toast_kind == "warning" and "只说了方向" in (answer.toast or "")
    assert await _objectives(service, cycle_id, "company") == []
    answer = await click(service, "leader", submit, vague)
    assert answer.toast_kind == "success"
    assert [g.objective for g in await _objectives(service, cycle_id, "company")] == ["组织能力"]
