"""Deliverable rating cards: the 1-5 stars request (completeness, timeliness, risk disclosure) and the
summary attached to the deliverable that its owner sees."""

from __future__ import annotations

from typing import Any

from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.feedback_common import cut, scale_select, stars
from cards.model import Button, Card, Fields, Form, Header, KeyValue, Markdown, Note, TextInput
from storage.feedback_scales import RATING_ASPECTS


@action("ratings.submit")
class RatingSubmit(Action):
    rating_id: int


def rating_card(
    t: Translator,
    *,
    rating_id: int,
    owner_name: str,
    deliverable: str,
    due_text: str,
    reminder: bool = False,
    error: str | None = None,
) -> Card:
    title = t("ratings.title", name=owner_name)
    elements: list[Any] = [
        Markdown(text=cut(t("ratings.intro", deliverable=deliverable, due=due_text), 2000))
    ]
    if reminder:
        elements.append(Note(text=t("ratings.reminder", due=due_text)))
    if error:
        elements.append(Note(text=cut(error, 300)))
    elements.append(
        Form(
            name="rating",
            inputs=[
                *[scale_select(t, a, t(f"ratings.aspect.{a}")) for a in RATING_ASPECTS],
                TextInput(name="comment", label=t("ratings.comment"), multiline=True, max_length=1000),
            ],
            submit=Button(
                label=t("ratings.submit"), value=pack(RatingSubmit(rating_id=rating_id)), style="primary"
            ),
        )
    )
    return Card(
        header=Header(title=cut(title, 60), colour="orange" if reminder or error else "blue"),
        elements=elements,
        summary=cut(title, 100),
    )


def summary_card(t: Translator, *, deliverable: str, means: dict[str, float], done: int, asked: int) -> Card:
    title = t("ratings.summary_title")
    items = [
        KeyValue(label=cut(t(f"ratings.aspect.{a}"), 40), value=stars(means.get(a))) for a in RATING_ASPECTS
    ]
    return Card(
        header=Header(title=title, colour="green"),
        elements=[
            Markdown(
                text=cut(t("ratings.summary_body", deliverable=deliverable, done=done, asked=asked), 2000)
            ),
            Fields(items=items),
        ],
        summary=title,
    )
