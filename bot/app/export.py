"""``perfloop export TABLE --format csv|json``: every table in ``EXPORTABLE_TABLES`` is exportable, streamed,
never loaded whole.

Some tables are left out on purpose. ``peer_feedback`` holds the rater's id next to the scores and example
they gave anonymously (issue 16 #3): exporting it, even once, would undo the anonymity the cards promise;
the person export carries the released aggregate instead. ``conversation_states`` holds half-finished chat
forms (an anonymous answer among them) and is transient. The other exportable tables are kept free of any
rater↔answer link (tests/proof/test_peer_anonymity.py exports every one of them after a peer round)."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import EXPORTABLE_TABLES, Base


class ExportError(ValueError):
    """An unknown table or format; the message names the valid choices."""


NOT_EXPORTED = {
    "peer_feedback": "peer_feedback is not exportable: it links raters to anonymous answers; "
    "`perfloop person-export` carries the released aggregate",
}
"""Tables refused with a reason rather than as unknown."""


def _model(table: str) -> type[Base]:
    model = EXPORTABLE_TABLES.get(table)
    if model is None:
        if table in NOT_EXPORTED:
            raise ExportError(NOT_EXPORTED[table])
        raise ExportError(f"unknown table {table!r}; choose one of: {', '.join(sorted(EXPORTABLE_TABLES))}")
    return model


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


async def rows(factory: async_sessionmaker[AsyncSession], table: str) -> AsyncIterator[dict[str, Any]]:
    model = _model(table)
    columns = [c.name for c in model.__table__.columns]
    async with factory() as session:
        result = await session.stream(select(model.__table__).order_by(model.__table__.c.id))
        async for row in result.mappings():
            yield {c: row[c] for c in columns}


async def export_table(factory: async_sessionmaker[AsyncSession], table: str, fmt: str, out: TextIO) -> int:
    if fmt not in ("csv", "json"):
        raise ExportError("format must be csv or json")
    model = _model(table)
    columns = [c.name for c in model.__table__.columns]
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        async for row in rows(factory, table):
            writer.writerow({k: _cell(v) for k, v in row.items()})
            count += 1
    else:
        out.write("[")
        async for row in rows(factory, table):
            out.write(
                ("," if count else "")
                + "\n"
                + json.dumps({k: _cell(v) for k, v in row.items()}, ensure_ascii=False)
            )
            count += 1
        out.write("\n]\n")
    return count
