"""Local time: the one place that turns a person into a time zone and a local date.

Deadlines, check-in days, quiet hours and digest days are calendar facts where the person lives, not in UTC.
One fallback rule for a zone name the system does not know (a typo in an org sync, an empty field): the
configured ``[schedule] default_timezone``, logged, never a crash. Flows usually reach this through the
Context (``ctx.zone()``, ``ctx.today()``, ``ctx.local_text(at)``); scheduled code without a Context calls
these functions with the settings.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.config import Settings
from cards.flow_common import local_time
from storage.models import Person

log = logging.getLogger("perfloop.localtime")


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone(name: str) -> ZoneInfo:
    """The zone for an IANA name already checked by ``person_tz`` (or the configured default)."""
    return _zone(name)


def stored_tz(name: str | None, settings: Settings) -> str:
    """The zone a stored ``people.timezone`` value stands for, by ``person_tz``'s rule: for code that groups
    people by zone before loading them (one query for the distinct values instead of every person)."""
    name = name or settings.schedule.default_timezone
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return settings.schedule.default_timezone
    return name


class Zoned(Protocol):
    """Anything with a stored zone name: a ``Person``, or the scheduler's lightweight row of one."""

    @property
    def id(self) -> int: ...

    @property
    def timezone(self) -> str: ...


def person_tz(person: Person | Zoned, settings: Settings) -> str:
    """The person's IANA zone name; an unknown or empty name falls back to the configured default."""
    name = stored_tz(person.timezone, settings)
    if person.timezone and name != person.timezone:
        log.warning(
            "unknown timezone; using the default", extra={"person_id": person.id, "timezone": person.timezone}
        )
    return name


def person_zone(person: Person | Zoned, settings: Settings) -> ZoneInfo:
    """The person's zone, with the same fallback as ``person_tz``."""
    return zone(person_tz(person, settings))


def person_date(person: Person, at: datetime, settings: Settings) -> date:
    """The calendar day it is at ``at`` where the person lives (deadlines are checked against this)."""
    return at.astimezone(person_zone(person, settings)).date()


def person_text(person: Person, at: datetime, settings: Settings) -> str:
    """``2026-11-24 10:00`` where the person lives: how a card shows them a moment."""
    return local_time(at, person_zone(person, settings))


def local_at(day: date, at: time, tz: str) -> datetime:
    """``day`` at wall-clock ``at`` where the person is, as UTC."""
    return datetime.combine(day, at.replace(tzinfo=None), tzinfo=zone(tz)).astimezone(UTC)


def local_today(now: datetime, tz: str) -> date:
    return now.astimezone(zone(tz)).date()
