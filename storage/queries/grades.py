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
from statistics import fmean, pstdev

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.grade_scales import Deviation
from storage.models import AuditLog, Cycle, CycleParticipant, Department, Grade, Person

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
