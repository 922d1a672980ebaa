"""Goals (issue 17 items 1, 2 and 8): objectives with measurable key results, one per line; weights = 100;
copy last cycle (key results too, values reset); manager confirm (version 1) / return (vague-guarded); a key
result without a measurable target refused with an example; a date or deliverable naming only a direction
asked about once; alignment to the manager's or the department's objectives, suggested; authorisation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.app.kickoff_cli import kickoff_from_cli
from bot.app.service import Service
from cards.flow_actions import (
    GoalsConfirm,
    GoalsCopy,
    GoalsEdit,
    GoalsReturn,
    GoalsReview,
    GoalsSubmit,
    KickoffTeamGoals,
)
from cards.model import Card, Select
from storage.models import AuditLog, Cycle, CycleParticipant, Goal, GoalVersion, KeyResult, KeyResultValue
from tests.fakes.recording import ChatOnlyAdapter, RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, has_enabled, last_to, last_update, say, text_of


async def _start(service: Service, code: str = "2026-Q1") -> int:
    await kickoff_from_cli(service, code=code, departments=["研发部"], hr_user_id="hr", allow_past=True)
    await service.outbox.drain()
    async with service.factory() as s:
        cycle_id = await s.scalar(select(Cycle.id).where(Cycle.code == code))
    assert cycle_id is not None
    return cycle_id


async def _participant(service: Service, cycle_id: int, person_id: int) -> CycleParticipant:
    async with service.factory() as s:
        cp = await s.scalar(
            select(CycleParticipant).where(
                CycleParticipant.cycle_id == cycle_id, CycleParticipant.person_id == person_id
            )
        )
        assert cp is not None
        return cp


async def _goals(service: Service, cycle_id: int, person_id: int) -> list[tuple[str, int]]:
    async with service.factory() as s:
        rows = await s.execute(
            select(Goal.objective, Goal.weight)
            .where(Goal.cycle_id == cycle_id, Goal.person_id == person_id)
            .order_by(Goal.position)
        )
        return [(o, w) for o, w in rows.all()]


async def _goal_rows(service: Service, cycle_id: int, person_id: int) -> list[Goal]:
    async with service.factory() as s:
        rows = await s.scalars(
            select(Goal).where(Goal.cycle_id == cycle_id, Goal.person_id == person_id).order_by(Goal.position)
        )
        return list(rows)


async def _krs(service: Service, goal_id: int) -> list[KeyResult]:
    async with service.factory() as s:
        rows = await s.scalars(
            select(KeyResult).where(KeyResult.goal_id == goal_id).order_by(KeyResult.position)
        )
        return list(rows)


def _inputs(card: Card) -> dict[str, Any]:
    return {i.name: i for f in card.forms() for i in f.inputs}


FORM_OK = {
    "objective_1": "上线新计费系统",
    "key_results_1": "3 月底前全量\n交付：计费对账报表（里程碑：设计, 联调, 上线）",
    "weight_1": "60",
    "objective_2": "降低故障率",
    "key_results_2": "P1 故障从 4 次降到 1 次",
    "weight_2": "40%",
}


async def test_form_card_and_weights_must_sum_to_100(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle_id = await _start(service)
    await click(service, "emp1", GoalsEdit(cycle_id=cycle_id))
    await service.outbox.drain()
    form_card = last_to(recorder, "emp1")
    names = [i.name for f in form_card.forms() for i in f.inputs]
    # nothing to align to yet: no select, five goals of three inputs (max_goals = 5)
    assert names[:3] == ["objective_1", "key_results_1", "weight_1"] and len(names) == 15
    assert _inputs(form_card)["key_results_1"].multiline
    assert button(form_card, GoalsCopy).cycle_id == cycle_id

    bad = dict(FORM_OK, weight_2="30")
    answer = await click(service, "emp1", button(form_card, GoalsSubmit), bad, message_ref="form-1")
    await service.outbox.drain()
    assert answer.toast == "权重合计为 90%，必须正好是 100%。" and answer.toast_kind == "error"
    error_card = last_update(recorder, "emp1")
    assert error_card.header.colour == "red" and "90%" in text_of(error_card)
    typed = {name: i.default for name, i in _inputs(error_card).items()}
    assert typed["objective_1"] == "上线新计费系统" and typed["key_results_1"] == FORM_OK["key_results_1"]
    assert await _goals(service, cycle_id, org.emp1.id) == []
    assert (await _participant(service, cycle_id, org.emp1.id)).goals_status == "none"
    assert recorder.to("mgr")[-1].header.title.startswith("考核周期")  # manager got nothing new

    answer = await click(
        service,
        "emp1",
        GoalsSubmit(cycle_id=cycle_id),
        {"objective_1": "x", "key_results_1": "签约 3 家", "weight_1": "abc"},
    )
    assert "整数" in (answer.toast or "")
    answer = await click(
        service, "emp1", GoalsSubmit(cycle_id=cycle_id), {"key_results_1": "签约 3 家", "weight_1": "100"}
    )
    assert "缺少" in (answer.toast or "")
    answer = await click(
        service, "emp1", GoalsSubmit(cycle_id=cycle_id), {"objective_1": "签约", "weight_1": "100"}
    )
    assert "缺少关键结果" in (answer.toast or "") and "NPS 从 32 提高到 40" in (answer.toast or "")


async def test_a_key_result_without_a_measurable_target_is_refused_with_an_example(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Item 8: not a bounce that saves the second time, a refusal, naming the goal, the line and the fix."""
    cycle_id = await _start(service)
    form = dict(FORM_OK, key_results_2="P1 故障从 4 次降到 1 次\n提升客户满意度\n流失率降到 3%")
    for _ in range(2):
        answer = await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), form, message_ref="f")
        await service.outbox.drain()
        assert answer.toast_kind == "error"
        card = last_update(recorder, "emp1")
        body = text_of(card)
        assert "第 2 个目标的第 2 条关键结果“提升客户满意度”没有可衡量的目标" in body
        assert "避免大而空：把“提升客户满意度”写成“NPS 从 32 提高到 40”" in body
        assert "第 2 个目标的第 3 条关键结果“流失率降到 3%”要写明现在的水平" in body
        assert "流失率降到 3%（当前 5%）" in body
        assert _inputs(card)["key_results_2"].default == form["key_results_2"]
    assert await _goals(service, cycle_id, org.emp1.id) == []

    # English person, English message
    answer = await click(
        service,
        "emp2",
        GoalsSubmit(cycle_id=cycle_id),
        {
            "objective_1": "Happier customers",
            "key_results_1": "Improve customer satisfaction",
            "weight_1": "100",
        },
    )
    assert answer.toast_kind == "error" and "raise NPS from 32 to 40" in (answer.toast or "")


