"""Photo requests stay open for phone users (issue 15 #2, #13): a photo hours later still attaches, a request
runs to the end of the person's next workday on the Chinese calendar, an unanswered one expires on its card,
the prompt does not repeat its label, and a bad image is refused in the person's language."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app.flows import SCHEDULE
from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.schedule import Sweep
from cards.action_items import ActionPhoto
from cards.actions import pack
from cards.model import Card
from handlers.evidence.evidence import sweep_evidence_requests
from storage.models import AuditLog, Evidence, EvidenceRequest
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows2 import add_item, click, count, get, image, image_bytes, text

WED_END_SHANGHAI = datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC)
"""The clock fixture is Tuesday 2026-11-24 10:00 in Shanghai: the next workday ends Wednesday 23:59:59."""


async def ask(service: Service, recorder: RecordingAdapter, who: str = "@张三", user: str = "emp1") -> Card:
    await service.dispatcher.dispatch(text("mgr", f"/evidence {who}"))
    await service.outbox.drain()
    [card] = recorder.to(user)
    recorder.clear()
    return card


async def only_request(service: Service) -> EvidenceRequest:
    async with service.factory() as s:
        return (await s.scalars(select(EvidenceRequest))).one()


def updates_to(recorder: RecordingAdapter, user: str) -> list[Card]:
    return [card for _, card, rcpt in recorder.updates if rcpt == user]


async def test_photo_five_hours_later_attaches_and_reaches_the_manager(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    card = await ask(service, recorder)
    assert "2026-11-25 23:59" in card.model_dump_json()
    assert (await only_request(service)).expires_at == WED_END_SHANGHAI

    clock.advance(timedelta(hours=5))
    recorder.media["late"] = image_bytes()
    await service.dispatcher.dispatch(image("emp1", "late"))
    await service.outbox.drain()

    [receipt] = recorder.to("emp1")
    assert receipt.header.title == "照片已收到" and "王经理" in receipt.model_dump_json()
    assert "目前没有需要你回答的事项" not in receipt.model_dump_json()
    [rating] = recorder.to("mgr")
    assert rating.header.title == "请评价行动照片"
    req = await only_request(service)
    assert req.status == "fulfilled"
    async with service.factory() as s:
        ev = (await s.scalars(select(Evidence))).one()
    assert ev.request_id == req.id
    # The request card itself now says the photo arrived (and that more photos still attach).
    [received] = updates_to(recorder, "emp1")
    assert received.header.title == "关键动作照片已收到" and received.header.colour == "green"


async def test_request_runs_to_the_end_of_the_next_workday_after_a_holiday(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 9, 30, 2, 0, tzinfo=UTC))  # Wed 10:00; 1-7 October is the National Day holiday
    card = await ask(service, recorder)
    assert (await only_request(service)).expires_at == datetime(2026, 10, 8, 15, 59, 59, tzinfo=UTC)
    assert "2026-10-08 23:59" in card.model_dump_json()


async def test_request_on_a_friday_runs_to_monday_night_in_the_persons_zone(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    async with service.factory() as s, s.begin():
        emp = await s.get(type(org.emp1), org.emp1.id)
        assert emp is not None
        emp.timezone = "Europe/Berlin"
    clock.set(datetime(2026, 11, 27, 16, 0, tzinfo=UTC))  # Friday 17:00 in Berlin
    await ask(service, recorder)
    assert (await only_request(service)).expires_at == datetime(2026, 11, 30, 22, 59, 59, tzinfo=UTC)


async def test_a_configured_window_in_minutes_still_wins(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock, settings: Settings
) -> None:
    settings.evidence.attach_window_minutes = 90
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 30))
    # The owner's own "send a photo" button says until when, as a local time.
    answer = await service.dispatcher.dispatch(click("emp1", pack(ActionPhoto(item_id=item.id))))
    assert answer.toast == "请在 2026-11-24 11:30 前在聊天中发送照片。"
    assert (await only_request(service)).expires_at == clock.now() + timedelta(minutes=90)


async def test_unanswered_request_expires_on_its_card_and_late_photos_no_longer_attach(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    assert any(isinstance(e, Sweep) and e.run is sweep_evidence_requests for e in SCHEDULE)
    await ask(service, recorder)
    clock.set(WED_END_SHANGHAI - timedelta(seconds=1))
    assert await sweep_evidence_requests(service) == 0
    assert (await only_request(service)).status == "open"

    clock.set(WED_END_SHANGHAI + timedelta(minutes=2))
    assert await sweep_evidence_requests(service) == 1
    assert await sweep_evidence_requests(service) == 0
    await service.outbox.drain()
    req = await only_request(service)
    assert req.status == "expired" and req.expires_at == WED_END_SHANGHAI
    [expired] = updates_to(recorder, "emp1")
    assert expired.header.title == "照片请求已过期" and expired.header.colour == "grey"
    body = expired.model_dump_json()
    assert "2026-11-25 23:59" in body and "王经理" in body
    assert not expired.buttons()
    async with service.factory() as s:
        audit = (await s.scalars(select(AuditLog).where(AuditLog.action == "evidence.request_expired"))).one()
    assert audit.entity == "evidence_request" and audit.entity_id == req.id

    recorder.clear()
    recorder.media["too-late"] = image_bytes()
    await service.dispatcher.dispatch(image("emp1", "too-late"))
    await service.outbox.drain()
    [reply] = recorder.to("emp1")
    assert "目前没有需要你回答的事项" in reply.model_dump_json()
    assert await count(service, Evidence) == 0


async def test_an_answered_request_does_not_expire(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    await ask(service, recorder)
    recorder.media["p"] = image_bytes()
    await service.dispatcher.dispatch(image("emp1", "p"))
    clock.set(WED_END_SHANGHAI + timedelta(days=1))
    assert await sweep_evidence_requests(service) == 0
    assert (await only_request(service)).status == "fulfilled"


async def test_prompt_without_an_action_item_does_not_repeat_its_label(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    card = await ask(service, recorder)
    body = card.model_dump_json()
    assert "：今天的关键动作" not in body and "今天的关键动作：" not in body, body
    assert "王经理 请你发送一张今天关键动作的照片。" in body


@pytest.mark.parametrize(
    ("user", "mention", "expect"),
    [
        ("emp1", "@张三", "请发送不超过 10 MB 的 JPEG、PNG、GIF 或 WebP 图片"),
        ("emp2", "@李四", "Please send a JPEG, PNG, GIF or WebP image of at most 10 MB"),
    ],
)
async def test_bad_image_is_refused_in_the_persons_language_with_what_is_accepted(
    service: Service,
    org: Org,
    recorder: RecordingAdapter,
    caplog: pytest.LogCaptureFixture,
    user: str,
    mention: str,
    expect: str,
) -> None:
    await ask(service, recorder, mention, user)
    recorder.media["heic"] = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 400  # an iPhone HEIC photo
    with caplog.at_level(logging.INFO, logger="perfloop.evidence"):
        await service.dispatcher.dispatch(image(user, "heic"))
    await service.outbox.drain()
    [reply] = recorder.to(user)
    shown = reply.model_dump_json()
    assert expect in shown and "magic" not in shown and "image/jpeg" not in shown
    assert reply.header.colour == "orange"
    [logged] = [r for r in caplog.records if r.getMessage() == "evidence image rejected"]
    assert logged.__dict__["reason"] == "type" and "magic bytes" in logged.__dict__["detail"]
    assert (await get(service, EvidenceRequest, (await only_request(service)).id)).status == "open"


async def test_an_expiry_reaches_the_requester_once_in_a_notice_or_in_their_digest(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    """Issue 15 #2: "the manager never hears". A requester who reads no daily digest (a line manager,
    ``[digest] managers_too`` off) gets one grey notice naming the person; one who reads a digest hears it
    there, not twice."""
    await ask(service, recorder)
    clock.set(WED_END_SHANGHAI + timedelta(minutes=2))
    assert await sweep_evidence_requests(service) == 1
    await service.outbox.drain()
    [notice] = recorder.to("mgr")
    assert notice.header.title == "张三 的照片请求已过期" and notice.header.colour == "grey"
    assert "/evidence @张三" in notice.model_dump_json()

    recorder.clear()
    service.settings.digest.managers_too = True
    clock.set(WED_END_SHANGHAI + timedelta(days=1))
    await ask(service, recorder)
    clock.set(WED_END_SHANGHAI + timedelta(days=3))
    assert await sweep_evidence_requests(service) == 1
    await service.outbox.drain()
    assert recorder.to("mgr") == []
