"""The ISO week a weekly check is about, as local calendar days."""

from __future__ import annotations

import re
from datetime import date, timedelta

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def week_end(week: str) -> date:
    """``2026-W48`` → the Monday after that week: the exclusive end of a window that ends with it."""
    match = WEEK.match(week)
    if match is None:
        raise ValueError(f"week must look like 2026-W48, not {week!r}")
    return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1) + timedelta(weeks=1)
