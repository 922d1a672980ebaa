"""``/skip``: a manager skips the team's next check-in, once.

For each direct report the next check-in occurrence is written to the ledger as ``skipped`` before it is
due, so the tick finds the key taken and sends nothing; the one after that goes out as usual. Asking twice
skips nothing more (the keys are already there) and says so.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.core.context import Context, Reply
from bot.core.localtime import person_tz
from bot.core.router import Router
from scheduler.cadence import Due, periodic_flows, upcoming
from scheduler.calendar import calendar_from_settings
from scheduler.ledger import Taken, claim
from storage.models import Person, TeamSetting

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
    cal = calendar_from_settings(ctx.settings)
    team = await ctx.session.scalar(select(TeamSetting).where(TeamSetting.manager_id == ctx.person.id))
    skipped: list[Due] = []
    already = 0
    for person in reports:
        tz = person_tz(person, ctx.settings)
        for pf in periodic_flows(person, ctx.settings, cal, team):
            if pf.flow != "checkin":
                continue
            occ = next(upcoming(pf.series, ctx.now, tz), None)
            if occ is None:
                continue
            due = pf.due(person.id, tz, occ)
            try:
                await claim(
                    ctx.session,
                    due,
                    now=ctx.now,
                    status="skipped",
                    reason=f"skipped by manager {ctx.person.name}"[:200],
                )
            except Taken:
                already += 1
            else:
                skipped.append(due)
    if not skipped:
        if already:
            return Reply(toast=ctx.t("schedule.skip_already"), toast_kind="warning")
        raise ctx.refuse("schedule.skip_no_team")
    days = sorted({d.local().date().isoformat() for d in skipped})
    ctx.audit(
        "schedule.skip",
        "person",
        ctx.person.id,
        people=[d.person_id for d in skipped],
        periods=sorted({d.period for d in skipped}),
    )
    return Reply(toast=ctx.t("schedule.skip_done", count=len(skipped), days=", ".join(days)))
