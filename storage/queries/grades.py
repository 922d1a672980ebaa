"""Grades: a cycle's proposals, a department's released history, and the calibration arithmetic.

The guard compares a grade's share of a department in this cycle with the same department's shares in
its earlier *released* cycles: mean and population standard deviation over at least ``min_history``
cycles, alerting only *beyond* ``sigma`` deviations (exactly at the boundary is fine), and/or against a
configured fixed band. Shares count only people who have a grade in that cycle. The result type,
``Deviation``, lives in ``storage.grade_scales`` so the cards may show it without importing queries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean, pstdev

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.grade_scales import Deviation
from storage.models import AuditLog, Cycle, CycleParticipant, Department, Grade, GradeAppeal, Person

EPSILON = 1e-9
"""Float noise allowance, so "exactly two standard deviations" stays on the quiet side of the line."""


def shares(grades: Iterable[str]) -> dict[str, float]:
    counts = Counter(grades)
    total = sum(counts.values())
    return {g: n / total for g, n in counts.items()} if total else {}


def deviations(
    current: Mapping[str, float],
    history: Sequence[Mapping[str, float]],
    *,
    scale: Sequence[str],
    sigma: float,
    min_history: int,
    band: Mapping[str, tuple[float, float]],
) -> list[Deviation]:
    out: list[Deviation] = []
    for grade in scale:
        share = current.get(grade, 0.0)
        if len(history) >= min_history:
            past = [h.get(grade, 0.0) for h in history]
            mean, sd = fmean(past), pstdev(past)
            if abs(share - mean) - sigma * sd > EPSILON:
                out.append(Deviation(grade, share, mean - sigma * sd, mean + sigma * sd, "sigma"))
                continue
        if grade in band:
            low, high = band[grade]
            if share < low - EPSILON or share > high + EPSILON:
                out.append(Deviation(grade, share, low, high, "band"))
    return out


async def grade_for(session: AsyncSession, cycle_id: int, person_id: int) -> Grade | None:
    return await session.scalar(select(Grade).where(Grade.cycle_id == cycle_id, Grade.person_id == person_id))


async def cycle_grades(session: AsyncSession, cycle_id: int) -> list[Grade]:
    return list(await session.scalars(select(Grade).where(Grade.cycle_id == cycle_id).order_by(Grade.id)))


async def department_history(
    session: AsyncSession, department_id: int, *, before_cycle: Cycle
) -> list[dict[str, float]]:
    """Shares per earlier released cycle of this department (one dict per cycle, oldest first)."""
    rows = (
        await session.execute(
            select(Grade.cycle_id, Grade.grade)
            .join(Cycle, Cycle.id == Grade.cycle_id)
            .where(
                Grade.department_id == department_id,
                Grade.status == "released",
                Grade.cycle_id != before_cycle.id,
                Cycle.workspace_id == before_cycle.workspace_id,
            )
            .order_by(Grade.cycle_id)
        )
    ).all()
    by_cycle: dict[int, list[str]] = {}
    for cycle_id, grade in rows:
        by_cycle.setdefault(cycle_id, []).append(grade)
    return [shares(g) for _, g in sorted(by_cycle.items())]


async def cycles_with_grades(session: AsyncSession, workspace_id: int) -> list[Cycle]:
    """Cycles that hold any grade, newest first (what ``/grades`` can show)."""
    return list(
        await session.scalars(
            select(Cycle)
            .where(Cycle.workspace_id == workspace_id, Cycle.id.in_(select(Grade.cycle_id).distinct()))
            .order_by(Cycle.id.desc())
        )
    )


async def latest_cycle_with_grades(session: AsyncSession, workspace_id: int) -> Cycle | None:
    return await session.scalar(
        select(Cycle)
        .join(Grade, Grade.cycle_id == Cycle.id)
        .where(Cycle.workspace_id == workspace_id)
        .order_by(Cycle.id.desc())
        .limit(1)
    )


async def participant_count(session: AsyncSession, cycle_id: int) -> int:
    """Active participants of a cycle: the people who should end up with a grade."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(CycleParticipant)
            .join(Person, Person.id == CycleParticipant.person_id)
            .where(CycleParticipant.cycle_id == cycle_id, Person.active.is_(True))
        )
        or 0
    )


async def ungraded(session: AsyncSession, cycle_id: int) -> list[tuple[str, str | None, str | None]]:
    """(name, department, manager) of every active participant without a grade, by department and name."""
    manager = aliased(Person)
    rows = await session.execute(
        select(Person.name, Department.name, manager.name)
        .select_from(CycleParticipant)
        .join(Person, Person.id == CycleParticipant.person_id)
        .outerjoin(Department, Department.id == Person.department_id)
        .outerjoin(manager, manager.id == Person.manager_id)
        .outerjoin(Grade, (Grade.cycle_id == cycle_id) & (Grade.person_id == Person.id))
        .where(CycleParticipant.cycle_id == cycle_id, Person.active.is_(True), Grade.id.is_(None))
        .order_by(Department.name, Person.name, Person.id)
    )
    return [(name, dept, mgr) for name, dept, mgr in rows.all()]


async def seen_alert_keys(session: AsyncSession, cycle_id: int, actor_id: int) -> set[str]:
    """The calibration warnings (``department:grade:direction``) this HR admin has marked as read."""
    rows = await session.scalars(
        select(AuditLog.detail).where(
            AuditLog.action == "grades.alert_seen",
            AuditLog.entity == "cycle",
            AuditLog.entity_id == cycle_id,
            AuditLog.actor_id == actor_id,
        )
    )
    return {str(k) for d in rows if isinstance(d, dict) for k in d.get("keys") or []}