async def test_key_results_are_stored_typed_with_progress(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle_id = await _start(service)
    form = {
        "objective_1": "提升续约",
        "key_results_1": (
            "1. 续约率从 70% 提高到 85% [50%]\n2. 流失率降到 3%（当前 5%） [30%]\n"
            "3. 交付：续约预警看板（里程碑：设计 2/15, 上线） 截止 3/31 [20%]"
        ),
        "weight_1": "100",
    }
    answer = await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), form)
    assert answer.toast == "目标已提交，等待上级确认。", answer.toast
    [goal] = await _goal_rows(service, cycle_id, org.emp1.id)
    assert goal.level == "person" and goal.parent_id is None
    assert (
        goal.key_result.splitlines()[0] == "续约率从 70% 提高到 85% [50%]"
    )  # the lines as typed, for history
    renew, churn, board = await _krs(service, goal.id)
    assert (renew.kind, renew.start_value, renew.target_value, renew.unit, renew.weight) == (
        "number",
        70.0,
        85.0,
        "%",
        50,
    )
    assert renew.title == "续约率从 70% 提高到 85%" and renew.current_value is None and renew.progress == 0
    assert (churn.start_value, churn.target_value, churn.current_value, churn.weight) == (5.0, 3.0, 5.0, 30)
    assert (board.kind, board.title, str(board.deadline), board.weight) == (
        "deliverable",
        "交付：续约预警看板",
        "2026-03-31",
        20,
    )
    assert board.milestones == [
        {"name": "设计", "due": "2026-02-15", "done": False},
        {"name": "上线", "due": None, "done": False},
    ]
    async with service.factory() as s:
        values = list(await s.scalars(select(KeyResultValue).where(KeyResultValue.key_result_id == churn.id)))
    assert [(v.value, v.source, v.recorded_by_id) for v in values] == [(5.0, "owner", org.emp1.id)]
    assert goal.own_progress == 0.0

    # the form shows the key results again as lines that read back the same
    await click(service, "emp1", GoalsEdit(cycle_id=cycle_id))
    await service.outbox.drain()
    box = _inputs(last_to(recorder, "emp1"))["key_results_1"].default
    assert box.splitlines() == [
        "续约率从 70% 提高到 85% [50%]",
        "流失率降到 3%（当前 5%） [30%]",
        "交付：续约预警看板（里程碑：设计 2026-02-15, 上线） 截止 2026-03-31 [20%]",
    ]

    # KR weights: all or none, adding up to 100
    bad = dict(form, key_results_1="续约率从 70% 提高到 85% [50%]\n签约 3 家")
    answer = await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), bad)
    assert answer.toast_kind == "error" and "合计 50%" in (answer.toast or "")
    too_many = dict(form, key_results_1="\n".join(f"签约 {n} 家" for n in range(1, 7)))
    answer = await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), too_many)
    assert "6 条关键结果，最多 5 条" in (answer.toast or "")


