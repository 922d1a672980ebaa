"""The method's participation figures (issue 20 #8) against a hand-computed fixture, on SQLite and PostgreSQL.

Period P: the 14 Shanghai days 11-10 … 11-23 (2 weeks; Monday-to-Friday workdays: 11-10…13, 11-16…20,
11-23 = 10); previous: 10-27 … 11-09 (10 workdays). 陈人事 is inactive: 7 active people (刘总, 赵伙伴
without a department; 研发部 王经理 张三 李四; 销售部 孙经理 周销售). Team = 王经理's reports 张三, 李四.

Self-assessments opened in P: 张三 submitted, 李四 open, 周销售 submitted                  → 2/3, team 1/2
  opened 11-09 23:00 local (previous): 王经理 open                                         → previous 0/1
3-2-1 action items (created when the review is confirmed):
  张三 confirmed 11-11 10:00, done 47 h later; 李四 11-12, done 73 h later; 周销售 11-16, open;
  张三 11-20, closed (not counted); a manual item done at once (not from a review)       → 1/3, team 1/2
  李四 confirmed 11-05, done 24 h later                                                    → previous 1/1
Released peer answers in P (role peer):
  about 张三: by 李四 (研发), 周销售 (销售), 孙经理 (销售), 刘总 (no department: not counted)
  about 周销售: by 张三 (研发), 王经理 (研发)
  not counted: 周销售's unreleased answer about 李四; 王经理's manager-role scores about 张三
  → company 5 answers, 4 cross (80 %); 研发部 3, 2 cross; 销售部 2 < threshold 3: withheld
Inbound events (local time): 张三 text 11-10 10:00 + click 11-10 15:00 + click 11-11;
  李四 photo 11-14 (Saturday) + text 11-16 00:30; 周销售 member change 11-12 (not his doing)
  + text 11-23 23:30; 王经理 11-24 00:30 (after P); 陈人事 (inactive) 11-12; an event without a
  person (refused) 11-12                                           → 4 person-days / (7 × 10) = 5.71 %
  previous: 张三 11-03                                                                     → 1 / 70
Feedback received in P: 6 released peer answers + 2 kudos (张三 ← 李四, 周销售 ← 张三) + 2 check-in replies
  (张三 11-12, 李四 11-19)  → 10 / 7 people / 2 weeks = 0.714; previous: 1 reply (周销售 11-05) → 1 / 14
  team: 张三 4 + 1 + 1, 李四 1 → 7 / 2 / 2 = 1.75
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from bot.app.service import Service
from bot.core.events import CardAction, ImageMessage, MemberChanged, TextMessage
from storage.models import (
    ActionItem,
    CheckIn,
    Cycle,
    InboundEvent,
    PeerFeedback,
    Person,
    Recognition,
    Review321,
    SelfAssessment,
)
from storage.queries import metrics as m
from tests.support.factories import Org

SH = ZoneInfo("Asia/Shanghai")
P = m.Window(date(2026, 11, 10), date(2026, 11, 24), SH)


def local(mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(2026, mo, d, h, mi, tzinfo=SH).astimezone(UTC)


async def seed_participation(service: Service, org: Org) -> None:
    """The fixture described in the module docstring (usable by the report's tests)."""
    e1, e2, sel, mgr, smgr = org.emp1.id, org.emp2.id, org.seller.id, org.manager.id, org.sales_manager.id
    async with service.factory() as s, s.begin():
        await s.execute(update(Person).where(Person.id == org.hr.id).values(active=False))
        cycle = Cycle(
            workspace_id=org.workspace.id,
            code="2026-Q4",
            status="active",
            starts_on=date(2026, 11, 10),
            ends_on=date(2026, 11, 23),
        )
        s.add(cycle)
        await s.flush()

        def assess(person: int, at: datetime, submitted: bool) -> None:
            s.add(
                SelfAssessment(
                    cycle_id=cycle.id,
                    person_id=person,
                    status="submitted" if submitted else "open",
                    created_at=at,
                    submitted_at=at + timedelta(days=2) if submitted else None,
                )
            )

        assess(e1, local(11, 10, 9), True)
        assess(e2, local(11, 10, 9), False)
        assess(sel, local(11, 12, 9), True)
        assess(mgr, local(11, 9, 23), False)

        async def review(owner: int, confirmed: datetime, *, done_after_h: float | None, status: str) -> None:
            item = ActionItem(
                owner_id=owner,
                source="review",
                deliverable="d",
                deadline=date(2026, 12, 31),
                status=status,
                created_at=confirmed,
                done_at=None if done_after_h is None else confirmed + timedelta(hours=done_after_h),
            )
            s.add(item)
            await s.flush()
            row = Review321(
                person_id=owner,
                period=f"p{item.id}",
                status="confirmed",
                confirmed_at=confirmed,
                action_item_id=item.id,
            )
            s.add(row)
            await s.flush()
            item.source_id = row.id

        await review(e1, local(11, 11, 10), done_after_h=47, status="accepted")
        await review(e2, local(11, 12, 10), done_after_h=73, status="done")
        await review(sel, local(11, 16, 10), done_after_h=None, status="open")
        await review(e1, local(11, 20, 10), done_after_h=None, status="closed")
        await review(e2, local(11, 5, 10), done_after_h=24, status="done")
        s.add(
            ActionItem(
                owner_id=e1,
                source="manual",
                deliverable="m",
                deadline=date(2026, 12, 31),
                status="done",
                created_at=local(11, 12),
                done_at=local(11, 12, 1),
            )
        )

        def peer(subject: int, rater: int, released: datetime | None, role: str = "peer") -> None:
            s.add(
                PeerFeedback(
                    cycle_id=cycle.id,
                    subject_id=subject,
                    rater_id=rater,
                    role=role,
                    status="answered",
                    answered_at=local(11, 11),
                    released_at=released,
                )
            )

        for rater in (e2, sel, smgr, org.leader.id):
            peer(e1, rater, local(11, 12, 9))
        peer(e1, mgr, local(11, 12, 9), role="manager")
        peer(sel, e1, local(11, 15, 9))
        peer(sel, mgr, local(11, 15, 9))
        peer(e2, sel, None)

        n = iter(range(1000))

        def event(person: int | None, at: datetime, kind: str = "text") -> None:
            s.add(
                InboundEvent(
                    platform="rec",
                    event_id=f"e{next(n)}",
                    kind=kind,
                    person_id=person,
                    answer={"ok": True},
                    received_at=at,
                )
            )

        event(e1, local(11, 10, 10))
        event(e1, local(11, 10, 15), "card_action")
        event(e1, local(11, 11, 9), "card_action")
        event(e2, local(11, 14, 11), "image")
        event(e2, local(11, 16, 0, 30))
        event(sel, local(11, 12, 9), "member_changed")
        event(sel, local(11, 23, 23, 30))
        event(mgr, local(11, 24, 0, 30))
        event(org.hr.id, local(11, 12, 9))
        event(None, local(11, 12, 9), "card_action")
        event(e1, local(11, 3, 9))

        kudos = ((e2, e1, local(11, 15)), (e1, sel, local(11, 20)), (e1, sel, local(10, 1)))
        for giver, to, at in kudos:
            s.add(Recognition(from_person_id=giver, to_person_id=to, reason="r", points=2, created_at=at))

        def replied(person: int, due: datetime, answered: datetime) -> None:
            s.add(
                CheckIn(
                    person_id=person,
                    period=due.isoformat(),
                    status="acknowledged",
                    due_at=due,
                    submitted_at=due,
                    answered_by_id=mgr if person != sel else smgr,
                    answered_at=answered,
                )
            )

        replied(e1, local(11, 11, 16), local(11, 12, 9))
        replied(e2, local(11, 18, 16), local(11, 19, 9))
        replied(sel, local(11, 4, 16), local(11, 5, 9))


async def figures(service: Service, scope: m.Scope, window: m.Window, **kw: Any) -> m.Participation:
    async with service.factory() as s:
        return await m.participation(s, scope, window, **kw)


async def test_participation_matches_the_hand_computed_fixture(service: Service, org: Org) -> None:
    await seed_participation(service, org)
    company = m.Scope(org.workspace.id)
    now = await figures(service, company, P)
    assert (now.self_requested, now.self_submitted) == (3, 2)
    assert (now.review_actions, now.review_actions_72h) == (3, 1)
    assert (now.peer_answers, now.peer_cross, now.cross_department_rate) == (5, 4, 0.8)
    assert (now.people, now.workdays, now.active_days) == (7, 10, 4)
    assert now.daily_active_rate == pytest.approx(4 / 70)
    assert now.feedback == 10 and now.weeks == 2
    assert now.feedback_per_person_week == pytest.approx(10 / 7 / 2)


async def test_the_previous_period_for_comparison(service: Service, org: Org) -> None:
    await seed_participation(service, org)
    before = await figures(service, m.Scope(org.workspace.id), P.previous())
    assert (before.self_requested, before.self_submitted, before.self_assessment_rate) == (1, 0, 0.0)
    assert (before.review_actions, before.review_actions_72h, before.review_72h_rate) == (1, 1, 1.0)
    assert (before.peer_answers, before.cross_department_rate) == (0, None)  # no answers: no data, not 0 %
    assert (before.workdays, before.active_days) == (10, 1)
    assert before.daily_active_rate == pytest.approx(1 / 70)
    assert before.feedback_per_person_week == pytest.approx(1 / 7 / 2)


async def test_a_team_and_the_groupings(service: Service, org: Org) -> None:
    await seed_participation(service, org)
    team = await figures(service, m.Scope(org.workspace.id, manager_id=org.manager.id), P)
    assert (team.self_requested, team.self_submitted) == (2, 1)
    assert (team.review_actions, team.review_actions_72h) == (2, 1)
    assert (team.peer_answers, team.peer_cross) == (3, 2)
    assert (team.people, team.active_days, team.daily_active_rate) == (2, 3, 0.15)
    assert team.feedback_per_person_week == 1.75
    async with service.factory() as s:
        by_dept = await m.participation_by(s, m.Scope(org.workspace.id), P, "department")
        by_person = await m.participation_by(s, m.Scope(org.workspace.id), P, "person")
    rnd, sales, none = by_dept[org.rnd.id], by_dept[org.sales.id], by_dept[None]
    assert (rnd.peer_answers, rnd.peer_cross) == (3, 2)
    assert (sales.peer_answers, sales.peer_cross, sales.cross_department_rate) == (None, None, None)
    assert (rnd.people, rnd.active_days, sales.people, sales.active_days) == (3, 3, 2, 1)
    assert (none.people, none.active_days, none.daily_active_rate) == (2, 0, 0.0)
    zhang = by_person[org.emp1.id]
    assert (zhang.active_days, zhang.daily_active_rate) == (2, 0.2)
    assert (zhang.self_assessment_rate, zhang.review_72h_rate) == (1.0, 1.0)
    assert zhang.feedback_per_person_week == 3.0
    assert all(p.peer_answers is None and p.cross_department_rate is None for p in by_person.values())
    assert org.hr.id not in by_person or by_person[org.hr.id].people == 0


async def test_too_few_answers_withhold_the_cross_department_share(service: Service, org: Org) -> None:
    await seed_participation(service, org)
    company = await figures(service, m.Scope(org.workspace.id), P, min_answers=6)
    assert (company.peer_answers, company.peer_cross, company.cross_department_rate) == (None, None, None)
    assert company.as_dict()["cross_department_rate"] is None


async def test_daily_active_counts_only_kept_workdays(service: Service, org: Org) -> None:
    """Events older than the retention cut-off may be purged: those days are left out, not counted as idle;
    the caller's calendar decides what a workday is (here a make-up Saturday)."""
    await seed_participation(service, org)
    scope = m.Scope(org.workspace.id)
    kept = local(11, 17, 10)  # a week before 11-24 10:00: 11-18 is the first whole day kept
    assert m.counted_workdays(P, kept_since=kept) == [date(2026, 11, d) for d in (18, 19, 20, 23)]
    async with service.factory() as s:
        now = await m.daily_active(s, scope, P, kept_since=kept)
        before = await m.daily_active(s, scope, P.previous(), kept_since=kept)
        saturday = await m.daily_active(s, scope, P, workdays={date(2026, 11, 14)})
    assert (now.people, now.workdays, now.active_days) == (7, 4, 1)
    assert now.rate == pytest.approx(1 / 28)
    assert (before.workdays, before.rate) == (0, None)
    assert (saturday.workdays, saturday.active_days) == (1, 1)


async def test_zero_denominators_are_no_data(service: Service, org: Org) -> None:
    nothing = await figures(service, m.Scope(org.workspace.id), P)
    assert nothing.self_assessment_rate is None
    assert nothing.review_72h_rate is None
    assert nothing.cross_department_rate is None
    assert nothing.daily_active_rate == 0.0  # people and workdays exist: nobody was active
    assert nothing.feedback_per_person_week == 0.0
    empty = await figures(service, m.Scope(org.workspace.id, department_id=-1), P)
    assert (empty.people, empty.daily_active_rate, empty.feedback_per_person_week) == (0, None, None)
    weekend = m.Window(date(2026, 11, 14), date(2026, 11, 16), SH)
    assert (await figures(service, m.Scope(org.workspace.id), weekend)).daily_active_rate is None
    data = nothing.as_dict()
    assert data["self_assessment_rate"] is None and data["review_actions_72h_rate"] is None


def test_the_counted_event_kinds_are_a_persons_own_doing() -> None:
    """``storage`` cannot import the core's events: the kinds it counts as activity are pinned here."""

    def kind(model: Any) -> str:
        return str(model.model_fields["kind"].default)

    assert set(m.ACTIVE_EVENT_KINDS) == {kind(TextMessage), kind(ImageMessage), kind(CardAction)}
    assert kind(MemberChanged) not in m.ACTIVE_EVENT_KINDS
