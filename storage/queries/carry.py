"""Carry-over (issue 17 item 9): what a person left open when a cycle ended, and what they already carried.

"Left open" is fixed at the cycle's end (``Cycle.closed_at``; a cycle still closing ends now): the key results
of the person's own objectives not at 100 %, and their action items open at that moment. The one-click carry
records what it carried in the audit log (``CARRIED``, one row per click, on the participant of the new
cycle), so neither a second click nor a later edit of the new goals can carry or count an item twice.

Status words and the goal level come in as parameters: storage sits below ``bot.core.status``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ActionItem, AuditLog, Cycle, CycleParticipant, Goal, KeyResult

CARRIED = "goals.carried_over"
"""The audit action of one carry, on entity ``cycle_participant`` (the new cycle's): ``detail`` holds
``from_cycle_id``, ``to_cycle_id``, ``key_results`` (the previous cycle's ids) and ``action_items`` (ids)."""


def cycle_order(cycle: Cycle) -> tuple[date, int]:
    """Cycles in time order: by first day, then by id (a cycle without dates sorts by id alone)."""
    return (cycle.starts_on or date.min, cycle.id)


def ended_at(cycle: Cycle, now: datetime) -> datetime:
    """When ``cycle`` ended: its close, or now while it is still closing."""
    return cycle.closed_at or now


async def previous_cycle(
    session: AsyncSession, cycle: Cycle, *, ended: Collection[str], person_id: int | None = None
) -> Cycle | None:
    """The latest cycle of ``cycle``'s workspace before it whose status is in ``ended`` (closing, closed), in
    which ``person_id`` took part when given."""
    stmt = select(Cycle).where(
        Cycle.workspace_id == cycle.workspace_id, Cycle.id != cycle.id, Cycle.status.in_(list(ended))
    )
    if person_id is not None:
        stmt = stmt.join(CycleParticipant, CycleParticipant.cycle_id == Cycle.id).where(
            CycleParticipant.person_id == person_id
        )
    mark = cycle_order(cycle)
    earlier = [c for c in await session.scalars(stmt) if cycle_order(c) < mark]
    return max(earlier, key=cycle_order, default=None)


async def unfinished_key_results(
    session: AsyncSession, cycle_id: int, person_id: int, *, level: str
) -> list[tuple[KeyResult, Goal]]:
    """The key results of ``person_id``'s objectives at ``level`` in ``cycle_id`` below 100 %, in the order
    the goals were shown."""
    rows = await session.execute(
        select(KeyResult, Goal)
        .join(Goal, Goal.id == KeyResult.goal_id)
        .where(
            Goal.cycle_id == cycle_id,
            Goal.person_id == person_id,
            Goal.level == level,
            KeyResult.progress < 1.0,
        )
        .order_by(Goal.position, Goal.id, KeyResult.position, KeyResult.id)
    )
    return [(kr, goal) for kr, goal in rows.tuples()]


def open_at(end: datetime) -> Any:
    """An action item open at ``end``: created by then, and neither done nor closed before it. An item sent
    back after being done counts as open (its ``done_at`` is cleared): it was owed again."""
    return and_(
        ActionItem.created_at <= end,
        or_(ActionItem.done_at.is_(None), ActionItem.done_at >= end),
        or_(ActionItem.closed_at.is_(None), ActionItem.closed_at >= end),
    )


async def open_items(
    session: AsyncSession,
    person_id: int,
    *,
    end: datetime,
    open_statuses: Collection[str],
    serving_cycle_id: int,
) -> list[ActionItem]:
    """``person_id``'s action items still open now that were open at ``end``, except those already linked to
    a key result of ``serving_cycle_id`` (they serve the new goals already), deadline first."""
    in_cycle = (
        select(KeyResult.id).join(Goal, Goal.id == KeyResult.goal_id).where(Goal.cycle_id == serving_cycle_id)
    )
    rows = await session.scalars(
        select(ActionItem)
        .where(
            ActionItem.owner_id == person_id,
            ActionItem.status.in_(list(open_statuses)),
            open_at(end),
            or_(ActionItem.key_result_id.is_(None), ActionItem.key_result_id.not_in(in_cycle)),
        )
        .order_by(ActionItem.deadline, ActionItem.id)
    )
    return list(rows)


def _ids(value: Any) -> set[int]:
    return {int(v) for v in value if isinstance(v, int)} if isinstance(value, list) else set()


async def carried_so_far(
    session: AsyncSession, participant_id: int, cycle_id: int
) -> tuple[set[int], set[int]]:
    """(key result ids, action item ids) already carried into ``cycle_id`` by this participant: the carry's
    audit rows, and the key results of the cycle that say where they came from."""
    krs: set[int] = set()
    items: set[int] = set()
    rows = await session.scalars(
        select(AuditLog.detail).where(
            AuditLog.entity == "cycle_participant",
            AuditLog.entity_id == participant_id,
            AuditLog.action == CARRIED,
        )
    )
    for detail in rows:
        if isinstance(detail, dict):
            krs |= _ids(detail.get("key_results"))
            items |= _ids(detail.get("action_items"))
    person_id = (
        select(CycleParticipant.person_id).where(CycleParticipant.id == participant_id).scalar_subquery()
    )
    links = await session.execute(
        select(KeyResult.carried_from_id, KeyResult.from_action_item_id)
        .join(Goal, Goal.id == KeyResult.goal_id)
        .where(
            Goal.cycle_id == cycle_id,
            Goal.person_id == person_id,
            or_(KeyResult.carried_from_id.is_not(None), KeyResult.from_action_item_id.is_not(None)),
        )
    )
    for kr_id, item_id in links:
        if kr_id is not None:
            krs.add(int(kr_id))
        if item_id is not None:
            items.add(int(item_id))
    return krs, items
