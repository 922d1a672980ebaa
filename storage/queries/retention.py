"""Batched pruning, compaction and archiving for the tables that grow with every message (issue 16 #12).

Every function here does one *batch*: it touches at most ``limit`` rows, chosen oldest first through an
index on the row's age, inside the caller's transaction. The caller (``bot/app/retention.py``) commits after
each batch, so no statement holds locks for long and a crash loses at most the batch in flight (which the
next run simply does again). The same statements run on SQLite and PostgreSQL: a ``DELETE … WHERE id IN
(SELECT id … ORDER BY … LIMIT n)`` rather than a dialect's ``DELETE … LIMIT``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    ActionItem,
    AuditLog,
    CardMessage,
    CheckIn,
    InboundEvent,
    OutboxMessage,
    Person,
    Review321,
    ScheduledSend,
)

CLAIMED_ONLY: dict[str, Any] = {}
"""The answer of an inbound event that was claimed but whose processing has not finished: the dispatcher
inserts ``{}`` and writes the real answer (never ``{}``) in the same transaction that does the work."""

ERASED_PREFIX = "erased-"
"""Platform user ids (and names) of erased people start with this: ``erased-<person id>``."""


async def delete_ids(session: AsyncSession, model: Any, ids: Collection[int]) -> int:
    if not ids:
        return 0
    result = await session.execute(delete(model).where(model.id.in_(list(ids))))
    return int(getattr(result, "rowcount", 0) or 0)


# ------------------------------------------------------------------------------------ inbound events
def _finished_event() -> ColumnElement[bool]:
    return InboundEvent.answer != CLAIMED_ONLY


async def prune_inbound_events(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Forget the oldest events received before ``before`` (past every replay/retry window), never one
    whose processing is unfinished (a claimed event must stay to keep its retry a duplicate)."""
    ids = (
        select(InboundEvent.id)
        .where(InboundEvent.received_at < before, _finished_event())
        .order_by(InboundEvent.received_at, InboundEvent.id)
        .limit(limit)
    )
    return await delete_ids(session, InboundEvent, list(await session.scalars(ids)))


# ------------------------------------------------------------------------------------------ outbox
Cursor = tuple[datetime, int] | None
"""Where a walk over an age index stopped: (age, id) of the last row looked at; None = from the start.

A walk pages by (age, id) on the age index rather than by id: ordering by id while filtering on the age
would make SQLite read every candidate row again for each batch."""


def _after(age: Any, row_id: Any, cursor: Cursor) -> ColumnElement[bool]:
    if cursor is None:
        return true()
    at, last = cursor
    return and_(age >= at, or_(age > at, row_id > last))


async def compact_outbox(
    session: AsyncSession, *, sent_after: datetime, sent_before: datetime, cursor: Cursor, limit: int
) -> tuple[Cursor, int]:
    """Drop the card JSON of rows sent in [``sent_after``, ``sent_before``), one page after ``cursor``;
    returns (the new cursor, or the same one when nothing was left; cards dropped). Older sent rows are
    about to be deleted anyway. Status, recipients, ``card_key``, ``dedupe_key`` and the message refs in
    ``result`` stay: card updates look up ``card_messages``, and a sent row is never claimed again, so its
    card is never read again."""
    m = OutboxMessage
    rows = (
        await session.execute(
            select(m.id, m.sent_at, m.card)
            .where(
                m.sent_at >= sent_after,
                m.sent_at < sent_before,
                m.status == "sent",
                _after(m.sent_at, m.id, cursor),
            )
            .order_by(m.sent_at, m.id)
            .limit(limit)
        )
    ).all()
    if not rows:
        return cursor, 0
    full = [row_id for row_id, _, card in rows if card]
    if full:
        await session.execute(
            update(m)
            .where(m.id.in_(full), m.status == "sent")
            .values(card={})
            .execution_options(synchronize_session=False)
        )
    last_id, last_at, _ = rows[-1]
    return (last_at, int(last_id)), len(full)


async def prune_sent_outbox(session: AsyncSession, *, sent_before: datetime, limit: int) -> int:
    """Delete the oldest rows *sent* before ``sent_before``. Pending, sending and dead rows are never
    deleted: a dead row waits for an operator (``perfloop outbox retry``)."""
    ids = (
        select(OutboxMessage.id)
        .where(OutboxMessage.sent_at < sent_before, OutboxMessage.status == "sent")
        .order_by(OutboxMessage.sent_at, OutboxMessage.id)
        .limit(limit)
    )
    return await delete_ids(session, OutboxMessage, list(await session.scalars(ids)))


