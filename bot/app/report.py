"""``perfloop report --cycle 2026-Q1 --format csv|json``: the digest's metrics and the method's participation
figures for a whole cycle, for the company, per department and per person, with the company and the
departments again for the period before (as many days, ending where the cycle starts).

The figures come from the same SQL aggregations as the digest (``storage.queries.metrics``), grouped by
department and by person in the database; Python only joins the groups to names and writes the rows.
The cycle's ``starts_on`` … ``ends_on`` (inclusive) are read as calendar days in
``[schedule] default_timezone``; workdays (daily-active rate) are the scheduler's calendar, and only those
whose inbound events are still kept (``[retention] inbound_events_days``) count, so an old cycle has no
daily-active rate. Every figure is defined in ``docs/metrics.md``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bot.core.localtime import zone
from bot.core.status import CycleStatus
from scheduler.calendar import calendar_from_settings, is_workday
from storage.models import Cycle, Department, Person, Workspace
from storage.queries import metrics as m

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.app.service import Service

FORMATS = ("csv", "json")
COLUMNS = ("level", "id", "name", "department", "period")
FIGURES = (*m.Metrics().as_dict(), *m.Participation().as_dict())
CURRENT, PREVIOUS = "current", "previous"


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


def _figures(metrics: m.Metrics | None, participation: m.Participation | None) -> dict[str, Any]:
    return {**(metrics or m.Metrics()).as_dict(), **(participation or m.Participation()).as_dict()}


async def _period(
    session: AsyncSession, scope: m.Scope, window: m.Window, group: m.Group, options: dict[str, Any]
) -> dict[Any, dict[str, Any]]:
    """Every figure of ``window`` per group key (key 0 when ``group`` is None)."""
    if group is None:
        metrics = {0: await m.metrics(session, scope, window)}
        more = {0: await m.participation(session, scope, window, **options)}
    else:
        metrics = await m.metrics_by(session, scope, window, group)
        more = await m.participation_by(session, scope, window, group, **options)
    return {key: _figures(metrics.get(key), more.get(key)) for key in {*metrics, *more}}


async def report_data(service: Service, *, cycle: str | None) -> dict[str, Any]:
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
    async with service.factory() as session:
        workspace = await session.get(Workspace, chosen.workspace_id)
        company = (await _period(session, scope, window, None, options))[0]
        per_dept = await _period(session, scope, window, "department", options)
        per_person = await _period(session, scope, window, "person", options)
        company_before = (await _period(session, scope, before, None, options))[0]
        per_dept_before = await _period(session, scope, before, "department", options)
        dept_names = {
            r[0]: r[1]
            for r in await session.execute(
                select(Department.id, Department.name).where(Department.workspace_id == chosen.workspace_id)
            )
        }
        people = list(
            await session.execute(
                select(Person.id, Person.name, Person.department_id, Person.active)
                .where(Person.workspace_id == chosen.workspace_id)
                .order_by(Person.id)
            )
        )

    def departments(grouped: dict[Any, dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "department_id": dept_id,
                "department": dept_names.get(dept_id, "") if dept_id is not None else "",
                **figures,
            }
            for dept_id, figures in sorted(grouped.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
        ]

    empty = _figures(None, None)
    persons = [
        {
            "person_id": pid,
            "name": name,
            "department": dept_names.get(dept_id, "") if dept_id else "",
            **per_person.get(pid, empty),
        }
        for pid, name, dept_id, active in people
        if active or pid in per_person
    ]
    return {
        "cycle": chosen.code,
        "workspace": workspace.name if workspace else "",
        "from": chosen.starts_on.isoformat(),
        "to": chosen.ends_on.isoformat(),
        "timezone": tz.key,
        "company": company,
        "departments": departments(per_dept),
        "people": persons,
        "previous": {
            "from": before.first_day.isoformat(),
            "to": (before.end_day - timedelta(days=1)).isoformat(),
            "company": company_before,
            "departments": departments(per_dept_before),
        },
    }


def _csv(data: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*COLUMNS, *FIGURES])

    def row(level: str, ident: Any, name: str, dept: str, period: str, figures: dict[str, Any]) -> None:
        writer.writerow(
            [
                level,
                "" if ident is None else ident,
                name,
                dept,
                period,
                *("" if figures[k] is None else figures[k] for k in FIGURES),
            ]
        )

    previous = data["previous"]
    row("company", None, data["workspace"], "", CURRENT, data["company"])
    row("company", None, data["workspace"], "", PREVIOUS, previous["company"])
    earlier = {d["department_id"]: d for d in previous["departments"]}
    for d in data["departments"]:
        row("department", d["department_id"], d["department"], d["department"], CURRENT, d)
        if d["department_id"] in earlier:
            before = earlier.pop(d["department_id"])
            row("department", d["department_id"], d["department"], d["department"], PREVIOUS, before)
    for d in earlier.values():
        row("department", d["department_id"], d["department"], d["department"], PREVIOUS, d)
    for p in data["people"]:
        row("person", p["person_id"], p["name"], p["department"], CURRENT, p)
    return out.getvalue()


async def build_report(service: Service, *, cycle: str | None, fmt: str) -> str:
    """The report as text in ``fmt`` ("csv" or "json"); raises ``ReportError`` (a ValueError) on bad input."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown format {fmt!r}: use csv or json")
    data = await report_data(service, cycle=cycle)
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    return _csv(data)
