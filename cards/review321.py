"""3-2-1 review cards: the employee's three prompts, their summary, and the manager's confirmation form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cards.actions import pack
from cards.catalogue import Translator
from cards.flow_actions import ReviewConfirm, ReviewEdit, ReviewSubmit
from cards.flow_common import clip
from cards.model import (
    Actions,
    Button,
    Card,
    DatePicker,
    Element,
    Form,
    Header,
    Markdown,
    Note,
    Option,
    Select,
    TextInput,
)
from cards.snooze import snooze_button


@dataclass(frozen=True)
class ReviewAnswers:
    solid_action: str | None = None
    change_brought: str | None = None
    blocker: str | None = None
    new_action: str | None = None
    deadline: str | None = None
    """ISO date."""


def review_card(
    t: Translator,
    *,
    review_id: int,
    period: str,
    answers: ReviewAnswers,
    error: str | None = None,
) -> Card:
    elements: list[Element] = []
    if error:
        elements.append(Markdown(text=error[:2000]))
    elements += [
        Markdown(text=t("review321.intro")),
        Form(
            name="review321",
            inputs=[
                TextInput(
                    name="solid_action",
                    label=t("review321.solid_action"),
                    multiline=True,
                    required=True,
                    max_length=1000,
                    default=answers.solid_action,
                ),
                TextInput(
                    name="change_brought",
                    label=t("review321.change_brought"),
                    multiline=True,
                    required=True,
                    max_length=1000,
                    default=answers.change_brought,
                ),
                TextInput(
                    name="blocker",
                    label=t("review321.blocker"),
                    multiline=True,
                    required=True,
                    max_length=1000,
                    default=answers.blocker,
                ),
                TextInput(
                    name="new_action",
                    label=t("review321.new_action"),
                    multiline=True,
                    required=True,
                    max_length=500,
                    default=answers.new_action,
                ),
                DatePicker(
                    name="deadline", label=t("review321.deadline"), required=True, default=answers.deadline
                ),
            ],
            submit=Button(
                label=t("common.submit"), value=pack(ReviewSubmit(review_id=review_id)), style="primary"
            ),
        ),
        Actions(buttons=[snooze_button(t, flow="review", ref_id=review_id)]),
    ]
    title = t("review321.title", period=period)[:60]
    return Card(
        header=Header(title=title, colour="red" if error else "purple"),
        elements=elements,
        summary=title[:100],
    )


def answers_text(t: Translator, answers: ReviewAnswers) -> str:
    return t(
        "review321.answers",
        solid_action=clip(answers.solid_action, 500),
        change_brought=clip(answers.change_brought, 500),
        blocker=clip(answers.blocker, 400),
        new_action=clip(answers.new_action, 400),
        deadline=answers.deadline or "—",
    )[:2000]


def submitted_card(
    t: Translator,
    *,
    review_id: int,
    period: str,
    answers: ReviewAnswers,
    note: str,
    editable: bool = True,
) -> Card:
    title = t("review321.submitted_title", period=period)[:60]
    return Card(
        header=Header(title=title, colour="green"),
        elements=[
            Markdown(text=answers_text(t, answers)),
            Note(text=note[:300]),
            Actions(
                buttons=[
                    Button(
                        label=t("review321.edit"),
                        value=pack(ReviewEdit(review_id=review_id)),
                        disabled=not editable,
                    )
                ]
            ),
        ],
        summary=title[:100],
    )


def manager_card(
    t: Translator,
    *,
    review_id: int,
    employee_name: str,
    period: str,
    answers: ReviewAnswers,
    acceptors: Sequence[tuple[int, str]],
    acceptor_default: int | None,
    deliverable_default: str | None = None,
    warning: str | None = None,
    edited: bool = False,
) -> Card:
    """``acceptors``: (person id, name) the manager may name as acceptor of the new action item."""
    elements: list[Element] = [Markdown(text=answers_text(t, answers))]
    if edited:
        elements.append(Note(text=t("review321.edited_note")))
    if warning:
        elements.append(Markdown(text=warning[:2000]))
    options = [Option(label=clip(name, 60), value=str(pid)) for pid, name in acceptors][:50]
    inputs: list[TextInput | DatePicker | Select] = [
        TextInput(
            name="deliverable",
            label=t("review321.deliverable"),
            multiline=True,
            required=True,
            max_length=500,
            default=deliverable_default or answers.new_action,
        ),
        DatePicker(name="deadline", label=t("review321.deadline"), required=True, default=answers.deadline),
    ]
    if options:
        inputs.append(
            Select(
                name="acceptor",
                label=t("review321.acceptor"),
                required=True,
                options=options,
                default=str(acceptor_default) if acceptor_default is not None else None,
            )
        )
    elements.append(
        Form(
            name="review321_confirm",
            inputs=list(inputs),
            submit=Button(
                label=t("review321.confirm"), value=pack(ReviewConfirm(review_id=review_id)), style="primary"
            ),
        )
    )
    title = t("review321.manager_title", name=employee_name, period=period)[:60]
    return Card(
        header=Header(title=title, colour="orange" if warning else "purple"),
        elements=elements,
        summary=title[:100],
    )


def confirmed_card(
    t: Translator,
    *,
    period: str,
    deliverable: str,
    deadline: str,
    acceptor: str,
    note: str,
) -> Card:
    title = t("review321.confirmed_title", period=period)[:60]
    return Card(
        header=Header(title=title, colour="green"),
        elements=[
            Markdown(
                text=t(
                    "review321.action_item",
                    deliverable=clip(deliverable, 500),
                    deadline=deadline,
                    acceptor=acceptor,
                )
            ),
            Note(text=note[:300]),
        ],
        summary=title[:100],
    )
