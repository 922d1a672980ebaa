"""Early warning: a person whose figures fell two periods in a row is flagged to their manager and HRBP,
with the figures that fell and a suggested care conversation; never to the person.

Checked for each employee on the first workday after an ISO week. The periods are the person's check-in
cadence (their own, else ``[schedule] checkin_every_weeks``) laid back to back, the last one ending with
that week. Three figures are compared period by period, and a figure *fell two periods in a row* when each
of the last three periods is lower than the one before:

- check-ins: each due check-in scores 1 answered on time (before the reminder, ``checkin_reminder_hours``),
  ½ answered late, 0 missed or still unanswered after its answer window; one still inside its window does
  not count yet;
- KR progress: the average of the goal progress (%) the period's last answered check-in reported;
- evidence ratings: the average rating of the photos sent in the period (meets 2, needs improvement 1,
  needs support 0).

At most one warning a month per person (an audit row keyed by the month of the check), so a person who keeps
falling is not flagged every week.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise

from bot.core.context import Context
from bot.core.people import hrbp_of, line_manager
from bot.core.schedule import Entry, Job, ScheduleEntry, WeekArgs
from bot.core.status import ANSWERED_CHECKIN, CheckInStatus
from cards.insights import Fall, Kind, WarningView, warning_card
from handlers.insights.weeks import week_end
from storage.models import Person
from storage.queries import insights as iq
from storage.queries.once import done_before

WARNED = "insights.early_warning"
PERIODS = 3
"""Two falls in a row need three periods."""
RATING_SCORE = {"meets": 2.0, "improve": 1.0, "support": 0.0}


def fell_twice(values: Sequence[float | None]) -> bool:
    """Each value lower than the one before (oldest first); a period without data breaks the run."""
    known = [v for v in values if v is not None]
    return len(known) == len(values) >= PERIODS and all(b < a for a, b in pairwise(known))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _period_of(at: datetime, bounds: Sequence[datetime]) -> int | None:
    for i in range(len(bounds) - 1):
        if bounds[i] <= at < bounds[i + 1]:
            return i
    return None


def _progress(row: iq.CheckinRow) -> float | None:
    values: list[float] = []
    for raw in row.progress.values():
        try:
            values.append(min(100.0, max(0.0, float(str(raw)))))
        except ValueError:
            continue
    return _mean(values)


def checkin_scores(
    rows: Sequence[iq.CheckinRow], bounds: Sequence[datetime], *, late_after: timedelta, window: timedelta
) -> list[float | None]:
    scores: list[list[float]] = [[] for _ in range(len(bounds) - 1)]
    end = bounds[-1]
    for row in rows:
        i = _period_of(_utc(row.due_at), bounds)
        if i is None:
            continue
        if row.status in ANSWERED_CHECKIN and row.submitted_at is not None:
            scores[i].append(1.0 if _utc(row.submitted_at) <= _utc(row.due_at) + late_after else 0.5)
        elif row.status == CheckInStatus.MISSED or _utc(row.due_at) + window <= end:
            scores[i].append(0.0)
    return [_mean(s) for s in scores]


def progress_values(rows: Sequence[iq.CheckinRow], bounds: Sequence[datetime]) -> list[float | None]:
    last: list[float | None] = [None] * (len(bounds) - 1)
    for row in rows:  # oldest first: the last answered one of a period wins
        i = _period_of(_utc(row.due_at), bounds)
        value = _progress(row) if row.status in ANSWERED_CHECKIN else None
        if i is not None and value is not None:
            last[i] = value
    return last


def rating_values(rows: Sequence[iq.RatingRow], bounds: Sequence[datetime]) -> list[float | None]:
    scores: list[list[float]] = [[] for _ in range(len(bounds) - 1)]
    for row in rows:
        i = _period_of(_utc(row.received_at), bounds)
        if i is not None and row.rating in RATING_SCORE:
            scores[i].append(RATING_SCORE[row.rating])
    return [_mean(s) for s in scores]


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def falls_of(ctx: Context, person: Person, week: str) -> tuple[list[Fall], int]:
    """The person's figures that fell two periods in a row up to ``week``, and the period length in days."""
    days = (person.cadence_weeks or ctx.settings.schedule.checkin_every_weeks) * 7
    tz = ctx.zone(person)
    end_day = week_end(week)
    bounds = [
        datetime.combine(end_day - timedelta(days=days * k), time(0), tzinfo=tz).astimezone(UTC)
        for k in range(PERIODS, -1, -1)
    ]
    cfg = ctx.settings.schedule
    checkins = await iq.person_checkins(ctx.session, person.id, bounds[0], bounds[-1])
    ratings = await iq.person_ratings(ctx.session, person.id, bounds[0], bounds[-1])
    series: list[tuple[str, list[float | None], Kind]] = [
        (
            "checkin",
            checkin_scores(
                checkins,
                bounds,
                late_after=timedelta(hours=cfg.checkin_reminder_hours),
                window=timedelta(hours=cfg.checkin_answer_window_hours),
            ),
            "rate",
        ),
        ("progress", progress_values(checkins, bounds), "percent"),
        ("rating", rating_values(ratings, bounds), "score"),
    ]
    falls = [
        Fall(key, [v for v in values if v is not None], kind)
        for key, values, kind in series
        if fell_twice(values)
    ]
    return falls, days


async def check_early_warning(ctx: Context, *, week: str) -> int:
    """Scheduler entry point (ctx.person = the employee, ``week`` = the ISO week just over). Returns the
    warning cards sent (to the manager and the HRBP; 0 when nothing fell twice or they were warned this
    month)."""
    person = ctx.person
    if not person.active:
        return 0
    key = f"warn:{week_end(week).strftime('%Y-%m')}"
    if await done_before(ctx.session, action=WARNED, entity="person", entity_id=person.id, key=key):
        return 0
    falls, days = await falls_of(ctx, person, week)
    if not falls:
        return 0
    readers: dict[int, Person] = {}
    for reader in (await line_manager(ctx.session, person), await hrbp_of(ctx.session, person)):
        if reader is not None and reader.id != person.id:
            readers[reader.id] = reader
    if not readers:
        return 0
    view = WarningView(person=person.name, period_days=days, falls=falls)
    for reader in readers.values():
        ctx.outbox.send(
            reader,
            warning_card(ctx.translator(reader), view),
            dedupe_key=f"warn:{person.id}:{reader.id}:{key}",
        )
    ctx.audit(
        WARNED, "person", person.id, key=key, week=week, fell=[f.key for f in falls], to=sorted(readers)
    )
    return len(readers)


# ------------------------------------------------------------------ schedule entries
SCHEDULE: tuple[ScheduleEntry, ...] = (
    Entry(Job.CHECK_EARLY_WARNING, WeekArgs, lambda ctx, a: check_early_warning(ctx, week=a.week)),
)
