"""Closing a cycle (issue 20 #1): preview → carry over or cancel → confirm → one closing card each, with
every state change audited, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.app.cycle_cli import CycleCommandFailed, close_from_cli
from bot.app.kickoff_cli import kickoff_from_cli
from bot.app.service import Service
from cards import self_assessment as sc
from cards.cycle_close import CycleCloseBack, CycleCloseChoose, CycleCloseConfirm, CycleCloseResume
from cards.flow_actions import CheckinSubmit, GoalsEdit, KickoffAck
from cards.model import Card, Fields
from handlers.feedback.api import open_self_assessment
from storage.models import (
    ActionItem,
    AuditLog,
    CheckIn,
    Cycle,
    CycleParticipant,
    DeliverableRating,
    Goal,
    Grade,
    GradeAppeal,
    SelfAssessment,
)
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, has_enabled, last_to, last_update, run_as, say, text_of
from tests.support.flows3 import dims, make_cycle, rows

AT = datetime(2026, 11, 1, tzinfo=UTC)


def _fields(card: Card) -> dict[str, str]:
    return {kv.label: kv.value for el in card.elements if isinstance(el, Fields) for kv in el.items}


async def _get(service: Service, model: type[Any], row_id: int) -> Any:
    async with service.factory() as s:
        return await s.get(model, row_id, populate_existing=True)


async def _cycle(service: Service, code: str) -> Cycle:
    async with service.factory() as s:
        cycle = await s.scalar(select(Cycle).where(Cycle.code == code))
        assert cycle is not None
        return cycle


async def _moves(service: Service, cycle_id: int) -> list[tuple[str, str | None, str, int | None]]:
    async with service.factory() as s:
        found = await s.scalars(
            select(AuditLog)
            .where(
                AuditLog.entity == "cycle",
                AuditLog.entity_id == cycle_id,
                AuditLog.action != "cycle.previewed",
            )
            .order_by(AuditLog.id)
        )
        return [(r.action, r.detail.get("from"), r.detail.get("via"), r.actor_id) for r in found]


class Fixture:
    """One cycle, 2026-Q4, whose open items are counted by hand below."""

    def __init__(self, cycle: Cycle, ids: dict[str, int]) -> None:
        self.cycle = cycle
        self.ids = ids


async def _fixture(service: Service, org: Org) -> Fixture:
    """Participants: manager, emp1, emp2, seller (4, all active).

    - grades: emp1 released, emp2 proposed → ungraded 2 (manager, seller), unreleased 1;
    - check-ins: emp1 open, seller open, emp2 submitted (answered), manager open without a cycle
      → open 2;
    - action items: emp1 open, emp2 returned (still to deliver), seller done, leader open (not in scope)
      → open 2;
    - ratings: emp1's open item rated by two people (one deliverable), emp2's goal of this cycle (open),
      seller's goal of another cycle (not this one), a submitted one → unrated deliverables 2;
    - appeals: one open on emp1's released grade, one upheld → pending 1.
    """
    cycle = await make_cycle(service, [org.manager, org.emp1, org.emp2, org.seller], goals=False)
    other = await make_cycle(service, [org.seller], code="2027-Q1", goals=False)
    ids: dict[str, int] = {}
    async with service.factory() as s, s.begin():
        goal = Goal(cycle_id=cycle.id, person_id=org.emp2.id, position=0, objective="上线新官网", weight=100)
        old_goal = Goal(cycle_id=other.id, person_id=org.seller.id, position=0, objective="签约", weight=100)
        released = Grade(
            cycle_id=cycle.id, person_id=org.emp1.id, grade="B", status="released", released_at=AT
        )
        s.add_all([goal, old_goal, released])
        s.add(Grade(cycle_id=cycle.id, person_id=org.emp2.id, grade="A", status="proposed"))
        checkins = {
            "c_emp1": CheckIn(person_id=org.emp1.id, cycle_id=cycle.id, period="2026-11-20", status="open"),
            "c_seller": CheckIn(
                person_id=org.seller.id, cycle_id=cycle.id, period="2026-11-20", status="open"
            ),
            "c_emp2": CheckIn(
                person_id=org.emp2.id, cycle_id=cycle.id, period="2026-11-20", status="submitted"
            ),
            "c_mgr": CheckIn(person_id=org.manager.id, cycle_id=None, period="2026-11-20", status="open"),
        }
        items = {
            "a_emp1": ActionItem(
                owner_id=org.emp1.id, source="manual", deliverable="回访", deadline=date(2026, 12, 1)
            ),
            "a_emp2": ActionItem(
                owner_id=org.emp2.id,
                source="manual",
                deliverable="补文档",
                deadline=date(2026, 12, 1),
                status="returned",
            ),
            "a_seller": ActionItem(
                owner_id=org.seller.id,
                source="manual",
                deliverable="报价",
                deadline=date(2026, 12, 1),
                status="done",
            ),
            "a_leader": ActionItem(
                owner_id=org.leader.id, source="manual", deliverable="战略", deadline=date(2026, 12, 1)
            ),
        }
        s.add_all([*checkins.values(), *items.values()])
        await s.flush()
        ratings = {
            "r_item_mgr": DeliverableRating(
                kind="action",
                ref_id=items["a_emp1"].id,
                owner_id=org.emp1.id,
                rater_id=org.manager.id,
                role="acceptor",
            ),
            "r_item_emp2": DeliverableRating(
                kind="action",
                ref_id=items["a_emp1"].id,
                owner_id=org.emp1.id,
                rater_id=org.emp2.id,
                role="collaborator",
            ),
            "r_goal": DeliverableRating(
                kind="goal", ref_id=goal.id, owner_id=org.emp2.id, rater_id=org.manager.id, role="acceptor"
            ),
            "r_old_goal": DeliverableRating(
                kind="goal",
                ref_id=old_goal.id,
                owner_id=org.seller.id,
                rater_id=org.sales_manager.id,
                role="acceptor",
            ),
            "r_done": DeliverableRating(
                kind="action",
                ref_id=items["a_emp2"].id,
                owner_id=org.emp2.id,
                rater_id=org.manager.id,
                role="acceptor",
                status="submitted",
            ),
        }
        s.add_all(ratings.values())
        await s.flush()
        common = {
            "cycle_id": cycle.id,
            "person_id": org.emp1.id,
            "grade_id": released.id,
            "grade_before": "B",
        }
        s.add(GradeAppeal(**common, open_grade_id=released.id, reason="我的交付超出预期", status="open"))
        s.add(GradeAppeal(**common, reason="再看看", status="upheld", grade_after="B"))
        ids.update({k: v.id for k, v in {**checkins, **items, **ratings}.items()})
        ids["other_cycle"] = other.id
    return Fixture(cycle, ids)


EXPECTED = {
    "参与人数": "4",
    "未评级人数": "2",
    "已评级未发布": "1",
    "未提交的签到": "2",
    "未完成的行动项": "2",
    "待评分的交付物": "2",
    "待处理的申诉": "1",
}


async def test_preview_counts_what_is_open_and_moves_the_cycle_to_closing(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    fx = await _fixture(service, org)
    await say(service, "hr", "/closecycle 2026q4")
    await service.outbox.drain()
    preview = last_to(recorder, "hr")
    fields = _fields(preview)
    assert {k: fields[k] for k in EXPECTED} == EXPECTED
    assert fields["状态"] == "结束中" and "结束考核周期 2026-Q4" in preview.header.title
    assert "2 人没有评级、1 个评级尚未发布、1 个申诉待处理" in text_of(preview)
    assert "迟交的内容（自评、同事反馈、评级提议）将被拒绝" in text_of(preview)
    assert (await _cycle(service, "2026-Q4")).status == "closing"
    assert await _moves(service, fx.cycle.id) == [("cycle.closing", "active", "chat", org.hr.id)]
    # asking again while closing shows the preview again, without a second move
    await say(service, "hr", "/closecycle 2026-Q4")
    assert len(await _moves(service, fx.cycle.id)) == 1
    # nothing but the preview went out
    assert {d.recipient for d in recorder.sent} == {"hr"}


async def test_carry_over_keeps_open_items_and_tells_everyone_once(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    fx = await _fixture(service, org)
    await say(service, "hr", "/closecycle 2026-Q4")
    await service.outbox.drain()
    choose = button(last_to(recorder, "hr"), CycleCloseChoose)
    assert choose.mode == "carry_over"
    await click(service, "hr", choose, message_ref="close-1")
    await service.outbox.drain()
    asked = last_update(recorder, "hr")
    assert "确认结束考核周期 2026-Q4" in asked.header.title
    assert "未完成的事项将**顺延**：2 个签到、2 个行动项、2 个待评分的交付物。" in text_of(asked)
    answer = await click(service, "hr", button(asked, CycleCloseConfirm), message_ref="close-1")
    assert answer.toast == "周期 2026-Q4 已结束，已通知 4 人。"
    await service.outbox.drain()
    done = last_update(recorder, "hr")
    assert all(b.disabled for b in done.buttons()) and "陈人事" in text_of(done)

    cycle = await _cycle(service, "2026-Q4")
    assert (cycle.status, cycle.close_mode, cycle.closed_by_id) == ("closed", "carry_over", org.hr.id)
    assert cycle.closed_at is not None
    ids = fx.ids
    emp1_checkin = await _get(service, CheckIn, ids["c_emp1"])
    seller_checkin = await _get(service, CheckIn, ids["c_seller"])
    assert isinstance(emp1_checkin, CheckIn) and isinstance(seller_checkin, CheckIn)
    assert (emp1_checkin.status, emp1_checkin.cycle_id) == ("open", None)
    assert (seller_checkin.status, seller_checkin.cycle_id) == ("open", ids["other_cycle"])  # his next cycle
    for key, status in (("a_emp1", "open"), ("a_emp2", "returned"), ("a_leader", "open")):
        item = await _get(service, ActionItem, ids[key])
        assert isinstance(item, ActionItem) and item.status == status
    rating = await _get(service, DeliverableRating, ids["r_goal"])
    assert isinstance(rating, DeliverableRating) and rating.status == "open"

    await service.outbox.drain()
    for uid in ("mgr", "emp1", "emp2", "seller"):
        closing = [c for c in recorder.to(uid) if "2026-Q4" in c.header.title]
        assert len(closing) == 1, uid
    assert "考核周期 2026-Q4 已结束" in last_to(recorder, "emp1").header.title
    assert "还没完成的行动项会继续保留" in text_of(last_to(recorder, "emp1"))
    assert "Performance cycle 2026-Q4 is closed" in last_to(recorder, "emp2").header.title
    assert recorder.to("leader") == [] and recorder.to("smgr") == []
    async with service.factory() as s:
        closed = await s.scalar(select(AuditLog).where(AuditLog.action == "cycle.closed"))
    assert closed is not None and closed.detail["mode"] == "carry_over"
    assert closed.detail["open"] == {
        "ungraded": 2,
        "unreleased": 1,
        "checkins": 2,
        "action_items": 2,
        "unrated_deliverables": 2,
        "pending_appeals": 1,
    }
    # grades and appeals are never touched by a close
    [appeal] = await rows(service, GradeAppeal, GradeAppeal.status == "open")
    assert appeal.open_grade_id is not None


async def test_cancel_settles_open_items_and_audits_each(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    fx = await _fixture(service, org)
    # without a code: the one running cycle, but 2027-Q1 runs too
    assert (await say(service, "hr", "/closecycle")).toast == (
        "有多个进行中的周期：2027-Q1、2026-Q4。请写明要结束哪一个，例如 /closecycle 2027-Q1。"
    )
    await say(service, "hr", "/closecycle 2026-Q4")
    await service.outbox.drain()
    preview = last_to(recorder, "hr")
    cancel = [b for b in preview.buttons() if b.style == "danger"]
    assert len(cancel) == 1
    answer = await click(service, "hr", CycleCloseChoose(cycle_id=fx.cycle.id, mode="cancel"))
    assert answer.toast_kind == "success"
    # the confirmation says what will happen, with the counts
    await click(service, "hr", CycleCloseBack(cycle_id=fx.cycle.id))
    await click(service, "hr", CycleCloseChoose(cycle_id=fx.cycle.id, mode="cancel"))
    answer = await click(service, "hr", CycleCloseConfirm(cycle_id=fx.cycle.id, mode="cancel"))
    assert answer.toast_kind == "success"
    ids = fx.ids
    expect = {
        (CheckIn, "c_emp1"): "missed",
        (CheckIn, "c_seller"): "missed",
        (CheckIn, "c_emp2"): "submitted",
        (CheckIn, "c_mgr"): "open",
        (ActionItem, "a_emp1"): "closed",
        (ActionItem, "a_emp2"): "closed",
        (ActionItem, "a_seller"): "done",
        (ActionItem, "a_leader"): "open",
        (DeliverableRating, "r_item_mgr"): "expired",
        (DeliverableRating, "r_item_emp2"): "expired",
        (DeliverableRating, "r_goal"): "expired",
        (DeliverableRating, "r_old_goal"): "open",
        (DeliverableRating, "r_done"): "submitted",
    }
    for (model, key), status in expect.items():
        row = await _get(service, model, ids[key])
        assert row.status == status, key
    async with service.factory() as s:
        audited = {
            (r.action, r.entity_id)
            for r in await s.scalars(
                select(AuditLog).where(AuditLog.detail["via"].as_string() == "cycle.close")
            )
        }
    assert audited == {
        ("checkin.missed", ids["c_emp1"]),
        ("checkin.missed", ids["c_seller"]),
        ("action_item.closed", ids["a_emp1"]),
        ("action_item.closed", ids["a_emp2"]),
        ("rating.expired", ids["r_item_mgr"]),
        ("rating.expired", ids["r_item_emp2"]),
        ("rating.expired", ids["r_goal"]),
    }
    await service.outbox.drain()
    assert "已取消，不需要再处理" in text_of(last_to(recorder, "seller"))
    # a stale check-in card of the closed cycle is refused, saying the check-in is over
    late = await click(service, "emp1", CheckinSubmit(checkin_id=ids["c_emp1"]), {"goal_overall": "60"})
    assert late.toast_kind == "error"
    checkin = await _get(service, CheckIn, ids["c_emp1"])
    assert isinstance(checkin, CheckIn) and checkin.status == "missed"


async def test_a_checkin_submitted_while_closing_is_accepted_and_left_alone(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    fx = await _fixture(service, org)
    await say(service, "hr", "/closecycle 2026-Q4")
    answer = await click(service, "emp1", CheckinSubmit(checkin_id=fx.ids["c_emp1"]), {"goal_overall": "60"})
    assert answer.toast_kind == "success"
    await click(service, "hr", CycleCloseConfirm(cycle_id=fx.cycle.id, mode="cancel"))
    checkin = await _get(service, CheckIn, fx.ids["c_emp1"])
    assert isinstance(checkin, CheckIn) and checkin.status == "submitted"
    async with service.factory() as s:
        closed = await s.scalar(select(AuditLog).where(AuditLog.action == "cycle.closed"))
    assert closed is not None and closed.detail["open"]["checkins"] == 1  # only the seller's was left


async def test_concurrent_close_and_late_submit_never_both_win(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """The close (cancelling open check-ins) and the employee's submit race: exactly one of them wins."""
    fx = await _fixture(service, org)
    await say(service, "hr", "/closecycle 2026-Q4")
    submit, close = await asyncio.gather(
        click(service, "emp1", CheckinSubmit(checkin_id=fx.ids["c_emp1"]), {"goal_overall": "60"}),
        click(service, "hr", CycleCloseConfirm(cycle_id=fx.cycle.id, mode="cancel")),
    )
    assert close.toast_kind == "success"
    checkin = await _get(service, CheckIn, fx.ids["c_emp1"])
    assert isinstance(checkin, CheckIn)
    async with service.factory() as s:
        missed = await s.scalar(
            select(AuditLog).where(
                AuditLog.action == "checkin.missed", AuditLog.entity_id == fx.ids["c_emp1"]
            )
        )
    if submit.toast_kind == "success":
        assert checkin.status == "submitted" and missed is None
    else:
        assert checkin.status == "missed" and missed is not None


