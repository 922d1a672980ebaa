"""Grades: who proposes, the audit trail, the calibration guard at its boundary, and release by HR only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from adapters.base import CallbackAnswer
from bot.app.service import Service
from bot.core.config import Settings
from cards import grades as gc
from cards.actions import unpack
from cards.model import Card
from storage.models import Cycle, CycleParticipant, Grade, Person
from storage.queries.grades import deviations
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, has_enabled, last_to, last_update, say, text_of
from tests.support.flows3 import audit, make_cycle, rows


def test_deviation_is_strictly_beyond_the_boundary() -> None:
    history = [{"A": 0.25, "B": 0.75}, {"A": 0.75, "B": 0.25}]  # mean 0.5, SD 0.25 for both
    common: dict[str, Any] = {"scale": ["A", "B"], "min_history": 2, "band": {}}
    assert deviations({"A": 1.0}, history, sigma=2.0, **common) == []  # exactly 2 SD away
    found = deviations({"A": 1.0}, history, sigma=1.99, **common)
    assert [(d.grade, d.direction, d.rule) for d in found] == [("A", "high", "sigma"), ("B", "low", "sigma")]
    assert deviations({"A": 1.0}, history[:1], sigma=2.0, **common) == []  # too little history
    banded = deviations(
        {"A": 0.5, "B": 0.5}, [], sigma=2.0, scale=["A", "B"], min_history=2, band={"A": (0.0, 0.3)}
    )
    assert [(d.grade, d.rule) for d in banded] == [("A", "band")]


async def seed_history(service: Service, org: Org) -> Person:
    """Two released cycles of 研发部 with A shares 25 % and 75 %; returns a fourth 研发部 member."""
    async with service.factory() as s, s.begin():
        emp3 = Person(
            workspace_id=org.workspace.id,
            platform_user_id="emp3",
            name="王五",
            department_id=org.rnd.id,
            manager_id=org.manager.id,
        )
        s.add(emp3)
        await s.flush()
        team = [org.manager.id, org.emp1.id, org.emp2.id, emp3.id]
        for code, grades in (("2026-Q2", "ABBB"), ("2026-Q3", "AAAB")):
            cycle = Cycle(
                workspace_id=org.workspace.id,
                code=code,
                status="closed",
                started_at=datetime(2026, 4, 1, tzinfo=UTC),
            )
            s.add(cycle)
            await s.flush()
            for pid, g in zip(team, grades, strict=True):
                s.add(
                    Grade(
                        cycle_id=cycle.id,
                        person_id=pid,
                        department_id=org.rnd.id,
                        grade=g,
                        status="released",
                        released_at=datetime(2026, 7, 1, tzinfo=UTC),
                    )
                )
    return emp3


async def propose(
    service: Service, sender: str, cycle: Cycle, person: Person, grade: str, reason: str
) -> str:
    answer = await click(
        service,
        sender,
        gc.GradePropose(cycle_id=cycle.id, person_id=person.id),
        {"grade": grade, "reason": reason},
    )
    return answer.toast_kind


async def tap(
    service: Service,
    recorder: RecordingAdapter,
    sender: str,
    payload: Any,
    form: dict[str, Any] | None = None,
) -> tuple[CallbackAnswer, Card | None]:
    """Click, deliver, and return the answer with the clicked card's new version (None if unchanged)."""
    before = len(recorder.updates)
    answer = await click(service, sender, payload, form)
    await service.outbox.drain()
    mine = [card for _, card, rcpt in recorder.updates[before:] if rcpt == sender]
    return answer, (mine[-1] if mine else None)


