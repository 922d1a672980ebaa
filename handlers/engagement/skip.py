"""``/skip``: a manager skips the team's next check-in, once.

For each direct report the scheduler (``ctx.schedule``) records the next check-in occurrence as ``skipped``
before it is due, so the tick finds the key taken and sends nothing; the one after that goes out as usual.
Asking twice skips nothing more (the keys are already there) and says so. The flow decides who and says
what happened; the ledger row is the scheduler's to write.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.core.context import Context, Reply
from bot.core.router import Router
from bot.core.schedule_port import Slot
from storage.models import Person

router = Router()


@router.command("skip", "跳过")
async def skip(ctx: Context, args: str) -> Reply:
    del args
    reports = list(
        await ctx.session.scalars(
            select(Person)
            .where(
                Person.manager_id == ctx.person.id,
                Person.active.is_(True),
                Person.workspace_id == ctx.person.workspace_id,
            )
            .order_by(Person.id)
        )
    )
    if not reports:
        raise ctx.refuse("schedule.skip_no_team")
    skipped: list[tuple[Person, Slot]] = []
    already = 0
    for person in reports:
        outcome = await ctx.scheduler().skip_next_checkin(
            ctx.session, person, ctx.now, reason=f"skipped by manager {ctx.person.name}"[:200]
        )
        if outcome is None:
            continue
        if outcome.new:
            skipped.append((person, outcome.slot))
        else:
            already += 1
    if not skipped:
        if already:
            return Reply(toast=ctx.t("schedule.skip_already"), toast_kind="warning")
        raise ctx.refuse("schedule.skip_no_team")
    days = sorted({slot.local.date().isoformat() for _, slot in skipped})
    ctx.audit(
        "schedule.skip",
        "person",
        ctx.person.id,
        people=[person.id for person, _ in skipped],
        periods=sorted({slot.period for _, slot in skipped}),
    )
    return Reply(toast=ctx.t("schedule.skip_done", count=len(skipped), days=", ".join(days)))
