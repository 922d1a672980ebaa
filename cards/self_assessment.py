"""Self-assessment cards: the form (a 1-5 score and one concrete example per goal, plus the peer-feedback
dimensions), the submitted view, and the summary the manager receives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.feedback_common import cut, scale_select
from cards.model import (
    Actions,
    Button,
    Card,
    Fields,
    Form,
    Header,
    Input,
    KeyValue,
    Markdown,
    Note,
    TextInput,
)
from storage.feedback_scales import DIMENSIONS

MAX_GOALS_ON_CARD = 5


@action("selfassess.submit")
class SelfAssessSubmit(Action):
    assessment_id: int


@action("peers.start")
class PeerStart(Action):
    """Open the nomination card for ``subject_id`` (the person themself, or their manager)."""

    cycle_id: int
    subject_id: int


@dataclass(frozen=True)
class GoalLine:
    id: int
    title: str


def score_name(goal_id: int) -> str:
    return f"g{goal_id}_score"


def example_name(goal_id: int) -> str:
    return f"g{goal_id}_example"


def dim_name(dim: str) -> str:
    return f"dim_{dim}"


def self_assessment_card(
    t: Translator,
    *,
    assessment_id: int,
    cycle_code: str,
    goals: Sequence[GoalLine],
    answers: dict[str, Any] | None = None,
    error: str | None = None,
) -> Card:
    answers = answers or {}
    goal_answers: dict[str, Any] = dict(answers.get("goals") or {})
    dims: dict[str, Any] = dict(answers.get("dims") or {})
    inputs: list[Input] = []
    for i, goal in enumerate(goals[:MAX_GOALS_ON_CARD], start=1):
        prev = goal_answers.get(str(goal.id)) or {}
        inputs.append(
            scale_select(
                t,
                score_name(goal.id),
                t("selfassess.goal_score", n=i, goal=cut(goal.title, 30)),
                default=prev.get("score"),
            )
        )
        inputs.append(
            TextInput(
                name=example_name(goal.id),
                label=cut(t("selfassess.goal_example", n=i), 60),
                placeholder=t("selfassess.example_hint"),
                multiline=True,
                required=True,
                max_length=1000,
                default=prev.get("example"),
            )
        )
    for dim in DIMENSIONS:
        inputs.append(scale_select(t, dim_name(dim), t(f"peers.dim.{dim}"), default=dims.get(dim)))
    elements: list[Any] = [Markdown(text=t("selfassess.intro"))]
    if error:
        elements.append(Note(text=cut(error, 300)))
    elements.append(
        Form(
            name="selfassess",
            inputs=inputs,
            submit=Button(
                label=t("selfassess.submit"),
                value=pack(SelfAssessSubmit(assessment_id=assessment_id)),
                style="primary",
            ),
        )
    )
    title = t("selfassess.title", cycle=cycle_code)
    return Card(
        header=Header(title=cut(title, 60), colour="orange" if error else "blue"),
        elements=elements,
        summary=cut(title, 100),
    )


def _answer_fields(t: Translator, goals: Sequence[GoalLine], answers: dict[str, Any]) -> list[KeyValue]:
    goal_answers: dict[str, Any] = dict(answers.get("goals") or {})
    items: list[KeyValue] = []
    for i, goal in enumerate(goals[:MAX_GOALS_ON_CARD], start=1):
        prev = goal_answers.get(str(goal.id)) or {}
        items.append(
            KeyValue(
                label=cut(t("selfassess.goal_label", n=i, goal=goal.title), 40),
                value=cut(f"{prev.get('score', '—')}/5 · {prev.get('example') or '—'}", 200),
            )
        )
    dims: dict[str, Any] = dict(answers.get("dims") or {})
    for dim in DIMENSIONS:
        items.append(KeyValue(label=cut(t(f"peers.dim.{dim}"), 40), value=f"{dims.get(dim, '—')}/5"))
    return items[:20]


def submitted_card(
    t: Translator,
    *,
    cycle_id: int,
    person_id: int,
    cycle_code: str,
    goals: Sequence[GoalLine],
    answers: dict[str, Any],
) -> Card:
    title = t("selfassess.submitted_title", cycle=cycle_code)
    return Card(
        header=Header(title=cut(title, 60), colour="green"),
        elements=[
            Fields(items=_answer_fields(t, goals, answers)),
            Markdown(text=t("selfassess.next_peers")),
            Actions(
                buttons=[
                    Button(
                        label=t("peers.nominate_button"),
                        value=pack(PeerStart(cycle_id=cycle_id, subject_id=person_id)),
                        style="primary",
                    )
                ]
            ),
        ],
        summary=cut(title, 100),
    )


def manager_card(
    t: Translator,
    *,
    cycle_id: int,
    person_id: int,
    name: str,
    cycle_code: str,
    goals: Sequence[GoalLine],
    answers: dict[str, Any],
) -> Card:
    title = t("selfassess.manager_title", name=name, cycle=cycle_code)
    return Card(
        header=Header(title=cut(title, 60)),
        elements=[
            Fields(items=_answer_fields(t, goals, answers)),
            Markdown(text=t("selfassess.manager_next", name=name)),
            Actions(
                buttons=[
                    Button(
                        label=t("peers.nominate_for_button"),
                        value=pack(PeerStart(cycle_id=cycle_id, subject_id=person_id)),
                    )
                ]
            ),
        ],
        summary=cut(title, 100),
    )
