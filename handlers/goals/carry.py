"""Carry-over (issue 17 item 9): what the last cycle left open becomes part of the new cycle's goals, in one
click, before the person sets their weights and submits.

*What*: the person's previous cycle is the latest one they took part in that is closing or closed and started
before this one. Left open there (``storage.queries.carry``): the key results of their own objectives below
100 %, and their action items open at that cycle's end (and still open, and not yet serving a key result
of the new cycle).

*Where it goes*, chosen so the new goals read like the old ones: each unfinished key result goes under a
copy of its original objective (``Goal.carried_from_id``; unaligned, since the old parent belongs to the old
cycle), keeping its start, target, unit, deadline and milestones (``KeyResult.carried_from_id``); where it
stood is recorded as an ``import`` value, so the history of the new key result starts from there. An open
action item becomes a deliverable key result (``from_action_item_id``) under the objective of the key result
it served when that objective was carried too, else under one objective "上期未完成的行动". The item stays
open and tracked as it was. Key-result weights are left at 0 (equal shares, since only some of an
objective's key results may come along) and the new objectives' weights at 0: the person rebalances them
in the goals form, which the answer opens; nothing is submitted for them. What does not fit (``[cycles]
max_goals`` objectives, ``[goals] max_key_results`` per objective) stays where it is and is counted.

*When*: offered as its own card when the person opens the goals of the new cycle and something is left
(``offer_carry_over``), and on ``/carry`` (结转). Goals already submitted to the manager, or confirmed, are
not changed: the refusal says what to do instead.

*Once*: the click locks the participant row (a no-op compare-and-set on its goals status), so a double
tap waits for the first; what was carried is recorded (``storage.queries.carry.CARRIED``) and never offered
again, which is also the numerator of the carry-over share (行动转化度, ``storage.queries.metrics``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from bot.core.context import Context, Reply
from bot.core.router import Router
from bot.core.status import OPEN_ACTION_ITEM, CycleStatus, GoalLevel, GoalsStatus, KrValueSource
from cards.carry import carried_card, carry_offer_card
from cards.catalogue import Translator
from cards.goal_actions import GoalCarryOver
from cards.model import Card
from cards.text import shorten
from handlers.goals.kr_parse import KrRefused, Milestone, ParsedKr, format_kr, parse_kr
from handlers.goals.participation import own_participation
from handlers.goals.progress import KrKind, kr_progress
from handlers.goals.values import record_value, refresh_goal_progress
from storage.models import ActionItem, Cycle, CycleParticipant, Goal, KeyResult
from storage.queries import carry as carry_q
from storage.queries import cycles as cq
from storage.queries.status import transition

router = Router()

ENDED = (CycleStatus.CLOSING, CycleStatus.CLOSED)
CARRIABLE = (GoalsStatus.NONE, GoalsStatus.RETURNED)
"""Goals the person is still writing: submitted goals are with the manager, confirmed ones are locked."""
MAX_TITLE = 150
"""A carried deliverable's title: short enough to read back as one key-result line in the goals form."""


@dataclass
class Leftovers:
    previous: Cycle
    key_results: list[tuple[KeyResult, Goal]]
    items: list[ActionItem]

    @property
    def count(self) -> int:
        return len(self.key_results) + len(self.items)


@dataclass
class Carried:
    goals: list[Goal] = field(default_factory=list)
    key_results: list[int] = field(default_factory=list)
    """Ids of the previous cycle's key results that were carried."""
    items: list[int] = field(default_factory=list)


async def leftovers(ctx: Context, cycle: Cycle, mine: CycleParticipant) -> Leftovers | None:
    """What ``ctx.person`` left open in their previous cycle and has not carried into ``cycle`` yet; None
    without a previous cycle."""
    session = ctx.session
    previous = await carry_q.previous_cycle(session, cycle, ended=ENDED, person_id=ctx.person.id)
    if previous is None:
        return None
    krs_done, items_done = await carry_q.carried_so_far(session, mine.id, cycle.id)
    krs = await carry_q.unfinished_key_results(session, previous.id, ctx.person.id, level=GoalLevel.PERSON)
    items = await carry_q.open_items(
        session,
        ctx.person.id,
        end=carry_q.ended_at(previous, ctx.now),
        open_statuses=OPEN_ACTION_ITEM,
        serving_cycle_id=cycle.id,
    )
    return Leftovers(
        previous,
        [(kr, goal) for kr, goal in krs if kr.id not in krs_done],
        [item for item in items if item.id not in items_done],
    )


def _offer(ctx: Context, cycle: Cycle, left: Leftovers) -> Card:
    return carry_offer_card(
        ctx.t,
        cycle_id=cycle.id,
        code=cycle.code,
        previous=left.previous.code,
        key_results=[f"{g.objective} · {kr.title} ({kr.progress * 100:.0f}%)" for kr, g in left.key_results],
        items=[i.deliverable for i in left.items],
    )


