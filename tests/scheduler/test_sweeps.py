"""The schedule the app hands to the scheduler: complete and unambiguous when built, and one error path for
the tick, the flows' sweeps and the org sync (counted in ``job_runs``, logged, tried again next tick)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app.flows import SCHEDULE
from bot.app.orgsync import SyncReport
from bot.app.orgsync_job import OrgSyncJob
from bot.app.service import Service
from bot.core.schedule import ARGS, CheckinArgs, Entry, Host, Job, PeriodArgs, Sweep
from scheduler.jobs import SchedulerRunner
from scheduler.table import JobTable, ScheduleError
from tests.app.test_orgsync import people, snapshot
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org


def runs(service: Service, job: str, result: str) -> float:
    value = service.metrics.registry.get_sample_value(
        "perfloop_job_runs_total", {"job": job, "result": result}
    )
    return value or 0.0


def test_the_registry_has_one_entry_for_every_job() -> None:
    table = JobTable(SCHEDULE)
    for job in Job:
        entry = table.entry(job)
        assert entry is not None and entry.args is ARGS[job]
    assert {s.name for s in table.sweeps} == {
        "sweep_deliverable_ratings",
        "sweep_evidence_requests",
        "sweep_self_assessments",
        "sweep_snapshots",
    }


def test_a_job_without_an_entry_is_an_error_when_the_table_is_built() -> None:
    without_digest = [e for e in SCHEDULE if not (isinstance(e, Entry) and e.job is Job.SEND_DIGEST)]
    with pytest.raises(ScheduleError, match="send_digest"):
        JobTable(without_digest)
    assert JobTable(without_digest, partial=True).entry(Job.SEND_DIGEST) is None  # a test's choice
    with pytest.raises(ScheduleError, match="two entries"):
        JobTable([*SCHEDULE, *(e for e in SCHEDULE if isinstance(e, Entry) and e.job is Job.OPEN_REVIEW)])
    with pytest.raises(ScheduleError, match="two sweeps"):
        JobTable([*SCHEDULE, *(e for e in SCHEDULE if isinstance(e, Sweep))])


def test_an_entry_takes_the_arguments_its_job_comes_with() -> None:
    async def remind(ctx: Any, args: Any) -> None:
        del ctx, args

    with pytest.raises(TypeError, match="CheckinArgs"):
        Entry(Job.REMIND_CHECKIN, PeriodArgs, remind)
    assert Entry(Job.REMIND_CHECKIN, CheckinArgs, remind).job is Job.REMIND_CHECKIN


async def beats(runner: SchedulerRunner, n: int) -> None:
    assert await runner.leadership.acquire()
    try:
        for _ in range(n):
            await runner.beat()
    finally:
        await runner.leadership.release()


async def test_a_failing_sweep_is_counted_logged_and_run_again_next_tick(
    service: Service, org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    async def flaky(host: Host) -> int:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("sweep crashed")
        return len(calls) if host.clock.now() else 0

    runner = SchedulerRunner(service, JobTable([Sweep("flaky", flaky)], partial=True), name="t")
    await beats(runner, 2)
    assert calls == [0, 1]
    assert (runs(service, "flaky", "error"), runs(service, "flaky", "ok")) == (1, 1)
    assert runs(service, "scheduler.tick", "ok") == 2  # the sweep's failure does not touch the tick
    assert runner.ticks == 2
    assert any(r.getMessage().startswith("scheduled job failed") and r.exc_info for r in caplog.records)


class FlakySync(OrgSyncJob):
    """The recording adapter as a real platform whose contact API fails once."""

    failures = 1
    synced: list[str]

    def platforms(self) -> list[str]:
        return ["rec"]

    async def sync(self, platform: str) -> SyncReport:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("contact API down")
        self.synced.append(platform)
        return await super().sync(platform)


async def test_org_sync_is_a_schedule_entry_retried_on_the_next_tick(
    service: Service, recorder: RecordingAdapter
) -> None:
    recorder.org = snapshot()
    job = FlakySync(service, debounce_seconds=0.01, retry_first_seconds=0)  # no backoff: due at the next tick
    job.synced = []
    runner = SchedulerRunner(service, JobTable([job.entry()], partial=True), name="t")
    await beats(runner, 3)
    assert job.synced == ["rec"]  # failed at the first tick, synced at the second, not due at the third
    assert (runs(service, "org_sync", "error"), runs(service, "org_sync", "ok")) == (1, 2)
    assert {"ceo", "wang", "zhang", "li"} <= set(await people(service))
