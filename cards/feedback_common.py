"""Small pieces shared by the feedback cards (self-assessment, peer feedback, deliverable ratings): 1-5
scale selects, star strings and clipping."""

from __future__ import annotations

from cards.catalogue import Translator
from cards.flow_common import clip
from cards.model import Option, Select

SCALE = range(1, 6)


def cut(text: str | None, limit: int) -> str:
    return clip(text, limit)


def scale_value(value: float | str | None) -> str | None:
    """The option value for a stored or submitted score, or None when it names no option.

    Scores come back as ints from a form, as floats from averaged or JSON-read rows (``3.0``) and as
    strings from a re-shown submission; a select only shows a default that equals an option's value, so
    ``"3.0"`` would show as nothing chosen (issue 15 #14)."""
    if value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if not number.is_integer() or int(number) not in SCALE:
        return None
    return str(int(number))


def scale_select(t: Translator, name: str, label: str, *, default: float | str | None = None) -> Select:
    """A required 1..5 select; option labels come from the catalogue (1 = needs work … 5 = outstanding)."""
    return Select(
        name=name,
        label=cut(label, 60),
        options=[Option(label=t(f"peers.scale_{n}"), value=str(n)) for n in SCALE],
        required=True,
        default=scale_value(default),
    )


def stars(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} / 5"
