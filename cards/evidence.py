"""Cards and button payloads of the photo-evidence flow.

The manager's rating card shows the photo itself (``Image(media_id=sha256)``; the adapter uploads it from
the media store) with one-tap 达标 / 待提升 / 需支持 buttons and a form carrying the same choice plus a
comment.
"""

from __future__ import annotations

from typing import Literal

from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.model import (
    Actions,
    Button,
    Card,
    Colour,
    Fields,
    Form,
    Header,
    Image,
    KeyValue,
    Markdown,
    Note,
    Option,
    Select,
    TextInput,
)
from cards.text import shorten as _cut

Rating = Literal["meets", "improve", "support"]
RATINGS: tuple[Rating, ...] = ("meets", "improve", "support")
RATING_COLOUR: dict[str, Colour] = {"meets": "green", "improve": "orange", "support": "red"}


@action("evidence.rate")
class EvidenceRate(Action):
    """A rating click; ``rating`` is None when it comes from the form, whose select carries it."""

    evidence_id: int
    rating: Rating | None = None


@action("evidence.assign")
class EvidenceAssign(Action):
    """Attach a photo that arrived without an open request to one of the sender's open action items."""

    evidence_id: int
    item_id: int


@action("evidence.discard")
class EvidenceDiscard(Action):
    evidence_id: int


def request_card(t: Translator, *, requester: str, deliverable: str | None, expires: str) -> Card:
    what = deliverable or t("evidence.request_general")
    return Card(
        header=Header(title=t("evidence.request_title"), colour="blue"),
        elements=[
            Markdown(text=_cut(t("evidence.request_body", requester=requester, what=what), 2000)),
            Note(text=t("evidence.request_note", expires=expires)),
        ],
        summary=_cut(t("evidence.request_title"), 100),
    )


def rating_form(t: Translator, evidence_id: int) -> Form:
    """The rating form; also what WeCom/DingTalk ask in chat, since their cards have no text inputs."""
    return Form(
        name="evidence_rate",
        inputs=[
            Select(
                name="rating",
                label=t("evidence.rating_label"),
                options=[Option(label=t(f"evidence.rating.{r}"), value=r) for r in RATINGS],
                required=True,
            ),
            TextInput(name="comment", label=t("evidence.comment_label"), multiline=True, max_length=500),
        ],
        submit=Button(
            label=t("evidence.submit_rating"),
            value=pack(EvidenceRate(evidence_id=evidence_id)),
            style="primary",
        ),
    )


def rating_card(
    t: Translator,
    *,
    evidence_id: int,
    sha256: str,
    person: str,
    deliverable: str | None,
    received: str,
    captured: str | None,
    rated: Rating | None = None,
    rated_by: str | None = None,
    comment: str | None = None,
) -> Card:
    """The manager's card; with ``rated`` set it is the final, button-less version shown after the click."""
    fields = [
        KeyValue(label=t("evidence.field_person"), value=_cut(person, 200)),
        KeyValue(
            label=t("evidence.field_action"), value=_cut(deliverable or t("evidence.request_general"), 200)
        ),
        KeyValue(label=t("evidence.field_received"), value=received),
        KeyValue(label=t("evidence.field_captured"), value=captured or t("evidence.no_exif")),
    ]
    elements: list[Markdown | Fields | Image | Note | Actions | Form] = [
        Image(media_id=sha256, alt=_cut(t("evidence.photo_alt", person=person), 100)),
        Fields(items=fields),
    ]
    if rated is None:
        elements.append(
            Actions(
                buttons=[
                    Button(
                        label=t(f"evidence.rating.{r}"),
                        value=pack(EvidenceRate(evidence_id=evidence_id, rating=r)),
                        style="primary" if r == "meets" else ("danger" if r == "support" else "default"),
                    )
                    for r in RATINGS
                ]
            )
        )
        elements.append(rating_form(t, evidence_id))
    else:
        text = t("evidence.rated_as", rating=t(f"evidence.rating.{rated}"), name=rated_by or "")
        if comment:
            text += "\n" + t("evidence.rated_comment", comment=comment)
        elements.append(Markdown(text=_cut(text, 2000)))
    return Card(
        header=Header(title=t("evidence.rating_title"), colour=RATING_COLOUR[rated] if rated else "blue"),
        elements=elements,
        summary=_cut(t("evidence.rating_summary", person=person), 100),
    )


def assign_card(t: Translator, *, evidence_id: int, items: list[tuple[int, str]]) -> Card:
    """ "Which action is this photo for?" — one button per open action item (at most five) and a discard."""
    buttons = [
        Button(
            label=_cut(f"#{item_id} {text}", 20),
            value=pack(EvidenceAssign(evidence_id=evidence_id, item_id=item_id)),
        )
        for item_id, text in items[:5]
    ]
    buttons.append(
        Button(
            label=t("evidence.discard"), value=pack(EvidenceDiscard(evidence_id=evidence_id)), style="danger"
        )
    )
    lines = "\n".join(f"- #{item_id} {_cut(text, 80)}" for item_id, text in items[:5])
    return Card(
        header=Header(title=t("evidence.assign_title"), colour="orange"),
        elements=[
            Markdown(text=_cut(t("evidence.assign_body", items=lines), 2000)),
            Actions(buttons=buttons),
        ],
        summary=t("evidence.assign_title"),
    )


def coaching_card(t: Translator, *, deliverable: str, note: str, streak: int) -> Card:
    return Card(
        header=Header(title=t("evidence.coaching_title"), colour="purple"),
        elements=[
            Markdown(text=_cut(t("evidence.coaching_intro", what=deliverable, streak=streak), 2000)),
            Markdown(text=_cut(note, 2000)),
        ],
        summary=t("evidence.coaching_title"),
    )


def missing_card(t: Translator, *, person: str, items: list[tuple[int, str]], weeks: int) -> Card:
    lines = "\n".join(f"- #{item_id} {_cut(text, 120)}" for item_id, text in items[:15])
    return Card(
        header=Header(title=t("evidence.missing_title"), colour="orange"),
        elements=[
            Markdown(text=_cut(t("evidence.missing_body", person=person, weeks=weeks, items=lines), 2000))
        ],
        summary=_cut(t("evidence.missing_title"), 100),
    )
