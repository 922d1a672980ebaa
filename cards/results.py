"""The card HR sees after ``/flag``: one person's promotion and high-potential flags in one cycle, next to
the grade they qualify."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from cards.catalogue import Translator
from cards.model import Card, Fields, Header, KeyValue, Note
from cards.text import shorten


def grade_text(t: Translator, grade: str | None, released: bool) -> str:
    if grade is None:
        return t("results.grade_none")
    return grade if released else t("results.grade_pending", grade=grade)


def flags_card(
    t: Translator,
    *,
    name: str,
    cycle_code: str,
    grade: str | None,
    released: bool,
    kinds: Sequence[str],
    flagged: Collection[str],
) -> Card:
    """``kinds``: every flag there is, in order; ``flagged``: the ones this person has."""
    title = t("results.card_title", name=name, cycle=cycle_code)
    items = [KeyValue(label=t("results.grade"), value=shorten(grade_text(t, grade, released), 200))]
    items += [
        KeyValue(
            label=t(f"results.label.{kind}"),
            value=t("results.flag_on") if kind in flagged else t("results.flag_off"),
        )
        for kind in kinds
    ]
    return Card(
        header=Header(title=shorten(title, 60), colour="purple"),
        elements=[Fields(items=items), Note(text=shorten(t("results.card_note"), 300))],
        summary=shorten(title, 100),
    )
