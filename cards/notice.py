"""The plain notice card: one title, one paragraph. Used for replies, refusals and help."""

from __future__ import annotations

from cards.catalogue import Translator
from cards.model import Card, Colour, Header, Markdown


def notice_card(t: Translator, title: str, body: str, *, colour: Colour = "blue") -> Card:
    del t  # texts are already translated by the caller; kept for a uniform builder signature
    return Card(
        header=Header(title=title[:60], colour=colour),
        elements=[Markdown(text=body[:2000])],
        summary=title[:100],
    )
