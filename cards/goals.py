"""Goal cards: the entry form, the employee's summary, the manager's review and the team overview."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cards.actions import pack
from cards.catalogue import Translator
from cards.flow_actions import GoalsConfirm, GoalsCopy, GoalsEdit, GoalsReturn, GoalsReview, GoalsSubmit
from cards.flow_common import clip
from cards.model import (
    Actions,
    Button,
    Card,
    Element,
    Fields,
    Form,
    Header,
    Input,
    KeyValue,
    Markdown,
    Note,
    TextInput,
)

MAX_GOALS_ON_CARD = 5
"""Three inputs per goal and a form holds at most 15 inputs, so one card carries at most five goals."""


@dataclass(frozen=True)
class GoalRow:
    objective: str
    key_result: str
    weight: str


def goals_text(t: Translator, rows: Sequence[GoalRow]) -> str:
    if not rows:
        return t("goals.none_yet")
    lines = [
        t(
            "goals.line",
            n=i,
            objective=clip(r.objective, 120),
            key_result=clip(r.key_result, 160),
            weight=r.weight,
        )
        for i, r in enumerate(rows, start=1)
    ]
    return "\n".join(lines)[:2000]


def goals_form_card(
    t: Translator,
    *,
    cycle_id: int,
    code: str,
    slots: int,
    defaults: Sequence[GoalRow] = (),
    error: str | None = None,
    warning: str | None = None,
    returned_comment: str | None = None,
) -> Card:
    """``error``: the form cannot be saved as it is (red). ``warning``: it can, but the vague-word guard asks
    once to sharpen it (orange); either way ``defaults`` carries what the person typed."""
    slots = max(1, min(slots, MAX_GOALS_ON_CARD))
    inputs: list[Input] = []
    for i in range(1, slots + 1):
        row = defaults[i - 1] if i <= len(defaults) else None
        inputs += [
            TextInput(
                name=f"objective_{i}",
                label=t("goals.objective", n=i),
                required=i == 1,
                max_length=300,
                default=row.objective if row else None,
            ),
            TextInput(
                name=f"key_result_{i}",
                label=t("goals.key_result", n=i),
                max_length=300,
                default=row.key_result if row else None,
            ),
            TextInput(
                name=f"weight_{i}",
                label=t("goals.weight", n=i),
                max_length=3,
                placeholder=t("goals.weight_placeholder"),
                default=row.weight if row else None,
            ),
        ]
    elements: list[Element] = []
    if error:
        elements.append(Markdown(text=t("goals.error", error=error)))
    elif warning:
        elements.append(Markdown(text=warning[:2000]))
    if returned_comment:
        elements.append(Markdown(text=t("goals.returned_with", comment=clip(returned_comment, 1000))))
    elements += [
        Markdown(text=t("goals.form_intro", max_goals=slots)),
        Form(
            name="goals",
            inputs=list(inputs),
            submit=Button(
                label=t("common.submit"), value=pack(GoalsSubmit(cycle_id=cycle_id)), style="primary"
            ),
        ),
        Actions(buttons=[Button(label=t("goals.copy_last"), value=pack(GoalsCopy(cycle_id=cycle_id)))]),
    ]
    return Card(
        header=Header(
            title=t("goals.form_title", code=code)[:60],
            colour="red" if error else "orange" if warning else "blue",
        ),
        elements=elements,
        summary=t("goals.form_title", code=code)[:100],
    )


def goals_submitted_card(
    t: Translator, *, cycle_id: int, code: str, rows: Sequence[GoalRow], note: str
) -> Card:
    """What the employee sees after submitting: the goals, and an Edit button until the manager confirms."""
    return Card(
        header=Header(title=t("goals.submitted_title", code=code)[:60], colour="green"),
        elements=[
            Markdown(text=goals_text(t, rows)),
            Note(text=note[:300]),
            Actions(buttons=[Button(label=t("goals.edit"), value=pack(GoalsEdit(cycle_id=cycle_id)))]),
        ],
        summary=t("goals.submitted_title", code=code)[:100],
    )


def goals_review_card(
    t: Translator,
    *,
    participant_id: int,
    employee_name: str,
    code: str,
    rows: Sequence[GoalRow],
    comment_default: str | None = None,
    warning: str | None = None,
) -> Card:
    elements: list[Element] = [Markdown(text=goals_text(t, rows))]
    if warning:
        elements.append(Markdown(text=warning[:2000]))
    elements += [
        Actions(
            buttons=[
                Button(
                    label=t("goals.confirm"),
                    style="primary",
                    value=pack(GoalsConfirm(participant_id=participant_id)),
                )
            ]
        ),
        Form(
            name="goals_return",
            inputs=[
                TextInput(
                    name="comment",
                    label=t("goals.return_comment"),
                    multiline=True,
                    required=True,
                    max_length=1000,
                    default=comment_default,
                )
            ],
            submit=Button(
                label=t("goals.return"),
                value=pack(GoalsReturn(participant_id=participant_id)),
                style="danger",
            ),
        ),
    ]
    title = t("goals.review_title", name=employee_name, code=code)[:60]
    return Card(
        header=Header(title=title, colour="orange" if warning else "blue"),
        elements=elements,
        summary=title[:100],
    )


def team_card(t: Translator, *, code: str, members: Sequence[tuple[str, str, int]]) -> Card:
    """``members``: (name, goals status, participant id). Those awaiting review get a button each."""
    items = [KeyValue(label=clip(name, 40), value=t(f"goals.status_{status}")) for name, status, _ in members]
    elements: list[Element] = [Fields(items=items[:20]) if items else Markdown(text=t("goals.team_empty"))]
    waiting = [(name, pid) for name, status, pid in members if status == "submitted"]
    buttons = [
        Button(
            label=t("goals.review_button", name=name[:12])[:20], value=pack(GoalsReview(participant_id=pid))
        )
        for name, pid in waiting
    ]
    for start in range(0, min(len(buttons), 60), 6):
        elements.append(Actions(buttons=buttons[start : start + 6]))
    if not waiting:
        elements.append(Note(text=t("goals.team_nothing_waiting")))
    return Card(
        header=Header(title=t("goals.team_title", code=code)[:60]),
        elements=elements[:30],
        summary=t("goals.team_title", code=code)[:100],
    )