async def last_release_preview(
    session: AsyncSession, cycle_id: int, actor_id: int
) -> dict[str, object] | None:
    """What the last release confirmation shown to this HR admin said (``grades.release_previewed``)."""
    detail = await session.scalar(
        select(AuditLog.detail)
        .where(
            AuditLog.action == "grades.release_previewed",
            AuditLog.entity == "cycle",
            AuditLog.entity_id == cycle_id,
            AuditLog.actor_id == actor_id,
        )
        .order_by(AuditLog.id.desc())
        .limit(1)
    )
    return detail if isinstance(detail, dict) else None


async def department_grades(session: AsyncSession, cycle_id: int, department_id: int) -> list[Grade]:
    return list(
        await session.scalars(
            select(Grade)
            .where(Grade.cycle_id == cycle_id, Grade.department_id == department_id)
            .order_by(Grade.id)
        )
    )


async def open_appeal(session: AsyncSession, grade_id: int) -> GradeAppeal | None:
    return await session.scalar(select(GradeAppeal).where(GradeAppeal.open_grade_id == grade_id))


async def appeals_for_grade(session: AsyncSession, grade_id: int) -> list[GradeAppeal]:
    """Every appeal of one grade, oldest first."""
    return list(
        await session.scalars(
            select(GradeAppeal).where(GradeAppeal.grade_id == grade_id).order_by(GradeAppeal.id)
        )
    )


async def open_appeals(session: AsyncSession, cycle_id: int) -> list[GradeAppeal]:
    """Appeals of a cycle still waiting for a decision (``open_grade_id`` is set exactly while open)."""
    return list(
        await session.scalars(
            select(GradeAppeal)
            .where(GradeAppeal.cycle_id == cycle_id, GradeAppeal.open_grade_id.is_not(None))
            .order_by(GradeAppeal.id)
        )
    )


async def latest_appeal(session: AsyncSession, cycle_id: int, person_id: int) -> GradeAppeal | None:
    return await session.scalar(
        select(GradeAppeal)
        .where(GradeAppeal.cycle_id == cycle_id, GradeAppeal.person_id == person_id)
        .order_by(GradeAppeal.id.desc())
        .limit(1)
    )


async def appeals_by_person(session: AsyncSession, cycle_id: int) -> dict[int, GradeAppeal]:
    """The latest appeal per person in one cycle (the results export's appeal state)."""
    rows = await session.scalars(
        select(GradeAppeal).where(GradeAppeal.cycle_id == cycle_id).order_by(GradeAppeal.id)
    )
    return {a.person_id: a for a in rows}


async def appeals_of_person(session: AsyncSession, person_id: int) -> list[GradeAppeal]:
    """Every appeal one person filed, oldest first (their history and their data export)."""
    return list(
        await session.scalars(
            select(GradeAppeal).where(GradeAppeal.person_id == person_id).order_by(GradeAppeal.id)
        )
    )


async def latest_released(session: AsyncSession, person_id: int) -> Grade | None:
    """The person's released grade of their latest cycle: what ``/appeal`` and ``/gradefix`` act on."""
    return await session.scalar(
        select(Grade)
        .where(Grade.person_id == person_id, Grade.status == "released")
        .order_by(Grade.cycle_id.desc())
        .limit(1)
    )


async def corrections_of(session: AsyncSession, grade_ids: Sequence[int]) -> list[AuditLog]:
    """HR's corrections of these grades after release (``grade.corrected``: from, to, why), oldest first."""
    if not grade_ids:
        return []
    return list(
        await session.scalars(
            select(AuditLog)
            .where(
                AuditLog.action == "grade.corrected",
                AuditLog.entity == "grade",
                AuditLog.entity_id.in_(list(grade_ids)),
            )
            .order_by(AuditLog.id)
        )
    )


@dataclass(frozen=True)
class GradeStep:
    """One step in the life of a released grade: ``released``, ``corrected``, ``appealed``, ``upheld``,
    ``changed`` or ``withdrawn``; ``reason`` is the text the person was told (or wrote)."""

    at: datetime
    kind: str
    cycle: str
    before: str
    after: str
    reason: str | None = None


async def grade_timeline(session: AsyncSession, person_id: int) -> list[GradeStep]:
    """Every step of the person's released grades, oldest first (``/history`` and the person export).

    The grade released is the value before the first change (a correction or a changed appeal), since the
    row itself holds only the current grade."""
    rows = (
        await session.execute(
            select(Grade, Cycle.code)
            .join(Cycle, Cycle.id == Grade.cycle_id)
            .where(Grade.person_id == person_id, Grade.status == "released")
            .order_by(Grade.cycle_id)
        )
    ).all()
    steps: list[GradeStep] = []
    for grade, code in rows:
        mine: list[GradeStep] = []
        for row in await corrections_of(session, [grade.id]):
            d = row.detail if isinstance(row.detail, dict) else {}
            before, after = str(d.get("from", "")), str(d.get("to", ""))
            mine.append(GradeStep(row.at, "corrected", code, before, after, d.get("why")))
        for a in await appeals_for_grade(session, grade.id):
            mine.append(GradeStep(a.created_at, "appealed", code, a.grade_before, a.grade_before, a.reason))
            if a.decided_at is not None and a.status != "open":
                after = a.grade_after or a.grade_before
                mine.append(GradeStep(a.decided_at, a.status, code, a.grade_before, after, a.decision_reason))
        mine.sort(key=lambda step: step.at)
        changes = [m for m in mine if m.kind in ("corrected", "changed")]
        first = changes[0].before if changes else grade.grade
        if grade.released_at is not None:
            steps.append(GradeStep(grade.released_at, "released", code, "", first))
        steps.extend(mine)
    return steps