async def test_resubmitting_keeps_the_rows_and_values_of_what_stayed(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle_id = await _start(service)
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), FORM_OK)
    first = await _goal_rows(service, cycle_id, org.emp1.id)
    krs = await _krs(service, first[1].id)
    async with service.factory() as s, s.begin():
        kr = await s.get(KeyResult, krs[0].id)
        assert kr is not None
        kr.current_value = 2.0  # as a check-in would have left it
    # a typo fixed in goal 1's objective, goal 2's target changed: same rows, the value kept, progress redone
    edited = dict(FORM_OK, objective_1="上线新的计费系统", key_results_2="P1 故障从 4 次降到 0 次")
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), edited)
    again = await _goal_rows(service, cycle_id, org.emp1.id)
    assert [g.id for g in again] == [g.id for g in first] and again[0].objective == "上线新的计费系统"
    [kr_again] = await _krs(service, first[1].id)
    assert kr_again.id == krs[0].id and kr_again.current_value == 2.0 and kr_again.target_value == 0.0
    assert kr_again.progress == 0.5 and again[1].own_progress == 0.5


async def test_a_current_value_in_the_line_does_not_undo_a_later_one(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """ "（当前 5%）" is where the key result stood when it was written: once a check-in moved it, saving the
    form again changes nothing about its value."""
    cycle_id = await _start(service)
    form = {"objective_1": "降低流失", "key_results_1": "流失率降到 3%（当前 5%）", "weight_1": "100"}
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), form)
    [goal] = await _goal_rows(service, cycle_id, org.emp1.id)
    [kr] = await _krs(service, goal.id)
    async with service.factory() as s, s.begin():
        row = await s.get(KeyResult, kr.id)
        assert row is not None
        row.current_value = 4.0
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), form)
    [again] = await _krs(service, goal.id)
    assert (again.id, again.start_value, again.current_value, again.progress) == (kr.id, 5.0, 4.0, 0.5)
    async with service.factory() as s:
        values = list(
            await s.scalars(select(KeyResultValue.value).where(KeyResultValue.key_result_id == kr.id))
        )
    assert values == [5.0]


