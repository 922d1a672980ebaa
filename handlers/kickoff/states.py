"""The one way a cycle changes state: the move table (``bot.core.status.CYCLE_MOVES``), a compare-and-set,
and one audit row ``cycle.<new state>`` naming who did it and from where.

Kickoff, cancel and close, from chat, the CLI or the console, all move a cycle through ``move_cycle``, so
no path can skip a state or leave a move unrecorded, and two people racing get one winner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import CYCLE_MOVES, CycleStatus
from storage.models import AuditLog, Cycle
from storage.queries.status import transition


def may_move(status: str, to: CycleStatus) -> bool:
    """Whether the table allows ``status`` → ``to`` (an unknown stored status allows nothing)."""
    try:
        return to in CYCLE_MOVES[CycleStatus(status)]
    except ValueError:
        return False


def record_move(
    session: AsyncSession,
    cycle: Cycle,
    *,
    was: str | None,
    actor_id: int | None,
    at: datetime,
    via: str,
    **detail: Any,
) -> None:
    """The audit row of a move already made (also the creation of a draft, ``was=None``)."""
    session.add(
        AuditLog(
            at=at,
            actor_id=actor_id,
            action=f"cycle.{cycle.status}",
            entity="cycle",
            entity_id=cycle.id,
            detail={"code": cycle.code, "from": was, "via": via, **detail},
        )
    )


async def move_cycle(
    session: AsyncSession,
    cycle: Cycle,
    to: CycleStatus,
    *,
    actor_id: int | None,
    at: datetime,
    via: str,
    values: dict[str, Any] | None = None,
    **detail: Any,
) -> Cycle | None:
    """Move ``cycle`` from the status it was read in to ``to`` and audit it; None when the table forbids
    the move or someone else moved the cycle first (nothing changed then). ``values`` are further columns
    set in the same statement (who started it, when it closed)."""
    was = cycle.status
    if not may_move(was, to):
        return None
    moved = await transition(session, Cycle, cycle.id, allowed=[was], values={"status": to, **(values or {})})
    if moved is None:
        return None
    record_move(session, moved, was=was, actor_id=actor_id, at=at, via=via, **detail)
    return moved