@pytest.mark.parametrize(("sigma", "alerted"), [(2.0, False), (1.9, True)])
async def test_calibration_alert_at_the_boundary(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings, sigma: float, alerted: bool
) -> None:
    settings.feedback.calibration_sigma = sigma
    await seed_history(service, org)
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    assert await propose(service, "mgr", cycle, org.emp1, "A", "全年交付 4 个项目，全部按期") == "success"
    await service.outbox.drain()
    assert not recorder.to("hr")  # the department is not complete yet: no alert on a partial picture
    assert await propose(service, "mgr", cycle, org.emp2, "A", "主导 2 次架构升级，零事故") == "success"
    await service.outbox.drain()
    alerts = [c for c in recorder.to("hr") if "校准" in c.header.title]
    head_alerts = [
        c for c in recorder.to("mgr") if "校准" in c.header.title or "Calibration" in c.header.title
    ]
    assert bool(alerts) is alerted and bool(head_alerts) is alerted
    if alerted:
        assert "研发部" in text_of(alerts[0]) and "100%" in text_of(alerts[0])
        # The anomaly locks the department's grades: the manager cannot change them until HR reviewed.
        assert {g.status for g in await rows(service, Grade, Grade.cycle_id == cycle.id)} == {"locked"}
        locked = await click(
            service,
            "mgr",
            gc.GradePropose(cycle_id=cycle.id, person_id=org.emp2.id),
            {"grade": "B", "reason": "主导 2 次架构升级，零事故，补充说明"},
        )
        assert locked.toast_kind == "error" and "锁定" in (locked.toast or "")
        # HR may, and re-proposing the same picture does not alert again.
        recorder.clear()
        assert (
            await propose(service, "hr", cycle, org.emp2, "A", "主导 2 次架构升级，零事故，补充说明")
            == "success"
        )
        await service.outbox.drain()
        assert not recorder.to("hr")
    else:
        assert {g.status for g in await rows(service, Grade, Grade.cycle_id == cycle.id)} == {"proposed"}


async def test_only_managers_or_hr_propose_and_every_change_is_audited(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    assert await propose(service, "smgr", cycle, org.emp1, "A", "不是我的下属") == "error"
    assert await propose(service, "emp2", cycle, org.emp1, "A", "同事互评") == "error"
    assert await propose(service, "mgr", cycle, org.emp1, "E", "不在等级表里") == "error"
    assert await propose(service, "mgr", cycle, org.emp1, "B", "") == "error"
    assert await propose(service, "mgr", cycle, org.emp1, "B", "完成 3 个目标中的 2 个") == "success"
    assert (
        await propose(service, "hr", cycle, org.emp1, "A", "校准会后上调：第 3 个目标延期是客户原因")
        == "success"
    )
    [proposed] = await audit(service, "grade.proposed")
    [changed] = await audit(service, "grade.changed")
    assert (proposed.actor_id, proposed.detail["to"], proposed.detail["why"]) == (
        org.manager.id,
        "B",
        "完成 3 个目标中的 2 个",
    )
    assert (changed.actor_id, changed.detail["from"], changed.detail["to"]) == (org.hr.id, "B", "A")
    assert changed.detail["why"].startswith("校准会后上调")

    # The proposal card rests on facts: the goals are on it.
    await say(service, "mgr", "/grade @张三")
    await service.outbox.drain()
    card = text_of(last_to(recorder, "mgr"))
    assert "张三 目标一" in card and "当前提议：A" in card


async def test_release_only_by_hr_in_one_broadcast_then_locked(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2, org.seller])
    assert await propose(service, "mgr", cycle, org.emp1, "A", "全年交付 4 个项目") == "success"
    assert await propose(service, "mgr", cycle, org.emp2, "B", "完成 2 个目标") == "success"
    assert await propose(service, "smgr", cycle, org.seller, "C", "销售额完成 70%") == "success"
    await service.outbox.drain()
    recorder.clear()
    release = gc.GradesRelease(cycle_id=cycle.id)
    for uid in ("mgr", "emp1", "leader", "hrbp"):
        assert (await click(service, uid, release)).toast_kind == "error"
    await say(service, "mgr", "/grades")
    await service.outbox.drain()
    assert all(g.status == "proposed" for g in await rows(service, Grade))
    assert not recorder.to("emp1") and not recorder.to("emp2")

    await say(service, "hr", "/grades 2026-Q4")
    await service.outbox.drain()
    dist = text_of(last_to(recorder, "hr"))
    assert "研发部" in dist and "销售部" in dist
    ask, ask_card = await tap(service, recorder, "hr", release)  # never on the first tap
    assert ask.toast_kind == "warning" and ask_card is not None
    assert all(g.status == "proposed" for g in await rows(service, Grade))
    recorder.clear()
    assert (await click(service, "hr", button(ask_card, gc.GradesRelease))).toast_kind == "success"
    assert (await click(service, "hr", release)).toast_kind == "error"  # nothing left to release
    await service.outbox.drain()
    assert ["A", "B", "C"] == [
        next(c for c in recorder.to(uid) if "**" in text_of(c)).elements[0].text.split("**")[1]  # type: ignore[union-attr]
        for uid in ("emp1", "emp2", "seller")
    ]
    assert all(len(recorder.to(uid)) == 1 for uid in ("emp1", "emp2", "seller"))
    assert all(g.status == "released" and g.released_by_id == org.hr.id for g in await rows(service, Grade))
    [released] = await audit(service, "grades.released")
    assert released.actor_id == org.hr.id and released.detail["count"] == 3
    assert await propose(service, "mgr", cycle, org.emp1, "B", "发布后想改") == "error"


