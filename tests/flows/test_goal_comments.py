"""Issue 17 item 4: comments and challenges on goals, on SQLite and PostgreSQL.

Only those who may see a goal comment on it (the cycle's visibility; company and department objectives are
open to everyone); the owner and their manager are told, one card each, after their quiet hours; a
challenge (向上质疑) reaches the owner's manager, who answers once (keep, or ask the owner to adjust); an
answer by anyone else, or a second one, is refused and changes nothing; the challenger is told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot.app.service import Service
from bot.core.clock import FixedClock
from cards import goal_comments as gc
from cards.actions import unpack
from cards.catalogue import Translator
from cards.goal_actions import (
    GoalAdjustSubmit,
    GoalChallengeAnswer,
    GoalChallengeOpen,
    GoalChallengeSubmit,
    GoalCommentOpen,
    GoalCommentSubmit,
)
from storage.models import Cycle, GoalComment, OutboxMessage, QuietHours
from storage.queries.goal_comments import comment_counts
from tests.fakes.recording import ChatOnlyAdapter, RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, has_enabled, last_to, say, text_of
from tests.support.flows3 import audit, make_cycle, rows
from tests.support.goal_rows import Seeded, deliverable_kr, number_kr, seed_goals

REASON = "去年同期已经签了 25 家，20 家偏低"
KEEP = "维持：华东区 11 月起少了两名销售，20 家已经是满负荷"


async def setup(service: Service, org: Org, visibility: str = "company") -> tuple[Cycle, Seeded]:
    cycle = await make_cycle(service, [org.emp1, org.emp2, org.seller], goals=False)
    async with service.factory() as s, s.begin():
        await s.execute(update(Cycle).where(Cycle.id == cycle.id).values(goal_visibility=visibility))
    seeded = await seed_goals(
        service,
        cycle,
        org.emp1,
        [
            ("拿下华东区新客户", 60, [number_kr("签约 20 家客户", 20, current=8)]),
            ("完成计费系统迁移", 40, [deliverable_kr("交付：迁移方案文档")]),
        ],
    )
    return cycle, seeded


async def test_a_comment_tells_the_owner_and_the_manager_once_each(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    _, seeded = await setup(service, org)
    goal = seeded.goals[0]
    # A goal card's "评论" sends the form as a card of its own; nothing is stored yet.
    [comment_button, _] = gc.goal_buttons(Translator("en"), goal.id)
    opened = await click(service, "emp2", unpack(comment_button.value))
    assert opened.toast_kind == "info"
    await service.outbox.drain()
    form = last_to(recorder, "emp2")
    assert form.forms() and "签约 20 家客户" in text_of(form)
    assert (await click(service, "emp2", GoalCommentSubmit(goal_id=goal.id))).toast_kind == "info"  # old card
    assert await rows(service, GoalComment) == []
    await service.outbox.drain()
    recorder.clear()

    empty = await click(service, "emp2", GoalCommentSubmit(goal_id=goal.id), {"body": " "})
    assert empty.toast_kind == "error" and await rows(service, GoalComment) == []

    sent = await click(
        service, "emp2", button(form, GoalCommentSubmit), {"body": "华东区的渠道名单我可以给你"}
    )
    assert sent.toast_kind == "success" and "张三" in (sent.toast or "") and "王经理" in (sent.toast or "")
    await service.outbox.drain()
    [row] = await rows(service, GoalComment)
    assert (row.kind, row.author_id, row.goal_id, row.status) == ("comment", org.emp2.id, goal.id, "open")
    [owner_card] = recorder.to("emp1")
    [manager_card] = recorder.to("mgr")
    assert owner_card.header.title == "李四 评论了你的目标"
    assert manager_card.header.title == "李四 评论了 张三 的目标"
    assert "华东区的渠道名单我可以给你" in text_of(owner_card)
    assert has_enabled(owner_card, GoalCommentOpen)  # one way on: reply
    assert recorder.to("emp2") == []  # the author is not told of their own comment
    [logged] = await audit(service, "goal.commented")
    assert (logged.entity, logged.entity_id, logged.actor_id) == ("goal_comment", row.id, org.emp2.id)

    # The owner's own comment goes to the manager only.
    recorder.clear()
    await click(service, "emp1", GoalCommentSubmit(goal_id=goal.id), {"body": "渠道名单 12 月 3 日前整理好"})
    await service.outbox.drain()
    assert recorder.to("emp1") == [] and len(recorder.to("mgr")) == 1
    async with service.factory() as s:
        counts = await comment_counts(s, [goal.id, seeded.goals[1].id])
    assert (counts[goal.id].comments, counts[goal.id].total) == (2, 2)
    assert counts[seeded.goals[1].id].total == 0


async def test_only_those_who_may_see_a_goal_may_comment(service: Service, org: Org) -> None:
    cycle, seeded = await setup(service, org, visibility="department")
    goal = seeded.goals[0]
    body = {"body": "12 月 3 日前把渠道名单发你"}
    refused = await click(service, "seller", GoalCommentSubmit(goal_id=goal.id), body)  # another department
    assert refused.toast_kind == "error" and "看不到 张三 的目标" in (refused.toast or "")
    assert await rows(service, GoalComment) == []
    for uid in ("emp2", "mgr", "hrbp", "leader"):  # same department, the manager, the HRBP, a leader
        assert (
            await click(service, uid, GoalCommentSubmit(goal_id=goal.id), body)
        ).toast_kind == "success", uid

    async with service.factory() as s, s.begin():
        await s.execute(update(Cycle).where(Cycle.id == cycle.id).values(goal_visibility="manager"))
    assert (await click(service, "emp2", GoalCommentSubmit(goal_id=goal.id), body)).toast_kind == "error"
    assert (await click(service, "mgr", GoalCommentSubmit(goal_id=goal.id), body)).toast_kind == "success"
    # A department objective is open to the whole workspace, whatever the cycle's visibility.
    dept = await seed_goals(
        service,
        cycle,
        org.manager,
        [("研发部：年底前完成计费系统迁移", 100, [deliverable_kr("交付：迁移方案文档")])],
        level="department",
        department_id=org.rnd.id,
    )
    sent = await click(service, "seller", GoalCommentSubmit(goal_id=dept.goals[0].id), body)
    assert sent.toast_kind == "success"
    assert len(await rows(service, GoalComment)) == 6


async def test_a_comment_waits_for_the_owners_quiet_hours(
    service: Service, org: Org, clock: FixedClock
) -> None:
    _, seeded = await setup(service, org)
    async with service.factory() as s, s.begin():
        s.add(QuietHours(person_id=org.emp1.id, starts="09:00", ends="12:00"))  # now is 10:00 in Shanghai
    await click(
        service, "emp2", GoalCommentSubmit(goal_id=seeded.goals[0].id), {"body": "渠道名单我 12 月给你"}
    )
    out = await rows(service, OutboxMessage)
    by = {tuple(r.recipients): r.next_attempt_at for r in out}
    assert by[("emp1",)] == datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # 12:00 Shanghai
    assert by[("mgr",)] == clock.now()


async def test_a_challenge_is_answered_once_by_the_owners_manager(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    _, seeded = await setup(service, org)
    goal = seeded.goals[0]
    challenge = GoalChallengeSubmit(goal_id=goal.id)
    # The owner adjusts rather than challenges; the one who answers cannot raise one.
    own = await click(service, "emp1", challenge, {"direction": "up", "reason": REASON})
    assert own.toast_kind == "error" and "/adjust" in (own.toast or "")
    assert (
        await click(service, "mgr", challenge, {"direction": "up", "reason": REASON})
    ).toast_kind == "error"
    missing = await click(service, "emp2", challenge, {"direction": "", "reason": REASON})
    assert missing.toast_kind == "error"
    # A vague reason is asked about once, with what was typed kept.
    before = len(recorder.updates)
    vague = await click(service, "emp2", challenge, {"direction": "up", "reason": "应该更加积极一些"})
    assert vague.toast_kind == "warning" and await rows(service, GoalComment) == []
    await service.outbox.drain()
    back = [card for _, card, rcpt in recorder.updates[before:] if rcpt == "emp2"][-1]
    assert {i.name: i.default for f in back.forms() for i in f.inputs} == {
        "direction": "up",
        "reason": "应该更加积极一些",
    }
    sent = await click(service, "emp2", challenge, {"direction": "up", "reason": REASON})
    assert sent.toast == "Challenge sent; 王经理 will decide and you will be told."  # 李四 reads English
    await service.outbox.drain()
    [row] = await rows(service, GoalComment)
    assert (row.kind, row.direction, row.status, row.body) == ("challenge", "up", "open", REASON)
    card = last_to(recorder, "mgr")
    assert card.header.title == "李四 质疑了 张三 的目标" and card.header.colour == "orange"
    assert REASON in text_of(card) and "签约 20 家客户" in text_of(card)
    assert recorder.to("emp1") == []  # the challenge goes to the manager, not to the owner
    answer = button(card, GoalChallengeAnswer)
    keep = {"outcome": "kept", "answer": KEEP}

    # Nobody but the owner's approvers answers; a refused answer changes nothing.
    for uid in ("emp2", "emp1", "seller", "leader", "smgr"):
        assert (await click(service, uid, answer, keep)).toast_kind == "error", uid
    [row] = await rows(service, GoalComment)
    assert (row.status, row.answer, row.answered_by_id) == ("open", None, None)

    recorder.clear()
    clock.advance(timedelta(minutes=5))
    done = await click(service, "mgr", answer, keep)
    assert done.toast == "已决定维持 张三 的目标，并告知了提出人。"
    await service.outbox.drain()
    [row] = await rows(service, GoalComment)
    assert (row.status, row.answer, row.answered_by_id) == ("kept", KEEP, org.manager.id)
    told = last_to(recorder, "emp2")
    assert told.header.colour == "grey" and KEEP in text_of(told)
    assert recorder.to("emp1") == []  # keeping the target asks nothing of the owner

    # A second answer (a retry, the HRBP, the manager again) is refused and changes nothing.
    for uid in ("mgr", "hrbp"):
        again = await click(
            service, uid, answer, {"outcome": "adjust", "answer": "请把签约目标提到 25 家，和去年持平"}
        )
        assert again.toast_kind == "error" and "已经处理过了" in (again.toast or ""), uid
    [row] = await rows(service, GoalComment)
    assert (row.status, row.answer) == ("kept", KEEP)
    assert [a.detail["outcome"] for a in await audit(service, "goal.challenge_answered")] == ["kept"]
    [raised] = await audit(service, "goal.challenged")
    assert (raised.entity, raised.entity_id, raised.detail["direction"]) == ("goal_comment", row.id, "up")
    async with service.factory() as s:
        counts = await comment_counts(s, [goal.id])
    assert (counts[goal.id].challenges, counts[goal.id].open_challenges) == (1, 0)


async def test_asking_the_owner_to_adjust_opens_the_adjustment(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle, seeded = await setup(service, org)
    await click(
        service,
        "emp2",
        GoalChallengeSubmit(goal_id=seeded.goals[0].id),
        {"direction": "up", "reason": REASON},
    )
    [row] = await rows(service, GoalComment)
    # Today (24 November) is outside the monthly window: the owner could not adjust on their own.
    assert (await click(service, "emp1", GoalAdjustSubmit(cycle_id=cycle.id))).toast_kind == "error"
    recorder.clear()
    ask = {"outcome": "adjust", "answer": "请把签约目标提到 25 家，和去年持平"}
    done = await click(service, "mgr", GoalChallengeAnswer(comment_id=row.id), ask)
    assert done.toast == "已请 张三 调整目标，并告知了提出人。"
    await service.outbox.drain()
    told = last_to(recorder, "emp2")
    assert told.header.colour == "green" and "25 家" in text_of(told)
    asked = last_to(recorder, "emp1")
    assert asked.header.title == "请调整你的目标" and REASON in text_of(asked)
    assert button(asked, GoalAdjustSubmit) == GoalAdjustSubmit(cycle_id=cycle.id)
    opened = await click(service, "emp1", button(asked, GoalAdjustSubmit))
    assert opened.toast_kind == "info"  # the form, although the window is closed
    await service.outbox.drain()
    form = last_to(recorder, "emp1")
    assert form.forms() and "25 家" in text_of(form)


def test_goal_buttons_offer_comment_and_challenge() -> None:
    buttons = gc.goal_buttons(Translator("zh-CN"), 7)
    assert [b.label for b in buttons] == ["评论", "质疑目标"]
    assert [unpack(b.value) for b in buttons] == [GoalCommentOpen(goal_id=7), GoalChallengeOpen(goal_id=7)]
    assert [b.label for b in gc.goal_buttons(Translator("en"), 7, challenge=False)] == ["Comment"]


async def test_on_a_chat_platform_the_challenge_and_its_answer_are_asked_one_question_at_a_time(
    service: Service, org: Org
) -> None:
    chat = ChatOnlyAdapter()
    service.registry.add(chat)  # replaces the "rec" adapter: same platform, no text inputs
    _, seeded = await setup(service, org)
    opened = await click(service, "emp2", GoalChallengeOpen(goal_id=seeded.goals[0].id))
    assert opened.toast_kind == "info"
    await service.outbox.drain()
    form = last_to(chat, "emp2")  # the form, as a card of its own
    started = await click(service, "emp2", button(form, GoalChallengeSubmit))
    assert started.toast_kind == "info"
    await service.outbox.drain()
    assert "1/2" in last_to(chat, "emp2").header.title
    await say(service, "emp2", "1")  # the first option: too low
    done = await say(service, "emp2", REASON)
    assert done.toast_kind == "success", done.toast
    await service.outbox.drain()
    [row] = await rows(service, GoalComment)
    assert (row.kind, row.direction, row.body) == ("challenge", "up", REASON)

    card = last_to(chat, "mgr")
    await click(service, "mgr", button(card, GoalChallengeAnswer))
    await say(service, "mgr", "1")  # keep the target
    answered = await say(service, "mgr", KEEP)
    assert answered.toast == "已决定维持 张三 的目标，并告知了提出人。"
    [row] = await rows(service, GoalComment)
    assert (row.status, row.answer) == ("kept", KEEP)
