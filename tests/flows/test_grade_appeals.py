"""Issue 20 #2: a grade after release. HR corrects with a reason (the person is told, the old value stays in
the audit); the employee appeals inside the window (after it: refused with the day it closed); the HRBP
upholds or changes on one form; the person is told; every step audited, in ``/history`` and the export."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.base import CallbackAnswer
from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from cards import grade_appeals as ga
from cards import grades as gc
from cards.model import Card
from handlers.history.api import person_export
from storage.models import Cycle, Grade, GradeAppeal, Person
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, has_enabled, last_to, last_update, say, text_of
from tests.support.flows3 import audit, make_cycle, rows

RELEASED_AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai
"""The fixed clock's time: grades released now may be appealed through 2026-12-01 (Shanghai)."""


async def release(service: Service, recorder: RecordingAdapter, grades: dict[Person, str]) -> Cycle:
    """A cycle whose grades HR proposed and released through the cards."""
    cycle = await make_cycle(service, list(grades))
    for person, grade in grades.items():
        answer = await click(
            service,
            "hr",
            gc.GradePropose(cycle_id=cycle.id, person_id=person.id),
            {"grade": grade, "reason": f"完成 {len(person.name)} 个关键目标，按期交付"},
        )
        assert answer.toast_kind == "success", answer.toast
    before = len(recorder.updates)
    await click(service, "hr", gc.GradesRelease(cycle_id=cycle.id))
    await service.outbox.drain()
    confirm = [card for _, card, rcpt in recorder.updates[before:] if rcpt == "hr"][-1]
    done = await click(service, "hr", button(confirm, gc.GradesRelease))
    assert done.toast_kind == "success", done.toast
    await service.outbox.drain()
    return cycle


async def tap(
    service: Service,
    recorder: RecordingAdapter,
    sender: str,
    payload: Any,
    form: dict[str, Any] | None = None,
) -> tuple[CallbackAnswer, Card | None]:
    before = len(recorder.updates)
    answer = await click(service, sender, payload, form)
    await service.outbox.drain()
    mine = [card for _, card, rcpt in recorder.updates[before:] if rcpt == sender]
    return answer, (mine[-1] if mine else None)


def titled(recorder: RecordingAdapter, uid: str, fragment: str) -> Card:
    """The last card to ``uid`` with ``fragment`` in its title (a chat command's answer is a card too)."""
    cards = [c for c in recorder.to(uid) if fragment in c.header.title]
    assert cards, f"no card titled {fragment!r} to {uid}"
    return cards[-1]


async def grade_of(service: Service, person: Person) -> Grade:
    [grade] = await rows(service, Grade, Grade.person_id == person.id)
    return grade


