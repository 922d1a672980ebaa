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


@action("okr.comment_open")
class GoalCommentOpen(Action):
    """A goal card's "评论" button: sends the comment form as a card of its own, so the goal card stays as it
    is (a form answered in chat on WeCom / DingTalk would otherwise replace the card it was opened from)."""

    goal_id: int


@action("okr.challenge_open")
class GoalChallengeOpen(Action):
    """A goal card's "质疑目标" button: sends the challenge form as a card of its own."""

    goal_id: int


@action("okr.answer")
class GoalChallengeAnswer(Action):
    comment_id: int


@action("okr.kr_value")
class KeyResultUpdate(Action):
    """The owner (or their manager) records a key result's current value outside a check-in."""

    key_result_id: int


@action("okr.kr_value_submit")
class KeyResultValueSubmit(Action):
    """The submit button of the form ``KeyResultUpdate`` opens (value and note in the form)."""

    key_result_id: int


@action("okr.adjust")
class GoalAdjustSubmit(Action):
    cycle_id: int


@action("okr.adjust_open")
class GoalAdjustOpen(Action):
    """The ``/okr`` card's "提出调整" button (shown while the person may propose): sends the adjustment form
    as a card of its own, so the goals card stays (a form answered in chat would otherwise replace it)."""

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


@action("okr.rhythm")
class RhythmSubmit(Action):
    """The ``/rhythm`` form for one person's key results: which key result, and the rhythm in words. Set by
    the owner or their manager (checked on click)."""

    person_id: int


@action("okr.rhythm_stop")
class RhythmStop(Action):
    """``/rhythm off``: stop the rhythm chosen in the form among ``person_id``'s active ones."""

    person_id: int


@action("okr.action_kr")
class ActionKeyResultLink(Action):
    """Link an action item to one of its owner's key results, or to none (chosen in the form)."""

    item_id: int
