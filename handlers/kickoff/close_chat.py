"""``/closecycle``: HR closes a cycle from chat, in three looks.

1. ``/closecycle 2026-Q4`` (or alone, for the one running cycle) moves the cycle to *closing* and shows
   what is still open. Closing stops new things from starting; what people began may still be handed in.
2. "Close & carry over" or "Close & cancel open" shows what exactly will happen, asking for a yes.
3. The yes closes it (``handlers/kickoff/close.py``): everyone in scope gets one closing card.
"Keep running" takes a closing cycle back to active. Every step is audited as ``cycle.<state>``.
"""

from __future__ import annotations

from bot.core.context import Context, Refused, Reply
from bot.core.people import require_hr_admin
from bot.core.router import Router
from bot.core.status import CycleStatus
from cards.cycle_close import (
    CycleCloseBack,
    CycleCloseChoose,
    CycleCloseConfirm,
    CycleCloseResume,
    confirm_card,
    preview_card,
)
from cards.flow_common import done_by, with_outcome
from cards.model import Card
from handlers.kickoff.close import (
    CloseMode,
    begin_closing,
    close_cycle,
    close_preview,
    find_cycle_to_close,
    resume_cycle,
    unclosable,
)
from handlers.kickoff.errors import KickoffError
from storage.models import Cycle

router = Router()


async def _preview(ctx: Context, cycle: Cycle) -> Card:
    counts = await close_preview(ctx.session, cycle)
    return preview_card(ctx.t, counts=counts, late=ctx.settings.cycles.late_submissions)


async def _closing(ctx: Context, cycle_id: int) -> Cycle:
    """The cycle a button acts on, which must still be closing: after "keep running" (or a close by
    someone else) an old preview's buttons say where the cycle is instead."""
    require_hr_admin(ctx)
    cycle = await ctx.session.get(Cycle, cycle_id)
    if cycle is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    problem = unclosable(cycle, ctx.settings)
    if problem is not None:
        raise Refused(problem.message(ctx.t))
    if cycle.status != CycleStatus.CLOSING:
        raise ctx.refuse("cycle_close.not_closing", code=cycle.code)
    return cycle


@router.command("closecycle", "结束周期")
async def close_command(ctx: Context, args: str) -> Reply:
    """``/closecycle [code]``: the cycle enters *closing* and HR sees what is still open."""
    require_hr_admin(ctx)
    try:
        cycle = await find_cycle_to_close(ctx.session, ctx.workspace.id, args)
        cycle = await begin_closing(
            ctx.session, ctx.settings, cycle, actor_id=ctx.person.id, at=ctx.now, via="chat"
        )
    except KickoffError as exc:
        raise Refused(exc.message(ctx.t)) from None
    return Reply(card=await _preview(ctx, cycle))


@router.action(CycleCloseChoose)
async def choose(ctx: Context, payload: CycleCloseChoose) -> Reply:
    cycle = await _closing(ctx, payload.cycle_id)
    counts = await close_preview(ctx.session, cycle)
    return Reply(card=confirm_card(ctx.t, counts=counts, mode=payload.mode))


@router.action(CycleCloseBack)
async def back(ctx: Context, payload: CycleCloseBack) -> Reply:
    cycle = await _closing(ctx, payload.cycle_id)
    return Reply(card=await _preview(ctx, cycle))


@router.action(CycleCloseConfirm)
async def confirm(ctx: Context, payload: CycleCloseConfirm) -> Reply:
    cycle = await _closing(ctx, payload.cycle_id)
    mode = CloseMode(payload.mode)
    try:
        result = await close_cycle(
            ctx.session,
            ctx.outbox,
            ctx.settings,
            cycle,
            mode=mode,
            actor_id=ctx.person.id,
            at=ctx.now,
            via="chat",
        )
    except KickoffError as exc:
        raise Refused(exc.message(ctx.t)) from None
    what = ctx.t(f"cycle_close.did_close_{mode.word}", n=result.notified)
    note = done_by(ctx.t, name=ctx.person.name, what=what, at=ctx.now, tz=ctx.zone())
    card = with_outcome(confirm_card(ctx.t, counts=result.counts, mode=mode.word), note)
    return Reply(toast=ctx.t("cycle_close.closed", code=cycle.code, n=result.notified), card=card)


@router.action(CycleCloseResume)
async def resume(ctx: Context, payload: CycleCloseResume) -> Reply:
    cycle = await _closing(ctx, payload.cycle_id)
    try:
        cycle = await resume_cycle(ctx.session, cycle, actor_id=ctx.person.id, at=ctx.now, via="chat")
    except KickoffError as exc:
        raise Refused(exc.message(ctx.t)) from None
    note = done_by(
        ctx.t, name=ctx.person.name, what=ctx.t("cycle_close.did_resume"), at=ctx.now, tz=ctx.zone()
    )
    card = with_outcome(await _preview(ctx, cycle), note)
    return Reply(toast=ctx.t("cycle_close.resumed", code=cycle.code), card=card)
