"""``perfloop report --cycle 2026-Q1 --format csv|json``: the digest's metrics and the method's participation
figures for a whole cycle, for the company, per department and per person, with the company and the
departments again for the period before (as many days, ending where the cycle starts).

The figures come from the same SQL aggregations as the digest (``storage.queries.metrics``), grouped by
department and by person in the database; Python only joins the groups to names and writes the rows.
The cycle's ``starts_on`` … ``ends_on`` (inclusive) are read as calendar days in
``[schedule] default_timezone``; workdays (daily-active rate) are the scheduler's calendar, and only those
whose inbound events are still kept (``[retention] inbound_events_days``) count, so an old cycle has no
daily-active rate. The goal tree's figures (alignment rate, carry-over share: issue 17) belong to the cycle,
not to a window, so they fill the current rows and stay empty in the previous period's. Every figure is
defined in ``docs/metrics.md``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select, text

from bot.core.localtime import zone
from bot.core.status import CycleStatus
from handlers.goals.api import CycleGoalFigures, goal_figures_of
from scheduler.calendar import calendar_from_settings, is_workday
from storage.models import Cycle, Department, Person, Workspace
from storage.queries import metrics as m

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.app.service import Service

FORMATS = ("csv", "json")
COLUMNS = ("level", "id", "name", "department", "period")
GOAL_FIGURES = tuple(m.GoalFigures().as_dict())
"""The goal tree's figures (issue 17), for the report's cycle only: empty in the previous period's rows."""
FIGURES = (*m.Metrics().as_dict(), *m.Participation().as_dict(), *GOAL_FIGURES)
"""The figure columns: each part's ``as_dict`` keys, in this order (person rows are written from the three
parts' values directly)."""
CURRENT, PREVIOUS = "current", "previous"
STREAM_ROWS = 2000
"""CSV rows per piece of ``stream_report``."""
REPORT_WORK_MEM = "64MB"
EVERY_LEVEL = m.Levels(("person", "department", "company"))
"""The cycle's figures: per person, per department and for the company, from one scan per statement."""
UPPER_LEVELS = m.Levels(("department", "company"))
"""The period before: departments and the company only."""
T = TypeVar("T")


class ReportError(ValueError):
    """Bad input for the report (unknown cycle, unknown format); the message is meant for the operator."""


async def _pick_cycle(service: Service, code: str | None) -> Cycle:
    async with service.factory() as session:
        if code is None:
            rows = list(
                await session.scalars(
                    select(Cycle)
                    .where(Cycle.status == CycleStatus.ACTIVE)
                    .order_by(Cycle.starts_on.desc(), Cycle.id.desc())
                )
            )
            if not rows:
                raise ReportError("no active cycle: pass --cycle CODE (e.g. 2026-Q1)")
            return rows[0]
        rows = list(await session.scalars(select(Cycle).where(Cycle.code == code)))
    if not rows:
        raise ReportError(f"no cycle with code {code!r}")
    if len(rows) > 1:
        raise ReportError(
            f"cycle {code!r} exists in {len(rows)} workspaces; this report covers one workspace"
        )
    return rows[0]


def _workdays(service: Service, first: date, end: date) -> frozenset[date]:
    calendar = calendar_from_settings(service.settings)
    days = (first + timedelta(days=i) for i in range((end - first).days))
    return frozenset(d for d in days if is_workday(calendar, d))


def _kept_since(service: Service) -> datetime | None:
    retention = service.settings.retention
    if not retention.enabled:
        return None
    return service.clock.now() - timedelta(days=retention.inbound_events_days)


def _figures(
    metrics: m.Metrics | None, participation: m.Participation | None, goals: m.GoalFigures | None = None
) -> dict[str, Any]:
    goal_figures = goals.as_dict() if goals is not None else dict.fromkeys(GOAL_FIGURES)
    return {
        **(metrics or m.Metrics()).as_dict(),
        **(participation or m.Participation()).as_dict(),
        **goal_figures,
    }


@dataclass
class _Gathered:
    """Everything a report reads, each part read on a connection of its own, all at once (``_gather``)."""

    cycle: Cycle
    workspace: str
    window: m.Window
    before: m.Window
    company: dict[str, Any]
    per_dept: dict[Any, dict[str, Any]]
    per_person: dict[Any, tuple[m.Metrics | None, m.Participation | None, m.GoalFigures]]
    """Per person: the figures as objects, turned into a row only when the row is written (100,000 merged
    dicts were most of the report's own time)."""
    company_before: dict[str, Any]
    per_dept_before: dict[Any, dict[str, Any]]
    dept_names: dict[int, str]
    people: list[tuple[int, str, int | None, bool]]


