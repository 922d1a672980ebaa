"""Cards and button payloads of the photo-evidence flow.

The manager's rating card shows the photo itself (``Image(media_id=sha256)``; the adapter uploads it from
the media store) and one way to rate it: a form with the rating (达标 / 待提升 / 需支持) and an optional
comment. A bounced submission (a vague comment, a missing rating) comes back as the same form holding
everything the rater chose and typed. Every outcome has its colour (``RATING_COLOUR``) and says what happens
next, on the rater's final card and on the employee's notice alike.

The employee's request card has three states: open, received (photos keep attaching until the request
closes) and expired (it closed without a photo; later photos no longer attach to it).
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
_RATING_BY_VALUE: dict[str, Rating] = {r: r for r in RATINGS}
RequestState = Literal["open", "received", "expired"]
REQUEST_COLOUR: dict[RequestState, Colour] = {"open": "blue", "received": "green", "expired": "grey"}


def as_rating(value: str | None) -> Rating | None:
    """A stored or submitted value as a rating, or None when it is none of ``RATINGS``."""
    return _RATING_BY_VALUE.get(value or "")


@action("evidence.rate")
class EvidenceRate(Action):
    """The rating form's submit; ``rating`` is None (the form's select carries it). Cards sent before the
    form became the only control had one button per rating, which carried it here."""

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


def request_card(
    t: Translator,
    *,
    requester: str | None,
    deliverable: str | None,
    expires: str,
    state: RequestState = "open",
    contact: str = "",
    key_result: str | None = None,
) -> Card:
    """The employee's "send a photo" card; ``requester`` None when they asked themselves (from an action
    item), ``expires`` when the request closes (or closed), ``contact`` whom to ask once it has expired,
    ``key_result`` the key result the photo proves (a rhythm's request, an item linked to one)."""
    who = "self" if requester is None else "other"
    if deliverable:
        body = t(f"evidence.request_body_{who}_item", requester=requester or "", what=deliverable)
    else:
        body = t(f"evidence.request_body_{who}", requester=requester or "")
    if key_result:
        body += "\n" + t("kr_link.for_key_result", key_result=key_result)
    title = t(f"evidence.request_title_{state}")
    note = t(f"evidence.request_note_{state}", expires=expires, contact=contact)
    return Card(
        header=Header(title=_cut(title, 60), colour=REQUEST_COLOUR[state]),
        elements=[Markdown(text=_cut(body, 2000)), Note(text=_cut(note, 300))],
        summary=_cut(title, 100),
    )


def rating_form(
    t: Translator, evidence_id: int, *, rating: str | None = None, comment: str | None = None
) -> Form:
    """The rating form; also what WeCom/DingTalk ask in chat, since their cards have no text inputs.
    ``rating``/``comment`` pre-fill it when a submission comes back for another try."""
    return Form(
        name="evidence_rate",
        inputs=[
            Select(
                name="rating",
                label=t("evidence.rating_label"),
                options=[Option(label=t(f"evidence.rating.{r}"), value=r) for r in RATINGS],
                required=True,
                default=rating if rating in RATINGS else None,
            ),
            TextInput(
                name="comment",
                label=t("evidence.comment_label"),
                placeholder=t("evidence.comment_placeholder"),
                multiline=True,
                max_length=500,
                default=comment or None,
            ),
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
    next_step: str | None = None,
    chosen: str | None = None,
    warning: str | None = None,
    key_result: str | None = None,
) -> Card:
    """The rater's card. Unrated: the photo and the rating form (``chosen``/``comment`` pre-fill it and
    ``warning`` says why it came back). Rated: the final, control-less version, coloured by the outcome,
    with ``next_step`` saying what happens now. ``key_result``: the key result the photo proves."""
    fields = [
        KeyValue(label=t("evidence.field_person"), value=_cut(person, 200)),
        KeyValue(
            label=t("evidence.field_action"), value=_cut(deliverable or t("evidence.request_general"), 200)
        ),
    ]
    if key_result:
        fields.append(KeyValue(label=t("kr_link.field_key_result"), value=_cut(key_result, 200)))
    fields += [
        KeyValue(label=t("evidence.field_received"), value=received),
        KeyValue(label=t("evidence.field_captured"), value=captured or t("evidence.no_exif")),
    ]
    elements: list[Markdown | Fields | Image | Note | Actions | Form] = [
        Image(media_id=sha256, alt=_cut(t("evidence.photo_alt", person=person), 100)),
        Fields(items=fields),
    ]
    if rated is None:
        if warning:
            elements.append(Markdown(text=_cut(warning, 2000)))
        elements.append(rating_form(t, evidence_id, rating=chosen, comment=comment))
    else:
        text = t("evidence.rated_as", rating=t(f"evidence.rating.{rated}"), name=rated_by or "")
        if comment:
            text += "\n" + t("evidence.rated_comment", comment=comment)
        elements.append(Markdown(text=_cut(text, 2000)))
        if next_step:
            elements.append(Note(text=_cut(next_step, 300)))
    return Card(
        header=Header(
            title=_cut(t("evidence.rating_title_done" if rated else "evidence.rating_title"), 60),
            colour=RATING_COLOUR[rated] if rated else ("orange" if warning else "blue"),
        ),
        elements=elements,
        summary=_cut(t("evidence.rating_summary", person=person), 100),
    )


def rated_card(
    t: Translator, *, rater: str, rating: Rating, what: str, comment: str | None, next_step: str
) -> Card:
    """What the employee hears about a rating: the outcome in its colour, the comment, and the next step."""
    body = t("evidence.rated_body", name=rater, rating=t(f"evidence.rating.{rating}"), what=_cut(what, 200))
    if comment:
        body += "\n" + t("evidence.rated_comment", comment=comment)
    title = t(f"evidence.rated_title_{rating}")
    return Card(
        header=Header(title=_cut(title, 60), colour=RATING_COLOUR[rating]),
        elements=[Markdown(text=_cut(body, 2000)), Note(text=_cut(next_step, 300))],
        summary=_cut(title, 100),
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
