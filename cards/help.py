"""The /help card: one section per hat the person wears, each a list of commands they may use."""

from __future__ import annotations

from collections.abc import Sequence

from cards.catalogue import Translator
from cards.model import Card, Element, Header, Markdown, Note
from cards.text import shorten


def help_card(t: Translator, *, name: str, sections: Sequence[tuple[str, Sequence[str]]]) -> Card:
    """``sections``: (heading, lines) pairs, already translated; empty sections are left out."""
    elements: list[Element] = [Markdown(text=shorten(t("help.intro", name=name), 2000))]
    for heading, lines in sections:
        if lines:
            body = "\n".join([heading, *(f"- {line}" for line in lines)])
            elements.append(Markdown(text=shorten(body, 2000)))
    elements.append(Note(text=shorten(t("help.footer"), 300)))
    return Card(
        header=Header(title=shorten(t("help.title"), 60), colour="blue"),
        elements=elements,
        summary=shorten(t("help.title"), 100),
    )
