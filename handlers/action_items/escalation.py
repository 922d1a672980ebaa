"""The escalation ladder for overdue action items, and the "progress below plan" warning.

Level 1 tells the owner the day after the deadline; level 2 tells the manager after
``[escalation] manager_grace_days`` more days; level 3 the HRBP after ``hrbp_grace_days`` more. The
scheduler decides when to call; ``escalate_action_item`` still checks the item is open and far enough
past its deadline, and records each step under a key (level, deadline, owner) in the audit log, so a job
that runs twice sends nothing twice, and an extension or reassignment starts a fresh ladder. No rung is
skipped: a step for the manager or the HRBP first sends any lower step still owed (after a week's downtime
the owner hears, in one card, before the manager does). The manager and HRBP cards can extend the
deadline, reassign the item, or close it; whichever way the item is settled, every escalation card about
it is put into its final state.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update

from bot.core.config import EscalationConfig
from bot.core.context import Context, Reply
from bot.core.forms import form_of, text
from bot.core.people import hrbp_of, manager_of, may_oversee
from bot.core.router import Router
from bot.core.schedule import Entry, EscalationArgs, Job, ScheduleEntry
from bot.core.status import ANSWERED_CHECKIN, OPEN_ACTION_ITEM, ActionItemStatus, CycleStatus
from cards.action_items import (
    ActionClose,
    ActionExtend,
    ActionReassign,
    escalation_card,
    extend_form,
    progress_gap_card,
    reassign_form,
    resolved_card,
)
from cards.model import Form
from handlers.action_items.item import (
    ESCALATED,
    build_owner_card,
    describe,
    escalation_card_key,
    load_item,
    send_owner_card,
    settle_cards,
)
from handlers.goals.api import expected_share, own_progress_at
from storage.models import ActionItem, CheckIn, Cycle, Goal, Person
from storage.queries.metrics import PROGRESS_GAP_ACTION
from storage.queries.once import done_before

router = Router()

LEVELS = (1, 2, 3)


def days_needed(level: int, cfg: EscalationConfig) -> int:
    """Days past the deadline before ``level`` is due: 1 = the day after, then the two graces."""
    if level == 1:
        return 1
    if level == 2:
        return 1 + cfg.manager_grace_days
    return 1 + cfg.manager_grace_days + cfg.hrbp_grace_days


def due_level(deadline: date, today: date, cfg: EscalationConfig) -> int:
    """The highest level due today (0 = not overdue); the scheduler may use it to pick what to call."""
    late = (today - deadline).days
    return max((lvl for lvl in LEVELS if late >= days_needed(lvl, cfg)), default=0)


async def _reassign_options(ctx: Context, owner: Person, viewer: Person) -> list[tuple[int, str]]:
    """The owner's team-mates under the same manager (the viewer's own reports when the viewer manages)."""
    manager_id = owner.manager_id if owner.manager_id is not None else viewer.id
    rows = await ctx.session.execute(
        select(Person.id, Person.name)
        .where(Person.manager_id == manager_id, Person.active.is_(True), Person.id != owner.id)
        .order_by(Person.id)
        .limit(50)
    )
    return [(r[0], r[1]) for r in rows]


async def escalate_action_item(ctx: Context, item_id: int, *, level: int) -> bool:
    """Scheduler entry point (ctx.person = the owner). True when this call sent the step."""
    if level not in LEVELS:
        raise ValueError(f"unknown escalation level {level}")
    item = await ctx.session.get(ActionItem, item_id)
    if item is None or item.status not in OPEN_ACTION_ITEM:
        return False
    owner = await ctx.session.get(Person, item.owner_id)
    if owner is None:
        return False
    today = ctx.today(owner)
    late = (today - item.deadline).days
    if late < days_needed(level, ctx.settings.escalation):
        return False
    key = f"escalate:{level}:{item.deadline.isoformat()}:{owner.id}"
    if await done_before(ctx.session, action=ESCALATED, entity="action_item", entity_id=item.id, key=key):
        return False
    if level > 1:
        # Never skip a rung (issue 15 #4): whoever calls for the manager's step after downtime, the owner's
        # overdue card goes out first, in this same transaction, if it has not gone out yet.
        await escalate_action_item(ctx, item.id, level=level - 1)
    if level == 1:
        recipient: Person | None = owner if owner.active else None
    elif level == 2:
        recipient = await manager_of(ctx.session, owner)
    else:
        recipient = await hrbp_of(ctx.session, owner)
    if recipient is None:
        # Nobody to tell at this level: record it, so the ladder does not retry every tick.
        ctx.audit(ESCALATED, "action_item", item.id, key=key, level=level, recipient_id=None)
        return False
    t = ctx.translator(recipient)
    dedupe = f"action-escalate:{item.id}:{level}:{item.deadline.isoformat()}:{owner.id}"
    if level == 1:
        manager = await manager_of(ctx.session, owner)
        if manager is not None and due_level(item.deadline, today, ctx.settings.escalation) >= 2:
            intro = t("action_items.overdue_body_manager", days=late, manager=manager.name)
        else:
            intro = t("action_items.overdue_body", days=late)
        card = await build_owner_card(
            ctx, item, t, title_key="action_items.overdue_title", intro=intro, colour="red"
        )
        await send_owner_card(ctx, owner, item, card, dedupe_key=dedupe)
    else:
        card = escalation_card(
            t,
            level=level,
            **await describe(ctx, item),
            days_overdue=late,
            extend_default=today + timedelta(days=7),
            reassign_options=await _reassign_options(ctx, owner, recipient),
        )
        ctx.outbox.send(recipient, card, card_key=escalation_card_key(item.id, level), dedupe_key=dedupe)
    await ctx.session.execute(
        update(ActionItem)
        .where(ActionItem.id == item.id, ActionItem.escalation_level < level)
        .values(escalation_level=level)
        .execution_options(synchronize_session=False)
    )
    ctx.audit(
        ESCALATED, "action_item", item.id, key=key, level=level, recipient_id=recipient.id, days_late=late
    )
    return True


# ------------------------------------------------------------------ manager / HRBP decisions


async def _overseer(ctx: Context, item_id: int) -> tuple[ActionItem, Person]:
    item, owner = await load_item(ctx, item_id)
    if ctx.person.id == owner.id or not await may_oversee(ctx.session, ctx.person, owner):
        raise ctx.refuse("common.not_allowed_overseer", name=owner.name)
    if item.status not in OPEN_ACTION_ITEM:
        raise ctx.refuse("common.already_done")
    return item, owner


async def _extend_form(ctx: Context, payload: ActionExtend) -> Form:
    return extend_form(ctx.t, payload.item_id, ctx.today() + timedelta(days=7))


@router.action(ActionExtend, form=_extend_form)
async def extend(ctx: Context, payload: ActionExtend) -> Reply:
    item, owner = await _overseer(ctx, payload.item_id)
    try:
        new_deadline = date.fromisoformat(text(form_of(ctx), "deadline"))
    except ValueError:
        raise ctx.refuse("action_items.bad_date") from None
    if new_deadline < ctx.today(owner):
        raise ctx.refuse("action_items.deadline_past")
    updated = await ctx.transition_or_refuse(
        ActionItem,
        item.id,
        allowed=OPEN_ACTION_ITEM,
        values={"deadline": new_deadline, "escalation_level": 0},
    )
    ctx.audit(
        "action_item.extended",
        "action_item",
        item.id,
        old=item.deadline.isoformat(),
        new=new_deadline.isoformat(),
    )
    await settle_cards(
        ctx,
        updated,
        what_key="action_items.extended_by",
        name=ctx.person.name,
        deadline=new_deadline.isoformat(),
    )
    t = ctx.translator(owner)
    intro = t("action_items.extended_body", name=ctx.person.name, deadline=new_deadline.isoformat())
    await send_owner_card(
        ctx,
        owner,
        updated,
        await build_owner_card(ctx, updated, t, title_key="action_items.extended_title", intro=intro),
    )
    card = resolved_card(
        ctx.t,
        **await describe(ctx, updated),
        what=ctx.t("action_items.extended_by", name=ctx.person.name, deadline=new_deadline.isoformat()),
    )
    return Reply(toast=ctx.t("action_items.extended_toast"), card=card)


async def _reassign_form(ctx: Context, payload: ActionReassign) -> Form:
    item, owner = await load_item(ctx, payload.item_id)
    options = await _reassign_options(ctx, owner, ctx.person)
    return reassign_form(ctx.t, item.id, options or [(owner.id, owner.name)])


@router.action(ActionReassign, form=_reassign_form)
async def reassign(ctx: Context, payload: ActionReassign) -> Reply:
    item, owner = await _overseer(ctx, payload.item_id)
    try:
        new_owner_id = int(text(form_of(ctx), "owner"))
    except ValueError:
        raise ctx.refuse("action_items.pick_owner") from None
    new_owner = await ctx.session.get(Person, new_owner_id)
    if new_owner is None or not new_owner.active or new_owner.workspace_id != ctx.workspace.id:
        raise ctx.refuse("action_items.pick_owner")
    if new_owner.id == owner.id:
        raise ctx.refuse("action_items.same_owner")
    updated = await ctx.transition_or_refuse(
        ActionItem,
        item.id,
        allowed=OPEN_ACTION_ITEM,
        values={"owner_id": new_owner.id, "escalation_level": 0, "first_response_at": None},
    )
    ctx.audit("action_item.reassigned", "action_item", item.id, old_owner=owner.id, new_owner=new_owner.id)
    await settle_cards(
        ctx,
        updated,
        what_key="action_items.reassigned_by",
        owner=owner,
        name=ctx.person.name,
        to=new_owner.name,
    )
    t = ctx.translator(new_owner)
    intro = t("action_items.reassigned_body", name=ctx.person.name, previous=owner.name)
    await send_owner_card(ctx, new_owner, updated, await build_owner_card(ctx, updated, t, intro=intro))
    t_old = ctx.translator(owner)
    ctx.outbox.send(
        owner,
        resolved_card(
            t_old,
            **await describe(ctx, updated),
            what=t_old("action_items.reassigned_away", name=ctx.person.name, to=new_owner.name),
        ),
    )
    card = resolved_card(
        ctx.t,
        **await describe(ctx, updated),
        what=ctx.t("action_items.reassigned_by", name=ctx.person.name, to=new_owner.name),
    )
    return Reply(toast=ctx.t("action_items.reassigned_toast", name=new_owner.name), card=card)


@router.action(ActionClose)
async def close(ctx: Context, payload: ActionClose) -> Reply:
    item, owner = await _overseer(ctx, payload.item_id)
    updated = await ctx.transition_or_refuse(
        ActionItem,
        item.id,
        allowed=OPEN_ACTION_ITEM,
        values={"status": ActionItemStatus.CLOSED, "closed_at": ctx.now},
    )
    ctx.audit("action_item.closed", "action_item", item.id)
    await settle_cards(ctx, updated, what_key="action_items.closed_by", owner=owner, name=ctx.person.name)
    t = ctx.translator(owner)
    ctx.outbox.send(
        owner,
        resolved_card(
            t, **await describe(ctx, updated), what=t("action_items.closed_by", name=ctx.person.name)
        ),
    )
    card = resolved_card(
        ctx.t, **await describe(ctx, updated), what=ctx.t("action_items.closed_by", name=ctx.person.name)
    )
    return Reply(toast=ctx.t("action_items.closed_toast"), card=card)


# ------------------------------------------------------------------ progress below plan


def _percent(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return min(100.0, max(0.0, number))


async def _cycle_for(ctx: Context, checkin: CheckIn, person: Person, day: date) -> Cycle | None:
    if checkin.cycle_id is not None:
        return await ctx.session.get(Cycle, checkin.cycle_id)
    return await ctx.session.scalar(
        select(Cycle)
        .where(
            Cycle.workspace_id == person.workspace_id,
            Cycle.status == CycleStatus.ACTIVE,
            Cycle.starts_on <= day,
            Cycle.ends_on >= day,
        )
        .order_by(Cycle.starts_on.desc())
        .limit(1)
    )


async def progress_vs_plan(ctx: Context, checkin: CheckIn, person: Person) -> tuple[int, int] | None:
    """(plan %, actual %) for a check-in. Plan is the share of the cycle passed on the check-in's day
    (``progress.expected_share``); actual the weighted progress of the person's goals, each computed from
    its key results' values in force when the check-in was submitted (issue 17), or, for a goal whose key
    results had no value yet (one set before key results existed), the percentage the check-in reported.

    None when there is nothing to compare: no progress known, or no cycle with dates.
    """
    when = checkin.submitted_at or checkin.due_at
    day = ctx.day_of(when, person)
    cycle = await _cycle_for(ctx, checkin, person, day)
    if cycle is None or cycle.starts_on is None or cycle.ends_on is None or cycle.ends_on <= cycle.starts_on:
        return None
    plan = expected_share(cycle.starts_on, cycle.ends_on, day) * 100
    reported = {str(k): _percent(v) for k, v in (checkin.progress or {}).items()}
    values = {k: v for k, v in reported.items() if v is not None}
    goal_ids = list(
        await ctx.session.scalars(
            select(Goal.id).where(Goal.cycle_id == cycle.id, Goal.person_id == person.id)
        )
    )
    measured = await own_progress_at(ctx.session, goal_ids, when) if goal_ids else {}
    values.update({str(goal_id): progress * 100 for goal_id, progress in measured.items()})
    if not values:
        return None
    ids = [int(k) for k in values if k.isdigit()]
    weights: dict[str, int] = {}
    if ids:
        rows = await ctx.session.execute(select(Goal.id, Goal.weight).where(Goal.id.in_(ids)))
        weights = {str(r[0]): int(r[1] or 0) for r in rows}
    total_weight = sum(weights.get(k, 0) for k in values)
    if total_weight > 0:
        actual = sum(v * weights.get(k, 0) for k, v in values.items()) / total_weight
    else:
        actual = sum(values.values()) / len(values)
    return round(plan), round(actual)


async def check_progress_gap(ctx: Context, checkin_id: int) -> bool:
    """Called after a check-in is submitted: warn owner and manager when this check-in and the one before
    are both ``[escalation] progress_gap_percent`` or more below plan. Once per check-in; True if warned."""
    checkin = await ctx.session.get(CheckIn, checkin_id)
    if checkin is None or checkin.status not in ANSWERED_CHECKIN:
        return False
    person = await ctx.session.get(Person, checkin.person_id)
    if person is None:
        return False
    threshold = ctx.settings.escalation.progress_gap_percent
    now_gap = await progress_vs_plan(ctx, checkin, person)
    if now_gap is None or now_gap[0] - now_gap[1] < threshold:
        return False
    previous = await ctx.session.scalar(
        select(CheckIn)
        .where(
            CheckIn.person_id == person.id,
            CheckIn.due_at < checkin.due_at,
            CheckIn.id != checkin.id,
            CheckIn.status.in_(ANSWERED_CHECKIN),
        )
        .order_by(CheckIn.due_at.desc())
        .limit(1)
    )
    if previous is None:
        return False
    before = await progress_vs_plan(ctx, previous, person)
    if before is None or before[0] - before[1] < threshold:
        return False
    key = f"gap:{checkin.id}"
    if await done_before(
        ctx.session, action=PROGRESS_GAP_ACTION, entity="person", entity_id=person.id, key=key
    ):
        return False
    plan, actual = now_gap
    recipients = [person]
    manager = await manager_of(ctx.session, person)
    if manager is not None:
        recipients.append(manager)
    for who in recipients:
        t = ctx.translator(who)
        ctx.outbox.send(
            who,
            progress_gap_card(
                t, person=person.name, plan=plan, actual=actual, gap=plan - actual, threshold=threshold
            ),
            dedupe_key=f"progress-gap:{checkin.id}:{who.id}",
        )
    ctx.audit(
        PROGRESS_GAP_ACTION, "person", person.id, key=key, checkin_id=checkin.id, plan=plan, actual=actual
    )
    return True


# ------------------------------------------------------------------ schedule entries
SCHEDULE: tuple[ScheduleEntry, ...] = (
    Entry(
        Job.ESCALATE_ACTION_ITEM,
        EscalationArgs,
        lambda ctx, a: escalate_action_item(ctx, a.item_id, level=a.level),
    ),
)
