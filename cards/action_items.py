"""Cards and button payloads of action items and their escalation ladder.

One card shape per audience: the owner sees what to deliver by when (with "received", "done" and "send a
photo"), the acceptor accepts or returns it, and the manager/HRBP of an overdue item can extend the
deadline, hand it to someone else, or close it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.model import (
    Actions,
    Button,
    Card,
    Colour,
    DatePicker,
    Fields,
    Form,
    Header,
    KeyValue,
    Markdown,
    Note,
    Option,
    Select,
    TextInput,
)
from cards.text import shorten as _cut


@action("action.ack")
class ActionAck(Action):
    item_id: int


@action("action.done")
class ActionDone(Action):
    item_id: int


@action("action.photo")
class ActionPhoto(Action):
    """The owner wants to attach a photo: opens an evidence request for this item."""

    item_id: int


@action("action.accept")
class ActionAccept(Action):
    item_id: int


@action("action.return")
class ActionReturn(Action):
    item_id: int


@action("action.extend")
class ActionExtend(Action):
    item_id: int


@action("action.reassign")
class ActionReassign(Action):
    item_id: int


@action("action.close")
class ActionClose(Action):
    item_id: int


@action("action.nudge")
class ActionNudge(Action):
    """A digest reader's "remind the owner" click on an overdue item."""

    item_id: int


@action("action.done_listed")
class ActionDoneListed(Action):
    """ "Done" clicked on the ``/actions`` list: the same as ``ActionDone``, answered with the list again."""

    item_id: int


@action("action.create")
class ActionCreate(Action):
    """The ``/action`` form after a vague deliverable was bounced: the owner, the typed deadline and the photo
    flag ride on the button (so a platform that asks the form in chat keeps them too); the deliverable and
    a changed deadline come back from the form, pre-filled with what was typed."""

    owner_id: int
    deadline: date
    evidence: bool = False


def _fields(
    t: Translator,
    *,
    item_id: int,
    deliverable: str,
    deadline: date,
    owner: str,
    acceptor: str | None,
    status: str,
) -> Fields:
    return Fields(
        items=[
            KeyValue(label=t("action_items.field_item"), value=f"#{item_id}"),
            KeyValue(label=t("action_items.field_deliverable"), value=_cut(deliverable, 200)),
            KeyValue(label=t("action_items.field_deadline"), value=deadline.isoformat()),
            KeyValue(label=t("action_items.field_owner"), value=_cut(owner, 200)),
            KeyValue(label=t("action_items.field_acceptor"), value=_cut(acceptor or "-", 200)),
            KeyValue(label=t("action_items.field_status"), value=t(f"action_items.status.{status}")),
        ]
    )


def owner_card(
    t: Translator,
    *,
    item_id: int,
    deliverable: str,
    deadline: date,
    owner: str,
    acceptor: str | None,
    status: str,
    evidence_required: bool,
    title_key: str = "action_items.new_title",
    intro: str | None = None,
    colour: Colour = "blue",
) -> Card:
    """The owner's card (new item, reminder, returned, overdue): details, plus buttons while open."""
    elements: list[Markdown | Fields | Note | Actions] = []
    if intro:
        elements.append(Markdown(text=_cut(intro, 2000)))
    elements.append(
        _fields(
            t,
            item_id=item_id,
            deliverable=deliverable,
            deadline=deadline,
            owner=owner,
            acceptor=acceptor,
            status=status,
        )
    )
    if evidence_required:
        elements.append(Note(text=t("action_items.evidence_required")))
    if status in ("open", "returned"):
        elements.append(
            Actions(
                buttons=[
                    Button(label=t("action_items.ack"), value=pack(ActionAck(item_id=item_id))),
                    Button(
                        label=t("action_items.done"), value=pack(ActionDone(item_id=item_id)), style="primary"
                    ),
                    Button(label=t("action_items.photo"), value=pack(ActionPhoto(item_id=item_id))),
                ]
            )
        )
    return Card(
        header=Header(title=t(title_key), colour=colour),
        elements=elements,
        summary=_cut(f"#{item_id} {deliverable}", 100),
    )


def return_form(t: Translator, item_id: int) -> Form:
    return Form(
        name="action_return",
        inputs=[
            TextInput(name="comment", label=t("action_items.return_reason"), multiline=True, required=True)
        ],
        submit=Button(
            label=t("action_items.return"), value=pack(ActionReturn(item_id=item_id)), style="danger"
        ),
    )


