"""``perfloop report --cycle 2026-Q1 --format csv|json``: the digest's metrics for a whole cycle, for the
company, per department and per person.

The figures come from the same SQL aggregations as the digest (``storage.queries.metrics``), grouped by
department and by person in the database; Python only joins the groups to names and writes the rows.
The cycle's ``starts_on`` … ``ends_on`` (inclusive) are read as calendar days in
``[schedule] default_timezone``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bot.core.localtime import zone
from bot.core.status import CycleStatus
from storage.models import Cycle, Department, Person, Workspace
from storage.queries import metrics as m

if TYPE_CHECKING:
    from bot.app.service import Service

FORMATS = ("csv", "json")
COLUMNS = ("level", "id", "name", "department")
FIGURES = tuple(m.Metrics().as_dict())


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


async def report_data(service: Service, *, cycle: str | None) -> dict[str, Any]:
    chosen = await _pick_cycle(service, cycle)
    if chosen.starts_on is None or chosen.ends_on is None:
        raise ReportError(f"cycle {chosen.code!r} has no start/end dates")
    tz = zone(service.settings.schedule.default_timezone)
    window = m.Window(chosen.starts_on, chosen.ends_on + timedelta(days=1), tz)
    scope = m.Scope(chosen.workspace_id)
    async with service.factory() as session:
        workspace = await session.get(Workspace, chosen.workspace_id)
        company = await m.metrics(session, scope, window)
        per_dept = await m.metrics_by(session, scope, window, "department")
        per_person = await m.metrics_by(session, scope, window, "person")
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
    empty = m.Metrics()
    departments = [
        {
            "department_id": dept_id,
            "department": dept_names.get(dept_id, "") if dept_id is not None else "",
            **figures.as_dict(),
        }
        for dept_id, figures in sorted(per_dept.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    ]
    persons = [
        {
            "person_id": pid,
            "name": name,
            "department": dept_names.get(dept_id, "") if dept_id else "",
            **per_person.get(pid, empty).as_dict(),
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
        "company": company.as_dict(),
        "departments": departments,
        "people": persons,
    }


def _csv(data: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*COLUMNS, *FIGURES])

    def row(level: str, ident: Any, name: str, dept: str, figures: dict[str, Any]) -> None:
        writer.writerow(
            [
                level,
                "" if ident is None else ident,
                name,
                dept,
                *("" if figures[k] is None else figures[k] for k in FIGURES),
            ]
        )

    row("company", None, data["workspace"], "", data["company"])
    for d in data["departments"]:
        row("department", d["department_id"], d["department"], d["department"], d)
    for p in data["people"]:
        row("person", p["person_id"], p["name"], p["department"], p)
    return out.getvalue()


async def build_report(service: Service, *, cycle: str | None, fmt: str) -> str:
    """The report as text in ``fmt`` ("csv" or "json"); raises ``ReportError`` (a ValueError) on bad input."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown format {fmt!r}: use csv or json")
    data = await report_data(service, cycle=cycle)
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    return _csv(data)