async def test_anomaly_locks_until_hr_reviews_then_release_needs_no_second_confirmation(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings
) -> None:
    """Issue 20 #2: an anomaly locks the department's grades (no change, no release) until HR reviews them
    on the alert card; the review unlocks them, is audited and counts as having read the warnings."""
    settings.feedback.calibration_band = {"A": (0.0, 0.5)}
    cycle = await make_cycle(service, [org.emp1, org.emp2, org.seller])
    assert await propose(service, "mgr", cycle, org.emp1, "A", "全年交付 4 个项目") == "success"
    assert await propose(service, "smgr", cycle, org.seller, "B", "销售额完成 90%") == "success"
    assert await propose(service, "mgr", cycle, org.emp2, "A", "主导 2 次架构升级") == "success"
    await service.outbox.drain()
    [alert] = [c for c in recorder.to("hr") if "研发部" in c.header.title]
    assert "2 个评级已锁定" in text_of(alert) and has_enabled(alert, gc.GradesReview)
    [head_copy] = [c for c in recorder.to("mgr") if "研发部" in c.header.title]
    assert not head_copy.buttons()  # the department head is told, HR decides
    statuses = {g.person_id: g.status for g in await rows(service, Grade)}
    assert statuses == {org.emp1.id: "locked", org.emp2.id: "locked", org.seller.id: "proposed"}
    [locked] = await audit(service, "grades.locked")
    assert locked.detail["department_id"] == org.rnd.id and len(locked.detail["grade_ids"]) == 2

    # Release goes ahead for the unlocked department only, and says what is held back.
    first, first_card = await tap(service, recorder, "hr", gc.GradesRelease(cycle_id=cycle.id))
    assert first.toast_kind == "warning" and first_card is not None
    assert "2 人的评级因校准异常被锁定" in text_of(first_card)

    # Nobody but HR reviews; the review unlocks and is audited.
    review = button(alert, gc.GradesReview)
    for uid in ("mgr", "emp1", "hrbp"):
        assert (await click(service, uid, review)).toast_kind == "error"
    assert {g.status for g in await rows(service, Grade) if g.department_id == org.rnd.id} == {"locked"}
    done, done_card = await tap(service, recorder, "hr", review)
    assert done.toast == "已复核 研发部：2 个评级解锁，可以发布了。" and done_card is not None
    assert not has_enabled(done_card, gc.GradesReview) and "复核并解锁了 2 个评级" in text_of(done_card)
    assert all(g.status == "proposed" for g in await rows(service, Grade))
    [reviewed] = await audit(service, "grades.reviewed")
    assert reviewed.actor_id == org.hr.id and reviewed.detail["keys"] == [f"{org.rnd.id}:A:high"]
    again = await click(service, "hr", review)
    assert again.toast_kind == "error" and "没有被锁定的评级" in (again.toast or "")

    # The warnings count as read: the confirmation offers "release" straight away.
    ask, ask_card = await tap(service, recorder, "hr", gc.GradesRelease(cycle_id=cycle.id))
    assert ask.toast_kind == "warning" and ask_card is not None
    assert "A 占比 100%，超出设定范围 0%–50%" in text_of(ask_card)
    assert (await click(service, "hr", button(ask_card, gc.GradesRelease))).toast_kind == "success"
    assert all(g.status == "released" for g in await rows(service, Grade))
    [*_, released] = await audit(service, "grades.released")
    assert released.detail["override"] is True


