"""Issue 17 item 5 on the simulator's path (cards with inputs): the check-in asks each key result's value,
keeps every typed value when it sends the card back, records each answer once per check-in however often it
is resubmitted, keeps ``CheckIn.progress`` (goal → percent) for the readers that use it, and shows the
manager each change ("NPS：35 → 38 / 40（90%）")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from bot.app.service import Service
from bot.core.context import Context
from cards.flow_actions import CheckinAnswer, CheckinEdit, CheckinSubmit
from cards.model import Card, Select, TextInput
from handlers.checkin.checkin import build_checkin_form, open_checkin
from storage.models import CheckIn, Cycle, Goal
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import click, last_to, last_update, run_as, text_of
from tests.support.kr_data import Krs, checkin_row, kr, seed_krs, values

DUE = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


async def _open(service: Service, org: Org) -> CheckIn:
    async def fn(ctx: Context) -> CheckIn | None:
        return await open_checkin(ctx, period="2026-11-27", due_at=DUE)

    checkin = await run_as(service, org.emp1.id, fn)
    assert checkin is not None
    return checkin


def _inputs(card: Card) -> dict[str, Any]:
    (form,) = card.forms()
    return {i.name: i for i in form.inputs}


def _answers(krs: Krs, **over: str) -> dict[str, str]:
    """What the card sends: the selects' defaults always come along."""
    base = {f"kr_{krs.site}": "no", f"kr_{krs.oncall}": "no"}
    return {**base, **over}


async def test_the_card_asks_each_key_result(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    krs = await seed_krs(service, org.emp1)
    checkin = await _open(service, org)
    await service.outbox.drain()
    card = last_to(recorder, "emp1")
    inputs = _inputs(card)
    assert list(inputs) == [
        f"kr_{krs.nps}",
        f"kr_{krs.site}",
        f"kr_{krs.oncall}",
        f"kr_{krs.churn}",
        "note",
        "obstacles",
        "support",
    ]
    nps, site, oncall, churn = (inputs[f"kr_{i}"] for i in (krs.nps, krs.site, krs.oncall, krs.churn))
    assert isinstance(nps, TextInput) and nps.number and not nps.required and nps.default is None
    assert nps.label == "NPS（目标 40，上次 35）"
    assert isinstance(churn, TextInput) and churn.label == "流失率（目标 3%）"
    assert isinstance(site, Select) and site.label == "上线新版官网：完成了吗？" and site.default == "no"
    assert [o.label for o in site.options] == [
        "未完成",
        "完成里程碑 1/3：设计稿",
        "完成里程碑 2/3：开发完成",
        "已完成",
    ]
    assert isinstance(oncall, Select) and oncall.label == "新人独立值班（2026-12-15 前）：完成了吗？"
    assert "没有变化的可以不填" in text_of(card)

    async def build(ctx: Context) -> list[str]:
        form = await build_checkin_form(ctx, CheckinSubmit(checkin_id=checkin.id))
        return [i.name for i in form.inputs]

    assert await run_as(service, org.emp1.id, build) == list(inputs)


async def test_values_are_recorded_and_the_manager_sees_the_changes(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    krs = await seed_krs(service, org.emp1)
    checkin = await _open(service, org)
    submit = CheckinSubmit(checkin_id=checkin.id)

    # not a number: sent back naming the key result, every typed value kept, nothing recorded
    typed = _answers(krs, **{f"kr_{krs.nps}": "38", f"kr_{krs.site}": "m1", f"kr_{krs.churn}": "很多"})
    answer = await click(service, "emp1", submit, {**typed, "note": "计费联调完成"})
    assert answer.toast_kind == "error" and answer.toast is not None
    assert "“流失率”需要填一个数字" in answer.toast and "很多" in answer.toast
    await service.outbox.drain()
    bounced = _inputs(last_update(recorder, "emp1"))
    assert {k: bounced[k].default for k in typed} == typed
    assert bounced["note"].default == "计费联调完成"
    assert (await checkin_row(service, checkin.id)).status == "open"
    assert await values(service, krs.nps) == [] and (await kr(service, krs.nps)).current_value == 35

    fixed = {**typed, f"kr_{krs.churn}": "4%", "note": "计费联调完成"}
    await click(service, "emp1", submit, fixed, message_ref="ci")
    await service.outbox.drain()
    row = await checkin_row(service, checkin.id)
    # 上线计费: NPS 0.9 and the site 1/3 → 62 %; 带新人: churn 0.5, on-call not yet → 25 %
    assert (row.status, row.progress) == (
        "submitted",
        {str(krs.billing): 62, str(krs.mentoring): 25, "note": "计费联调完成"},
    )
    assert await values(service, krs.nps) == [(35, False, "import", None), (38, False, "checkin", checkin.id)]
    assert await values(service, krs.churn) == [(4, False, "checkin", checkin.id)]
    assert [m["done"] for m in (await kr(service, krs.site)).milestones] == [True, False, False]
    summary = text_of(last_to(recorder, "mgr"))
    for shown in (
        "NPS：35 → 38 / 40（90%）",
        "上线新版官网：未完成 → 里程碑 1/3（33%）",
        "流失率：4 / 3%（50%）",
        "新人独立值班：未完成（0%，未变）",
        "62%",
    ):
        assert shown in summary, shown
    mine = last_update(recorder, "emp1")
    assert "进度已提交" in mine.header.title and "NPS：35 → 38 / 40（90%）" in text_of(mine)

    # editing: the form shows this check-in's answers; resubmitting replaces them, never adds
    await click(service, "emp1", CheckinEdit(checkin_id=checkin.id), message_ref="ci")
    await service.outbox.drain()
    edit = _inputs(last_update(recorder, "emp1"))
    assert (edit[f"kr_{krs.nps}"].default, edit[f"kr_{krs.site}"].default) == ("38", "m1")
    assert edit[f"kr_{krs.nps}"].label == "NPS（目标 40，上次 35）"
    again = {**fixed, f"kr_{krs.nps}": "39", f"kr_{krs.churn}": ""}  # churn left empty: its answer stays
    await click(service, "emp1", submit, again, message_ref="ci")
    await service.outbox.drain()
    assert await values(service, krs.nps) == [(35, False, "import", None), (39, False, "checkin", checkin.id)]
    assert await values(service, krs.churn) == [(4, False, "checkin", checkin.id)]
    assert (await checkin_row(service, checkin.id)).progress[str(krs.billing)] == 64
    assert "NPS：35 → 39 / 40（95%）" in text_of(last_update(recorder, "mgr"))

    # the manager's answer keeps the changes on both cards
    await click(service, "mgr", CheckinAnswer(checkin_id=checkin.id), {"decision": "acknowledged"})
    await service.outbox.drain()
    assert "NPS：35 → 39 / 40（95%）" in text_of(last_update(recorder, "emp1"))


async def test_skipped_numbers_keep_their_value(service: Service, org: Org) -> None:
    krs = await seed_krs(service, org.emp1)
    checkin = await _open(service, org)
    await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), _answers(krs))
    row = await checkin_row(service, checkin.id)
    assert row.status == "submitted"
    assert row.progress == {str(krs.billing): 38, str(krs.mentoring): 0}  # 0.375 rounds to 38
    assert await values(service, krs.nps) == [] and (await kr(service, krs.nps)).current_value == 35
    assert [v[2] for v in await values(service, krs.site)] == ["checkin"]  # the choice it showed was sent


