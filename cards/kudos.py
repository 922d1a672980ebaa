"""The micro-kudos card: who thanks whom, for what, with how many points."""

from __future__ import annotations

from cards.catalogue import Translator
from cards.model import Card, Fields, Header, KeyValue, Markdown, Note
from cards.text import shorten as _cut


def kudos_card(t: Translator, *, sender: str, reason: str, points: int, total: int) -> Card:
    return Card(
        header=Header(title=_cut(t("kudos.title", name=sender), 60), colour="purple"),
        elements=[
            Markdown(text=_cut(t("kudos.body", name=sender, reason=reason), 2000)),
            Fields(
                items=[
                    KeyValue(label=t("kudos.points"), value=f"+{points}"),
                    KeyValue(label=t("kudos.total"), value=str(total)),
                ]
            ),
            Note(text=t("kudos.note")),
        ],
        summary=_cut(t("kudos.title", name=sender), 100),
    )
