"""Engagement and noise controls: streaks with leave, social proof, quiet hours, answering early, per-team
cadence, the answer window, mentions, pause/resume — and /history."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.localtime import person_zone
from bot.core.notify import quiet_end
from cards.catalogue import Translator
from cards.engagement import social_proof_line
from handlers.checkin.checkin import open_checkin
from handlers.feedback.deliverable_ratings import open_deliverable_ratings
from scheduler.cadence import periodic_flows, upcoming
from scheduler.calendar import calendar_from_settings
from storage.models import CheckIn, Person, QuietHours
from storage.queries import engagement as eq
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import last_to, run_as, say, text_of
from tests.support.flows2 import add_item
from tests.support.flows3 import rows


async def add_checkins(service: Service, person: Person, statuses: list[tuple[str, str]]) -> None:
    async with service.factory() as s, s.begin():
        for period, status in statuses:
            due = datetime.fromisoformat(period).replace(hour=8, tzinfo=UTC)
            s.add(CheckIn(person_id=person.id, period=period, status=status, due_at=due, progress={}))


async def person(service: Service, person_id: int) -> Person:
    async with service.factory() as s:
        p = await s.get(Person, person_id)
        assert p is not None
        return p


async def test_streak_survives_leave_and_shows_in_history(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await add_checkins(
        service,
        org.emp1,
        [
            ("2026-09-04", "submitted"),
            ("2026-09-18", "missed"),
            ("2026-10-02", "submitted"),
            ("2026-10-16", "missed"),
            ("2026-10-30", "acknowledged"),
            ("2026-11-13", "skipped"),
            ("2026-11-20", "submitted"),
            ("2026-11-27", "open"),
        ],
    )
    async with service.factory() as s:
        assert await eq.streak_for(s, org.emp1.id) == 2  # the 10-16 miss breaks it
    async with service.factory() as s, s.begin():
        emp1 = await s.get(Person, org.emp1.id)
        assert emp1 is not None
        emp1.leave_from, emp1.leave_until = date(2026, 10, 12), date(2026, 10, 20)
    async with service.factory() as s:
        assert await eq.streak_for(s, org.emp1.id) == 3  # a miss while on leave does not
    await say(service, "emp1", "/history")
    await service.outbox.drain()
    card = text_of(last_to(recorder, "emp1"))
    assert "连续按时签到：3 次" in card and "2026-11-20" in card


async def test_social_proof_counts_only_the_team_that_was_asked(service: Service, org: Org) -> None:
    await add_checkins(service, org.emp1, [("2026-11-27", "submitted")])
    await add_checkins(service, org.emp2, [("2026-11-27", "open")])
    await add_checkins(service, org.seller, [("2026-11-27", "submitted")])  # another team
    async with service.factory() as s:
        emp2 = await s.get(Person, org.emp2.id)
        assert emp2 is not None
        assert await eq.social_proof(s, emp2, "2026-11-27") == (1, 2)
    assert social_proof_line(Translator("en"), 1, 2) == "1 of 2 teammates have answered."
    assert social_proof_line(Translator("en"), 0, 2) is None


async def test_quiet_hours_hold_prompts_until_they_end(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    await say(service, "emp2", "/quiet 09:00-12:00")  # it is 10:00 in Shanghai
    await say(service, "emp2", "/quiet 25:00-08:00")
    [quiet] = await rows(service, QuietHours)
    assert (quiet.starts, quiet.ends) == ("09:00", "12:00")
    await service.outbox.drain()
    recorder.clear()
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 30), acceptor=org.manager)
    await run_as(
        service,
        org.emp1.id,
        lambda ctx: open_deliverable_ratings(ctx, item.id, collaborator_ids=[org.emp2.id]),
    )
    await service.outbox.drain()
    assert recorder.to("mgr") and not recorder.to("emp2")
    clock.advance(timedelta(hours=1, minutes=59))
    await service.outbox.drain()
    assert not recorder.to("emp2")
    clock.advance(timedelta(minutes=1))
    await service.outbox.drain()
    assert len(recorder.to("emp2")) == 1

    # A window spanning midnight.
    q = QuietHours(person_id=1, starts="22:00", ends="07:30")
    emp = await person(service, org.emp2.id)
    late = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 23:00 Shanghai
    tz = person_zone(emp, service.settings)
    assert quiet_end(q, tz, late) == datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    assert quiet_end(q, tz, datetime(2026, 11, 24, 12, 0, tzinfo=UTC)) is None
    await say(service, "emp2", "/quiet off")
    assert await rows(service, QuietHours) == []


async def test_answer_early_opens_the_next_checkin_once(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    await say(service, "emp1", "/checkin")
    await service.outbox.drain()
    [ci] = await rows(service, CheckIn, CheckIn.person_id == org.emp1.id)
    assert ci.status == "open" and ci.due_at > clock.now()
    assert any(b.value.startswith("checkin.") for c in recorder.to("emp1") for b in c.buttons())
    assert ci.period in text_of(last_to(recorder, "emp1"))
    recorder.clear()
    await say(service, "emp1", "/checkin")
    await service.outbox.drain()
    assert "已经开放" in text_of(last_to(recorder, "emp1"))
    assert len(await rows(service, CheckIn)) == 1
    # When the scheduler reaches that occurrence, nothing is sent twice.
    assert (
        await run_as(service, org.emp1.id, lambda ctx: open_checkin(ctx, period=ci.period, due_at=ci.due_at))
        is None
    )
    await say(service, "hr", "/checkin")  # no manager, no check-ins
    await service.outbox.drain()
    assert await rows(service, CheckIn, CheckIn.person_id == org.hr.id) == []


async def test_answer_early_follows_the_team_cadence_for_a_newcomer(
    service: Service, org: Org, settings: Settings, clock: FixedClock
) -> None:
    # The team runs weekly on Mondays; emp1 joined after that was set, so has no cadence of their own.
    await say(service, "mgr", "/team cadence 1 1")
    async with service.factory() as s, s.begin():
        newcomer = await s.get(Person, org.emp1.id)
        assert newcomer is not None
        newcomer.cadence_weeks = None
        newcomer.checkin_weekday = None
    await say(service, "emp1", "/checkin")
    [ci] = await rows(service, CheckIn, CheckIn.person_id == org.emp1.id)
    # The period the tick would open next for emp1 (with the team's settings), so nothing is sent twice.
    async with service.factory() as s:
        team = await eq.team_setting(s, org.manager.id)
    p = await person(service, org.emp1.id)
    cal = calendar_from_settings(settings)
    [flow] = [f for f in periodic_flows(p, settings, cal, team) if f.flow == "checkin"]
    nxt = next(upcoming(flow.series, clock.now(), p.timezone))
    assert ci.period == nxt.period and date.fromisoformat(ci.period).weekday() == 0


async def test_several_cadences_per_team(
    service: Service, org: Org, settings: Settings, clock: FixedClock
) -> None:
    await say(service, "smgr", "/team cadence 1")
    await say(service, "mgr", "/team cadence 2 3")
    await say(service, "emp1", "/team cadence 1")  # not a manager: refused
    cal = calendar_from_settings(settings)

    async def gaps(person_id: int) -> tuple[int, set[int]]:
        p = await person(service, person_id)
        [flow] = [f for f in periodic_flows(p, settings, cal) if f.flow == "checkin"]
        occ = list(upcoming(flow.series, clock.now(), p.timezone, days=90))
        nominal = [date.fromisoformat(o.period) for o in occ[:4]]
        return min((b - a).days for a, b in itertools.pairwise(nominal)), {d.weekday() for d in nominal}

    assert await gaps(org.seller.id) == (7, {settings.schedule.checkin_weekday})
    assert await gaps(org.emp1.id) == (14, {2})
    assert (await person(service, org.emp2.id)).cadence_weeks == 2
    assert (await person(service, org.manager.id)).cadence_weeks is None


async def test_team_window_mentions_and_pause(service: Service, org: Org, settings: Settings) -> None:
    await say(service, "mgr", "/team window 48")
    await say(service, "mgr", "/team mentions off")
    async with service.factory() as s:
        emp1 = await s.get(Person, org.emp1.id)
        seller = await s.get(Person, org.seller.id)
        assert emp1 is not None and seller is not None
        assert await eq.answer_window_hours(s, emp1, default=72) == 48
        assert await eq.answer_window_hours(s, seller, default=72) == 72
        assert await eq.mention_nonresponders(s, org.manager.id) is False
        assert await eq.mention_nonresponders(s, org.sales_manager.id) is True
    await say(service, "emp1", "/pause")
    assert (await person(service, org.emp1.id)).paused is True
    await say(service, "emp1", "/resume")
    assert (await person(service, org.emp1.id)).paused is False


async def test_history_of_others_is_authorised(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await add_checkins(service, org.emp1, [("2026-11-20", "submitted")])
    for uid, allowed in (("mgr", True), ("hrbp", True), ("leader", True), ("emp2", False), ("smgr", False)):
        recorder.clear()
        await say(service, uid, "/history @张三")
        await service.outbox.drain()
        body = text_of(last_to(recorder, uid))
        assert ("2026-11-20" in body) is allowed, uid
    async with service.factory() as s:
        viewed = await s.scalars(select(Person.id))
        assert list(viewed)


async def test_hooks_for_the_checkin_flow(service: Service, org: Org) -> None:
    """What the check-in confirmation and reminder cards show: streak and social-proof lines."""
    from handlers.engagement.engagement import social_proof_note, streak_note

    await add_checkins(service, org.emp1, [("2026-11-13", "submitted"), ("2026-11-27", "submitted")])
    await add_checkins(service, org.emp2, [("2026-11-27", "open")])
    assert await run_as(service, org.emp1.id, streak_note) == "🔥 已连续按时签到 2 次"
    assert await run_as(service, org.emp2.id, lambda ctx: social_proof_note(ctx, "2026-11-27")) == (
        "1 of 2 teammates have answered."
    )
    assert await run_as(service, org.emp1.id, lambda ctx: social_proof_note(ctx, "2026-11-13")) is None
