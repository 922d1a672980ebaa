"""Key results and their value history (``kr_values``): what the check-in asks, what a report reads.

A value "in force" at a moment is the newest row recorded at or before it (ties broken by id, so the row
written last wins); the history is append-only except that one source's answer (a check-in, an import
batch) replaces its own earlier row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import KeyResult, KeyResultValue

CHUNK = 500
"""Ids per ``IN`` list: a report over a whole company stays within every driver's parameter limit."""


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    unique = sorted(set(ids))
    return [unique[i : i + CHUNK] for i in range(0, len(unique), CHUNK)]


async def key_results_of(session: AsyncSession, goal_ids: Sequence[int]) -> dict[int, list[KeyResult]]:
    """Each goal's key results in their order (goals without any are absent)."""
    out: dict[int, list[KeyResult]] = {}
    for chunk in _chunks(goal_ids):
        rows = await session.scalars(
            select(KeyResult)
            .where(KeyResult.goal_id.in_(chunk))
            .order_by(KeyResult.goal_id, KeyResult.position, KeyResult.id)
        )
        for kr in rows:
            out.setdefault(kr.goal_id, []).append(kr)
    return out


async def history(session: AsyncSession, kr_ids: Sequence[int]) -> dict[int, list[KeyResultValue]]:
    """Every recorded value of these key results, oldest first (a cycle holds a few dozen per key result)."""
    out: dict[int, list[KeyResultValue]] = {}
    for chunk in _chunks(kr_ids):
        rows = await session.scalars(
            select(KeyResultValue)
            .where(KeyResultValue.key_result_id.in_(chunk))
            .order_by(KeyResultValue.key_result_id, KeyResultValue.recorded_at, KeyResultValue.id)
        )
        for row in rows:
            out.setdefault(row.key_result_id, []).append(row)
    return out


async def row_for_source(
    session: AsyncSession, key_result_id: int, source: str, source_id: int
) -> KeyResultValue | None:
    """The row one source (a check-in, an import batch) wrote for a key result, if any."""
    return await session.scalar(
        select(KeyResultValue)
        .where(
            KeyResultValue.key_result_id == key_result_id,
            KeyResultValue.source == source,
            KeyResultValue.source_id == source_id,
        )
        .order_by(KeyResultValue.id)
        .limit(1)
    )


async def latest(session: AsyncSession, key_result_id: int) -> KeyResultValue | None:
    return await session.scalar(
        select(KeyResultValue)
        .where(KeyResultValue.key_result_id == key_result_id)
        .order_by(KeyResultValue.recorded_at.desc(), KeyResultValue.id.desc())
        .limit(1)
    )


async def has_history(session: AsyncSession, key_result_id: int) -> bool:
    found = await session.scalar(
        select(KeyResultValue.id).where(KeyResultValue.key_result_id == key_result_id).limit(1)
    )
    return found is not None


async def in_force(session: AsyncSession, kr_ids: Sequence[int], at: datetime) -> dict[int, KeyResultValue]:
    """The newest row of each key result recorded at or before ``at`` (key results with none are absent)."""
    out: dict[int, KeyResultValue] = {}
    for chunk in _chunks(kr_ids):
        ranked = (
            select(
                KeyResultValue.id.label("id"),
                func.row_number()
                .over(
                    partition_by=KeyResultValue.key_result_id,
                    order_by=(KeyResultValue.recorded_at.desc(), KeyResultValue.id.desc()),
                )
                .label("rank"),
            )
            .where(KeyResultValue.key_result_id.in_(chunk), KeyResultValue.recorded_at <= at)
            .subquery()
        )
        rows = await session.scalars(
            select(KeyResultValue).join(ranked, ranked.c.id == KeyResultValue.id).where(ranked.c.rank == 1)
        )
        for row in rows:
            out[row.key_result_id] = row
    return out


async def with_history(session: AsyncSession, kr_ids: Sequence[int]) -> set[int]:
    """Which of these key results have any recorded value at all."""
    out: set[int] = set()
    for chunk in _chunks(kr_ids):
        out.update(
            await session.scalars(
                select(KeyResultValue.key_result_id)
                .where(KeyResultValue.key_result_id.in_(chunk))
                .group_by(KeyResultValue.key_result_id)
            )
        )
    return out
