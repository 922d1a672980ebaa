"""The monthly growth snapshot (issue 20 #4): sent on the first workday of the month (Chinese calendar),
once per person and month, with figures checked by hand, quiet hours and leave respected; ``/snapshot``
for oneself and, with ``@name``, for those one may oversee; the PDF behind a signed, expiring link."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.app.service import Service
from bot.core.clock import FixedClock
from cards.model import Card, Image
from handlers.snapshot import links
from handlers.snapshot.api import pdf_for_link
from handlers.snapshot.wave import Renderer, run_wave
from storage.models import (
    ActionItem,
    CheckIn,
    Cycle,
    CycleParticipant,
    Evidence,
    Goal,
    OutboxMessage,
    PeerFeedback,
    Person,
    QuietHours,
    Recognition,
    SelfAssessment,
    Snapshot,
)
from storage.queries import snapshot as sq
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import say

SH = ZoneInfo("Asia/Shanghai")


def sh(y: int, m: int, d: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=SH).astimezone(UTC)


async def wave(service: Service) -> int:
    report = await run_wave(service, renderer=Renderer(processes=1))
    return report.sent


async def ask(service: Service, recorder: RecordingAdapter, uid: str, text: str) -> tuple[Card | None, str]:
    """The card ``uid`` gets back for ``text`` (None when refused) and the toast."""
    recorder.clear()
    answer = await say(service, uid, text)
    await service.outbox.drain()
    cards = recorder.to(uid)
    return (cards[-1] if cards and answer.toast_kind != "error" else None), answer.toast or ""


async def snapshot_rows(service: Service) -> list[Snapshot]:
    async with service.factory() as s:
        return list(await s.scalars(select(Snapshot).order_by(Snapshot.person_id)))


# ------------------------------------------------------------------ when, and only once
async def test_october_snapshot_waits_for_the_first_workday_after_national_day(
    service: Service, org: Org, clock: FixedClock
) -> None:
    """1-7 October 2026 are the National Day holidays: September's snapshot goes out on Thursday 8 October
    at 10:00 Shanghai time, not on 1 October, and a second run sends nothing."""
    clock.set(sh(2026, 10, 1, 10))
    assert await wave(service) == 0
    clock.set(sh(2026, 10, 7, 18))
    assert await wave(service) == 0
    clock.set(sh(2026, 10, 8, 9, 59))
    assert await wave(service) == 0
    clock.set(sh(2026, 10, 8, 10))
    assert await wave(service) == len(org.everyone)
    rows = await snapshot_rows(service)
    assert {r.month for r in rows} == {"2026-09"}
    assert len(rows) == len(org.everyone)
    clock.set(sh(2026, 10, 8, 14))
    assert await wave(service) == 0
    async with service.factory() as s:
        cards = await s.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.card_key == "snapshot:2026-09")
        )
    assert cards == len(org.everyone)


async def test_a_make_up_sunday_is_the_first_workday(service: Service, org: Org, clock: FixedClock) -> None:
    """January 2026: the 1st-3rd are New Year holidays and Sunday the 4th is a make-up workday."""
    clock.set(sh(2026, 1, 4, 10))
    assert await wave(service) == len(org.everyone)
    assert {r.month for r in await snapshot_rows(service)} == {"2025-12"}


async def test_leave_and_downtime_record_the_snapshot_without_a_card(
    service: Service, org: Org, clock: FixedClock
) -> None:
    async with service.factory() as s, s.begin():
        emp1 = await s.get(Person, org.emp1.id)
        assert emp1 is not None
        emp1.leave_from, emp1.leave_until = date(2026, 11, 1), date(2026, 11, 5)
    clock.set(sh(2026, 11, 2, 10))
    assert await wave(service) == len(org.everyone) - 1
    status = {r.person_id: r.status for r in await snapshot_rows(service)}
    assert status[org.emp1.id] == "skipped"
    assert {s for pid, s in status.items() if pid != org.emp1.id} == {"sent"}
    clock.set(sh(2026, 12, 5, 10))  # December's first workday was the 1st: more than 48 h ago
    assert await wave(service) == 0
    december = [r for r in await snapshot_rows(service) if r.month == "2026-11"]
    assert {r.status for r in december} == {"missed"}


async def test_quiet_hours_hold_the_card(service: Service, org: Org, clock: FixedClock) -> None:
    async with service.factory() as s, s.begin():
        s.add(QuietHours(person_id=org.emp1.id, starts="09:00", ends="12:00"))
    clock.set(sh(2026, 11, 2, 10))
    await wave(service)
    async with service.factory() as s:
        row = await s.scalar(
            select(OutboxMessage).where(OutboxMessage.dedupe_key == f"snapshot:{org.emp1.id}:2026-10")
        )
        other = await s.scalar(
            select(OutboxMessage).where(OutboxMessage.dedupe_key == f"snapshot:{org.emp2.id}:2026-10")
        )
    assert row is not None and other is not None
    assert row.next_attempt_at == sh(2026, 11, 2, 12)
    assert other.next_attempt_at == sh(2026, 11, 2, 10)


async def test_the_card_carries_the_image(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    clock.set(sh(2026, 11, 2, 10))
    await wave(service)
    await service.outbox.drain()
    card = recorder.to("emp1")[-1]
    assert card.header.title == "2026年10月成长快照"
    images = [e for e in card.elements if e.kind == "image"]
    assert len(images) == 1
    assert (service.settings.media.dir / images[0].media_id[:2] / images[0].media_id).exists()
    assert recorder.to("emp2")[-1].header.title == "Growth snapshot, October 2026"


# ------------------------------------------------------------------ the figures, by hand
async def test_figures_of_a_month_computed_by_hand(service: Service, org: Org) -> None:
    """September 2026 for 张三 (Shanghai). Every row below says whether it counts and why."""
    e = org.emp1.id
    at = sh  # local Shanghai times
    async with service.factory() as s, s.begin():
        cycle = Cycle(
            workspace_id=org.workspace.id, code="2026-H2", status="active", starts_on=date(2026, 7, 1)
        )
        s.add(cycle)
        await s.flush()
        s.add(CycleParticipant(cycle_id=cycle.id, person_id=e))
        g1 = Goal(cycle_id=cycle.id, person_id=e, objective="提升交付质量", weight=60, position=0)
        g2 = Goal(cycle_id=cycle.id, person_id=e, objective="完成客户访谈", weight=40, position=1)
        s.add_all([g1, g2])
        await s.flush()

        def checkin(day: date, status: str, submitted: datetime | None = None, **kw: object) -> CheckIn:
            return CheckIn(
                person_id=e,
                cycle_id=cycle.id,
                period=day.isoformat(),
                status=status,
                due_at=at(day.year, day.month, day.day, 16),
                submitted_at=submitted,
                **kw,
            )

        s.add_all(
            [
                checkin(date(2026, 8, 21), "acknowledged", at(2026, 8, 21, 17)),  # August: streak only
                checkin(date(2026, 9, 4), "missed"),  # due, not on time; breaks the streak
                checkin(date(2026, 9, 11), "skipped"),  # neither
                checkin(
                    date(2026, 9, 18),
                    "acknowledged",
                    at(2026, 9, 18, 18),
                    progress={str(g1.id): 30, str(g2.id): 50},
                ),
                checkin(
                    date(2026, 9, 25),
                    "submitted",
                    at(2026, 9, 26, 9),
                    progress={str(g1.id): 50, str(g2.id): 100},  # the latest answered: 0.6*50+0.4*100 = 70
                ),
                checkin(date(2026, 9, 30), "open"),  # still answerable: neither
                checkin(date(2026, 10, 9), "acknowledged", at(2026, 10, 9, 17)),  # October: not counted
            ]
        )

        def item(deadline: date, status: str, **kw: object) -> ActionItem:
            return ActionItem(
                owner_id=e,
                source="manual",
                deliverable="交付物",
                deadline=deadline,
                status=status,
                created_at=at(2026, 8, 20),
                **kw,
            )

        s.add_all(
            [
                item(date(2026, 9, 10), "accepted", done_at=at(2026, 9, 9)),  # done in September
                item(date(2026, 9, 20), "done", done_at=at(2026, 9, 30, 23, 59)),  # done in September
                item(date(2026, 9, 15), "done", done_at=at(2026, 10, 2)),  # overdue at the end of September
                item(date(2026, 9, 30), "open"),  # overdue: the month is over
                item(date(2026, 10, 5), "open"),  # not yet due
                item(date(2026, 9, 12), "closed", closed_at=at(2026, 9, 20)),  # cancelled in time
                item(date(2026, 8, 30), "done", done_at=at(2026, 8, 29)),  # August
            ]
        )

        def photo(received: datetime, rating: str | None) -> Evidence:
            return Evidence(
                person_id=e,
                file_path="x",
                sha256="0" * 64,
                size=1,
                mime="image/jpeg",
                received_at=received,
                rating=rating,
            )

        s.add_all(
            [
                photo(at(2026, 9, 1, 0, 1), "meets"),
                photo(at(2026, 9, 15), "improve"),
                photo(at(2026, 9, 30, 23), None),
                photo(at(2026, 8, 31, 23, 59), "meets"),  # August 31 in Shanghai
                photo(at(2026, 10, 1, 0, 0), "support"),  # October
            ]
        )
        s.add_all(
            [
                Recognition(
                    from_person_id=org.emp2.id,
                    to_person_id=e,
                    reason="谢谢",
                    points=1,
                    created_at=at(2026, 9, 3),
                ),
                Recognition(
                    from_person_id=org.manager.id,
                    to_person_id=e,
                    reason="好",
                    points=3,
                    created_at=at(2026, 9, 29),
                ),
                Recognition(
                    from_person_id=org.emp2.id,
                    to_person_id=e,
                    reason="早",
                    points=2,
                    created_at=at(2026, 8, 29),
                ),
            ]
        )
        for rater, scores in (
            (org.emp2.id, {"responsiveness": 4, "quality": 3, "collaboration": 5, "ownership": 3}),
            (org.seller.id, {"responsiveness": 5, "quality": 4, "collaboration": 4, "ownership": 3}),
            (org.hrbp.id, {"responsiveness": 3, "quality": 4, "collaboration": 4, "ownership": 3}),
        ):
            s.add(
                PeerFeedback(
                    cycle_id=cycle.id,
                    subject_id=e,
                    rater_id=rater,
                    role="peer",
                    status="answered",
                    scores=scores,
                    released_at=at(2026, 9, 20),
                )
            )
        s.add(
            SelfAssessment(
                cycle_id=cycle.id,
                person_id=e,
                status="submitted",
                answers={"dims": {"responsiveness": 5, "quality": 4, "collaboration": 4, "ownership": 4}},
            )
        )
    async with service.factory() as s:
        person = await s.get(Person, e)
        assert person is not None
        window = sq.MonthWindow.of("2026-09", SH)
        fig = (await sq.month_figures(s, [person], window, threshold=3))[e]
    assert (fig.checkins_due, fig.checkins_on_time) == (3, 2)
    assert fig.streak == 2  # 25 Sep and 18 Sep answered; 11 Sep skipped is stepped over; 4 Sep missed
    assert fig.evidence == 3
    assert fig.ratings == {"meets": 1, "improve": 1, "unrated": 1}
    assert (fig.actions_done, fig.actions_overdue) == (2, 2)
    assert (fig.kudos, fig.kudos_points) == (2, 4)
    assert [(g.title, g.weight, g.progress) for g in fig.goals] == [
        ("提升交付质量", 60, 50),
        ("完成客户访谈", 40, 100),
    ]
    assert fig.goal_progress == 70
    assert fig.radar is not None
    assert fig.radar.answered == 3
    assert fig.radar.peers == {
        "responsiveness": 4.0,
        "quality": 3.67,
        "collaboration": 4.33,
        "ownership": 3.0,
    }
    assert fig.radar.self_scores == {
        "responsiveness": 5.0,
        "quality": 4.0,
        "collaboration": 4.0,
        "ownership": 4.0,
    }
    assert sq.MonthFigures.from_json(fig.as_json()) == fig
    async with service.factory() as s:
        october = (await sq.month_figures(s, [person], sq.MonthWindow.of("2026-10", SH), threshold=3))[e]
    assert october.radar is None  # no round closed in October


# ------------------------------------------------------------------ /snapshot and who may see what
async def test_my_snapshot_in_chat_with_a_pdf_link(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    card, _ = await ask(service, recorder, "emp1", "/snapshot")
    assert card is not None
    assert card.header.title == "2026年10月成长快照"  # computed now: no wave yet
    assert any(el.kind == "image" for el in card.elements)
    token = card.model_dump_json().split("/snapshot/", 1)[1].split(")", 1)[0]
    pdf = await pdf_for_link(service.factory, service.settings, token, clock.now())
    assert pdf is not None and pdf.startswith(b"%PDF")
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert await pdf_for_link(service.factory, service.settings, forged, clock.now()) is None
    later = clock.now() + timedelta(hours=service.settings.snapshot.link_hours + 1)
    assert await pdf_for_link(service.factory, service.settings, token, later) is None
    chinese, _ = await ask(service, recorder, "emp1", "/成长")
    assert chinese is not None and chinese.header.title == card.header.title


async def test_the_stored_snapshot_is_what_chat_shows(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    clock.set(sh(2026, 11, 2, 10))
    await wave(service)
    clock.set(sh(2026, 11, 20, 10))
    card, _ = await ask(service, recorder, "emp1", "/snapshot")
    assert card is not None
    assert card.header.title == "2026年10月成长快照"
    [row] = [r for r in await snapshot_rows(service) if r.person_id == org.emp1.id]
    images = [el for el in card.elements if isinstance(el, Image)]
    assert images[0].media_id == row.media_id


async def test_managers_hrbps_and_hr_may_see_a_snapshot_others_may_not(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    for viewer in ("mgr", "hrbp", "hr", "leader"):
        card, _ = await ask(service, recorder, viewer, "/snapshot @张三")
        assert card is not None, viewer
        assert card.header.title.startswith("张三 的"), viewer
    for viewer in ("emp2", "smgr", "seller"):
        card, toast = await ask(service, recorder, viewer, "/snapshot @张三")
        assert card is None, viewer
        assert "张三" in toast, viewer
    _, why = await ask(service, recorder, "smgr", "/snapshot @张三")
    assert "经理" in why and "HRBP" in why
    card, toast = await ask(service, recorder, "mgr", "/snapshot @无名氏")
    assert card is None and "无名氏" in toast


async def test_a_pdf_link_stops_working_when_the_viewer_may_no_longer_see(
    service: Service, org: Org, clock: FixedClock
) -> None:
    link = links.new_link(
        service.settings, subject_id=org.emp1.id, month="2026-10", viewer_id=org.emp2.id, now=clock.now()
    )
    async with service.factory() as s, s.begin():
        token = links.make_token(await links.signing_key(s, service.settings, clock.now()), link)
    assert await pdf_for_link(service.factory, service.settings, token, clock.now()) is None
