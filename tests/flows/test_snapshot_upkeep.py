"""The monthly snapshot's running costs and wiring (issue 20 #4, second pass): an idle tick loads nobody, the
wave goes zone by zone in chunks and still sends once per person, the sweep asks the calendar of the port
its host carries, and PDF links work on every replica and after a restart without configuration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, select, update

from bot.app.flows import SCHEDULE
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.schedule import Sweep
from bot.core.schedule_port import SchedulePort
from handlers.snapshot import links, wave
from handlers.snapshot.api import pdf_for_link
from handlers.snapshot.wave import Renderer, run_wave
from scheduler.calendar import WeekdayCalendar
from scheduler.port import SchedulerPort
from storage.models import OutboxMessage, Person, Snapshot
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import say

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def at(zone: ZoneInfo, y: int, m: int, d: int, hour: int = 10) -> datetime:
    return datetime(y, m, d, hour, tzinfo=zone).astimezone(UTC)


async def sent(service: Service) -> int:
    return (await run_wave(service, renderer=Renderer(processes=1))).sent


@dataclass
class Counted:
    statements: int = 0
    people_loaded: int = 0
    texts: list[str] = field(default_factory=list)


@contextmanager
def counting(service: Service) -> Iterator[Counted]:
    """Statements sent to the database and ``Person`` rows turned into objects while the block runs."""
    seen = Counted()

    def on_statement(*args: Any) -> None:
        if not str(args[2]).startswith("BEGIN"):  # SQLite's explicit BEGIN IMMEDIATE is no query
            seen.statements += 1
            seen.texts.append(str(args[2]))

    def on_load(*_: Any) -> None:
        seen.people_loaded += 1

    engine = service.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(Person, "load", on_load)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(Person, "load", on_load)


async def hire(service: Service, org: Org, n: int, *, timezone: str = "Asia/Shanghai") -> None:
    async with service.factory() as s, s.begin():
        s.add_all(
            Person(
                workspace_id=org.workspace.id,
                platform_user_id=f"extra-{timezone}-{i}",
                name=f"员工{i}",
                roles="employee",
                manager_id=org.manager.id,
                timezone=timezone,
            )
            for i in range(n)
        )


async def idle_tick(service: Service) -> Counted:
    with counting(service) as seen:
        assert await sent(service) == 0
    return seen


# ------------------------------------------------------------------ item 1: what a tick costs
async def test_an_idle_tick_loads_nobody_whatever_the_head_count(
    service: Service, org: Org, clock: FixedClock
) -> None:
    clock.set(at(SH, 2026, 10, 20))  # October's first workday was the 8th: this late wave records "missed"
    await sent(service)
    clock.set(at(SH, 2026, 10, 21))  # later in a month whose wave is done: one look at the markers
    after_wave = await idle_tick(service)
    assert after_wave.people_loaded == 0
    assert after_wave.statements == 2, after_wave.texts  # the zones in use, the finished waves
    clock.set(at(SH, 2026, 11, 1))  # a Sunday: November's first workday is Monday the 2nd
    small = await idle_tick(service)
    await hire(service, org, 60)
    await hire(service, org, 5, timezone="Europe/Berlin")
    large = await idle_tick(service)
    assert small.people_loaded == large.people_loaded == 0
    assert small.statements == large.statements == 1, large.texts  # the zones in use


async def test_the_wave_goes_zone_by_zone_in_chunks_and_sends_once_per_person(
    service: Service, org: Org, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 3 people; Berlin's first workday starts six hours after Shanghai's; an empty and an
    unknown zone name count as the default zone (Shanghai), as everywhere else (``bot.core.localtime``)."""
    monkeypatch.setattr(wave, "CHUNK", 3)
    await hire(service, org, 7)
    await hire(service, org, 4, timezone="Europe/Berlin")
    async with service.factory() as s, s.begin():
        await s.execute(update(Person).where(Person.id == org.emp1.id).values(timezone=""))
        await s.execute(update(Person).where(Person.id == org.emp2.id).values(timezone="Mars/Olympus"))
        receiving = {
            p.id: p.timezone
            for p in await s.scalars(select(Person))
            if p.active and not p.paused and p.has_role("employee")
        }
    berlin = {pid for pid, tz in receiving.items() if tz == "Europe/Berlin"}
    clock.set(at(SH, 2026, 10, 8))
    assert await sent(service) == len(receiving) - len(berlin)
    assert await sent(service) == 0
    clock.set(at(BERLIN, 2026, 10, 8, 9))
    assert await sent(service) == 0
    clock.set(at(BERLIN, 2026, 10, 8))
    assert await sent(service) == len(berlin)
    clock.set(at(BERLIN, 2026, 10, 9))
    assert await sent(service) == 0
    async with service.factory() as s:
        rows = list(await s.scalars(select(Snapshot.person_id).where(Snapshot.month == "2026-09")))
        cards = dict(
            (
                await s.execute(
                    select(OutboxMessage.dedupe_key, func.count())
                    .where(OutboxMessage.card_key == "snapshot:2026-09")
                    .group_by(OutboxMessage.dedupe_key)
                )
            ).all()
        )
    assert sorted(rows) == sorted(receiving)
    assert cards == {f"snapshot:{pid}:2026-09": 1 for pid in receiving}


