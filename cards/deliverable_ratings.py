"""Deliverable rating cards: the 1-5 stars request (completeness, timeliness, risk disclosure) and the
summary attached to the deliverable that its owner sees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.feedback_common import cut, scale_select, stars
from cards.model import Button, Card, Colour, Fields, Form, Header, KeyValue, Markdown, Note, TextInput
from storage.feedback_scales import RATING_ASPECTS

GOOD_MEAN = 4.0
LOW_MEAN = 3.0


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
    values: Mapping[str, str] | None = None,
) -> Card:
    """The request; ``values`` (aspect → score, ``comment``) is what the rater entered, shown back with
    ``error`` when the submission was incomplete."""
    values = values or {}
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
                *[
                    scale_select(t, a, t(f"ratings.aspect.{a}"), default=values.get(a))
                    for a in RATING_ASPECTS
                ],
                TextInput(
                    name="comment",
                    label=t("ratings.comment"),
                    multiline=True,
                    max_length=1000,
                    default=values.get("comment") or None,
                ),
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


def _closed(
    t: Translator, *, title_key: str, owner_name: str, deliverable: str, note: str, colour: Colour
) -> Card:
    """A request card in its final state: what was asked, what became of it, and no live controls."""
    title = t(title_key, name=owner_name)
    return Card(
        header=Header(title=cut(title, 60), colour=colour),
        elements=[
            Markdown(text=cut(t("ratings.deliverable", deliverable=deliverable), 2000)),
            Note(text=cut(note, 300)),
        ],
        summary=cut(title, 100),
    )


def rated_card(
    t: Translator, *, owner_name: str, deliverable: str, scores: Mapping[str, int], at_text: str
) -> Card:
    """The request after the rater rated: their own scores and when, on a green card."""
    given = " · ".join(f"{t(f'ratings.aspect.{a}')} {scores[a]}/5" for a in RATING_ASPECTS if a in scores)
    note = t("ratings.rated_note", scores=given, time=at_text)
    return _closed(
        t,
        title_key="ratings.rated_title",
        owner_name=owner_name,
        deliverable=deliverable,
        note=note,
        colour="green",
    )


def expired_card(t: Translator, *, owner_name: str, deliverable: str, due_text: str) -> Card:
    """The request after its window closed unrated: nothing is owed any more."""
    note = t("ratings.expired_note", due=due_text)
    return _closed(
        t,
        title_key="ratings.expired_title",
        owner_name=owner_name,
        deliverable=deliverable,
        note=note,
        colour="grey",
    )


def moved_card(t: Translator, *, owner_name: str, deliverable: str, due_text: str) -> Card:
    """The first request once its reminder went out: the reminder below is the one to answer."""
    note = t("ratings.moved_note", due=due_text)
    return _closed(
        t,
        title_key="ratings.moved_title",
        owner_name=owner_name,
        deliverable=deliverable,
        note=note,
        colour="grey",
    )


def summary_colour(means: Mapping[str, float]) -> Colour:
    """Green when every aspect averages at least 4, orange when any is below 3, blue between: the colour
    says how it went before anyone reads a number (issue 15 #11)."""
    if not means:
        return "blue"
    if min(means.values()) < LOW_MEAN:
        return "orange"
    return "green" if min(means.values()) >= GOOD_MEAN else "blue"


def summary_card(t: Translator, *, deliverable: str, means: dict[str, float], done: int, asked: int) -> Card:
    title = t("ratings.summary_title")
    items = [
        KeyValue(label=cut(t(f"ratings.aspect.{a}"), 40), value=stars(means.get(a))) for a in RATING_ASPECTS
    ]
    colour = summary_colour(means)
    elements: list[Any] = [
        Markdown(text=cut(t("ratings.summary_body", deliverable=deliverable, done=done, asked=asked), 2000)),
        Fields(items=items),
    ]
    low = [t(f"ratings.aspect.{a}") for a in RATING_ASPECTS if a in means and means[a] < LOW_MEAN]
    if low:
        sep = "、" if t.locale.startswith("zh") else ", "
        elements.append(Note(text=cut(t("ratings.summary_low", aspects=sep.join(low)), 300)))
    if done < asked:
        elements.append(Note(text=cut(t("ratings.summary_more", n=asked - done), 300)))
    return Card(header=Header(title=title, colour=colour), elements=elements, summary=title)
