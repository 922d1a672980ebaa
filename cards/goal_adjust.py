"""Cards of the monthly adjustment (月度微调, issue 17 item 6): the person's proposal form, the manager's card
with the changes (old → new per key result and weight) to approve or return, and what the person is told.

The handler compares the versions and hands over plain rows (``GoalChange``), so these builders only lay
them out: one way to choose per card (approve, or return with a comment), green when approved, orange when
returned or when a proposal needs another look.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cards.actions import pack
from cards.catalogue import Translator
from cards.flow_common import clip, reason_input
from cards.goal_actions import GoalAdjustApprove, GoalAdjustReturn, GoalAdjustSubmit
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

Change = Literal["same", "changed", "added", "removed"]
MAX_GOALS = 7
"""Two inputs per goal and the reason: a form holds 15 inputs."""


@dataclass(frozen=True, slots=True)
class KrChange:
    """One key result between two versions: ``before``/``after`` are its line ("签约 20 家客户 [40%]"),
    empty where it did not exist."""

    change: Change
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class GoalChange:
    n: int
    objective: str
    weight_before: int
    weight_after: int
    krs: tuple[KrChange, ...]


@dataclass(frozen=True, slots=True)
class AdjustSlot:
    """One goal on the form: its number, objective, and the weight and key-result lines to show."""

    n: int
    objective: str
    weight: str
    lines: str


def changes_text(t: Translator, changes: Sequence[GoalChange], *, only_changed: bool = False) -> list[str]:
    """One Markdown block per goal: the objective with its weight (old → new when it moved), then each key
    result marked kept / changed / added / removed."""
    blocks: list[str] = []
    for g in changes:
        weight = (
            t("goal_adjust.weight_moved", before=g.weight_before, after=g.weight_after)
            if g.weight_before != g.weight_after
            else t("goal_adjust.weight_same", weight=g.weight_after)
        )
        lines = [t("goal_adjust.goal_line", n=g.n, objective=clip(g.objective, 120), weight=weight)]
        for kr in g.krs:
            if only_changed and kr.change == "same":
                continue
            lines.append(
                t(f"goal_adjust.kr.{kr.change}", before=clip(kr.before, 160), after=clip(kr.after, 160))
            )
        blocks.append("\n".join(lines)[:2000])
    return blocks


def adjust_form_card(
    t: Translator,
    *,
    cycle_id: int,
    code: str,
    slots: Sequence[AdjustSlot],
    closes: str,
    requested: str | None = None,
    error: str | None = None,
    warning: str | None = None,
    reason: str | None = None,
    returned: str | None = None,
) -> Card:
    """The proposal: per goal its weight and its key results as lines, then the reason. ``error``: cannot
    be saved as typed (red); ``warning``: the vague guard asks once (orange); every typed value is kept."""
    elements: list[Element] = []
    if error:
        elements.append(Markdown(text=t("goal_adjust.error", error=clip(error, 1500))))
    elif warning:
        elements.append(Markdown(text=clip(warning, 2000)))
    if returned:
        elements.append(Markdown(text=t("goal_adjust.returned_with", comment=clip(returned, 1000))))
    if requested:
        elements.append(Markdown(text=clip(requested, 2000)))
    elements.append(Markdown(text=t("goal_adjust.form_intro", closes=closes)))
    inputs: list[Input] = []
    for s in slots[:MAX_GOALS]:
        elements.append(Markdown(text=t("goal_adjust.form_goal", n=s.n, objective=clip(s.objective, 300))))
        inputs += [
            TextInput(
                name=f"weight_{s.n}",
                label=t("goal_adjust.weight_label", n=s.n),
                max_length=4,
                default=s.weight or None,
            ),
            TextInput(
                name=f"krs_{s.n}",
                label=t("goal_adjust.krs_label", n=s.n),
                multiline=True,
                max_length=2000,
                default=s.lines[:2000] or None,
            ),
        ]
    inputs.append(reason_input(t("goal_adjust.reason_label"), t("goal_adjust.reason_hint"), reason))
    elements.append(
        Form(
            name="goal_adjust",
            inputs=inputs,
            submit=Button(
                label=t("goal_adjust.submit"),
                value=pack(GoalAdjustSubmit(cycle_id=cycle_id)),
                style="primary",
            ),
        )
    )
    title = t("goal_adjust.form_title", code=code)
    return Card(
        header=Header(title=clip(title, 60), colour="red" if error else "orange" if warning else "blue"),
        elements=elements[-30:],
        summary=clip(title, 100),
    )


def review_card(
    t: Translator,
    *,
    version_id: int,
    name: str,
    code: str,
    version: int,
    reason: str,
    proposed_at: str,
    changes: Sequence[GoalChange],
    comment: str | None = None,
    warning: str | None = None,
) -> Card:
    """The manager's card: what changes and why; approve, or return with a comment (one form)."""
    title = t("goal_adjust.review_title", name=name, code=code)
    elements: list[Element] = [
        Fields(
            items=[
                KeyValue(label=t("goal_adjust.version"), value=t("goal_adjust.version_value", v=version)),
                KeyValue(label=t("goal_adjust.proposed_at"), value=proposed_at),
                KeyValue(label=t("goal_adjust.reason"), value=clip(reason, 200)),
            ]
        ),
        *(Markdown(text=b) for b in changes_text(t, changes)),
    ]
    if warning:
        elements.append(Markdown(text=clip(warning, 2000)))
    elements += [
        Note(text=t("goal_adjust.review_hint", name=name)),
        Actions(
            buttons=[
                Button(
                    label=t("goal_adjust.approve"),
                    style="primary",
                    value=pack(GoalAdjustApprove(version_id=version_id)),
                )
            ]
        ),
        Form(
            name="goal_adjust_return",
            inputs=[
                reason_input(
                    clip(t("goal_adjust.return_comment", name=name), 60), None, comment, name="comment"
                )
            ],
            submit=Button(
                label=t("goal_adjust.return"),
                value=pack(GoalAdjustReturn(version_id=version_id)),
                style="danger",
            ),
        ),
    ]
    return Card(
        header=Header(title=clip(title, 60), colour="orange" if warning else "blue"),
        elements=elements[-30:],
        summary=clip(title, 100),
    )


