"""Buttons on the goal-tree cards that lead into the other pieces of issue 17, on SQLite and PostgreSQL.

- Item 6 on the person's ``/okr`` card: while they may propose an adjustment (the month's window, goals
  confirmed, no proposal open) the card offers "提出调整", which sends the adjustment form as a card of its
  own; otherwise, and on anyone else's goals, there is no such button.
- Item 5 on an objective's card (``OkrTree``): its owner and the owner's manager get "更新：<key result>" per
  key result, which opens the value form (``KeyResultUpdate``); so a company objective's key results, which
  no check-in asks, move too, and the tree rolls up from them. Nobody else gets the button.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from bot.app.service import Service
from bot.core.clock import FixedClock
from cards.actions import unpack
from cards.catalogue import Translator
from cards.goal_actions import (
    GoalAdjustOpen,
    GoalAdjustSubmit,
    KeyResultUpdate,
    KeyResultValueSubmit,
    OkrTree,
)
from cards.model import Card
from storage.models import KeyResult, KeyResultValue
from tests.fakes.recording import ChatOnlyAdapter, RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, last_to, last_update, say, text_of
from tests.support.flows3 import make_cycle
from tests.support.goal_rows import date_kr, number_kr, seed_goals
from tests.support.goal_tree import ask, seed_tree

IN_WINDOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
"""Wednesday 2 December, 10:00 in Shanghai: inside the first 7 days of the month."""


def _offers_adjustment(card: Card) -> bool:
    return any(isinstance(unpack(b.value), GoalAdjustOpen) for b in card.buttons())


async def _okr(service: Service, recorder: RecordingAdapter, who: str, args: str = "") -> Card:
    answer = await say(service, who, f"/okr {args}".strip())
    assert answer.toast_kind != "error", answer.toast
    await service.outbox.drain()
    return last_to(recorder, who)


async def test_the_goals_card_offers_the_adjustment_while_it_may_be_proposed(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2], goals=False)
    await seed_goals(
        service,
        cycle,
        org.emp1,
        [
            ("拿下华东区新客户", 60, [number_kr("签约 20 家客户", 20, current=8)]),
            ("完成计费系统迁移", 40, [date_kr("3 月 31 日前上线计费系统", date(2027, 3, 31))]),
        ],
    )
    assert not _offers_adjustment(await _okr(service, recorder, "emp1"))  # 24 November: no window

    clock.set(IN_WINDOW)
    mine = await _okr(service, recorder, "emp1")
    assert button(mine, GoalAdjustOpen).cycle_id == cycle.id
    assert "现在可以提出目标调整" in text_of(mine)
    assert not _offers_adjustment(await _okr(service, recorder, "mgr", "@张三"))  # the manager's view

    recorder.clear()
    opened = await click(service, "emp1", button(mine, GoalAdjustOpen), message_ref="okr-card")
    await service.outbox.drain()
    assert (opened.toast_kind, opened.toast) == ("info", "调整表单已发给你。")
    form = last_to(recorder, "emp1")
    assert button(form, GoalAdjustSubmit).cycle_id == cycle.id
    assert {i.name for f in form.forms() for i in f.inputs} >= {"weight_1", "krs_1", "reason"}
    assert recorder.updates == []  # the goals card it was tapped on stays as it was

    # The button opens the clicker's own adjustment: someone outside the cycle is refused, sent nothing.
    recorder.clear()
    refused = await click(service, "seller", GoalAdjustOpen(cycle_id=cycle.id))
    await service.outbox.drain()
    assert refused.toast_kind == "error" and refused.toast == Translator("zh-CN")("kickoff.not_participant")
    assert recorder.to("seller") == []

    # With a proposal waiting for the manager, there is nothing to open.
    proposed = await click(
        service,
        "emp1",
        button(form, GoalAdjustSubmit),
        {
            "weight_1": "50",
            "krs_1": "1. 签约 25 家客户",
            "weight_2": "50",
            "krs_2": "1. 3 月 31 日前上线计费系统",
            "reason": "客户把验收提前到 12 月 15 日，华东区签约目标提到 25 家",
        },
    )
    assert proposed.toast_kind == "success", proposed.toast
    assert not _offers_adjustment(await _okr(service, recorder, "emp1"))


async def test_where_forms_are_answered_in_chat_the_button_still_sends_the_form(
    service: Service, org: Org, clock: FixedClock
) -> None:
    chat = ChatOnlyAdapter()
    service.registry.add(chat)
    cycle = await make_cycle(service, [org.emp1], goals=False)
    await seed_goals(service, cycle, org.emp1, [("拿下华东区新客户", 100, [number_kr("签约 20 家客户", 20)])])
    clock.set(IN_WINDOW)
    await say(service, "emp1", "/okr")
    await service.outbox.drain()
    opened = await click(service, "emp1", button(last_to(chat, "emp1"), GoalAdjustOpen), message_ref="okr")
    await service.outbox.drain()
    assert opened.toast_kind == "info"
    assert button(last_to(chat, "emp1"), GoalAdjustSubmit).cycle_id == cycle.id  # a card, not a question
    assert chat.updates == []


async def _objective_card(service: Service, recorder: RecordingAdapter, who: str, goal_id: int) -> Card:
    answer = await click(service, who, OkrTree(goal_id=goal_id), message_ref=f"tree-{who}")
    assert answer.toast_kind != "error", answer.toast
    await service.outbox.drain()
    return last_update(recorder, who)


def _updates(card: Card) -> list[tuple[str, int]]:
    return [
        (b.label, p.key_result_id)
        for b in card.buttons()
        if isinstance(p := unpack(b.value), KeyResultUpdate)
    ]


async def test_the_owner_and_their_manager_update_key_results_from_the_objective_card(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    ids = await seed_tree(service, org)
    async with service.factory() as s:
        nps = await s.scalar(select(KeyResult).where(KeyResult.goal_id == ids["c1"]))
        signed = await s.scalar(select(KeyResult).where(KeyResult.goal_id == ids["e1"]))
    assert nps is not None and signed is not None

    assert _updates(await _objective_card(service, recorder, "leader", ids["c1"])) == [("更新：NPS", nps.id)]
    assert _updates(await _objective_card(service, recorder, "emp1", ids["c1"])) == []  # not theirs
    for owner_or_manager in ("emp1", "mgr"):
        card = await _objective_card(service, recorder, owner_or_manager, ids["e1"])
        assert _updates(card) == [("更新：签约客户", signed.id)]
    assert _updates(await _objective_card(service, recorder, "emp2", ids["e1"])) == []  # a colleague

    # 刘总 moves the company's NPS from 36 to 40 (32 → 40: 50 % → 100 %). The objective counts its own key
    # result and what is aligned to it (56 %, unchanged) equally: 53 % before, 78 % after.
    before, _ = await ask(service, recorder, "leader", "/okr tree")
    assert before is not None and "▓▓▓▓▓░░░░░ 53%" in text_of(before)
    opened = await click(service, "leader", KeyResultUpdate(key_result_id=nps.id))
    await service.outbox.drain()
    assert opened.toast_kind == "info"
    form = last_to(recorder, "leader")
    recorded = await click(service, "leader", button(form, KeyResultValueSubmit), {"value": "40"})
    assert recorded.toast_kind == "success", recorded.toast
    async with service.factory() as s:
        rows = [
            (v.value, v.source) for v in await s.scalars(select(KeyResultValue).order_by(KeyResultValue.id))
        ]
    assert rows == [(36.0, "import"), (40.0, "owner")]  # where it stood (it had no history), then 刘总's
    after, _ = await ask(service, recorder, "leader", "/okr tree")
    assert after is not None and "▓▓▓▓▓▓▓▓░░ 78%" in text_of(after)
