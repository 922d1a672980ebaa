"""Versions of a person's goals in a cycle (issue 17 item 6): which one is open, which was in force when.

Version 1 is what the manager confirmed; each approved monthly adjustment takes effect from its
``effective_from``. ``goals_in_force`` answers "what were this person's goals on 3 December?" for reports
and exports from the stored ``content`` alone, without replaying edits or reading the live rows (which show
only today's version).

Statuses come in as parameters (``approved``, ``proposed``): storage sits below ``bot.core.status``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import GoalVersion

APPROVED = "approved"
PROPOSED = "proposed"
CHUNK = 1000


@dataclass(frozen=True, slots=True)
class InForce:
    """The version of a person's goals in force at a moment: its number, when it took effect, and its
    ``content`` (``{"goals": [{"id", "objective", "weight", "parent_id", "key_results": [{"id", "title",
    "kind", "unit", "start", "target", "target_date", "deadline", "milestones", "weight"}]}]}``, written
    by ``handlers.goals.versions``)."""

    version: int
    effective_from: datetime
    content: dict[str, Any]


def moment(on: date | datetime) -> datetime:
    """A datetime as it is; a date as the end of that day (UTC), so "in force on 3 December" includes an
    adjustment approved during that day."""
    if isinstance(on, datetime):
        return on
    return datetime.combine(on + timedelta(days=1), time(0), tzinfo=UTC) - timedelta(microseconds=1)


def _in_force_filter(cycle_id: int, at: datetime) -> Any:
    return and_(
        GoalVersion.cycle_id == cycle_id,
        GoalVersion.status == APPROVED,
        GoalVersion.effective_from.is_not(None),
        GoalVersion.effective_from <= at,
    )


async def goals_in_force(
    session: AsyncSession, cycle_id: int, person_id: int, on: date | datetime
) -> InForce | None:
    """The approved version with the latest ``effective_from`` at or before ``on`` (a date: the end of that
    day, UTC; a datetime: that instant). None before the goals were first confirmed (no version 1 yet)."""
    row = await session.scalar(
        select(GoalVersion)
        .where(_in_force_filter(cycle_id, moment(on)), GoalVersion.person_id == person_id)
        .order_by(GoalVersion.effective_from.desc(), GoalVersion.version.desc())
        .limit(1)
    )
    if row is None or row.effective_from is None:
        return None
    return InForce(row.version, row.effective_from, dict(row.content or {}))


async def versions_in_force(
    session: AsyncSession, cycle_id: int, person_ids: Iterable[int], on: date | datetime
) -> dict[int, int]:
    """Person id → the number of the version in force on ``on`` (people without one are left out): one
    grouped statement per thousand people, for a page of an export."""
    ids = sorted(set(person_ids))
    at = moment(on)
    out: dict[int, int] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows = await session.execute(
            select(GoalVersion.person_id, func.max(GoalVersion.version))
            .where(_in_force_filter(cycle_id, at), GoalVersion.person_id.in_(chunk))
            .group_by(GoalVersion.person_id)
        )
        out.update({pid: int(v) for pid, v in rows.all()})
    return out


async def latest(session: AsyncSession, cycle_id: int, person_id: int) -> GoalVersion | None:
    """The highest-numbered version, whatever its status."""
    return await session.scalar(
        select(GoalVersion)
        .where(GoalVersion.cycle_id == cycle_id, GoalVersion.person_id == person_id)
        .order_by(GoalVersion.version.desc())
        .limit(1)
    )


async def latest_approved(session: AsyncSession, cycle_id: int, person_id: int) -> GoalVersion | None:
    return await session.scalar(
        select(GoalVersion)
        .where(
            GoalVersion.cycle_id == cycle_id,
            GoalVersion.person_id == person_id,
            GoalVersion.status == APPROVED,
        )
        .order_by(GoalVersion.version.desc())
        .limit(1)
    )


async def open_proposal(session: AsyncSession, cycle_id: int, person_id: int) -> GoalVersion | None:
    return await session.scalar(
        select(GoalVersion)
        .where(
            GoalVersion.cycle_id == cycle_id,
            GoalVersion.person_id == person_id,
            GoalVersion.status == PROPOSED,
        )
        .order_by(GoalVersion.version.desc())
        .limit(1)
    )


async def history(session: AsyncSession, cycle_id: int, person_id: int) -> list[GoalVersion]:
    """Every version, oldest first (the audit trail of a person's goals in a cycle)."""
    rows = await session.scalars(
        select(GoalVersion)
        .where(GoalVersion.cycle_id == cycle_id, GoalVersion.person_id == person_id)
        .order_by(GoalVersion.version)
    )
    return list(rows)