async def test_released_card_says_until_when_and_offers_the_appeal(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await release(service, recorder, {org.emp1: "B"})
    card = last_to(recorder, "emp1")
    assert "**B**" in text_of(card) and "2026-12-01" in text_of(card)
    start = button(card, ga.GradeAppealStart)
    assert (await click(service, "emp2", start)).toast_kind == "error"  # not theirs
    answer = await click(service, "emp1", start)
    assert answer.toast == "申诉表已发给你，申诉期到 2026-12-01。"
    await service.outbox.drain()
    form_card = last_to(recorder, "emp1")
    assert form_card.forms() and "申诉期到 **2026-12-01**" in text_of(form_card)


async def test_correction_after_release_tells_the_person_and_keeps_the_old_value(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    await release(service, recorder, {org.emp1: "B", org.emp2: "C"})
    grade = await grade_of(service, org.emp1)
    fix = ga.GradeCorrect(grade_id=grade.id)

    # HR only, with the mention; never one's own grade; only released grades.
    assert (await say(service, "mgr", "/gradefix @张三")).toast_kind == "error"
    assert (
        await click(service, "mgr", fix, {"grade": "A", "reason": "补录了第三季度大单"})
    ).toast_kind == "error"
    assert (
        await click(service, "emp1", fix, {"grade": "A", "reason": "补录了第三季度大单"})
    ).toast_kind == "error"
    assert (await say(service, "hr", "/gradefix")).toast == (
        "用法：/gradefix @姓名，例如 /gradefix @张三：打开更正他最近一次已发布评级的卡片（仅 HR）。"
    )
    await say(service, "hr", "/gradefix @张三")
    await service.outbox.drain()
    form_card = titled(recorder, "hr", "更正 张三 的 2026-Q4 评级")
    assert form_card.forms()
    same = await click(service, "hr", fix, {"grade": "B", "reason": "补录了第三季度大单"})
    assert same.toast == "新等级和现在的等级（B）相同，无需更正。"

    # A vague reason is bounced once, with the values kept.
    clock.set(RELEASED_AT + timedelta(days=10))  # past the first window: the correction opens a new one
    bounced, bounced_card = await tap(service, recorder, "hr", fix, {"grade": "A", "reason": "表现一般"})
    assert bounced.toast_kind == "warning" and bounced_card is not None
    assert {i.name: i.default for f in bounced_card.forms() for i in f.inputs} == {
        "grade": "A",
        "reason": "表现一般",
    }
    assert (await grade_of(service, org.emp1)).grade == "B"
    recorder.clear()
    done, done_card = await tap(
        service, recorder, "hr", fix, {"grade": "A", "reason": "补录了第三季度 300 万的大单，原评级漏算"}
    )
    assert done.toast == "已将 张三 的评级从 B 更正为 A，并通知了本人。" and done_card is not None
    assert not done_card.forms() and "更正了评级 B → A" in text_of(done_card)
    after = await grade_of(service, org.emp1)
    assert after.grade == "A" and after.corrected_at == RELEASED_AT + timedelta(days=10)
    [corrected] = await audit(service, "grade.corrected")
    assert (corrected.actor_id, corrected.entity, corrected.entity_id) == (org.hr.id, "grade", grade.id)
    assert corrected.detail["from"] == "B" and corrected.detail["to"] == "A"
    assert corrected.detail["why"] == "补录了第三季度 300 万的大单，原评级漏算"

    told = titled(recorder, "emp1", "你的 2026-Q4 评级已更正")
    assert told.header.colour == "orange"
    assert "**B → A**" in text_of(told) and "300 万的大单" in text_of(told)
    assert "2026-12-11" in text_of(told)  # the window restarts from the correction
    assert (await say(service, "emp1", "/appeal 第四季度的项目也应计入")).toast_kind == "success"

    # A correction waits for an open appeal to be decided on its own card.
    waits = await click(service, "hr", fix, {"grade": "B", "reason": "复核后发现大单属于下季度"})
    assert waits.toast == "张三 对这个评级的申诉还在处理中：请在申诉卡片上作出决定，不要另行更正。"


async def test_appeal_inside_the_window_and_the_hrbp_changes_the_grade(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock, settings: Settings
) -> None:
    await release(service, recorder, {org.emp1: "C", org.emp2: "B"})
    grade = await grade_of(service, org.emp1)
    clock.set(RELEASED_AT + timedelta(days=7))  # the last day of the window (Shanghai 2026-12-01 10:00)
    recorder.clear()
    assert (await say(service, "emp1", "/appeal")).toast_kind == "success"  # the form, nothing filed
    assert await rows(service, GradeAppeal) == []
    filed = await say(service, "emp1", "/appeal 第三季度的两个项目提前交付，评级里没有体现")
    assert filed.toast == "申诉已提交，赵伙伴 会作出决定。"
    await service.outbox.drain()
    [appeal] = await rows(service, GradeAppeal)
    assert (appeal.status, appeal.grade_before, appeal.open_grade_id) == ("open", "C", grade.id)
    received = titled(recorder, "emp1", "已收到你对 2026-Q4 评级的申诉")
    assert has_enabled(received, ga.GradeAppealWithdraw)
    card = last_to(recorder, "hrbp")
    assert "张三 对 2026-Q4 评级的申诉" in card.header.title and "提前交付" in text_of(card)
    assert not recorder.to("hr")  # the HRBP decides; HR admins only without one

    # one open appeal at a time
    twice = await say(service, "emp1", "/appeal 再补充一点")
    assert twice.toast_kind == "error" and "一次只能有一个进行中的申诉" in (twice.toast or "")

    decide = button(card, ga.GradeAppealDecide)
    change = {"decision": "changed", "grade": "B", "reason": "两个项目提前 3 周交付，客户书面表扬"}
    for uid in ("emp1", "mgr", "seller", "emp2", "leader"):
        assert (await click(service, uid, decide, change)).toast_kind == "error", uid
    assert (await grade_of(service, org.emp1)).grade == "C"

    # one form: a change without a (different) grade comes back with everything kept
    missing, missing_card = await tap(
        service, recorder, "hrbp", decide, {"decision": "changed", "grade": "C", "reason": change["reason"]}
    )
    assert missing.toast == "调整时请选择一个不同于 C 的新等级。" and missing_card is not None
    assert {i.name: i.default for f in missing_card.forms() for i in f.inputs} == {
        "decision": "changed",
        "grade": "C",
        "reason": change["reason"],
    }
    recorder.clear()
    done, done_card = await tap(service, recorder, "hrbp", decide, change)
    assert done.toast == "已将 张三 的等级调整为 B，并通知了本人。" and done_card is not None
    assert not done_card.forms() and "决定调整为 B" in text_of(done_card)
    assert (await grade_of(service, org.emp1)).grade == "B"
    [appeal] = await rows(service, GradeAppeal)
    assert (appeal.status, appeal.grade_after, appeal.open_grade_id, appeal.decided_by_id) == (
        "changed",
        "B",
        None,
        org.hrbp.id,
    )
    outcome = titled(recorder, "emp1", "等级已调整")
    assert outcome.header.colour == "green"
    assert "**C → B**" in text_of(outcome) and "客户书面表扬" in text_of(outcome)
    assert "新等级 B 立即生效" in text_of(outcome)
    assert not has_enabled(last_update(recorder, "emp1"), ga.GradeAppealWithdraw)
    assert (await click(service, "hrbp", decide, change)).toast_kind == "error"  # decided once

    [appealed] = await audit(service, "grade.appealed")
    [decided] = await audit(service, "grade.appeal_decided")
    assert appealed.actor_id == org.emp1.id and appealed.detail["why"].startswith("第三季度")
    assert (decided.actor_id, decided.detail["from"], decided.detail["to"], decided.detail["outcome"]) == (
        org.hrbp.id,
        "C",
        "B",
        "changed",
    )
    # the decision is final for this grade
    final = await say(service, "emp1", "/appeal 还想再申诉")
    assert final.toast_kind == "error" and "这个决定是最终的" in (final.toast or "")

    # visible in /history and in the person's export
    await say(service, "emp1", "/history")
    await service.outbox.drain()
    history = text_of(titled(recorder, "emp1", "张三"))
    assert "2026-11-24 · 2026-Q4 发布：C" in history
    assert "2026-12-01 · 2026-Q4 提出申诉（C）" in history
    assert "2026-12-01 · 2026-Q4 申诉结果：C → B" in history
    async with service.factory() as s:
        me = await s.get(Person, org.emp1.id)
        assert me is not None
        data = await person_export(s, me, settings)
    steps = [(g["step"], g["from"], g["to"]) for g in data["grade_history"]]
    assert steps == [("released", "", "C"), ("appealed", "C", "C"), ("changed", "C", "B")]
    assert data["grade_history"][2]["reason"] == change["reason"]
    assert data["grades"] == [{"cycle_id": grade.cycle_id, "grade": "B"}]


async def test_hrbp_upholds_from_the_button_path(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await release(service, recorder, {org.emp2: "C"})
    grade = await grade_of(service, org.emp2)
    await click(service, "emp2", button(last_to(recorder, "emp2"), ga.GradeAppealStart))
    await service.outbox.drain()
    form_card = last_to(recorder, "emp2")
    empty = await click(service, "emp2", button(form_card, ga.GradeAppealFile), {"reason": ""})
    assert empty.toast_kind == "error"
    filed, filed_card = await tap(
        service, recorder, "emp2", button(form_card, ga.GradeAppealFile), {"reason": "目标权重和实际工作不符"}
    )
    assert filed.toast_kind == "success" and filed_card is not None and not filed_card.forms()
    card = last_to(recorder, "hrbp")
    # English-speaking appellant, Chinese HRBP: each reads their own language
    uphold = {"decision": "upheld", "grade": "", "reason": "目标权重在 10 月已与本人确认，交付评分 2.1/5"}
    done = await click(service, "hrbp", button(card, ga.GradeAppealDecide), uphold)
    assert done.toast == "已决定维持 李四 的 C，并通知了本人。"
    await service.outbox.drain()
    assert (await grade_of(service, org.emp2)).grade == "C"
    outcome = last_to(recorder, "emp2")
    assert outcome.header.colour == "grey" and "upheld" in outcome.header.title
    assert "final result" in text_of(outcome)
    [decided] = await audit(service, "grade.appeal_decided")
    assert decided.entity_id == grade.id and decided.detail["outcome"] == "upheld"
    assert decided.detail["from"] == decided.detail["to"] == "C"


async def test_appeal_after_the_window_is_refused_with_the_day_it_closed(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock, settings: Settings
) -> None:
    await release(service, recorder, {org.emp1: "C"})
    start = button(last_to(recorder, "emp1"), ga.GradeAppealStart)
    clock.set(datetime(2026, 12, 1, 16, 0, tzinfo=UTC))  # 2026-12-02 00:00 in Shanghai: one day too late
    late = await say(service, "emp1", "/appeal 评级没有考虑我的加班")
    assert late.toast == (
        "2026-Q4 评级的申诉期（7 天）已于 2026-12-01 结束，不能再申诉。如有疑问请联系你的 HRBP。"
    )
    assert (await click(service, "emp1", start)).toast == late.toast
    assert await rows(service, GradeAppeal) == []
    # the window is configurable
    settings.grades.appeal_window_days = 14
    assert (await say(service, "emp1", "/appeal 评级没有考虑我负责的两次上线")).toast_kind == "success"


async def test_withdraw_then_file_again_and_without_hrbp_hr_decides(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    async with service.factory() as s, s.begin():
        for pid in (org.emp1.id,):
            me = await s.get(Person, pid)
            assert me is not None
            me.hrbp_id = None
        for dept in (org.rnd,):
            d = await s.merge(dept)
            d.hrbp_id = None
    await release(service, recorder, {org.emp1: "C"})
    assert (await say(service, "emp1", "/appeal 目标中途被调整，但没有更新权重")).toast == (
        "申诉已提交，HR 会作出决定。"
    )
    await service.outbox.drain()
    card = last_to(recorder, "hr")
    received = titled(recorder, "emp1", "已收到你对")
    withdraw = button(received, ga.GradeAppealWithdraw)
    assert (await click(service, "emp2", withdraw)).toast_kind == "error"
    assert (
        await click(
            service,
            "hrbp",
            button(card, ga.GradeAppealDecide),
            {"decision": "upheld", "grade": "", "reason": "依据充分"},
        )
    ).toast_kind == "error"
    out, out_card = await tap(service, recorder, "emp1", withdraw)
    assert out.toast == "申诉已撤回。申诉期内可以重新提交。" and out_card is not None
    assert not has_enabled(out_card, ga.GradeAppealWithdraw)
    assert not last_update(recorder, "hr").forms()  # HR's decision card went final
    [appeal] = await rows(service, GradeAppeal)
    assert appeal.status == "withdrawn" and appeal.open_grade_id is None
    late = await click(
        service,
        "hr",
        button(card, ga.GradeAppealDecide),
        {"decision": "upheld", "grade": "", "reason": "依据充分"},
    )
    assert late.toast_kind == "error" and "已撤回" in (late.toast or "")
    assert (await say(service, "emp1", "/appeal 补充：目标调整邮件见附件")).toast_kind == "success"
    assert len(await rows(service, GradeAppeal)) == 2
    [withdrawn] = await audit(service, "grade.appeal_withdrawn")
    assert withdrawn.actor_id == org.emp1.id


async def test_two_appeals_at_once_make_one(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    """A double tap (or two replicas) files one appeal: the open appeal is a unique key on the grade."""
    await release(service, recorder, {org.emp1: "C"})
    start = button(last_to(recorder, "emp1"), ga.GradeAppealStart)
    await click(service, "emp1", start)
    await service.outbox.drain()
    submit = button(titled(recorder, "emp1", "绩效结果申诉"), ga.GradeAppealFile)
    answers = await asyncio.gather(
        *(click(service, "emp1", submit, {"reason": "两个项目提前交付未计入"}) for _ in range(3))
    )
    assert sorted(a.toast_kind for a in answers) == ["error", "error", "success"]
    assert len(await rows(service, GradeAppeal)) == 1
    assert len(await audit(service, "grade.appealed")) == 1
