"""The check-in wave: everyone whose check-in falls due at one moment (100,000 people at 16:00 in one zone),
opened a chunk at a time — the scheduler's batch entry for ``Job.OPEN_CHECKIN``.

Per person the outcome is exactly ``checkin.open_checkin``'s (the same row, card, outbox keys, audit line
and quiet-hours hold; a test compares the two), but for a whole chunk in a few statements:

- the check-ins go in as one ``INSERT … ON CONFLICT (person_id, period) DO NOTHING RETURNING`` (the unique
  index decides, whatever the planner thinks of a period that had no rows when the table was last
  analysed): one that already exists (answered early with ``/checkin``, or opened by another fire) is left
  alone and gets no second card. On PostgreSQL such a conflict uses up a sequence value, so ids may skip
  one where the one-by-one path would not;
- each person's current cycle, goals and key results are read for the chunk at once, and their lines are
  built as ``goal_lines`` builds them;
- cards, outbox rows and audit rows go through the ``Batch`` (bulk inserts, quiet hours applied).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.batch import Batch
from bot.core.schedule import BatchEntry, Job, Owed, PeriodArgs, ScheduleEntry
from bot.core.status import CheckInStatus, KrValueSource
from cards import checkin as cc
from handlers.checkin.checkin import employee_key
from handlers.goals.api import FINAL_CYCLE, facts_of, source_readings
from storage.models import CheckIn, Cycle, Goal
from storage.queries import kr_values as kv
from storage.queries.scheduled import IN_CHUNK, current_cycles


async def open_checkins(batch: Batch, owed: Sequence[Owed[PeriodArgs]]) -> Collection[Owed[PeriodArgs]]:
    """Open the check-ins of a chunk and queue their cards; returns the items that already had one."""
    session = batch.session
    cycles = await current_cycles(session, [o.person.id for o in owed])
    rows: list[dict[str, Any]] = [
        {
            "person_id": o.person.id,
            "cycle_id": cycles.get(o.person.id),
            "period": o.args.period,
            "status": CheckInStatus.OPEN,
            "due_at": o.args.due_at,
            "progress": {},
        }
        for o in owed
    ]
    table = CheckIn.__table__
    stmt = (
        _insert(session)
        .on_conflict_do_nothing(index_elements=["person_id", "period"])
        .returning(table.c.id, table.c.person_id, table.c.period, table.c.cycle_id)
    )
    opened: dict[tuple[int, str], tuple[int, int, int | None]] = {}
    for cid, pid, period, cycle_id in (await session.execute(stmt, rows)).all():
        opened[(int(pid), str(period))] = (int(cid), int(pid), cycle_id)
    lines = await goal_lines_for(session, list(opened.values()))
    nothing: list[Owed[PeriodArgs]] = []
    for o in owed:
        found = opened.get((o.person.id, o.args.period))
        if found is None:
            nothing.append(o)
            continue
        checkin_id = found[0]
        card = cc.checkin_card(
            batch.t(o.person),
            checkin_id=checkin_id,
            period=o.args.period,
            goals=lines[checkin_id],
            progress={},
        )
        batch.send(o.person, card, card_key=employee_key(checkin_id), dedupe_key=f"checkin:{checkin_id}:open")
        batch.audit("checkin.opened", "checkin", checkin_id, actor_id=o.person.id, period=o.args.period)
    return nothing


async def goal_lines_for(
    session: AsyncSession, opened: Sequence[tuple[int, int, int | None]]
) -> dict[int, list[cc.GoalLine]]:
    """``checkin.goal_lines`` for many check-ins just opened, by check-in id, in a few queries.

    ``opened`` is (check-in id, person id, cycle id). Every one of them was inserted in this transaction, so
    none has an answer yet: each key result's reading "before this check-in" is its current one, the same
    for all of them, and one ``source_readings`` call (with any of their ids) gives it for the whole chunk."""
    if not opened:
        return {}
    by_cycle = {cycle for _, _, cycle in opened if cycle is not None}
    final = {
        cid
        for cid, status in (
            await session.execute(select(Cycle.id, Cycle.status).where(Cycle.id.in_(by_cycle)))
        ).all()
        if status in FINAL_CYCLE
    }
    goals: dict[tuple[int, int], list[tuple[int, str]]] = {}
    people = sorted({pid for _, pid, cycle in opened if cycle is not None})
    for start in range(0, len(people), IN_CHUNK):
        rows = await session.execute(
            select(Goal.id, Goal.cycle_id, Goal.person_id, Goal.objective)
            .where(Goal.cycle_id.in_(by_cycle), Goal.person_id.in_(people[start : start + IN_CHUNK]))
            .order_by(Goal.position, Goal.id)
        )
        for gid, goal_cycle, goal_person, objective in rows.all():
            goals.setdefault((goal_cycle, goal_person), []).append((gid, objective))
    open_goals = [gid for (goal_cycle, _), gs in goals.items() if goal_cycle not in final for gid, _ in gs]
    krs = await kv.key_results_of(session, open_goals) if open_goals else {}
    every = [kr for gid in open_goals for kr in krs.get(gid, [])]
    readings = await source_readings(session, every, KrValueSource.CHECKIN, opened[0][0]) if every else {}
    out: dict[int, list[cc.GoalLine]] = {}
    for cid, pid, cycle_id in opened:
        if cycle_id is None:
            out[cid] = []
            continue
        out[cid] = [
            cc.GoalLine(
                key=str(gid),
                title=objective,
                krs=tuple(cc.KrLine(facts_of(kr), *readings[kr.id]) for kr in krs.get(gid, []))
                if cycle_id not in final
                else (),
            )
            for gid, objective in goals.get((cycle_id, pid), [])
        ]
    return out


def _insert(session: AsyncSession) -> Any:
    """The dialect's ``INSERT`` (it takes ``ON CONFLICT``), on the table: plain rows, no ORM bookkeeping."""
    make: Any = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return make(CheckIn.__table__)


SCHEDULE: tuple[ScheduleEntry, ...] = (BatchEntry(Job.OPEN_CHECKIN, PeriodArgs, open_checkins),)
