"""Key result values (issue 17 item 5): the one way a key result's number moves.

Every value is a ``kr_values`` row saying who set it and how (``bot.core.status.KrValueSource``: a check-in
answer, the owner or their manager on a card, an import, an external system through the API). The key
result's cached value, done date and progress, and its objective's ``own_progress``, follow from the newest
row, so the tree, the cards and the reports never recompute from history unless they ask about a date.

A source that names what it answers for (``source_id``: the check-in, an import batch, an external event)
writes one row per key result: sending it again replaces that row, so a resubmitted check-in or a re-run
import never counts twice. Owner and manager updates carry no ``source_id`` and each adds a row.

The first value recorded for a key result that already stood somewhere without any history (a goal carried
over by migration 0011 at its last reported percentage) writes that standing first, as an ``import`` row at
the time it was set (``updated_at``, else when the goal was created): "35 → 38" then reads right, and
``value_on`` answers for the days before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import CycleStatus, KrValueSource
from cards.kr_values import KrFacts, KrReading
from handlers.goals.progress import KrKind, goal_progress, kr_progress
from storage.models import Cycle, Goal, KeyResult, KeyResultValue
from storage.queries import kr_values as kv

FINAL_CYCLE = (CycleStatus.CLOSED, CycleStatus.CANCELLED)
"""A key result of a closed or cancelled cycle keeps its last number: nothing records into it any more."""


class ValueRefused(ValueError):
    """``record_value`` would not record. ``reason`` is a key under ``kr_values.refused_`` in the catalogue:
    ``unknown`` (no such key result), ``source`` (not a known source), ``cycle_closed``, ``value_needed`` (a
    number key result without a finite number), ``done_needed`` (a done / not-yet key result without either),
    ``milestones`` (more milestones reached than it has)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ValueChange:
    """What one ``record_value`` did: the key result before and after, and its objective's own progress."""

    key_result_id: int
    goal_id: int
    row_id: int
    before: KrReading
    after: KrReading
    goal_before: float
    goal_after: float
    replaced: bool
    """The source had answered for this key result before (a resubmitted check-in): its row was replaced."""
    current: bool
    """The value is now the key result's current one (a backdated import only adds to the history)."""


# ------------------------------------------------------------------ readings


def facts_of(kr: KeyResult) -> KrFacts:
    return KrFacts(
        id=kr.id,
        title=kr.title,
        kind=kr.kind,
        unit=kr.unit,
        target=kr.target_value,
        target_date=kr.target_date,
        milestones=tuple(str(m.get("name") or "") for m in (kr.milestones or []) if isinstance(m, dict)),
    )


def _milestones_done(milestones: Sequence[Any]) -> int:
    return sum(1 for m in milestones if isinstance(m, dict) and m.get("done"))


def reading_of(kr: KeyResult) -> KrReading:
    """The key result as it stands now (its cached value)."""
    if kr.kind == KrKind.NUMBER:
        return KrReading(value=kr.current_value, done=kr.done_at is not None, progress=kr.progress)
    milestones = kr.milestones or []
    return KrReading(
        done=kr.done_at is not None,
        milestones_done=_milestones_done(milestones) if milestones else None,
        progress=kr.progress,
    )


def reading_of_row(kr: KeyResult, row: KeyResultValue) -> KrReading:
    """One history row, read for its key result (a done / not-yet row keeps milestones reached in
    ``value``)."""
    if kr.kind == KrKind.NUMBER:
        return KrReading(value=row.value, done=row.done, progress=row.progress)
    reached = int(row.value) if kr.milestones and row.value is not None else None
    return KrReading(done=row.done, milestones_done=reached, progress=row.progress)


def _stands_somewhere(kr: KeyResult) -> bool:
    return (
        kr.current_value is not None
        or kr.done_at is not None
        or kr.progress > 0
        or _milestones_done(kr.milestones or []) > 0
    )


# ------------------------------------------------------------------ recording


async def refresh_goal_progress(session: AsyncSession, goal: Goal) -> float:
    """Recompute an objective's ``own_progress`` from its key results' cached progress; an objective
    without key results (a goal set before 0011 and never given any) keeps the number it has."""
    rows = (
        await session.execute(
            select(KeyResult.progress, KeyResult.weight).where(KeyResult.goal_id == goal.id)
        )
    ).all()
    if rows:
        goal.own_progress = goal_progress((float(p), int(w or 0)) for p, w in rows)
    return goal.own_progress


