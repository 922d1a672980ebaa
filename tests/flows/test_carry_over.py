"""Carry-over (issue 17 item 9) and the goal figures (对齐率, 行动转化度) in the digest and the report.

The fixture: 2026-Q3 closed on 2026-10-01 08:00 (Shanghai 16:00); 2026-Q4 runs. 张三 left in Q3 an unfinished
number key result (85 of 80→90), a finished one, a half-done deliverable (one of two milestones), an open item
serving the unfinished key result, an open item serving nothing, an item done before the close, one done
after it, and one created after it. 李四 left one unfinished key result and carries nothing.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select, update

from bot.app.report import FIGURES, build_report
from bot.app.service import Service
from bot.core.context import Context
from cards.flow_actions import GoalsEdit
from cards.goal_actions import GoalCarryOver
from handlers.digest.digest import send_digest
from handlers.goals.api import parse_kr
from handlers.goals.carry import offer_carry_over
from handlers.goals.kr_parse import split_lines
from storage.models import ActionItem, AuditLog, Cycle, CycleParticipant, Goal, KeyResult, KeyResultValue
from storage.queries import metrics as m
from storage.queries.cycles import participant
from storage.queries.kr_links import proof_for_kr
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, has_enabled, last_to, last_update, say, text_of
from tests.support.flows2 import add_item, count, run_job
from tests.support.goal_links import Kr, add_cycle, add_goal

Q3_CLOSED = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


@dataclass
class Seed:
    q3: Cycle
    q4: Cycle
    renewal: KeyResult
    """张三's unfinished number key result."""
    portal: KeyResult
    """张三's half-done deliverable."""
    serving: ActionItem
    loose: ActionItem


async def seed(service: Service, org: Org) -> Seed:
    people = [org.emp1, org.emp2, org.seller]
    q3 = await add_cycle(
        service,
        org.workspace.id,
        people,
        code="2026-Q3",
        status="closed",
        starts_on=date(2026, 7, 1),
        ends_on=date(2026, 9, 30),
        closed_at=Q3_CLOSED,
        goals_status="confirmed",
    )
    _, [renewal, _done] = await add_goal(
        service,
        q3,
        org.emp1,
        "提升续约率",
        [
            Kr("续约率从 80% 提高到 90%", start=80, target=90, current=85, progress=0.5, unit="%"),
            Kr("回访 30 家客户", target=30, current=30, progress=1.0, unit="家"),
        ],
        weight=60,
    )
    milestones = (
        {"name": "设计", "due": None, "done": True},
        {"name": "开发", "due": "2026-12-20", "done": False},
    )
    _, [portal] = await add_goal(
        service,
        q3,
        org.emp1,
        "上线客户门户",
        [Kr("交付：客户门户一期", kind="deliverable", target=None, progress=0.5, milestones=milestones)],
        weight=40,
        position=1,
    )
    await add_goal(
        service, q3, org.emp2, "李四的目标", [Kr("交付 3 份方案", target=3, current=1, progress=0.33)]
    )
    at = datetime(2026, 9, 10, tzinfo=UTC)
    serving = await add_item(
        service,
        org.emp1,
        deadline=date(2026, 10, 20),
        created_at=at,
        deliverable="整理续约名单",
        key_result_id=renewal.id,
    )
    loose = await add_item(
        service, org.emp1, deadline=date(2026, 9, 25), created_at=at, deliverable="更新客户档案"
    )
    await add_item(
        service,
        org.emp1,
        deadline=date(2026, 9, 20),
        created_at=at,
        status="done",
        done_at=datetime(2026, 9, 19, tzinfo=UTC),
    )
    await add_item(  # open at the close, done since: counted as left open, no longer carriable
        service,
        org.emp1,
        deadline=date(2026, 10, 9),
        created_at=at,
        status="done",
        done_at=datetime(2026, 10, 8, tzinfo=UTC),
    )
    await add_item(
        service, org.emp1, deadline=date(2026, 11, 30), created_at=datetime(2026, 10, 15, tzinfo=UTC)
    )
    q4 = await add_cycle(service, org.workspace.id, people, code="2026-Q4")
    return Seed(q3, q4, renewal, portal, serving, loose)


