"""Dispatcher: routing, dedupe, unknown users, refusals, invalid payloads and chat-collected forms."""

from __future__ import annotations

from typing import ClassVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from bot.app.dispatcher import FailedAnswer, RetryLater
from bot.app.service import Service
from bot.core.context import Context, Reply
from bot.core.events import CardAction, ImageMessage, TextMessage
from bot.core.router import Router
from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.model import Actions, Button, Card, DatePicker, Form, Header, Markdown, Option, Select, TextInput
from storage.models import AuditLog, ConversationState, InboundEvent, OutboxMessage
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org


@action("test.approve")
class Approve(Action):
    subject_id: int


@action("test.answer")
class Answer(Action):
    subject_id: int


def build_router() -> Router:
    router = Router()

    @router.action(Approve)
    async def approve(ctx: Context, payload: Approve) -> Reply:
        if not ctx.person.has_role("manager"):
            ctx.audit("approve.attempt", "subject", payload.subject_id)  # rolled back by the refusal
            raise ctx.refuse("common.not_allowed")
        ctx.audit("approve", "subject", payload.subject_id)
        card = Card(header=Header(title="done"), elements=[Markdown(text=f"approved {payload.subject_id}")])
        return Reply(toast="approved", card=card)

    async def answer_form(ctx: Context, payload: Answer) -> Form:
        return Form(
            name="answer",
            inputs=[
                TextInput(name="obstacles", label="遇到的障碍", required=True, max_length=20),
                TextInput(name="support", label="需要的支持"),
                Select(
                    name="mood",
                    label="心情",
                    options=[Option(label="好", value="good"), Option(label="差", value="bad")],
                    required=True,
                ),
                DatePicker(name="due", label="截止日期", required=True),
            ],
            submit=Button(label="提交", value=pack(payload)),
        )

    @router.action(Answer, form=answer_form)
    async def answer(ctx: Context, payload: Answer) -> Reply:
        assert ctx.event is not None and isinstance(ctx.event, CardAction)
        ctx.audit("answer", "subject", payload.subject_id, form=dict(ctx.event.form))
        return Reply(toast="saved", card=Card(header=Header(title="saved"), elements=[Markdown(text="ok")]))

    @router.command("echo")
    async def echo(ctx: Context, args: str) -> Reply:
        return Reply(toast=f"echo {args}")

    @router.text()
    async def fallback(ctx: Context, text: str) -> Reply | None:
        return Reply(toast=f"heard {text}") if text.startswith("hi") else None

    return router


@pytest.fixture
def routed(service: Service) -> Service:
    """The dispatcher alone, with only this module's handlers (the real flows are tested elsewhere)."""
    service.dispatcher.router = build_router()
    return service


def click(sender: str, value: str, event_id: str = "c1", form: dict[str, str] | None = None) -> CardAction:
    return CardAction(
        platform="rec",
        workspace="rec-app",
        event_id=event_id,
        sender_id=sender,
        value=value,
        form=form or {},
        message_ref="msg-1",
    )


def text(sender: str, body: str, event_id: str) -> TextMessage:
    return TextMessage(platform="rec", workspace="rec-app", event_id=event_id, sender_id=sender, text=body)


async def count(service: Service, model: type) -> int:
    async with service.factory() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_action_routed_with_typed_payload(
    routed: Service, org: Org, recorder: RecordingAdapter
) -> None:
    answer = await routed.dispatcher.dispatch(click("mgr", pack(Approve(subject_id=7))))
    assert answer.toast == "approved"
    await routed.outbox.drain()
    assert recorder.updates and recorder.updates[0][0] == "msg-1"  # the clicked card updated in place
    async with routed.factory() as s:
        log = (await s.scalars(select(AuditLog))).one()
    assert (log.action, log.entity_id, log.actor_id) == ("approve", 7, org.manager.id)


async def test_duplicate_event_has_one_effect(routed: Service, org: Org) -> None:
    first = await routed.dispatcher.dispatch(click("mgr", pack(Approve(subject_id=7))))
    second = await routed.dispatcher.dispatch(click("mgr", pack(Approve(subject_id=7))))
    assert first.toast == second.toast == "approved"
    assert await count(routed, AuditLog) == 1
    assert await count(routed, InboundEvent) == 1
    assert await count(routed, OutboxMessage) == 1