async def test_closing_twice_is_refused_with_the_date(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    fx = await _fixture(service, org)
    await say(service, "hr", "/closecycle 2026-Q4")
    confirm = CycleCloseConfirm(cycle_id=fx.cycle.id, mode="carry_over")
    assert (await click(service, "hr", confirm)).toast_kind == "success"
    outbox_before = len(await rows(service, AuditLog))
    again = await click(service, "hr", confirm)
    assert again.toast == "周期 2026-Q4 已于 2026-11-24 结束，不能重复结束。"
    assert (await say(service, "hr", "/closecycle 2026-Q4")).toast == again.toast
    with pytest.raises(CycleCommandFailed, match="2026-11-24"):
        await close_from_cli(service, code="2026-Q4", mode="cancel", hr_user_id="hr", yes=True)
    assert len(await rows(service, AuditLog)) == outbox_before
    assert [m[0] for m in await _moves(service, fx.cycle.id)] == ["cycle.closing", "cycle.closed"]


async def test_draft_cancelled_and_unknown_cycles_are_refused_with_why(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    assert (await say(service, "hr", "/closecycle")).toast == "目前没有进行中的周期可以结束。"
    await make_cycle(service, [org.emp1], code="2027-Q1", status="draft", goals=False)
    await make_cycle(service, [org.emp1], code="2026-Q3", status="cancelled", goals=False)
    draft = await say(service, "hr", "/closecycle 2027-Q1")
    assert (
        draft.toast
        == "周期 2027-Q1 还没有启动（待确认），不需要结束。不要它了可以发送 /cancelcycle 2027-Q1。"
    )
    assert (await say(service, "hr", "/closecycle 2026-Q3")).toast == "周期 2026-Q3 已取消，不能再结束。"
    assert (await say(service, "hr", "/closecycle 2099-Q1")).toast == (
        "没有找到周期 2099-Q1，目前也没有进行中的周期可以结束。"
    )
    with pytest.raises(CycleCommandFailed, match="待确认"):
        await close_from_cli(service, code="2027-Q1", mode="cancel", hr_user_id="hr", yes=True)
    assert {c.status for c in await rows(service, Cycle)} == {"draft", "cancelled"}
    assert await rows(service, AuditLog, AuditLog.entity == "cycle") == []


async def test_only_hr_may_close_or_resume(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    fx = await _fixture(service, org)
    answer = await say(service, "mgr", "/closecycle 2026-Q4")
    assert answer.toast_kind == "error" and "HR" in (answer.toast or "")
    assert (await _cycle(service, "2026-Q4")).status == "active"
    await say(service, "hr", "/closecycle 2026-Q4")
    for payload in (
        CycleCloseConfirm(cycle_id=fx.cycle.id, mode="cancel"),
        CycleCloseChoose(cycle_id=fx.cycle.id, mode="cancel"),
        CycleCloseResume(cycle_id=fx.cycle.id),
    ):
        refused = await click(service, "emp1", payload)
        assert refused.toast_kind == "error" and "HR" in (refused.toast or "")
    assert (await _cycle(service, "2026-Q4")).status == "closing"
    with pytest.raises(CycleCommandFailed, match="HR"):
        await close_from_cli(service, code="2026-Q4", mode="cancel", hr_user_id="emp1", yes=True)


async def test_keep_running_takes_a_closing_cycle_back_and_old_buttons_say_so(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    fx = await _fixture(service, org)
    await say(service, "hr", "/closecycle 2026-Q4")
    answer = await click(service, "hr", CycleCloseResume(cycle_id=fx.cycle.id))
    assert answer.toast == "周期 2026-Q4 继续进行。"
    assert (await _cycle(service, "2026-Q4")).status == "active"
    stale = await click(service, "hr", CycleCloseConfirm(cycle_id=fx.cycle.id, mode="cancel"))
    assert (
        stale.toast
        == "周期 2026-Q4 已不在结束中（可能已恢复进行）。要结束它，请重新发送 /closecycle 2026-Q4。"
    )
    assert (await _cycle(service, "2026-Q4")).status == "active"
    assert await _moves(service, fx.cycle.id) == [
        ("cycle.closing", "active", "chat", org.hr.id),
        ("cycle.active", "closing", "chat", org.hr.id),
    ]


async def test_cli_previews_without_changing_anything_then_closes(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    fx = await _fixture(service, org)
    text = await close_from_cli(service, code="2026-Q4", mode=None, hr_user_id="hr", yes=False)
    assert "未评级人数: 2" in text and "待处理的申诉: 1" in text and "待评分的交付物: 2" in text
    assert "只是预览" in text
    assert (await _cycle(service, "2026-Q4")).status == "active"
    with pytest.raises(CycleCommandFailed, match="--carry-over"):
        await close_from_cli(service, code="2026-Q4", mode=None, hr_user_id="hr", yes=True)
    assert (await _cycle(service, "2026-Q4")).status == "active"
    done = await close_from_cli(service, code="2026-Q4", mode="cancel", hr_user_id="hr", yes=True)
    assert done.endswith(
        "已结束（取消未完成事项）：签到 2 个、行动项 2 个、待评分交付物 2 个；通知 4 人，排队 2 条消息。"
    )
    assert await _moves(service, fx.cycle.id) == [
        ("cycle.closing", "active", "cli", org.hr.id),
        ("cycle.closed", "closing", "cli", org.hr.id),
    ]


async def test_kickoff_cards_are_put_in_their_final_state(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await kickoff_from_cli(service, code="2026-Q4", departments=["研发部"], hr_user_id="hr")
    await service.outbox.drain()
    kickoff = last_to(recorder, "emp1")
    assert has_enabled(kickoff, KickoffAck) and has_enabled(kickoff, GoalsEdit)
    recorder.clear()
    await close_from_cli(service, code="2026-Q4", mode="carry_over", hr_user_id="hr", yes=True)
    await service.outbox.drain()
    for uid in ("emp1", "emp2", "mgr"):
        final = last_update(recorder, uid)
        assert all(b.disabled for b in final.buttons()), uid
    assert "周期 2026-Q4 已于 2026-11-24 结束" in text_of(last_update(recorder, "emp1"))
    assert "Cycle 2026-Q4 closed on 2026-11-24" in text_of(last_update(recorder, "emp2"))
    assert {d.recipient for d in recorder.sent} == {"emp1", "emp2", "mgr"}
    # its old "got it" is refused, naming the cycle
    refused = await click(service, "emp1", KickoffAck(cycle_id=(await _cycle(service, "2026-Q4")).id))
    assert refused.toast_kind == "error" and "2026-Q4" in (refused.toast or "")


async def _open_self_assessment(
    service: Service, org: Org, recorder: RecordingAdapter, cycle: Cycle
) -> sc.SelfAssessSubmit:
    await run_as(service, org.emp1.id, lambda ctx: open_self_assessment(ctx, cycle_id=cycle.id))
    await service.outbox.drain()
    return button(last_to(recorder, "emp1"), sc.SelfAssessSubmit)


async def test_late_self_assessment_follows_the_policy(
    service: Service, org: Org, recorder: RecordingAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2], goals=False)
    submit = await _open_self_assessment(service, org, recorder, cycle)
    await close_from_cli(service, code="2026-Q4", mode="carry_over", hr_user_id="hr", yes=True)
    refused = await click(service, "emp1", submit, dims(4))
    assert (
        refused.toast == "周期 2026-Q4 已于 2026-11-24 结束，不再接受提交。如果这份内容仍然重要，请联系 HR。"
    )
    [sa] = await rows(service, SelfAssessment)
    assert sa.status == "open"

    monkeypatch.setattr(service.settings.cycles, "late_submissions", "accept")
    assert (await click(service, "emp1", submit, dims(4))).toast_kind == "success"
    [sa] = await rows(service, SelfAssessment)
    assert sa.status == "submitted"
    [row] = await rows(service, AuditLog, AuditLog.action == "selfassess.submitted")
    assert row.detail["late"] is True


async def test_self_assessment_started_before_closing_is_taken_while_closing(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2], goals=False)
    submit = await _open_self_assessment(service, org, recorder, cycle)
    await say(service, "hr", "/closecycle 2026-Q4")
    assert (await _cycle(service, "2026-Q4")).status == "closing"
    assert (await click(service, "emp1", submit, dims(4))).toast_kind == "success"
    [row] = await rows(service, AuditLog, AuditLog.action == "selfassess.submitted")
    assert row.detail["late"] is False
    # nothing new starts in a closing cycle
    assert (
        await run_as(service, org.emp2.id, lambda ctx: open_self_assessment(ctx, cycle_id=cycle.id)) is None
    )


async def test_participants_count_only_people_still_here(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2], goals=False)
    async with service.factory() as s, s.begin():
        emp2 = await s.get(type(org.emp2), org.emp2.id)
        assert emp2 is not None
        emp2.active = False
    line = await close_from_cli(service, code="2026-Q4", mode=None, hr_user_id="hr", yes=False)
    assert "参与人数: 1" in line and "未评级人数: 1" in line
    assert len(await rows(service, CycleParticipant, CycleParticipant.cycle_id == cycle.id)) == 2
