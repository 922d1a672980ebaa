"""Issue 15 #3 and #13: check-in answers typed in chat land under the question they answer; a message typed
for the whole form is kept (never filed under obstacles) and the rest is asked for; ``/cancel`` with nothing
open says so. Also the chat-platform side of #1: a bounced answer collected in chat keeps the decision."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select

from bot.app.service import Service
from bot.core.chatforms import parse_answer
from bot.core.context import Context
from cards.flow_actions import CheckinAnswer, CheckinSubmit, ReviewSubmit
from cards.model import Card
from handlers.checkin.checkin import open_checkin
from handlers.review321.review321 import open_review
from storage.models import ActionItem, CheckIn, ConversationState, Person, Review321
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import click, last_to, last_update, run_as, say, text_of

DUE = datetime.fromisoformat("2026-11-27T08:00:00+00:00")
SAID = "联调卡在支付回调，需要运维开白名单"


class NoInputs(RecordingAdapter):
    """WeCom and DingTalk: cards hold no text inputs, so a form is answered in chat."""

    supports_text_inputs: ClassVar[bool] = False


@pytest.fixture
def chat_only(service: Service) -> NoInputs:
    adapter = NoInputs()
    service.registry.add(adapter)  # replaces the "rec" adapter: same platform, no text inputs
    return adapter


async def _checkin(service: Service, person: Person) -> CheckIn:
    async def fn(ctx: Context) -> CheckIn | None:
        return await open_checkin(ctx, period="2026-11-27", due_at=DUE)

    checkin = await run_as(service, person.id, fn)
    assert checkin is not None
    return checkin


async def _get(service: Service, checkin_id: int) -> CheckIn:
    async with service.factory() as s:
        row = await s.get(CheckIn, checkin_id)
        assert row is not None
        return row


async def _states(service: Service) -> int:
    async with service.factory() as s:
        return int(await s.scalar(select(func.count()).select_from(ConversationState)) or 0)


def _body(card: Card) -> str:
    return text_of(card)


async def test_a_message_for_the_whole_form_is_kept_and_the_rest_asked(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    checkin = await _checkin(service, org.emp1)
    await service.outbox.drain()
    recorder.clear()

    await say(service, "emp1", SAID)
    await service.outbox.drain()
    row = await _get(service, checkin.id)
    assert (row.status, row.obstacles, row.progress) == ("open", None, {"note": SAID})
    asked = last_to(recorder, "emp1")
    assert asked.header.title == "请回答（1/3）"
    assert "进展说明" in _body(asked) and "进度：整体进度" in _body(asked)
    assert SAID in _body(last_update(recorder, "emp1"))  # the check-in card shows the kept text

    await say(service, "emp1", "10")  # ten per cent, not the tenth option
    await say(service, "emp1", "跳过")
    await say(service, "emp1", "请帮忙催一下运维")
    await service.outbox.drain()
    row = await _get(service, checkin.id)
    assert (row.status, row.progress, row.obstacles, row.support) == (
        "submitted",
        {"overall": 10, "note": SAID},
        None,
        "请帮忙催一下运维",
    )
    assert await _states(service) == 0
    summary = last_to(recorder, "mgr")
    assert "进展说明" in _body(summary) and SAID in _body(summary)
    assert "进度已提交" in last_update(recorder, "emp1").header.title


async def test_a_message_after_submitting_adds_to_the_note_not_the_obstacles(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    checkin = await _checkin(service, org.emp1)
    form = {"goal_overall": "60", "obstacles": "接口文档缺失"}
    await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), form)
    await service.outbox.drain()
    answer = await say(service, "emp1", "白名单已开，明天继续")
    await service.outbox.drain()
    assert answer.toast == "已补充到 2026-11-27 进度对话的进展说明，并通知了上级。"
    row = await _get(service, checkin.id)
    assert (row.obstacles, row.progress) == ("接口文档缺失", {"overall": 60, "note": "白名单已开，明天继续"})
    assert "白名单已开" in _body(last_update(recorder, "mgr"))


async def test_submitting_on_the_card_ends_the_questions_in_chat(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    checkin = await _checkin(service, org.emp1)
    await say(service, "emp1", SAID)
    assert await _states(service) == 1
    form = {"goal_overall": "70", "note": SAID}
    await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), form, message_ref="ci")
    assert await _states(service) == 0
    row = await _get(service, checkin.id)
    assert (row.status, row.progress) == ("submitted", {"overall": 70, "note": SAID})


async def test_answers_in_chat_are_filed_under_the_question_asked(
    service: Service, org: Org, chat_only: NoInputs
) -> None:
    checkin = await _checkin(service, org.emp1)
    await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), {"goal_overall": "50"})
    await say(service, "emp1", "计费接口联调完成")
    await say(service, "emp1", SAID)
    await say(service, "emp1", "跳过")
    row = await _get(service, checkin.id)
    assert (row.status, row.progress, row.obstacles, row.support) == (
        "submitted",
        {"overall": 50, "note": "计费接口联调完成"},
        SAID,
        None,
    )


async def test_editing_in_chat_can_keep_what_the_form_holds(
    service: Service, org: Org, chat_only: NoInputs
) -> None:
    checkin = await _checkin(service, org.emp1)
    submit = CheckinSubmit(checkin_id=checkin.id)
    first = {"goal_overall": "50", "note": "接口联调完成", "obstacles": "无", "support": "借一台测试机"}
    await click(service, "emp1", submit, first)
    await click(service, "emp1", submit, {"goal_overall": "60"})  # WeCom: the dropdown rides on the card
    await service.outbox.drain()
    assert "当前：接口联调完成" in text_of(last_to(chat_only, "emp1"))
    for said in ("保留", "测试环境不稳定", "keep"):
        await say(service, "emp1", said)
    row = await _get(service, checkin.id)
    assert (row.progress, row.obstacles, row.support) == (
        {"overall": 60, "note": "接口联调完成"},
        "测试环境不稳定",
        "借一台测试机",
    )


async def test_bounced_answer_in_chat_keeps_the_decision(
    service: Service, org: Org, chat_only: NoInputs
) -> None:
    checkin = await _checkin(service, org.emp1)
    everything = {"goal_overall": "50", "note": "接口联调完成", "obstacles": "无", "support": "无"}
    await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), everything)
    answer = CheckinAnswer(checkin_id=checkin.id)
    await click(service, "mgr", answer, {"decision": "followup"}, message_ref="mgr-ci")
    await say(service, "mgr", "加强沟通")
    await service.outbox.drain()
    bounced = last_update(chat_only, "mgr")
    (form,) = bounced.forms()
    shown: dict[str, Any] = {i.name: i.default for i in form.inputs}
    assert shown == {"decision": "followup", "comment": "加强沟通"}
    assert (await _get(service, checkin.id)).status == "submitted"

    asked = last_to(chat_only, "mgr")
    assert "多久一次" in text_of(asked) and "要修改哪一项" in text_of(asked)  # the warning, then the choice

    await say(service, "mgr", "1")  # send it as it is: asked once, accepted the second time
    row = await _get(service, checkin.id)
    assert (row.status, row.manager_comment) == ("followup", "加强沟通")
    async with service.factory() as s:
        assert await s.scalar(select(func.count()).select_from(ActionItem)) == 1


async def test_bounced_review_in_chat_changes_one_answer_and_keeps_the_rest(
    service: Service, org: Org, chat_only: NoInputs
) -> None:
    async def fn(ctx: Context) -> Review321 | None:
        return await open_review(ctx, period="2026-11", due_at=DUE)

    review = await run_as(service, org.emp1.id, fn)
    assert review is not None
    await click(service, "emp1", ReviewSubmit(review_id=review.id), {}, message_ref="rv")
    typed = [
        "把发布检查单做成模板",
        "回滚次数从 3 次降到 0 次",
        "测试环境经常被占用",
        "加强沟通",
        "2026-12-04",
    ]
    for said in typed:
        await say(service, "emp1", said)
    await service.outbox.drain()
    assert "要修改哪一项" in text_of(last_to(chat_only, "emp1"))
    async with service.factory() as s:
        assert await s.scalar(select(Review321.status).where(Review321.id == review.id)) == "open"

    await say(service, "emp1", "5")  # the fourth answer: options start with "send as it is"
    await say(service, "emp1", "每周五下午和测试对一次环境排期")
    async with service.factory() as s:
        row = await s.get(Review321, review.id)
        assert row is not None
        assert (row.status, row.solid_action, row.blocker, row.new_action, row.new_action_deadline) == (
            "submitted",
            typed[0],
            typed[2],
            "每周五下午和测试对一次环境排期",
            date(2026, 12, 4),
        )


async def test_cancel_with_nothing_open_says_so(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    answer = await say(service, "emp1", "/cancel")
    await service.outbox.drain()
    assert answer.toast == "现在没有正在填写的表单，不需要取消。想看看能做什么，发送 /help。"
    assert "不认识的命令" not in _body(last_to(recorder, "emp1"))


def test_numbers_on_a_percent_scale_mean_the_value() -> None:
    percent = {
        "kind": "select",
        "required": True,
        "options": [{"label": f"{p}%", "value": str(p)} for p in range(0, 101, 10)],
    }
    today = date(2026, 11, 24)
    assert parse_answer(percent, "10", today) == ("10", None)
    assert parse_answer(percent, "６０％", today) == ("60", None)
    assert parse_answer(percent, "3", today) == (None, "chatform.bad_value")
    people = {
        "kind": "select",
        "required": True,
        "options": [{"label": "王经理", "value": "57"}, {"label": "赵伙伴", "value": "3"}],
    }
    assert parse_answer(people, "1", today) == ("57", None)  # a position in a list of names
    assert parse_answer(people, "赵伙伴", today) == ("3", None)
