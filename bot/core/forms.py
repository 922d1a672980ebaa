"""Reading what a card form (or a chat-collected form) submitted, the same way in every flow."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from bot.core.context import Context
from bot.core.events import CardAction

FormData = Mapping[str, str | list[str]]


def form_of(ctx: Context) -> FormData:
    return ctx.event.form if isinstance(ctx.event, CardAction) else {}


def text(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return value.strip()[:limit]


def iso_date(value: str) -> date | None:
    """A date picker's value (``2026-12-01``; some platforms add a time, which is ignored)."""
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None
