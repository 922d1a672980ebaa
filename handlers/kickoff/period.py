"""What a cycle's code and dates may be: the one check behind ``/kickoff`` and ``perfloop kickoff``.

A kickoff reaches everyone in scope, so a typo must not become a cycle. A code that names a period
(``2026-Q1``, ``2026-H2``, ``2026-03``, ``2026``) brings its own dates and must name a real one (``2027-Q5``
is refused, not started open-ended); any other code (``onboarding-2026``) needs its dates written out.
Explicit dates always win over the code's own.

The limits say what a typo looks like: an end before the start, a cycle longer than a year, a start more
than a year ahead. A period that has already ended is allowed but flagged (``Period.past``), so the
preview can warn and the CLI can ask for ``--allow-past``: backfilling is rare, a wrong year is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from handlers.kickoff.errors import KickoffError

_QUARTER = re.compile(r"^(\d{4})-?Q(\d{1,2})$", re.IGNORECASE)
_HALF = re.compile(r"^(\d{4})-?H(\d{1,2})$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_YEAR = re.compile(r"^(\d{4})$")
RANGE = re.compile(
    r"^(\d{4}-\d{1,2}-\d{1,2})\s*(?:~|～|至|到|—|–|--|\.\.|/)\s*(\d{4}-\d{1,2}-\d{1,2})(?=\s|$|[,，、;；])"
)
"""``2026-12-01~2027-02-28`` (also ``至``, ``到``, ``..``, ``--``) at the start of the text after the code."""

MIN_YEAR = 2000
MAX_DAYS = 366
MAX_LEAD = timedelta(days=366)


@dataclass(frozen=True)
class Period:
    code: str
    """The canonical code: ``2026q1`` and ``2026Q1`` become ``2026-Q1``."""
    starts_on: date
    ends_on: date
    past: bool


def _month_end(year: int, month: int) -> date:
    first_next = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return first_next - timedelta(days=1)


def _named(code: str) -> tuple[str, date, date] | None:
    """(canonical code, start, end) for a code that names a period; None for a free-form code."""
    m = _QUARTER.match(code) or _HALF.match(code) or _MONTH.match(code) or _YEAR.match(code)
    if m is not None and int(m.group(1)) < MIN_YEAR:
        raise KickoffError("kickoff.bad_period", code=code)
    if m := _QUARTER.match(code):
        year, q = int(m.group(1)), int(m.group(2))
        if not 1 <= q <= 4:
            raise KickoffError("kickoff.bad_period", code=code)
        return f"{year}-Q{q}", date(year, 3 * q - 2, 1), _month_end(year, 3 * q)
    if m := _HALF.match(code):
        year, h = int(m.group(1)), int(m.group(2))
        if not 1 <= h <= 2:
            raise KickoffError("kickoff.bad_period", code=code)
        return f"{year}-H{h}", date(year, 6 * h - 5, 1), _month_end(year, 6 * h)
    if m := _MONTH.match(code):
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise KickoffError("kickoff.bad_period", code=code)
        return f"{year}-{month:02d}", date(year, month, 1), _month_end(year, month)
    if m := _YEAR.match(code):
        year = int(m.group(1))
        return f"{year}", date(year, 1, 1), date(year, 12, 31)
    return None


def canonical_code(code: str) -> str:
    """``2026q4`` → ``2026-Q4``, so a look-up by code finds the cycle however it was typed; any other code
    (or an invalid period) comes back as it is."""
    try:
        named = _named(code.strip())
    except KickoffError:
        return code.strip()
    return named[0] if named is not None else code.strip()


def parse_range(text: str) -> tuple[tuple[date, date] | None, str]:
    """A leading date range and the rest of ``text``; (None, text) when it does not start with one."""
    m = RANGE.match(text.strip())
    if m is None:
        return None, text
    try:
        dates = (date.fromisoformat(_iso(m.group(1))), date.fromisoformat(_iso(m.group(2))))
    except ValueError:
        raise KickoffError("kickoff.bad_dates", dates=m.group(0)[:40]) from None
    if dates[0].year < MIN_YEAR:
        raise KickoffError("kickoff.bad_dates", dates=m.group(0)[:40])
    return dates, text.strip()[m.end() :]


def _iso(value: str) -> str:
    year, month, day = value.split("-")
    return f"{year}-{int(month):02d}-{int(day):02d}"


def resolve_period(code: str, explicit: tuple[date, date] | None, today: date) -> Period:
    """The cycle's canonical code and dates, or a ``KickoffError`` that says what to write instead."""
    named = _named(code)
    if explicit is not None:
        canonical = named[0] if named is not None else code
        start, end = explicit
    elif named is not None:
        canonical, start, end = named
    else:
        raise KickoffError("kickoff.need_dates", code=code)
    if end < start:
        raise KickoffError("kickoff.end_before_start", start=start.isoformat(), end=end.isoformat())
    if (end - start).days + 1 > MAX_DAYS:
        raise KickoffError("kickoff.too_long", start=start.isoformat(), end=end.isoformat())
    if start > today + MAX_LEAD:
        raise KickoffError("kickoff.too_far", start=start.isoformat())
    return Period(canonical, start, end, past=end < today)