async def test_goals_without_key_results_still_ask_a_percentage(service: Service, org: Org) -> None:
    krs = await seed_krs(service, org.emp1)
    async with service.factory() as s, s.begin():
        old = Goal(cycle_id=krs.cycle_id, person_id=org.emp1.id, position=2, objective="整理文档", weight=0)
        s.add(old)
        await s.flush()
        old_id = old.id
    checkin = await _open(service, org)
    submit = CheckinSubmit(checkin_id=checkin.id)
    answer = await click(service, "emp1", submit, _answers(krs, **{f"kr_{krs.nps}": "38"}))
    assert answer.toast == "请为“整理文档”填写 0 到 100 之间的进度。"
    await click(service, "emp1", submit, _answers(krs, **{f"kr_{krs.nps}": "38", f"goal_{old_id}": "40"}))
    progress = (await checkin_row(service, checkin.id)).progress
    assert (progress[str(old_id)], progress[str(krs.billing)]) == (40, 45)


async def test_a_closed_cycle_asks_percentages(service: Service, org: Org) -> None:
    krs = await seed_krs(service, org.emp1)
    checkin = await _open(service, org)
    async with service.factory() as s, s.begin():
        await s.execute(update(Cycle).where(Cycle.id == krs.cycle_id).values(status="closed"))

    async def build(ctx: Context) -> list[str]:
        form = await build_checkin_form(ctx, CheckinSubmit(checkin_id=checkin.id))
        return [i.name for i in form.inputs]

    names = await run_as(service, org.emp1.id, build)
    assert names[:2] == [f"goal_{krs.billing}", f"goal_{krs.mentoring}"]