def acceptor_card(
    t: Translator,
    *,
    item_id: int,
    deliverable: str,
    deadline: date,
    owner: str,
    acceptor: str | None,
    status: str,
    evidence_count: int,
) -> Card:
    elements: list[Markdown | Fields | Note | Actions | Form] = [
        Markdown(text=_cut(t("action_items.review_body", owner=owner), 2000)),
        _fields(
            t,
            item_id=item_id,
            deliverable=deliverable,
            deadline=deadline,
            owner=owner,
            acceptor=acceptor,
            status=status,
        ),
        Note(text=t("action_items.evidence_count", count=evidence_count)),
    ]
    if status == "done":
        elements.append(
            Actions(
                buttons=[
                    Button(
                        label=t("action_items.accept"),
                        value=pack(ActionAccept(item_id=item_id)),
                        style="primary",
                    )
                ]
            )
        )
        elements.append(return_form(t, item_id))
    return Card(
        header=Header(title=t("action_items.review_title"), colour="green"),
        elements=elements,
        summary=_cut(f"#{item_id} {deliverable}", 100),
    )


def extend_form(t: Translator, item_id: int, default: date) -> Form:
    return Form(
        name="action_extend",
        inputs=[
            DatePicker(
                name="deadline",
                label=t("action_items.new_deadline"),
                required=True,
                default=default.isoformat(),
            )
        ],
        submit=Button(label=t("action_items.extend"), value=pack(ActionExtend(item_id=item_id))),
    )


def reassign_form(t: Translator, item_id: int, options: list[tuple[int, str]]) -> Form:
    return Form(
        name="action_reassign",
        inputs=[
            Select(
                name="owner",
                label=t("action_items.new_owner"),
                required=True,
                options=[Option(label=_cut(name, 60), value=str(pid)) for pid, name in options[:50]],
            )
        ],
        submit=Button(label=t("action_items.reassign"), value=pack(ActionReassign(item_id=item_id))),
    )


def escalation_card(
    t: Translator,
    *,
    level: int,
    item_id: int,
    deliverable: str,
    deadline: date,
    owner: str,
    acceptor: str | None,
    status: str,
    days_overdue: int,
    extend_default: date,
    reassign_options: list[tuple[int, str]],
) -> Card:
    """Level 2 (manager) and 3 (HRBP): the item and the three ways to resolve it."""
    elements: list[Markdown | Fields | Note | Actions | Form] = [
        Markdown(text=_cut(t(f"action_items.escalation_body_{level}", owner=owner, days=days_overdue), 2000)),
        _fields(
            t,
            item_id=item_id,
            deliverable=deliverable,
            deadline=deadline,
            owner=owner,
            acceptor=acceptor,
            status=status,
        ),
        Actions(
            buttons=[
                Button(label=t("action_items.nudge"), value=pack(ActionNudge(item_id=item_id))),
                Button(
                    label=t("action_items.close"), value=pack(ActionClose(item_id=item_id)), style="danger"
                ),
            ]
        ),
        extend_form(t, item_id, extend_default),
    ]
    if reassign_options:
        elements.append(reassign_form(t, item_id, reassign_options))
    return Card(
        header=Header(title=t(f"action_items.escalation_title_{level}"), colour="red"),
        elements=elements,
        summary=_cut(f"#{item_id} {deliverable}", 100),
    )


def resolved_card(
    t: Translator,
    *,
    item_id: int,
    deliverable: str,
    deadline: date,
    owner: str,
    acceptor: str | None,
    status: str,
    what: str,
) -> Card:
    """What a clicked card turns into: the item's new state and who did what; no buttons."""
    return Card(
        header=Header(title=t("action_items.resolved_title"), colour="grey"),
        elements=[
            Markdown(text=_cut(what, 2000)),
            _fields(
                t,
                item_id=item_id,
                deliverable=deliverable,
                deadline=deadline,
                owner=owner,
                acceptor=acceptor,
                status=status,
            ),
        ],
        summary=_cut(f"#{item_id} {deliverable}", 100),
    )


def progress_gap_card(
    t: Translator, *, person: str, plan: int, actual: int, gap: int, threshold: int
) -> Card:
    return Card(
        header=Header(title=t("action_items.progress_gap_title"), colour="orange"),
        elements=[
            Markdown(
                text=_cut(t("action_items.progress_gap_body", person=person, threshold=threshold), 2000)
            ),
            Fields(
                items=[
                    KeyValue(label=t("action_items.progress_plan"), value=f"{plan}%"),
                    KeyValue(label=t("action_items.progress_actual"), value=f"{actual}%"),
                    KeyValue(label=t("action_items.progress_gap"), value=f"{gap}%"),
                ]
            ),
        ],
        summary=t("action_items.progress_gap_title"),
    )


