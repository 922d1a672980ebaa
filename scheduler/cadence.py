"""Who is due when: the occurrence series of every scheduled flow, in the person's own timezone.

Everything here is pure computation (no database, no clock of its own), so the rules can be tested across
years in milliseconds. A series answers two questions: the latest occurrence at or before *now* (what the
tick may owe) and the occurrences after *now* (what ``perfloop schedule --next`` shows).

Periods are the natural keys of ``scheduled_sends``. A check-in's period is the ISO date of its *nominal*
day: when a holiday moves it, the key stays the same, so adding a company holiday after the card went out
cannot make it go out again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Literal, Protocol, TypeVar

from bot.core.config import Settings
from bot.core.localtime import local_at, local_today, person_tz, zone
from bot.core.schedule import (
    ARGS,
    CheckinArgs,
    DayArgs,
    EscalationArgs,
    Job,
    JobArgs,
    PeriodArgs,
    ReminderArgs,
    WeekArgs,
    takes_checkins,
)
from scheduler.calendar import WorkCalendar, add_workdays, next_workday, previous_workday, workdays_in_month
from storage.models import ActionItem, CheckIn, Person, TeamSetting
from storage.queries.scheduled import OpenCheckinRow, OpenItemRow, PersonRow

log = logging.getLogger("perfloop.scheduler")

EPOCH_MONDAY = date(2024, 1, 1)
"""Week 0 of every "every N weeks" cadence: one global anchor keeps a team's check-ins on the same weeks."""


class Policy(Enum):
    """How a due item treats leave and the catch-up horizon."""

    PERIODIC = "periodic"
    """A prompt for a period (check-in, 3-2-1, digest, weekly rules): leave excuses it (``skipped``), and
    past the horizon it is ``missed``: a two-week-old check-in card helps nobody."""
    REMINDER = "reminder"
    """A nudge about an existing record: waits while the person is on leave, stale past the horizon."""
    STATE = "state"
    """A state change that must happen eventually (close a missed check-in, escalate an overdue action):
    waits for the end of leave, never expires."""


@dataclass(frozen=True)
class Occurrence:
    period: str
    day: date
    at: datetime
    """UTC."""
    nominal: date | None = None
    """The day it would have been on when a non-workday moved it."""
    holiday: str | None = None
    makeup: bool = False


@dataclass(frozen=True, slots=True)
class Due:
    """One thing owed to one person: the ledger key, when, and which job with which typed arguments."""

    flow: str
    person_id: int
    period: str
    at: datetime
    tz: str
    job: Job
    policy: Policy
    args: JobArgs
    nominal: date | None = None
    holiday: str | None = None
    makeup: bool = False
    audience: str | None = None
    """Who hears this step of a record ("owner", "manager", "hrbp"); a catch-up owes each audience its own
    latest step, so a later rung for someone else never swallows the rung meant for this person."""

    def __post_init__(self) -> None:
        if not isinstance(self.args, ARGS[self.job]):
            raise TypeError(f"{self.job} takes {ARGS[self.job].__name__}, not {type(self.args).__name__}")

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.flow, self.person_id, self.period)

    def local(self) -> datetime:
        return self.at.astimezone(zone(self.tz))


# --------------------------------------------------------------------------------------------- series
class Series(Protocol):
    @property
    def lookback(self) -> timedelta:
        """How far back the latest occurrence can lie (one period plus the longest holiday shift)."""
        ...

    def between(self, first: date, last: date) -> list[Occurrence]:
        """Occurrences whose nominal local day lies in [first, last], in time order."""
        ...


def latest(series: Series, now: datetime, tz: str) -> Occurrence | None:
    """The latest occurrence due at or before ``now``: the only one a catch-up may still owe."""
    today = local_today(now, tz)
    due = [o for o in series.between(today - series.lookback, today) if o.at <= now]
    return due[-1] if due else None


