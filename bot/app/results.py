"""``perfloop results export --cycle C --format csv|xlsx``: a cycle's results for payroll and HRIS import.

One row per person, columns in ``COLUMNS`` (English snake_case, documented in docs/results-export.md; a
column is only ever added at the end, never renamed or moved). Only released grades are final, so by
default only people with a released grade are exported; ``include_unreleased`` adds everyone else in the
cycle with their grade's status (``proposed``, ``locked``) or ``ungraded``.

Rows are streamed: ``result_rows`` reads one page of people at a time (``storage.queries.results``) and
yields them before reading the next, and both writers write as they go (CSV line by line, XLSX through
openpyxl's write-only mode), so a cycle of 50,000 people never sits in memory. The grade → coefficient
table (``[results] coefficients``) is checked against the cycle's grades before the first row is written:
an export never stops halfway with a grade it cannot map.

The functions take a session factory and settings, not the CLI's arguments, so a console can offer the
same download.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.config import Settings
from bot.core.status import GradeStatus
from storage.models import Cycle, Workspace
from storage.queries import goal_versions as gv
from storage.queries import results as rq

COLUMNS: tuple[str, ...] = (
    "cycle",
    "person_id",
    "platform_user_id",
    "name",
    "active",
    "department",
    "manager",
    "manager_platform_user_id",
    "grade",
    "grade_status",
    "released_at",
    "corrected_at",
    "score",
    "coefficient",
    "promotion",
    "high_potential",
    "appeal_status",
    "goal_version",
)
"""The export's columns, in order. Stable: HRIS import mappings are built on these names."""

FORMATS = ("csv", "xlsx")
PAGE_SIZE = 1000
UNGRADED = "ungraded"
"""``grade_status`` of a person in the cycle without any grade (only with ``include_unreleased``)."""
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""A CSV text cell starting with one of these would run as a formula when the file is opened in Excel."""


class ResultsError(ValueError):
    """Bad input for the export (unknown cycle or format, a grade without a coefficient): one line for the
    operator."""


@dataclass(frozen=True)
class Chosen:
    cycle: Cycle
    platform: str


async def find_cycle(session: AsyncSession, code: str, platform: str | None = None) -> Chosen:
    """The cycle with this code; ``platform`` picks the workspace when several have one."""
    workspaces: list[int] | None = None
    names = {ws.id: ws.platform for ws in await session.scalars(select(Workspace).order_by(Workspace.id))}
    if platform is not None:
        workspaces = [wid for wid, p in names.items() if p == platform]
        if not workspaces:
            raise ResultsError(f"no workspace for platform {platform!r}")
    found = await rq.cycles_by_code(session, code, workspaces)
    if not found:
        known = await rq.recent_cycle_codes(session, workspaces, 10)
        hint = f"; recent cycles: {', '.join(known)}" if known else "; there are no cycles yet"
        raise ResultsError(f"no cycle with code {code!r}{hint}")
    if len(found) > 1:
        raise ResultsError(f"cycle {code!r} exists in {len(found)} workspaces; pass --platform")
    return Chosen(found[0], names.get(found[0].workspace_id, ""))


def coefficients(settings: Settings) -> dict[str, float]:
    table = settings.results.table(settings.feedback.grade_scale)
    if table is None:
        raise ResultsError(
            "no pay/bonus coefficients for grade scale "
            f"{', '.join(settings.feedback.grade_scale)}: set [results] coefficients"
        )
    return table


async def check_grades(session: AsyncSession, cycle: Cycle, table: dict[str, float]) -> None:
    missing = [g for g in await rq.cycle_grade_values(session, cycle.id) if g not in table]
    if missing:
        raise ResultsError(
            f"cycle {cycle.code!r} has grade {', '.join(missing)} without a coefficient in "
            "[results] coefficients; add it (or correct the grades) and export again"
        )


async def result_rows(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    cycle: Cycle,
    *,
    include_unreleased: bool = False,
    page_size: int = PAGE_SIZE,
) -> AsyncGenerator[dict[str, Any], None]:
    """Every row of the export as typed values (``COLUMNS`` keys), page by page in one session. Raises
    ``ResultsError`` before the first row when a grade of the cycle has no coefficient."""
    table = coefficients(settings)
    statuses = None if include_unreleased else (GradeStatus.RELEASED,)
    async with factory() as session:
        await check_grades(session, cycle, table)
        after = 0
        while True:
            page = await rq.result_page(
                session, cycle.id, after=after, limit=page_size, grade_statuses=statuses
            )
            versions = await gv.versions_in_force(
                session, cycle.id, [r.person_id for r in page], _goals_on(cycle)
            )
            for row in page:
                yield _values(cycle, row, table, versions.get(row.person_id))
            if len(page) < page_size:
                return
            after = page[-1].person_id


def _goals_on(cycle: Cycle) -> date | datetime:
    """The day whose goals the export names: the cycle's last day, or now for a cycle without one."""
    return cycle.ends_on if cycle.ends_on is not None else datetime.now(UTC)


