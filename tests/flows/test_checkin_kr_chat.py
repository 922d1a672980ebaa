"""Issue 17 item 5 where cards hold no text inputs (WeCom, DingTalk): the check-in asks each key result in
chat, one question at a time in key result order; "很多" is refused at once and the same question, naming the
key result, asked again; an optional question may be skipped; the answers are recorded. Through a recording
adapter without inputs, then end to end through the WeCom and DingTalk fakes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.context import Context
from cards.flow_actions import CheckinSubmit
from handlers.checkin.checkin import open_checkin
from storage.models import CheckIn
from tests.fakes.dingtalk_harness import running
from tests.fakes.recording import ChatOnlyAdapter
from tests.fakes.wecom import FakeWeCom
from tests.fakes.wecom_harness import running_wecom
from tests.support.factories import Org, seed_org
from tests.support.flows import click, last_to, run_as, say, text_of
from tests.support.kr_data import Krs, checkin_row, kr, seed_krs, values

DUE = datetime.fromisoformat("2026-11-27T08:00:00+00:00")


@pytest.fixture
def chat_only(service: Service) -> ChatOnlyAdapter:
    adapter = ChatOnlyAdapter()
    service.registry.add(adapter)  # replaces the "rec" adapter: same platform, no text inputs
    return adapter


async def _open(service: Service, person_id: int) -> CheckIn:
    async def fn(ctx: Context) -> CheckIn | None:
        return await open_checkin(ctx, period="2026-11-27", due_at=DUE)

    checkin = await run_as(service, person_id, fn)
    assert checkin is not None
    return checkin


async def _assert_recorded(service: Service, krs: Krs, checkin_id: int, *, site_done: list[bool]) -> None:
    row = await checkin_row(service, checkin_id)
    assert row.status == "submitted"
    assert await values(service, krs.nps) == [(35, False, "import", None), (38, False, "checkin", checkin_id)]
    assert await values(service, krs.churn) == [(4, False, "checkin", checkin_id)]
    assert [m["done"] for m in (await kr(service, krs.site)).milestones] == site_done


async def test_one_question_at_a_time_in_key_result_order(
    service: Service, org: Org, chat_only: ChatOnlyAdapter
) -> None:
    krs = await seed_krs(service, org.emp1)
    checkin = await _open(service, org.emp1.id)
    await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), {})
    await service.outbox.drain()
    first = last_to(chat_only, "emp1")
    assert first.header.title == "请回答（1/7）" and "NPS（目标 40，上次 35）" in text_of(first)
    assert "跳过" in text_of(first)  # optional: unchanged if skipped

    await say(service, "emp1", "很多")
    await service.outbox.drain()
    again = last_to(chat_only, "emp1")
    assert again.header.title == "请回答（1/7）" and "请回复一个数字" in text_of(again)
    assert "NPS（目标 40，上次 35）" in text_of(again)

    expected = [
        ("38", "上线新版官网：完成了吗？"),
        ("2", "新人独立值班（2026-12-15 前）：完成了吗？"),  # the second option: 设计稿 reached
        ("跳过", "流失率（目标 3%）"),
        ("4%", "进展说明"),
        ("跳过", "遇到的阻碍"),
        ("跳过", "需要上级提供的支持"),
    ]
    for n, (said, next_question) in enumerate(expected, 2):
        await say(service, "emp1", said)
        await service.outbox.drain()
        question = last_to(chat_only, "emp1")
        assert question.header.title == f"请回答（{n}/7）" and next_question in text_of(question), n
    await say(service, "emp1", "跳过")
    await _assert_recorded(service, krs, checkin.id, site_done=[True, False, False])
    assert await values(service, krs.oncall) == []  # skipped: as it was


async def test_a_message_first_then_the_key_results(
    service: Service, org: Org, chat_only: ChatOnlyAdapter
) -> None:
    krs = await seed_krs(service, org.emp1)
    checkin = await _open(service, org.emp1.id)
    await say(service, "emp1", "计费联调完成，NPS 回升")
    await service.outbox.drain()
    first = last_to(chat_only, "emp1")
    assert "请回答（1/6）" == first.header.title and "NPS（目标 40，上次 35）" in text_of(first)
    for said in ("38", "1", "跳过", "4", "跳过", "跳过"):
        await say(service, "emp1", said)
    row = await checkin_row(service, checkin.id)
    assert (row.status, row.progress["note"]) == ("submitted", "计费联调完成，NPS 回升")
    assert row.progress[str(krs.billing)] == 45  # NPS 0.9, the site not yet


# ------------------------------------------------------------------ WeCom, end to end through the fake


@pytest.fixture
async def wecom(settings: Settings, clock: FixedClock) -> AsyncIterator[tuple[FakeWeCom, Service, str]]:
    async with running_wecom(settings, clock) as env:
        yield env.fake, env.service, env.url


async def test_wecom_asks_each_key_result_in_chat(
    wecom: tuple[FakeWeCom, Service, str], clock: FixedClock
) -> None:
    fake, service, url = wecom
    async with service.factory() as s, s.begin():
        org = await seed_org(s, platform="wecom", app_id=fake.corp_id)
    krs = await seed_krs(service, org.emp1)
    checkin = await _open(service, org.emp1.id)
    await service.outbox.drain()
    sent = fake.shown_to("emp1")[-1]
    card = sent.card
    assert card["card_type"] == "button_interaction"
    # the one dropdown that fits rides on the card; the rest is listed and asked in chat
    assert card["button_selection"]["question_key"] == f"kr_{krs.site}"
    assert "· NPS（目标 40，上次 35）" in card["sub_title_text"]
    submit = next(b["key"] for b in card["button_list"] if b["key"].startswith("checkin.submit"))
    xml, _ = fake.click_xml("emp1", sent, submit, selected={f"kr_{krs.site}": ["m2"]})
    assert (await fake.deliver(url, xml))[0] == 200
    await service.outbox.drain()

    async def answer(said: str) -> str:
        clock.advance(timedelta(seconds=5))
        assert (await fake.deliver(url, fake.text_xml("emp1", said)))[0] == 200
        await service.outbox.drain()
        return json.dumps(fake.shown_to("emp1")[-1].body, ensure_ascii=False)

    assert "NPS（目标 40，上次 35）" in json.dumps(fake.shown_to("emp1")[-1].body, ensure_ascii=False)
    assert "请回复一个数字" in await answer("很多")
    assert "新人独立值班" in await answer("38")
    assert "流失率" in await answer("跳过")
    for said in ("4", "跳过", "跳过", "跳过"):
        await answer(said)
    await _assert_recorded(service, krs, checkin.id, site_done=[True, True, False])
    assert "NPS" in json.dumps([m.body for m in fake.shown_to("mgr")], ensure_ascii=False)


# ------------------------------------------------------------------ DingTalk, end to end through the fake


async def test_dingtalk_asks_each_key_result_in_chat(settings: Settings, clock: FixedClock) -> None:
    async with running(settings, clock, mode="http") as env:
        krs = await seed_krs(env.service, env.org.emp1)
        checkin = await _open(env.service, env.org.emp1.id)
        await env.service.outbox.drain()
        ((out_track_id, card),) = env.fake.cards.items()
        assert "NPS（目标 40，上次 35）" in card["params"]["markdown"]
        buttons: list[dict[str, Any]] = env.fake.buttons(out_track_id)
        submit = next(b for b in buttons if "checkin.submit" in json.dumps(b))
        route = card["body"]["callbackRouteKey"]
        await env.fake.click_http(route, env.fake.card_callback(out_track_id, "emp1", submit))
        await env.service.outbox.drain()
        assert "NPS（目标 40，上次 35）" in env.fake.batch_sends[-1]["msgParam"]

        async def answer(said: str) -> str:
            msg = env.fake.robot_message("emp1", text=said)
            assert (await env.fake.post_robot(env.bot_url, msg, timestamp_ms=env.now_ms)).status == 200
            await env.service.outbox.drain()
            return str(env.fake.batch_sends[-1]["msgParam"])

        assert "请回复一个数字" in await answer("很多")
        assert "上线新版官网" in await answer("38")
        assert "新人独立值班" in await answer("3")  # the third option: 开发完成 reached
        for said in ("跳过", "4", "跳过", "跳过", "跳过"):
            await answer(said)
        await _assert_recorded(env.service, krs, checkin.id, site_done=[True, True, False])
