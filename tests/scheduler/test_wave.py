"""Scheduled waves through the real flows, on SQLite and PostgreSQL: the check-in and reminder waves open
each due person exactly once (also across replicas and chunks), keep the per-person rules (leave, pause,
zones, team cadence, quiet hours, an early answer), do per person exactly what the one-by-one path does,
and a failing batch falls back to one by one.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from adapters.registry import AdapterRegistry
from bot.app.flows import SCHEDULE
from bot.app.service import Service, build_service
from bot.core.batch import Batch
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.schedule import BatchEntry, Job, Owed, PeriodArgs, ScheduleEntry
from scheduler.engine import Scheduler
from scheduler.table import JobTable, ScheduleError
from storage.models import AuditLog, Base, CheckIn, OutboxMessage, ScheduledSend
from tests.fakes.recording import RecordingAdapter
from tests.support.wave import CHECKINS_AT, REMINDERS_AT, WAVE_DAY, WaveOrg, seed_wave

PERIOD = WAVE_DAY.isoformat()


def one_by_one() -> JobTable:
    """The real schedule without its batch entries: every item in a transaction of its own."""
    return JobTable([e for e in SCHEDULE if not isinstance(e, BatchEntry)])


def make_service(settings: Settings, clock: FixedClock) -> Service:
    registry = AdapterRegistry()
    registry.add(RecordingAdapter())
    return build_service(settings, clock=clock, registry=registry)


async def seeded(service: Service) -> WaveOrg:
    async with service.factory() as session, session.begin():
        return await seed_wave(session)


async def rows(service: Service, stmt: Any) -> list[Any]:
    async with service.factory() as session:
        return list((await session.execute(stmt)).all())


async def checkin_counts(service: Service) -> Counter[int]:
    found = await rows(service, select(CheckIn.person_id).where(CheckIn.period == PERIOD))
    return Counter(pid for (pid,) in found)


async def test_the_checkin_wave_opens_each_due_person_once(service: Service, clock: FixedClock) -> None:
    org = await seeded(service)
    clock.set(CHECKINS_AT)
    scheduler = Scheduler(service, JobTable(SCHEDULE), chunk=7)  # many chunks, a batch per chunk
    first = await scheduler.tick()
    # The early one's key is claimed too (its ledger row says there was nothing to send): no second card.
    assert {d.person_id for d in first.sent if d.flow == "checkin"} == org.due_checkins | {org.ids["early"]}
    counts = await checkin_counts(service)
    assert set(counts) == org.due_checkins | {org.ids["early"]} and set(counts.values()) == {1}
    ledger = {
        pid: (status, reason)
        for pid, status, reason in await rows(
            service,
            select(ScheduledSend.person_id, ScheduledSend.status, ScheduledSend.reason).where(
                ScheduledSend.flow == "checkin", ScheduledSend.period == PERIOD
            ),
        )
    }
    assert {pid for pid, (status, _) in ledger.items() if status == "sent"} == org.due_checkins | {
        org.ids["early"]
    }
    assert ledger[org.ids["early"]] == ("sent", "nothing to send")
    assert ledger[org.ids["leave"]][0] == "skipped"
    for name in ("paused", "berlin", "monday"):
        assert org.ids[name] not in ledger, name
    cards = await rows(
        service,
        select(OutboxMessage.recipients, OutboxMessage.next_attempt_at).where(
            OutboxMessage.dedupe_key.like("checkin:%:open")
        ),
    )
    assert Counter(r[0] for r, _ in cards) == Counter(
        name for name, pid in org.ids.items() if pid in org.due_checkins
    )
    held = {r[0]: at for r, at in cards}
    assert held["quiet"] == datetime(
        2026, 12, 4, 9, 30, tzinfo=UTC
    )  # 17:30 in Shanghai, the end of quiet hours
    assert held["p000"] == CHECKINS_AT
    audit = await rows(
        service, select(AuditLog.actor_id, AuditLog.entity_id).where(AuditLog.action == "checkin.opened")
    )
    assert sorted(a for a, _ in audit) == sorted(org.due_checkins)
    # Nothing more on the next ticks, nor from a second scheduler.
    again = await asyncio.gather(scheduler.tick(), Scheduler(service, JobTable(SCHEDULE), chunk=5).tick())
    assert all(not r.sent for r in again)
    assert await checkin_counts(service) == counts


async def test_concurrent_schedulers_share_a_wave_without_doubles(
    settings: Settings, clock: FixedClock, service: Service
) -> None:
    """Three schedulers on their own connections tick the same wave at once (a hand-over between replicas
    overlapping a tick): every key is claimed by exactly one of them."""
    org = await seeded(service)
    clock.set(CHECKINS_AT)
    others = [make_service(settings, clock) for _ in range(2)]
    try:
        schedulers = [Scheduler(s, JobTable(SCHEDULE), chunk=4) for s in (service, *others)]
        reports = await asyncio.gather(*(s.tick() for s in schedulers))
    finally:
        for s in others:
            await s.close()
    sent = Counter(d.person_id for r in reports for d in r.sent if d.flow == "checkin")
    assert set(sent) == org.due_checkins | {org.ids["early"]} and set(sent.values()) == {1}
    counts = await checkin_counts(service)
    assert set(counts) == org.due_checkins | {org.ids["early"]} and set(counts.values()) == {1}
    dedupe = await rows(
        service,
        select(OutboxMessage.dedupe_key, func.count())
        .where(OutboxMessage.dedupe_key.like("checkin:%:open"))
        .group_by(OutboxMessage.dedupe_key),
    )
    assert len(dedupe) == len(org.due_checkins) and {n for _, n in dedupe} == {1}


async def test_the_reminder_wave_reminds_each_owner_once_and_retires_their_card(
    service: Service, clock: FixedClock
) -> None:
    org = await seeded(service)
    clock.set(REMINDERS_AT)
    scheduler = Scheduler(service, JobTable(SCHEDULE), chunk=6)
    report = await scheduler.tick()
    assert Counter(d.person_id for d in report.sent if d.flow == "action.due") == Counter(org.due_reminders)
    assert org.ids["leave"] in {d.person_id for d in report.waiting}  # waits for the end of leave
    sends = await rows(
        service,
        select(OutboxMessage.recipients, OutboxMessage.dedupe_key).where(
            OutboxMessage.dedupe_key.like("action-remind:%")
        ),
    )
    names = {pid: name for name, pid in org.ids.items()}
    assert Counter(r[0] for r, _ in sends) == Counter(names[pid] for pid in org.due_reminders)
    updates = await rows(
        service,
        select(OutboxMessage.recipients, OutboxMessage.target_ref).where(OutboxMessage.op == "update"),
    )
    by_name = Counter(r[0] for r, _ in updates)
    delivered = {names[pid] for pid in org.due_reminders} - {"queued", "sending"}
    assert {n for n in by_name if n in delivered} == delivered  # delivered cards updated in place
    assert (
        by_name["sending"] == 1 and by_name["queued"] == 0
    )  # in flight: a settled update; queued: rewritten
    queued_card = await rows(
        service,
        select(OutboxMessage.card)
        .where(OutboxMessage.recipients == ["queued"], OutboxMessage.op == "send")
        .order_by(OutboxMessage.id),
    )
    assert "旧卡片" not in str(queued_card[0][0])
    assert len(
        await rows(service, select(AuditLog.id).where(AuditLog.action == "action_item.reminded"))
    ) == len(org.due_reminders)
    assert not (await scheduler.tick()).sent


async def _snapshot(service: Service) -> dict[str, list[Any]]:
    """What a wave leaves behind, without the surrogate keys of outbox and audit rows, and with each
    check-in's id written as its person and period (on PostgreSQL a batch's ``ON CONFLICT`` may use up a
    sequence value where the one-by-one path does not, so ids can differ; nothing else may)."""
    return _normalised(await _raw_snapshot(service))


def _normalised(snap: dict[str, list[Any]]) -> dict[str, list[Any]]:
    names = {str(r[0]): f"<checkin {r[1]} {r[2]}>" for r in snap["checkins"]}

    def fix(value: Any) -> Any:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        text = re.sub(
            r'(checkin_id\\?":\s*|ref_id\\?":\s*|checkin:)(\d+)',
            lambda mt: mt.group(1) + names.get(mt.group(2), mt.group(2)),
            text,
        )
        return json.loads(text)

    return {
        "checkins": sorted([names[str(r[0])], *r[1:]] for r in snap["checkins"]),
        "ledger": snap["ledger"],
        "outbox": sorted((fix(list(r)) for r in snap["outbox"]), key=repr),
        "audit": sorted(
            (
                [*r[:2], names.get(str(r[2]), r[2]) if r[1] == "checkin" else r[2], *r[3:]]
                for r in snap["audit"]
            ),
            key=repr,
        ),
    }


async def _raw_snapshot(service: Service) -> dict[str, list[Any]]:
    return {
        "checkins": await rows(
            service,
            select(
                CheckIn.id,
                CheckIn.person_id,
                CheckIn.period,
                CheckIn.status,
                CheckIn.cycle_id,
                CheckIn.due_at,
                CheckIn.progress,
            ).order_by(CheckIn.id),
        ),
        "ledger": await rows(
            service,
            select(
                ScheduledSend.flow,
                ScheduledSend.person_id,
                ScheduledSend.period,
                ScheduledSend.status,
                ScheduledSend.reason,
                ScheduledSend.due_at,
            ).order_by(ScheduledSend.flow, ScheduledSend.person_id, ScheduledSend.period),
        ),
        "outbox": sorted(
            (
                await rows(
                    service,
                    select(
                        OutboxMessage.op,
                        OutboxMessage.recipients,
                        OutboxMessage.card,
                        OutboxMessage.card_key,
                        OutboxMessage.dedupe_key,
                        OutboxMessage.target_ref,
                        OutboxMessage.next_attempt_at,
                        OutboxMessage.status,
                    ),
                )
            ),
            key=repr,
        ),
        "audit": sorted(
            await rows(
                service,
                select(
                    AuditLog.action, AuditLog.entity, AuditLog.entity_id, AuditLog.actor_id, AuditLog.detail
                ),
            ),
            key=repr,
        ),
    }


@pytest.fixture
async def fresh(db_url: str, sqlite_template: Path) -> Callable[[], Awaitable[None]]:
    """Empty the database again (ids restart), for running the same wave twice."""

    async def reset() -> None:
        if db_url.startswith("sqlite"):
            Path(db_url.split("///", 1)[1]).write_bytes(sqlite_template.read_bytes())
            return
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(db_url)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    return reset


@pytest.mark.parametrize("at", [CHECKINS_AT, REMINDERS_AT], ids=["checkins", "reminders"])
async def test_a_batch_does_per_person_what_one_by_one_does(
    settings: Settings, fresh: Callable[[], Awaitable[None]], at: datetime
) -> None:
    outcomes = []
    for table in (one_by_one(), JobTable(SCHEDULE)):
        await fresh()
        service = make_service(settings, FixedClock(at))
        try:
            await seeded(service)
            await Scheduler(service, table, chunk=8).tick()
            outcomes.append(await _snapshot(service))
        finally:
            await service.close()
    each, batched = outcomes
    assert each["checkins"] or each["outbox"]
    for part in ("checkins", "ledger", "outbox", "audit"):
        assert batched[part] == each[part], part


async def test_a_failing_batch_falls_back_to_one_by_one(service: Service, clock: FixedClock) -> None:
    org = await seeded(service)
    clock.set(CHECKINS_AT)

    async def broken(batch: Batch, owed: Sequence[Owed[PeriodArgs]]) -> list[Owed[PeriodArgs]]:
        raise RuntimeError("batch crashed")

    entries: list[ScheduleEntry] = [
        e for e in SCHEDULE if not isinstance(e, BatchEntry) or e.job is not Job.OPEN_CHECKIN
    ]
    entries.append(BatchEntry(Job.OPEN_CHECKIN, PeriodArgs, broken))
    report = await Scheduler(service, JobTable(entries), chunk=10).tick()
    assert {d.person_id for d in report.sent if d.flow == "checkin"} == org.due_checkins | {org.ids["early"]}
    counts = await checkin_counts(service)
    assert set(counts) == org.due_checkins | {org.ids["early"]} and set(counts.values()) == {1}


def test_a_batch_entry_needs_the_jobs_own_entry() -> None:
    async def run(batch: Batch, owed: Sequence[Owed[PeriodArgs]]) -> list[Owed[PeriodArgs]]:
        return []

    with pytest.raises(ScheduleError, match="batch entry without an entry"):
        JobTable([BatchEntry(Job.OPEN_CHECKIN, PeriodArgs, run)], partial=True)
