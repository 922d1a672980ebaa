"""Issue 15 #1 and #9 for the check-in and the 3-2-1: a bounced form (vague comment, a wrong value) comes back
with every value the person entered, so submitting it again as shown saves what they meant; and each card
offers one way to choose."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from bot.app.service import Service
from bot.core.context import Context
from cards.flow_actions import CheckinAnswer, CheckinSubmit, ReviewConfirm, ReviewSubmit
from cards.model import Actions, Card, Select
from handlers.checkin.checkin import open_checkin
from handlers.review321.review321 import open_review
from storage.models import ActionItem, CheckIn, Person, Review321
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, last_to, last_update, run_as, text_of

DUE = datetime.fromisoformat("2026-11-27T08:00:00+00:00")


def as_shown(card: Card) -> dict[str, Any]:
    """What a client submits when the person touches nothing: every input's value as the card shows it."""
    (form,) = card.forms()
    return {i.name: i.default for i in form.inputs if i.default is not None}


async def _checkin(service: Service, person: Person) -> CheckIn:
    async def fn(ctx: Context) -> CheckIn | None:
        return await open_checkin(ctx, period="2026-11-27", due_at=DUE)

    checkin = await run_as(service, person.id, fn)
    assert checkin is not None
    return checkin


async def _review(service: Service, person: Person) -> Review321:
    async def fn(ctx: Context) -> Review321 | None:
        return await open_review(ctx, period="2026-11", due_at=DUE)

    review = await run_as(service, person.id, fn)
    assert review is not None
    return review


async def _items(service: Service) -> list[ActionItem]:
    async with service.factory() as s:
        return list(await s.scalars(select(ActionItem)))


async def test_bounced_followup_keeps_the_decision_and_resubmitting_opens_the_followup(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    checkin = await _checkin(service, org.emp1)
    await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), {"goal_overall": "40"})
    await service.outbox.drain()
    summary = last_to(recorder, "mgr")
    submit = button(summary, CheckinAnswer)

    chosen = {**as_shown(summary), "decision": "followup", "comment": "加强沟通"}
    answer = await click(service, "mgr", submit, chosen, message_ref="mgr-ci")
    await service.outbox.drain()
    assert answer.toast_kind == "warning"
    bounced = last_update(recorder, "mgr")
    assert as_shown(bounced) == {"decision": "followup", "comment": "加强沟通"}

    await click(service, "mgr", button(bounced, CheckinAnswer), as_shown(bounced), message_ref="mgr-ci")
    async with service.factory() as s:
        row = await s.get(CheckIn, checkin.id)
        assert row is not None
        assert (row.status, row.manager_comment) == ("followup", "加强沟通")
    (item,) = await _items(service)
    assert (item.source, item.source_id, item.owner_id) == ("checkin", checkin.id, org.manager.id)
    assert "加强沟通" in item.deliverable


async def test_checkin_reply_card_offers_one_way_to_choose(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    checkin = await _checkin(service, org.emp1)
    await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), {"goal_overall": "40"})
    await service.outbox.drain()
    summary = last_to(recorder, "mgr")
    assert not [el for el in summary.elements if isinstance(el, Actions)]
    assert [unpack_name(b.value) for b in summary.buttons()] == ["checkin.answer"]
    (decision,) = [i for i in summary.forms()[0].inputs if isinstance(i, Select)]
    assert decision.default == "acknowledged"


def unpack_name(value: str) -> str:
    return value.split("|", 1)[0]


async def test_checkin_error_keeps_what_the_employee_wrote(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    checkin = await _checkin(service, org.emp1)
    form = {"goal_overall": "", "obstacles": "测试环境不稳定", "support": "借一台测试机"}
    answer = await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), form, message_ref="ci")
    await service.outbox.drain()
    assert answer.toast_kind == "error"
    shown = as_shown(last_update(recorder, "emp1"))
    assert (shown["obstacles"], shown["support"]) == ("测试环境不稳定", "借一台测试机")


REVIEW = {
    "solid_action": "把发布检查单做成模板",
    "change_brought": "回滚次数从 3 次降到 0 次",
    "blocker": "测试环境经常被占用",
    "new_action": "加强沟通",
    "deadline": "2026-12-04",
}


async def test_bounced_review_keeps_every_answer(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    review = await _review(service, org.emp1)
    answer = await click(service, "emp1", ReviewSubmit(review_id=review.id), REVIEW, message_ref="rv")
    await service.outbox.drain()
    assert answer.toast_kind == "warning"
    bounced = last_update(recorder, "emp1")
    assert as_shown(bounced) == REVIEW
    await click(service, "emp1", button(bounced, ReviewSubmit), as_shown(bounced), message_ref="rv")
    async with service.factory() as s:
        row = await s.get(Review321, review.id)
        assert row is not None
        assert (row.status, row.new_action, row.new_action_deadline) == (
            "submitted",
            "加强沟通",
            date(2026, 12, 4),
        )


async def test_review_error_with_an_odd_deadline_still_comes_back(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    review = await _review(service, org.emp1)
    form = {**REVIEW, "blocker": "", "deadline": "2026-12-04T00:00:00+08:00"}
    answer = await click(service, "emp1", ReviewSubmit(review_id=review.id), form, message_ref="rv")
    await service.outbox.drain()
    assert answer.toast_kind == "error"
    shown = as_shown(last_update(recorder, "emp1"))
    assert (shown["deadline"], shown["solid_action"]) == ("2026-12-04", REVIEW["solid_action"])


async def test_bounced_confirmation_keeps_deliverable_deadline_and_acceptor(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    review = await _review(service, org.emp1)
    concrete = {**REVIEW, "new_action": "每天站会后 10 分钟同步测试环境排期"}
    await click(service, "emp1", ReviewSubmit(review_id=review.id), concrete)
    await service.outbox.drain()
    summary = last_to(recorder, "mgr")
    chosen = {"deliverable": "加强沟通", "deadline": "2026-12-11", "acceptor": str(org.hrbp.id)}
    answer = await click(service, "mgr", button(summary, ReviewConfirm), chosen, message_ref="mgr-rv")
    await service.outbox.drain()
    assert answer.toast_kind == "warning" and await _items(service) == []
    bounced = last_update(recorder, "mgr")
    assert as_shown(bounced) == chosen
    assert "加强沟通" in text_of(bounced)

    await click(service, "mgr", button(bounced, ReviewConfirm), as_shown(bounced), message_ref="mgr-rv")
    (item,) = await _items(service)
    assert (item.deliverable, item.deadline, item.acceptor_id) == (
        "加强沟通",
        date(2026, 12, 11),
        org.hrbp.id,
    )
