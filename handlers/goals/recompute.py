"""Bringing the cached progress of key results and objectives up to date after their targets changed (a
saved form, an approved adjustment): ``KeyResult.progress`` from each key result's current value against
its target, then ``Goal.own_progress`` weighted over them, both by ``progress.py``'s rules.

A new value goes through ``values.record_value`` instead (it writes the value's history row and updates the
same two caches); this module is for when the *measure* moved and the values did not, and for a saved form
(``settle_saved``), whose new key results may come with a value typed beside them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import KrValueSource
from handlers.goals.progress import goal_progress, kr_progress
from handlers.goals.values import record_value
from storage.models import Goal, KeyResult
from storage.queries import goals as gq


def kr_progress_of(kr: KeyResult) -> float:
    return kr_progress(
        kr.kind,
        start=kr.start_value,
        target=kr.target_value,
        current=kr.current_value,
        done=kr.done_at is not None,
        milestones=[m for m in kr.milestones or [] if isinstance(m, dict)],
    )


async def recompute_goals(session: AsyncSession, goal_ids: Iterable[int]) -> dict[int, float]:
    """Recompute these objectives and their key results; returns each objective's own progress. An objective
    without key results keeps the progress it has (a goal from before key results existed)."""
    ids = sorted(set(goal_ids))
    if not ids:
        return {}
    krs = await gq.key_results_of(session, ids)
    goals = list(await session.scalars(select(Goal).where(Goal.id.in_(ids))))
    out: dict[int, float] = {}
    for goal in goals:
        mine = krs.get(goal.id, [])
        for kr in mine:
            kr.progress = kr_progress_of(kr)
        if mine:
            goal.own_progress = goal_progress((kr.progress, kr.weight) for kr in mine)
        out[goal.id] = goal.own_progress
    await session.flush()
    return out


async def recompute_goal(session: AsyncSession, goal_id: int) -> float:
    """One objective: its key results' progress, then its own. 0.0 for an objective that does not exist."""
    return (await recompute_goals(session, [goal_id])).get(goal_id, 0.0)


async def settle_saved(session: AsyncSession, saved: gq.Saved, *, by_person_id: int, at: datetime) -> None:
    """After a goals or objectives form was saved: the saved objectives' progress brought up to date, then
    the values typed with new key results ("（当前 120 万元）") recorded as the owner's, each with its
    history row."""
    await recompute_goals(session, [g.id for g in saved.goals])
    for kr, value in saved.new_values:
        await record_value(
            session,
            kr.id,
            value=value,
            done=None,
            source=KrValueSource.OWNER,
            source_id=None,
            by_person_id=by_person_id,
            at=at,
        )
