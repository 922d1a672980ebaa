"""3-2-1 review: prompts, validation, vague new action, manager confirmation → action item."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.context import Context
from cards.action_items import ActionAck, ActionDone
from cards.flow_actions import ReviewConfirm, ReviewEdit, ReviewSubmit
from cards.snooze import Snooze
from handlers.review321.review321 import open_review
from storage.models import ActionItem, AuditLog, OutboxMessage, Person, Review321
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, has_enabled, last_to, last_update, run_as, text_of

DUE = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
ANSWERS = {
    "solid_action": "把发布检查单做成模板",
    "change_brought": "本月上线回滚次数从 3 次降到 0 次",
    "blocker": "测试环境经常被占用",
    "new_action": "每天站会后 10 分钟同步测试环境排期",
    "deadline": "2026-12-04",
}


async def _open(service: Service, person: Person, period: str = "2026-11") -> Review321 | None:
    async def fn(ctx: Context) -> Review321 | None:
        return await open_review(ctx, period=period, due_at=DUE)

    return await run_as(service, person.id, fn)


async def _get(service: Service, review_id: int) -> Review321:
    async with service.factory() as s:
        row = await s.get(Review321, review_id)
        assert row is not None
        return row


async def _items(service: Service) -> list[ActionItem]:
    async with service.factory() as s:
        return list(await s.scalars(select(ActionItem).order_by(ActionItem.id)))


async def test_open_card_prompts_and_idempotency(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    review = await _open(service, org.emp1)
    assert review is not None and await _open(service, org.emp1) is None
    await service.outbox.drain()
    (card,) = recorder.to("emp1")
    inputs = card.forms()[0].inputs
    assert [i.name for i in inputs] == ["solid_action", "change_brought", "blocker", "new_action", "deadline"]
    assert inputs[-1].kind == "date_picker" and inputs[-1].default == "2026-12-07"  # due day + 7
    assert button(card, ReviewSubmit).review_id == review.id
    assert button(card, Snooze) == Snooze(flow="review", ref_id=review.id)


async def test_full_path_to_action_item(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    review = await _open(service, org.emp1)
    assert review is not None
    submit = ReviewSubmit(review_id=review.id)

    answer = await click(service, "emp1", submit, dict(ANSWERS, blocker="", deadline="2026-11-01"))
    assert answer.toast_kind == "error" and (await _get(service, review.id)).status == "open"
    await service.outbox.drain()
    error_card = last_update(recorder, "emp1")
    assert "截止日期不能早于今天（2026-11-24）" in text_of(error_card) and "阻碍" in text_of(error_card)
    assert (await click(service, "emp2", submit, ANSWERS)).toast_kind == "error"

    await click(service, "emp1", submit, ANSWERS, message_ref="rv-1")
    await service.outbox.drain()
    row = await _get(service, review.id)
    assert (row.status, row.new_action, row.new_action_deadline) == (
        "submitted",
        ANSWERS["new_action"],
        date(2026, 12, 4),
    )
    assert has_enabled(last_update(recorder, "emp1"), ReviewEdit)
    mgr_card = last_to(recorder, "mgr")
    form = mgr_card.forms()[0]
    assert [i.name for i in form.inputs] == ["deliverable", "deadline", "acceptor"]
    acceptor = form.inputs[2]
    assert acceptor.kind == "select"
    options = {o.label: o.value for o in acceptor.options}
    assert set(options) == {"王经理", "刘总", "赵伙伴"} and acceptor.default == str(org.manager.id)
    confirm = button(mgr_card, ReviewConfirm)

    for who in ("emp2", "smgr", "emp1"):
        assert (
            await click(service, who, confirm, {"acceptor": str(org.manager.id)})
        ).toast_kind == "error", who
    forged = await click(service, "mgr", confirm, {"acceptor": str(org.seller.id)})
    assert forged.toast == "所选验收人不在可选范围内。"
    assert await _items(service) == []

    await click(
        service,
        "mgr",
        confirm,
        {"deliverable": ANSWERS["new_action"], "deadline": "2026-12-11", "acceptor": str(org.hrbp.id)},
        message_ref="mgr-rv",
    )
    await service.outbox.drain()
    (item,) = await _items(service)
    assert (item.owner_id, item.acceptor_id, item.created_by_id, item.source, item.source_id) == (
        org.emp1.id,
        org.hrbp.id,
        org.manager.id,
        "review",
        review.id,
    )
    assert (item.deliverable, item.deadline, item.status) == (
        ANSWERS["new_action"],
        date(2026, 12, 11),
        "open",
    )
    row = await _get(service, review.id)
    assert (row.status, row.action_item_id, row.confirmed_by_id) == ("confirmed", item.id, org.manager.id)
    decided = last_update(recorder, "mgr")
    assert not decided.forms() and "2026-12-11" in text_of(decided) and "赵伙伴" in text_of(decided)
    told = last_to(recorder, "emp1")
    assert "2026-12-11" in text_of(told) and "赵伙伴" in text_of(told)

    assert (
        await click(service, "mgr", confirm, {"acceptor": str(org.hrbp.id)})
    ).toast == "这张卡片已经处理过了。"
    assert len(await _items(service)) == 1
    assert (await click(service, "emp1", submit, ANSWERS)).toast == "上级已经确认了这份复盘，不能再修改。"


async def test_vague_new_action_bounced_once(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    review = await _open(service, org.emp1)
    assert review is not None
    answer = await click(
        service, "emp1", ReviewSubmit(review_id=review.id), dict(ANSWERS, new_action="提升效率")
    )
    await service.outbox.drain()
    assert answer.toast_kind == "warning" and (await _get(service, review.id)).status == "open"
    assert "多久一次" in text_of(last_update(recorder, "emp1"))
    assert recorder.to("mgr") == []

    await click(service, "emp1", ReviewSubmit(review_id=review.id), ANSWERS)
    assert (await _get(service, review.id)).status == "submitted"


async def test_manager_adjusted_deliverable_is_guarded_too(service: Service, org: Org) -> None:
    review = await _open(service, org.emp1)
    assert review is not None
    await click(service, "emp1", ReviewSubmit(review_id=review.id), ANSWERS)
    confirm = ReviewConfirm(review_id=review.id)
    answer = await click(
        service, "mgr", confirm, {"deliverable": "加强沟通", "acceptor": str(org.manager.id)}
    )
    assert answer.toast_kind == "warning" and await _items(service) == []
    better = "每周五前把测试环境排期表发到群里"
    await click(
        service,
        "mgr",
        confirm,
        {"deliverable": better, "deadline": "2026-12-04", "acceptor": str(org.manager.id)},
    )
    (item,) = await _items(service)
    assert (item.deliverable, item.acceptor_id) == (better, org.manager.id)


async def test_edit_before_confirmation_updates_manager(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    review = await _open(service, org.emp1)
    assert review is not None
    await click(service, "emp1", ReviewSubmit(review_id=review.id), ANSWERS)
    await service.outbox.drain()
    await click(service, "emp1", ReviewEdit(review_id=review.id))
    await click(service, "emp1", ReviewSubmit(review_id=review.id), dict(ANSWERS, blocker="缺少一台测试机"))
    await service.outbox.drain()
    assert "缺少一台测试机" in text_of(last_update(recorder, "mgr"))
    async with service.factory() as s:
        assert await s.scalar(select(func.count()).select_from(Review321)) == 1
    assert (
        await click(service, "mgr", ReviewConfirm(review_id=review.id), {})
    ).toast == "已确认，行动项已生成。"
    (item,) = await _items(service)
    assert (item.acceptor_id, item.deadline) == (org.manager.id, date(2026, 12, 4))


async def test_cannot_confirm_before_submission(service: Service, org: Org) -> None:
    review = await _open(service, org.emp1)
    assert review is not None
    answer = await click(
        service, "mgr", ReviewConfirm(review_id=review.id), {"acceptor": str(org.manager.id)}
    )
    assert answer.toast == "张三 还没有提交这份复盘。"


async def test_confirmed_action_goes_through_the_action_item_flow(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    """The "1" is an action item like any other: created at the bot's clock (not the wall clock), audited
    as ``action_item.created``, and its owner gets the action-item card the reminders later update."""
    review = await _open(service, org.emp1)
    assert review is not None
    await click(service, "emp1", ReviewSubmit(review_id=review.id), ANSWERS)
    clock.advance(timedelta(hours=5, minutes=7))
    confirmed_at = clock.now()
    await service.outbox.drain()
    recorder.clear()

    await click(service, "mgr", ReviewConfirm(review_id=review.id), {"acceptor": str(org.hrbp.id)})
    await service.outbox.drain()
    (item,) = await _items(service)
    assert item.created_at == confirmed_at and item.created_by_id == org.manager.id
    async with service.factory() as s:
        created = list(await s.scalars(select(AuditLog).where(AuditLog.action == "action_item.created")))
        card_keys = list(
            await s.scalars(select(OutboxMessage.card_key).where(OutboxMessage.card_key.is_not(None)))
        )
    assert [(a.entity, a.entity_id, a.actor_id) for a in created] == [
        ("action_item", item.id, org.manager.id)
    ]
    assert created[0].detail["source"] == "review" and created[0].detail["source_id"] == review.id
    assert f"action-item:{item.id}" in card_keys
    (owner_card,) = [c for c in recorder.to("emp1") if c.header.title == "新的行动项"]
    assert button(owner_card, ActionDone).item_id == item.id
    assert button(owner_card, ActionAck).item_id == item.id
    assert "赵伙伴" in text_of(owner_card) and "2026-12-04" in text_of(owner_card)
    told = last_to(recorder, "emp1")  # the confirmation still comes last, as before
    assert "2026-12-04" in text_of(told) and "赵伙伴" in text_of(told)
