"""The pure due-computation layer: calendars, series and record steps, across a year and many timezones."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest

from bot.core.config import Settings
from bot.core.localtime import local_at
from bot.core.schedule import EscalationArgs, ReminderArgs
from scheduler.cadence import (
    CheckinSeries,
    DailySeries,
    ReviewSeries,
    WeeklyRulesSeries,
    action_item_steps,
    checkin_steps,
    latest,
    latest_step,
    periodic_flows,
    upcoming,
)
from scheduler.calendar import ChineseWorkCalendar, WeekdayCalendar, add_workdays, next_workday
from storage.models import ActionItem, CheckIn, Person, TeamSetting

CAL = ChineseWorkCalendar()
SH = "Asia/Shanghai"
FOUR_PM = time(16, 0)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_chinese_calendar_holidays_makeup_days_and_company_days() -> None:
    assert not CAL.day(date(2026, 10, 1)).workday
    assert CAL.day(date(2026, 10, 1)).holiday == "national_day"
    makeup = CAL.day(date(2026, 10, 10))  # Saturday, worked for National Day
    assert makeup.workday and makeup.makeup and makeup.holiday == "national_day"
    assert not CAL.day(date(2026, 10, 17)).workday  # an ordinary Saturday
    company = ChineseWorkCalendar(
        extra_holidays=frozenset({date(2026, 12, 4)}), extra_workdays=frozenset({date(2026, 12, 5)})
    )
    assert not company.day(date(2026, 12, 4)).workday and company.day(date(2026, 12, 4)).holiday == "company"
    assert company.day(date(2026, 12, 5)).workday and company.day(date(2026, 12, 5)).makeup
    # Years the package has no data for fall back to Monday-Friday rather than stopping.
    assert CAL.day(date(2031, 1, 3)).workday and not CAL.day(date(2031, 1, 4)).workday
    assert next_workday(CAL, date(2026, 10, 1)) == date(2026, 10, 8)
    assert add_workdays(CAL, date(2026, 10, 9), 1) == date(2026, 10, 10)  # the make-up Saturday counts


def test_biweekly_cadence_across_a_year() -> None:
    series = CheckinSeries(CAL, SH, every_weeks=2, weekday=4, at=FOUR_PM)
    occs = series.between(date(2026, 1, 1), date(2026, 12, 31))
    assert len(occs) == 26
    nominals = [date.fromisoformat(o.period) for o in occs]
    assert all(n.weekday() == 4 for n in nominals)
    assert all(b - a == timedelta(weeks=2) for a, b in itertools.pairwise(nominals))
    for o in occs:
        assert CAL.day(o.day).workday
        assert o.at == local_at(o.day, FOUR_PM, SH) and o.at.hour == 8  # 16:00 in Shanghai is 08:00 UTC
        assert (o.nominal is None) == (o.day == date.fromisoformat(o.period))
    # The same occurrences come out of the "latest" and "upcoming" questions the tick and plan ask.
    now = utc(2026, 6, 1)
    ahead = list(upcoming(series, now, SH, days=240))
    assert [o.period for o in ahead[:10]] == [o.period for o in occs if o.at > now][:10]
    last = latest(series, now, SH)
    assert last is not None and last.period == [o.period for o in occs if o.at <= now][-1]
    # A year later the calendar package has no data: the cadence keeps going on weekdays.
    nxt = series.between(date(2027, 1, 1), date(2027, 12, 31))
    assert len(nxt) == 27 and all(o.day.weekday() < 5 for o in nxt)  # 2027 starts on a Friday


def test_team_cadence_shares_weeks_and_per_person_overrides_win() -> None:
    settings = Settings()
    base = {
        "workspace_id": 1,
        "platform_user_id": "x",
        "name": "x",
        "roles": "employee",
        "manager_id": 9,
        "timezone": SH,
    }
    a, b = Person(id=1, **base), Person(id=2, **base)
    c = Person(id=3, cadence_weeks=1, checkin_weekday=1, **base)
    now = utc(2026, 11, 30)

    def next_checkin(p: Person) -> date:
        flow = next(f for f in periodic_flows(p, settings, CAL) if f.flow == "checkin")
        return next(upcoming(flow.series, now, SH)).day

    assert next_checkin(a) == next_checkin(b) == date(2026, 12, 4)  # biweekly Friday, same weeks for all
    assert next_checkin(c) == date(2026, 12, 1)  # weekly on Tuesday
    # A manager's team setting applies to the team; a person's own setting still wins.
    team = TeamSetting(manager_id=9, cadence_weeks=1, checkin_weekday=2, answer_window_hours=24)

    def with_team(p: Person) -> date:
        flow = next(f for f in periodic_flows(p, settings, CAL, team) if f.flow == "checkin")
        return next(upcoming(flow.series, now, SH)).day

    assert with_team(a) == date(2026, 12, 2)  # weekly on Wednesday
    assert with_team(c) == date(2026, 12, 1)
    ci = CheckIn(id=1, person_id=1, period="2026-12-02", status="open", due_at=now, reminded_at=now)
    assert checkin_steps(ci, SH, settings, snoozed_until=None, team=team)[-1].at == now + timedelta(hours=24)
    leader = Person(id=4, **{**base, "roles": "employee,leader", "manager_id": None})
    assert [f.flow for f in periodic_flows(leader, settings, CAL)] == ["digest", "insights.brief"]


def test_holiday_moves_to_next_workday_with_reason() -> None:
    weekly_friday = CheckinSeries(CAL, SH, every_weeks=1, weekday=4, at=FOUR_PM)
    occs = {o.period: o for o in weekly_friday.between(date(2026, 9, 25), date(2026, 10, 16))}
    moved = occs["2026-10-02"]
    assert moved.day == date(2026, 10, 8) and moved.nominal == date(2026, 10, 2)
    assert moved.holiday == "national_day"
    assert occs["2026-10-09"].day == date(2026, 10, 9) and occs["2026-10-09"].nominal is None
    # A weekly Thursday check-in: 1 October would move onto 8 October, the next one's day: they become one.
    weekly_thursday = CheckinSeries(CAL, SH, every_weeks=1, weekday=3, at=FOUR_PM)
    days = [o.day for o in weekly_thursday.between(date(2026, 9, 20), date(2026, 10, 20))]
    assert days == [date(2026, 9, 24), date(2026, 10, 8), date(2026, 10, 15)]
    # Company days from the config are honoured too.
    company = ChineseWorkCalendar(extra_holidays=frozenset({date(2026, 12, 4)}))
    o = CheckinSeries(company, SH, 1, 4, FOUR_PM).between(date(2026, 12, 4), date(2026, 12, 4))[0]
    assert o.day == date(2026, 12, 7) and o.holiday == "company"


def test_makeup_saturday_is_a_workday() -> None:
    saturday = CheckinSeries(CAL, SH, every_weeks=1, weekday=5, at=FOUR_PM)
    occs = {o.period: o for o in saturday.between(date(2026, 10, 10), date(2026, 10, 17))}
    assert occs["2026-10-10"].day == date(2026, 10, 10) and occs["2026-10-10"].makeup
    assert occs["2026-10-17"].day == date(2026, 10, 19) and occs["2026-10-17"].holiday == "weekend"
    digest_days = [
        o.day for o in DailySeries(CAL, SH, time(9)).between(date(2026, 9, 19), date(2026, 10, 11))
    ]
    assert date(2026, 9, 20) in digest_days and date(2026, 10, 10) in digest_days  # Sunday and Saturday
    assert date(2026, 10, 1) not in digest_days and date(2026, 9, 19) not in digest_days


@pytest.mark.parametrize(
    ("tz", "utc_day", "utc_hour"),
    [
        ("Asia/Shanghai", 4, 8),  # UTC+8: 16:00 Friday is 08:00 Friday UTC
        ("Pacific/Auckland", 4, 3),  # UTC+13 in December
        ("Pacific/Kiritimati", 4, 2),  # UTC+14: same local Friday, still Friday in UTC
        ("America/Los_Angeles", 5, 0),  # UTC-8: 16:00 Friday is Saturday 00:00 UTC
        ("Pacific/Honolulu", 5, 2),  # UTC-10
    ],
)
def test_local_time_on_both_sides_of_midnight_utc(tz: str, utc_day: int, utc_hour: int) -> None:
    series = CheckinSeries(CAL, tz, every_weeks=2, weekday=4, at=FOUR_PM)
    occ = series.between(date(2026, 12, 4), date(2026, 12, 4))[0]
    assert occ.day == date(2026, 12, 4)
    assert (occ.at.day, occ.at.hour) == (utc_day, utc_hour)
    assert latest(series, occ.at - timedelta(seconds=1), tz) != occ
    assert latest(series, occ.at, tz) == occ


def test_monthly_review_rules() -> None:
    last = ReviewSeries(CAL, SH, "last_workday", time(10))
    first = ReviewSeries(CAL, SH, "first_workday", time(10))
    third = ReviewSeries(CAL, SH, 3, time(10))
    huge = ReviewSeries(CAL, SH, 30, time(10))
    span = (date(2026, 9, 1), date(2026, 10, 31))
    assert [o.day for o in last.between(*span)] == [date(2026, 9, 30), date(2026, 10, 30)]
    assert [o.day for o in first.between(*span)] == [date(2026, 9, 1), date(2026, 10, 8)]
    assert [o.day for o in third.between(*span)] == [date(2026, 9, 3), date(2026, 10, 10)]  # make-up Sat
    assert [o.day for o in huge.between(*span)] == [date(2026, 9, 30), date(2026, 10, 30)]
    assert [o.period for o in last.between(*span)] == ["2026-09", "2026-10"]


def test_weekly_evidence_rules_check_the_week_just_ended() -> None:
    series = WeeklyRulesSeries(CAL, SH, time(9, 30))
    occs = series.between(date(2026, 9, 28), date(2026, 10, 12))
    assert [(o.period, o.day) for o in occs] == [
        ("2026-W39", date(2026, 9, 28)),
        ("2026-W40", date(2026, 10, 8)),  # Monday 5 October is National Day
        ("2026-W41", date(2026, 10, 12)),
    ]


def test_action_item_steps_and_catchup_picks_the_newest() -> None:
    settings = Settings()
    item = ActionItem(
        id=7,
        owner_id=3,
        deadline=date(2026, 10, 9),
        escalation_level=0,
        source="manual",
        deliverable="x",
        status="open",
    )
    steps = action_item_steps(item, SH, settings, CAL)
    got = [(s.flow, s.period, s.local().date(), s.args) for s in steps]
    assert got == [
        (
            "action.before",
            "7:2026-10-09",
            date(2026, 9, 30),
            ReminderArgs(7, "before"),
        ),  # T-3, 6 Oct: holiday
        ("action.due", "7:2026-10-09", date(2026, 10, 9), ReminderArgs(7, "due")),
        ("action.escalate", "7:2026-10-09:1", date(2026, 10, 10), EscalationArgs(7, 1)),  # make-up Saturday
        ("action.escalate", "7:2026-10-09:2", date(2026, 10, 12), EscalationArgs(7, 2)),
        ("action.escalate", "7:2026-10-09:3", date(2026, 10, 15), EscalationArgs(7, 3)),
    ]
    # Three days of downtime: only the newest step is owed.
    owed = latest_step(steps, local_at(date(2026, 10, 13), time(12), SH))
    assert owed is not None and owed.period == "7:2026-10-09:2"
    item.escalation_level = 2
    assert [s.period for s in action_item_steps(item, SH, settings, CAL) if s.flow == "action.escalate"] == [
        "7:2026-10-09:3"
    ]
    # An extended deadline is a new ladder with new keys.
    item.deadline, item.escalation_level = date(2026, 10, 23), 0
    assert {s.period for s in action_item_steps(item, SH, settings, CAL)} == {
        "7:2026-10-23",
        "7:2026-10-23:1",
        "7:2026-10-23:2",
        "7:2026-10-23:3",
    }


def test_checkin_reminder_and_close_and_snooze_extension() -> None:
    settings = Settings()
    due = utc(2026, 12, 4, 8)
    ci = CheckIn(id=5, person_id=3, period="2026-12-04", status="open", due_at=due, reminded_at=None)
    steps = checkin_steps(ci, SH, settings, snoozed_until=None)
    assert [(s.flow, s.at) for s in steps] == [
        ("checkin.remind", due + timedelta(hours=24)),
        ("checkin.close", due + timedelta(hours=72)),
    ]
    snoozed = checkin_steps(ci, SH, settings, snoozed_until=due + timedelta(hours=71))
    assert [(s.flow, s.at) for s in snoozed] == [("checkin.close", due + timedelta(hours=95))]


def test_weekday_calendar_plugs_in() -> None:
    series = CheckinSeries(WeekdayCalendar(), SH, every_weeks=1, weekday=3, at=FOUR_PM)
    assert [o.day for o in series.between(date(2026, 10, 1), date(2026, 10, 1))] == [date(2026, 10, 1)]
