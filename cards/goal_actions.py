"""Typed button payloads of the goal tree (issue 17): viewing, objectives, comments and challenges, key
result values, monthly adjustments and carry-over.

Like every payload, each carries only the id of the record it acts on; the handler loads it and checks
that the clicker may see or change it.
"""

from __future__ import annotations

from cards.actions import Action, action


@action("okr.view")
class OkrView(Action):
    """Open one person's goals in one cycle (the visibility rule is checked on click)."""

    cycle_id: int
    person_id: int


@action("okr.tree")
class OkrTree(Action):
    """The tree under one objective."""

    goal_id: int


@action("okr.objective")
class ObjectiveSubmit(Action):
    """A company (``department_id`` none) or department objective form."""

    cycle_id: int
    department_id: int | None = None


@action("okr.comment")
class GoalCommentSubmit(Action):
    goal_id: int


@action("okr.challenge")
class GoalChallengeSubmit(Action):
    goal_id: int


@action("okr.answer")
class GoalChallengeAnswer(Action):
    comment_id: int


@action("okr.kr_value")
class KeyResultUpdate(Action):
    """The owner (or their manager) records a key result's current value outside a check-in."""

    key_result_id: int


@action("okr.adjust")
class GoalAdjustSubmit(Action):
    cycle_id: int


@action("okr.adjust_approve")
class GoalAdjustApprove(Action):
    version_id: int


@action("okr.adjust_return")
class GoalAdjustReturn(Action):
    version_id: int


@action("okr.carry")
class GoalCarryOver(Action):
    """One click: the previous cycle's open action items and unfinished key results into this cycle."""

    cycle_id: int
