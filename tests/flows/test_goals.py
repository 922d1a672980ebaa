"""Goals: form, weights = 100, copy last cycle, manager confirm/return (vague-guarded), the goals themselves
vague-guarded (issue 15 #7), authorisation."""

from __future__ import annotations

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
from storage.models import AuditLog, Cycle, CycleParticipant, Goal
from tests.fakes.recording import RecordingAdapter
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


FORM_OK = {
    "objective_1": "上线新计费系统",
    "key_result_1": "3 月底前全量",
    "weight_1": "60",
    "objective_2": "降低故障率",
    "key_result_2": "P1 故障 ≤ 1 次",
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
    assert names[:3] == ["objective_1", "key_result_1", "weight_1"] and len(names) == 15  # max_goals = 5
    assert button(form_card, GoalsCopy).cycle_id == cycle_id

    bad = dict(FORM_OK, weight_2="30")
    answer = await click(service, "emp1", button(form_card, GoalsSubmit), bad, message_ref="form-1")
    await service.outbox.drain()
    assert answer.toast == "权重合计为 90%，必须正好是 100%。" and answer.toast_kind == "error"
    error_card = last_update(recorder, "emp1")
    assert error_card.header.colour == "red" and "90%" in text_of(error_card)
    assert "上线新计费系统" in text_of(error_card)  # what was typed is kept
    assert await _goals(service, cycle_id, org.emp1.id) == []
    assert (await _participant(service, cycle_id, org.emp1.id)).goals_status == "none"
    assert recorder.to("mgr")[-1].header.title.startswith("考核周期")  # manager got nothing new

    answer = await click(
        service, "emp1", GoalsSubmit(cycle_id=cycle_id), {"objective_1": "x", "weight_1": "abc"}
    )
    assert "整数" in (answer.toast or "")
    answer = await click(
        service, "emp1", GoalsSubmit(cycle_id=cycle_id), {"key_result_1": "y", "weight_1": "100"}
    )
    assert "缺少" in (answer.toast or "")


async def test_submit_confirm_and_lifecycle(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    cycle_id = await _start(service)
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), FORM_OK)
    await service.outbox.drain()
    assert await _goals(service, cycle_id, org.emp1.id) == [("上线新计费系统", 60), ("降低故障率", 40)]
    cp = await _participant(service, cycle_id, org.emp1.id)
    assert cp.goals_status == "submitted"
    review = last_to(recorder, "mgr")
    assert "张三" in review.header.title and "上线新计费系统" in text_of(review)
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

    assert (await click(service, "mgr", confirm)).toast == "这张卡片已经处理过了。"
    answer = await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), FORM_OK)
    assert answer.toast == "目标已经被上级确认，不能再修改。"
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

    # the employee resubmits; the manager gets a fresh card
    await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), FORM_OK)
    await service.outbox.drain()
    assert (await _participant(service, cycle_id, org.emp1.id)).goals_status == "submitted"
    assert has_enabled(last_to(recorder, "mgr"), GoalsConfirm)


VAGUE_FORM = {
    "objective_1": "上线新计费系统",
    "key_result_1": "3 月底前全量",
    "weight_1": "60",
    "objective_2": "进一步加强团队沟通协作能力",
    "weight_2": "30%",
    "objective_4": "提升客户满意度",
    "key_result_4": "客户满意度有明显提升",
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
    """A slogan objective with no key result, and a key result that measures nothing, are asked about once;
    the form comes back with every slot exactly as typed (the empty third one too, so numbers hold)."""
    cycle_id = await _start(service)
    answer = await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), VAGUE_FORM, message_ref="form-1")
    await service.outbox.drain()
    assert answer.toast_kind == "warning" and "第 2 个目标" in (answer.toast or "")
    bounce = last_update(recorder, "emp1")
    assert bounce.header.colour == "orange"
    body = text_of(bounce)
    assert "第 2 个目标" in body and "第 4 个目标" in body and "第 1 个目标" not in body
    assert "内容都保留着" in body
    typed = {i.name: i.default for f in bounce.forms() for i in f.inputs}
    for name, value in VAGUE_FORM.items():
        assert typed[name] == value, name
    assert not typed["objective_3"] and not typed["key_result_2"]
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
        "key_result_1": "Q3 结束前 NPS 从 32 提高到 40",
        "weight_1": "50",
        "objective_2": "上线新版会员积分系统",
        "weight_2": "50",
    }
    answer = await click(service, "emp1", GoalsSubmit(cycle_id=cycle_id), form)
    assert answer.toast == "目标已提交，等待上级确认。"
    cp = await _participant(service, cycle_id, org.emp1.id)
    assert cp.goals_status == "submitted" and await _vague_audit(service, cp.id) == []


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
    typed = {i.name: i.default for f in form.forms() for i in f.inputs}
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
    q1 = await _start(service, "2026-Q1")
    assert (await click(service, "emp1", GoalsCopy(cycle_id=q1))).toast == "没有找到你上个周期的目标。"
    await click(service, "emp1", GoalsSubmit(cycle_id=q1), FORM_OK)
    q2 = await _start(service, "2026-Q2")
    await click(service, "emp1", GoalsCopy(cycle_id=q2), message_ref="q2-form")
    await service.outbox.drain()
    assert await _goals(service, q2, org.emp1.id) == [("上线新计费系统", 60), ("降低故障率", 40)]
    assert (await _participant(service, q2, org.emp1.id)).goals_status == "submitted"
    assert await _goals(service, q1, org.emp1.id) == [("上线新计费系统", 60), ("降低故障率", 40)]
    assert "2026-Q2" in last_to(recorder, "mgr").header.title


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
