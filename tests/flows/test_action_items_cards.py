"""Action items as a person meets them (issue 15): ``/actions`` lists my open items (#13), a newer card
retires the one before it (#10), and a vague ``/action`` is asked about once, keeping what was typed (#7)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from bot.app.service import Service
from bot.core.clock import FixedClock
from cards.model import Card, DatePicker, TextInput
from handlers.action_items.action_items import remind_action_item
from handlers.action_items.escalation import escalate_action_item
from storage.models import ActionItem, AuditLog
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows2 import add_item, button, click, count, get, run_job, text

# The clock fixture is Tuesday 2026-11-24 10:00 in Shanghai.


def words(card: Card) -> str:
    return card.model_dump_json()


def updates_to(recorder: RecordingAdapter, ref: str) -> list[Card]:
    return [card for r, card, _ in recorder.updates if r == ref]


# ------------------------------------------------------------------ #13 /actions


async def test_actions_lists_my_open_items_with_deadline_status_and_buttons(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    late = await add_item(service, org.emp1, deadline=date(2026, 11, 20), deliverable="提交周报")
    soon = await add_item(
        service, org.emp1, deadline=date(2026, 11, 30), deliverable="上线登录页", evidence_required=True
    )
    waiting = await add_item(
        service, org.emp1, deadline=date(2026, 11, 18), deliverable="整理清单", status="done"
    )
    await add_item(
        service, org.emp1, deadline=date(2026, 11, 10), deliverable="已验收的事", status="accepted"
    )
    await add_item(service, org.emp2, deadline=date(2026, 11, 21), deliverable="别人的事")

    answer = await service.dispatcher.dispatch(text("emp1", "/我的行动"))
    assert answer.toast_kind != "error"
    await service.outbox.drain()
    [card] = recorder.to("emp1")
    body = words(card)
    assert card.header.title == "我的行动项"
    assert body.index("提交周报") < body.index("上线登录页") < body.index("整理清单")
    assert "截止 2026-11-20 · 已逾期 4 天" in body
    assert "截止 2026-11-30 · 进行中 · 需照片佐证" in body
    assert "截止 2026-11-18 · 待验收" in body
    assert "已验收的事" not in body and "别人的事" not in body
    # One "done" and one "photo" button per item still to deliver; none for the one awaiting sign-off.
    ids = {b.value.split("|")[0] for b in card.buttons()}
    assert ids == {"action.done_listed", "action.photo"}
    button(card, "action.done_listed", item_id=late.id)
    button(card, "action.photo", item_id=soon.id)
    assert not [b for b in card.buttons() if f'"item_id":{waiting.id}' in b.value]

    # The photo button opens an evidence request for that item (the evidence flow answers).
    photo = await service.dispatcher.dispatch(click("emp1", button(card, "action.photo", item_id=soon.id)))
    assert photo.toast_kind == "success"

    # Done from the list: the item waits for sign-off and the list is shown again, updated.
    recorder.clear()
    done = await service.dispatcher.dispatch(
        click("emp1", button(card, "action.done_listed", item_id=late.id))
    )
    assert done.toast == "已标记完成，等待验收。"
    assert (await get(service, ActionItem, late.id)).status == "done"
    await service.outbox.drain()
    [relisted] = updates_to(recorder, "m-clicked")
    assert "截止 2026-11-20 · 待验收" in words(relisted)
    assert not [b for b in relisted.buttons() if f'"item_id":{late.id}' in b.value]
    # Someone else cannot use my list's buttons.
    other = await service.dispatcher.dispatch(
        click("emp2", button(card, "action.done_listed", item_id=soon.id))
    )
    assert other.toast_kind == "error"


async def test_actions_with_nothing_open_says_so_in_the_readers_language(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await service.dispatcher.dispatch(text("emp2", "/actions"))
    await service.outbox.drain()
    [card] = recorder.to("emp2")
    assert card.header.title == "My action items" and "no open action items" in words(card)


# ------------------------------------------------------------------ #10 superseded cards


async def test_a_newer_card_retires_the_one_before_and_done_retires_the_last(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    await service.dispatcher.dispatch(text("mgr", "/action @张三 2026-12-01 交付客户回访报告"))
    await service.outbox.drain()
    [first] = [d for d in recorder.sent if d.recipient == "emp1"]
    async with service.factory() as s:
        item = await s.scalar(select(ActionItem))
    assert item is not None

    clock.advance(timedelta(days=4))  # Saturday 28 November: T-3
    assert await run_job(service, org.emp1, lambda ctx: remind_action_item(ctx, item.id, kind="before"))
    await service.outbox.drain()
    [retired] = updates_to(recorder, first.message_ref)
    assert retired.buttons() == [] and "最新的卡片" in words(retired)
    reminder = recorder.sent[-1]
    assert reminder.card.header.title == "行动项即将到期"

    # Marked done from /actions: the reminder (the latest card) goes to its final state too.
    recorder.clear()
    await service.dispatcher.dispatch(text("emp1", "/actions"))
    await service.outbox.drain()
    [listing] = recorder.to("emp1")
    await service.dispatcher.dispatch(click("emp1", button(listing, "action.done_listed", item_id=item.id)))
    await service.outbox.drain()
    [final] = updates_to(recorder, reminder.message_ref)
    assert final.buttons() == [] and "张三 已标记完成" in words(final)


async def test_done_retires_the_managers_escalation_card(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 20), acceptor=org.manager)
    assert await run_job(service, org.emp1, lambda ctx: escalate_action_item(ctx, item.id, level=2))
    await service.outbox.drain()
    [overdue] = recorder.to("emp1")
    [escalation] = [d for d in recorder.sent if d.recipient == "mgr"]
    assert escalation.card.buttons()

    await service.dispatcher.dispatch(click("emp1", button(overdue, "action.done")))
    await service.outbox.drain()
    [settled] = updates_to(recorder, escalation.message_ref)
    assert settled.buttons() == [] and settled.forms() == [] and "张三 已标记完成" in words(settled)


async def test_a_decision_on_one_escalation_card_retires_the_others(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 10), acceptor=org.manager)
    assert await run_job(service, org.emp1, lambda ctx: escalate_action_item(ctx, item.id, level=3))
    await service.outbox.drain()
    sent = {d.recipient: d for d in recorder.sent}
    assert set(sent) == {"emp1", "mgr", "hrbp"}

    await service.dispatcher.dispatch(click("hrbp", button(sent["hrbp"].card, "action.close")))
    await service.outbox.drain()
    assert (await get(service, ActionItem, item.id)).status == "closed"
    for who in ("emp1", "mgr"):
        [settled] = updates_to(recorder, sent[who].message_ref)
        assert settled.buttons() == [] and "赵伙伴 已关闭这项行动" in words(settled)


# ------------------------------------------------------------------ #7 the vague guard on /action


async def test_a_vague_action_is_asked_about_once_and_keeps_what_was_typed(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    answer = await service.dispatcher.dispatch(text("mgr", "/action @张三 2026-12-04 加强沟通 +照片"))
    assert answer.toast_kind == "warning"
    assert await count(service, ActionItem) == 0
    await service.outbox.drain()
    [bounce] = recorder.to("mgr")
    assert "加强沟通" in words(bounce) and "张三" in words(bounce) and "照片" in words(bounce)
    [form] = bounce.forms()
    [deliverable] = [i for i in form.inputs if isinstance(i, TextInput)]
    [deadline] = [i for i in form.inputs if isinstance(i, DatePicker)]
    assert (deliverable.default, deadline.default) == ("加强沟通", "2026-12-04")

    # Made concrete: saved with every value kept (owner, deadline, the photo flag), also where the platform
    # asks the form in chat and the deadline question was skipped; the form is retired.
    made = await service.dispatcher.dispatch(
        click("mgr", form.submit, {"deliverable": "每周五前把客户沟通纪要发给王经理"})
    )
    assert made.toast_kind == "success"
    [item] = await _items(service)
    assert (item.owner_id, item.acceptor_id, item.deadline, item.evidence_required, item.deliverable) == (
        org.emp1.id,
        org.manager.id,
        date(2026, 12, 4),
        True,
        "每周五前把客户沟通纪要发给王经理",
    )
    await service.outbox.drain()
    assert [c.forms() for c in updates_to(recorder, "m-clicked")] == [[]]


async def test_a_vague_action_submitted_again_unchanged_is_saved_as_written(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await service.dispatcher.dispatch(text("mgr", "/action @张三 2026-12-04 进一步加强团队沟通协作能力"))
    await service.outbox.drain()
    [form] = recorder.to("mgr")[0].forms()
    values: dict[str, str | list[str]] = {i.name: i.default or "" for i in form.inputs}
    made = await service.dispatcher.dispatch(click("mgr", form.submit, values))
    assert made.toast_kind == "success"
    [item] = await _items(service)
    assert item.deliverable == "进一步加强团队沟通协作能力" and item.evidence_required is False
    async with service.factory() as s:
        actions = list(await s.scalars(select(AuditLog.action).where(AuditLog.action.like("vague.%"))))
    assert sorted(actions) == ["vague.accepted", "vague.bounced"]
    # A concrete command is created straight away.
    await service.dispatcher.dispatch(text("mgr", "/action @李四 2026-12-04 交付客户回访报告"))
    assert len(await _items(service)) == 2


async def _items(service: Service) -> list[ActionItem]:
    async with service.factory() as s:
        return list(await s.scalars(select(ActionItem).order_by(ActionItem.id)))
