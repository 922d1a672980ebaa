"""Issue 17 item 5: recording a key result's value outside a check-in (``KeyResultUpdate`` on the goals
cards). The owner records as ``owner``, their manager as ``manager`` (and the owner is told), anyone else is
refused with what to do instead; not a number is sent back with what was typed; on a chat-only platform the
form is asked question by question."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from bot.app.service import Service
from cards.goal_actions import KeyResultUpdate, KeyResultValueSubmit
from cards.model import Select, TextInput
from storage.models import Cycle
from tests.fakes.recording import ChatOnlyAdapter, RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, last_to, last_update, say, text_of
from tests.support.kr_data import Krs, goal, kr, seed_krs, values


@pytest.fixture
async def krs(service: Service, org: Org) -> Krs:
    return await seed_krs(service, org.emp1)


async def test_the_owner_records_a_number(
    service: Service, org: Org, krs: Krs, recorder: RecordingAdapter
) -> None:
    opened = await click(service, "emp1", KeyResultUpdate(key_result_id=krs.nps))
    assert opened.toast_kind == "info"
    await service.outbox.drain()
    card = last_to(recorder, "emp1")
    (form,) = card.forms()
    value, note = form.inputs
    assert isinstance(value, TextInput) and value.number and value.required
    assert value.label == "NPS（目标 40，现在 35）" and isinstance(note, TextInput) and not note.required
    submit = button(card, KeyResultValueSubmit)

    refused = await click(service, "emp1", submit, {"value": "很多", "note": "客户回访后"})
    assert refused.toast_kind == "error" and "“NPS”需要填一个数字" in (refused.toast or "")
    await service.outbox.drain()
    bounced = last_update(recorder, "emp1")
    assert [i.default for i in bounced.forms()[0].inputs] == ["很多", "客户回访后"]
    assert await values(service, krs.nps) == []

    done = await click(service, "emp1", submit, {"value": "38", "note": "客户回访后"})
    assert done.toast == "已记录：35 → 38 / 40（90%）"
    await service.outbox.drain()
    recorded = last_update(recorder, "emp1")
    assert recorded.header.colour == "green" and not recorded.forms()
    assert (
        "上线计费" in text_of(recorded) and "45%" in text_of(recorded) and "客户回访后" in text_of(recorded)
    )
    assert await values(service, krs.nps) == [(35, False, "import", None), (38, False, "owner", None)]
    assert (await goal(service, krs.billing)).own_progress == pytest.approx(0.45)


async def test_the_manager_records_and_the_owner_is_told(
    service: Service, org: Org, krs: Krs, recorder: RecordingAdapter
) -> None:
    answer = await click(service, "mgr", KeyResultValueSubmit(key_result_id=krs.site), {"value": "m2"})
    assert answer.toast == "已记录：未完成 → 里程碑 2/3（67%）"
    await service.outbox.drain()
    told = last_to(recorder, "emp1")
    assert told.header.title == "已更新 · 上线新版官网" and "王经理" in text_of(told)
    assert [v[2] for v in await values(service, krs.site)] == ["manager"]
    assert [m["done"] for m in (await kr(service, krs.site)).milestones] == [True, True, False]

    async def form_of_site() -> Select:
        await click(service, "emp1", KeyResultUpdate(key_result_id=krs.site))
        await service.outbox.drain()
        choice = last_to(recorder, "emp1").forms()[0].inputs[0]
        assert isinstance(choice, Select)
        return choice

    assert (await form_of_site()).default == "m2"  # the choice shows where it stands


async def test_anyone_else_is_refused(service: Service, org: Org, krs: Krs) -> None:
    said = {"emp2": "Only the goal's owner (张三) or their manager", "smgr": "只有目标负责人（张三）或其上级"}
    for who in ("emp2", "smgr", "hrbp"):
        answer = await click(service, who, KeyResultValueSubmit(key_result_id=krs.nps), {"value": "40"})
        assert answer.toast_kind == "error", who
        assert said.get(who, said["smgr"]) in (answer.toast or ""), who
    opened = await click(service, "emp2", KeyResultUpdate(key_result_id=krs.nps))
    assert opened.toast_kind == "error"
    missing = await click(service, "emp1", KeyResultValueSubmit(key_result_id=999_999), {"value": "40"})
    assert "已经不存在" in (missing.toast or "")
    async with service.factory() as s, s.begin():
        await s.execute(update(Cycle).where(Cycle.id == krs.cycle_id).values(status="closed"))
    closed = await click(service, "emp1", KeyResultValueSubmit(key_result_id=krs.nps), {"value": "40"})
    assert "周期已经结束" in (closed.toast or "")
    assert await values(service, krs.nps) == []


async def test_asked_in_chat_where_cards_hold_no_inputs(service: Service, org: Org, krs: Krs) -> None:
    chat = ChatOnlyAdapter()
    service.registry.add(chat)
    await click(service, "mgr", KeyResultUpdate(key_result_id=krs.churn))
    await service.outbox.drain()
    question = last_to(chat, "mgr")
    assert question.header.title == "请回答（1/2）" and "流失率（目标 3%）" in text_of(question)
    await say(service, "mgr", "很多")
    await service.outbox.drain()
    assert "请回复一个数字" in text_of(last_to(chat, "mgr"))
    await say(service, "mgr", "4.2%")
    await service.outbox.drain()
    assert "说明" in text_of(last_to(chat, "mgr"))
    answer = await say(service, "mgr", "跳过")
    assert answer.toast == "已记录：4.2 / 3%（40%）"
    await service.outbox.drain()
    assert await values(service, krs.churn) == [(4.2, False, "manager", None)]
    assert "已更新 · 流失率" in [c.header.title for c in chat.to("mgr")]
    assert last_to(chat, "emp1").header.title == "已更新 · 流失率"