def proposed_card(
    t: Translator, *, code: str, version: int, approver: str, changes: Sequence[GoalChange], note: str
) -> Card:
    """What the person sees after proposing: the changes and who decides."""
    title = t("goal_adjust.proposed_title", code=code, v=version)
    return Card(
        header=Header(title=clip(title, 60), colour="green"),
        elements=[
            *(Markdown(text=b) for b in changes_text(t, changes, only_changed=True)),
            Markdown(text=t("goal_adjust.proposed_next", approver=approver)),
            Note(text=clip(note, 300)),
        ][-30:],
        summary=clip(title, 100),
    )


def approved_card(
    t: Translator, *, code: str, version: int, approver: str, since: str, changes: Sequence[GoalChange]
) -> Card:
    title = t("goal_adjust.approved_title", code=code, v=version)
    return Card(
        header=Header(title=clip(title, 60), colour="green"),
        elements=[
            Markdown(text=t("goal_adjust.approved_body", approver=approver, since=since, v=version)),
            *(Markdown(text=b) for b in changes_text(t, changes, only_changed=True)),
            Note(text=t("goal_adjust.approved_next")),
        ][-30:],
        summary=clip(title, 100),
    )


def returned_card(
    t: Translator, *, cycle_id: int, code: str, version: int, approver: str, comment: str, next_step: str
) -> Card:
    """Orange, with the manager's comment and the way on: propose again (while the window is open)."""
    title = t("goal_adjust.returned_title", code=code, v=version)
    return Card(
        header=Header(title=clip(title, 60), colour="orange"),
        elements=[
            Markdown(text=t("goal_adjust.returned_body", approver=approver)),
            Fields(items=[KeyValue(label=t("goal_adjust.comment"), value=clip(comment, 200))]),
            Note(text=clip(next_step, 300)),
            Actions(
                buttons=[
                    Button(
                        label=t("goal_adjust.again"),
                        style="primary",
                        value=pack(GoalAdjustSubmit(cycle_id=cycle_id)),
                    )
                ]
            ),
        ],
        summary=clip(title, 100),
    )
