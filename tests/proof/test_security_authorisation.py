"""Authorisation of every button action: a click forged with someone else's record id changes nothing.

A button value is just text (``checkin.ack|{"checkin_id":42}``); anyone can send any value, with any ids,
from their own account (the platform vouches only for *who* clicked). So every handler must check that the
clicker may act on the record the payload names.

The test builds a world first, with a record of every kind in the states the actions apply to, all belonging
to the R&D team (``emp1``, ``emp2``, their manager ``mgr``) and HR. Then ``seller`` — an employee of another
department with no role over any of it — clicks every registered action with every id that exists for each
payload field, with the form filled in. After each click the content of every domain table must be exactly
as before. Finally the legitimate people make some of the same clicks, and those do change rows: the world
really was one in which the forged clicks would have done something had they been allowed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, get_args

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.registry import AdapterRegistry
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.context import Context, Refused
from bot.core.events import CardAction, TextMessage
from cards import goal_actions
from cards.actions import Action, pack, registered_actions
from cards.catalogue import Translator
from cards.model import DatePicker, Form, Select, TextInput
from handlers.goals.versions import goal_entry
from storage.models import (
    ActionItem,
    Base,
    CheckIn,
    ConversationState,
    Cycle,
    CycleParticipant,
    DeliverableRating,
    Evidence,
    EvidenceRequest,
    Goal,
    GoalComment,
    GoalVersion,
    Grade,
    GradeAppeal,
    KeyResult,
    KeyResultRhythm,
    KeyResultValue,
    PeerFeedback,
    Person,
    Review321,
    ScheduledSend,
    SelfAssessment,
)
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org, seed_org

pytestmark = pytest.mark.timeout(240)

NOT_DOMAIN = {"inbound_events", "outbox", "audit_log", "conversation_states", "card_messages"}
"""Bookkeeping a refused click may legitimately touch (its event record, the message telling the clicker)."""

_ids = itertools.count(1)

GENERIC_FORM: dict[str, str | list[str]] = {
    "comment": "forged",
    "reason": "forged",
    "deadline": "2026-12-31",
    "support": "forged",
    "obstacles": "forged",
    "solid_action": "forged",
    "change_brought": "forged",
    "blocker": "forged",
    "new_action": "forged",
    "example": "forged",
    "deliverable": "forged",
    "rating": "meets",
    "grade": "A",
    "decision": "ok",
    "owner": "seller",
    "acceptor": "seller",
    "peers": ["seller"],
    "objective_1": "forged",
    "key_results_1": "签约 20 家新客户",
    "weight_1": "100",
    "parent_1": "none",
    "body": "forged",
    "direction": "up",
    "outcome": "adjust",
    "answer": "forged",
    "value": "40",
    "note": "forged",
    "krs_1": "1. 签约 40 家新客户",
    "key_result": "1",
    "rhythm": "每周三 10:00 前上传客户拜访照片",
}
"""Every field any form of a button asks for, filled in as an attacker would (a form the builder refuses to
show is sent like this); the goals and objectives forms as their first goal, the adjustment as its first."""


async def _build_world(service: Service, org: Org, now: datetime) -> dict[str, list[int]]:
    """A record of every kind, in the states the actions act on; returns the ids per table."""
    today = now.date()
    async with service.factory() as s, s.begin():
        active = Cycle(
            workspace_id=org.workspace.id,
            code="2026-H2",
            status="active",
            scope=[org.rnd.id],
            goal_visibility="department",  # R&D's personal goals are not the seller's to see (issue 17)
            starts_on=date(2026, 7, 1),
            ends_on=date(2026, 12, 31),
            started_by_id=org.hr.id,
            started_at=now - timedelta(days=100),
        )
        draft = Cycle(
            workspace_id=org.workspace.id,
            code="2027-H1",
            status="draft",
            scope=[org.rnd.id],
            goal_visibility="department",
            started_by_id=org.hr.id,
        )
        s.add_all([active, draft])
        await s.flush()
        part1 = CycleParticipant(cycle_id=active.id, person_id=org.emp1.id, goals_status="submitted")
        part2 = CycleParticipant(cycle_id=active.id, person_id=org.emp2.id, goals_status="none")
        part3 = CycleParticipant(cycle_id=draft.id, person_id=org.emp1.id)
        s.add_all([part1, part2, part3])
        goal = Goal(
            cycle_id=active.id,
            person_id=org.emp1.id,
            objective="上线新接口",
            key_result="P99<100ms",
            weight=100,
        )
        s.add(goal)
        submitted = CheckIn(
            person_id=org.emp1.id,
            cycle_id=active.id,
            period="2026-11-20",
            status="submitted",
            obstacles="联调慢",
            due_at=now - timedelta(days=4),
            submitted_at=now - timedelta(days=3),
        )
        open_ci = CheckIn(
            person_id=org.emp2.id, cycle_id=active.id, period="2026-11-20", status="open", due_at=now
        )
        own_open = CheckIn(
            person_id=org.emp1.id, cycle_id=active.id, period="2026-12-04", status="open", due_at=now
        )
        s.add_all([submitted, open_ci, own_open])
        rev_sub = Review321(
            person_id=org.emp1.id,
            period="2026-10",
            status="submitted",
            solid_action="a",
            change_brought="b",
            blocker="c",
            new_action="d",
            new_action_deadline=today + timedelta(days=20),
            submitted_at=now - timedelta(days=2),
        )
        rev_open = Review321(person_id=org.emp2.id, period="2026-11", status="open", due_at=now)
        s.add_all([rev_sub, rev_open])
        await s.flush()
        items = [
            ActionItem(
                owner_id=org.emp1.id,
                acceptor_id=org.manager.id,
                created_by_id=org.manager.id,
                source="manual",
                deliverable="写设计文档",
                deadline=today + timedelta(days=5),
                status="open",
                evidence_required=True,
            ),
            ActionItem(
                owner_id=org.emp2.id,
                acceptor_id=org.manager.id,
                created_by_id=org.manager.id,
                source="manual",
                deliverable="修复告警",
                deadline=today + timedelta(days=1),
                status="done",
                done_at=now - timedelta(hours=5),
            ),
            ActionItem(
                owner_id=org.emp1.id,
                acceptor_id=org.manager.id,
                source="review",
                source_id=rev_sub.id,
                deliverable="整理周报",
                deadline=today - timedelta(days=1),
                status="returned",
            ),
        ]
        s.add_all(items)
        await s.flush()
        request = EvidenceRequest(
            person_id=org.emp1.id,
            action_item_id=items[0].id,
            requested_by_id=org.manager.id,
            requested_at=now - timedelta(hours=1),
            expires_at=now + timedelta(hours=1),
        )
        s.add(request)
        await s.flush()
        evidence = [
            Evidence(
                person_id=org.emp1.id,
                action_item_id=items[0].id,
                request_id=request.id,
                file_path="ab/abcd.png",
                sha256="ab" * 32,
                size=100,
                mime="image/png",
                received_at=now - timedelta(minutes=30),
            ),
            Evidence(
                person_id=org.emp2.id,
                file_path="cd/cdef.png",
                sha256="cd" * 32,
                size=100,
                mime="image/png",
                received_at=now - timedelta(minutes=10),
            ),
        ]
        s.add_all(evidence)
        s.add(SelfAssessment(cycle_id=active.id, person_id=org.emp1.id, status="open"))
        s.add_all(
            [
                PeerFeedback(
                    cycle_id=active.id,
                    subject_id=org.emp1.id,
                    rater_id=org.emp2.id,
                    nominated_by_id=org.emp1.id,
                    status="requested",
                    requested_at=now - timedelta(days=1),
                ),
                PeerFeedback(
                    cycle_id=active.id,
                    subject_id=org.emp2.id,
                    rater_id=org.emp1.id,
                    nominated_by_id=org.emp2.id,
                ),
            ]
        )
        s.add(
            DeliverableRating(
                kind="action",
                ref_id=items[1].id,
                owner_id=org.emp2.id,
                rater_id=org.manager.id,
                role="acceptor",
                requested_at=now - timedelta(hours=2),
                due_at=now + timedelta(hours=46),
            )
        )
        s.add(
            Grade(
                cycle_id=active.id,
                person_id=org.emp1.id,
                department_id=org.rnd.id,
                grade="B",
                reason="稳定",
                proposed_by_id=org.manager.id,
                proposed_at=now - timedelta(days=1),
            )
        )
        # Issue 20: a released grade with an open appeal (correct, appeal, withdraw, decide).
        released = Grade(
            cycle_id=active.id,
            person_id=org.emp2.id,
            department_id=org.rnd.id,
            grade="C",
            reason="延期两次",
            status="released",
            released_by_id=org.hr.id,
            released_at=now - timedelta(days=1),
        )
        s.add(released)
        await s.flush()
        s.add(
            GradeAppeal(
                grade_id=released.id,
                cycle_id=active.id,
                person_id=org.emp2.id,
                open_grade_id=released.id,
                reason="延期是客户原因",
                grade_before="C",
            )
        )
        s.add(
            ScheduledSend(
                flow="checkin", person_id=org.emp2.id, period="2026-11-20", status="sent", due_at=now
            )
        )
        await s.flush()
        await _goal_tree(s, org, active, goal, now)
    ids: dict[str, list[int]] = {}
    async with service.factory() as s:
        for model in (
            Cycle,
            CycleParticipant,
            CheckIn,
            Review321,
            ActionItem,
            Evidence,
            SelfAssessment,
            PeerFeedback,
            DeliverableRating,
            Grade,
            GradeAppeal,
            KeyResult,
            GoalComment,
            GoalVersion,
        ):
            ids[model.__tablename__] = list(await s.scalars(select(model.id).order_by(model.id)))
        # Company and department objectives are open to everyone to see, comment on and question (issue 17
        # item 4): the seller doing so is no forgery. Personal goals are R&D's only in this cycle.
        ids["person_goals"] = list(
            await s.scalars(select(Goal.id).where(Goal.level == "person").order_by(Goal.id))
        )
    ids["victims"] = [org.emp1.id, org.emp2.id, org.manager.id]
    ids["departments"] = [org.rnd.id, org.sales.id]
    return ids


async def _goal_tree(s: AsyncSession, org: Org, cycle: Cycle, goal: Goal, now: datetime) -> None:
    """Issue 17 around 张三's goal: the leader's company objective and R&D's (set by HR, so that none of the
    victims owns an objective everyone may see) above it, key
    results with a value, 李四's challenge awaiting the manager's answer, a proposed adjustment (target 20 →
    25) beside the approved version 1, and a weekly rhythm."""
    company = Goal(
        cycle_id=cycle.id, person_id=org.leader.id, level="company", objective="华东市场份额第一", weight=100
    )
    s.add(company)
    await s.flush()
    rnd = Goal(
        cycle_id=cycle.id,
        person_id=org.hr.id,
        level="department",
        department_id=org.rnd.id,
        parent_id=company.id,
        objective="研发交付提速",
        weight=100,
    )
    s.add(rnd)
    await s.flush()
    goal.parent_id, goal.own_progress = rnd.id, 0.25
    kr = KeyResult(goal_id=goal.id, title="签约新客户", unit="家", target_value=20.0, current_value=5.0)
    kr.progress = 0.25
    s.add_all(
        [
            kr,
            KeyResult(goal_id=company.id, title="华东收入", unit="亿元", start_value=0.8, target_value=1.2),
            KeyResult(goal_id=rnd.id, title="发布次数", unit="次", target_value=60.0),
        ]
    )
    await s.flush()
    s.add(
        KeyResultValue(
            key_result_id=kr.id,
            value=5.0,
            progress=0.25,
            source="owner",
            recorded_by_id=org.emp1.id,
            recorded_at=now - timedelta(days=2),
        )
    )
    s.add(
        GoalComment(goal_id=goal.id, author_id=org.emp2.id, kind="challenge", direction="up", body="目标偏低")
    )
    approved = {"goals": [goal_entry(goal, [kr])]}
    proposed = {
        "goals": [
            dict(
                approved["goals"][0],
                key_results=[dict(goal_entry(goal, [kr])["key_results"][0], target=25.0)],
            )
        ]
    }
    s.add_all(
        [
            GoalVersion(
                cycle_id=cycle.id,
                person_id=org.emp1.id,
                version=1,
                status="approved",
                content=approved,
                decided_by_id=org.manager.id,
                decided_at=now - timedelta(days=30),
                effective_from=now - timedelta(days=30),
            ),
            GoalVersion(
                cycle_id=cycle.id,
                person_id=org.emp1.id,
                version=2,
                status="proposed",
                content=proposed,
                reason="新增两个大客户渠道",
                proposed_by_id=org.emp1.id,
                proposed_at=now - timedelta(hours=3),
            ),
        ]
    )
    s.add(
        KeyResultRhythm(
            key_result_id=kr.id,
            person_id=org.emp1.id,
            text="上传客户拜访照片",
            weekday=2,
            created_by_id=org.manager.id,
        )
    )


FIELD_TABLE = {
    "cycle_id": "cycles",
    "participant_id": "cycle_participants",
    "checkin_id": "checkins",
    "review_id": "reviews_321",
    "item_id": "action_items",
    "evidence_id": "evidence",
    "assessment_id": "self_assessments",
    "feedback_id": "peer_feedback",
    "rating_id": "deliverable_ratings",
    "person_id": "victims",
    "subject_id": "victims",
    "owner_id": "victims",
    "grade_id": "grades",
    "appeal_id": "grade_appeals",
    "department_id": "departments",
    "goal_id": "person_goals",
    "key_result_id": "key_results",
    "comment_id": "goal_comments",
    "version_id": "goal_versions",
}


def _values(name: str, annotation: Any, ids: dict[str, list[int]]) -> list[Any]:
    if name in FIELD_TABLE:
        optional = type(None) in get_args(annotation)  # ObjectiveSubmit: no department = the company's
        return [*ids[FIELD_TABLE[name]], *([None] if optional else [])]
    if name == "ref_id":
        return ids["checkins"] + ids["reviews_321"]
    if name == "flow":
        return ["checkin", "review"]
    if annotation is bool:
        return [True]
    if annotation is date:
        return [date(2026, 12, 31)]
    literals = [a for arg in get_args(annotation) for a in (get_args(arg) or [arg]) if isinstance(a, str)]
    if literals:
        return literals
    raise AssertionError(f"no forged values for field {name}: {annotation}; extend the test")


def forged_payloads(cls: type[Action], ids: dict[str, list[int]]) -> Iterator[Action]:
    fields = cls.model_fields
    choices = [_values(name, f.annotation, ids) for name, f in fields.items()]
    for combo in itertools.product(*choices):
        yield cls(**dict(zip(fields, combo, strict=True)))


async def domain_snapshot(service: Service) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with service.factory() as s:
        for table in Base.metadata.sorted_tables:
            if table.name in NOT_DOMAIN:
                continue
            rows = (await s.execute(select(table))).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def _diff(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> dict[str, Any]:
    return {
        t: {
            "gone": [r for r in before[t] if r not in after[t]],
            "new": [r for r in after[t] if r not in before[t]],
        }
        for t in before
        if before[t] != after[t]
    }


async def _form_for(service: Service, clicker_id: int, payload: Action) -> dict[str, str | list[str]]:
    """The action's own form filled in (as the clicker would see it), else a generic one."""
    builder = service.dispatcher.router.forms.get(payload.action_id)
    form = dict(GENERIC_FORM)
    if builder is None:
        return form
    built: list[Form] = []

    async def build(ctx: Context) -> None:
        built.append(await builder(ctx, payload))

    try:
        await service.dispatcher.run_for_person(clicker_id, build)
    except Refused:
        return form
    for field in built[0].inputs:
        if isinstance(field, TextInput):
            form[field.name] = "forged"
        elif isinstance(field, Select):
            form[field.name] = [field.options[0].value] if field.multiple else field.options[0].value
        elif isinstance(field, DatePicker):
            form[field.name] = "2026-12-31"
    return form


