"""Grades: who proposes, the audit trail, the calibration guard at its boundary, and release by HR only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.app.service import Service
from bot.core.config import Settings
from cards import grades as gc
from storage.models import Cycle, Grade, Person
from storage.queries.grades import deviations
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import click, last_to, say, text_of
from tests.support.flows3 import audit, make_cycle, rows


def test_deviation_is_strictly_beyond_the_boundary() -> None:
    history = [{"A": 0.25, "B": 0.75}, {"A": 0.75, "B": 0.25}]  # mean 0.5, SD 0.25 for both
    common: dict[str, Any] = {"scale": ["A", "B"], "min_history": 2, "band": {}}
    assert deviations({"A": 1.0}, history, sigma=2.0, **common) == []  # exactly 2 SD away
    found = deviations({"A": 1.0}, history, sigma=1.99, **common)
    assert [(d.grade, d.direction, d.rule) for d in found] == [("A", "high", "sigma"), ("B", "low", "sigma")]
    assert deviations({"A": 1.0}, history[:1], sigma=2.0, **common) == []  # too little history
    banded = deviations(
        {"A": 0.5, "B": 0.5}, [], sigma=2.0, scale=["A", "B"], min_history=2, band={"A": (0.0, 0.3)}
    )
    assert [(d.grade, d.rule) for d in banded] == [("A", "band")]


async def seed_history(service: Service, org: Org) -> Person:
    """Two released cycles of 研发部 with A shares 25 % and 75 %; returns a fourth 研发部 member."""
    async with service.factory() as s, s.begin():
        emp3 = Person(
            workspace_id=org.workspace.id,
            platform_user_id="emp3",
            name="王五",
            department_id=org.rnd.id,
            manager_id=org.manager.id,
        )
        s.add(emp3)
        await s.flush()
        team = [org.manager.id, org.emp1.id, org.emp2.id, emp3.id]
        for code, grades in (("2026-Q2", "ABBB"), ("2026-Q3", "AAAB")):
            cycle = Cycle(
                workspace_id=org.workspace.id,
                code=code,
                status="closed",
                started_at=datetime(2026, 4, 1, tzinfo=UTC),
            )
            s.add(cycle)
            await s.flush()
            for pid, g in zip(team, grades, strict=True):
                s.add(
                    Grade(
                        cycle_id=cycle.id,
                        person_id=pid,
                        department_id=org.rnd.id,
                        grade=g,
                        status="released",
                        released_at=datetime(2026, 7, 1, tzinfo=UTC),
                    )
                )
    return emp3


async def propose(
    service: Service, sender: str, cycle: Cycle, person: Person, grade: str, reason: str
) -> str:
    answer = await click(
        service,
        sender,
        gc.GradePropose(cycle_id=cycle.id, person_id=person.id),
        {"grade": grade, "reason": reason},
    )
    return answer.toast_kind


@pytest.mark.parametrize(("sigma", "alerted"), [(2.0, False), (1.9, True)])
async def test_calibration_alert_at_the_boundary(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings, sigma: float, alerted: bool
) -> None:
    settings.feedback.calibration_sigma = sigma
    await seed_history(service, org)
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    assert await propose(service, "mgr", cycle, org.emp1, "A", "全年交付 4 个项目，全部按期") == "success"
    await service.outbox.drain()
    assert not recorder.to("hr")  # the department is not complete yet: no alert on a partial picture
    assert await propose(service, "mgr", cycle, org.emp2, "A", "主导 2 次架构升级，零事故") == "success"
    await service.outbox.drain()
    alerts = [c for c in recorder.to("hr") if "校准" in c.header.title]
    head_alerts = [
        c for c in recorder.to("mgr") if "校准" in c.header.title or "Calibration" in c.header.title
    ]
    assert bool(alerts) is alerted and bool(head_alerts) is alerted
    if alerted:
        assert "研发部" in text_of(alerts[0]) and "100%" in text_of(alerts[0])
        # Re-proposing the same picture does not alert again.
        recorder.clear()
        assert (
            await propose(service, "mgr", cycle, org.emp2, "A", "主导 2 次架构升级，零事故，补充说明")
            == "success"
        )
        await service.outbox.drain()
        assert not recorder.to("hr")


async def test_only_managers_or_hr_propose_and_every_change_is_audited(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    assert await propose(service, "smgr", cycle, org.emp1, "A", "不是我的下属") == "error"
    assert await propose(service, "emp2", cycle, org.emp1, "A", "同事互评") == "error"
    assert await propose(service, "mgr", cycle, org.emp1, "E", "不在等级表里") == "error"
    assert await propose(service, "mgr", cycle, org.emp1, "B", "") == "error"
    assert await propose(service, "mgr", cycle, org.emp1, "B", "完成 3 个目标中的 2 个") == "success"
    assert (
        await propose(service, "hr", cycle, org.emp1, "A", "校准会后上调：第 3 个目标延期是客户原因")
        == "success"
    )
    [proposed] = await audit(service, "grade.proposed")
    [changed] = await audit(service, "grade.changed")
    assert (proposed.actor_id, proposed.detail["to"], proposed.detail["why"]) == (
        org.manager.id,
        "B",
        "完成 3 个目标中的 2 个",
    )
    assert (changed.actor_id, changed.detail["from"], changed.detail["to"]) == (org.hr.id, "B", "A")
    assert changed.detail["why"].startswith("校准会后上调")

    # The proposal card rests on facts: the goals are on it.
    await say(service, "mgr", "/grade @张三")
    await service.outbox.drain()
    card = text_of(last_to(recorder, "mgr"))
    assert "张三 目标一" in card and "当前提议：A" in card


async def test_release_only_by_hr_in_one_broadcast_then_locked(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2, org.seller])
    assert await propose(service, "mgr", cycle, org.emp1, "A", "全年交付 4 个项目") == "success"
    assert await propose(service, "mgr", cycle, org.emp2, "B", "完成 2 个目标") == "success"
    assert await propose(service, "smgr", cycle, org.seller, "C", "销售额完成 70%") == "success"
    await service.outbox.drain()
    recorder.clear()
    release = gc.GradesRelease(cycle_id=cycle.id)
    for uid in ("mgr", "emp1", "leader", "hrbp"):
        assert (await click(service, uid, release)).toast_kind == "error"
    await say(service, "mgr", "/grades")
    await service.outbox.drain()
    assert all(g.status == "proposed" for g in await rows(service, Grade))
    assert not recorder.to("emp1") and not recorder.to("emp2")

    await say(service, "hr", "/grades 2026-Q4")
    await service.outbox.drain()
    dist = text_of(last_to(recorder, "hr"))
    assert "研发部" in dist and "销售部" in dist
    assert (await click(service, "hr", release)).toast_kind == "success"
    assert (await click(service, "hr", release)).toast_kind == "error"  # nothing left to release
    await service.outbox.drain()
    assert ["A", "B", "C"] == [
        next(c for c in recorder.to(uid) if "**" in text_of(c)).elements[0].text.split("**")[1]  # type: ignore[union-attr]
        for uid in ("emp1", "emp2", "seller")
    ]
    assert all(len(recorder.to(uid)) == 1 for uid in ("emp1", "emp2", "seller"))
    assert all(g.status == "released" and g.released_by_id == org.hr.id for g in await rows(service, Grade))
    [released] = await audit(service, "grades.released")
    assert released.actor_id == org.hr.id and released.detail["count"] == 3
    assert await propose(service, "mgr", cycle, org.emp1, "B", "发布后想改") == "error"


async def test_release_with_deviations_needs_confirmation(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings
) -> None:
    settings.feedback.calibration_band = {"A": (0.0, 0.5)}
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    assert await propose(service, "mgr", cycle, org.emp1, "A", "全年交付 4 个项目") == "success"
    assert await propose(service, "mgr", cycle, org.emp2, "A", "主导 2 次架构升级") == "success"
    await service.outbox.drain()
    assert any("研发部" in c.header.title for c in recorder.to("hr"))  # band alert before release
    first = await click(service, "hr", gc.GradesRelease(cycle_id=cycle.id))
    assert first.toast_kind == "warning"
    assert all(g.status == "proposed" for g in await rows(service, Grade))
    assert (
        await click(service, "hr", gc.GradesRelease(cycle_id=cycle.id, confirm=True))
    ).toast_kind == "success"
    [released] = await audit(service, "grades.released")
    assert released.detail["override"] is True
