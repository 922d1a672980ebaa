"""Issue 17 item 5: the "progress ``[escalation] progress_gap_percent`` below plan two check-ins in a row"
warning reads the key result numbers. Plan is the share of the cycle passed on the check-in's day; progress
is each goal's own progress from its key results' values in force when the check-in was submitted, weighted
by the goals' weights. Warned once per check-in, to the person and their manager."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.context import Context
from cards.flow_actions import CheckinSubmit
from handlers.action_items.escalation import check_progress_gap, progress_vs_plan
from handlers.checkin.checkin import open_checkin
from handlers.goals.api import record_value
from storage.models import AuditLog, CheckIn, Person
from storage.queries.metrics import PROGRESS_GAP_ACTION
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import click, run_as
from tests.support.kr_data import Krs, seed_krs

NOV_10 = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # plan: 40 of 91 days = 44 %
NOV_24 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # plan: 54 of 91 days = 59 %


async def _checkin(
    service: Service, clock: FixedClock, org: Org, krs: Krs, when: datetime, answers: dict[str, str]
) -> CheckIn:
    clock.set(when)

    async def fn(ctx: Context) -> CheckIn | None:
        return await open_checkin(ctx, period=when.date().isoformat(), due_at=when)

    checkin = await run_as(service, org.emp1.id, fn)
    assert checkin is not None
    form = {f"kr_{krs.site}": "no", f"kr_{krs.oncall}": "no", **answers}
    assert (await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), form)).toast_kind == "success"
    return checkin


async def _gap(service: Service, org: Org, checkin_id: int) -> tuple[int, int] | None:
    async def fn(ctx: Context) -> tuple[int, int] | None:
        checkin = await ctx.session.get(CheckIn, checkin_id)
        person = await ctx.session.get(Person, org.emp1.id)
        assert checkin is not None and person is not None
        return await progress_vs_plan(ctx, checkin, person)

    return await run_as(service, org.emp1.id, fn)


async def _warnings(service: Service) -> list[int]:
    async with service.factory() as s:
        rows = await s.scalars(select(AuditLog.detail).where(AuditLog.action == PROGRESS_GAP_ACTION))
        return [int(d["checkin_id"]) for d in rows]


async def test_two_check_ins_behind_on_the_numbers_warn_once(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    krs = await seed_krs(service, org.emp1, nps_now=None)
    # 11-10: NPS 22 (10 %), churn 4.8 (10 %): 上线计费 5 %, 带新人 5 % → 5 % against a plan of 44 %
    first = await _checkin(
        service, clock, org, krs, NOV_10, {f"kr_{krs.nps}": "22", f"kr_{krs.churn}": "4.8"}
    )
    assert await _gap(service, org, first.id) == (44, 5)
    assert await _warnings(service) == []  # one check-in behind is not yet a warning
    # 11-24: NPS 25 %, the site's first milestone 33 %, churn 25 % → 0.6 × 29 + 0.4 × 12.5 = 22 %
    second = await _checkin(
        service,
        clock,
        org,
        krs,
        NOV_24,
        {f"kr_{krs.nps}": "25", f"kr_{krs.site}": "m1", f"kr_{krs.churn}": "4.5"},
    )
    assert await _gap(service, org, second.id) == (59, 22)
    assert await _warnings(service) == [second.id]
    await service.outbox.drain()
    for who in ("emp1", "mgr"):
        [warning] = [c for c in recorder.to(who) if c.header.title == "进度落后于计划"]
        shown = {kv.value for el in warning.elements if el.kind == "fields" for kv in el.items}
        assert {"59%", "22%", "37%"} <= shown, shown

    # once per check-in: asking again (an edit, a retry) warns no more
    async def again(ctx: Context) -> bool:
        return await check_progress_gap(ctx, second.id)

    assert await run_as(service, org.emp1.id, again) is False
    assert await _warnings(service) == [second.id]

    # each check-in is judged by the values in force when it was submitted: later values change nothing
    async with service.factory() as s, s.begin():
        await record_value(
            s, krs.nps, value=40, done=None, source="manager", source_id=None, by_person_id=None, at=NOV_24
        )
    assert await _gap(service, org, first.id) == (44, 5)


async def test_numbers_on_plan_at_the_second_check_in_do_not_warn(
    service: Service, org: Org, clock: FixedClock
) -> None:
    krs = await seed_krs(service, org.emp1, nps_now=None)
    await _checkin(service, clock, org, krs, NOV_10, {f"kr_{krs.nps}": "22", f"kr_{krs.churn}": "4.8"})
    # between the check-ins the manager records the site as done: counted at the second check-in
    async with service.factory() as s, s.begin():
        await record_value(
            s,
            krs.site,
            value=None,
            done=True,
            source="manager",
            source_id=None,
            by_person_id=org.manager.id,
            at=datetime(2026, 11, 20, 2, tzinfo=UTC),
        )
    second = await _checkin(
        service,
        clock,
        org,
        krs,
        NOV_24,
        {f"kr_{krs.nps}": "32", f"kr_{krs.site}": "done", f"kr_{krs.churn}": "4"},
    )
    # 上线计费 (0.6 + 1) / 2 = 80 %, 带新人 (0 + 0.5) / 2 = 25 % → 0.6 × 80 + 0.4 × 25 = 58 % against 59 %
    assert await _gap(service, org, second.id) == (59, 58)
    assert await _warnings(service) == []


async def test_what_the_check_in_reported_is_not_what_counts(
    service: Service, org: Org, clock: FixedClock
) -> None:
    """A stored percentage that disagrees with the key results (an old card, a hand-edited row) loses to the
    numbers; a goal whose key results had no value yet keeps the reported one."""
    krs = await seed_krs(service, org.emp1, nps_now=None)
    first = await _checkin(
        service, clock, org, krs, NOV_10, {f"kr_{krs.nps}": "22", f"kr_{krs.churn}": "4.8"}
    )
    async with service.factory() as s, s.begin():
        await s.execute(
            update(CheckIn)
            .where(CheckIn.id == first.id)
            .values(progress={str(krs.billing): 90, str(krs.mentoring): 90})
        )
    assert await _gap(service, org, first.id) == (44, 5)
