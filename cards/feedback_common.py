"""Small pieces shared by the Flows III cards: 1-5 scale selects, star strings and clipping."""

from __future__ import annotations

from cards.catalogue import Translator
from cards.flow_common import clip
from cards.model import Option, Select


def cut(text: str | None, limit: int) -> str:
    return clip(text, limit)


def scale_select(t: Translator, name: str, label: str, *, default: int | None = None) -> Select:
    """A required 1..5 select; option labels come from the catalogue (1 = needs work … 5 = outstanding)."""
    return Select(
        name=name,
        label=cut(label, 60),
        options=[Option(label=t(f"peers.scale_{n}"), value=str(n)) for n in range(1, 6)],
        required=True,
        default=str(default) if default is not None else None,
    )


def stars(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} / 5"