async def test_submit_confirm_and_lifecycle(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    cycle_id = await _start(service)
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), FORM_OK)
    await service.outbox.drain()
    assert await _goals(service, cycle_id, org.emp1.id) == [("上线新计费系统", 60), ("降低故障率", 40)]
    cp = await _participant(service, cycle_id, org.emp1.id)
    assert cp.goals_status == "submitted"
    review = last_to(recorder, "mgr")
    assert "张三" in review.header.title and "上线新计费系统" in text_of(review)
    assert "P1 故障从 4 次降到 1 次" in text_of(review)  # the key results are on the manager's card
    confirm = button(review, GoalsConfirm)
    assert confirm.participant_id == cp.id

    # wrong people: a colleague, another department's manager, the employee themself
    for who in ("emp2", "smgr", "emp1"):
        answer = await click(service, who, confirm)
        assert answer.toast_kind == "error" and "张三" in (answer.toast or ""), who
    assert (await _participant(service, cycle_id, org.emp1.id)).goals_status == "submitted"

    # an edit before confirmation updates the manager's card in place
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), dict(FORM_OK, objective_2="客户满意度"))
    await service.outbox.drain()
    assert "客户满意度" in text_of(last_update(recorder, "mgr"))

    await click(service, "mgr", confirm, message_ref="goals-card")
    await service.outbox.drain()
    assert (await _participant(service, cycle_id, org.emp1.id)).goals_status == "confirmed"
    decided = last_update(recorder, "mgr")
    assert all(b.disabled for b in decided.buttons()) and "王经理" in text_of(decided)
    assert "王经理 确认了你的目标" in text_of(last_to(recorder, "emp1"))
    async with service.factory() as s:
        version = await s.scalar(select(GoalVersion).where(GoalVersion.person_id == org.emp1.id))
    assert version is not None and (version.version, version.status) == (1, "approved")
    assert [g["objective"] for g in version.content["goals"]] == ["上线新计费系统", "客户满意度"]

    assert (await click(service, "mgr", confirm)).toast == "这张卡片已经处理过了。"
    answer = await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), FORM_OK)
    assert answer.toast == "目标已经被上级确认，不能再修改。"
    assert (
        await click(service, "emp1", GoalsCopy(cycle_id=cycle_id))
    ).toast == "目标已经被上级确认，不能再修改。"
    assert [o for o, _ in await _goals(service, cycle_id, org.emp1.id)] == ["上线新计费系统", "客户满意度"]


async def test_return_comment_is_vague_guarded(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle_id = await _start(service)
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), FORM_OK)
    await service.outbox.drain()
    ret = button(last_to(recorder, "mgr"), GoalsReturn)

    assert (await click(service, "mgr", ret, {"comment": ""})).toast == "退回时请写明原因。"
    answer = await click(service, "mgr", ret, {"comment": "加强沟通"})
    await service.outbox.drain()
    assert answer.toast_kind == "warning" and "加强沟通" in (answer.toast or "")
    assert (await _participant(service, cycle_id, org.emp1.id)).goals_status == "submitted"
    bounce = last_update(recorder, "mgr")
    assert "多久一次" in text_of(bounce) and bounce.forms()[0].inputs[0].default == "加强沟通"

    concrete = "第二个目标加一个可量化指标：每月 P1 故障不超过 1 次"
    await click(service, "mgr", ret, {"comment": concrete})
    await service.outbox.drain()
    cp = await _participant(service, cycle_id, org.emp1.id)
    assert cp.goals_status == "returned" and cp.goals_comment == concrete
    to_emp = last_to(recorder, "emp1")
    assert concrete in text_of(to_emp) and to_emp.forms()  # the form again, with the comment on top
    assert _inputs(to_emp)["key_results_2"].default == "P1 故障从 4 次降到 1 次"

    # the employee resubmits; the manager gets a fresh card
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), FORM_OK)
    await service.outbox.drain()
    assert (await _participant(service, cycle_id, org.emp1.id)).goals_status == "submitted"
    assert has_enabled(last_to(recorder, "mgr"), GoalsConfirm)


VAGUE_FORM = {
    "objective_1": "上线新计费系统",
    "key_results_1": "3 月底前全量",
    "weight_1": "60",
    "objective_2": "进一步加强团队沟通协作能力",
    "key_results_2": "6 月 30 日前提升团队协作能力",
    "weight_2": "30%",
    "objective_4": "提升客户满意度",
    "key_results_4": "交付：更好的服务体验",
    "weight_4": "10",
}


async def _vague_audit(service: Service, participant_id: int) -> list[str]:
    async with service.factory() as s:
        rows = await s.scalars(
            select(AuditLog.action)
            .where(AuditLog.entity == "cycle_participant_goals", AuditLog.entity_id == participant_id)
            .order_by(AuditLog.id)
        )
        return list(rows)