async def test_unauthorised_click_changes_nothing(routed: Service, org: Org) -> None:
    answer = await routed.dispatcher.dispatch(click("emp1", pack(Approve(subject_id=7))))
    assert answer.toast_kind == "error" and answer.toast == Translator("zh-CN")("common.not_allowed")
    assert await count(routed, AuditLog) == 0
    assert await count(routed, OutboxMessage) == 0
    # The refusal is remembered: a retry gets the same answer and still changes nothing.
    again = await routed.dispatcher.dispatch(click("emp1", pack(Approve(subject_id=7))))
    assert again.toast == answer.toast
    assert await count(routed, AuditLog) == 0


async def test_refusal_in_english_for_english_speaker(routed: Service, org: Org) -> None:
    answer = await routed.dispatcher.dispatch(click("emp2", pack(Approve(subject_id=1)), event_id="en"))
    assert answer.toast == Translator("en")("common.not_allowed")


@pytest.mark.parametrize(
    "value",
    [
        "test.approve|{bad json",
        'test.approve|{"subject_id":"x"}',
        "nosuch.action|{}",
        "garbage",
        'test.approve|{"subject_id":1,"x":2}',
    ],
)
async def test_forged_or_stale_values_are_refused(routed: Service, org: Org, value: str) -> None:
    answer = await routed.dispatcher.dispatch(click("mgr", value))
    assert answer.toast == "这个按钮已失效，请使用最新的卡片。"
    assert await count(routed, AuditLog) == 0


