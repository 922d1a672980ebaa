"""Issue 17 item 6: monthly adjustment of confirmed goals (季度对齐 + 月度微调), on SQLite and PostgreSQL.

Version 1 is written when the manager confirms; in the first days of a month (the person's local date) the
person proposes changes, outside them the refusal names the next window; the manager sees old → new and
approves (applied in place: key results keep their ids and value history, progress recomputed) or returns
with a comment; one open proposal at a time; every step audited; the version in force on any date can be
read back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from bot.app.service import Service
from bot.core.clock import FixedClock
from cards import goal_adjust as ga
from cards.flow_actions import GoalsConfirm
from cards.goal_actions import GoalAdjustApprove, GoalAdjustReturn, GoalAdjustSubmit
from storage.models import Cycle, CycleParticipant, Goal, GoalVersion, KeyResult, KeyResultValue
from storage.queries.goal_versions import goals_in_force, versions_in_force
from tests.fakes.recording import ChatOnlyAdapter, RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, has_enabled, last_to, say, text_of
from tests.support.flows3 import audit, make_cycle, rows
from tests.support.goal_rows import Seeded, date_kr, deliverable_kr, number_kr, seed_goals

IN_WINDOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
"""Wednesday 2 December, 10:00 in Shanghai: inside the first 7 days of the month."""
REASON = "客户把验收提前到 12 月 15 日，华东区签约目标提到 25 家"


async def setup(service: Service, org: Org) -> tuple[Cycle, Seeded]:
    cycle = await make_cycle(service, [org.emp1, org.emp2], goals=False)
    seeded = await seed_goals(
        service,
        cycle,
        org.emp1,
        [
            (
                "拿下华东区新客户",
                60,
                [number_kr("签约 20 家客户", 20, current=8), deliverable_kr("交付：迁移方案文档")],
            ),
            ("完成计费系统迁移", 40, [date_kr("3 月 31 日前上线计费系统", date(2027, 3, 31))]),
        ],
    )
    return cycle, seeded


def proposal(**extra: str) -> dict[str, str]:
    return {
        "weight_1": "50",
        "krs_1": "1. 签约 25 家客户\n客户拜访 ≥ 60 次",
        "weight_2": "50",
        "krs_2": "1. 3 月 31 日前上线计费系统",
        "reason": REASON,
    } | extra


async def kr_rows(service: Service) -> list[KeyResult]:
    return await rows(service, KeyResult)


async def test_outside_the_window_is_refused_with_the_next_one(
    service: Service, org: Org, clock: FixedClock
) -> None:
    cycle, _ = await setup(service, org)
    refused = await say(service, "emp1", "/adjust")  # 24 November
    assert refused.toast_kind == "error"
    assert (
        refused.toast
        == "目标只能在每月前 7 天调整。下一次调整窗口从 2026-12-01 开始，届时发送 /adjust 即可。"
    )
    assert (
        await click(service, "emp1", GoalAdjustSubmit(cycle_id=cycle.id), proposal())
    ).toast_kind == "error"
    clock.set(datetime(2026, 12, 20, 2, 0, tzinfo=UTC))  # no window left before the cycle ends
    late = await say(service, "emp1", "/调整目标")
    assert late.toast_kind == "error" and "2026-12-31" in (late.toast or "")
    clock.set(datetime(2026, 11, 30, 16, 30, tzinfo=UTC))  # 1 December 00:30 in Shanghai, 30 Nov in UTC
    assert (await say(service, "emp1", "/adjust")).toast_kind == "success"
    assert await rows(service, GoalVersion) == []  # opening the form writes nothing
    # Goals not yet confirmed are edited with /goals, not adjusted.
    async with service.factory() as s, s.begin():
        mine = await s.scalar(select(CycleParticipant).where(CycleParticipant.person_id == org.emp1.id))
        assert mine is not None
        mine.goals_status = "submitted"
    assert "/goals" in ((await say(service, "emp1", "/adjust")).toast or "")


async def test_approved_adjustment_applies_in_place_and_keeps_the_history(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    cycle, seeded = await setup(service, org)
    g1, g2 = seeded.goals
    signed, handbook = seeded.krs[g1.id]
    clock.set(IN_WINDOW)
    opened = await say(service, "emp1", "/adjust")
    await service.outbox.drain()
    form = last_to(recorder, "emp1")
    assert opened.toast_kind == "success" and form.forms()
    defaults = {i.name: i.default for f in form.forms() for i in f.inputs}
    assert defaults["weight_1"] == "60" and defaults["krs_1"] == "1. 签约 20 家客户\n2. 交付：迁移方案文档"
    assert "2026-12-07" in text_of(form)

    recorder.clear()
    sent = await click(service, "emp1", button(form, GoalAdjustSubmit), proposal())
    assert sent.toast == "调整已提交，王经理 会批准或退回。"
    await service.outbox.drain()
    versions = await rows(service, GoalVersion)
    assert [(v.version, v.status) for v in versions] == [(1, "approved"), (2, "proposed")]
    v1, v2 = versions
    assert v1.effective_from == datetime(
        2026, 10, 1, tzinfo=UTC
    )  # confirmed before versions: the cycle start
    assert v2.reason == REASON and v2.effective_from is None
    review = last_to(recorder, "mgr")
    body = text_of(review)
    assert review.header.title == "张三 申请调整 2026-Q4 的目标"
    assert "签约 20 家客户 → **签约 25 家客户**" in body and "权重 60% → **50%**" in body
    assert "＋ **客户拜访 ≥ 60 次**" in body and "－ 交付：迁移方案文档（删除）" in body
    assert [k.target_value for k in await kr_rows(service) if k.id == signed.id] == [
        20
    ]  # nothing applied yet

    # One open proposal at a time.
    twice = await click(
        service, "emp1", GoalAdjustSubmit(cycle_id=cycle.id), proposal(weight_1="55", weight_2="45")
    )
    assert twice.toast_kind == "error" and "一次只能有一个进行中的调整" in (twice.toast or "")
    # Only the approver decides; a refused click changes nothing.
    approve = button(review, GoalAdjustApprove)
    for uid in ("emp1", "emp2", "seller", "leader"):
        assert (await click(service, uid, approve)).toast_kind == "error", uid
    assert [v.status for v in await rows(service, GoalVersion)] == ["approved", "proposed"]

    clock.advance(timedelta(hours=2))
    recorder.clear()
    done = await click(service, "mgr", approve)
    assert done.toast == "已批准 张三 的目标调整，新目标从现在起生效。"
    await service.outbox.drain()
    krs = {k.id: k for k in await kr_rows(service)}
    assert handbook.id not in krs  # removed
    kept = krs[signed.id]  # the same row: its id and its history stay
    assert (kept.title, kept.target_value, kept.current_value) == ("签约 25 家客户", 25, 8)
    assert abs(kept.progress - 8 / 25) < 1e-9
    async with service.factory() as s:
        history = await s.scalar(
            select(func.count()).select_from(KeyResultValue).where(KeyResultValue.key_result_id == signed.id)
        )
    assert history == 1
    [added] = [k for k in krs.values() if k.goal_id == g1.id and k.id != signed.id]
    assert (added.title, added.target_value, added.progress, added.position) == (
        "客户拜访 ≥ 60 次",
        60,
        0.0,
        1,
    )
    goals = {g.id: g for g in await rows(service, Goal)}
    assert (goals[g1.id].weight, goals[g2.id].weight) == (50, 50)
    assert abs(goals[g1.id].own_progress - (8 / 25) / 2) < 1e-9
    [_, v2] = await rows(service, GoalVersion)
    assert (v2.status, v2.decided_by_id, v2.effective_from) == (
        "approved",
        org.manager.id,
        IN_WINDOW + timedelta(hours=2),
    )
    assert [kr["id"] for kr in v2.content["goals"][0]["key_results"]] == [signed.id, added.id]
    told = last_to(recorder, "emp1")
    assert told.header.colour == "green" and "签约 25 家客户" in text_of(told)
    assert (await click(service, "mgr", approve)).toast_kind == "error"  # decided once

    [proposed] = await audit(service, "goals.adjust_proposed")
    [approved] = await audit(service, "goals.adjust_approved")
    assert (proposed.entity, proposed.entity_id, proposed.actor_id) == ("goal_version", v2.id, org.emp1.id)
    assert proposed.detail["reason"] == REASON and proposed.detail["version"] == 2
    assert (approved.entity_id, approved.actor_id, approved.detail["version"]) == (v2.id, org.manager.id, 2)

    # The version in force on a date, for reports.
    async with service.factory() as s:
        before = await goals_in_force(s, cycle.id, org.emp1.id, date(2026, 9, 30))
        november = await goals_in_force(s, cycle.id, org.emp1.id, date(2026, 11, 30))
        december = await goals_in_force(s, cycle.id, org.emp1.id, date(2026, 12, 2))
        at_noon = await goals_in_force(s, cycle.id, org.emp1.id, IN_WINDOW + timedelta(hours=1))
        numbers = await versions_in_force(s, cycle.id, [org.emp1.id, org.emp2.id], date(2026, 12, 31))
    assert before is None
    assert november is not None and november.version == 1
    assert november.content["goals"][0]["key_results"][0]["target"] == 20
    assert december is not None and december.version == 2  # a date: approved during that day counts
    assert december.content["goals"][0]["key_results"][0]["target"] == 25
    assert at_noon is not None and at_noon.version == 1  # an instant: before the approval
    assert numbers == {org.emp1.id: 2}


async def test_returned_adjustment_changes_nothing_and_may_be_proposed_again(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    cycle, seeded = await setup(service, org)
    clock.set(IN_WINDOW)
    await click(service, "emp1", GoalAdjustSubmit(cycle_id=cycle.id), proposal())
    [_, version] = await rows(service, GoalVersion)
    back = GoalAdjustReturn(version_id=version.id)
    assert (await click(service, "emp2", back, {"comment": "先和财务确认 12 月的口径"})).toast_kind == "error"
    assert (await click(service, "mgr", back, {"comment": ""})).toast_kind == "error"
    vague = await click(service, "mgr", back, {"comment": "要进一步提升"})
    assert vague.toast_kind == "warning"
    assert (await rows(service, GoalVersion))[1].status == "proposed"
    recorder.clear()
    comment = "先和财务确认 12 月的验收口径，再改签约数"
    done = await click(service, "mgr", back, {"comment": comment})
    assert done.toast == "已退回 张三 的目标调整，并告知了本人。"
    await service.outbox.drain()
    [_, version] = await rows(service, GoalVersion)
    assert (version.status, version.comment, version.effective_from) == ("returned", comment, None)
    assert {k.target_value for k in await kr_rows(service) if k.goal_id == seeded.goals[0].id} == {20, None}
    told = last_to(recorder, "emp1")
    assert told.header.colour == "orange" and comment in text_of(told) and "2026-12-07" in text_of(told)
    assert has_enabled(told, GoalAdjustSubmit)
    [returned] = await audit(service, "goals.adjust_returned")
    assert returned.detail["comment"] == comment and returned.entity_id == version.id
    assert (await click(service, "mgr", GoalAdjustApprove(version_id=version.id))).toast_kind == "error"

    # Proposing again: the form shows the manager's comment; the next proposal is version 3.
    recorder.clear()
    await click(service, "emp1", button(told, GoalAdjustSubmit))
    await service.outbox.drain()
    assert comment in text_of(last_to(recorder, "emp1"))
    again = await click(service, "emp1", GoalAdjustSubmit(cycle_id=cycle.id), proposal())
    assert again.toast_kind == "success"
    assert [(v.version, v.status) for v in await rows(service, GoalVersion)] == [
        (1, "approved"),
        (2, "returned"),
        (3, "proposed"),
    ]


async def test_a_proposal_that_cannot_be_saved_comes_back_with_what_was_typed(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    cycle, _ = await setup(service, org)
    clock.set(IN_WINDOW)
    submit = GoalAdjustSubmit(cycle_id=cycle.id)
    cases = {
        "各目标权重合计为 120%": proposal(weight_1="70"),
        "没有可衡量的目标": proposal(krs_1="1. 签约 25 家客户\n提升客户满意度"),
        "至少要有一个关键结果": proposal(krs_1="；"),  # lines, but none with a key result
        "没有任何变化": proposal(
            weight_1="60", weight_2="40", krs_1="1. 签约 20 家客户\n2. 交付：迁移方案文档"
        ),
        "请写明调整理由": proposal(reason=""),
    }
    for expected, form in cases.items():
        before = len(recorder.updates)
        answer = await click(service, "emp1", submit, form)
        await service.outbox.drain()
        card = [c for _, c, r in recorder.updates[before:] if r == "emp1"][-1]
        assert answer.toast_kind == "error", expected
        assert expected in text_of(card), (expected, text_of(card))
        kept = {i.name: i.default for f in card.forms() for i in f.inputs}
        assert kept["weight_1"] == form["weight_1"], expected
    assert await rows(service, GoalVersion) == []  # nothing was proposed (not even version 1 backfilled)


async def test_confirming_goals_writes_version_one(service: Service, org: Org, clock: FixedClock) -> None:
    await setup(service, org)
    async with service.factory() as s, s.begin():
        mine = await s.scalar(select(CycleParticipant).where(CycleParticipant.person_id == org.emp1.id))
        assert mine is not None
        mine.goals_status = "submitted"
        participant_id = mine.id
    done = await click(service, "mgr", GoalsConfirm(participant_id=participant_id))
    assert done.toast_kind == "success", done.toast
    [v1] = await rows(service, GoalVersion)
    assert (v1.version, v1.status, v1.effective_from, v1.decided_by_id) == (
        1,
        "approved",
        clock.now(),
        org.manager.id,
    )
    assert [g["objective"] for g in v1.content["goals"]] == ["拿下华东区新客户", "完成计费系统迁移"]
    assert v1.content["goals"][0]["key_results"][0]["target"] == 20
    [logged] = await audit(service, "goals.version")
    assert (logged.entity, logged.entity_id, logged.detail["version"]) == ("goal_version", v1.id, 1)


def test_the_window_is_the_first_days_of_the_persons_month() -> None:
    from handlers.goals.adjust import window

    assert window(date(2026, 12, 7), 7).open and not window(date(2026, 12, 8), 7).open
    assert window(date(2026, 12, 8), 7).next_opens == date(2027, 1, 1)
    assert window(date(2027, 2, 3), 31).closes == date(2027, 2, 28)


def test_the_review_card_marks_each_change() -> None:
    from cards.catalogue import Translator

    changes = [
        ga.GoalChange(
            1,
            "拿下华东区新客户",
            60,
            50,
            (
                ga.KrChange("changed", "签约 20 家客户", "签约 25 家客户"),
                ga.KrChange("same", "交付：迁移方案文档", "交付：迁移方案文档"),
            ),
        )
    ]
    [block] = ga.changes_text(Translator("en"), changes)
    assert "weight 60% → **50%**" in block and "签约 20 家客户 → **签约 25 家客户**" in block
    assert "= 交付：迁移方案文档" in block
    [only] = ga.changes_text(Translator("zh-CN"), changes, only_changed=True)
    assert "迁移方案文档" not in only


async def test_on_a_chat_platform_the_adjustment_is_asked_goal_by_goal(
    service: Service, org: Org, clock: FixedClock
) -> None:
    chat = ChatOnlyAdapter()
    service.registry.add(chat)
    cycle, seeded = await setup(service, org)
    clock.set(IN_WINDOW)
    await click(service, "emp1", GoalAdjustSubmit(cycle_id=cycle.id))
    await service.outbox.drain()
    first = last_to(chat, "emp1")
    assert "1/5" in first.header.title and "60" in text_of(first)  # weight of goal 1, its value shown
    for answer in ("50", "1. 签约 25 家客户；客户拜访 ≥ 60 次", "50", "保留"):
        assert (await say(service, "emp1", answer)).toast_kind != "error", answer
    done = await say(service, "emp1", REASON)
    assert done.toast == "调整已提交，王经理 会批准或退回。", done.toast
    [_, version] = await rows(service, GoalVersion)
    goals = version.content["goals"]
    assert [g["weight"] for g in goals] == [50, 50]
    assert [kr["title"] for kr in goals[0]["key_results"]] == ["签约 25 家客户", "客户拜访 ≥ 60 次"]
    assert goals[0]["key_results"][0]["id"] == seeded.krs[seeded.goals[0].id][0].id
    assert [kr["title"] for kr in goals[1]["key_results"]] == ["3 月 31 日前上线计费系统"]  # kept as it was


def test_storage_reads_the_version_statuses_the_core_writes() -> None:
    from bot.core.status import GoalVersionStatus
    from storage.queries import goal_versions

    assert (goal_versions.APPROVED, goal_versions.PROPOSED) == (
        GoalVersionStatus.APPROVED,
        GoalVersionStatus.PROPOSED,
    )
