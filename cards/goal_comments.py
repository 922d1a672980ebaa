"""Cards for comments and challenges on goals (issue 17 item 4): the comment form, the challenge form
(向上质疑: the target is too low or too high, and why), the notice the goal's owner and manager get, the
manager's card answering a challenge (keep the target, or ask the owner to adjust it) and the
challenger's answer.

``goal_buttons`` is what a goal card (``/okr``) puts under a goal to open these forms; the handler checks
on every click that the clicker may see the goal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from cards.actions import pack
from cards.catalogue import Translator
from cards.flow_common import clip, form_card, reason_input
from cards.goal_actions import (
    GoalAdjustSubmit,
    GoalChallengeAnswer,
    GoalChallengeOpen,
    GoalChallengeSubmit,
    GoalCommentOpen,
    GoalCommentSubmit,
)
from cards.model import (
    Actions,
    Button,
    Card,
    Element,
    Fields,
    Form,
    Header,
    KeyValue,
    Markdown,
    Note,
    Option,
    Select,
)

Direction = Literal["up", "down"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down")
Outcome = Literal["kept", "adjust"]
OUTCOMES: tuple[Outcome, ...] = ("kept", "adjust")


def goal_buttons(t: Translator, goal_id: int, *, challenge: bool = True) -> list[Button]:
    """The comment button and (for anyone but the owner) the challenge button under a goal; each sends
    its form as a card of its own."""
    buttons = [Button(label=t("goal_comments.comment_button"), value=pack(GoalCommentOpen(goal_id=goal_id)))]
    if challenge:
        buttons.append(
            Button(label=t("goal_comments.challenge_button"), value=pack(GoalChallengeOpen(goal_id=goal_id)))
        )
    return buttons


def goal_text(t: Translator, *, owner: str, objective: str, krs: Sequence[str]) -> str:
    """The goal as the cards quote it: owner and objective, then its key results with their targets."""
    lines = [t("goal_comments.goal_head", owner=clip(owner, 40), objective=clip(objective, 200))]
    lines += [t("goal_comments.kr_line", kr=clip(kr, 160)) for kr in krs[:5]]
    return "\n".join(lines)[:2000]


def comment_form_card(
    t: Translator,
    *,
    goal_id: int,
    owner: str,
    objective: str,
    krs: Sequence[str],
    error: str | None = None,
    body: str | None = None,
) -> Card:
    form = Form(
        name="goal_comment",
        inputs=[reason_input(t("goal_comments.body_label"), t("goal_comments.body_hint"), body, name="body")],
        submit=Button(
            label=t("goal_comments.send"), value=pack(GoalCommentSubmit(goal_id=goal_id)), style="primary"
        ),
    )
    elements: list[Element] = [
        Markdown(text=goal_text(t, owner=owner, objective=objective, krs=krs)),
        Note(text=t("goal_comments.comment_who")),
    ]
    return form_card(
        t("goal_comments.comment_title", owner=owner), elements, form, error=error, colour="blue"
    )


def challenge_form_card(
    t: Translator,
    *,
    goal_id: int,
    owner: str,
    objective: str,
    krs: Sequence[str],
    answerer: str,
    error: str | None = None,
    direction: str | None = None,
    reason: str | None = None,
) -> Card:
    form = Form(
        name="goal_challenge",
        inputs=[
            Select(
                name="direction",
                label=t("goal_comments.direction_label"),
                options=[Option(label=t(f"goal_comments.direction.{d}"), value=d) for d in DIRECTIONS],
                required=True,
                default=direction if direction in DIRECTIONS else None,
            ),
            reason_input(t("goal_comments.reason_label"), t("goal_comments.reason_hint"), reason),
        ],
        submit=Button(
            label=t("goal_comments.challenge_send"),
            value=pack(GoalChallengeSubmit(goal_id=goal_id)),
            style="primary",
        ),
    )
    elements: list[Element] = [
        Markdown(text=goal_text(t, owner=owner, objective=objective, krs=krs)),
        Note(text=t("goal_comments.challenge_who", answerer=answerer)),
    ]
    return form_card(
        t("goal_comments.challenge_title", owner=owner), elements, form, error=error, colour="orange"
    )


def comment_notice_card(
    t: Translator,
    *,
    goal_id: int,
    author: str,
    owner: str,
    objective: str,
    body: str,
    to_owner: bool,
    at: str,
) -> Card:
    """What the owner (``to_owner``) or their manager is told; one button to answer with a comment."""
    title = (
        t("goal_comments.notice_title_owner", author=author)
        if to_owner
        else t("goal_comments.notice_title_manager", author=author, owner=owner)
    )
    return Card(
        header=Header(title=clip(title, 60), colour="blue"),
        elements=[
            Markdown(text=t("goal_comments.notice_goal", objective=clip(objective, 300))),
            Markdown(text=t("goal_comments.notice_body", author=author, body=clip(body, 1000))),
            Note(text=at),
            Actions(
                buttons=[Button(label=t("goal_comments.reply"), value=pack(GoalCommentOpen(goal_id=goal_id)))]
            ),
        ],
        summary=clip(title, 100),
    )


def answer_card(
    t: Translator,
    *,
    comment_id: int,
    challenger: str,
    owner: str,
    objective: str,
    krs: Sequence[str],
    direction: str,
    reason: str,
    filed_at: str,
    error: str | None = None,
    outcome: str | None = None,
    answer: str | None = None,
) -> Card:
    """The owner's manager answers in ONE form: keep the target (and say why) or ask the owner to adjust."""
    elements: list[Element] = [
        Markdown(text=goal_text(t, owner=owner, objective=objective, krs=krs)),
        Fields(
            items=[
                KeyValue(label=t("goal_comments.challenger"), value=clip(challenger, 100)),
                KeyValue(
                    label=t("goal_comments.direction_label"), value=t(f"goal_comments.direction.{direction}")
                ),
                KeyValue(label=t("goal_comments.reason_label"), value=clip(reason, 200)),
                KeyValue(label=t("goal_comments.filed_at"), value=filed_at),
            ]
        ),
    ]
    form = Form(
        name="goal_challenge_answer",
        inputs=[
            Select(
                name="outcome",
                label=t("goal_comments.outcome_label"),
                options=[
                    Option(label=t(f"goal_comments.outcome.{o}", owner=clip(owner, 20)), value=o)
                    for o in OUTCOMES
                ],
                required=True,
                default=outcome if outcome in OUTCOMES else None,
            ),
            reason_input(
                t("goal_comments.answer_label"), t("goal_comments.answer_hint"), answer, name="answer"
            ),
        ],
        submit=Button(
            label=t("goal_comments.answer_send"),
            value=pack(GoalChallengeAnswer(comment_id=comment_id)),
            style="primary",
        ),
    )
    title = t("goal_comments.answer_title", challenger=challenger, owner=owner)
    return form_card(title, elements, form, error=error, colour="orange")