async def test_vague_goals_are_bounced_once_keeping_every_value(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """A date that says only a direction, and a deliverable that names none, are asked about once; the form
    comes back with every slot exactly as typed (the empty third one too, so numbers hold)."""
    cycle_id = await _start(service)
    answer = await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), VAGUE_FORM, message_ref="form-1")
    await service.outbox.drain()
    assert answer.toast_kind == "warning" and "第 2 个目标" in (answer.toast or ""), answer.toast
    bounce = last_update(recorder, "emp1")
    assert bounce.header.colour == "orange"
    body = text_of(bounce)
    assert "第 2 个目标" in body and "第 4 个目标" in body and "第 1 个目标" not in body
    assert "提升团队协作能力" in body and "内容都保留着" in body
    typed = {name: i.default for name, i in _inputs(bounce).items()}
    for name, value in VAGUE_FORM.items():
        assert typed[name] == value, name
    assert not typed["objective_3"] and not typed["key_results_3"]
    assert await _goals(service, cycle_id, org.emp1.id) == []
    cp = await _participant(service, cycle_id, org.emp1.id)
    assert cp.goals_status == "none"
    assert recorder.to("mgr")[-1].header.title.startswith("考核周期")  # the manager heard nothing yet

    # asked once: the same goals submitted again are saved as written, and counted
    answer = await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), VAGUE_FORM)
    await service.outbox.drain()
    assert answer.toast_kind != "warning"
    assert [o for o, _ in await _goals(service, cycle_id, org.emp1.id)] == [
        "上线新计费系统",
        "进一步加强团队沟通协作能力",
        "提升客户满意度",
    ]
    assert (await _participant(service, cycle_id, org.emp1.id)).goals_status == "submitted"
    assert await _vague_audit(service, cp.id) == ["vague.bounced", "vague.accepted"]


async def test_a_direction_with_a_measured_key_result_passes(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """OKRs put the direction in the objective and the measure in the key result: that is not vague."""
    cycle_id = await _start(service)
    form = {
        "objective_1": "提升客户满意度",
        "key_results_1": "Q3 结束前 NPS 从 32 提高到 40",
        "weight_1": "50",
        "objective_2": "上线新版会员积分系统",
        "key_results_2": "交付：《会员积分规则》",
        "weight_2": "50",
    }
    answer = await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), form)
    assert answer.toast == "目标已提交，等待上级确认。"
    cp = await _participant(service, cycle_id, org.emp1.id)
    assert cp.goals_status == "submitted" and await _vague_audit(service, cp.id) == []
    [goal, _] = await _goal_rows(service, cycle_id, org.emp1.id)
    [nps] = await _krs(service, goal.id)
    assert (nps.start_value, nps.target_value, str(nps.deadline)) == (32.0, 40.0, "2026-09-30")


