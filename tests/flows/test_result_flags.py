"""HR's promotion / high-potential flags (issue 20 #3): ``/flag`` sets and takes back, audited; everyone
else is refused with the reason; the words, the cycle and the person are checked before anything changes."""

from __future__ import annotations

import pytest

from bot.app.service import Service
from handlers.results.flags import FlagRefused, parse_flag
from storage.models import AuditLog, ResultFlag
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import last_to, say, text_of
from tests.support.flows3 import audit, count, make_cycle, rows


async def flags(service: Service) -> list[tuple[int, int, str, int | None]]:
    return [(f.cycle_id, f.person_id, f.kind, f.set_by_id) for f in await rows(service, ResultFlag)]


async def test_hr_sets_and_takes_back_a_flag_and_every_change_is_audited(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    answer = await say(service, "hr", "/flag @张三 晋升")
    await service.outbox.drain()
    assert (answer.toast_kind, answer.toast) == ("success", "已为 张三 标记晋升（2026-Q4）。")
    assert await flags(service) == [(cycle.id, org.emp1.id, "promotion", org.hr.id)]
    card = text_of(last_to(recorder, "hr"))
    assert "结果标记：张三（2026-Q4）" in card and "✓ 已标记" in card and "未评级" in card
    [row] = await rows(service, ResultFlag)
    [set_] = await audit(service, "result.flag_set")
    assert (set_.actor_id, set_.entity, set_.entity_id) == (org.hr.id, "result_flag", row.id)
    assert set_.detail == {"cycle_id": cycle.id, "person_id": org.emp1.id, "kind": "promotion", "via": "chat"}
    assert recorder.to("emp1") == []  # the person is not told

    again = await say(service, "hr", "/flag 张三 promotion")
    assert (again.toast_kind, again.toast) == ("info", "张三 在 2026-Q4 已有晋升标记，没有变化。")
    assert len(await flags(service)) == 1 and len(await audit(service, "result.flag_set")) == 1

    hipo = await say(service, "hr", "/标记 @张三 高潜 2026q4")
    assert hipo.toast_kind == "success", hipo.toast
    assert sorted(k for _, _, k, _ in await flags(service)) == ["high_potential", "promotion"]

    off = await say(service, "hr", "/flag @张三 晋升 取消")
    assert (off.toast_kind, off.toast) == ("success", "已取消 张三 的晋升标记（2026-Q4）。")
    assert [k for _, _, k, _ in await flags(service)] == ["high_potential"]
    [unset] = await audit(service, "result.flag_unset")
    assert (unset.actor_id, unset.entity_id, unset.detail["kind"]) == (org.hr.id, row.id, "promotion")
    nothing = await say(service, "hr", "/flag @张三 晋升 取消")
    assert (nothing.toast_kind, nothing.toast) == ("info", "张三 在 2026-Q4 没有晋升标记，没有变化。")
    assert len(await audit(service, "result.flag_unset")) == 1

    recorder.clear()
    shown = await say(service, "hr", "/flag @张三")
    await service.outbox.drain()
    assert shown.toast_kind != "error"
    assert "✓ 已标记" in text_of(last_to(recorder, "hr"))  # high potential still on
    assert await count(service, AuditLog, AuditLog.action.like("result.%")) == 3


@pytest.mark.parametrize("sender", ["seller", "mgr", "hrbp", "leader"])
async def test_only_hr_admins_may_flag(service: Service, org: Org, sender: str) -> None:
    await make_cycle(service, [org.emp1, org.emp2])
    answer = await say(service, sender, "/flag @张三 晋升")
    assert (answer.toast_kind, answer.toast) == ("error", "只有 HR 管理员可以标记晋升或高潜。")
    assert await flags(service) == []
    assert await count(service, AuditLog, AuditLog.action.like("result.%")) == 0


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("/flag", "用法：/flag @姓名 晋升|高潜"),
        ("/flag @张三 升职", "看不懂“升职”"),
        ("/flag @张三 晋升 高潜", "一次只能设置一个标记"),
        ("/flag @张三 取消", "用法：/flag @姓名 晋升|高潜"),
        ("/flag @王麻子 晋升", "找不到 @王麻子"),
        ("/flag @周销售 晋升", "周销售 没有进行中或已结束的考核周期"),
        ("/flag @张三 晋升 2025-Q1", "没有代码为 2025-Q1 的周期。最近的周期：2026-Q3、2026-Q4"),
        ("/flag @张三 晋升 2026-Q3", "周期 2026-Q3 已取消，不能标记。"),
        ("/flag @周销售 晋升 2026-Q4", "周销售 不在周期 2026-Q4 中，无法标记。"),
    ],
)
async def test_refusals_say_why_and_change_nothing(
    service: Service, org: Org, command: str, message: str
) -> None:
    await make_cycle(service, [org.emp1, org.emp2])
    await make_cycle(service, [org.emp1], code="2026-Q3", status="cancelled")
    answer = await say(service, "hr", command)
    assert answer.toast_kind == "error"
    assert answer.toast is not None and message in answer.toast, answer.toast
    assert await flags(service) == []


async def test_the_default_cycle_is_the_latest_one_the_person_is_in_even_when_closed(
    service: Service, org: Org
) -> None:
    older = await make_cycle(service, [org.emp1], code="2026-Q3", status="closed")
    await make_cycle(service, [org.emp1], code="2026-Q4", status="cancelled")
    answer = await say(service, "hr", "/flag @张三 高潜")
    assert answer.toast_kind == "success" and "2026-Q3" in (answer.toast or "")
    assert await flags(service) == [(older.id, org.emp1.id, "high_potential", org.hr.id)]


async def test_two_taps_at_once_flag_once(service: Service, org: Org) -> None:
    import asyncio

    await make_cycle(service, [org.emp1])
    answers = await asyncio.gather(*(say(service, "hr", "/flag @张三 晋升") for _ in range(3)))
    assert sorted(a.toast_kind for a in answers).count("success") == 1
    assert len(await flags(service)) == 1 and len(await audit(service, "result.flag_set")) == 1


async def test_help_lists_flag_for_hr_only(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    await say(service, "hr", "/help")
    await say(service, "emp1", "/help")
    await service.outbox.drain()
    assert "/flag @姓名" in text_of(last_to(recorder, "hr"))
    assert "/flag" not in text_of(last_to(recorder, "emp1"))


def test_parser_reads_the_words_in_any_order() -> None:
    request = parse_flag("@张三 取消 2026-Q4 hipo")
    assert (request.mention, request.kind, request.on, request.code) == (
        "@张三",
        "high_potential",
        False,
        "2026-Q4",
    )
    assert parse_flag("@张三").kind is None
    with pytest.raises(FlagRefused) as refused:
        parse_flag("@张三 2026-Q4 2026-Q3 晋升")
    assert refused.value.key == "results.one_cycle"