async def test_release_with_unseen_warnings_needs_them_read(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings
) -> None:
    """A second HR admin, who did not review the department, must still read the warnings before release."""
    settings.feedback.calibration_band = {"A": (0.0, 0.5)}
    async with service.factory() as s, s.begin():
        s.add(Person(workspace_id=org.workspace.id, platform_user_id="hr2", name="刘人事", roles="hr_admin"))
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    assert await propose(service, "mgr", cycle, org.emp1, "A", "全年交付 4 个项目") == "success"
    assert await propose(service, "mgr", cycle, org.emp2, "A", "主导 2 次架构升级") == "success"
    await service.outbox.drain()
    [alert] = [c for c in recorder.to("hr") if "研发部" in c.header.title]
    assert (await click(service, "hr", button(alert, gc.GradesReview))).toast_kind == "success"
    await service.outbox.drain()
    assert not has_enabled(last_update(recorder, "hr2"), gc.GradesReview)  # hr2's copy went final too
    first, first_card = await tap(service, recorder, "hr2", gc.GradesRelease(cycle_id=cycle.id))
    assert first.toast_kind == "warning" and first_card is not None
    assert "点「我已查看校准提醒」后才能发布" in text_of(first_card)
    assert not any(isinstance(unpack(b.value), gc.GradesRelease) for b in first_card.buttons())
    forced = await click(service, "hr2", gc.GradesRelease(cycle_id=cycle.id, confirm=True))
    assert forced.toast == "发布前请先查看校准提醒。"
    assert all(g.status == "proposed" for g in await rows(service, Grade))
    seen, seen_card = await tap(service, recorder, "hr2", button(first_card, gc.GradesAlertSeen))
    assert seen.toast_kind == "success" and seen_card is not None
    assert (await click(service, "hr2", button(seen_card, gc.GradesRelease))).toast_kind == "success"
    assert all(g.status == "released" for g in await rows(service, Grade))


