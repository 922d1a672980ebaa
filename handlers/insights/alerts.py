"""Threshold alerts: once a week, a department whose health figure crossed its threshold (``[thresholds]``:
evidence completeness below, average response time above, check-in completion below target) is reported to
its head and its HRBP, with the people behind the number.

The check runs for each head and HRBP on the first workday after an ISO week, over the last check-in cadence
(``[schedule] checkin_every_weeks``) ending with that week, as the digest measures a period. All the reader's
departments (each with its sub-departments) come from one set of statements grouped per department. One card
per department lists every figure that crossed; a figure is reported to a reader at most once per department
and week (an audit row per figure, keyed by the week), so a re-run, a second replica or a manual call in the
same week sends nothing new, and the next week reports it again if it still holds.
"""

from __future__ import annotations

from datetime import timedelta

from bot.core.context import Context
from bot.core.schedule import Entry, Job, ScheduleEntry, WeekArgs
from cards.insights import AlertFigure, AlertView, Named, alert_card
from handlers.insights.figures import ALERTED, FigureKey, Thresholds, rolled_up, subtree, thresholds_for
from handlers.insights.weeks import week_end
from storage.models import Person
from storage.queries import insights as iq
from storage.queries import metrics as m
from storage.queries.once import done_before

ALERT = "insights.alert"
NAMED = 5
"""People named per figure; the card adds how many more there are."""


def alert_departments(reader: Person, depts: dict[int, iq.Dept]) -> list[iq.Dept]:
    """The departments whose alerts ``reader`` receives: those they head or are the HRBP of."""
    return [d for d in depts.values() if reader.id in (d.head_id, d.hrbp_id)]


async def _behind(
    ctx: Context, key: FigureKey, ws: int, ids: set[int], window: m.Window, limits: Thresholds
) -> iq.Behind:
    if key == "evidence":
        return await iq.missing_evidence(ctx.session, ws, ids, window, limit=NAMED)
    if key == "response":
        return await iq.slow_responses(ctx.session, ws, ids, window, hours=limits.response_hours, limit=NAMED)
    return await iq.unanswered_checkins(ctx.session, ws, ids, window, limit=NAMED)


async def check_thresholds(ctx: Context, *, week: str) -> int:
    """Scheduler entry point (ctx.person = a department head or HRBP, ``week`` = the ISO week just over).
    Returns the alert cards sent (one per department with a newly crossed figure)."""
    reader = ctx.person
    if not reader.active:
        return 0
    depts = await iq.departments(ctx.session, reader.workspace_id)
    mine = alert_departments(reader, depts)
    if not mine:
        return 0
    days = ctx.settings.schedule.checkin_every_weeks * 7
    window = m.Window.ending(week_end(week), days, ctx.zone(reader))
    per_dept = await m.metrics_by(ctx.session, m.Scope(reader.workspace_id), window, "department")
    t = ctx.translator(reader)
    sent = 0
    for dept in mine:
        ids = subtree(depts, dept.id)
        figures = rolled_up(per_dept, ids)
        limits = thresholds_for(ctx.settings, dept.id)
        crossed: list[AlertFigure] = []
        for key in ALERTED:
            value = limits.crossed(key, figures)
            limit = limits.limit(key)
            if value is None or limit is None:
                continue
            once = f"{key}:{week}:{reader.id}"
            if await done_before(ctx.session, action=ALERT, entity="department", entity_id=dept.id, key=once):
                continue
            behind = await _behind(ctx, key, reader.workspace_id, ids, window, limits)
            crossed.append(
                AlertFigure(
                    key=key,
                    value=value,
                    threshold=limit,
                    kind="hours" if key == "response" else "rate",
                    behind_total=behind.total,
                    behind=[Named(p.name, p.count) for p in behind.people],
                )
            )
            ctx.audit(ALERT, "department", dept.id, key=once, reader_id=reader.id, value=round(value, 4))
        if not crossed:
            continue
        view = AlertView(
            department=dept.name,
            first_day=window.first_day.isoformat(),
            last_day=(window.end_day - timedelta(days=1)).isoformat(),
            figures=crossed,
        )
        keys = "+".join(f.key for f in crossed)
        ctx.outbox.send(reader, alert_card(t, view), dedupe_key=f"alert:{reader.id}:{dept.id}:{week}:{keys}")
        sent += 1
    return sent


# ------------------------------------------------------------------ schedule entries
SCHEDULE: tuple[ScheduleEntry, ...] = (
    Entry(Job.CHECK_THRESHOLDS, WeekArgs, lambda ctx, a: check_thresholds(ctx, week=a.week)),
)