async def test_unknown_user_gets_polite_card_and_nothing_else(
    routed: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await routed.dispatcher.dispatch(text("stranger", "你好", "u1"))
    await routed.dispatcher.dispatch(text("stranger", "在吗", "u2"))
    await routed.outbox.drain()
    cards = recorder.to("stranger")
    assert len(cards) == 1  # one polite card a day, however often they write
    assert cards[0].header.title == "尚未开通"
    assert await count(routed, AuditLog) == 0
    assert await count(routed, ConversationState) == 0


async def test_inactive_person_is_unknown(routed: Service, org: Org) -> None:
    async with routed.factory() as s, s.begin():
        p = await s.get(type(org.emp1), org.emp1.id)
        assert p is not None
        p.active = False
    answer = await routed.dispatcher.dispatch(click("emp1", pack(Approve(subject_id=1))))
    assert answer.toast_kind == "warning"
    assert await count(routed, AuditLog) == 0


async def test_commands_fallbacks_and_help(routed: Service, org: Org, recorder: RecordingAdapter) -> None:
    await routed.dispatcher.dispatch(text("emp1", "/echo 1 2", "t1"))
    await routed.dispatcher.dispatch(text("emp1", "hi there", "t2"))
    await routed.dispatcher.dispatch(text("emp1", "random words", "t3"))
    await routed.dispatcher.dispatch(text("emp1", "/nosuch", "t4"))
    await routed.outbox.drain()
    cards = recorder.to("emp1")
    bodies = [c.elements[0].text for c in cards]  # type: ignore[union-attr]
    assert bodies[0] == "echo 1 2"
    assert bodies[1] == "heard hi there"
    assert "/help" in cards[2].model_dump_json()  # the help card, for words nothing understood
    assert "/nosuch" in bodies[3]


async def test_image_without_handler_says_nothing_open(
    routed: Service, org: Org, recorder: RecordingAdapter
) -> None:
    ev = ImageMessage(platform="rec", workspace="rec-app", event_id="i1", sender_id="emp1", media_ref="x")
    answer = await routed.dispatcher.dispatch(ev)
    assert answer.toast == "目前没有需要你回答的事项。"


@action("test.crash")
class Crash(Action):
    n: int


async def test_handler_crash_is_recorded_told_and_not_run_twice(
    routed: Service, org: Org, recorder: RecordingAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug (not a database hiccup): the clicker gets the error toast, nothing of the handler's work is
    kept, and the event is recorded as failed, so it is not silently lost and a redelivery does not run the
    bug again (issue 16 #1)."""
    runs: list[int] = []
    router = Router()

    @router.action(Crash)
    async def crash(ctx: Context, payload: Crash) -> Reply:
        runs.append(payload.n)
        ctx.audit("before-crash", "x", 1)
        raise RuntimeError("boom")

    routed.dispatcher.router.include(router)
    answer = await routed.dispatcher.dispatch(click("mgr", pack(Crash(n=1))))
    assert isinstance(answer, FailedAnswer)
    assert answer.toast_kind == "error" and "boom" not in (answer.toast or "")
    assert await count(routed, AuditLog) == 0
    async with routed.factory() as s:
        row = (await s.scalars(select(InboundEvent))).one()
    assert row.answer["error"] == "RuntimeError" and row.answer["toast"] == answer.toast
    assert any(r.getMessage() == "handler failed" and r.exc_info for r in caplog.records)
    again = await routed.dispatcher.dispatch(click("mgr", pack(Crash(n=1))))
    assert again.toast == answer.toast and runs == [1]  # the stored answer, not a second run
    await routed.outbox.drain()
    assert recorder.to("mgr") == []  # a click's toast is seen: no message as well


async def test_chat_message_crash_is_answered_by_message(
    routed: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """A chat message has no toast: the sender hears of the failure by message."""
    router = Router()

    @router.command("crash")
    async def crash(ctx: Context, args: str) -> Reply:
        raise KeyError(args)

    routed.dispatcher.router.include(router)
    answer = await routed.dispatcher.dispatch(text("emp1", "/crash x", "cx"))
    assert isinstance(answer, FailedAnswer)
    await routed.outbox.drain()
    cards = recorder.to("emp1")
    assert len(cards) == 1 and cards[0].elements[0].text == answer.toast  # type: ignore[union-attr]


def _dead_connection() -> DBAPIError:
    return DBAPIError("SELECT 1", None, Exception("connection is closed"), connection_invalidated=True)


async def test_transient_database_error_is_retried_once_and_succeeds(
    routed: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """The first try meets a dead connection after writing; the second, in a fresh session, succeeds, and
    only its work is kept: one inbound row, one audit row, one reply (issue 16 #1)."""
    tries: list[int] = []
    router = Router()

    @router.action(Crash)
    async def flaky(ctx: Context, payload: Crash) -> Reply:
        tries.append(payload.n)
        ctx.audit("flaky", "x", len(tries))
        ctx.outbox.send(
            ctx.person, Card(header=Header(title=f"try {len(tries)}"), elements=[Markdown(text="x")])
        )
        if len(tries) == 1:
            raise _dead_connection()
        return Reply(toast="done")

    routed.dispatcher.router.include(router)
    answer = await routed.dispatcher.dispatch(click("mgr", pack(Crash(n=5)), event_id="flaky"))
    assert answer.toast == "done" and not isinstance(answer, FailedAnswer)
    assert tries == [5, 5]
    async with routed.factory() as s:
        audits = (await s.scalars(select(AuditLog))).all()
    assert [a.entity_id for a in audits] == [2]
    assert await count(routed, InboundEvent) == 1
    await routed.outbox.drain()
    assert [c.header.title for c in recorder.to("mgr")] == ["try 2"]


async def test_transient_error_twice_asks_the_platform_to_deliver_again(
    routed: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Two transient failures: nothing recorded, ``RetryLater`` raised (HTTP 503 at the ingress); the
    platform's redelivery is then processed exactly once."""
    down = [True]
    router = Router()

    @router.action(Crash)
    async def flaky(ctx: Context, payload: Crash) -> Reply:
        ctx.audit("flaky", "x", payload.n)
        if down[0]:
            raise RuntimeError("wrapped") from _dead_connection()
        return Reply(toast="done")

    routed.dispatcher.router.include(router)
    with pytest.raises(RetryLater):
        await routed.dispatcher.dispatch(click("mgr", pack(Crash(n=1)), event_id="down"))
    assert await count(routed, InboundEvent) == 0 and await count(routed, AuditLog) == 0
    down[0] = False
    answer = await routed.dispatcher.dispatch(click("mgr", pack(Crash(n=1)), event_id="down"))
    assert answer.toast == "done"
    assert await count(routed, InboundEvent) == 1 and await count(routed, AuditLog) == 1


class NoInputs(RecordingAdapter):
    supports_text_inputs: ClassVar[bool] = False


@pytest.fixture
def chat_service(routed: Service) -> tuple[Service, NoInputs]:
    adapter = NoInputs()
    routed.registry.add(adapter)  # replaces the "rec" adapter: same platform, no text inputs
    return routed, adapter


async def test_form_answered_in_chat_on_platforms_without_inputs(
    chat_service: tuple[Service, NoInputs], org: Org
) -> None:
    service, adapter = chat_service
    d = service.dispatcher
    answer = await d.dispatch(click("emp1", pack(Answer(subject_id=3)), event_id="f1", form={"mood": "good"}))
    assert answer.toast == "请在聊天中逐项回复问题。"
    await d.dispatch(text("emp1", "   ", "a0"))  # required: asked again
    await d.dispatch(text("emp1", "这一句话实在是太长了超过二十个字的限制所以会被拒绝掉的", "a1"))
    await d.dispatch(text("emp1", "服务器资源不足", "a2"))
    await d.dispatch(text("emp1", "跳过", "a3"))  # optional support skipped
    await d.dispatch(text("emp1", "13-45", "a4"))  # impossible date: asked again
    assert await count(service, AuditLog) == 0
    await d.dispatch(text("emp1", "2026-12-01", "a5"))
    await service.outbox.drain()
    async with service.factory() as s:
        log = (await s.scalars(select(AuditLog))).one()
        assert await s.scalar(select(func.count()).select_from(ConversationState)) == 0
    assert log.detail["form"] == {"mood": "good", "obstacles": "服务器资源不足", "due": "2026-12-01"}
    titles = [c.header.title for c in adapter.to("emp1")]
    assert titles[0] == "请回答（1/3）"
    notes = [c.elements[0].text for c in adapter.to("emp1") if c.elements[0].kind == "note"]  # type: ignore[union-attr]
    assert "这一项必须填写，请再回复一次。" in notes
    assert "内容太长了，请精简后再发。" in notes
    assert "没看懂这个日期，请按 2026-12-01 的格式回复。" in notes
    assert adapter.updates and adapter.updates[-1][0] == "msg-1"


async def test_chat_form_cancel_saves_nothing(chat_service: tuple[Service, NoInputs], org: Org) -> None:
    service, adapter = chat_service
    await service.dispatcher.dispatch(click("emp1", pack(Answer(subject_id=3)), event_id="f1"))
    await service.dispatcher.dispatch(text("emp1", "/cancel", "c1"))
    await service.dispatcher.dispatch(text("emp1", "hi again", "c2"))
    await service.outbox.drain()
    assert await count(service, AuditLog) == 0
    assert await count(service, ConversationState) == 0
    bodies = [c.elements[0].text for c in adapter.to("emp1") if c.elements[0].kind == "markdown"]  # type: ignore[union-attr]
    assert "已放弃本次填写，这次在聊天里回答的内容没有保存。" in bodies and "heard hi again" in bodies


async def test_card_with_inputs_goes_straight_to_handler(routed: Service, org: Org) -> None:
    form = {"obstacles": "x", "mood": "bad", "due": "2026-12-02"}
    answer = await routed.dispatcher.dispatch(click("emp1", pack(Answer(subject_id=3)), form=form))
    assert answer.toast == "saved"
    assert await count(routed, AuditLog) == 1


def test_actions_card_builds() -> None:
    Card(
        header=Header(title="t"),
        elements=[Actions(buttons=[Button(label="ok", value=pack(Approve(subject_id=1)))])],
    )


class NoToasts(RecordingAdapter):
    shows_toasts: ClassVar[bool] = False


async def test_refused_click_is_explained_by_message_where_no_toasts(routed: Service, org: Org) -> None:
    adapter = NoToasts()
    routed.registry.add(adapter)
    await routed.dispatcher.dispatch(click("emp1", pack(Approve(subject_id=7))))
    await routed.outbox.drain()
    (card,) = adapter.to("emp1")
    assert card.header.title == "操作未完成"
    assert card.elements[0].text == Translator("zh-CN")("common.not_allowed")  # type: ignore[union-attr]
    assert await count(routed, AuditLog) == 0
