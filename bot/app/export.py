"""``perfloop export TABLE --format csv|json``: every table is exportable, streamed, never loaded whole."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import EXPORTABLE_TABLES


class ExportError(ValueError):
    """An unknown table or format; the message names the valid choices."""


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


async def rows(factory: async_sessionmaker[AsyncSession], table: str) -> AsyncIterator[dict[str, Any]]:
    model = EXPORTABLE_TABLES.get(table)
    if model is None:
        raise ExportError(f"unknown table {table!r}; choose one of: {', '.join(sorted(EXPORTABLE_TABLES))}")
    columns = [c.name for c in model.__table__.columns]
    async with factory() as session:
        result = await session.stream(select(model.__table__).order_by(model.__table__.c.id))
        async for row in result.mappings():
            yield {c: row[c] for c in columns}


async def export_table(factory: async_sessionmaker[AsyncSession], table: str, fmt: str, out: TextIO) -> int:
    if fmt not in ("csv", "json"):
        raise ExportError("format must be csv or json")
    model = EXPORTABLE_TABLES.get(table)
    if model is None:
        raise ExportError(f"unknown table {table!r}; choose one of: {', '.join(sorted(EXPORTABLE_TABLES))}")
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
