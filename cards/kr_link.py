"""Linking an action item to a key result (issue 17 item 7): after ``/action``, the creator may bind the new
item to one of its owner's key results (or to none), so the item and its photos become proof behind that
number."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from cards.actions import pack
from cards.catalogue import Translator
from cards.goal_actions import ActionKeyResultLink
from cards.kr_select import KrOption, kr_options
from cards.model import Button, Card, Fields, Form, Header, KeyValue, Markdown, Note, Select
from cards.text import shorten


def kr_link_form(t: Translator, *, item_id: int, options: Sequence[KrOption]) -> Form:
    return Form(
        name="action_kr",
        inputs=[
            Select(
                name="key_result",
                label=t("kr_link.field_key_result"),
                options=kr_options(options, none_label=t("kr_link.none")),
                required=True,
            )
        ],
        submit=Button(
            label=t("kr_link.link"), value=pack(ActionKeyResultLink(item_id=item_id)), style="primary"
        ),
    )


def _fields(t: Translator, *, item_id: int, deliverable: str, deadline: date, owner: str) -> Fields:
    return Fields(
        items=[
            KeyValue(label=t("action_items.field_item"), value=f"#{item_id}"),
            KeyValue(label=t("action_items.field_deliverable"), value=shorten(deliverable, 200)),
            KeyValue(label=t("action_items.field_deadline"), value=deadline.isoformat()),
            KeyValue(label=t("action_items.field_owner"), value=shorten(owner, 200)),
        ]
    )


def kr_link_card(
    t: Translator,
    *,
    item_id: int,
    deliverable: str,
    deadline: date,
    owner: str,
    options: Sequence[KrOption],
    created: str,
) -> Card:
    """The item just created (``created`` says so) and one question: which of the owner's key results it
    serves."""
    return Card(
        header=Header(title=shorten(t("kr_link.title", id=item_id), 60), colour="green"),
        elements=[
            Markdown(text=shorten(created, 2000)),
            _fields(t, item_id=item_id, deliverable=deliverable, deadline=deadline, owner=owner),
            Markdown(text=t("kr_link.ask", owner=owner)),
            kr_link_form(t, item_id=item_id, options=options),
        ],
        summary=shorten(created, 100),
    )


def kr_linked_card(
    t: Translator, *, item_id: int, deliverable: str, deadline: date, owner: str, key_result: str | None
) -> Card:
    """The answer: linked to ``key_result``, or (None) to no key result."""
    outcome = t("kr_link.linked", key_result=key_result) if key_result else t("kr_link.unlinked")
    return Card(
        header=Header(
            title=shorten(t("kr_link.title", id=item_id), 60), colour="green" if key_result else "grey"
        ),
        elements=[
            _fields(t, item_id=item_id, deliverable=deliverable, deadline=deadline, owner=owner),
            Note(text=shorten(outcome, 300)),
        ],
        summary=shorten(outcome, 100),
    )