def challenge_outcome_card(
    t: Translator, *, outcome: Outcome, owner: str, objective: str, answerer: str, answer: str
) -> Card:
    """The challenger's answer: green when the owner is asked to adjust, grey when the target stands."""
    title = t(f"goal_comments.outcome_title.{outcome}", owner=owner)
    return Card(
        header=Header(title=clip(title, 60), colour="green" if outcome == "adjust" else "grey"),
        elements=[
            Markdown(text=t("goal_comments.notice_goal", objective=clip(objective, 300))),
            Markdown(text=t(f"goal_comments.outcome_body.{outcome}", answerer=answerer, owner=owner)),
            Fields(items=[KeyValue(label=t("goal_comments.answer"), value=clip(answer, 200))]),
        ],
        summary=clip(title, 100),
    )


def adjust_requested_card(
    t: Translator,
    *,
    cycle_id: int,
    manager: str,
    objective: str,
    direction: str,
    reason: str,
    answer: str,
    person_goal: bool = True,
) -> Card:
    """The owner is asked to adjust a challenged goal: why, and (for a person's own goal) one button into
    the adjustment form; a company or department objective is updated where it is set."""
    title = t("goal_comments.requested_title")
    elements: list[Element] = [
        Markdown(text=t("goal_comments.notice_goal", objective=clip(objective, 300))),
        Markdown(
            text=t(
                "goal_comments.requested_body",
                manager=manager,
                direction=t(f"goal_comments.direction.{direction}"),
                reason=clip(reason, 500),
                answer=clip(answer, 500),
            )
        ),
    ]
    if not person_goal:
        elements.append(Note(text=t("goal_comments.requested_next_objective")))
        return Card(
            header=Header(title=clip(title, 60), colour="orange"), elements=elements, summary=clip(title, 100)
        )
    elements += [
        Note(text=t("goal_comments.requested_next")),
        Actions(
            buttons=[
                Button(
                    label=t("goal_comments.adjust_button"),
                    style="primary",
                    value=pack(GoalAdjustSubmit(cycle_id=cycle_id)),
                )
            ]
        ),
    ]
    return Card(
        header=Header(title=clip(title, 60), colour="orange"), elements=elements, summary=clip(title, 100)
    )
