"""Group commit of card clicks (issue 22): clicks that arrive together share one transaction, and each is
answered and recorded exactly as it would be alone — a refusal, a crash, a duplicate, a database hiccup or a
slow handler in the group touches no other click's outcome."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TypeVar

import pytest
from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.exc import DBAPIError

from adapters.base import CallbackAnswer
from bot.app.dispatcher import FailedAnswer, RetryLater
from bot.app.group_commit import AGAIN, GroupCommit, Outcome
from bot.app.service import Service
from bot.core.context import Context, Reply
from bot.core.events import CardAction
from bot.core.router import Router
from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.model import Card, Header, Markdown
from storage.models import AuditLog, Base, InboundEvent, OutboxMessage, Person
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org

CLICKERS = [f"c{i:02d}" for i in range(12)]
M = TypeVar("M", bound=Base)


@action("test.group.tap")
class Tap(Action):
    n: int


@action("test.group.guarded")
class Guarded(Action):
    n: int


@action("test.group.boom")
class Boom(Action):
    n: int


@action("test.group.pause")
class Pause(Action):
    n: int


@action("test.group.own")
class OwnWrites(Action):
    n: int


def card(title: str) -> Card:
    return Card(header=Header(title=title), elements=[Markdown(text=title)])


@pytest.fixture
def runs() -> Counter[str]:
    """Handler runs per event id."""
    return Counter()


@pytest.fixture
async def grouped(service: Service, org: Org, runs: Counter[str]) -> Service:
    """Twelve more people, a router of small handlers, and one lane: clicks submitted together make one
    group."""
    async with service.factory() as s, s.begin():
        await s.execute(
            insert(Person),
            [
                {"workspace_id": org.workspace.id, "platform_user_id": uid, "name": uid, "roles": "employee"}
                for uid in CLICKERS
            ],
        )
    router = Router()

    @router.action(Tap)
    async def tap(ctx: Context, payload: Tap) -> Reply:
        assert isinstance(ctx.event, CardAction)
        runs[ctx.event.event_id] += 1
        ctx.audit("tap", "subject", payload.n)
        return Reply(toast=f"tapped {payload.n}", card=card(f"tap {payload.n}"))

    @router.action(Guarded)
    async def guarded_tap(ctx: Context, payload: Guarded) -> Reply:
        assert isinstance(ctx.event, CardAction)
        runs[ctx.event.event_id] += 1
        ctx.audit("guarded.attempt", "subject", payload.n)  # rolled back with the refusal
        if not ctx.person.has_role("manager"):
            raise ctx.refuse("common.not_allowed")
        return Reply(toast="ok")

    @router.action(Boom)
    async def boom(ctx: Context, payload: Boom) -> Reply:
        assert isinstance(ctx.event, CardAction)
        runs[ctx.event.event_id] += 1
        ctx.audit("boom", "subject", payload.n)
        raise RuntimeError("boom")

    @router.action(Pause)
    async def pause(ctx: Context, payload: Pause) -> Reply:
        was = ctx.person.paused
        ctx.person.paused = not was
        return Reply(toast=f"paused was {was}")

    @router.action(OwnWrites)
    async def own_writes(ctx: Context, payload: OwnWrites) -> Reply:
        """Reads back what it wrote in the same click: deferral must not hide it."""
        ctx.audit("own", "subject", payload.n)
        mine = await ctx.session.scalar(
            select(func.count()).where(AuditLog.actor_id == ctx.person.id, AuditLog.action == "own")
        )
        ctx.outbox.send(ctx.person, card("first"))
        ctx.outbox.send(ctx.person, card("second"), dedupe_key=f"own:{payload.n}")
        return Reply(toast=f"sees {mine}")

    service.dispatcher.router = router
    assert service.dispatcher.clicks is not None
    service.dispatcher.clicks = GroupCommit(service.dispatcher._dispatch_group, lanes=1, max_items=64)
    return service


def click(sender: str, payload: Action, event_id: str) -> CardAction:
    return CardAction(
        platform="rec",
        workspace="rec-app",
        event_id=event_id,
        sender_id=sender,
        value=pack(payload),
        message_ref=f"m-{event_id}",
    )


async def together(service: Service, clicks: list[CardAction]) -> list[CallbackAnswer]:
    """The clicks submitted in one turn of the event loop (one group, with one lane)."""
    return list(await asyncio.gather(*(service.dispatcher.dispatch(c) for c in clicks)))


async def rows(service: Service, model: type[M], *where: ColumnElement[bool]) -> list[M]:
    async with service.factory() as s:
        return list(await s.scalars(select(model).where(*where)))


def groups(service: Service) -> tuple[int, int]:
    assert service.dispatcher.clicks is not None
    return service.dispatcher.clicks.groups, service.dispatcher.clicks.items


async def test_clicks_that_arrive_together_share_one_transaction(grouped: Service, org: Org) -> None:
    answers = await together(grouped, [click(uid, Tap(n=i), f"t{i}") for i, uid in enumerate(CLICKERS)])
    assert [a.toast for a in answers] == [f"tapped {i}" for i in range(len(CLICKERS))]
    assert groups(grouped) == (1, len(CLICKERS))
    events = {e.event_id: e for e in await rows(grouped, InboundEvent)}
    assert len(events) == len(CLICKERS)
    assert all(e.answer["toast"] == f"tapped {e.event_id[1:]}" and e.person_id for e in events.values())
    audits = await rows(grouped, AuditLog)
    assert sorted(a.entity_id or 0 for a in audits) == list(range(len(CLICKERS)))
    updates = await rows(grouped, OutboxMessage, OutboxMessage.op == "update")
    assert sorted(u.target_ref or "" for u in updates) == sorted(f"m-t{i}" for i in range(len(CLICKERS)))


async def test_a_refused_click_changes_nothing_and_costs_the_others_nothing(
    grouped: Service, org: Org, runs: Counter[str]
) -> None:
    clicks = [click(uid, Tap(n=i), f"t{i}") for i, uid in enumerate(CLICKERS[:6])]
    clicks.insert(3, click("emp1", Guarded(n=99), "refused"))
    clicks.insert(5, click("mgr", Guarded(n=98), "allowed"))
    answers = await together(grouped, clicks)
    by_id = {c.event_id: a for c, a in zip(clicks, answers, strict=True)}
    assert by_id["refused"].toast == Translator("zh-CN")("common.not_allowed")
    assert by_id["allowed"].toast == "ok" and by_id["t5"].toast == "tapped 5"
    assert runs["refused"] == 1, "the refused click's handler is not run again"
    audits = Counter((a.action, a.entity_id) for a in await rows(grouped, AuditLog))
    assert ("guarded.attempt", 99) not in audits
    assert audits[("guarded.attempt", 98)] == 1 and sum(audits[("tap", i)] for i in range(6)) == 6
    assert set(audits.values()) == {1}, "every other click applied exactly once"
    stored = {e.event_id: e.answer for e in await rows(grouped, InboundEvent)}
    assert stored["refused"]["toast_kind"] == "error" and len(stored) == len(clicks)
    again = await grouped.dispatcher.dispatch(click("emp1", Guarded(n=99), "refused"))
    assert again.toast == by_id["refused"].toast and runs["refused"] == 1


async def test_a_crashing_handler_fails_alone(grouped: Service, org: Org, runs: Counter[str]) -> None:
    clicks = [click(uid, Tap(n=i), f"t{i}") for i, uid in enumerate(CLICKERS[:4])]
    clicks.insert(2, click("emp1", Boom(n=1), "boom"))
    answers = await together(grouped, clicks)
    assert isinstance(answers[2], FailedAnswer)
    assert [a.toast for a in answers[:2] + answers[3:]] == [f"tapped {i}" for i in range(4)]
    assert runs["boom"] == 1
    actions = Counter(a.action for a in await rows(grouped, AuditLog))
    assert actions == {"tap": 4}
    stored = {e.event_id: e.answer for e in await rows(grouped, InboundEvent)}
    assert stored["boom"]["error"] == "RuntimeError"


async def test_duplicates_in_a_group_and_of_recorded_clicks_have_one_effect(
    grouped: Service, org: Org, runs: Counter[str]
) -> None:
    first = await grouped.dispatcher.dispatch(click("c00", Tap(n=0), "t0"))
    clicks = [
        click("c00", Tap(n=0), "t0"),  # a retry of a click already recorded
        click("c01", Tap(n=1), "t1"),
        click("c01", Tap(n=1), "t1"),  # the same click twice in one group
        click("c02", Tap(n=2), "t2"),
    ]
    answers = await together(grouped, clicks)
    assert [a.toast for a in answers] == [first.toast, "tapped 1", "tapped 1", "tapped 2"]
    assert runs == {"t0": 1, "t1": 1, "t2": 1}
    assert len(await rows(grouped, InboundEvent)) == 3 and len(await rows(grouped, AuditLog)) == 3


def _dead_connection() -> DBAPIError:
    return DBAPIError("SELECT 1", None, Exception("connection is closed"), connection_invalidated=True)


async def test_a_transient_fault_retries_the_group_once_then_asks_for_every_click_again(
    grouped: Service, org: Org, runs: Counter[str]
) -> None:
    faults = [1]
    router = Router()

    @router.action(Boom)
    async def flaky(ctx: Context, payload: Boom) -> Reply:
        ctx.audit("flaky", "subject", payload.n)
        if faults[0] > 0:
            faults[0] -= 1
            raise _dead_connection()
        return Reply(toast="done")

    grouped.dispatcher.router.actions["test.group.boom"] = router.actions["test.group.boom"]
    clicks = [click(uid, Tap(n=i), f"t{i}") for i, uid in enumerate(CLICKERS[:3])] + [
        click("emp1", Boom(n=7), "flaky")
    ]
    answers = await together(grouped, clicks)
    assert [a.toast for a in answers] == ["tapped 0", "tapped 1", "tapped 2", "done"]
    assert runs == {"t0": 2, "t1": 2, "t2": 2}, "the first try was rolled back as a whole"
    assert len(await rows(grouped, AuditLog)) == 4 and len(await rows(grouped, InboundEvent)) == 4

    faults[0] = 2
    clicks = [click(uid, Tap(n=i), f"u{i}") for i, uid in enumerate(CLICKERS[3:5])] + [
        click("emp2", Boom(n=8), "down")
    ]
    failed = await asyncio.gather(*(grouped.dispatcher.dispatch(c) for c in clicks), return_exceptions=True)
    assert all(isinstance(a, RetryLater) for a in failed)
    assert len(await rows(grouped, InboundEvent)) == 4, "nothing of the group recorded"
    retried = await together(grouped, clicks)
    assert [a.toast for a in retried] == ["tapped 0", "tapped 1", "done"]


async def test_a_group_over_its_time_budget_hands_the_rest_back(
    grouped: Service, org: Org, runs: Counter[str]
) -> None:
    grouped.settings.clicks.group_budget_ms = 1.0
    router = Router()

    @router.action(Tap)
    async def slow(ctx: Context, payload: Tap) -> Reply:
        assert isinstance(ctx.event, CardAction)
        runs[ctx.event.event_id] += 1
        await asyncio.sleep(0.005)
        ctx.audit("slow", "subject", payload.n)
        return Reply(toast=f"slow {payload.n}")

    grouped.dispatcher.router.actions["test.group.tap"] = router.actions["test.group.tap"]
    clicks = [click(uid, Tap(n=i), f"t{i}") for i, uid in enumerate(CLICKERS[:6])]
    answers = await together(grouped, clicks)
    assert [a.toast for a in answers] == [f"slow {i}" for i in range(6)]
    assert set(runs.values()) == {1}
    assert groups(grouped)[0] == 6, "each group committed one click and handed the rest back"
    events = await rows(grouped, InboundEvent)
    assert len(events) == 6 and all(e.answer.get("toast") for e in events)


async def test_a_click_reads_its_own_deferred_writes_in_order(grouped: Service, org: Org) -> None:
    answers = await together(
        grouped, [click(uid, OwnWrites(n=i), f"o{i}") for i, uid in enumerate(CLICKERS[:3])]
    )
    assert [a.toast for a in answers] == ["sees 1"] * 3
    sends = await rows(grouped, OutboxMessage, OutboxMessage.op == "send")
    for uid in CLICKERS[:3]:
        mine = sorted((s for s in sends if s.recipients == [uid]), key=lambda s: s.id)
        assert [s.card["header"]["title"] for s in mine] == ["first", "second"]


async def test_a_second_click_of_the_same_person_sees_the_first(grouped: Service, org: Org) -> None:
    answers = await together(grouped, [click("c00", Pause(n=1), "p1"), click("c00", Pause(n=2), "p2")])
    assert [a.toast for a in answers] == ["paused was False", "paused was True"]
    assert groups(grouped) == (1, 2)


async def test_an_unknown_sender_in_a_group(grouped: Service, org: Org, recorder: RecordingAdapter) -> None:
    answers = await together(grouped, [click("stranger", Tap(n=1), "s1"), click("c00", Tap(n=2), "t2")])
    assert answers[0].toast == Translator("zh-CN")("common.unknown_user_body")
    assert answers[1].toast == "tapped 2"
    await grouped.outbox.drain()
    assert len(recorder.to("stranger")) == 1


# ---------------------------------------------------------------- the queue itself, without a database
async def test_lanes_group_sizes_and_items_handed_back() -> None:
    seen: list[list[int]] = []
    release = asyncio.Event()

    async def run(items: list[int]) -> list[Outcome[str]]:
        seen.append(items)
        await release.wait()
        return [AGAIN if i == 3 and len(seen) == 1 else f"r{i}" for i in items]

    group = GroupCommit(run, lanes=1, max_items=4)
    first = asyncio.gather(*(group.submit(i) for i in range(6)))
    await asyncio.sleep(0.01)
    assert seen == [[0, 1, 2, 3]], "one lane, at most four items, the rest wait for the next group"
    release.set()
    assert await first == [f"r{i}" for i in range(6)]
    assert seen[1][0] == 3, "an item handed back goes first into the next group"
    assert (group.groups, group.items) == (len(seen), sum(map(len, seen)))


async def test_a_caller_that_goes_away_does_not_take_its_item_out() -> None:
    done: list[int] = []
    go = asyncio.Event()

    async def run(items: list[int]) -> list[Outcome[int]]:
        await go.wait()
        done.extend(items)
        return list(items)

    group = GroupCommit(run, lanes=2, max_items=8)
    waiting = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0.01)
    waiting.cancel()
    go.set()
    await group.close()
    assert done == [1]


async def test_a_runner_bug_reaches_every_caller_of_its_group() -> None:
    async def run(items: list[int]) -> list[Outcome[int]]:
        raise ValueError("bug")

    group = GroupCommit(run, lanes=1, max_items=8)
    results = await asyncio.gather(*(group.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)


async def test_a_stuck_group_opens_another_lane_and_a_busy_one_does_not() -> None:
    slow = asyncio.Event()
    seen: list[list[str]] = []

    async def run(items: list[str]) -> list[Outcome[str]]:
        seen.append(items)
        if "slow" in items:
            await slow.wait()
        return list[Outcome[str]](items)

    group = GroupCommit(run, lanes=4, max_items=8, stall=0.05)
    stuck = asyncio.ensure_future(group.submit("slow"))
    await asyncio.sleep(0.01)
    behind = asyncio.ensure_future(group.submit("quick"))
    await asyncio.sleep(0.01)
    assert seen == [["slow"]], "a group running for less than the stall time keeps the others queued"
    assert await asyncio.wait_for(behind, 1.0) == "quick", "past the stall time a second lane takes it"
    assert not stuck.done()
    slow.set()
    assert await stuck == "slow"
    await group.close()
