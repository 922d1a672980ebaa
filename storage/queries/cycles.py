"""Cycles, their participants and goals."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Cycle, CycleParticipant, Goal, Person


async def cycle_by_code(session: AsyncSession, workspace_id: int, code: str) -> Cycle | None:
    return await session.scalar(select(Cycle).where(Cycle.workspace_id == workspace_id, Cycle.code == code))


async def cycles_in(session: AsyncSession, workspace_id: int, statuses: Iterable[str]) -> list[Cycle]:
    """This workspace's cycles in these statuses, newest first."""
    return list(
        await session.scalars(
            select(Cycle)
            .where(Cycle.workspace_id == workspace_id, Cycle.status.in_(list(statuses)))
            .order_by(Cycle.starts_on.desc(), Cycle.id.desc())
        )
    )


async def active_cycles(
    session: AsyncSession, workspace_id: int, *, exclude_id: int | None = None
) -> list[Cycle]:
    return [c for c in await cycles_in(session, workspace_id, ["active"]) if c.id != exclude_id]


async def latest_active_cycle(session: AsyncSession, workspace_id: int) -> Cycle | None:
    """The most recently started active cycle: what "this cycle" means when nobody names one."""
    return await session.scalar(
        select(Cycle)
        .where(Cycle.workspace_id == workspace_id, Cycle.status == "active")
        .order_by(Cycle.started_at.desc(), Cycle.id.desc())
        .limit(1)
    )


async def participant_counts(session: AsyncSession, cycle_ids: Iterable[int]) -> dict[int, int]:
    ids = list(cycle_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(CycleParticipant.cycle_id, func.count())
        .where(CycleParticipant.cycle_id.in_(ids))
        .group_by(CycleParticipant.cycle_id)
    )
    return {cycle_id: int(n) for cycle_id, n in rows.all()}


async def participant(session: AsyncSession, cycle_id: int, person_id: int) -> CycleParticipant | None:
    return await session.scalar(
        select(CycleParticipant).where(
            CycleParticipant.cycle_id == cycle_id, CycleParticipant.person_id == person_id
        )
    )


async def current_participation(
    session: AsyncSession, person_id: int
) -> tuple[Cycle, CycleParticipant] | None:
    """The most recently started active cycle this person takes part in."""
    row = (
        await session.execute(
            select(Cycle, CycleParticipant)
            .join(CycleParticipant, CycleParticipant.cycle_id == Cycle.id)
            .where(CycleParticipant.person_id == person_id, Cycle.status == "active")
            .order_by(Cycle.started_at.desc(), Cycle.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return row[0], row[1]


async def goals_of(session: AsyncSession, cycle_id: int, person_id: int) -> list[Goal]:
    return list(
        await session.scalars(
            select(Goal)
            .where(Goal.cycle_id == cycle_id, Goal.person_id == person_id)
            .order_by(Goal.position, Goal.id)
        )
    )


async def previous_goals(session: AsyncSession, person_id: int, cycle: Cycle) -> list[Goal]:
    """This person's goals from the latest other cycle that has any (what "copy last cycle" copies)."""
    latest = await session.scalar(
        select(Goal.cycle_id)
        .join(Cycle, Cycle.id == Goal.cycle_id)
        .where(
            Goal.person_id == person_id, Goal.cycle_id != cycle.id, Cycle.workspace_id == cycle.workspace_id
        )
        .order_by(Cycle.started_at.desc(), Cycle.id.desc())
        .limit(1)
    )
    if latest is None:
        return []
    return await goals_of(session, latest, person_id)


async def replace_goals(
    session: AsyncSession, cycle_id: int, person_id: int, rows: list[tuple[str, str, int]]
) -> list[Goal]:
    """Swap this person's goals for ``rows`` of (objective, key result, weight), in order."""
    await session.execute(delete(Goal).where(Goal.cycle_id == cycle_id, Goal.person_id == person_id))
    goals = [
        Goal(cycle_id=cycle_id, person_id=person_id, position=i, objective=o, key_result=kr, weight=w)
        for i, (o, kr, w) in enumerate(rows)
    ]
    session.add_all(goals)
    await session.flush()
    return goals


async def team_participants(
    session: AsyncSession, cycle_id: int, manager_id: int
) -> list[tuple[Person, CycleParticipant]]:
    rows = await session.execute(
        select(Person, CycleParticipant)
        .join(CycleParticipant, CycleParticipant.person_id == Person.id)
        .where(
            CycleParticipant.cycle_id == cycle_id, Person.manager_id == manager_id, Person.active.is_(True)
        )
        .order_by(Person.id)
    )
    return [(p, cp) for p, cp in rows.all()]


async def participant_ids(session: AsyncSession, cycle_id: int) -> set[int]:
    return set(
        await session.scalars(select(CycleParticipant.person_id).where(CycleParticipant.cycle_id == cycle_id))
    )
