"""The clicker's own place in the cycle a button names.

The goals form, the carry-over and the monthly adjustment each act on the goals of whoever clicks, in the
cycle the payload carries; all three first check that the cycle is this workspace's, that the clicker takes
part in it, and that it is running. One check, so the three refuse alike.
"""

from __future__ import annotations

from bot.core.context import Context
from bot.core.status import CycleStatus
from storage.models import Cycle, CycleParticipant
from storage.queries import cycles as cq


async def own_participation(
    ctx: Context, cycle_id: int, *, not_active: str = "kickoff.not_active"
) -> tuple[Cycle, CycleParticipant]:
    """The cycle and the clicker's participation in it; refused (``not_active`` naming the cycle's code when
    it is no longer running) otherwise."""
    cycle = await ctx.session.get(Cycle, cycle_id)
    if cycle is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    mine = await cq.participant(ctx.session, cycle.id, ctx.person.id)
    if mine is None:
        raise ctx.refuse("kickoff.not_participant")
    if cycle.status != CycleStatus.ACTIVE:
        raise ctx.refuse(not_active, code=cycle.code)
    return cycle, mine