async def test_no_grade_before_goals_are_confirmed(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Issue 20 #2: a grade rests on confirmed goals; the refusal says where they stand."""
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    async with service.factory() as s, s.begin():
        for p, state in ((org.emp1, "submitted"), (org.emp2, "none")):
            part = await s.scalar(
                select(CycleParticipant).where(
                    CycleParticipant.cycle_id == cycle.id, CycleParticipant.person_id == p.id
                )
            )
            assert part is not None
            part.goals_status = state
    refused = await say(service, "mgr", "/grade @张三")
    assert refused.toast == (
        "张三 在 2026-Q4 的目标还没有确认（现在：已提交，等经理确认），评级要以确认过的目标为依据，"
        "所以暂时不能评级。目标确认后再用 /grade @张三。"
    )
    answer = await click(
        service,
        "hr",
        gc.GradePropose(cycle_id=cycle.id, person_id=org.emp2.id),
        {"grade": "B", "reason": "完成 2 个目标"},
    )
    assert answer.toast_kind == "error" and "还没有提交目标" in (answer.toast or "")
    assert await rows(service, Grade) == []
    async with service.factory() as s, s.begin():
        part = await s.scalar(select(CycleParticipant).where(CycleParticipant.person_id == org.emp1.id))
        assert part is not None
        part.goals_status = "confirmed"
    assert await propose(service, "mgr", cycle, org.emp1, "B", "完成 3 个目标中的 2 个") == "success"


async def test_release_names_the_ungraded_and_rechecks_before_sending(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Issue 15 #6: grades went out on the first tap with 1 of 40 graded."""
    cycle = await make_cycle(service, [org.emp1, org.emp2, org.seller])
    assert await propose(service, "mgr", cycle, org.emp1, "A", "全年交付 4 个项目") == "success"
    await service.outbox.drain()
    recorder.clear()

    await say(service, "hr", "/grades")  # no code: the active cycle
    await service.outbox.drain()
    dist = last_to(recorder, "hr")
    assert "2026-Q4" in dist.header.title and "已评级 **1 / 3** 人" in text_of(dist)
    ask, ask_card = await tap(service, recorder, "hr", button(dist, gc.GradesRelease))
    assert ask.toast == "请先确认：1 人将收到结果，2 人还没有评级。" and ask_card is not None
    assert "还有 2 人没有评级" in text_of(ask_card)
    assert button(ask_card, gc.GradesRelease).confirm
    assert all(g.status == "proposed" for g in await rows(service, Grade))
    assert not recorder.to("emp1")

    # who, on request: a separate card with each person's manager
    listing = await click(service, "hr", button(ask_card, gc.GradesUngraded))
    assert listing.toast == "未评级名单（2 人）已发给你。"
    await service.outbox.drain()
    who = text_of(last_to(recorder, "hr"))
    assert "李四 · 研发部 · 经理：王经理" in who and "周销售 · 销售部 · 经理：孙经理" in who
    assert "张三" not in who
    assert (await click(service, "emp1", button(ask_card, gc.GradesUngraded))).toast_kind == "error"

    # another grade arrives after the confirmation was shown: confirm shows the new numbers instead
    assert await propose(service, "mgr", cycle, org.emp2, "B", "完成 2 个目标") == "success"
    stale, stale_card = await tap(service, recorder, "hr", button(ask_card, gc.GradesRelease))
    assert stale.toast == "情况有变：现在 2 人待发布、1 人未评级。请看更新后的卡片再确认。"
    assert all(g.status == "proposed" for g in await rows(service, Grade))
    assert stale_card is not None
    done, done_card = await tap(service, recorder, "hr", button(stale_card, gc.GradesRelease))
    assert done.toast == "已向 2 人发布结果。" and done_card is not None
    assert "已评级 **2 / 3** 人（其中已发布 2 人）· 未评级 **1** 人" in text_of(done_card)
    assert not any(b for b in done_card.buttons() if not b.disabled)
    [released] = await audit(service, "grades.released")
    assert released.detail["count"] == 2 and released.detail["ungraded"] == 1


async def test_grades_without_a_cycle_uses_the_active_one(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Issue 15 #13: ``/grades`` without a code answered "没有找到评级"."""
    nothing = await say(service, "hr", "/grades")
    assert (nothing.toast or "").startswith("目前没有进行中的周期，也没有任何评级。用法：/grades [周期代码]")
    await make_cycle(service, [org.emp1, org.emp2])
    await say(service, "hr", "/grades")
    await service.outbox.drain()
    card = last_to(recorder, "hr")
    assert "2026-Q4" in card.header.title and "还没有评级" in text_of(card)
    assert "未评级 **2** 人" in text_of(card)
    await say(service, "hr", "/grades 2026q4")
    await service.outbox.drain()
    assert "2026-Q4" in last_to(recorder, "hr").header.title
    wrong = await say(service, "hr", "/grades 2026-Q9")
    assert wrong.toast == "没有找到周期 2026-Q9。有评级或进行中的周期：2026-Q4。用法：/grades [周期代码]。"


def _form_values(card: Card) -> dict[str, str | None]:
    return {i.name: i.default for f in card.forms() for i in f.inputs}


@pytest.mark.parametrize("vague", ["加强沟通", "表现一般"])
async def test_vague_reason_is_bounced_once_keeping_what_was_entered(
    service: Service, org: Org, recorder: RecordingAdapter, vague: str
) -> None:
    """Issue 15 #1 and #7: a grade reason is a promise of facts; a bounce keeps the grade and the text."""
    cycle = await make_cycle(service, [org.emp1])
    answer, card = await tap(
        service,
        recorder,
        "mgr",
        gc.GradePropose(cycle_id=cycle.id, person_id=org.emp1.id),
        {"grade": "C", "reason": vague},
    )
    assert answer.toast_kind == "warning" and card is not None
    assert _form_values(card) == {"grade": "C", "reason": vague}
    assert await rows(service, Grade) == []
    # asked once: the same text again is saved as written
    assert await propose(service, "mgr", cycle, org.emp1, "C", vague) == "success"
    [grade] = await rows(service, Grade)
    assert (grade.grade, grade.reason) == ("C", vague)


async def test_incomplete_grade_form_keeps_the_reason(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1])
    answer, card = await tap(
        service,
        recorder,
        "mgr",
        gc.GradePropose(cycle_id=cycle.id, person_id=org.emp1.id),
        {"grade": "", "reason": "完成 3 个目标中的 2 个"},
    )
    assert answer.toast_kind == "error" and card is not None
    assert _form_values(card)["reason"] == "完成 3 个目标中的 2 个"


async def test_grading_goes_on_while_a_cycle_closes_and_stops_once_it_is_closed(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Grading is how a cycle is wrapped up: `/grade` and the form work while it is *closing*; once it is
    *closed* a proposal is refused with the cycle's code and the way to correct a released grade."""
    cycle = await make_cycle(service, [org.emp1, org.emp2], status="closing")
    await say(service, "mgr", "/grade @张三")
    await service.outbox.drain()
    assert "张三 目标一" in text_of(last_to(recorder, "mgr"))
    assert await propose(service, "mgr", cycle, org.emp1, "B", "完成 3 个目标中的 2 个") == "success"

    async with service.factory() as s, s.begin():
        row = await s.get(Cycle, cycle.id)
        assert row is not None
        row.status = "closed"
    answer = await click(
        service,
        "mgr",
        gc.GradePropose(cycle_id=cycle.id, person_id=org.emp2.id),
        {"grade": "B", "reason": "完成 3 个目标中的 2 个"},
    )
    assert answer.toast_kind == "error" and "2026-Q4" in (answer.toast or "")
    assert [g.person_id for g in await rows(service, Grade)] == [org.emp1.id]
