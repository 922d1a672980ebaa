"""The goal tree's two figures for a cycle (issue 17): the alignment rate (对齐率) and the carry-over share
(行动转化度), as the digest and ``perfloop report`` show them.

The counting is SQL in ``storage.queries.metrics`` (``goal_figures_by``); this module says which cycle the
carry-over share looks back at, the same one the one-click carry uses: the latest cycle of the workspace
before this one that is closing or closed, ended at its close (or now, while it is closing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import GoalLevel
from handlers.goals.carry import ENDED
from storage.models import Cycle
from storage.queries import carry as carry_q
from storage.queries import metrics as m


async def looks_back_at(session: AsyncSession, cycle: Cycle) -> Cycle | None:
    """The cycle whose leftovers ``cycle``'s carry-over share is about (None: none before it has ended)."""
    return await carry_q.previous_cycle(session, cycle, ended=ENDED)


@dataclass(frozen=True)
class CycleGoalFigures:
    previous: Cycle | None
    """The cycle the carry-over share looks back at."""
    figures: dict[Any, m.GoalFigures]
    """Per group key (0 when not grouped)."""


async def goal_figures_of(
    session: AsyncSession, scope: m.Scope, cycle: Cycle, *, now: datetime, group: m.Group = None
) -> CycleGoalFigures:
    """The figures of ``cycle`` in ``scope``, per ``group`` (key 0 when None)."""
    previous = await looks_back_at(session, cycle)
    base = None if previous is None else m.CarryBase(previous.id, carry_q.ended_at(previous, now))
    figures = await m.goal_figures_by(session, scope, cycle.id, group, level=GoalLevel.PERSON, previous=base)
    return CycleGoalFigures(previous, figures)