async def offer_carry_over(ctx: Context, cycle: Cycle, mine: CycleParticipant) -> bool:
    """Send ``ctx.person`` the carry-over offer for ``cycle`` when their goals can still change and the last
    cycle left something open; the goals flow calls it when the person opens the new cycle's goals."""
    if cycle.status != CycleStatus.ACTIVE or mine.goals_status not in CARRIABLE:
        return False
    left = await leftovers(ctx, cycle, mine)
    if left is None or not left.count:
        return False
    ctx.outbox.send(ctx.person, _offer(ctx, cycle, left), card_key=f"carry:{cycle.id}")
    return True


def _refuse_status(ctx: Context, cycle: Cycle, status: str) -> Exception:
    if status == GoalsStatus.CONFIRMED:
        return ctx.refuse("carry.locked", code=cycle.code)
    return ctx.refuse("carry.submitted", code=cycle.code)


@router.command("carry", "结转")
async def carry_command(ctx: Context, args: str) -> Reply:
    """``/carry``: the offer for the person's current cycle, or why there is nothing to carry."""
    del args
    found = await cq.current_participation(ctx.session, ctx.person.id)
    if found is None:
        raise ctx.refuse("carry.no_cycle")
    cycle, mine = found
    if mine.goals_status not in CARRIABLE:
        raise _refuse_status(ctx, cycle, mine.goals_status)
    left = await leftovers(ctx, cycle, mine)
    if left is None:
        raise ctx.refuse("carry.no_previous", code=cycle.code)
    if not left.count:
        raise ctx.refuse("carry.nothing_left", code=cycle.code, previous=left.previous.code)
    return Reply(card=_offer(ctx, cycle, left))


@router.action(GoalCarryOver)
async def carry_over(ctx: Context, payload: GoalCarryOver) -> Reply:
    """The one click: create the carried objectives and key results, record what was carried, and answer with
    the way to the goals form."""
    cycle, mine = await own_participation(ctx, payload.cycle_id)
    locked = await transition(
        ctx.session,
        CycleParticipant,
        mine.id,
        column="goals_status",
        allowed=CARRIABLE,
        values={"goals_status": CycleParticipant.goals_status},
    )
    if locked is None:
        fresh = await ctx.session.get(CycleParticipant, mine.id, populate_existing=True)
        raise _refuse_status(ctx, cycle, fresh.goals_status if fresh else GoalsStatus.SUBMITTED)
    left = await leftovers(ctx, cycle, locked)
    if left is None:
        raise ctx.refuse("carry.no_previous", code=cycle.code)
    if not left.count:
        raise ctx.refuse("carry.nothing_left", code=cycle.code, previous=left.previous.code)
    made = await _carry(ctx, cycle, left)
    if not made.goals:
        raise ctx.refuse("carry.no_room", code=cycle.code, max=ctx.settings.cycles.max_goals)
    ctx.audit(
        carry_q.CARRIED,
        "cycle_participant",
        mine.id,
        from_cycle_id=left.previous.id,
        to_cycle_id=cycle.id,
        key_results=made.key_results,
        action_items=made.items,
        goals=[g.id for g in made.goals],
        left=left.count - len(made.key_results) - len(made.items),
    )
    card = carried_card(
        ctx.t,
        cycle_id=cycle.id,
        code=cycle.code,
        objectives=[g.objective for g in made.goals],
        key_results=len(made.key_results),
        items=len(made.items),
        left=left.count - len(made.key_results) - len(made.items),
    )
    return Reply(toast=ctx.t("carry.done_toast", count=len(made.key_results) + len(made.items)), card=card)


# ------------------------------------------------------------------ building the carried goals


