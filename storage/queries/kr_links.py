"""What hangs off a key result (issue 17 item 7): the key results a person may bind something to, the
rhythms bound to them, and the proof behind a number (the evidence and action items linked to it).

Statuses come in as parameters where a query needs one: storage sits below ``bot.core.status``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    ActionItem,
    Cycle,
    Evidence,
    EvidenceRequest,
    Goal,
    KeyResult,
    KeyResultRhythm,
)

MAX_CHOICES = 50
"""A select holds at most 50 options (``cards.model.Select``); nobody owns more key results in one cycle."""


@dataclass(frozen=True, slots=True)
class KrChoice:
    """One key result a person owns in a running cycle, as a select shows it."""

    key_result_id: int
    goal_id: int
    cycle_id: int
    objective: str
    title: str
    progress: float


@dataclass(frozen=True, slots=True)
class KrOwner:
    """A key result with the objective it belongs to and that objective's cycle."""

    key_result: KeyResult
    goal: Goal
    cycle: Cycle


async def kr_choices(
    session: AsyncSession, person_id: int, *, cycle_statuses: Collection[str]
) -> list[KrChoice]:
    """The key results of every objective ``person_id`` owns in a cycle whose status is in
    ``cycle_statuses`` (the running ones), newest cycle first, then in the order the goals are shown."""
    rows = await session.execute(
        select(KeyResult.id, Goal.id, Goal.cycle_id, Goal.objective, KeyResult.title, KeyResult.progress)
        .join(Goal, Goal.id == KeyResult.goal_id)
        .join(Cycle, Cycle.id == Goal.cycle_id)
        .where(Goal.person_id == person_id, Cycle.status.in_(list(cycle_statuses)))
        .order_by(
            Cycle.started_at.desc(), Cycle.id.desc(), Goal.position, Goal.id, KeyResult.position, KeyResult.id
        )
        .limit(MAX_CHOICES)
    )
    return [KrChoice(r[0], r[1], r[2], r[3], r[4], float(r[5] or 0.0)) for r in rows]


async def kr_owner(session: AsyncSession, key_result_id: int) -> KrOwner | None:
    row = (
        await session.execute(
            select(KeyResult, Goal, Cycle)
            .join(Goal, Goal.id == KeyResult.goal_id)
            .join(Cycle, Cycle.id == Goal.cycle_id)
            .where(KeyResult.id == key_result_id)
        )
    ).first()
    return None if row is None else KrOwner(row[0], row[1], row[2])


# ------------------------------------------------------------------ rhythms


@dataclass(frozen=True, slots=True)
class RhythmRow:
    """An active rhythm with the key result it serves."""

    rhythm_id: int
    key_result_id: int
    key_result: str
    weekday: int
    due_time: str
    text: str


async def active_rhythms_of(session: AsyncSession, person_id: int) -> list[RhythmRow]:
    rows = await session.execute(
        select(
            KeyResultRhythm.id,
            KeyResultRhythm.key_result_id,
            KeyResult.title,
            KeyResultRhythm.weekday,
            KeyResultRhythm.due_time,
            KeyResultRhythm.text,
        )
        .join(KeyResult, KeyResult.id == KeyResultRhythm.key_result_id)
        .where(KeyResultRhythm.person_id == person_id, KeyResultRhythm.active.is_(True))
        .order_by(KeyResultRhythm.weekday, KeyResultRhythm.due_time, KeyResultRhythm.id)
    )
    return [RhythmRow(*r) for r in rows]


async def active_rhythm_count(session: AsyncSession, key_result_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(KeyResultRhythm)
            .where(KeyResultRhythm.key_result_id == key_result_id, KeyResultRhythm.active.is_(True))
        )
        or 0
    )


async def same_rhythm(
    session: AsyncSession, key_result_id: int, weekday: int, due_time: str
) -> KeyResultRhythm | None:
    """An active rhythm of this key result on the same weekday and time (another would only repeat it)."""
    return await session.scalar(
        select(KeyResultRhythm).where(
            KeyResultRhythm.key_result_id == key_result_id,
            KeyResultRhythm.weekday == weekday,
            KeyResultRhythm.due_time == due_time,
            KeyResultRhythm.active.is_(True),
        )
    )