async def _goals(service: Service, cycle: Cycle) -> list[tuple[Goal, list[KeyResult]]]:
    async with service.factory() as s:
        goals = list(
            await s.scalars(select(Goal).where(Goal.cycle_id == cycle.id).order_by(Goal.position, Goal.id))
        )
        out = []
        for g in goals:
            krs = list(
                await s.scalars(
                    select(KeyResult).where(KeyResult.goal_id == g.id).order_by(KeyResult.position)
                )
            )
            out.append((g, krs))
    return out


async def test_one_click_carries_unfinished_key_results_and_open_items(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    s = await seed(service, org)
    offered = await say(service, "emp1", "/carry")
    assert offered.toast_kind != "error"
    await service.outbox.drain()
    offer = last_to(recorder, "emp1")
    body = text_of(offer)
    assert "2026-Q3" in body and "续约率从 80% 提高到 90%" in body and "更新客户档案" in body
    assert "回访 30 家客户" not in body and "2026-11-30" not in body

    answer = await click(service, "emp1", button(offer, GoalCarryOver))
    assert answer.toast_kind == "success" and "4" in (answer.toast or "")
    goals = await _goals(service, s.q4)
    assert [(g.objective, g.weight, g.parent_id, g.level) for g, _ in goals] == [
        ("提升续约率", 0, None, "person"),
        ("上线客户门户", 0, None, "person"),
        ("完成上期（2026-Q3）未关闭的行动", 0, None, "person"),
    ]
    (renewal_goal, [renewal, serving]), (portal_goal, [portal]), (_, [loose]) = goals
    assert renewal.carried_from_id == s.renewal.id and renewal.from_action_item_id is None
    assert (renewal.start_value, renewal.target_value, renewal.current_value, renewal.unit) == (
        80,
        90,
        85,
        "%",
    )
    assert renewal.progress == 0.5 and renewal.weight == 0
    assert (serving.kind, serving.title, serving.from_action_item_id) == (
        "deliverable",
        "交付：整理续约名单",  # reads back as a deliverable in the goals form
        s.serving.id,
    )
    assert serving.deadline == date(2026, 10, 20)
    assert loose.from_action_item_id == s.loose.id and loose.deadline is None  # its deadline passed in Q3
    assert portal.carried_from_id == s.portal.id and portal.progress == 0.5
    assert [m_["done"] for m_ in portal.milestones] == [True, False]
    assert renewal_goal.carried_from_id is not None and renewal_goal.own_progress == 0.25
    assert (
        "交付：整理续约名单" in renewal_goal.key_result
        and "续约率从 80% 提高到 90%" in renewal_goal.key_result
    )
    assert portal_goal.own_progress == 0.5
    for goal, _ in goals:  # every carried line reads back as the key result it is
        for line in split_lines(goal.key_result):
            parse_kr(line, s.q4.starts_on or date.min)
    # Where a carried key result stood is its first value, an import naming where it came from.
    async with service.factory() as db:
        values = list(await db.scalars(select(KeyResultValue).order_by(KeyResultValue.id)))
        participant = await db.scalar(
            select(CycleParticipant).where(
                CycleParticipant.cycle_id == s.q4.id, CycleParticipant.person_id == org.emp1.id
            )
        )
    assert [(v.key_result_id, v.value, v.source, v.source_id) for v in values] == [
        (renewal.id, 85.0, "import", s.renewal.id),
        (portal.id, 1.0, "import", s.portal.id),
    ]
    assert participant is not None and participant.goals_status == "none"  # nothing submitted for them
    await service.outbox.drain()
    done = last_update(recorder, "emp1")
    assert done.header.colour == "green" and button(done, GoalsEdit).cycle_id == s.q4.id
    recorder.clear()
    await click(service, "emp1", button(done, GoalsEdit))  # the goals form opens with them prefilled
    await service.outbox.drain()
    form = text_of(last_to(recorder, "emp1"))
    assert "交付：整理续约名单" in form and "续约率从 80% 提高到 90%" in form and "上线客户门户" in form
    # The items stay open and tracked as they were, and count as proof of the key result made from them.
    async with service.factory() as db:
        items = {i.id: i for i in await db.scalars(select(ActionItem))}
        proof = await proof_for_kr(db, serving.id)
    assert items[s.serving.id].status == "open" and items[s.serving.id].key_result_id == s.renewal.id
    assert [(p.kind, p.ref_id) for p in proof] == [("action", s.serving.id)]

    # A second click (or /carry) carries nothing twice.
    again = await click(service, "emp1", GoalCarryOver(cycle_id=s.q4.id))
    assert again.toast_kind == "error" and "2026-Q3" in (again.toast or "")
    assert (await say(service, "emp1", "/carry")).toast_kind == "error"
    assert len(await _goals(service, s.q4)) == 3
    async with service.factory() as db:
        [row] = list(await db.scalars(select(AuditLog).where(AuditLog.action == "goals.carried_over")))
    assert row.entity_id == participant.id
    assert sorted(row.detail["key_results"]) == sorted([s.renewal.id, s.portal.id])
    assert sorted(row.detail["action_items"]) == sorted([s.serving.id, s.loose.id])


async def test_submitted_or_confirmed_goals_are_not_changed(service: Service, org: Org) -> None:
    s = await seed(service, org)
    for status, word in (("submitted", "退回"), ("confirmed", "锁定")):
        async with service.factory() as db, db.begin():
            await db.execute(
                update(CycleParticipant)
                .where(CycleParticipant.cycle_id == s.q4.id, CycleParticipant.person_id == org.emp1.id)
                .values(goals_status=status)
            )
        answer = await click(service, "emp1", GoalCarryOver(cycle_id=s.q4.id))
        assert answer.toast_kind == "error" and word in (answer.toast or "")
    assert await count(service, Goal, Goal.cycle_id == s.q4.id) == 0
    # Someone outside the cycle, and a cycle that is not running, are refused too.
    assert (await click(service, "hr", GoalCarryOver(cycle_id=s.q4.id))).toast_kind == "error"
    assert (await click(service, "emp2", GoalCarryOver(cycle_id=s.q3.id))).toast_kind == "error"


async def test_the_offer_comes_only_when_something_is_left(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    s = await seed(service, org)

    async def offer(ctx: Context) -> bool:
        mine = await participant(ctx.session, s.q4.id, ctx.person.id)
        cycle = await ctx.session.get(Cycle, s.q4.id)
        assert mine is not None and cycle is not None
        return await offer_carry_over(ctx, cycle, mine)

    assert await run_job(service, org.emp1, offer)
    assert not await run_job(service, org.seller, offer)  # nothing left in Q3
    await service.outbox.drain()
    assert button(last_to(recorder, "emp1"), GoalCarryOver).cycle_id == s.q4.id
    assert recorder.to("seller") == []
    # Opening the goals of the new cycle brings the offer along (as its own card, beside the form).
    recorder.clear()
    await say(service, "emp1", "/goals")
    await service.outbox.drain()
    assert any(has_enabled(c, GoalCarryOver) for c in recorder.to("emp1"))


async def _align(service: Service, org: Org, s: Seed) -> None:
    """Q4: a company objective, 研发部's under it; 李四 aligns one goal and leaves one unaligned; 周销售
    aligns hers."""
    company, _ = await add_goal(service, s.q4, org.leader, "公司：续约率 90%", level="company")
    dept, _ = await add_goal(
        service,
        s.q4,
        org.manager,
        "研发部：交付质量",
        level="department",
        parent_id=company.id,
        department_id=org.rnd.id,
    )
    await add_goal(service, s.q4, org.emp2, "李四：方案", parent_id=dept.id, weight=50)
    await add_goal(service, s.q4, org.emp2, "李四：学习", weight=50, position=1)
    await add_goal(service, s.q4, org.seller, "周销售：续约", parent_id=company.id)


async def test_alignment_rate_and_carry_over_share(service: Service, org: Org) -> None:
    s = await seed(service, org)
    await _align(service, org, s)
    await click(service, "emp1", GoalCarryOver(cycle_id=s.q4.id))
    base = m.CarryBase(s.q3.id, Q3_CLOSED)
    async with service.factory() as db:
        company = await m.goal_figures(db, m.Scope(org.workspace.id), s.q4.id, level="person", previous=base)
        by_dept = await m.goal_figures_by(
            db, m.Scope(org.workspace.id), s.q4.id, "department", level="person", previous=base
        )
        by_person = await m.goal_figures_by(
            db, m.Scope(org.workspace.id), s.q4.id, "person", level="person", previous=base
        )
        first = await m.goal_figures(db, m.Scope(org.workspace.id), s.q4.id, level="person", previous=None)
    # 张三's three carried goals (unaligned), 李四's two (one aligned), 周销售's one (aligned): 2 of 6.
    assert (company.goals, company.aligned, company.alignment_rate) == (6, 2, 2 / 6)
    # Left open at Q3's end: 张三 two key results and three items (one done since), 李四 one key result.
    assert (company.carry_base, company.carried) == (6, 4) and company.carry_over_share == 4 / 6
    assert (by_dept[org.rnd.id].goals, by_dept[org.rnd.id].aligned) == (5, 1)
    assert by_dept[org.sales.id].alignment_rate == 1.0 and by_dept[org.sales.id].carry_over_share is None
    assert by_person[org.emp1.id].carry_over_share == 4 / 5 and by_person[org.emp2.id].carry_over_share == 0.0
    assert first.carry_base is None and first.carry_over_share is None
    assert company.as_dict()["alignment_rate"] == 0.3333 and company.as_dict()["carry_over_share"] == 0.6667


async def test_digest_line_and_report_columns(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    s = await seed(service, org)
    await _align(service, org, s)
    await click(service, "emp1", GoalCarryOver(cycle_id=s.q4.id))
    assert await run_job(service, org.leader, lambda ctx: send_digest(ctx, day=date(2026, 11, 24)))
    await service.outbox.drain()
    digest = last_to(recorder, "leader")
    line = next(e.text for e in digest.elements if getattr(e, "text", "").startswith("🎯"))
    assert (
        line.startswith("🎯 2026-Q4 目标：对齐率 33%（2/6") and "行动转化度 67%" in line and "2026-Q3" in line
    )

    data = json.loads(await build_report(service, cycle="2026-Q4", fmt="json"))
    assert data["company"]["alignment_rate"] == 0.3333 and data["company"]["carry_over_share"] == 0.6667
    assert data["company"]["goals"] == 6 and data["previous"]["company"]["alignment_rate"] is None
    depts = {d["department"]: d for d in data["departments"]}
    assert depts["研发部"]["goals_aligned"] == 1 and depts["销售部"]["alignment_rate"] == 1.0
    zhang = next(p for p in data["people"] if p["name"] == "张三")
    assert (zhang["carried_over"], zhang["carry_over_base"]) == (4, 5)
    rows = list(csv.DictReader(io.StringIO(await build_report(service, cycle="2026-Q4", fmt="csv"))))
    assert {"alignment_rate", "carry_over_share"} <= set(rows[0]) and set(FIGURES) <= set(rows[0])
    company = [
        (r["period"], r["alignment_rate"], r["carry_over_share"]) for r in rows if r["level"] == "company"
    ]
    assert company == [("current", "0.3333", "0.6667"), ("previous", "", "")]


async def test_two_taps_at_once_carry_once(service: Service, org: Org) -> None:
    import asyncio

    s = await seed(service, org)
    tap = GoalCarryOver(cycle_id=s.q4.id)
    answers = await asyncio.gather(*(click(service, "emp1", tap) for _ in range(3)))
    assert sorted(a.toast_kind for a in answers).count("success") == 1
    assert len(await _goals(service, s.q4)) == 3
    assert await count(service, AuditLog, AuditLog.action == "goals.carried_over") == 1