async def test_a_wave_cut_short_is_finished_at_the_next_tick(
    service: Service, org: Org, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after some chunks were written: the zone is not marked done, the next tick sends the rest."""
    monkeypatch.setattr(wave, "CHUNK", 3)
    await hire(service, org, 8)
    real = wave._write
    calls = 0

    async def crashing(*args: Any, **kw: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("the database went away")
        await real(*args, **kw)

    monkeypatch.setattr(wave, "_write", crashing)
    clock.set(at(SH, 2026, 10, 8))
    with pytest.raises(RuntimeError):
        await sent(service)
    monkeypatch.setattr(wave, "_write", real)
    receiving = len(org.everyone) + 8
    async with service.factory() as s:
        first = await s.scalar(select(func.count()).select_from(Snapshot)) or 0
    assert 0 < first < receiving  # the chunks before the crash are kept
    assert await sent(service) == receiving - first
    assert await sent(service) == 0


# ------------------------------------------------------------------ item 2: the port comes with the host
@dataclass
class WeekdayHost:
    """A sweep's host whose scheduler knows only Monday to Friday (no Chinese holidays)."""

    service: Service

    @property
    def settings(self) -> Any:
        return self.service.settings.model_copy(
            update={"snapshot": self.service.settings.snapshot.model_copy(update={"render_processes": 1})}
        )

    @property
    def clock(self) -> Any:
        return self.service.clock

    @property
    def factory(self) -> Any:
        return self.service.factory

    @property
    def schedule(self) -> SchedulePort:
        return SchedulerPort(self.service.settings, calendar=WeekdayCalendar())

    async def run_for_person(self, person_id: int, fn: Any) -> None:
        await self.service.run_for_person(person_id, fn)


async def test_the_registered_sweep_asks_the_calendar_its_host_carries(
    service: Service, org: Org, clock: FixedClock
) -> None:
    """Thursday 1 October 2026 is a holiday on the Chinese calendar, a workday on a Monday-Friday one: the
    sweep listed in ``bot.app.flows`` follows the host's port, not a calendar of its own."""
    [sweep] = [e for e in SCHEDULE if isinstance(e, Sweep) and e.name == "sweep_snapshots"]
    clock.set(at(SH, 2026, 10, 1))
    report = await sweep.run(WeekdayHost(service))
    assert getattr(report, "sent", None) == len(org.everyone)
    clock.set(at(SH, 2026, 10, 2))
    assert getattr(await sweep.run(WeekdayHost(service)), "sent", None) == 0  # September is done
    assert getattr(await sweep.run(service), "sent", None) == 0  # Chinese calendar: not before the 8th


# ------------------------------------------------------------------ item 3: links across replicas
def token_in(text: str) -> str:
    return text.split("/snapshot/", 1)[1].split(")", 1)[0]


async def test_a_link_made_by_one_replica_opens_on_another_and_after_a_restart(
    service: Service,
    org: Org,
    clock: FixedClock,
    recorder: RecordingAdapter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No ``link_secret`` configured: the key is made once and kept in the database, so a second service on
    the same database, or this one after a restart (a fresh process would draw a fresh random key), accepts
    the link; a tampered or expired one is still refused."""
    assert service.settings.snapshot.link_secret == ""
    recorder.clear()
    await say(service, "emp1", "/snapshot")
    await service.outbox.drain()
    token = token_in(recorder.to("emp1")[-1].model_dump_json())
    other = build_service(service.settings, clock=clock)
    try:
        monkeypatch.setattr(links, "_PROCESS_KEY", b"\x01" * 32, raising=False)  # as if restarted
        pdf = await pdf_for_link(other.factory, other.settings, token, clock.now())
        assert pdf is not None and pdf.startswith(b"%PDF")
        body, sig = token.rsplit(".", 1)
        for bad in (
            f"{body}.{sig[::-1]}",
            body.replace(f".{org.emp1.id}.", f".{org.emp2.id}.", 1) + f".{sig}",
        ):
            assert await pdf_for_link(other.factory, other.settings, bad, clock.now()) is None
        later = clock.now() + timedelta(hours=service.settings.snapshot.link_hours, seconds=1)
        assert await pdf_for_link(other.factory, other.settings, token, later) is None
    finally:
        await other.close()


async def test_a_configured_link_secret_overrides_the_stored_one(
    service: Service, org: Org, clock: FixedClock
) -> None:
    configured = service.settings.model_copy(
        update={"snapshot": service.settings.snapshot.model_copy(update={"link_secret": "s3cret"})}
    )
    link = links.new_link(
        configured, subject_id=org.emp1.id, month="2026-10", viewer_id=org.emp1.id, now=clock.now()
    )
    async with service.factory() as s, s.begin():
        with_stored = links.make_token(await links.signing_key(s, service.settings, clock.now()), link)
        with_configured = links.make_token(await links.signing_key(s, configured, clock.now()), link)
    assert with_stored != with_configured
    assert await pdf_for_link(service.factory, configured, with_configured, clock.now()) is not None
    assert await pdf_for_link(service.factory, configured, with_stored, clock.now()) is None
    assert await pdf_for_link(service.factory, service.settings, with_configured, clock.now()) is None
