"""The ``inbound_events`` rows of a group of clicks, as Core statements on the group's connection.

A group claims all its events in one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` and records all the answers
in one executemany ``UPDATE`` by primary key: two statements however large the group, where one event at a
time costs two per event. Rows are claimed in key order, so two transactions claiming overlapping groups (a
platform retry that reached another replica) wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.events import Event
from storage.models import InboundEvent

Key = tuple[str, str]
Answer = tuple[int, dict[str, Any], int | None]
"""(inbound row id, stored answer, person id of the sender)."""

_CLAIM_PG, _CLAIM_SQLITE = (
    insert(InboundEvent)
    .values(answer={})
    .on_conflict_do_nothing(index_elements=["platform", "event_id"])
    .returning(InboundEvent.platform, InboundEvent.event_id, InboundEvent.id)
    for insert in (pg_insert, sqlite_insert)
)
_ANSWER = (
    update(InboundEvent)
    .where(InboundEvent.id == bindparam("row_id"))
    .values(
        answer=bindparam("new_answer", type_=InboundEvent.answer.type),
        person_id=bindparam("new_person_id", type_=InboundEvent.person_id.type),
    )
)


async def claim_many(conn: AsyncConnection, events: Sequence[Event], now: datetime) -> dict[Key, int]:
    """Insert every event not yet recorded; (platform, event id) → new row id for those claimed here. An
    event absent from the result was already recorded (a duplicate: answer what was stored).

    An executemany of one constant statement, which SQLAlchemy sends as one multi-row ``INSERT … RETURNING``
    ("insertmanyvalues"): a ``VALUES`` list built per group would be compiled afresh every time."""
    rows: dict[Key, dict[str, Any]] = {}
    for event in events:
        rows.setdefault(
            (event.platform, event.event_id),
            {"platform": event.platform, "event_id": event.event_id, "kind": event.kind, "received_at": now},
        )
    stmt = _CLAIM_PG if conn.dialect.name == "postgresql" else _CLAIM_SQLITE
    result = await conn.execute(stmt, [rows[key] for key in sorted(rows)])
    return {(platform, event_id): row_id for platform, event_id, row_id in result.all()}


async def record_answers(conn: AsyncConnection, answers: list[Answer]) -> None:
    """The answer and the resolved sender of every claimed row, in one executemany."""
    if answers:
        rows = [{"row_id": i, "new_answer": answer, "new_person_id": person} for i, answer, person in answers]
        await conn.execute(_ANSWER, rows)


async def release(conn: AsyncConnection, row_ids: list[int]) -> None:
    """Give back claims of events this transaction will not process after all (they go back to the queue)."""
    if row_ids:
        await conn.execute(delete(InboundEvent).where(InboundEvent.id.in_(row_ids)))
