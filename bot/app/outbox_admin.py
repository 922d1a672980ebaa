"""Operator view of the outbox (issue 16 #11): list rows that need a look, re-queue dead and in-doubt ones.

Dead letters and ``unknown`` rows (a send in doubt past the platform's dedupe window, see bot/app/outbox.py)
are counted in ``/metrics``; without this module re-queuing them took SQL against the live table.

A retry is the operator's decision to send again, so it resets what the automatic path uses to give up:
``attempts`` back to 0 (the cause was fixed, so the row gets the full budget again, not one last try) and
``attempt_started_at`` cleared (otherwise an ``unknown`` row would at once be found in doubt again). It
keeps ``last_error`` so the list still says why the row had stopped, until the next attempt overwrites it.
For an ``unknown`` row the operator accepts that the person may see the card twice if the first send did
land; the idempotency key is unchanged, so a platform that still remembers it shows nothing new.

The UPDATE re-checks the status in its WHERE clause, so a row that changed meanwhile is left alone and
reported, never re-queued twice or taken from under a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Update, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import OutboxMessage

RETRYABLE = ("dead", "unknown")
"""Statuses an operator may re-queue; the others are either done or still the workers' business."""
OPEN = ("pending", "sending", "dead", "unknown")
"""What ``perfloop outbox list`` shows by default: every row not (yet) sent."""
ERROR_WIDTH = 100


class OutboxAdminError(Exception):
    """A request the operator can fix (unknown id, a row that is not dead): one line, non-zero exit."""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    platform: str
    op: str
    status: str
    recipients: int
    attempts: int
    last_error: str
    created_at: datetime


async def list_rows(
    factory: async_sessionmaker[AsyncSession], *, statuses: Sequence[str], limit: int
) -> list[OutboxRow]:
    """Oldest first: the longest-waiting message is the one someone is missing the most."""
    if limit < 1:
        raise OutboxAdminError("--limit must be at least 1")
    async with factory() as session:
        found = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status.in_(list(statuses)))
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
            .limit(limit)
        )
        return [
            OutboxRow(
                id=r.id,
                platform=r.platform,
                op=r.op,
                status=r.status,
                recipients=len(r.recipients or []),
                attempts=r.attempts,
                last_error=_one_line(r.last_error or ""),
                created_at=r.created_at,
            )
            for r in found
        ]


def _one_line(text: str) -> str:
    """``last_error`` is scrubbed of secrets where it is written (adapters never put tokens in errors); here
    it only has to fit a terminal line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= ERROR_WIDTH else flat[: ERROR_WIDTH - 1] + "…"


def age(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def format_rows(rows: Sequence[OutboxRow], now: datetime) -> str:
    header = ("ID", "PLATFORM", "OP", "STATUS", "RECIPIENTS", "ATTEMPTS", "AGE", "LAST ERROR")
    table = [header] + [
        (
            str(r.id),
            r.platform,
            r.op,
            r.status,
            str(r.recipients),
            str(r.attempts),
            age(r.created_at, now),
            r.last_error,
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)) + "  " + line[-1]
        for line in table
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


async def retry_one(factory: async_sessionmaker[AsyncSession], row_id: int, now: datetime) -> str:
    """Re-queue one dead or unknown row; the status it had is returned for the message."""
    async with factory() as session, session.begin():
        row = await session.get(OutboxMessage, row_id)
        if row is None:
            raise OutboxAdminError(f"no outbox row with id {row_id}")
        if row.status not in RETRYABLE:
            raise OutboxAdminError(
                f"outbox row {row_id} is {row.status}; only dead or unknown rows can be retried"
            )
        was = row.status
        done = await session.execute(
            _requeue(now).where(OutboxMessage.id == row_id, OutboxMessage.status == was)
        )
        if not getattr(done, "rowcount", 0):
            raise OutboxAdminError(
                f"outbox row {row_id} changed meanwhile; look again with `perfloop outbox list`"
            )
    return was


async def retry_all(factory: async_sessionmaker[AsyncSession], status: str, now: datetime) -> list[int]:
    """Re-queue every row in ``status`` (dead or unknown); returns their ids."""
    if status not in RETRYABLE:
        raise OutboxAdminError(f"only dead or unknown rows can be retried, not {status}")
    async with factory() as session, session.begin():
        ids = list(
            await session.scalars(
                _requeue(now).where(OutboxMessage.status == status).returning(OutboxMessage.id)
            )
        )
    return sorted(ids)


def _requeue(now: datetime) -> Update:
    return (
        update(OutboxMessage)
        .values(
            status="pending",
            next_attempt_at=now,
            attempts=0,
            claimed_by=None,
            claimed_until=None,
            attempt_started_at=None,
        )
        .execution_options(synchronize_session=False)
    )