def _click(sender: str, payload: Action, form: dict[str, str | list[str]]) -> CardAction:
    return CardAction(
        platform="rec",
        workspace="rec-app",
        event_id=f"forged-{next(_ids)}",
        sender_id=sender,
        value=pack(payload),
        form=form,
        message_ref="m-forged",
    )


async def test_forged_clicks_by_an_unrelated_employee_change_nothing(
    service: Service, org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    now = service.clock.now().astimezone(UTC)
    ids = await _build_world(service, org, now)
    attacker = org.seller
    handled = service.dispatcher.router.actions
    actions = registered_actions()
    assert actions, "no actions registered"
    tried: dict[str, int] = {}
    for action_id, cls in sorted(actions.items()):
        if action_id not in handled:
            continue
        for payload in forged_payloads(cls, ids):
            form = await _form_for(service, attacker.id, payload)
            before = await domain_snapshot(service)
            answer = await service.dispatcher.dispatch(_click(attacker.platform_user_id, payload, form))
            after = await domain_snapshot(service)
            assert before == after, (
                f"{attacker.platform_user_id} forged {pack(payload)} (answer {answer.toast!r}) and changed "
                f"{_diff(before, after)}"
            )
            # Refused by a check, not by accident: a crash also rolls back, but is not authorisation.
            assert answer.toast_kind in ("error", "warning") and answer.toast, pack(payload)
            assert answer.toast != Translator("zh-CN")("common.error"), f"{pack(payload)} crashed the handler"
            tried[action_id] = tried.get(action_id, 0) + 1
    assert set(tried) == {a for a in actions if a in handled}
    goal_tree = {
        v.action_id for v in vars(goal_actions).values() if isinstance(v, type) and v in actions.values()
    }
    assert goal_tree and goal_tree <= set(tried), f"goal-tree payloads never forged: {goal_tree - set(tried)}"
    assert not [r for r in caplog.records if r.getMessage() == "handler failed"]
    assert sum(tried.values()) >= 2 * len(tried)

    # The controls: the same kinds of click by the people entitled to make them do change the world.
    controls: list[tuple[Person, str, dict[str, Any]]] = [
        (org.manager, "checkin.ack", {"checkin_id": ids["checkins"][0]}),
        (org.manager, "action.accept", {"item_id": ids["action_items"][1]}),
        (org.manager, "goals.confirm", {"participant_id": ids["cycle_participants"][0]}),
        (org.hr, "kickoff.cancel", {"cycle_id": ids["cycles"][1]}),
        (org.emp1, "schedule.snooze", {"flow": "checkin", "ref_id": ids["checkins"][2]}),
        (org.emp1, "okr.kr_value_submit", {"key_result_id": ids["key_results"][0]}),
        (org.emp1, "okr.comment", {"goal_id": ids["person_goals"][0]}),
        (org.manager, "okr.adjust_approve", {"version_id": ids["goal_versions"][1]}),
    ]
    for person, action_id, fields in controls:
        payload = actions[action_id](**fields)
        before = await domain_snapshot(service)
        form = await _form_for(service, person.id, payload) | {"value": "8"}  # a key result's value: a number
        answer = await service.dispatcher.dispatch(_click(person.platform_user_id, payload, form))
        after = await domain_snapshot(service)
        assert before != after, (
            f"control {action_id} by {person.platform_user_id} changed nothing: {answer.toast!r}"
        )


class _ChatFormRecorder(RecordingAdapter):
    """A platform without text inputs on cards (WeCom, DingTalk): a click on a button with a form starts a
    question-and-answer conversation in chat, and only the last answer runs the handler."""

    supports_text_inputs: ClassVar[bool] = False


async def test_forged_clicks_answered_through_chat_forms_change_nothing(
    settings: Settings, clock: FixedClock
) -> None:
    """Some form builders (action.extend/reassign/return, evidence.rate) ask their generic questions of
    anyone; the handler must still refuse the completed form. The attacker answers every question."""
    registry = AdapterRegistry()
    registry.add(_ChatFormRecorder())
    service = build_service(settings, clock=clock, registry=registry)
    try:
        async with service.factory() as s, s.begin():
            org = await seed_org(s, platform="rec", app_id="rec-app")
        ids = await _build_world(service, org, clock.now().astimezone(UTC))
        attacker = org.seller
        asked = 0
        for action_id in sorted(service.dispatcher.router.forms):
            for payload in forged_payloads(registered_actions()[action_id], ids):
                before = await domain_snapshot(service)
                await service.dispatcher.dispatch(_click(attacker.platform_user_id, payload, {}))
                for _ in range(6):  # answer whatever is asked, as well as one can
                    async with service.factory() as s:
                        state = await s.scalar(
                            select(ConversationState).where(ConversationState.person_id == attacker.id)
                        )
                    if state is None:
                        break
                    asked += 1
                    question = state.data["pending"][0]
                    answer = {"select": "1", "date_picker": "2026-12-31"}.get(question["kind"], "forged")
                    await service.dispatcher.dispatch(
                        TextMessage(
                            platform="rec",
                            workspace="rec-app",
                            event_id=f"forged-answer-{next(_ids)}",
                            sender_id=attacker.platform_user_id,
                            text=answer,
                        )
                    )
                after = await domain_snapshot(service)
                assert before == after, f"{pack(payload)} through a chat form changed {_diff(before, after)}"
        assert asked > 0, "no forged click got as far as a chat form: the test would prove nothing"
    finally:
        await service.close()
