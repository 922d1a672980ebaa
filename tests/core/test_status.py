"""Statuses: the enums are the stored strings, and the rules storage keeps for itself agree with the core."""

from __future__ import annotations

from enum import StrEnum

import pytest

from bot.core import status
from storage.queries import metrics

ENUMS: list[type[StrEnum]] = [
    status.CycleStatus,
    status.GoalsStatus,
    status.CheckInStatus,
    status.ReviewStatus,
    status.ActionItemStatus,
    status.EvidenceRequestStatus,
    status.SelfAssessmentStatus,
    status.PeerFeedbackStatus,
    status.RatingStatus,
    status.GradeStatus,
    status.SendStatus,
]


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_members_are_the_strings_stored_in_the_database(enum: type[StrEnum]) -> None:
    for member in enum:
        assert member == member.value == member.name.lower()
        assert isinstance(member, str) and len(member) <= 16  # every status column is String(16)
        assert {member.value: 1}.get(member) == 1  # usable as a key for counts read back from SQL


def test_open_sets_are_made_of_their_own_enum() -> None:
    assert set(status.OPEN_ACTION_ITEM) == {"open", "returned"}
    assert set(status.ANSWERABLE_CHECKIN) == {"open", "submitted"}
    assert set(status.OPEN_REVIEW) == {"open", "submitted"}
    assert set(status.ATTACHABLE_EVIDENCE_REQUEST) == {"open", "fulfilled"}
    assert set(status.OPEN_PEER_FEEDBACK) == {"proposed", "requested"}
    assert all(isinstance(s, status.CheckInStatus) for s in status.ANSWERED_CHECKIN)


def test_the_metrics_count_as_answered_what_the_flows_call_answered() -> None:
    """``storage.queries.metrics`` owns its definitions (it cannot import the core); they must not drift."""
    assert set(metrics.DONE_CHECKIN) == set(status.ANSWERED_CHECKIN)