async def test_copied_vague_goals_are_asked_about_too(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    q1 = await _start(service, "2026-Q1")
    await click(service, "emp1", GoalsSubmit(cycle_id=q1), VAGUE_FORM)
    await click(service, "emp1", GoalsSubmit(cycle_id=q1), VAGUE_FORM)  # saved as written the second time
    q2 = await _start(service, "2026-Q2")
    answer = await click(service, "emp1", GoalsCopy(cycle_id=q2), message_ref="q2-form")
    await service.outbox.drain()
    assert answer.toast_kind == "warning"
    form = last_update(recorder, "emp1")
    assert button(form, GoalsSubmit).cycle_id == q2
    typed = {name: i.default for name, i in _inputs(form).items()}
    assert typed["objective_2"] == "进一步加强团队沟通协作能力" and typed["weight_3"] == "10"
    assert await _goals(service, q2, org.emp1.id) == []
    assert (await _participant(service, q2, org.emp1.id)).goals_status == "none"


async def test_hrbp_may_confirm(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    cycle_id = await _start(service)
    await click(service, "emp2", GoalsSubmit(cycle_id=cycle_id), FORM_OK)
    cp = await _participant(service, cycle_id, org.emp2.id)
    await click(service, "hrbp", GoalsConfirm(participant_id=cp.id))
    assert (await _participant(service, cycle_id, org.emp2.id)).goals_status == "confirmed"


async def test_copy_last_cycle_in_one_click(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    """Key results come along (a number's value does not: a new cycle starts again), dates are read again
    from the new cycle's start."""
    q1 = await _start(service, "2026-Q1")
    assert (await click(service, "emp1", GoalsCopy(cycle_id=q1))).toast == "没有找到你上个周期的目标。"
    await click(service, "emp1", GoalsSubmit(cycle_id=q1), FORM_OK)
    old = await _goal_rows(service, q1, org.emp1.id)
    async with service.factory() as s, s.begin():
        kr = await s.scalar(select(KeyResult).where(KeyResult.goal_id == old[1].id))
        assert kr is not None
        kr.current_value, kr.progress = 2.0, 0.67
    q2 = await _start(service, "2026-Q2")
    await click(service, "emp1", GoalsCopy(cycle_id=q2), message_ref="q2-form")
    await service.outbox.drain()
    assert await _goals(service, q2, org.emp1.id) == [("上线新计费系统", 60), ("降低故障率", 40)]
    assert (await _participant(service, q2, org.emp1.id)).goals_status == "submitted"
    assert await _goals(service, q1, org.emp1.id) == [("上线新计费系统", 60), ("降低故障率", 40)]
    assert "2026-Q2" in last_to(recorder, "mgr").header.title
    new = await _goal_rows(service, q2, org.emp1.id)
    billing, report = await _krs(service, new[0].id)
    assert (billing.kind, str(billing.target_date)) == ("date", "2027-03-31")  # Q2 starts in April
    assert [m["done"] for m in report.milestones] == [False, False, False]
    [p1] = await _krs(service, new[1].id)
    assert (p1.start_value, p1.target_value, p1.current_value, p1.progress) == (4.0, 1.0, None, 0.0)


async def test_team_overview_review_button(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    cycle_id = await _start(service)
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), FORM_OK)
    await click(service, "mgr", KickoffTeamGoals(cycle_id=cycle_id))
    await service.outbox.drain()
    overview = last_to(recorder, "mgr")
    review = button(overview, GoalsReview)
    assert "待确认" in text_of(overview)
    assert (await click(service, "smgr", review)).toast_kind == "error"
    await click(service, "mgr", review)
    await service.outbox.drain()
    assert button(last_to(recorder, "mgr"), GoalsConfirm).participant_id == review.participant_id


async def test_goals_command_and_outsiders(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    cycle_id = await _start(service)
    await say(service, "emp1", "/goals")
    await service.outbox.drain()
    assert button(last_to(recorder, "emp1"), GoalsSubmit).cycle_id == cycle_id
    assert (await say(service, "seller", "/goals")).toast == "你目前没有进行中的考核周期。"
    assert (
        await click(service, "seller", GoalsSubmit(cycle_id=cycle_id), FORM_OK)
    ).toast == "你不在这个周期的范围内。"


# ------------------------------------------------------------------------------------------- alignment

MANAGER_GOALS = {
    "objective_1": "计费系统稳定运行",
    "key_results_1": "计费故障从 6 次降到 1 次\n3 月 31 日前上线新计费系统",
    "weight_1": "70",
    "objective_2": "团队招聘",
    "key_results_2": "招聘 3 名后端工程师",
    "weight_2": "30",
}


async def _form_of(service: Service, recorder: RecordingAdapter, who: str, cycle_id: int) -> Card:
    await click(service, who, GoalsEdit(cycle_id=cycle_id))
    await service.outbox.drain()
    return last_to(recorder, who)


async def test_the_parent_list_suggestion_and_what_unchosen_means(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle_id = await _start(service)
    assert (
        await click(service, "mgr", GoalsSubmit(cycle_id=cycle_id), MANAGER_GOALS)
    ).toast_kind == "success"
    billing, hiring = await _goal_rows(service, cycle_id, org.manager.id)

    form = await _form_of(service, recorder, "emp1", cycle_id)
    inputs = _inputs(form)
    names = [i.name for f in form.forms() for i in f.inputs]
    assert names[:4] == ["objective_1", "key_results_1", "weight_1", "parent_1"] and len(names) == 12
    select_1 = inputs["parent_1"]
    assert isinstance(select_1, Select) and select_1.default is None  # nothing typed: nothing to suggest
    assert [o.value for o in select_1.options] == [str(hiring.id), str(billing.id), "none"]  # newest first
    assert select_1.options[0].label == "王经理：团队招聘" and select_1.options[-1].label == "不对齐"

    # goal 1 left unchosen takes the suggestion (it reads like 计费系统稳定运行); goal 2 says "none"
    mine = {
        "objective_1": "计费系统故障处理提速",
        "key_results_1": "计费故障平均恢复时间从 60 分钟降到 15 分钟",
        "weight_1": "80",
        "objective_2": "个人成长",
        "key_results_2": "交付：《Go 性能调优》分享",
        "weight_2": "20",
        "parent_2": "none",
    }
    answer = await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), mine, message_ref="emp1-form")
    await service.outbox.drain()
    assert answer.toast_kind == "success", answer.toast
    g1, g2 = await _goal_rows(service, cycle_id, org.emp1.id)
    assert (g1.parent_id, g2.parent_id) == (billing.id, None)
    summary = last_update(recorder, "emp1")
    assert "对齐：王经理：计费系统稳定运行（按建议，确认前可修改）" in text_of(summary)
    assert "未对齐" in text_of(summary)
    assert "对齐：王经理：计费系统稳定运行" in text_of(last_to(recorder, "mgr"))

    # the form shows the saved choices; an unchosen goal keeps its parent on resubmission
    form = await _form_of(service, recorder, "emp1", cycle_id)
    assert (_inputs(form)["parent_1"].default, _inputs(form)["parent_2"].default) == (str(billing.id), "none")
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), dict(mine, parent_1="", parent_2=""))
    assert [g.parent_id for g in await _goal_rows(service, cycle_id, org.emp1.id)] == [billing.id, None]

    # a typed (bounced) form pre-selects the suggestion and marks it
    bad = dict(mine, parent_1="", weight_2="10")
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), bad, message_ref="again")
    await service.outbox.drain()
    select_1 = _inputs(last_update(recorder, "emp1"))["parent_1"]
    assert isinstance(select_1, Select) and select_1.default == str(billing.id)
    assert "王经理：计费系统稳定运行（建议）" in [o.label for o in select_1.options]