def _apply(kr: KeyResult, row: KeyResultValue) -> None:
    """Make ``row`` the key result's current standing."""
    if kr.kind == KrKind.NUMBER:
        kr.current_value = row.value
    elif kr.milestones and row.value is not None:
        reached = int(row.value)
        kr.milestones = [
            {**m, "done": i < reached} if isinstance(m, dict) else m for i, m in enumerate(kr.milestones)
        ]
    kr.done_at = (kr.done_at or row.recorded_at) if row.done else None
    kr.progress = row.progress
    kr.updated_at = row.recorded_at


def _state(
    kr: KeyResult, value: float | None, done: bool | None, milestones_done: int | None
) -> tuple[float | None, bool, list[Any]]:
    """(the row's value, done, the milestones as they would stand) for the arguments of ``record_value``."""
    milestones = list(kr.milestones or [])
    if kr.kind == KrKind.NUMBER:
        if value is None or not math.isfinite(value):
            raise ValueRefused("value_needed")
        return float(value), False, milestones
    if done is None and milestones_done is None:
        raise ValueRefused("done_needed")
    if milestones_done is not None and not 0 <= milestones_done <= len(milestones):
        raise ValueRefused("milestones")
    is_done = bool(done) if done is not None else bool(milestones) and milestones_done == len(milestones)
    if not milestones:
        return None, is_done, milestones
    if is_done:
        reached = len(milestones)
    elif milestones_done is not None:
        reached = milestones_done
    else:
        reached = _milestones_done(milestones)
    marked = [{**m, "done": i < reached} if isinstance(m, dict) else m for i, m in enumerate(milestones)]
    return float(reached), is_done, marked


