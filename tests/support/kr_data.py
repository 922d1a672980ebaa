"""Goals with key results inserted as rows (issue 17 item 5 tests): independent of the goals form, so the
value tests do not move when the form does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from bot.app.service import Service
from storage.models import CheckIn, Cycle, CycleParticipant, Goal, KeyResult, KeyResultValue, Person


@dataclass(frozen=True)
class Krs:
    """One person's check-in cycle: 上线计费 (60 %: NPS 20 → 40 and 上线新版官网 with three milestones) and
    带新人 (40 %: 新人独立值班 by a date, and 流失率 5 → 3 %, a decrease)."""

    cycle_id: int
    billing: int
    mentoring: int
    nps: int
    site: int
    oncall: int
    churn: int


async def seed_krs(
    service: Service,
    person: Person,
    *,
    starts_on: date = date(2026, 10, 1),
    ends_on: date = date(2026, 12, 31),
    nps_now: float | None = 35.0,
) -> Krs:
    """The cycle (active, the person a participant), two goals and four key results; NPS stands at
    ``nps_now`` without any history (as a value carried over by migration 0011 would)."""
    async with service.factory() as s, s.begin():
        cycle = await s.scalar(select(Cycle).where(Cycle.workspace_id == person.workspace_id))
        if cycle is None:
            cycle = Cycle(
                workspace_id=person.workspace_id,
                code="2026-Q4",
                status="active",
                starts_on=starts_on,
                ends_on=ends_on,
                started_at=datetime.fromisoformat("2026-10-01T01:00:00+00:00"),
            )
            s.add(cycle)
            await s.flush()
        s.add(CycleParticipant(cycle_id=cycle.id, person_id=person.id, goals_status="confirmed"))
        billing = Goal(cycle_id=cycle.id, person_id=person.id, position=0, objective="上线计费", weight=60)
        mentoring = Goal(cycle_id=cycle.id, person_id=person.id, position=1, objective="带新人", weight=40)
        s.add_all([billing, mentoring])
        await s.flush()
        nps = KeyResult(
            goal_id=billing.id,
            position=0,
            title="NPS",
            kind="number",
            start_value=20,
            target_value=40,
            current_value=nps_now,
            progress=0.75 if nps_now == 35.0 else 0.0,
            weight=50,
            updated_at=datetime.fromisoformat("2026-10-08T02:00:00+00:00"),  # when it stood there
        )
        site = KeyResult(
            goal_id=billing.id,
            position=1,
            title="上线新版官网",
            kind="deliverable",
            milestones=[
                {"name": "设计稿", "due": None, "done": False},
                {"name": "开发完成", "due": None, "done": False},
                {"name": "上线", "due": None, "done": False},
            ],
            weight=50,
        )
        oncall = KeyResult(
            goal_id=mentoring.id,
            position=0,
            title="新人独立值班",
            kind="date",
            target_date=date(2026, 12, 15),
        )
        churn = KeyResult(
            goal_id=mentoring.id,
            position=1,
            title="流失率",
            kind="number",
            unit="%",
            start_value=5,
            target_value=3,
        )
        s.add_all([nps, site, oncall, churn])
        await s.flush()
        billing.own_progress = 0.375 if nps_now == 35.0 else 0.0
        return Krs(cycle.id, billing.id, mentoring.id, nps.id, site.id, oncall.id, churn.id)


async def kr(service: Service, kr_id: int) -> KeyResult:
    async with service.factory() as s:
        row = await s.get(KeyResult, kr_id)
        assert row is not None
        return row


async def goal(service: Service, goal_id: int) -> Goal:
    async with service.factory() as s:
        row = await s.get(Goal, goal_id)
        assert row is not None
        return row


async def values(service: Service, kr_id: int) -> list[tuple[Any, ...]]:
    """(value, done, source, source_id) of every recorded value, oldest first."""
    async with service.factory() as s:
        rows = await s.execute(
            select(KeyResultValue.value, KeyResultValue.done, KeyResultValue.source, KeyResultValue.source_id)
            .where(KeyResultValue.key_result_id == kr_id)
            .order_by(KeyResultValue.recorded_at, KeyResultValue.id)
        )
        return [tuple(r) for r in rows]


async def checkin_row(service: Service, checkin_id: int) -> CheckIn:
    async with service.factory() as s:
        row = await s.get(CheckIn, checkin_id)
        assert row is not None
        return row
