"""Org sync: platform snapshots applied to people/departments; member changes trigger a sync."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.base import Org, OrgDepartment, OrgMember
from adapters.registry import AdapterRegistry
from bot.app.orgsync_job import OrgSyncJob
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.events import MemberChanged
from storage.models import Department, Person
from tests.adapters.test_wecom_adapter import wecom_settings
from tests.fakes.recording import RecordingAdapter
from tests.fakes.wecom import FakeWeCom


def snapshot(*, with_li: bool = True) -> Org:
    members = [
        OrgMember(user_id="ceo", name="刘总", department_ids=["1"]),
        OrgMember(user_id="wang", name="王经理", department_ids=["2"]),
        OrgMember(user_id="zhang", name="张三", department_ids=["2"], manager_id="wang"),
    ]
    if with_li:
        members.append(OrgMember(user_id="li", name="李四", department_ids=["2"]))  # manager via dept leader
    return Org(
        departments=[
            OrgDepartment(id="1", name="公司", leader_ids=["ceo"]),
            OrgDepartment(id="2", name="研发部", parent_id="1", leader_ids=["wang"]),
        ],
        members=members,
    )


async def people(service: Service) -> dict[str, Person]:
    async with service.factory() as s:
        return {p.platform_user_id: p for p in await s.scalars(select(Person))}


async def test_sync_applies_leaders_and_deactivates_leavers(
    service: Service, recorder: RecordingAdapter
) -> None:
    job = OrgSyncJob(service, debounce_seconds=0.01)
    recorder.org = snapshot()
    report = await job.sync("rec")
    assert (report.people_added, report.departments_added) == (4, 2)
    got = await people(service)
    assert got["zhang"].manager_id == got["wang"].id
    assert got["li"].manager_id == got["wang"].id  # department leader
    assert got["wang"].manager_id == got["ceo"].id  # parent department's leader
    assert got["ceo"].manager_id is None
    assert "manager" in got["wang"].role_set and "manager" in got["ceo"].role_set
    async with service.factory() as s:
        rnd = await s.scalar(select(Department).where(Department.name == "研发部"))
        assert rnd is not None and rnd.head_id == got["wang"].id
    recorder.org = snapshot(with_li=False)
    report = await job.sync("rec")
    assert report.people_deactivated == 1
    got = await people(service)
    assert got["li"].active is False  # kept, not deleted


async def test_member_change_deletes_at_once_and_syncs_later(
    service: Service, recorder: RecordingAdapter
) -> None:
    job = OrgSyncJob(service, debounce_seconds=0.01)
    recorder.org = snapshot()
    await job.sync("rec")
    gone = MemberChanged(
        platform="rec", workspace="rec-app", event_id="m1", sender_id="sys", change="deleted", user_id="zhang"
    )
    await service.dispatcher.dispatch(gone)
    assert (await people(service))["zhang"].active is False
    stop = asyncio.Event()
    task = asyncio.create_task(job.run(service, stop))
    await asyncio.sleep(0.3)  # no change heard yet: no sync (the full sync is the scheduler's entry)
    assert "new" not in await people(service)
    recorder.org = Org(
        departments=snapshot().departments,
        members=[*snapshot().members, OrgMember(user_id="new", name="新人", department_ids=["2"])],
    )
    added = MemberChanged(
        platform="rec", workspace="rec-app", event_id="m2", sender_id="sys", change="created", user_id="new"
    )
    await service.dispatcher.dispatch(added)
    for _ in range(50):
        if "new" in await people(service):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert (await people(service))["new"].active is True


async def test_first_sync_retries_a_502_with_backoff_until_people_appear(
    db_url: str, tmp_path: Path, clock: FixedClock
) -> None:
    """Issue 16 #9: a fresh install whose first full sync meets WeCom answering 502 three times gets its
    people seconds later, from retries between ticks (short first, doubling, capped), not a day later and
    not only at the next tick."""
    fake = FakeWeCom(now=lambda: clock.now().timestamp())
    fake.add_department(1, "公司")
    fake.add_department(2, "研发部", 1, leaders=["wang"])
    fake.add_user("wang", "王经理", [2])
    fake.add_user("zhang", "张三", [2], direct_leader=["wang"])
    await fake.start()
    settings = wecom_settings(db_url, tmp_path, fake)
    service = build_service(settings, clock=clock, registry=AdapterRegistry.from_settings(settings))
    job = OrgSyncJob(service, retry_first_seconds=0.1, retry_max_seconds=0.4)
    assert [job.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.4, 0.4]
    stop = asyncio.Event()
    task = asyncio.create_task(job.run(service, stop))
    try:
        fake.fail_next(502, 502, 502)
        started = asyncio.get_running_loop().time()
        with pytest.raises(ExceptionGroup):
            await job.sync_owed(service)  # the leader's first tick: 502
        assert await people(service) == {}
        for _ in range(100):  # no further tick: only the backed-off retries can bring them
            if {"wang", "zhang"} <= set(await people(service)):
                break
            await asyncio.sleep(0.05)
        waited = asyncio.get_running_loop().time() - started
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await service.close()
        await fake.close()
    got = await people(service)
    assert got["zhang"].manager_id == got["wang"].id
    assert [code for path, code in fake.calls if path == "department/list"][:4] == [502, 502, 502, 0]
    assert 0.1 + 0.2 + 0.4 <= waited < 5  # three backed-off waits, and not a tick or a day
    ok = service.metrics.registry.get_sample_value(
        "perfloop_job_runs_total", {"job": "org_sync", "result": "ok"}
    )
    error = service.metrics.registry.get_sample_value(
        "perfloop_job_runs_total", {"job": "org_sync", "result": "error"}
    )
    assert (ok, error) == (1, 2)  # the background retries are counted like the sweep's runs
