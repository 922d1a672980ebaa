"""Record statuses: the words the flows compare, each defined once, and the "open" sets built from them.

Every status column is a short string in the database. These ``StrEnum`` members *are* those strings
(``CheckInStatus.OPEN == "open"``), so the schema does not change and a member can be written to a row or
put in a query as it is. Code above storage compares against the members, never against a bare string, so
a typo is a name error instead of a silently false comparison.

``storage/`` sits below the core and cannot import this module: a storage query that needs one of the sets
below takes it as a parameter (``metrics.overdue``, ``checkins.latest_answerable``). The one rule a query
owns stays there: the metric definitions in ``storage.queries.metrics`` (what counts towards check-in
completion, evidence completeness, fulfilment: SQL aggregates whose wording the digest card repeats), which
streaks and social proof share; ``tests/test_status.py`` pins them to the names below.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum


class CycleStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    CLOSING = "closing"
    """HR has begun closing: nothing new starts in the cycle, what people already started may still be
    submitted (``[cycles] late_submissions`` then rules what comes after ``closed``)."""
    CANCELLED = "cancelled"
    CLOSED = "closed"


CYCLE_MOVES: dict[CycleStatus, tuple[CycleStatus, ...]] = {
    CycleStatus.DRAFT: (CycleStatus.ACTIVE, CycleStatus.CANCELLED),
    CycleStatus.ACTIVE: (CycleStatus.CLOSING, CycleStatus.CANCELLED),
    CycleStatus.CLOSING: (CycleStatus.CLOSED, CycleStatus.ACTIVE),
    CycleStatus.CANCELLED: (CycleStatus.DRAFT,),
    CycleStatus.CLOSED: (),
}
"""The one table of allowed cycle moves, used by every path (kickoff, cancel, close; chat, CLI, console).
A cancelled cycle may be previewed again (→ draft); a closing one may be taken back to active, not
cancelled (what people finished while it was closing stays theirs); closed is final."""

ANSWERABLE_CYCLE: tuple[CycleStatus, ...] = (CycleStatus.ACTIVE, CycleStatus.CLOSING)
"""A cycle whose items already open (check-in, self-assessment, peer request, grade) may still be answered."""


class GoalsStatus(StrEnum):
    """``CycleParticipant.goals_status``: where a person's goals for the cycle are."""

    NONE = "none"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    RETURNED = "returned"


class GoalLevel(StrEnum):
    """``Goal.level``: where an objective sits in the goal tree (issue 17). Not a status, but the same kind
    of word: compared by flows, stored as it is."""

    COMPANY = "company"
    DEPARTMENT = "department"
    PERSON = "person"


class GoalVisibility(StrEnum):
    """``Cycle.goal_visibility``: who, besides those who always may (``bot.core.people.may_see_goals``),
    sees a person's goals in that cycle."""

    COMPANY = "company"
    DEPARTMENT = "department"
    MANAGER = "manager"


