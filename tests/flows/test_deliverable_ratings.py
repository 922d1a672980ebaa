"""Deliverable ratings: who is asked, the 48 h window, the one reminder, and the owner's summary."""

from __future__ import annotations

from datetime import date, timedelta

from bot.app.service import Service
from bot.core.clock import FixedClock
from cards import deliverable_ratings as rc
from handlers.feedback.deliverable_ratings import open_deliverable_ratings, sweep_deliverable_ratings
from storage.models import DeliverableRating
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, last_to, run_as, text_of
from tests.support.flows2 import add_item
from tests.support.flows3 import audit, rows

STARS = {"completeness": "5", "timeliness": "4", "risk_disclosure": "3"}


async def test_acceptor_and_two_collaborators_rate_once_with_one_reminder(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 30), acceptor=org.manager)
    collaborators = [
        org.emp2.id,
        org.seller.id,
        org.hr.id,
        org.emp1.id,
    ]  # hr is one too many; the owner is not one
    opened = await run_as(
        service,
        org.emp1.id,
        lambda ctx: open_deliverable_ratings(ctx, item.id, collaborator_ids=collaborators),
    )
    again = await run_as(
        service,
        org.emp1.id,
        lambda ctx: open_deliverable_ratings(ctx, item.id, collaborator_ids=collaborators),
    )
    assert (opened, again) == (3, 0)
    await service.outbox.drain()
    ratings = await rows(service, DeliverableRating)
    assert {(r.rater_id, r.role) for r in ratings} == {
        (org.manager.id, "acceptor"),
        (org.emp2.id, "collaborator"),
        (org.seller.id, "collaborator"),
    }
    assert all(r.due_at - r.requested_at == timedelta(hours=48) for r in ratings)
    assert not recorder.to("hr")
    request = last_to(recorder, "mgr")
    assert "交付客户回访报告" in text_of(request)

    # The acceptor rates at once; the owner sees the summary attached to the deliverable.
    submit = button(request, rc.RatingSubmit)
    assert (await click(service, "emp2", submit, STARS)).toast_kind == "error"  # not the rater
    assert (await click(service, "mgr", submit, {"completeness": "5"})).toast_kind == "error"
    assert (await click(service, "mgr", submit, STARS)).toast_kind == "success"
    assert (await click(service, "mgr", submit, STARS)).toast_kind == "error"
    await service.outbox.drain()
    summary = text_of(last_to(recorder, "emp1"))
    assert "5.0 / 5" in summary and "1/3" in summary

    recorder.clear()
    clock.advance(timedelta(hours=23))
    assert await sweep_deliverable_ratings(service) == (0, 0)
    clock.advance(timedelta(hours=2))
    assert await sweep_deliverable_ratings(service) == (2, 0)
    assert await sweep_deliverable_ratings(service) == (0, 0)
    clock.advance(timedelta(hours=10))
    assert await sweep_deliverable_ratings(service) == (0, 0)
    await service.outbox.drain()
    assert len(recorder.to("emp2")) == 1 and len(recorder.to("seller")) == 1 and not recorder.to("mgr")
    assert "Reminder" in text_of(recorder.to("emp2")[0])  # 李四 reads English
    assert len(await audit(service, "ratings.reminded")) == 2

    # 李四 rates inside the window; 周销售 lets it pass and can no longer rate.
    seller_submit = button(recorder.to("seller")[0], rc.RatingSubmit)
    emp2_submit = button(recorder.to("emp2")[0], rc.RatingSubmit)
    assert (await click(service, "emp2", emp2_submit, {**STARS, "completeness": "3"})).toast_kind == "success"
    clock.advance(timedelta(hours=14))
    assert (await click(service, "seller", seller_submit, STARS)).toast_kind == "error"
    assert await sweep_deliverable_ratings(service) == (0, 1)
    statuses = {r.rater_id: r.status for r in await rows(service, DeliverableRating)}
    assert statuses == {org.manager.id: "submitted", org.emp2.id: "submitted", org.seller.id: "expired"}
    await service.outbox.drain()
    assert len(await audit(service, "ratings.reminded")) == 2  # still exactly one reminder each


async def test_without_acceptor_the_owners_manager_rates(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    item = await add_item(service, org.seller, deadline=date(2026, 11, 30))
    assert await run_as(service, org.seller.id, lambda ctx: open_deliverable_ratings(ctx, item.id)) == 1
    await service.outbox.drain()
    assert any(b.value.startswith("ratings.submit") for b in last_to(recorder, "smgr").buttons())
