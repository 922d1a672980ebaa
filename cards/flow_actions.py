"""Typed button payloads of the kickoff, goals, check-in and 3-2-1 flows.

Every payload carries the id of the record it acts on, so a click is self-describing: the handler loads the
record, checks that the clicker may act on it, and compare-and-sets its status. Nothing is taken on trust
from the card except that id.
"""

from __future__ import annotations

from typing import Literal

from cards.actions import Action, action

# ---------------------------------------------------------------- kickoff


@action("kickoff.confirm")
class KickoffConfirm(Action):
    cycle_id: int


@action("kickoff.cancel")
class KickoffCancel(Action):
    cycle_id: int


@action("kickoff.ack")
class KickoffAck(Action):
    cycle_id: int


@action("kickoff.team")
class KickoffTeamGoals(Action):
    """A manager's "confirm my team's goals": lists the team's goal status with review buttons."""

    cycle_id: int


# ---------------------------------------------------------------- goals


@action("goals.edit")
class GoalsEdit(Action):
    cycle_id: int


@action("goals.submit")
class GoalsSubmit(Action):
    cycle_id: int


@action("goals.copy")
class GoalsCopy(Action):
    cycle_id: int


@action("goals.review")
class GoalsReview(Action):
    participant_id: int


@action("goals.confirm")
class GoalsConfirm(Action):
    participant_id: int


@action("goals.return")
class GoalsReturn(Action):
    participant_id: int


# ---------------------------------------------------------------- check-in


@action("checkin.submit")
class CheckinSubmit(Action):
    checkin_id: int


@action("checkin.edit")
class CheckinEdit(Action):
    checkin_id: int


@action("checkin.ack")
class CheckinAck(Action):
    checkin_id: int


@action("checkin.followup")
class CheckinFollowup(Action):
    checkin_id: int


@action("checkin.answer")
class CheckinAnswer(Action):
    """The manager's form: a decision select plus a comment, submitted together."""

    checkin_id: int


# ---------------------------------------------------------------- 3-2-1 review


@action("review.submit")
class ReviewSubmit(Action):
    review_id: int


@action("review.edit")
class ReviewEdit(Action):
    review_id: int


@action("review.confirm")
class ReviewConfirm(Action):
    review_id: int


CheckinDecision = Literal["acknowledged", "followup"]