async def test_a_parent_off_the_list_or_closing_a_loop_is_refused(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    q1 = await _start(service, "2026-Q1")
    await click(service, "mgr", GoalsSubmit(cycle_id=q1), MANAGER_GOALS)
    q2 = await _start(service, "2026-Q2")
    await click(service, "mgr", GoalsSubmit(cycle_id=q2), MANAGER_GOALS)
    await click(service, "smgr", GoalsSubmit(cycle_id=q2), MANAGER_GOALS)  # 孙经理 is not in the cycle
    old_billing = (await _goal_rows(service, q1, org.manager.id))[0]
    other_manager = await _goal_rows(service, q2, org.sales_manager.id)
    billing = (await _goal_rows(service, q2, org.manager.id))[0]
    assert other_manager == []

    base = {"objective_1": "计费提速", "key_results_1": "签约 3 家", "weight_1": "100"}
    for forged in (str(old_billing.id), "999999", "abc"):
        answer = await click(service, "emp1", GoalsSubmit(cycle_id=q2), dict(base, parent_1=forged))
        assert answer.toast_kind == "error" and "不在可选范围内" in (answer.toast or ""), forged
    assert await _goals(service, q2, org.emp1.id) == []

    # emp1's goal aligned under the manager's, then the manager tries to align under emp1's: a loop
    await click(service, "emp1", GoalsSubmit(cycle_id=q2), dict(base, parent_1=str(billing.id)))
    [mine] = await _goal_rows(service, q2, org.emp1.id)
    assert mine.parent_id == billing.id
    async with service.factory() as s, s.begin():
        person = await s.get(type(org.manager), org.manager.id)
        assert person is not None
        person.manager_id = org.emp1.id  # bad org data: 张三 now "manages" 王经理
    answer = await click(service, "mgr", GoalsSubmit(cycle_id=q2), dict(MANAGER_GOALS, parent_1=str(mine.id)))
    assert answer.toast_kind == "error" and "形成循环" in (answer.toast or ""), answer.toast
    assert (await _goal_rows(service, q2, org.manager.id))[0].parent_id is None


async def test_removing_a_goal_others_align_to_leaves_them_unaligned_and_says_so(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle_id = await _start(service)
    await click(service, "mgr", GoalsSubmit(cycle_id=cycle_id), MANAGER_GOALS)
    billing, hiring = await _goal_rows(service, cycle_id, org.manager.id)
    mine = {
        "objective_1": "招聘面试",
        "key_results_1": "面试 20 人",
        "weight_1": "100",
        "parent_1": str(hiring.id),
    }
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), mine)
    # the manager renames goal 2 (same position: the row and the alignment stay) …
    renamed = dict(MANAGER_GOALS, objective_2="扩充后端团队")
    await click(service, "mgr", GoalsSubmit(cycle_id=cycle_id), renamed)
    assert (await _goal_rows(service, cycle_id, org.manager.id))[1].id == hiring.id
    assert (await _goal_rows(service, cycle_id, org.emp1.id))[0].parent_id == hiring.id
    # … then drops it: 张三's goal is unaligned, and the manager is told
    only = {k: v for k, v in MANAGER_GOALS.items() if k.endswith("_1")} | {"weight_1": "100"}
    answer = await click(service, "mgr", GoalsSubmit(cycle_id=cycle_id), only, message_ref="m")
    await service.outbox.drain()
    assert answer.toast_kind == "success"
    assert [g.id for g in await _goal_rows(service, cycle_id, org.manager.id)] == [billing.id]
    assert (await _goal_rows(service, cycle_id, org.emp1.id))[0].parent_id is None
    assert "有 1 个下级目标对齐在你删掉的目标上" in text_of(last_update(recorder, "mgr"))


