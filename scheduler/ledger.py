"""The idempotency ledger over ``scheduled_sends`` (unique flow + person + period).

The rule that makes a double fire, a late fire or two replicas harmless: the natural key is inserted
*first*, in the same transaction as the flow call that writes the card to the outbox. If the insert meets
the unique constraint, someone else already owns the send and this transaction backs out; if the flow
fails, the key vanishes with its outbox rows and the next tick tries again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.status import SendStatus
from scheduler.cadence import Due
from storage.models import ScheduledSend

Key = tuple[str, int, str]
CHUNK = 400
INSERT_ROWS = 1000
"""Keys per ``UPDATE … IN`` of ``note``."""
LEDGER = ScheduledSend.__table__


class Taken(Exception):
    """The key is already in the ledger (or the snooze already woke): another fire did this send."""


async def existing_keys(session: AsyncSession, keys: Iterable[Key]) -> set[Key]:
    """Which of ``keys`` are already recorded, in a few queries (grouped by flow, chunked by period)."""
    by_flow: dict[str, set[str]] = {}
    for flow, _, period in keys:
        by_flow.setdefault(flow, set()).add(period)
    found: set[Key] = set()
    for flow, periods in by_flow.items():
        ordered = sorted(periods)
        for start in range(0, len(ordered), CHUNK):
            rows = await session.execute(
                select(ScheduledSend.flow, ScheduledSend.person_id, ScheduledSend.period).where(
                    ScheduledSend.flow == flow, ScheduledSend.period.in_(ordered[start : start + CHUNK])
                )
            )
            found.update((f, int(p), per) for f, p, per in rows.all())
    return found


async def claim(
    session: AsyncSession,
    due: Due,
    *,
    now: datetime,
    status: SendStatus = SendStatus.SENT,
    reason: str | None = None,
) -> ScheduledSend:
    """Insert the key inside the caller's transaction; ``Taken`` if it is already there."""
    row = ScheduledSend(
        flow=due.flow,
        person_id=due.person_id,
        period=due.period,
        status=status,
        due_at=due.at,
        reason=reason,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise Taken(due.key) from None
    return row


async def snooze(
    session: AsyncSession, flow: str, person_id: int, record_id: int, *, until: datetime, now: datetime
) -> tuple[datetime, bool]:
    """Record a snooze (``flow`` is ``snooze.checkin`` / ``snooze.review``, the period the record id) due at
    ``until``; the unique key makes it one per prompt. Returns the wake-up time and whether it is new."""
    row = ScheduledSend(
        flow=flow,
        person_id=person_id,
        period=str(record_id),
        status=SendStatus.SNOOZED,
        due_at=until,
        reason="snoozed by the person",
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        earlier = await session.scalar(
            select(ScheduledSend.due_at).where(
                ScheduledSend.flow == flow,
                ScheduledSend.person_id == person_id,
                ScheduledSend.period == str(record_id),
            )
        )
        return (earlier or until), False
    return until, True


async def record(
    factory: async_sessionmaker[AsyncSession],
    dues: Sequence[Due],
    *,
    status: SendStatus,
    reasons: Sequence[str | None],
    now: datetime,
) -> int:
    """Record items that will not be sent (missed, skipped), ignoring keys someone else recorded first."""
    if not dues:
        return 0
    rows = [
        _row(due, status=status, reason=reason, now=now) for due, reason in zip(dues, reasons, strict=True)
    ]
    async with factory() as session, session.begin():
        stmt = _insert(session).returning(LEDGER.c.id)
        return len((await session.execute(stmt, rows)).all())


async def claim_many(session: AsyncSession, dues: Sequence[Due], *, now: datetime) -> set[Key]:
    """``claim`` for a batch, inside the caller's transaction: insert every key that is not there yet and
    return the keys this transaction inserted; the rest belong to another fire (a second replica, a
    retried tick) and must not be sent. Keys go in in one order (person, flow, period), so two replicas
    claiming overlapping chunks wait for each other instead of deadlocking. One statement compiled once,
    the rows sent as multi-row batches (SQLAlchemy's "insertmanyvalues")."""
    if not dues:
        return set()
    rows = sorted(
        (_row(d, status=SendStatus.SENT, reason=None, now=now) for d in dues),
        key=lambda r: (r["person_id"], r["flow"], r["period"]),
    )
    stmt = _insert(session).returning(LEDGER.c.flow, LEDGER.c.person_id, LEDGER.c.period)
    return {(f, int(p), per) for f, p, per in (await session.execute(stmt, rows)).all()}


async def note(session: AsyncSession, keys: Iterable[Key], reason: str) -> None:
    """Set the note of keys claimed in this transaction (a batch that had nothing to send to some)."""
    by_group: dict[tuple[str, str], list[int]] = {}
    for flow, person_id, period in keys:
        by_group.setdefault((flow, period), []).append(person_id)
    for (flow, period), ids in by_group.items():
        for start in range(0, len(ids), INSERT_ROWS):
            await session.execute(
                update(ScheduledSend)
                .where(
                    ScheduledSend.flow == flow,
                    ScheduledSend.period == period,
                    ScheduledSend.person_id.in_(ids[start : start + INSERT_ROWS]),
                )
                .values(reason=reason)
                .execution_options(synchronize_session=False)
            )


def _row(due: Due, *, status: SendStatus, reason: str | None, now: datetime) -> dict[str, Any]:
    return {
        "flow": due.flow,
        "person_id": due.person_id,
        "period": due.period,
        "status": status,
        "due_at": due.at,
        "reason": reason,
        "created_at": now,
    }


def _insert(session: AsyncSession) -> Any:
    """``INSERT … ON CONFLICT (flow, person_id, period) DO NOTHING`` in the dialect's own words, on the
    table rather than the mapped class: plain rows in, no ORM bookkeeping per row."""
    make: Any = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return make(LEDGER).on_conflict_do_nothing(index_elements=["flow", "person_id", "period"])


async def wake(session: AsyncSession, row_id: int, *, status: SendStatus, reason: str | None = None) -> None:
    """Compare-and-set a snoozed row to its outcome; ``Taken`` if another fire already did."""
    result: Any = await session.execute(
        update(ScheduledSend)
        .where(ScheduledSend.id == row_id, ScheduledSend.status == SendStatus.SNOOZED)
        .values(status=status, reason=reason)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise Taken(row_id)


async def snoozes_for(session: AsyncSession, flow: str, ref_ids: Iterable[int]) -> dict[int, ScheduledSend]:
    """Snooze rows (any status) for these records, by record id."""
    ids = sorted({str(i) for i in ref_ids})
    out: dict[int, ScheduledSend] = {}
    for start in range(0, len(ids), CHUNK):
        rows = await session.scalars(
            select(ScheduledSend).where(
                ScheduledSend.flow == flow, ScheduledSend.period.in_(ids[start : start + CHUNK])
            )
        )
        for row in rows:
            out[int(row.period)] = row
    return out


def key_filter(keys: Iterable[Key]) -> Any:
    """A WHERE clause matching exactly these keys (for small sets: the plan, tests)."""
    return or_(
        *(
            and_(ScheduledSend.flow == f, ScheduledSend.person_id == p, ScheduledSend.period == per)
            for f, p, per in keys
        )
    )