async def record_value(
    session: AsyncSession,
    key_result_id: int,
    *,
    value: float | None,
    done: bool | None,
    source: str,
    source_id: int | None,
    by_person_id: int | None,
    at: datetime,
    note: str | None = None,
    milestones_done: int | None = None,
) -> ValueChange:
    """Record a key result's value and bring its cached progress and its objective's up to date.

    A number key result takes ``value``; a date or deliverable key result takes ``done`` and, when it has
    milestones, ``milestones_done`` (how many of them, in their order, are reached). Who may record is the
    caller's rule (the check-in's owner, ``kr_update``'s owner or manager, an API token's scope). Raises
    ``ValueRefused`` with nothing written. The objective's row is locked first (PostgreSQL), so two values
    recorded at once for key results of one objective leave its progress right.
    """
    if source not in {s.value for s in KrValueSource}:
        raise ValueRefused("source")
    if value is not None and not math.isfinite(value):
        raise ValueRefused("value_needed")
    found = await session.get(KeyResult, key_result_id)
    if found is None:
        raise ValueRefused("unknown")
    goal = await session.scalar(
        select(Goal)
        .where(Goal.id == found.goal_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    kr = await session.scalar(
        select(KeyResult)
        .where(KeyResult.id == key_result_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if goal is None or kr is None:
        raise ValueRefused("unknown")
    cycle = await session.get(Cycle, goal.cycle_id)
    if cycle is not None and cycle.status in FINAL_CYCLE:
        raise ValueRefused("cycle_closed")
    row_value, is_done, milestones = _state(kr, value, done, milestones_done)
    progress = kr_progress(
        kr.kind,
        start=kr.start_value,
        target=kr.target_value,
        current=row_value,
        done=is_done,
        milestones=[m for m in milestones if isinstance(m, dict)],
    )
    if kr.kind == KrKind.NUMBER:
        is_done = progress >= 1.0
    before = reading_of(kr)
    goal_before = goal.own_progress

    if _stands_somewhere(kr) and not await kv.has_history(session, kr.id):
        was = reading_of(kr)
        session.add(
            KeyResultValue(
                key_result_id=kr.id,
                value=was.value if kr.kind == KrKind.NUMBER else was.milestones_done,
                done=was.done,
                progress=was.progress,
                source=KrValueSource.IMPORT,
                source_id=None,
                recorded_by_id=None,
                recorded_at=min(kr.updated_at or goal.created_at or at, at),
            )
        )
    row = await kv.row_for_source(session, kr.id, source, source_id) if source_id is not None else None
    replaced = row is not None
    if row is None:
        row = KeyResultValue(key_result_id=kr.id, source=source, source_id=source_id)
        session.add(row)
    row.value = row_value
    row.done = is_done
    row.progress = progress
    row.recorded_by_id = by_person_id
    row.recorded_at = at
    row.note = note
    await session.flush()

    newest = await kv.latest(session, kr.id)
    if newest is not None:
        _apply(kr, newest)
    goal_after = await refresh_goal_progress(session, goal)
    return ValueChange(
        key_result_id=kr.id,
        goal_id=goal.id,
        row_id=row.id,
        before=before,
        after=reading_of_row(kr, row),
        goal_before=goal_before,
        goal_after=goal_after,
        replaced=replaced,
        current=newest is not None and newest.id == row.id,
    )


# ------------------------------------------------------------------ reading the history


async def source_readings(
    session: AsyncSession, krs: Sequence[KeyResult], source: str, source_id: int
) -> dict[int, tuple[KrReading | None, KrReading | None]]:
    """For each key result: (where it stood before ``source`` answered, what ``source`` answered).

    Before a check-in is answered the first is the current value and the second None; after, the first is
    the newest value recorded before the check-in's own (a manager's update in between counts)."""
    rows = await kv.history(session, [kr.id for kr in krs])
    key = (source, source_id)
    out: dict[int, tuple[KrReading | None, KrReading | None]] = {}
    for kr in krs:
        mine = rows.get(kr.id, [])
        own_at = next(
            (i for i in range(len(mine) - 1, -1, -1) if (mine[i].source, mine[i].source_id) == key), None
        )
        if own_at is None:
            if mine:
                out[kr.id] = (reading_of_row(kr, mine[-1]), None)
            else:
                out[kr.id] = (reading_of(kr) if _stands_somewhere(kr) else None, None)
            continue
        earlier = mine[:own_at]
        before = reading_of_row(kr, earlier[-1]) if earlier else None
        out[kr.id] = (before, reading_of_row(kr, mine[own_at]))
    return out


def end_of_day(day: date, zone: tzinfo = UTC) -> datetime:
    return datetime.combine(day, time.max, tzinfo=zone)


async def values_at(session: AsyncSession, kr_ids: Sequence[int], at: datetime) -> dict[int, KrReading]:
    """Each key result's value in force at ``at`` (recorded at or before it). A key result with no history at
    all reads as it stands, if it stood so by then; one with history only after ``at`` is absent."""
    krs = {kr.id: kr for kr in await session.scalars(select(KeyResult).where(KeyResult.id.in_(list(kr_ids))))}
    force = await kv.in_force(session, list(krs), at)
    out = {kid: reading_of_row(krs[kid], row) for kid, row in force.items()}
    missing = [kid for kid in krs if kid not in force]
    if missing:
        recorded = await kv.with_history(session, missing)
        for kid in missing:
            kr = krs[kid]
            if kid not in recorded and (kr.updated_at is None or kr.updated_at <= at):
                out[kid] = reading_of(kr)
    return out


async def value_on(
    session: AsyncSession, key_result_id: int, day: date, zone: tzinfo = UTC
) -> KrReading | None:
    """The value in force on ``day`` (at its end, in ``zone``): what a report shows for that date."""
    return (await values_at(session, [key_result_id], end_of_day(day, zone))).get(key_result_id)


async def own_progress_at(session: AsyncSession, goal_ids: Sequence[int], at: datetime) -> dict[int, float]:
    """Each objective's own progress from its key results' values in force at ``at``, for objectives whose
    key results had any value by then (others are absent: the caller falls back to what was reported)."""
    by_goal = await kv.key_results_of(session, goal_ids)
    ids = [kr.id for krs in by_goal.values() for kr in krs]
    if not ids:
        return {}
    readings = await values_at(session, ids, at)
    out: dict[int, float] = {}
    for goal_id, krs in by_goal.items():
        if not any(kr.id in readings for kr in krs):
            continue
        out[goal_id] = goal_progress(
            (readings[kr.id].progress if kr.id in readings else 0.0, kr.weight) for kr in krs
        )
    return out