# ------------------------------------------------------------------------------------ answered in chat


async def test_the_form_answered_in_chat(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    """A key-result box is answered by one message of several lines; the alignment select becomes a numbered
    choice; a refused key result sends the person back to the answer to change, the others kept."""
    cycle_id = await _start(service)
    await click(service, "mgr", GoalsSubmit(cycle_id=cycle_id), MANAGER_GOALS)
    billing, hiring = await _goal_rows(service, cycle_id, org.manager.id)
    chat = ChatOnlyAdapter()
    service.registry.add(chat)  # the same platform, without text inputs

    async def answer(text: str) -> str:
        await say(service, "emp1", text)
        await service.outbox.drain()
        return text_of(last_to(chat, "emp1"))

    assert (await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id))).toast_kind == "info"
    await service.outbox.drain()
    assert last_to(chat, "emp1").header.title == "请回答（1/12）"
    assert "目标 1 的关键结果" in await answer("计费系统故障处理提速")
    assert "目标 1 的权重" in await answer("计费故障恢复时间从 60 分钟降到 15 分钟\n提升计费稳定性")
    asked = await answer("100")
    assert "1. 王经理：团队招聘\\n2. 王经理：计费系统稳定运行\\n3. 不对齐" in asked  # a numbered choice
    await answer("1")
    for _ in range(7):
        await answer("跳过")
    back = await answer("跳过")
    assert "“提升计费稳定性”没有可衡量的目标" in back and "要修改哪一项" in back
    assert await _goals(service, cycle_id, org.emp1.id) == []
    assert "当前：计费故障恢复时间从 60 分钟降到 15 分钟" in await answer("3")  # the key results of goal 1
    await answer("计费故障恢复时间从 60 分钟降到 15 分钟；3 月 31 日前上线计费告警")
    [goal] = await _goal_rows(service, cycle_id, org.emp1.id)
    assert (goal.objective, goal.weight, goal.parent_id) == ("计费系统故障处理提速", 100, hiring.id)
    assert [k.kind for k in await _krs(service, goal.id)] == ["number", "date"]
    assert billing.id != hiring.id
