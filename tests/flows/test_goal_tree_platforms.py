"""Issue 17's "Done when" through each platform's fake, end to end over loopback: the leader sets a company
objective, the head of R&D aligns a department objective to it, an engineer sets his goal with a key result
aligned to that, moves the key result in a check-in, and the leader's ``/okr tree`` shows the roll-up.

Feishu fills each form on the card (one submit with every value); WeCom and DingTalk cards hold no text
inputs, so each submit starts the questions in chat, one at a time, and the people answer them by message
(a choice by its number, an optional question with "跳过"). Every message and click goes through the fake
platform: signed, encrypted where the platform encrypts, and answered by the running perfloop app.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from adapters.feishu.adapter import FeishuAdapter
from adapters.feishu.inbound import packed_from_name
from adapters.registry import AdapterRegistry
from bot.app.http import create_app
from bot.app.kickoff_cli import kickoff_from_cli
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.context import Context
from handlers.checkin.checkin import open_checkin
from handlers.goals.progress import blend
from storage.models import ConversationState, Goal, KeyResult, KeyResultValue, Person
from tests.fakes.dingtalk_harness import Env, running
from tests.fakes.feishu import FakeFeishu, feishu_settings, serve
from tests.fakes.wecom import FakeWeCom
from tests.fakes.wecom_harness import running_wecom
from tests.support.factories import Org, seed_org
from tests.support.flows import run_as

pytestmark = pytest.mark.timeout(120)

CODE = "2026-Q4"
COMPANY = ("交付质量业内领先", "线上故障从 12 次降到 3 次")
DEPARTMENT = ("研发交付又快又稳", "自动化测试覆盖率从 40% 提高到 80%")
PERSON = ("支付链路稳定", "补齐 20 个支付回调自动化用例")
TARGET, TYPED = 20, 12
MAX_QUESTIONS = 20


class Platform:
    """One platform's fake and the perfloop app behind it, as the people use it: say something, fill in the
    newest form a button of ``action`` submits. Each returns what the person was shown as a result (the
    JSON of every message, card update and inline answer to them)."""

    service: Service
    org: Org
    asked: list[str]
    """The questions asked in chat, by input name, in order (none where the card holds the form)."""

    async def say(self, user: str, text: str) -> str:
        raise NotImplementedError

    async def fill(self, user: str, action: str, answers: dict[str, str]) -> str:
        raise NotImplementedError

    async def person(self, user: str) -> Person:
        async with self.service.factory() as s:
            found = await s.scalar(
                select(Person).where(
                    Person.workspace_id == self.org.workspace.id, Person.platform_user_id == user
                )
            )
        assert found is not None
        return found

    async def answer_in_chat(self, user: str, answers: dict[str, str], shown: str) -> str:
        """Answer the questions a submit started, one message each, as the person reads them: each question
        is checked to be the one shown last before it is answered."""
        person = await self.person(user)
        left = dict(answers)
        for _ in range(MAX_QUESTIONS):
            async with self.service.factory() as s:
                state = await s.scalar(
                    select(ConversationState).where(ConversationState.person_id == person.id)
                )
            if state is None:
                assert not left, f"never asked for {sorted(left)}"
                return shown
            question = state.data["pending"][0]
            assert question["label"] in shown, (question["label"], shown[-600:])
            self.asked.append(question["name"])
            wanted = left.pop(question["name"], None)
            if wanted is None:
                assert not question["required"], f"{question['name']} is required: add it to the answers"
                said = "跳过"
            elif question["kind"] == "select":
                values = [o["value"] for o in question["options"]]
                said = str(values.index(wanted) + 1)  # the number of the choice, as listed
            else:
                said = wanted
            shown = await self.say(user, said)
        raise AssertionError("the questions never ended")


# ------------------------------------------------------------------ WeCom


class WeCom(Platform):
    def __init__(self, fake: FakeWeCom, service: Service, url: str, org: Org, clock: FixedClock) -> None:
        self.fake, self.service, self.url, self.org, self.clock = fake, service, url, org, clock
        self.asked = []

    def _mark(self) -> tuple[int, int]:
        return len(self.fake.messages), len(self.fake.updates)

    def _since(self, mark: tuple[int, int], user: str) -> str:
        sent = [m.body for m in self.fake.messages[mark[0] :] if user in m.recipients]
        updated = [u.body for u in self.fake.updates[mark[1] :] if user in u.userids]
        return json.dumps(sent + updated, ensure_ascii=False)

    async def _deliver(self, xml: str) -> None:
        self.clock.advance(timedelta(seconds=5))
        assert (await self.fake.deliver(self.url, xml))[0] == 200
        await self.service.outbox.drain()

    async def say(self, user: str, text: str) -> str:
        mark = self._mark()
        await self._deliver(self.fake.text_xml(user, text))
        return self._since(mark, user)

    async def fill(self, user: str, action: str, answers: dict[str, str]) -> str:
        card, key = next(
            (m, b["key"])
            for m in reversed(self.fake.shown_to(user))
            for b in m.card.get("button_list", [])
            if b["key"].startswith(action)
        )
        mark = self._mark()
        xml, _ = self.fake.click_xml(user, card, key)
        await self._deliver(xml)
        return await self.answer_in_chat(user, answers, self._since(mark, user))


@pytest.fixture
async def wecom(settings: Settings, clock: FixedClock) -> AsyncIterator[WeCom]:
    async with running_wecom(settings, clock) as env:
        async with env.service.factory() as s, s.begin():
            org = await seed_org(s, platform="wecom", app_id=env.fake.corp_id)
        yield WeCom(env.fake, env.service, env.url, org, clock)


# ------------------------------------------------------------------ DingTalk


class DingTalk(Platform):
    def __init__(self, env: Env) -> None:
        self.env, self.service, self.org = env, env.service, env.org
        self.asked = []

    def _mark(self) -> tuple[int, int, int]:
        fake = self.env.fake
        return len(fake.batch_sends), len(fake.cards), len(fake.card_updates)

    def _since(self, mark: tuple[int, int, int], user: str) -> str:
        fake = self.env.fake
        sent = [b["msgParam"] for b in fake.batch_sends[mark[0] :] if user in b["userIds"]]
        cards = [c["params"] for c in list(fake.cards.values())[mark[1] :] if c["user"] == user]
        updated = [
            u["cardData"]
            for u in fake.card_updates[mark[2] :]
            if fake.cards.get(u.get("outTrackId", ""), {}).get("user") == user
        ]
        return json.dumps([*sent, *cards, *updated], ensure_ascii=False)

    async def say(self, user: str, text: str) -> str:
        env = self.env
        mark = self._mark()
        env.clock.advance(timedelta(seconds=5))
        message = env.fake.robot_message(user, text=text)
        assert (await env.fake.post_robot(env.bot_url, message, timestamp_ms=env.now_ms)).status == 200
        await env.service.outbox.drain()
        return self._since(mark, user)

    async def fill(self, user: str, action: str, answers: dict[str, str]) -> str:
        fake = self.env.fake
        track_id, button = next(
            (tid, b)
            for tid, card in reversed(list(fake.cards.items()))
            if card["user"] == user
            for b in fake.buttons(tid)
            if action in json.dumps(b, ensure_ascii=False)
        )
        mark = self._mark()
        route = fake.cards[track_id]["body"]["callbackRouteKey"]
        status, _ = await fake.click_http(route, fake.card_callback(track_id, user, button))
        assert status == 200
        await self.service.outbox.drain()
        return await self.answer_in_chat(user, answers, self._since(mark, user))


@pytest.fixture
async def dingtalk(settings: Settings, clock: FixedClock) -> AsyncIterator[DingTalk]:
    async with running(settings, clock, mode="http") as env:
        yield DingTalk(env)


# ------------------------------------------------------------------ Feishu


class Feishu(Platform):
    def __init__(self, fake: FakeFeishu, service: Service, url: str, org: Org) -> None:
        self.fake, self.service, self.url, self.org = fake, service, url, org
        self.asked = []

    def _mark(self) -> tuple[int, int]:
        return len(self.fake.messages), len(self.fake.patches)

    def _since(self, mark: tuple[int, int], user: str) -> str:
        mine = {m.message_id for m in self.fake.messages if m.receive_id == user}
        sent = [m.card for m in self.fake.messages[mark[0] :] if m.receive_id == user]
        patched = [card for mid, card in self.fake.patches[mark[1] :] if mid in mine]
        return json.dumps(sent + patched, ensure_ascii=False)

    async def say(self, user: str, text: str) -> str:
        mark = self._mark()
        assert (await self.fake.deliver(self.url, self.fake.text_message(user, text))).status == 200
        await self.service.outbox.drain()
        return self._since(mark, user)

    async def fill(self, user: str, action: str, answers: dict[str, str]) -> str:
        message, name, packed = next(
            (m, n, p)
            for m in reversed(self.fake.messages)
            if m.receive_id == user
            for n in _names(m.card)
            if (p := packed_from_name(n)) is not None and p.startswith(action)
        )
        mark = self._mark()
        click = self.fake.card_click(
            user, packed, message_id=message.message_id, name=name, form_value=dict(answers)
        )
        posted = await self.fake.deliver(self.url, click)
        assert posted.status == 200
        await self.service.outbox.drain()
        return json.dumps(posted.body, ensure_ascii=False) + self._since(mark, user)


def _names(node: Any) -> list[str]:
    """Every element name in a rendered Feishu card (a form's submit button carries its action in it)."""
    if isinstance(node, dict):
        own = [node["name"]] if isinstance(node.get("name"), str) else []
        return own + [n for v in node.values() for n in _names(v)]
    if isinstance(node, list):
        return [n for v in node for n in _names(v)]
    return []


@pytest.fixture
async def feishu(settings: Settings, clock: FixedClock) -> AsyncIterator[Feishu]:
    fake = FakeFeishu(now=lambda: clock.now().timestamp())
    await fake.start()
    configured = feishu_settings(settings, fake)
    registry = AdapterRegistry()
    registry.add(FeishuAdapter.from_settings(configured))
    service = build_service(configured, clock=clock, registry=registry)
    service.run_outbox = False
    runner, base = await serve(create_app(service))
    try:
        async with service.factory() as s, s.begin():
            org = await seed_org(s, platform="feishu", app_id=fake.app_id)
        yield Feishu(fake, service, base + "/callbacks/feishu", org)
    finally:
        await runner.cleanup()
        await service.close()
        await fake.close()


# ------------------------------------------------------------------ the flow, the same on each platform


async def _goal(service: Service, objective: str) -> Goal:
    async with service.factory() as s:
        goal = await s.scalar(select(Goal).where(Goal.objective == objective))
    assert goal is not None, f"{objective!r} was not saved"
    return goal


async def _the_goal_tree(platform: Platform) -> None:
    service, org = platform.service, platform.org
    await kickoff_from_cli(service, code=CODE, departments=["研发部"], hr_user_id="hr", allow_past=True)
    await service.outbox.drain()

    # 刘总 (leader): the company objective.
    assert "公司目标" in await platform.say("leader", "/objective company")
    saved = await platform.fill(
        "leader", "okr.objective", {"objective_1": COMPANY[0], "key_results_1": COMPANY[1]}
    )
    assert "已保存 1 个目标" in saved, saved[-800:]
    company = await _goal(service, COMPANY[0])
    assert (company.level, company.person_id) == ("company", org.leader.id)

    # 王经理 (head of 研发部): a department objective aligned to it, chosen from the list.
    shown = await platform.say("mgr", "/objective department")
    assert "研发部 部门目标" in shown and COMPANY[0] in shown
    saved = await platform.fill(
        "mgr",
        "okr.objective",
        {"objective_1": DEPARTMENT[0], "key_results_1": DEPARTMENT[1], "parent_1": str(company.id)},
    )
    assert "已保存 1 个目标" in saved, saved[-800:]
    department = await _goal(service, DEPARTMENT[0])
    assert (department.level, department.department_id, department.parent_id) == (
        "department",
        org.rnd.id,
        company.id,
    )

    # 张三 (an engineer of 研发部): his goal with a key result, aligned to the department objective.
    assert DEPARTMENT[0] in await platform.say("emp1", "/goals")
    submitted = await platform.fill(
        "emp1",
        "goals.submit",
        {
            "objective_1": PERSON[0],
            "key_results_1": PERSON[1],
            "weight_1": "100",
            "parent_1": str(department.id),
        },
    )
    assert "等待上级确认" in submitted, submitted[-800:]
    mine = await _goal(service, PERSON[0])
    assert (mine.level, mine.person_id, mine.parent_id, mine.weight) == (
        "person",
        org.emp1.id,
        department.id,
        100,
    )
    async with service.factory() as s:
        kr = await s.scalar(select(KeyResult).where(KeyResult.goal_id == mine.id))
    assert kr is not None and (kr.start_value, kr.target_value) == (0, TARGET)

    # The check-in (opened as the scheduler opens it) asks for the key result's value.
    async def start(ctx: Context) -> None:
        assert await open_checkin(ctx, period="2026-11-27", due_at=datetime(2026, 11, 27, 8, tzinfo=UTC))

    await run_as(service, org.emp1.id, start)
    await service.outbox.drain()
    await platform.fill("emp1", "checkin.submit", {f"kr_{kr.id}": str(TYPED)})
    async with service.factory() as s:
        values = [(v.value, v.source) for v in await s.scalars(select(KeyResultValue))]
    assert values == [(TYPED, "checkin")]

    # 刘总: /okr tree. 12 of 20 is 60 % for 张三; each objective above counts its own key results (nothing
    # reported) and what is aligned to it equally: 30 % for 研发部, 15 % for the company.
    person = TYPED / TARGET
    dept = blend(0.0, True, person)
    top = blend(0.0, True, dept)
    tree = await platform.say("leader", "/okr tree")
    assert f"公司目标 · 目标树 · {CODE}" in tree, tree[-800:]
    assert f"{round(top * 100)}% · 🔴 落后" in tree, tree
    assert f"{DEPARTMENT[0]} {round(dept * 100)}% " in tree
    assert f"{PERSON[0]} {round(person * 100)}% " in tree
    assert "覆盖 67%（2/3 人）" in tree  # of 研发部's three, 王经理 and 张三 own a goal below it


ASKED_IN_CHAT = ["objective_1", "key_results_1", "parent_1", "weight_1", "kr_"]
"""What WeCom and DingTalk ask by message: each form's first objective, its key results and its alignment,
the goal's weight, and the check-in's key result value."""


async def test_feishu_fills_in_forms(feishu: Feishu) -> None:
    await _the_goal_tree(feishu)
    assert feishu.asked == []


async def test_wecom_asks_one_question_at_a_time(wecom: WeCom) -> None:
    await _the_goal_tree(wecom)
    assert all(any(name.startswith(a) for name in wecom.asked) for a in ASKED_IN_CHAT), wecom.asked


async def test_dingtalk_asks_one_question_at_a_time(dingtalk: DingTalk) -> None:
    await _the_goal_tree(dingtalk)
    assert all(any(name.startswith(a) for name in dingtalk.asked) for a in ASKED_IN_CHAT), dingtalk.asked
