"""Key-result rhythms (issue 17 item 7): ``/rhythm`` stores one, the scheduler opens the photo request on the
rhythm's day and time in the person's zone (exactly once, holidays skipped), and the photo that answers it
carries the key result to the manager's rating card. ``/rhythm off`` stops it."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select, update

from adapters.base import CallbackAnswer
from bot.app.service import Service
from bot.core.clock import FixedClock
from cards.goal_actions import RhythmStop, RhythmSubmit
from cards.model import Card, Select
from handlers.evidence import rhythm as evidence_rhythm
from scheduler.engine import Scheduler
from scheduler.plan import format_plan, next_due
from scheduler.rhythms import opens_at
from scheduler.table import JobTable
from storage.models import (
    AuditLog,
    Cycle,
    Evidence,
    EvidenceRequest,
    KeyResult,
    KeyResultRhythm,
    Person,
    ScheduledSend,
)
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import click, last_update, text_of
from tests.support.flows2 import count, get, image, image_bytes, text
from tests.support.goal_links import Kr, add_cycle, add_goal

# The clock fixture is Tuesday 2026-11-24 10:00 in Shanghai (02:00 UTC).
WED_0859 = datetime(2026, 11, 25, 0, 59, tzinfo=UTC)
WED_0900 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
WED_END = datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC)


async def _kr(service: Service, org: Org) -> KeyResult:
    cycle = await add_cycle(service, org.workspace.id, [org.emp1, org.emp2, org.seller])
    _, [kr, _] = await add_goal(
        service,
        cycle,
        org.emp1,
        "提升客户拜访质量",
        [Kr("客户拜访 60 次", target=60, current=12, progress=0.2), Kr("续约率 80→90", start=80, target=90)],
    )
    return kr


async def _set(service: Service, who: str, person: Person, kr: KeyResult, sentence: str) -> CallbackAnswer:
    form = {"key_result": str(kr.id), "rhythm": sentence}
    return await click(service, who, RhythmSubmit(person_id=person.id), form)


async def _rhythms(service: Service) -> list[KeyResultRhythm]:
    async with service.factory() as s:
        return list(await s.scalars(select(KeyResultRhythm).order_by(KeyResultRhythm.id)))


async def _say(service: Service, recorder: RecordingAdapter, who: str, body: str) -> Card:
    """A command's answer card (a text message is answered through the outbox)."""
    recorder.clear()
    answer = await service.dispatcher.dispatch(text(who, body))
    assert answer.toast_kind != "error", answer.toast
    await service.outbox.drain()
    card = recorder.to(who)[-1]
    recorder.clear()
    return card


def _table() -> JobTable:
    return JobTable(evidence_rhythm.SCHEDULE, partial=True)