async def _gather(service: Service, cycle: str | None) -> _Gathered:
    chosen = await _pick_cycle(service, cycle)
    if chosen.starts_on is None or chosen.ends_on is None:
        raise ReportError(f"cycle {chosen.code!r} has no start/end dates")
    tz = zone(service.settings.schedule.default_timezone)
    window = m.Window(chosen.starts_on, chosen.ends_on + timedelta(days=1), tz)
    before = window.previous()
    options: dict[str, Any] = {
        "workdays": _workdays(service, before.first_day, window.end_day),
        "kept_since": _kept_since(service),
        "min_answers": service.settings.feedback.anonymity_threshold,
    }
    scope = m.Scope(chosen.workspace_id)
    now = service.clock.now()

    async def metrics_now(session: AsyncSession) -> dict[Any, m.Metrics]:
        return await m.metrics_by(session, scope, window, EVERY_LEVEL)

    async def participation_now(session: AsyncSession) -> dict[Any, m.Participation]:
        return await m.participation_by(session, scope, window, EVERY_LEVEL, **options)

    async def goals_now(session: AsyncSession) -> CycleGoalFigures:
        return await goal_figures_of(session, scope, chosen, now=now, group=EVERY_LEVEL)

    async def metrics_then(session: AsyncSession) -> dict[Any, m.Metrics]:
        return await m.metrics_by(session, scope, before, UPPER_LEVELS)

    async def participation_then(session: AsyncSession) -> dict[Any, m.Participation]:
        return await m.participation_by(session, scope, before, UPPER_LEVELS, **options)

    async def names(
        session: AsyncSession,
    ) -> tuple[str, dict[int, str], list[tuple[int, str, int | None, bool]]]:
        workspace = await session.get(Workspace, chosen.workspace_id)
        depts = {
            r[0]: r[1]
            for r in await session.execute(
                select(Department.id, Department.name).where(Department.workspace_id == chosen.workspace_id)
            )
        }
        people = [
            (int(r[0]), str(r[1]), r[2], bool(r[3]))
            for r in await session.execute(
                select(Person.id, Person.name, Person.department_id, Person.active)
                .where(Person.workspace_id == chosen.workspace_id)
                .order_by(Person.id)
            )
        ]
        return (workspace.name if workspace else "", depts, people)

    # Independent reads, each on its own connection: PostgreSQL works on them side by side (on several
    # cores) instead of one after another. SQLite takes one writer lock per transaction (``BEGIN
    # IMMEDIATE``), so there they go one after another rather than queue on the lock.
    reads = (
        _read(service, metrics_now),
        _read(service, participation_now),
        _read(service, goals_now),
        _read(service, metrics_then),
        _read(service, participation_then),
    )
    if service.engine.dialect.name == "postgresql":
        metrics, participation, goals, metrics_before, participation_before = await asyncio.gather(*reads)
    else:
        metrics, participation, goals, metrics_before, participation_before = [await r for r in reads]
    workspace, dept_names, people = await _read(service, names)
    none = m.GoalFigures(carry_base=None if goals.previous is None else 0)

    def level(
        level: m.Level,
        metrics: dict[Any, m.Metrics],
        more: dict[Any, m.Participation],
        goals: dict[Any, m.GoalFigures],
    ) -> dict[Any, tuple[m.Metrics | None, m.Participation | None, m.GoalFigures | None]]:
        keys = {k[1] for part in (metrics, more, goals) for k in part if k[0] == level}
        return {k: (metrics.get((level, k)), more.get((level, k)), goals.get((level, k), none)) for k in keys}

    now_by = {lv: level(lv, metrics, participation, goals.figures) for lv in EVERY_LEVEL.levels}
    then_by = {lv: level(lv, metrics_before, participation_before, {}) for lv in UPPER_LEVELS.levels}
    return _Gathered(
        cycle=chosen,
        workspace=workspace,
        window=window,
        before=before,
        company=_figures(*now_by["company"].get(0, (None, None, none))),
        per_dept={k: _figures(*f) for k, f in now_by["department"].items()},
        per_person={k: (f[0], f[1], f[2] or none) for k, f in now_by["person"].items()},
        company_before=_figures(*then_by["company"].get(0, (None, None, None))[:2]),
        per_dept_before={k: _figures(*f[:2]) for k, f in then_by["department"].items()},
        dept_names=dept_names,
        people=people,
    )


