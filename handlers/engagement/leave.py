"""``/leave 2026-02-01 2026-02-10``: nothing scheduled reaches a person on leave in that window.

The window is stored on the person (``leave_from``/``leave_until``, inclusive local days), the same columns
org data fills, so there is one truth whichever way it was set. ``/leave`` alone shows it, ``/leave off``
ends it early.
"""

from __future__ import annotations

from datetime import date

from bot.core.context import Context, Reply
from bot.core.router import Router

router = Router()

MAX_LEAVE_DAYS = 366
CLEAR_WORDS = {"off", "cancel", "none", "取消", "结束"}
RANGE_WORDS = {"to", "-", "~", "至", "到"}


@router.command("leave", "请假")
async def leave(ctx: Context, args: str) -> Reply:
    words = [w for w in args.replace("～", " ").split() if w.lower() not in RANGE_WORDS]
    person = ctx.person
    if not words:
        if person.leave_from is None or person.leave_until is None:
            return Reply(toast=ctx.t("schedule.leave_none"))
        return Reply(
            toast=ctx.t(
                "schedule.leave_current",
                start=person.leave_from.isoformat(),
                end=person.leave_until.isoformat(),
            )
        )
    if len(words) == 1 and words[0].lower() in CLEAR_WORDS:
        person.leave_from = person.leave_until = None
        ctx.audit("schedule.leave_cleared", "person", person.id)
        return Reply(toast=ctx.t("schedule.leave_cleared"))
    if len(words) != 2:
        raise ctx.refuse("schedule.leave_usage")
    try:
        start, end = date.fromisoformat(words[0]), date.fromisoformat(words[1])
    except ValueError:
        raise ctx.refuse("schedule.leave_bad_date") from None
    if start > end:
        raise ctx.refuse("schedule.leave_order")
    if end < ctx.today(person):
        raise ctx.refuse("schedule.leave_past")
    if (end - start).days >= MAX_LEAVE_DAYS:
        raise ctx.refuse("schedule.leave_too_long", days=MAX_LEAVE_DAYS)
    person.leave_from, person.leave_until = start, end
    ctx.audit("schedule.leave_set", "person", person.id, start=start.isoformat(), end=end.isoformat())
    return Reply(toast=ctx.t("schedule.leave_set", start=start.isoformat(), end=end.isoformat()))
