"""Local time: the one place that turns a person into a time zone and a local date.

Deadlines, check-in days, quiet hours and digest days are calendar facts where the person lives, not in UTC.
One fallback rule for a zone name the system does not know (a typo in an org sync, an empty field): the
configured ``[schedule] default_timezone``, logged once per call site, never a crash.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.config import Settings
from storage.models import Person

log = logging.getLogger("perfloop.localtime")


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone(name: str) -> ZoneInfo:
    return _zone(name)


def person_tz(person: Person, settings: Settings) -> str:
    """The person's IANA zone; an unknown name falls back to the configured default instead of crashing."""
    name = person.timezone or settings.schedule.default_timezone
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown timezone; using the default", extra={"person_id": person.id, "timezone": name})
        name = settings.schedule.default_timezone
    return name


def local_at(day: date, at: time, tz: str) -> datetime:
    """``day`` at wall-clock ``at`` where the person is, as UTC."""
    return datetime.combine(day, at.replace(tzinfo=None), tzinfo=zone(tz)).astimezone(UTC)


def local_today(now: datetime, tz: str) -> date:
    return now.astimezone(zone(tz)).date()