async def _carry(ctx: Context, cycle: Cycle, left: Leftovers) -> Carried:
    session = ctx.session
    person_goals = [
        g for g in await cq.goals_of(session, cycle.id, ctx.person.id) if g.level == GoalLevel.PERSON
    ]
    room = ctx.settings.cycles.max_goals - len(person_goals)
    per_goal = ctx.settings.goals.max_key_results
    position = max((g.position for g in person_goals), default=-1) + 1
    ref = cycle.starts_on or ctx.today()
    groups: dict[int, tuple[Goal, list[KeyResult]]] = {}
    for kr, goal in left.key_results:
        groups.setdefault(goal.id, (goal, []))[1].append(kr)
    items = list(left.items)
    made = Carried()

    async def new_goal(objective: str, carried_from: int | None) -> Goal:
        nonlocal position, room
        goal = Goal(
            cycle_id=cycle.id,
            person_id=ctx.person.id,
            level=GoalLevel.PERSON,
            objective=objective,
            key_result="",
            weight=0,
            position=position,
            carried_from_id=carried_from,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
        session.add(goal)
        await session.flush()
        position += 1
        room -= 1
        made.goals.append(goal)
        return goal

    for old_goal, krs in groups.values():
        if room <= 0:
            break
        goal = await new_goal(old_goal.objective, old_goal.id)
        placed: list[tuple[KeyResult, KeyResult | None]] = []
        for kr in krs[:per_goal]:
            placed.append((_carried_kr(goal, kr, len(placed), ref), kr))
            made.key_results.append(kr.id)
        served = {kr.id for kr in krs}
        for item in [i for i in items if i.key_result_id in served]:
            if len(placed) >= per_goal:
                break
            placed.append((_item_kr(ctx.t, goal, item, len(placed), ref), None))
            made.items.append(item.id)
            items.remove(item)
        await _finish(ctx, goal, placed)
    if items and room > 0:
        goal = await new_goal(ctx.t("carry.actions_objective", previous=left.previous.code), None)
        placed = []
        for item in items[:per_goal]:
            placed.append((_item_kr(ctx.t, goal, item, len(placed), ref), None))
            made.items.append(item.id)
        await _finish(ctx, goal, placed)
    return made


def _carried_kr(goal: Goal, old: KeyResult, position: int, ref: date) -> KeyResult:
    """A copy of ``old`` that has not moved yet (its standing is recorded as a value in ``_finish``)."""
    milestones = [{**m, "done": False} for m in (old.milestones or []) if isinstance(m, dict)]
    return KeyResult(
        goal_id=goal.id,
        position=position,
        title=old.title,
        kind=old.kind,
        unit=old.unit,
        start_value=old.start_value,
        target_value=old.target_value,
        target_date=old.target_date,
        current_value=None,
        deadline=old.deadline if old.deadline is not None and old.deadline >= ref else None,
        milestones=milestones,
        weight=0,
        progress=kr_progress(old.kind, start=old.start_value, target=old.target_value, milestones=milestones),
        carried_from_id=old.id,
        updated_at=goal.created_at,
    )


def _item_kr(t: Translator, goal: Goal, item: ActionItem, position: int, ref: date) -> KeyResult:
    return KeyResult(
        goal_id=goal.id,
        position=position,
        title=deliverable_title(t, shorten(item.deliverable, MAX_TITLE), ref),
        kind=KrKind.DELIVERABLE,
        deadline=item.deadline if item.deadline >= ref else None,
        milestones=[],
        weight=0,
        progress=0.0,
        from_action_item_id=item.id,
        updated_at=goal.created_at,
    )


def deliverable_title(t: Translator, words: str, ref: date) -> str:
    """An action item's words as a deliverable key result that reads back as one in the goals form: "交付：
    更新客户档案" when the plain words ("更新客户档案") name no work product the key-result parser knows."""
    try:
        if parse_kr(words, ref).kind == KrKind.DELIVERABLE:
            return words
    except KrRefused:
        pass
    return t("carry.deliverable_prefix") + words


async def _finish(ctx: Context, goal: Goal, placed: list[tuple[KeyResult, KeyResult | None]]) -> None:
    """Store the key results, record where each carried one stood (an ``import`` value: the new key result's
    history starts there), and write the goal's key-result lines (what the goals form shows) and progress."""
    session = ctx.session
    session.add_all([kr for kr, _ in placed])
    await session.flush()
    for kr, old in placed:
        if old is None:
            continue
        reached = sum(1 for m in old.milestones or [] if isinstance(m, dict) and m.get("done"))
        if old.kind == KrKind.NUMBER and old.current_value is not None:
            value, done, milestones = old.current_value, None, None
        elif old.kind != KrKind.NUMBER and reached:
            value, done, milestones = None, False, reached
        else:
            continue
        await record_value(
            session,
            kr.id,
            value=value,
            done=done,
            milestones_done=milestones,
            source=KrValueSource.IMPORT,
            source_id=old.id,
            by_person_id=ctx.person.id,
            at=ctx.now,
            note=ctx.t("carry.value_note", id=old.id),
        )
    goal.key_result = "\n".join(_line(kr) for kr, _ in placed)
    await refresh_goal_progress(session, goal)


def _milestone(raw: dict[str, object]) -> Milestone:
    due = raw.get("due")
    try:
        day = date.fromisoformat(due) if isinstance(due, str) else None
    except ValueError:
        day = None
    return Milestone(str(raw.get("name", "")), day)


def _line(kr: KeyResult) -> str:
    """The key result as the goals form's line (``kr_parse.format_kr``)."""
    return format_kr(
        ParsedKr(
            title=kr.title,
            kind=KrKind(kr.kind),
            unit=kr.unit,
            start=kr.start_value,
            target=kr.target_value,
            target_date=kr.target_date,
            deadline=kr.deadline,
            milestones=tuple(_milestone(m) for m in kr.milestones or [] if isinstance(m, dict)),
        )
    )