# ----------------------------------------------------------------------------------- card messages
async def prune_card_messages(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Forget where a card landed once its last send is older than ``before``, unless an update of that card
    is still waiting in the outbox (it looks the reference up when it is sent)."""
    waiting = select(OutboxMessage.card_key).where(
        OutboxMessage.status.in_(("pending", "sending")),
        OutboxMessage.op == "update",
        OutboxMessage.card_key.is_not(None),
    )
    ids = (
        select(CardMessage.id)
        .where(CardMessage.created_at < before, CardMessage.card_key.not_in(waiting))
        .order_by(CardMessage.created_at, CardMessage.id)
        .limit(limit)
    )
    return await delete_ids(session, CardMessage, list(await session.scalars(ids)))


# --------------------------------------------------------------------------------- scheduler ledger
async def open_record_ids(
    session: AsyncSession,
    *,
    checkin_open: Sequence[str],
    review_open: Sequence[str],
    action_open: Sequence[str],
) -> dict[str, set[int]]:
    """The ids of records the scheduler still derives steps from (their ledger keys must stay)."""
    return {
        "checkin": set(await session.scalars(select(CheckIn.id).where(CheckIn.status.in_(checkin_open)))),
        "review": set(await session.scalars(select(Review321.id).where(Review321.status.in_(review_open)))),
        "action": set(await session.scalars(select(ActionItem.id).where(ActionItem.status.in_(action_open)))),
    }


def ledger_record(flow: str, period: str) -> tuple[str, int] | None:
    """Which record a ledger key belongs to, for the record-driven flows (``checkin.remind`` → the check-in
    in the period, ``action.escalate`` → the item before the first colon, ``snooze.review`` → the review)."""
    kind = {"checkin": "checkin", "snooze.checkin": "checkin", "snooze.review": "review", "action": "action"}
    head = flow if flow.startswith("snooze.") else flow.split(".", 1)[0]
    if "." not in flow or head not in kind:
        return None
    number = period.split(":", 1)[0]
    return (kind[head], int(number)) if number.isdigit() else None


async def prune_ledger(
    session: AsyncSession,
    *,
    before: datetime,
    cursor: Cursor,
    limit: int,
    keep_status: Sequence[str],
    open_records: dict[str, set[int]],
) -> tuple[int, Cursor]:
    """Delete ledger keys created before ``before`` (one page after ``cursor``), except keys in a
    ``keep_status`` (a snooze still to wake) and keys of records still open. Returns (deleted, new cursor;
    the same cursor when nothing was left)."""
    s = ScheduledSend
    rows = (
        await session.execute(
            select(s.id, s.created_at, s.flow, s.period, s.status)
            .where(s.created_at < before, _after(s.created_at, s.id, cursor))
            .order_by(s.created_at, s.id)
            .limit(limit)
        )
    ).all()
    if not rows:
        return 0, cursor
    doomed: list[int] = []
    for row_id, _, flow, period, status in rows:
        if status in keep_status:
            continue
        record = ledger_record(flow, period)
        if record is not None and record[1] in open_records.get(record[0], set()):
            continue
        doomed.append(row_id)
    last_id, last_at = rows[-1][0], rows[-1][1]
    return await delete_ids(session, ScheduledSend, doomed), (last_at, int(last_id))


# ------------------------------------------------------------------------------------------- audit
async def oldest_audit(session: AsyncSession, *, before: datetime, limit: int, lock: bool) -> list[AuditLog]:
    """The oldest audit rows written before ``before``. With ``lock`` (PostgreSQL) they are locked until the
    caller commits, so an erasure cannot change a row between its archiving and its deletion."""
    stmt = select(AuditLog).where(AuditLog.at < before).order_by(AuditLog.at, AuditLog.id).limit(limit)
    if lock:
        stmt = stmt.with_for_update()
    return list(await session.scalars(stmt))


# ----------------------------------------------------------------------------------------- leavers
async def leavers_to_erase(session: AsyncSession, *, unchanged_before: datetime, limit: int) -> list[int]:
    """Inactive people whose row has not changed since ``unchanged_before`` and who are not erased yet.

    ``updated_at`` moves on every change, deactivation included, so "left at least N days ago" is read as
    "inactive and untouched for N days": a later change only postpones the erasure, never brings it early.
    """
    stmt = (
        select(Person.id)
        .where(
            Person.active.is_(False),
            Person.updated_at < unchanged_before,
            Person.platform_user_id.not_like(f"{ERASED_PREFIX}%"),
        )
        .order_by(Person.id)
        .limit(limit)
    )
    return list(await session.scalars(stmt))
