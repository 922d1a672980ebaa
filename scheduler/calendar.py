"""Which local days are workdays.

Chinese working time is not "Monday to Friday": public holidays move whole blocks of days off, and some
Saturdays or Sundays become make-up workdays (调休). The ``chinesecalendar`` package carries the State
Council's published arrangement; companies add their own days off or on in ``[schedule] extra_holidays`` /
``extra_workdays``. Anything that answers ``WorkCalendar`` can be plugged in instead (another country, a
company HR calendar); years the package has no data for fall back to the Monday-to-Friday rule, because a
scheduler that stops on 1 January when the package is one release behind is worse than a rough answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

import chinese_calendar

from bot.core.config import Settings

log = logging.getLogger("perfloop.scheduler.calendar")

MAX_RUN = 60
"""No real calendar has two months without a workday; a longer search means a broken calendar."""


@dataclass(frozen=True)
class DayInfo:
    workday: bool
    holiday: str | None = None
    """A holiday's identifier (``national_day``, ``company``…) for days off that are not plain weekends,
    and the holiday a make-up workday belongs to."""
    makeup: bool = False


class WorkCalendar(Protocol):
    def day(self, d: date) -> DayInfo: ...


class WeekdayCalendar:
    """Monday to Friday; the fallback and the simplest pluggable calendar."""

    def day(self, d: date) -> DayInfo:
        return DayInfo(workday=d.weekday() < 5)


_HOLIDAY_IDS = {str(h.value): h.name for h in chinese_calendar.Holiday}


@dataclass
class ChineseWorkCalendar:
    """The mainland China calendar plus company-specific days (which win over the public arrangement)."""

    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    fallback: WorkCalendar = field(default_factory=WeekdayCalendar)
    _warned: set[int] = field(default_factory=set)
    _memo: dict[date, DayInfo] = field(default_factory=dict)

    def day(self, d: date) -> DayInfo:
        info = self._memo.get(d)
        if info is None:
            info = self._memo[d] = self._lookup(d)
        return info

    def _lookup(self, d: date) -> DayInfo:
        if d in self.extra_workdays:
            return DayInfo(workday=True, makeup=d.weekday() >= 5)
        if d in self.extra_holidays:
            return DayInfo(workday=False, holiday="company")
        try:
            workday = chinese_calendar.is_workday(d)
            _, name = chinese_calendar.get_holiday_detail(d)
        except NotImplementedError:
            if d.year not in self._warned:
                self._warned.add(d.year)
                log.warning(
                    "no Chinese calendar data for this year; using Monday to Friday", extra={"year": d.year}
                )
            return self.fallback.day(d)
        holiday = _HOLIDAY_IDS.get(name) if name else None
        return DayInfo(workday=workday, holiday=holiday, makeup=workday and d.weekday() >= 5)


def calendar_from_settings(settings: Settings) -> ChineseWorkCalendar:
    cfg = settings.schedule
    return ChineseWorkCalendar(
        extra_holidays=frozenset(cfg.extra_holidays), extra_workdays=frozenset(cfg.extra_workdays)
    )


def is_workday(cal: WorkCalendar, d: date) -> bool:
    return cal.day(d).workday


def next_workday(cal: WorkCalendar, d: date) -> date:
    """``d`` itself if it is a workday, else the first workday after it."""
    for _ in range(MAX_RUN):
        if cal.day(d).workday:
            return d
        d += timedelta(days=1)
    raise ValueError(f"no workday within {MAX_RUN} days after {d}")


def previous_workday(cal: WorkCalendar, d: date) -> date:
    """``d`` itself if it is a workday, else the last workday before it."""
    for _ in range(MAX_RUN):
        if cal.day(d).workday:
            return d
        d -= timedelta(days=1)
    raise ValueError(f"no workday within {MAX_RUN} days before {d}")


def add_workdays(cal: WorkCalendar, d: date, n: int) -> date:
    """The n-th workday after ``d`` (n = 0: ``d`` moved forward onto a workday)."""
    d = next_workday(cal, d)
    for _ in range(n):
        d = next_workday(cal, d + timedelta(days=1))
    return d


def workdays_in_month(cal: WorkCalendar, year: int, month: int) -> list[date]:
    first = date(year, month, 1)
    days: Iterable[date] = (first + timedelta(days=i) for i in range(31))
    return [d for d in days if d.month == month and cal.day(d).workday]
