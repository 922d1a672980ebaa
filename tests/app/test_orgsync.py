"""Org sync: platform snapshots applied to people/departments; member changes trigger a sync."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from adapters.base import Org, OrgDepartment, OrgMember
from bot.app.orgsync_job import OrgSyncJob
from bot.app.service import Service
from bot.core.events import MemberChanged
from storage.models import Department, Person
from tests.fakes.recording import RecordingAdapter


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