async def _read(service: Service, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """``fn`` in a session of its own. On PostgreSQL, for this transaction only: sorts and hashes may use
    ``REPORT_WORK_MEM`` (a report groups 100,000 people; the server's default ``work_mem`` sent that to
    disk), and no JIT compilation (the planner's cost for a year of rows passes the JIT threshold, and
    compiling took half a second per statement, more than most of them take to run)."""
    async with service.factory() as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
            await session.execute(text("SET LOCAL jit = off"))
        return await fn(session)


def _person_figures(
    figures: tuple[m.Metrics | None, m.Participation | None, m.GoalFigures] | None,
) -> dict[str, Any]:
    if figures is None:
        return _figures(None, None)
    return _figures(*figures)


async def report_data(service: Service, *, cycle: str | None) -> dict[str, Any]:
    got = await _gather(service, cycle)
    return _as_data(got, service)


def _as_data(got: _Gathered, service: Service) -> dict[str, Any]:
    dept_names = got.dept_names

    def departments(grouped: dict[Any, dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "department_id": dept_id,
                "department": dept_names.get(dept_id, "") if dept_id is not None else "",
                **figures,
            }
            for dept_id, figures in sorted(grouped.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
        ]

    persons = [
        {
            "person_id": pid,
            "name": name,
            "department": dept_names.get(dept_id, "") if dept_id else "",
            **_person_figures(got.per_person.get(pid)),
        }
        for pid, name, dept_id, active in got.people
        if active or pid in got.per_person
    ]
    chosen, before = got.cycle, got.before
    assert chosen.starts_on is not None and chosen.ends_on is not None
    return {
        "cycle": chosen.code,
        "workspace": got.workspace,
        "from": chosen.starts_on.isoformat(),
        "to": chosen.ends_on.isoformat(),
        "timezone": zone(service.settings.schedule.default_timezone).key,
        "company": got.company,
        "departments": departments(got.per_dept),
        "people": persons,
        "previous": {
            "from": before.first_day.isoformat(),
            "to": (before.end_day - timedelta(days=1)).isoformat(),
            "company": got.company_before,
            "departments": departments(got.per_dept_before),
        },
    }


def _cells(figures: dict[str, Any]) -> list[Any]:
    return ["" if figures[k] is None else figures[k] for k in FIGURES]


def _csv_rows(got: _Gathered) -> Iterator[list[Any]]:
    """The report's rows in order: company now and before, each department now and before, each person."""
    yield [*COLUMNS, *FIGURES]
    dept_names = got.dept_names

    def dept_name(dept_id: Any) -> str:
        return dept_names.get(dept_id, "") if dept_id is not None else ""

    yield ["company", "", got.workspace, "", CURRENT, *_cells(got.company)]
    yield ["company", "", got.workspace, "", PREVIOUS, *_cells(got.company_before)]
    earlier = dict(got.per_dept_before)
    for dept_id, figures in sorted(got.per_dept.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        name = dept_name(dept_id)
        yield ["department", "" if dept_id is None else dept_id, name, name, CURRENT, *_cells(figures)]
        if dept_id in earlier:
            before = earlier.pop(dept_id)
            yield ["department", "" if dept_id is None else dept_id, name, name, PREVIOUS, *_cells(before)]
    for dept_id, figures in sorted(earlier.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        name = dept_name(dept_id)
        yield ["department", "" if dept_id is None else dept_id, name, name, PREVIOUS, *_cells(figures)]
    empty = _cells(_figures(None, None))
    blank_metrics, blank_participation = m.Metrics(), m.Participation()
    for pid, name, dept_id, active in got.people:
        parts = got.per_person.get(pid)
        if parts is None:
            if active:
                yield ["person", pid, name, dept_name(dept_id) if dept_id else "", CURRENT, *empty]
            continue
        # The three parts' values in FIGURES order, straight into the row (csv writes None as ""): no
        # merged dict per person.
        metrics, participation, goals = parts
        yield [
            "person",
            pid,
            name,
            dept_name(dept_id) if dept_id else "",
            CURRENT,
            *(metrics or blank_metrics).as_dict().values(),
            *(participation or blank_participation).as_dict().values(),
            *goals.as_dict().values(),
        ]


async def stream_report(service: Service, *, cycle: str | None, fmt: str) -> AsyncIterator[str]:
    """The report as text in ``fmt`` ("csv" or "json"), in pieces as it is written: a caller writes each
    piece out at once (``perfloop report``) instead of holding the whole file. Raises ``ReportError`` (a
    ValueError) on bad input before the first piece."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown format {fmt!r}: use csv or json")
    got = await _gather(service, cycle)
    if fmt == "json":
        yield json.dumps(_as_data(got, service), ensure_ascii=False, indent=2) + "\n"
        return
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for n, row in enumerate(_csv_rows(got), start=1):
        writer.writerow(row)
        if n % STREAM_ROWS == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


async def build_report(service: Service, *, cycle: str | None, fmt: str) -> str:
    """The report as text in ``fmt`` ("csv" or "json"); raises ``ReportError`` (a ValueError) on bad input."""
    return "".join([piece async for piece in stream_report(service, cycle=cycle, fmt=fmt)])
