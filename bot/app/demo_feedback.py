"""A scripted peer-feedback round for the simulator demo: self-assessment, nomination, the manager's
approval and enough anonymous answers to cross the threshold, so the manager's aggregate card (with the
radar chart) is waiting in the simulator when the page opens.

Every step is a real event through the dispatcher (clicks and chat commands as the people would send
them), so the demo shows exactly what the flows do; only the cycle itself is created directly when the
person is in none yet.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy import select

from bot.app.service import Service
from bot.core.context import Context
from bot.core.events import CardAction, TextMessage
from bot.core.people import line_manager
from bot.core.status import CycleStatus, GoalsStatus, PeerFeedbackStatus, SelfAssessmentStatus
from cards.actions import pack
from cards.peer_feedback import PeerAnswer, PeerApprove
from cards.self_assessment import SelfAssessSubmit, dim_name, example_name, score_name
from handlers.feedback.api import open_self_assessment
from storage.feedback_scales import DIMENSIONS
from storage.models import Cycle, CycleParticipant, Goal, PeerFeedback, Person, SelfAssessment, Workspace
from storage.queries import cycles as cq

DEMO_CYCLE = "DEMO-360"
SELF_SCORES = (5, 4, 5, 5)
PEER_ANSWERS = (
    ((3, 4, 3, 3), "11 月 5 日联调时 2 小时内回复了接口问题，并补了 3 个用例"),
    ((2, 4, 3, 3), "周报里提前 1 周暴露了发布风险，让我们调整了排期"),
    ((3, 3, 4, 2), "10 月上线当晚一起排查支付回调，凌晨 1 点前定位了问题"),
    ((3, 4, 4, 3), "每周三主动同步 1 次进度，需求变更当天就更新了文档"),
)
_ids = itertools.count(1)


class DemoError(RuntimeError):
    """The demo data is not what the scripted round expects (unknown person, no manager)."""


def _event_id(kind: str) -> str:
    return f"demo-peer-{kind}-{next(_ids)}"


async def _ensure_cycle(service: Service, subject: Person) -> Cycle:
    async with service.factory() as s, s.begin():
        found = await cq.current_participation(s, subject.id)
        if found is not None:
            return found[0]
        now = service.clock.now()
        cycle = await cq.cycle_by_code(s, subject.workspace_id, DEMO_CYCLE)
        if cycle is None:
            cycle = Cycle(
                workspace_id=subject.workspace_id,
                code=DEMO_CYCLE,
                status=CycleStatus.ACTIVE,
                starts_on=(now - timedelta(days=76)).date(),
                ends_on=(now + timedelta(days=14)).date(),
                started_at=now - timedelta(days=76),
            )
            s.add(cycle)
            await s.flush()
        s.add(CycleParticipant(cycle_id=cycle.id, person_id=subject.id, goals_status=GoalsStatus.CONFIRMED))
        s.add(
            Goal(cycle_id=cycle.id, person_id=subject.id, position=0, objective="支付链路稳定性", weight=60)
        )
        s.add(Goal(cycle_id=cycle.id, person_id=subject.id, position=1, objective="新人带教", weight=40))
        return cycle


async def run_peer_round(
    service: Service,
    *,
    platform: str = "sim",
    workspace: str = "sim",
    subject: str = "zhoujie",
    peers: tuple[str, ...] = ("wuhao", "zhengyu", "fengxiaodong"),
) -> Cycle:
    """Play one round for ``subject`` (a platform user id) with ``peers`` answering; returns the cycle."""
    async with service.factory() as s:
        ws = await s.scalar(
            select(Workspace).where(Workspace.platform == platform, Workspace.app_id == workspace)
        )
        if ws is None:
            raise DemoError(f"no workspace {platform}:{workspace}")
        wanted = (subject, *peers)
        people = {
            p.platform_user_id: p
            for p in await s.scalars(
                select(Person).where(Person.workspace_id == ws.id, Person.platform_user_id.in_(wanted))
            )
        }
        missing = [u for u in wanted if u not in people]
        if missing:
            raise DemoError(f"unknown demo people: {', '.join(missing)}")
        manager = await line_manager(s, people[subject])
        if manager is None:
            raise DemoError(f"{subject} has no manager to approve the list")
    person = people[subject]
    cycle = await _ensure_cycle(service, person)

    async def open_it(ctx: Context) -> None:
        await open_self_assessment(ctx, cycle_id=cycle.id)

    await service.dispatcher.run_for_person(person.id, open_it)
    async with service.factory() as s:
        sa = await s.scalar(
            select(SelfAssessment).where(
                SelfAssessment.cycle_id == cycle.id, SelfAssessment.person_id == person.id
            )
        )
        goals = await cq.goals_of(s, cycle.id, person.id)
    assert sa is not None
    form: dict[str, str | list[str]] = {
        dim_name(d): str(v) for d, v in zip(DIMENSIONS, SELF_SCORES, strict=True)
    }
    for goal in goals:
        form[score_name(goal.id)] = "5"
        form[example_name(goal.id)] = "11 月把支付回调失败率从 0.8% 降到 0.1%，每周复盘 1 次"

    async def click(sender: str, value: str, data: dict[str, str | list[str]] | None = None) -> None:
        await service.dispatcher.dispatch(
            CardAction(
                platform=platform,
                workspace=workspace,
                event_id=_event_id("click"),
                sender_id=sender,
                value=value,
                form=data or {},
            )
        )

    if sa.status == SelfAssessmentStatus.OPEN:
        await click(subject, pack(SelfAssessSubmit(assessment_id=sa.id)), form)
    mentions = " ".join(f"@{people[p].platform_user_id}" for p in peers)
    await service.dispatcher.dispatch(
        TextMessage(
            platform=platform,
            workspace=workspace,
            event_id=_event_id("text"),
            sender_id=subject,
            text=f"/peers {mentions}",
        )
    )
    await click(manager.platform_user_id, pack(PeerApprove(cycle_id=cycle.id, subject_id=person.id)))
    async with service.factory() as s:
        requests = {
            r.rater_id: r.id
            for r in await s.scalars(
                select(PeerFeedback).where(
                    PeerFeedback.cycle_id == cycle.id,
                    PeerFeedback.subject_id == person.id,
                    PeerFeedback.status == PeerFeedbackStatus.REQUESTED,
                )
            )
        }
    for uid, (scores, example) in zip(peers, itertools.cycle(PEER_ANSWERS), strict=False):
        feedback_id = requests.get(people[uid].id)
        if feedback_id is None:
            continue
        answer: dict[str, str | list[str]] = {
            dim_name(d): str(v) for d, v in zip(DIMENSIONS, scores, strict=True)
        }
        answer["example"] = example
        await click(uid, pack(PeerAnswer(feedback_id=feedback_id)), answer)
    return cycle
