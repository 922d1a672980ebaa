"""The select of a person's key results: what a rhythm, an action item or a photo can be bound to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cards.model import Option
from cards.text import shorten

NO_KEY_RESULT = "none"
"""The option value for "bind it to no key result"."""


@dataclass(frozen=True, slots=True)
class KrOption:
    """A key result the person may bind something to."""

    key_result_id: int
    objective: str
    title: str
    progress: float


def kr_option_label(option: KrOption) -> str:
    """``提升续约率 · 续约率 80→90 (40%)``, cut to a select option's 60 characters."""
    head = f"{shorten(option.objective, 16)} · {option.title}"
    tail = f" ({option.progress * 100:.0f}%)"
    return shorten(head, 60 - len(tail)) + tail


def kr_options(options: Sequence[KrOption], *, none_label: str | None = None) -> list[Option]:
    """One option per key result; with ``none_label``, a first option that binds to none."""
    out = [Option(label=shorten(none_label, 60), value=NO_KEY_RESULT)] if none_label else []
    out += [Option(label=kr_option_label(o), value=str(o.key_result_id)) for o in options]
    return out[:50]
