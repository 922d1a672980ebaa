"""Small pieces shared by the kickoff, goals, check-in, 3-2-1 and grade cards: local times, outcome notes,
and the grade select, reason input and form card of the grade proposal, correction and appeal forms."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from cards.catalogue import Translator
from cards.model import Card, Colour, Form, Header, Note, Option, Select, TextInput
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


def grade_select(label: str, scale: Sequence[str], default: str | None, *, required: bool = True) -> Select:
    """The ``grade`` select over a grade scale (the proposal, HR's correction, the appeal decision)."""
    return Select(
        name="grade",
        label=label,
        options=[Option(label=g, value=g) for g in scale],
        required=required,
        default=default,
    )


def reason_input(
    label: str, placeholder: str | None, default: str | None, *, name: str = "reason"
) -> TextInput:
    """The required free text (up to 1000 characters) that goes with a decision: the ``reason`` of a grade,
    an appeal or a challenge, a comment on a goal, a manager's answer or a returned proposal's comment."""
    return TextInput(
        name=name,
        label=label,
        placeholder=placeholder,
        multiline=True,
        required=True,
        max_length=1000,
        default=default or None,
    )


def form_card(title: str, elements: Sequence[Any], form: Form, *, error: str | None, colour: Colour) -> Card:
    """A card that ends in a form: a bounced submission's ``error`` as a note above the form, the header
    orange while there is an error and ``colour`` otherwise."""
    note = [Note(text=clip(error, 300))] if error else []
    return Card(
        header=Header(title=clip(title, 60), colour="orange" if error else colour),
        elements=[*elements, *note, form],
        summary=clip(title, 100),
    )
