"""``/review`` opens the month's 3-2-1 review early, as ``/checkin`` does check-ins (issue 15 #13), and the
scheduler does not send it a second time when its day comes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.app.flows import SCHEDULE
from bot.app.service import Service
from bot.core.clock import FixedClock
from cards.catalogue import Translator
from scheduler.engine import Scheduler
from scheduler.table import JobTable
from storage.models import Review321
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows2 import text

# The clock fixture is Tuesday 2026-11-24 10:00 in Shanghai; November's review is due on its last workday.


async def _reviews(service: Service, person_id: int) -> list[Review321]:
    async with service.factory() as s:
        return list(await s.scalars(select(Review321).where(Review321.person_id == person_id)))


async def test_review_opens_this_months_review_once(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    answer = await service.dispatcher.dispatch(text("emp1", "/review"))
    await service.outbox.drain()
    assert answer.toast_kind != "error", answer.toast
    [review] = await _reviews(service, org.emp1.id)
    assert review.period == "2026-11" and review.status == "open"
    assert review.due_at > clock.now()  # the scheduled moment, not now
    cards = [c for c in recorder.to("emp1") if c.forms()]
    assert len(cards) == 1 and "2026-11" in cards[0].header.title

    again = await service.dispatcher.dispatch(text("emp1", "/复盘"))
    assert again.toast_kind == "error" and again.toast is not None and "2026-11" in again.toast

    recorder.clear()
    clock.advance(timedelta(days=7))  # past November's last workday: the tick reaches the same review
    await Scheduler(service, JobTable([*SCHEDULE])).tick()
    await service.outbox.drain()
    assert len(await _reviews(service, org.emp1.id)) == 1
    assert [r.period for r in await _reviews(service, org.emp2.id)] == ["2026-11"]  # the tick did run
    assert not [c for c in recorder.to("emp1") if "2026-11" in c.header.title and c.forms()]


async def test_review_needs_someone_to_answer_to(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    answer = await service.dispatcher.dispatch(text("hr", "/review"))
    assert answer.toast == Translator("zh-CN")("review_early.no_reviews")
    assert await _reviews(service, org.hr.id) == []