async def test_rhythm_form_lists_the_owners_key_results_and_stores_the_rhythm(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    kr = await _kr(service, org)
    asked = await _say(service, recorder, "emp1", "/rhythm 每周三 10:00 前上传客户拜访照片")
    [form] = asked.forms()
    select_ = form.inputs[0]
    assert isinstance(select_, Select) and [o.value for o in select_.options] == [str(kr.id), str(kr.id + 1)]
    assert "客户拜访 60 次" in select_.options[0].label and "(20%)" in select_.options[0].label
    assert form.inputs[1].default == "每周三 10:00 前上传客户拜访照片"

    saved = await _set(service, "emp1", org.emp1, kr, "每周三 10:00 前上传客户拜访照片")
    assert saved.toast_kind == "success"
    [row] = await _rhythms(service)
    assert (row.key_result_id, row.person_id, row.weekday, row.due_time, row.text, row.active) == (
        kr.id,
        org.emp1.id,
        2,
        "10:00",
        "上传客户拜访照片",
        True,
    )
    assert row.created_by_id == org.emp1.id
    await service.outbox.drain()
    assert "每周三 10:00 前：上传客户拜访照片" in text_of(last_update(recorder, "emp1"))
    assert await count(service, AuditLog, AuditLog.action == "rhythm.set", AuditLog.entity_id == row.id) == 1


async def test_a_sentence_that_is_no_rhythm_comes_back_red_with_what_was_typed(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    kr = await _kr(service, org)
    answer = await _set(service, "emp1", org.emp1, kr, "每周三上传照片")
    assert answer.toast_kind == "error"
    await service.outbox.drain()
    card = last_update(recorder, "emp1")
    assert (
        card.header.colour == "red"
        and "几点前" in text_of(card)
        and "每周三 10:00 前上传客户拜访照片" in text_of(card)
    )
    [form] = card.forms()
    assert form.inputs[0].default == str(kr.id) and form.inputs[1].default == "每周三上传照片"
    assert await _rhythms(service) == []
    # The same rhythm twice is refused; a key result takes at most three.
    assert (await _set(service, "emp1", org.emp1, kr, "周三 10:00 前 上传照片")).toast_kind == "success"
    assert (await _set(service, "emp1", org.emp1, kr, "周三 10:00 前 拍照")).toast_kind == "error"
    for day in ("周四", "周五"):
        await _set(service, "emp1", org.emp1, kr, f"{day} 10:00 前 上传照片")
    refused = await _set(service, "emp1", org.emp1, kr, "周一 10:00 前 上传照片")
    assert refused.toast_kind == "error" and "最多 3" in (refused.toast or "")
    assert len(await _rhythms(service)) == 3


async def test_the_manager_sets_it_for_a_report_and_others_may_not(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    kr = await _kr(service, org)
    assert (await service.dispatcher.dispatch(text("emp2", "/rhythm @张三"))).toast_kind == "error"
    assert (await _set(service, "emp2", org.emp1, kr, "每周三 10:00 前上传照片")).toast_kind == "error"
    assert (await _set(service, "smgr", org.emp1, kr, "每周三 10:00 前上传照片")).toast_kind == "error"
    form = await _say(service, recorder, "mgr", "/rhythm @张三")
    assert "张三" in form.header.title
    await _set(service, "mgr", org.emp1, kr, "every Friday by 5pm upload the visit report")
    await service.outbox.drain()
    [row] = await _rhythms(service)
    assert (row.person_id, row.created_by_id, row.weekday, row.due_time) == (
        org.emp1.id,
        org.manager.id,
        4,
        "17:00",
    )
    [told] = recorder.to("emp1")
    assert "王经理" in text_of(told) and "每周五 17:00 前：upload the visit report" in text_of(told)
    # A key result that is not the person's is not on their form.
    async with service.factory() as s:
        cycle = (await s.scalars(select(Cycle))).one()
    _, [other] = await add_goal(service, cycle, org.emp2, "李四的目标", [Kr("交付 3 份方案", target=3)])
    assert (await _set(service, "mgr", org.emp1, other, "每周三 10:00 前上传照片")).toast_kind == "error"


async def test_nobody_without_key_results_gets_a_form(service: Service, org: Org) -> None:
    answer = await service.dispatcher.dispatch(text("emp1", "/rhythm"))
    assert answer.toast_kind == "error" and "/goals" in (answer.toast or "")


async def test_rhythm_off_lists_and_stops_once(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    kr = await _kr(service, org)
    await _set(service, "emp1", org.emp1, kr, "每周三 10:00 前上传照片")
    [row] = await _rhythms(service)
    listed = await _say(service, recorder, "mgr", "/rhythm off @张三")
    [form] = listed.forms()
    assert isinstance(form.inputs[0], Select) and form.inputs[0].options[0].value == str(row.id)
    stop = RhythmStop(person_id=org.emp1.id)
    stopped = await click(service, "mgr", stop, {"rhythm": str(row.id)})
    assert stopped.toast_kind == "success"
    assert (await get(service, KeyResultRhythm, row.id)).active is False
    again = await click(service, "mgr", stop, {"rhythm": str(row.id)})
    assert again.toast_kind == "error"
    empty = await _say(service, recorder, "emp1", "/rhythm off")
    assert not empty.forms() and "/rhythm" in text_of(empty)


def test_the_request_goes_out_an_hour_before_an_early_deadline() -> None:
    assert opens_at(time(10, 0), time(9, 30)) == time(9, 0)
    assert opens_at(time(18, 0), time(9, 30)) == time(9, 30)
    assert opens_at(time(0, 30), time(9, 30)) == time(0, 0)


async def test_scheduler_opens_the_request_on_the_rhythm_day_once(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    kr = await _kr(service, org)
    await _set(service, "mgr", org.emp1, kr, "每周三 10:00 前上传客户拜访照片")
    [rhythm] = await _rhythms(service)
    await service.outbox.drain()
    recorder.clear()
    scheduler = Scheduler(service, _table())

    assert (await scheduler.tick()).sent == []  # Tuesday
    clock.set(WED_0859)
    assert (await scheduler.tick()).sent == []
    clock.set(WED_0900)  # 09:00 in Shanghai: an hour before the rhythm's 10:00
    assert len((await scheduler.tick()).sent) == 1
    clock.advance(timedelta(minutes=2))
    assert (await scheduler.tick()).sent == []  # the second tick finds the key taken
    async with service.factory() as s:
        [req] = list(await s.scalars(select(EvidenceRequest)))
        [key] = list(await s.scalars(select(ScheduledSend).where(ScheduledSend.flow == "evidence.rhythm")))
    assert (req.person_id, req.key_result_id, req.rhythm_id, req.requested_by_id) == (
        org.emp1.id,
        kr.id,
        rhythm.id,
        org.manager.id,
    )
    assert req.expires_at == WED_END and key.period == f"{rhythm.id}:2026-11-25"
    await service.outbox.drain()
    [card] = recorder.to("emp1")
    body = text_of(card)
    assert "每周三 10:00 前：上传客户拜访照片" in body and "客户拜访 60 次" in body and "王经理" in body
    recorder.clear()

    # The photo that answers carries the key result; the manager's rating card names it.
    recorder.media["visit"] = image_bytes()
    await service.dispatcher.dispatch(image("emp1", "visit"))
    await service.outbox.drain()
    async with service.factory() as s:
        ev = (await s.scalars(select(Evidence))).one()
    assert (ev.key_result_id, ev.request_id) == (kr.id, req.id)
    [rating] = recorder.to("mgr")
    assert "客户拜访 60 次" in text_of(rating) and "每周三 10:00 前：上传客户拜访照片" in text_of(rating)
    assert (await get(service, EvidenceRequest, req.id)).status == "fulfilled"

    # A week later the next request; a stopped rhythm asks nothing more.
    clock.set(WED_0900 + timedelta(weeks=1))
    assert len((await scheduler.tick()).sent) == 1
    async with service.factory() as s, s.begin():
        await s.execute(update(KeyResultRhythm).values(active=False))
    clock.set(WED_0900 + timedelta(weeks=2))
    assert (await scheduler.tick()).sent == []
    assert await count(service, EvidenceRequest) == 2


async def test_the_rhythm_follows_the_persons_zone(service: Service, org: Org, clock: FixedClock) -> None:
    async with service.factory() as s, s.begin():
        await s.execute(update(Person).where(Person.id == org.emp1.id).values(timezone="Europe/Berlin"))
    kr = await _kr(service, org)
    await _set(service, "emp1", org.emp1, kr, "每周三 10:00 前上传照片")
    scheduler = Scheduler(service, _table())
    clock.set(WED_0900)  # 02:00 in Berlin
    assert (await scheduler.tick()).sent == []
    clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))  # 09:00 in Berlin
    assert len((await scheduler.tick()).sent) == 1
    async with service.factory() as s:
        req = (await s.scalars(select(EvidenceRequest))).one()
    assert req.expires_at == datetime(2026, 11, 25, 22, 59, 59, tzinfo=UTC)  # the end of Wednesday in Berlin


async def test_a_public_holiday_is_skipped_not_moved(service: Service, org: Org, clock: FixedClock) -> None:
    clock.set(datetime(2026, 9, 28, 2, 0, tzinfo=UTC))  # Monday before the National Day holiday
    kr = await _kr(service, org)
    await _set(service, "emp1", org.emp1, kr, "每周三 10:00 前上传照片")
    plan = await next_due(service, 100)
    days = [p.due.period.split(":")[1] for p in plan if p.due.flow == "evidence.rhythm"]
    assert days[:3] == ["2026-09-30", "2026-10-14", "2026-10-21"]  # 2026-10-07 is a Wednesday of the holiday
    assert "打卡节奏照片" in format_plan(plan)
    scheduler = Scheduler(service, _table())
    clock.set(datetime(2026, 10, 7, 3, 0, tzinfo=UTC))
    assert (await scheduler.tick()).sent == []
    clock.set(datetime(2026, 10, 8, 3, 0, tzinfo=UTC))
    assert (await scheduler.tick()).sent == []  # not moved to the first workday after it


async def test_a_rhythm_set_after_its_deadline_starts_next_week_and_a_closed_cycle_stops_it(
    service: Service, org: Org, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 11, 25, 3, 0, tzinfo=UTC))  # Wednesday 11:00: today's 10:00 has passed
    kr = await _kr(service, org)
    await _set(service, "emp1", org.emp1, kr, "每周三 10:00 前上传照片")
    scheduler = Scheduler(service, _table())
    assert (await scheduler.tick()).sent == []
    async with service.factory() as s, s.begin():
        await s.execute(update(Cycle).values(status="closing"))
    clock.set(WED_0900 + timedelta(weeks=1))
    assert (await scheduler.tick()).sent == []
    assert await count(service, EvidenceRequest) == 0


async def test_a_catch_up_after_the_day_is_over_opens_nothing(
    service: Service, org: Org, clock: FixedClock
) -> None:
    kr = await _kr(service, org)
    await _set(service, "emp1", org.emp1, kr, "每周三 10:00 前上传照片")
    clock.set(datetime(2026, 11, 25, 17, 0, tzinfo=UTC))  # Thursday 01:00: the service was down all Wednesday
    report = await Scheduler(service, _table()).tick()
    assert len(report.sent) == 1  # handed over (the ledger records it) ...
    assert await count(service, EvidenceRequest) == 0  # ... but a request that could only expire is not sent
    async with service.factory() as s:
        row = (await s.scalars(select(ScheduledSend))).one()
    assert row.reason == "nothing to send"