def upcoming(series: Series, now: datetime, tz: str, *, days: int = 400) -> Iterator[Occurrence]:
    """Occurrences due after ``now``, lazily, in time order, for up to ``days`` ahead."""
    start = local_today(now, tz) - series.lookback
    end = start + timedelta(days=days)
    step = timedelta(days=35)
    seen: set[str] = set()
    while start <= end:
        chunk_end = start + step - timedelta(days=1)
        for occ in series.between(start, chunk_end):
            if occ.at > now and occ.period not in seen:
                seen.add(occ.period)
                yield occ
        start = chunk_end + timedelta(days=1)


@dataclass
class CheckinSeries:
    """Every ``every_weeks`` weeks on ``weekday`` at ``at`` local time; a day off moves it to the next
    workday, and when a long holiday pushes it onto the next occurrence's day the two become one."""

    cal: WorkCalendar
    tz: str
    every_weeks: int
    weekday: int
    at: time

    @property
    def lookback(self) -> timedelta:
        return timedelta(weeks=2 * self.every_weeks, days=7)

    def _is_nominal(self, d: date) -> bool:
        return d.weekday() == self.weekday and ((d - EPOCH_MONDAY).days // 7) % self.every_weeks == 0

    def _first_nominal(self, d: date) -> date:
        d += timedelta(days=(self.weekday - d.weekday()) % 7)
        while not self._is_nominal(d):
            d += timedelta(weeks=1)
        return d

    def between(self, first: date, last: date) -> list[Occurrence]:
        out: list[Occurrence] = []
        nominal = self._first_nominal(first)
        step = timedelta(weeks=self.every_weeks)
        shifted = next_workday(self.cal, nominal)
        while nominal <= last:
            following = nominal + step
            following_shifted = next_workday(self.cal, following)
            if shifted < following_shifted:  # else merged into the next one
                out.append(self._occurrence(nominal, shifted))
            nominal, shifted = following, following_shifted
        return out

    def _occurrence(self, nominal: date, day: date) -> Occurrence:
        moved = day != nominal
        info = self.cal.day(nominal if moved else day)
        return Occurrence(
            period=nominal.isoformat(),
            day=day,
            at=local_at(day, self.at, self.tz),
            nominal=nominal if moved else None,
            holiday=(info.holiday or "weekend") if moved else None,
            makeup=self.cal.day(day).makeup,
        )


@dataclass
class ReviewSeries:
    """The monthly 3-2-1: on the first, the last or the N-th workday of the month (N past the end of a
    short month means the last one)."""

    cal: WorkCalendar
    tz: str
    rule: str | int
    at: time
    lookback: timedelta = timedelta(days=62)

    def between(self, first: date, last: date) -> list[Occurrence]:
        out: list[Occurrence] = []
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            days = workdays_in_month(self.cal, year, month)
            if days:
                if self.rule == "first_workday":
                    day = days[0]
                elif self.rule == "last_workday":
                    day = days[-1]
                else:
                    day = days[min(int(self.rule), len(days)) - 1]
                if first <= day <= last:
                    out.append(
                        Occurrence(
                            period=f"{year:04d}-{month:02d}",
                            day=day,
                            at=local_at(day, self.at, self.tz),
                            makeup=self.cal.day(day).makeup,
                        )
                    )
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out


@dataclass
class DailySeries:
    """Every workday (make-up weekend days included) at ``at`` local time: the leadership digest."""

    cal: WorkCalendar
    tz: str
    at: time
    lookback: timedelta = timedelta(days=21)

    def between(self, first: date, last: date) -> list[Occurrence]:
        out: list[Occurrence] = []
        d = first
        while d <= last:
            info = self.cal.day(d)
            if info.workday:
                out.append(
                    Occurrence(
                        period=d.isoformat(), day=d, at=local_at(d, self.at, self.tz), makeup=info.makeup
                    )
                )
            d += timedelta(days=1)
        return out


@dataclass
class WeeklyRulesSeries:
    """The evidence rules for ISO week W run on the first workday of the following week (the week is over
    by then); the period is the week checked, e.g. ``2026-W48``."""

    cal: WorkCalendar
    tz: str
    at: time
    lookback: timedelta = timedelta(days=28)

    def between(self, first: date, last: date) -> list[Occurrence]:
        out: list[Occurrence] = []
        monday = first - timedelta(days=first.weekday())
        while monday <= last:
            checked = monday - timedelta(weeks=1)
            iso = checked.isocalendar()
            day = next_workday(self.cal, monday)
            if first <= monday:
                out.append(
                    Occurrence(
                        period=f"{iso.year:04d}-W{iso.week:02d}",
                        day=day,
                        at=local_at(day, self.at, self.tz),
                        nominal=monday if day != monday else None,
                        holiday=(self.cal.day(monday).holiday or "weekend") if day != monday else None,
                        makeup=self.cal.day(day).makeup,
                    )
                )
            monday += timedelta(weeks=1)
        return out


# ---------------------------------------------------------------------------------- who gets which
WEEKLY_CHECKS = frozenset({Job.CHECK_EVIDENCE_RULES, Job.CHECK_THRESHOLDS, Job.CHECK_EARLY_WARNING})
"""Jobs run on the first workday after an ISO week, for that week (``WeeklyRulesSeries``)."""
BRIEF_ROLES = ("leader", "hrbp", "manager")
"""Who may read a monthly department brief (the flow sends one only to leaders, department heads and
department HRBPs; the rest of these get nothing)."""


@dataclass(frozen=True)
class PeriodicFlow:
    flow: str
    job: Job
    series: Series

    def args(self, occ: Occurrence) -> JobArgs:
        if self.job is Job.SEND_DIGEST:
            return DayArgs(day=occ.day)
        if self.job in WEEKLY_CHECKS:
            return WeekArgs(week=occ.period)
        return PeriodArgs(period=occ.period, due_at=occ.at)

    def due(self, person_id: int, tz: str, occ: Occurrence, *, args: JobArgs | None = None) -> Due:
        """This occurrence as owed to one person; ``args`` (``self.args(occ)``) may be shared by everyone
        owed the same occurrence."""
        return Due(
            flow=self.flow,
            person_id=person_id,
            period=occ.period,
            at=occ.at,
            tz=tz,
            job=self.job,
            policy=Policy.PERIODIC,
            args=args if args is not None else self.args(occ),
            nominal=occ.nominal,
            holiday=occ.holiday,
            makeup=occ.makeup,
        )


def first_set(*values: int | None) -> int:
    for value in values:
        if value is not None:
            return value
    raise ValueError("no value and no default")


def periodic_flows(
    person: Person | PersonRow, settings: Settings, cal: WorkCalendar, team: TeamSetting | None = None
) -> list[PeriodicFlow]:
    """The series a person receives. Check-in cadence: the person's own setting, else the team's (their
    manager's ``team_settings``), else ``[schedule]``."""
    cfg = settings.schedule
    tz = person_tz(person, settings)
    out: list[PeriodicFlow] = []
    if takes_checkins(person):
        weeks = first_set(person.cadence_weeks, team.cadence_weeks if team else None, cfg.checkin_every_weeks)
        weekday = first_set(
            person.checkin_weekday, team.checkin_weekday if team else None, cfg.checkin_weekday
        )
        out.append(
            PeriodicFlow(
                "checkin", Job.OPEN_CHECKIN, CheckinSeries(cal, tz, weeks, weekday, cfg.checkin_time)
            )
        )
        out.append(
            PeriodicFlow("review", Job.OPEN_REVIEW, ReviewSeries(cal, tz, cfg.review_day, cfg.review_time))
        )
        out.append(
            PeriodicFlow("evidence", Job.CHECK_EVIDENCE_RULES, WeeklyRulesSeries(cal, tz, cfg.reminder_time))
        )
        out.append(
            PeriodicFlow(
                "insights.warn", Job.CHECK_EARLY_WARNING, WeeklyRulesSeries(cal, tz, cfg.reminder_time)
            )
        )
    digest = settings.digest
    if digest.enabled and (person.has_role("leader") or (digest.managers_too and person.has_role("manager"))):
        out.append(PeriodicFlow("digest", Job.SEND_DIGEST, DailySeries(cal, tz, digest.time)))
    if any(person.has_role(role) for role in BRIEF_ROLES):
        brief = ReviewSeries(cal, tz, "first_workday", digest.time)
        out.append(PeriodicFlow("insights.brief", Job.SEND_DEPARTMENT_BRIEF, brief))
    if person.has_role("hrbp") or person.has_role("manager"):
        alerts = WeeklyRulesSeries(cal, tz, cfg.reminder_time)
        out.append(PeriodicFlow("insights.alerts", Job.CHECK_THRESHOLDS, alerts))
    return out


def checkin_flow(
    person: Person | PersonRow, settings: Settings, cal: WorkCalendar, team: TeamSetting | None = None
) -> PeriodicFlow | None:
    """The person's check-in series, or None when they take no check-ins."""
    return next(
        (pf for pf in periodic_flows(person, settings, cal, team) if pf.job is Job.OPEN_CHECKIN), None
    )


# ------------------------------------------------------------------------------ record-driven steps
@dataclass(frozen=True, slots=True)
class Step:
    """One step of an open record's timeline before it is tied to the record. A timeline depends only on
    the record's dates (and the zone), so a tick works it out once for the 100,000 items due on one day and
    binds it to each item (``checkin_due``, ``item_due``)."""

    flow: str
    at: datetime
    job: Job
    policy: Policy
    suffix: str = ""
    """Appended to the record's key (an escalation's level)."""
    kind: Literal["before", "due"] = "due"
    """A reminder's kind (``ReminderArgs``)."""
    level: int = 0
    """An escalation's level (``EscalationArgs``)."""
    audience: str | None = None


class Audienced(Protocol):
    @property
    def at(self) -> datetime: ...

    @property
    def audience(self) -> str | None: ...


S = TypeVar("S", bound=Audienced)


def checkin_timeline(
    due_at: datetime,
    *,
    reminded: bool,
    settings: Settings,
    snoozed_until: datetime | None,
    team: TeamSetting | None = None,
) -> list[Step]:
    """The reminder and the missed-close of one open check-in (answer window: the team's, else the
    configured one). A snooze replaces the reminder (the wake-up is the reminder) and gives the person a
    full reminder interval after it before the close."""
    cfg = settings.schedule
    window = first_set(team.answer_window_hours if team else None, cfg.checkin_answer_window_hours)
    close_at = due_at + timedelta(hours=window)
    steps: list[Step] = []
    if snoozed_until is None:
        if not reminded:
            remind_at = due_at + timedelta(hours=cfg.checkin_reminder_hours)
            steps.append(Step("checkin.remind", remind_at, Job.REMIND_CHECKIN, Policy.REMINDER))
    else:
        close_at = max(close_at, snoozed_until + timedelta(hours=cfg.checkin_reminder_hours))
    steps.append(Step("checkin.close", close_at, Job.CLOSE_MISSED_CHECKIN, Policy.STATE))
    return [s for s in steps if s.flow == "checkin.close" or s.at < close_at]


def checkin_due(step: Step, ci: CheckIn | OpenCheckinRow, tz: str) -> Due:
    return Due(
        flow=step.flow,
        person_id=ci.person_id,
        period=str(ci.id),
        at=step.at,
        tz=tz,
        job=step.job,
        policy=step.policy,
        args=CheckinArgs(checkin_id=ci.id),
    )


def checkin_steps(
    ci: CheckIn | OpenCheckinRow,
    tz: str,
    settings: Settings,
    *,
    snoozed_until: datetime | None,
    team: TeamSetting | None = None,
) -> list[Due]:
    """``checkin_timeline`` bound to the check-in."""
    timeline = checkin_timeline(
        ci.due_at,
        reminded=ci.reminded_at is not None,
        settings=settings,
        snoozed_until=snoozed_until,
        team=team,
    )
    return [checkin_due(s, ci, tz) for s in timeline]


LADDER_AUDIENCE = {1: "owner", 2: "manager", 3: "hrbp"}
"""Who each escalation level tells (``handlers/action_items/escalation.py`` sends it)."""


def action_item_timeline(
    deadline: date, escalation_level: int, tz: str, settings: Settings, cal: WorkCalendar
) -> list[Step]:
    """Reminder T-N days (moved back onto a workday), reminder on the day, then escalation: the owner on
    the first workday after the deadline, the manager ``manager_grace_days`` workdays later, the HRBP
    ``hrbp_grace_days`` workdays after that. Weekends and holidays never count as grace."""
    esc = settings.escalation
    at = settings.schedule.reminder_time
    steps: list[Step] = []

    def remind(flow: str, day: date, kind: Literal["before", "due"]) -> None:
        steps.append(
            Step(
                flow,
                local_at(day, at, tz),
                Job.REMIND_ACTION_ITEM,
                Policy.REMINDER,
                kind=kind,
                audience="owner",
            )
        )

    due_day = previous_workday(cal, deadline)
    if esc.remind_days_before > 0:
        before = previous_workday(cal, deadline - timedelta(days=esc.remind_days_before))
        if before < due_day:
            remind("action.before", before, "before")
    remind("action.due", due_day, "due")
    level1 = add_workdays(cal, deadline + timedelta(days=1), 0)
    level2 = add_workdays(cal, level1, esc.manager_grace_days)
    level3 = add_workdays(cal, level2, esc.hrbp_grace_days)
    if escalation_level >= 1:  # the owner has heard it is overdue: a reminder would only repeat it
        steps.clear()
    for level, day in ((1, level1), (2, level2), (3, level3)):
        if level > escalation_level:
            steps.append(
                Step(
                    "action.escalate",
                    local_at(day, at, tz),
                    Job.ESCALATE_ACTION_ITEM,
                    Policy.STATE,
                    suffix=f":{level}",
                    level=level,
                    audience=LADDER_AUDIENCE[level],
                )
            )
    return steps


def item_due(step: Step, item: ActionItem | OpenItemRow, tz: str) -> Due:
    """A step of ``action_item_timeline`` bound to the item. Periods carry the deadline: an extended
    deadline starts a fresh set of reminders and a fresh ladder (the owner is in the key already, so a
    reassignment does too)."""
    args: JobArgs = (
        ReminderArgs(item_id=item.id, kind=step.kind)
        if step.job is Job.REMIND_ACTION_ITEM
        else EscalationArgs(item_id=item.id, level=step.level)
    )
    return Due(
        flow=step.flow,
        person_id=item.owner_id,
        period=f"{item.id}:{item.deadline.isoformat()}{step.suffix}",
        at=step.at,
        tz=tz,
        job=step.job,
        policy=step.policy,
        args=args,
        audience=step.audience,
    )


def action_item_steps(
    item: ActionItem | OpenItemRow, tz: str, settings: Settings, cal: WorkCalendar
) -> list[Due]:
    """``action_item_timeline`` bound to the item."""
    return [
        item_due(s, item, tz)
        for s in action_item_timeline(item.deadline, item.escalation_level, tz, settings, cal)
    ]


def latest_step(steps: list[S], now: datetime) -> S | None:
    """The newest step at or before ``now``: after downtime, the before / on-the-day / overdue messages
    to one person collapse into the last of them."""
    due = [(s.at, i, s) for i, s in enumerate(steps) if s.at <= now]
    return max(due, key=lambda p: (p[0], p[1]))[2] if due else None


def latest_steps(steps: list[S], now: datetime) -> list[S]:
    """What a record owes after downtime: the newest step *per audience*, in time order.

    Each person hears once (their latest rung, one card), and nobody's rung is skipped: a week's outage
    owes the owner their overdue card before the manager's escalation, never the escalation alone."""
    audiences: dict[str | None, list[S]] = {}
    for step in steps:
        audiences.setdefault(step.audience, []).append(step)
    owed = [s for group in audiences.values() if (s := latest_step(group, now)) is not None]
    return sorted(owed, key=lambda s: s.at)