class GoalVersionStatus(StrEnum):
    """``GoalVersion.status``: version 1 is written ``approved`` when the manager confirms the goals; a
    monthly adjustment is ``proposed`` until the manager approves or returns it."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    RETURNED = "returned"
    WITHDRAWN = "withdrawn"


class GoalCommentStatus(StrEnum):
    """``GoalComment.status``: a comment stays ``open``; a challenge is ``open`` until the owner's manager
    keeps the target (``kept``) or asks the owner to adjust it (``adjust``)."""

    OPEN = "open"
    KEPT = "kept"
    ADJUST = "adjust"


class KrValueSource(StrEnum):
    """``KeyResultValue.source``: who said a key result stands at a value. A check-in answer (``source_id``
    the check-in), the owner or their manager on a card, an import, or an external system through the API."""

    CHECKIN = "checkin"
    OWNER = "owner"
    MANAGER = "manager"
    IMPORT = "import"
    API = "api"


class CheckInStatus(StrEnum):
    OPEN = "open"
    SUBMITTED = "submitted"
    ACKNOWLEDGED = "acknowledged"
    FOLLOWUP = "followup"
    MISSED = "missed"
    SKIPPED = "skipped"


class ReviewStatus(StrEnum):
    """A 3-2-1 review."""

    OPEN = "open"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    MISSED = "missed"


class ActionItemStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    ACCEPTED = "accepted"
    RETURNED = "returned"
    CLOSED = "closed"


class EvidenceRequestStatus(StrEnum):
    OPEN = "open"
    FULFILLED = "fulfilled"
    EXPIRED = "expired"


class SelfAssessmentStatus(StrEnum):
    OPEN = "open"
    SUBMITTED = "submitted"


class PeerFeedbackStatus(StrEnum):
    PROPOSED = "proposed"
    """Nominated, waiting for the manager."""
    REQUESTED = "requested"
    ANSWERED = "answered"
    DROPPED = "dropped"
    """Taken off the list."""


class RatingStatus(StrEnum):
    """A deliverable rating."""

    OPEN = "open"
    SUBMITTED = "submitted"
    EXPIRED = "expired"


class GradeStatus(StrEnum):
    PROPOSED = "proposed"
    LOCKED = "locked"
    """A calibration anomaly holds it until HR reviews the department: no change, no release."""
    RELEASED = "released"


class AppealStatus(StrEnum):
    """A grade appeal (``GradeAppeal.status``)."""

    OPEN = "open"
    UPHELD = "upheld"
    CHANGED = "changed"
    WITHDRAWN = "withdrawn"


class SendStatus(StrEnum):
    """A scheduled send in the scheduler's ledger (``ScheduledSend.status``)."""

    SENT = "sent"
    MISSED = "missed"
    SKIPPED = "skipped"
    SNOOZED = "snoozed"


OPEN_ACTION_ITEM: tuple[ActionItemStatus, ...] = (ActionItemStatus.OPEN, ActionItemStatus.RETURNED)
"""An action item someone still has to deliver: reminded, escalated, counted as overdue past its deadline."""


def action_days_overdue(status: str, deadline: date, today: date) -> int:
    """How many days an action item is late: past its deadline while still to deliver, else 0. "Overdue" is
    not a stored status (the row stays open), so every card that shows it asks here."""
    return (today - deadline).days if status in OPEN_ACTION_ITEM and deadline < today else 0


ANSWERED_CHECKIN: tuple[CheckInStatus, ...] = (
    CheckInStatus.SUBMITTED,
    CheckInStatus.ACKNOWLEDGED,
    CheckInStatus.FOLLOWUP,
)
"""A check-in the person answered (whatever the manager did with it since): completion, streaks."""

ANSWERABLE_CHECKIN: tuple[CheckInStatus, ...] = (CheckInStatus.OPEN, CheckInStatus.SUBMITTED)
"""A check-in the person may still write into (a submitted one only until the manager answers)."""

OPEN_REVIEW: tuple[ReviewStatus, ...] = (ReviewStatus.OPEN, ReviewStatus.SUBMITTED)
"""A 3-2-1 review the person may still (re)submit."""

ATTACHABLE_EVIDENCE_REQUEST: tuple[EvidenceRequestStatus, ...] = (
    EvidenceRequestStatus.OPEN,
    EvidenceRequestStatus.FULFILLED,
)
"""A request a newly arrived photo may still be filed under."""

OPEN_PEER_FEEDBACK: tuple[PeerFeedbackStatus, ...] = (
    PeerFeedbackStatus.PROPOSED,
    PeerFeedbackStatus.REQUESTED,
)
"""A peer nomination still waiting for the manager or for the peer's answer."""

OPEN_APPEAL: tuple[AppealStatus, ...] = (AppealStatus.OPEN,)
"""An appeal still waiting for the HRBP's decision (the cycle close preview lists these)."""

DECIDED_APPEAL: tuple[AppealStatus, ...] = (AppealStatus.UPHELD, AppealStatus.CHANGED)
"""An appeal the HRBP decided: final for that grade unless HR corrects the grade afterwards."""
