"""The kickoff written a chunk at a time (issue 22 #3): the first chunk commits with the confirmation and its
cards can go out while the rest is still being written; a launch cut off part-way goes on from its last
commit, and nobody is written or told twice, even with two writers racing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from adapters.registry import AdapterRegistry
from bot.app.kickoff_cli import kickoff_from_cli
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from cards.actions import unpack
from cards.flow_actions import KickoffAck, KickoffConfirm
from cards.kickoff import KickoffStop
from storage.models import Cycle, CycleParticipant, OutboxMessage, Person
from storage.queries import people as pq
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org, seed_org
from tests.support.flows import button, click, last_to, say

CHUNK = 10
EXTRA = 30


def _service(settings: Settings, clock: FixedClock, recorder: RecordingAdapter) -> Service:
    chunked = settings.model_copy(
        update={"cycles": settings.cycles.model_copy(update={"kickoff_chunk": CHUNK})}
    )
    registry = AdapterRegistry()
    registry.add(recorder)
    return build_service(chunked, clock=clock, registry=registry)


@pytest.fixture
async def service(
    settings: Settings, clock: FixedClock, recorder: RecordingAdapter
) -> AsyncIterator[Service]:
    svc = _service(settings, clock, recorder)
    yield svc
    await svc.close()


@pytest.fixture
async def org(service: Service) -> Org:
    """The test org plus 30 more engineers: 38 people, four chunks of ten."""
    async with service.factory() as session, session.begin():
        org = await seed_org(session, platform="rec", app_id="rec-app")
        await session.execute(
            insert(Person),
            [
                {
                    "workspace_id": org.workspace.id,
                    "platform_user_id": f"eng{i:02d}",
                    "name": f"工程师{i}",
                    "roles": "employee",
                    "department_id": org.rnd.id,
                    "manager_id": org.manager.id,
                }
                for i in range(EXTRA)
            ],
        )
    return org


async def _cycle(service: Service) -> Cycle:
    async with service.factory() as s:
        cycle = await s.scalar(select(Cycle))
        assert cycle is not None
        return cycle


async def _participants(service: Service) -> list[int]:
    async with service.factory() as s:
        return list(await s.scalars(select(CycleParticipant.person_id)))


async def _kickoff_recipients(service: Service, cycle_id: int) -> Counter[str]:
    async with service.factory() as s:
        rows = await s.scalars(select(OutboxMessage).where(OutboxMessage.card_key == f"kickoff:{cycle_id}"))
        return Counter(uid for row in rows for uid in row.recipients)


async def _everyone(service: Service) -> list[tuple[int, str]]:
    async with service.factory() as s:
        return list((await s.execute(select(Person.id, Person.platform_user_id).order_by(Person.id))).all())


def _kickoff_cards(recorder: RecordingAdapter) -> Counter[str]:
    return Counter(
        d.recipient
        for d in recorder.sent
        if any(isinstance(unpack(b.value), KickoffAck) for b in d.card.buttons())
    )


async def test_the_first_cards_go_out_while_the_rest_is_still_being_written(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await say(service, "hr", "/kickoff 2026-Q1")
    await service.outbox.drain()
    confirm = button(last_to(recorder, "hr"), KickoffConfirm)
    answer = await click(service, "hr", confirm)
    assert answer.toast and "38" in answer.toast  # the toast counts everyone in scope

    # The confirmation committed the first ten people and their cards, and no one else yet.
    everyone = await _everyone(service)
    first = everyone[:CHUNK]
    cycle = await _cycle(service)
    assert cycle.status == "active" and cycle.launch_after == first[-1][0]
    assert sorted(await _participants(service)) == [pid for pid, _ in first]
    assert set(await _kickoff_recipients(service, cycle.id)) == {uid for _, uid in first}

    # Those cards are delivered before anybody else is written.
    await service.outbox.drain()
    assert set(_kickoff_cards(recorder)) == {uid for _, uid in first}
    assert len(await _participants(service)) == CHUNK

    # The writer does the rest, a chunk per transaction; everyone is told exactly once.
    assert await service.launches.finish_all() > 0
    await service.outbox.drain()
    assert (await _cycle(service)).launch_after is None
    assert sorted(await _participants(service)) == [pid for pid, _ in everyone]
    assert _kickoff_cards(recorder) == Counter({uid: 1 for _, uid in everyone})
    assert await service.launches.finish_all() == 0  # nothing left to write


async def test_a_launch_cut_off_goes_on_from_its_last_commit(
    settings: Settings,
    clock: FixedClock,
    service: Service,
    org: Org,
    recorder: RecordingAdapter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await kickoff_from_cli(service, code="2026-Q4", departments=[], hr_user_id="hr", finish=False)
    cycle = await _cycle(service)
    assert (await service.launches.step(cycle.id)).people == CHUNK  # a second chunk, then the process dies

    # A chunk that fails half-way (after its participants, before its cards) leaves nothing behind...
    real = pq.manager_ids_among
    failures = 0

    async def dies_once(*args: Any, **kw: Any) -> set[int]:
        nonlocal failures
        if failures == 0:
            failures += 1
            raise ConnectionError("the database went away")
        return await real(*args, **kw)

    restarted = _service(settings, clock, recorder)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(pq, "manager_ids_among", dies_once)
            with pytest.raises(ConnectionError):
                await restarted.launches.finish_all()
        assert len(await _participants(restarted)) == 2 * CHUNK

        # ...and the next pass (a restart, or the next poll) writes everyone else exactly once.
        await restarted.launches.finish_all()
    finally:
        await restarted.close()
    everyone = await _everyone(service)
    assert sorted(await _participants(service)) == [pid for pid, _ in everyone]
    assert await _kickoff_recipients(service, cycle.id) == Counter({uid: 1 for _, uid in everyone})


async def test_two_writers_racing_write_each_person_once(
    settings: Settings, clock: FixedClock, service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await kickoff_from_cli(service, code="2026-Q4", departments=[], hr_user_id="hr", finish=False)
    cycle = await _cycle(service)
    other = _service(settings, clock, recorder)  # another replica on the same database
    try:
        await asyncio.gather(service.launches.finish(cycle.id), other.launches.finish(cycle.id))
    finally:
        await other.close()
    everyone = await _everyone(service)
    assert sorted(await _participants(service)) == [pid for pid, _ in everyone]
    assert await _kickoff_recipients(service, cycle.id) == Counter({uid: 1 for _, uid in everyone})
    async with service.factory() as s:
        assert await s.scalar(select(func.count(func.distinct(CycleParticipant.person_id)))) == len(everyone)


async def test_the_writer_resumes_an_unfinished_launch_when_it_starts(
    settings: Settings, clock: FixedClock, service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await kickoff_from_cli(service, code="2026-Q4", departments=[], hr_user_id="hr", finish=False)
    restarted = _service(settings, clock, recorder)
    stop = asyncio.Event()
    task = asyncio.create_task(restarted.launches.run(stop))
    try:
        for _ in range(200):
            if (await _cycle(restarted)).launch_after is None:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        restarted.launches.wake()
        await asyncio.wait_for(task, timeout=10)
        await restarted.close()
    assert len(await _participants(service)) == len(org.everyone) + EXTRA


async def test_a_cycle_cancelled_mid_launch_tells_nobody_else(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await kickoff_from_cli(service, code="2026-Q4", departments=[], hr_user_id="hr", finish=False)
    await say(service, "hr", "/cancelcycle 2026-Q4")
    await service.outbox.drain()
    await click(service, "hr", button(last_to(recorder, "hr"), KickoffStop))
    assert await service.launches.finish_all() == 0
    cycle = await _cycle(service)
    assert cycle.status == "cancelled" and cycle.launch_after is None
    assert len(await _participants(service)) == CHUNK
    assert sum((await _kickoff_recipients(service, cycle.id)).values()) == CHUNK


async def test_the_database_counts_managers_by_the_same_rule_as_the_cards(service: Service, org: Org) -> None:
    async with service.factory() as s, s.begin():
        s.add(
            Person(
                workspace_id=org.workspace.id, platform_user_id="lead", name="组长", roles="employee, manager"
            )
        )
        s.add(Person(workspace_id=org.workspace.id, platform_user_id="gone", name="离职", active=False))
    async with service.factory() as s:
        for departments in (None, {org.rnd.id}, {org.sales.id}):
            members = await pq.active_members(s, org.workspace.id, departments)
            named = await pq.manager_ids_among(s, members)
            assert await pq.count_managers(s, org.workspace.id, departments) == len(named)
            assert await pq.count_active(s, org.workspace.id, departments) == len(members)
        # leader (people report to them), mgr and smgr (both), lead (the role only)
        assert await pq.count_managers(s, org.workspace.id) == 4