async def stop_rhythm(session: AsyncSession, rhythm_id: int, person_id: int) -> bool:
    """Compare-and-set: the rhythm stops once; False when it was not running (any more)."""
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(KeyResultRhythm)
            .where(
                KeyResultRhythm.id == rhythm_id,
                KeyResultRhythm.person_id == person_id,
                KeyResultRhythm.active.is_(True),
            )
            .values(active=False)
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount == 1


@dataclass(frozen=True, slots=True)
class ScheduledRhythm:
    """What the scheduler needs of one rhythm: whose, which weekday, by when, since and until when."""

    rhythm_id: int
    person_id: int
    weekday: int
    due_time: str
    created_at: datetime
    ends_on: date | None
    """The cycle's last day (None when the cycle has no end date)."""


async def scheduled_rhythms(
    session: AsyncSession, *, cycle_statuses: Collection[str]
) -> list[ScheduledRhythm]:
    """Every active rhythm whose key result belongs to a cycle in ``cycle_statuses`` (the running ones)."""
    rows = await session.execute(
        select(
            KeyResultRhythm.id,
            KeyResultRhythm.person_id,
            KeyResultRhythm.weekday,
            KeyResultRhythm.due_time,
            KeyResultRhythm.created_at,
            Cycle.ends_on,
        )
        .join(KeyResult, KeyResult.id == KeyResultRhythm.key_result_id)
        .join(Goal, Goal.id == KeyResult.goal_id)
        .join(Cycle, Cycle.id == Goal.cycle_id)
        .where(KeyResultRhythm.active.is_(True), Cycle.status.in_(list(cycle_statuses)))
        .order_by(KeyResultRhythm.id)
    )
    return [ScheduledRhythm(*r) for r in rows]


# ------------------------------------------------------------------ the proof behind a number


@dataclass(frozen=True, slots=True)
class Proof:
    """One piece of proof behind a key result: a photo, or an action item linked to it.

    ``status`` is the photo's rating (``None``: not rated yet) or the item's status; ``text`` what the photo
    was for (its action item, else its rhythm) or the item's deliverable; ``media_id`` the photo's hash."""

    kind: Literal["evidence", "action"]
    ref_id: int
    at: datetime
    text: str
    status: str | None
    media_id: str | None = None


async def proof_for_kr(session: AsyncSession, key_result_id: int, *, limit: int = 20) -> list[Proof]:
    """The evidence and action items linked to a key result, newest first (at most ``limit``).

    An action item counts when it is linked to the key result, or when the key result was made from it (a
    carried-over item, ``KeyResult.from_action_item_id``). A photo counts when it names the key result itself
    (a rhythm's request, or an item linked at the time) or when its action item counts."""
    made_from = select(KeyResult.from_action_item_id).where(KeyResult.id == key_result_id).scalar_subquery()
    is_linked = or_(ActionItem.key_result_id == key_result_id, ActionItem.id == made_from)
    linked_items = select(ActionItem.id).where(is_linked)
    photos = await session.execute(
        select(
            Evidence.id,
            Evidence.received_at,
            Evidence.rating,
            Evidence.sha256,
            ActionItem.deliverable,
            KeyResultRhythm.text,
        )
        .outerjoin(ActionItem, ActionItem.id == Evidence.action_item_id)
        .outerjoin(EvidenceRequest, EvidenceRequest.id == Evidence.request_id)
        .outerjoin(KeyResultRhythm, KeyResultRhythm.id == EvidenceRequest.rhythm_id)
        .where(or_(Evidence.key_result_id == key_result_id, Evidence.action_item_id.in_(linked_items)))
        .order_by(Evidence.received_at.desc(), Evidence.id.desc())
        .limit(limit)
    )
    items = await session.execute(
        select(ActionItem.id, ActionItem.created_at, ActionItem.status, ActionItem.deliverable)
        .where(is_linked)
        .order_by(ActionItem.created_at.desc(), ActionItem.id.desc())
        .limit(limit)
    )
    out = [Proof("evidence", r[0], r[1], r[4] or r[5] or "", r[2], r[3]) for r in photos] + [
        Proof("action", r[0], r[1], r[3], r[2]) for r in items
    ]
    out.sort(key=lambda p: (p.at, p.kind == "evidence", p.ref_id), reverse=True)
    return out[:limit]
