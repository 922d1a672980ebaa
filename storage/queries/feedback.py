"""Self-assessments, peer feedback and deliverable ratings: the rows, and the anonymous aggregate.

The aggregate is the only way peer answers leave the database towards people, and it is built from
*released* answers only (``PeerFeedback.released_at``): answers are released in batches of at least the
anonymity threshold (``release``), so two versions anyone was ever shown differ by a whole batch, never by
one rater, and an answer that is not released yet changes nothing anyone can open. Below the threshold the
aggregate carries nothing but "not yet"; at or above it only means per dimension and the examples in a fixed
(sorted) order that has nothing to do with who answered or when. No function here returns rater ids to a
caller that builds a card for the subject. The dimensions and the aggregate's type live in
``storage.feedback_scales``, where the cards may read them without reaching into queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from statistics import fmean

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.feedback_scales import DIMENSIONS, RATING_ASPECTS, PeerAggregate
from storage.models import CycleParticipant, DeliverableRating, PeerFeedback, SelfAssessment


def _scores(raw: dict[str, object]) -> dict[str, float]:
    out: dict[str, float] = {}
    for dim in DIMENSIONS:
        value = raw.get(dim)
        if isinstance(value, int | float) and 1 <= value <= 5:
            out[dim] = float(value)
    return out


async def self_assessment(session: AsyncSession, cycle_id: int, person_id: int) -> SelfAssessment | None:
    return await session.scalar(
        select(SelfAssessment).where(
            SelfAssessment.cycle_id == cycle_id, SelfAssessment.person_id == person_id
        )
    )


async def peer_rows(session: AsyncSession, cycle_id: int, subject_id: int) -> list[PeerFeedback]:
    return list(
        await session.scalars(
            select(PeerFeedback)
            .where(
                PeerFeedback.cycle_id == cycle_id,
                PeerFeedback.subject_id == subject_id,
                PeerFeedback.role == "peer",
            )
            .order_by(PeerFeedback.id)
        )
    )


async def manager_row(session: AsyncSession, cycle_id: int, subject_id: int) -> PeerFeedback | None:
    return await session.scalar(
        select(PeerFeedback).where(
            PeerFeedback.cycle_id == cycle_id,
            PeerFeedback.subject_id == subject_id,
            PeerFeedback.role == "manager",
        )
    )


async def released_count(session: AsyncSession, cycle_id: int, subject_id: int) -> int:
    """How many answers the shown aggregate holds (0: nothing was ever shown)."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(PeerFeedback)
            .where(
                PeerFeedback.cycle_id == cycle_id,
                PeerFeedback.subject_id == subject_id,
                PeerFeedback.role == "peer",
                PeerFeedback.status == "answered",
                PeerFeedback.released_at.is_not(None),
            )
        )
        or 0
    )


async def lock_round(session: AsyncSession, cycle_id: int, subject_id: int) -> None:
    """Serialise answers and releases for one person's round (PostgreSQL row lock on the participant row;
    SQLite serialises writers anyway). Without it two peers answering at once could each release a batch
    holding their own answer but not the other's: two versions that differ by swapping one rater.

    ``FOR NO KEY UPDATE`` so rows that merely reference the participant are not blocked."""
    await session.execute(
        select(CycleParticipant.id)
        .where(CycleParticipant.cycle_id == cycle_id, CycleParticipant.person_id == subject_id)
        .with_for_update(key_share=True)
    )


async def unreleased(session: AsyncSession, cycle_id: int, subject_id: int) -> list[PeerFeedback]:
    """Answered peer rows not yet part of what anyone is shown."""
    return [
        r
        for r in await peer_rows(session, cycle_id, subject_id)
        if r.status == "answered" and r.released_at is None
    ]


async def release(
    session: AsyncSession, cycle_id: int, subject_id: int, *, threshold: int, now: datetime
) -> list[PeerFeedback]:
    """Release the waiting answers if there are at least ``threshold`` of them; returns the released batch
    (empty: nothing changes for anyone). Call under ``lock_round``."""
    waiting = await unreleased(session, cycle_id, subject_id)
    if len(waiting) < threshold:
        return []
    for row in waiting:
        row.released_at = now
    await session.flush()
    return waiting


async def aggregate(
    session: AsyncSession, cycle_id: int, subject_id: int, *, threshold: int, with_manager: bool
) -> PeerAggregate:
    """The anonymous view of one person's peer feedback in one cycle (plus self and, for the manager's
    card, the manager's own scores), over released answers only."""
    answered = [
        r
        for r in await peer_rows(session, cycle_id, subject_id)
        if r.status == "answered" and r.released_at is not None
    ]
    sa = await self_assessment(session, cycle_id, subject_id)
    self_scores = None
    if sa is not None and sa.status == "submitted":
        self_scores = _scores(dict(sa.answers.get("dims") or {})) or None
    manager = None
    if with_manager:
        row = await manager_row(session, cycle_id, subject_id)
        if row is not None and row.status == "answered":
            manager = _scores(dict(row.scores)) or None
    if len(answered) < threshold:
        return PeerAggregate(
            answered=len(answered), threshold=threshold, self_scores=self_scores, manager=manager
        )
    per_dim: dict[str, list[float]] = {}
    for row in answered:
        for dim, value in _scores(dict(row.scores)).items():
            per_dim.setdefault(dim, []).append(value)
    means = {d: round(fmean(v), 2) for d, v in per_dim.items()}
    examples = sorted(r.example.strip() for r in answered if r.example and r.example.strip())
    return PeerAggregate(
        answered=len(answered),
        threshold=threshold,
        peers=means,
        examples=examples,
        self_scores=self_scores,
        manager=manager,
    )


def series(scores: dict[str, float] | None) -> list[float | None] | None:
    if scores is None:
        return None
    return [scores.get(d) for d in DIMENSIONS]


async def ratings_for(session: AsyncSession, kind: str, ref_id: int) -> list[DeliverableRating]:
    return list(
        await session.scalars(
            select(DeliverableRating)
            .where(DeliverableRating.kind == kind, DeliverableRating.ref_id == ref_id)
            .order_by(DeliverableRating.id)
        )
    )


def rating_means(rows: Sequence[DeliverableRating]) -> dict[str, float]:
    """Mean stars per aspect over submitted ratings (empty when none)."""
    done = [r for r in rows if r.status == "submitted"]
    out: dict[str, float] = {}
    for aspect in RATING_ASPECTS:
        values = [float(v) for r in done if (v := getattr(r, aspect)) is not None]
        if values:
            out[aspect] = round(fmean(values), 2)
    return out


async def ratings_received(session: AsyncSession, owner_id: int) -> list[DeliverableRating]:
    return list(
        await session.scalars(
            select(DeliverableRating)
            .where(DeliverableRating.owner_id == owner_id, DeliverableRating.status == "submitted")
            .order_by(DeliverableRating.id)
        )
    )
