"""Small pieces shared by the kickoff, goals, check-in and 3-2-1 cards: local times and outcome notes."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cards.catalogue import Translator
from cards.model import Card, Note
from cards.text import shorten


def local_time(at: datetime, tz: str) -> str:
    """``2026-11-24 10:00`` in the viewer's time zone (falls back to UTC for an unknown zone name)."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def done_by(t: Translator, *, name: str, what: str, at: datetime, tz: str) -> str:
    return t("common.done_by", name=name, what=what, time=local_time(at, tz))


def with_outcome(card: Card, note: str) -> Card:
    """The decided card: buttons disabled, forms removed, and who did what when at the bottom."""
    decided = card.disabled()
    elements = [*decided.elements, Note(text=note[:300])]
    return decided.model_copy(update={"elements": elements[-30:]})


def clip(text: str | None, limit: int = 200) -> str:
    return shorten(text, limit) if text else "—"


def local_date(at: datetime, tz: str) -> date:
    """The calendar day it is at ``at`` for someone in ``tz`` (deadlines are checked against this)."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return at.astimezone(zone).date()