def _values(
    cycle: Cycle, row: rq.ResultRow, table: dict[str, float], goal_version: int | None
) -> dict[str, Any]:
    return {
        "cycle": cycle.code,
        "person_id": row.person_id,
        "platform_user_id": row.platform_user_id,
        "name": row.name,
        "active": row.active,
        "department": row.department,
        "manager": row.manager,
        "manager_platform_user_id": row.manager_platform_user_id,
        "grade": row.grade,
        "grade_status": row.grade_status or UNGRADED,
        "released_at": row.released_at,
        "corrected_at": row.corrected_at,
        "score": row.score,
        "coefficient": table.get(row.grade) if row.grade is not None else None,
        "promotion": rq.PROMOTION in row.flags,
        "high_potential": rq.HIGH_POTENTIAL in row.flags,
        "appeal_status": row.appeal_status,
        "goal_version": goal_version,
    }


def number_text(value: float) -> str:
    """``1.2`` → ``1.2``, ``1.0`` → ``1``, ``0.0`` → ``0``: the shortest exact decimal, never ``1e-05``."""
    text = format(Decimal(repr(value)).normalize(), "f")
    return "0" if text in ("-0", "") else text


def csv_cell(value: Any) -> str:
    """The CSV text of one value: empty for none, ``true``/``false``, ISO 8601 UTC times, plain numbers;
    text that Excel would run as a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def xlsx_cell(value: Any) -> Any:
    """XLSX values: numbers and booleans as such, times as the same ISO 8601 text as the CSV (Excel keeps no
    zone), text without the control characters XLSX cannot hold."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))


async def write_csv(rows: AsyncIterator[dict[str, Any]], out: IO[bytes]) -> int:
    """UTF-8 with a byte-order mark (Excel then reads Chinese names right), CRLF line ends."""
    out.write("\ufeff".encode())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    async for row in rows:
        writer.writerow([csv_cell(row[c]) for c in COLUMNS])
        count += 1
        if buffer.tell() > 64 * 1024:
            out.write(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
    out.write(buffer.getvalue().encode("utf-8"))
    return count


async def write_xlsx(rows: AsyncIterator[dict[str, Any]], out: IO[bytes], *, title: str = "results") -> int:
    """One sheet, header row first. Text cells are typed as text, so a name starting with "=" stays text."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    sheet.append(list(COLUMNS))
    count = 0
    async for row in rows:
        sheet.append([_xlsx_text(sheet, xlsx_cell(row[c])) for c in COLUMNS])
        count += 1
    book.save(out)
    return count


def _xlsx_text(sheet: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell


async def export_results(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    cycle: str,
    fmt: str,
    out: IO[bytes],
    include_unreleased: bool = False,
    platform: str | None = None,
    page_size: int = PAGE_SIZE,
) -> int:
    """Write cycle ``cycle``'s results to ``out`` as ``fmt``; returns the number of rows. Every refusal
    (``ResultsError``) comes before the first byte is written."""
    if fmt not in FORMATS:
        raise ResultsError(f"unknown format {fmt!r}; choose {' or '.join(FORMATS)}")
    async with factory() as session:
        chosen = await find_cycle(session, cycle, platform)
    source = result_rows(
        factory, settings, chosen.cycle, include_unreleased=include_unreleased, page_size=page_size
    )
    async with aclosing(source) as rows:
        first = await anext(rows, None)
        write = write_csv if fmt == "csv" else write_xlsx
        return await write(_chain(first, rows), out)


async def _chain(
    first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    """The rows again, the first one already read (reading it ran every check of ``result_rows``)."""
    if first is None:
        return
    yield first
    async for row in rest:
        yield row