def status_label(t: Translator, status: str, days_overdue: int = 0) -> str:
    """An item's state in words: an open item past its deadline says how late it is."""
    if days_overdue > 0:
        return t("action_items.status_overdue", days=days_overdue)
    return t(f"action_items.status.{status}")


def superseded_card(
    t: Translator,
    *,
    item_id: int,
    deliverable: str,
    deadline: date,
    owner: str,
    acceptor: str | None,
    status: str,
) -> Card:
    """What an owner card turns into when a newer card about the same item arrives: no buttons, and a
    pointer to the newer one, so nobody clicks a card whose moment has passed."""
    return resolved_card(
        t,
        item_id=item_id,
        deliverable=deliverable,
        deadline=deadline,
        owner=owner,
        acceptor=acceptor,
        status=status,
        what=t("action_items.superseded"),
    )


@dataclass(frozen=True)
class ListedItem:
    """One of my open items on the ``/actions`` card."""

    item_id: int
    deliverable: str
    deadline: date
    status: str
    days_overdue: int = 0
    evidence_required: bool = False


def my_items_card(t: Translator, items: Sequence[ListedItem], *, more: int = 0) -> Card:
    """``/actions``: my open items, most urgent first, each with its deadline, its state and the buttons to
    act on it right here (done, send a photo); an item waiting for sign-off is listed without buttons."""
    title = t("action_items.mine_title")
    if not items:
        return Card(
            header=Header(title=title, colour="green"),
            elements=[Markdown(text=t("action_items.mine_empty"))],
            summary=title,
        )
    elements: list[Markdown | Note | Actions] = []
    for it in items:
        line = t(
            "action_items.mine_line",
            id=it.item_id,
            what=_cut(it.deliverable, 120),
            deadline=it.deadline.isoformat(),
            status=status_label(t, it.status, it.days_overdue),
        )
        if it.evidence_required:
            line += t("action_items.mine_photo_needed")
        elements.append(Markdown(text=_cut(line, 2000)))
        if it.status in ("open", "returned"):
            elements.append(
                Actions(
                    buttons=[
                        Button(
                            label=_cut(t("action_items.mine_done", id=it.item_id), 20),
                            value=pack(ActionDoneListed(item_id=it.item_id)),
                            style="primary",
                        ),
                        Button(
                            label=_cut(t("action_items.mine_photo", id=it.item_id), 20),
                            value=pack(ActionPhoto(item_id=it.item_id)),
                        ),
                    ]
                )
            )
    if more:
        elements.append(Note(text=t("action_items.mine_more", n=more)))
    overdue = sum(1 for it in items if it.days_overdue > 0)
    colour: Colour = "red" if overdue else "blue"
    return Card(
        header=Header(title=title, colour=colour),
        elements=elements,
        summary=_cut(t("action_items.mine_summary", n=len(items) + more, overdue=overdue), 100),
    )


def create_form(t: Translator, *, owner_id: int, evidence: bool, deliverable: str, deadline: date) -> Form:
    """The ``/action`` command as a form, filled with what was typed, to make the deliverable concrete."""
    return Form(
        name="action_create",
        inputs=[
            TextInput(
                name="deliverable",
                label=t("action_items.field_deliverable"),
                multiline=True,
                required=True,
                max_length=2000,
                default=_cut(deliverable, 2000),
            ),
            DatePicker(name="deadline", label=t("action_items.field_deadline"), default=deadline.isoformat()),
        ],
        submit=Button(
            label=t("action_items.create"),
            value=pack(ActionCreate(owner_id=owner_id, deadline=deadline, evidence=evidence)),
            style="primary",
        ),
    )


def bounce_card(
    t: Translator,
    *,
    warning: str,
    owner_id: int,
    owner: str,
    evidence: bool,
    deliverable: str,
    deadline: date,
) -> Card:
    """A vague ``/action`` deliverable, asked once more: the warning, and the form with every value kept."""
    elements: list[Markdown | Fields | Note | Form] = [
        Markdown(text=_cut(warning, 2000)),
        Fields(items=[KeyValue(label=t("action_items.field_owner"), value=_cut(owner, 200))]),
    ]
    if evidence:
        elements.append(Note(text=t("action_items.evidence_required")))
    elements.append(
        create_form(t, owner_id=owner_id, evidence=evidence, deliverable=deliverable, deadline=deadline)
    )
    return Card(
        header=Header(title=t("action_items.bounce_title"), colour="orange"),
        elements=elements,
        summary=_cut(deliverable, 100),
    )
