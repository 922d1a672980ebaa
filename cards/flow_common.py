"""Small pieces shared by the kickoff, goals, check-in and 3-2-1 cards: local times and outcome notes."""

from __future__ import annotations

from datetime import datetime, tzinfo

from cards.catalogue import Translator
from cards.model import Card, Note
from cards.text import shorten


def local_time(at: datetime, tz: tzinfo) -> str:
    """``2026-11-24 10:00`` in the viewer's time zone.

    The zone arrives resolved (``bot.core.localtime`` owns the person → zone rule and its fallback)."""
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def done_by(t: Translator, *, name: str, what: str, at: datetime, tz: tzinfo) -> str:
    return t("common.done_by", name=name, what=what, time=local_time(at, tz))


def with_outcome(card: Card, note: str) -> Card:
    """The decided card: buttons disabled, forms removed, and who did what when at the bottom."""
    decided = card.disabled()
    elements = [*decided.elements, Note(text=note[:300])]
    return decided.model_copy(update={"elements": elements[-30:]})


def clip(text: str | None, limit: int = 200) -> str:
    return shorten(text, limit) if text else "—"
