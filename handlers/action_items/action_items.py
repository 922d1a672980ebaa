"""Action items: a deliverable with an owner, a deadline and an acceptor, reminded before and on the day.

Items come from four places: a confirmed 3-2-1 review (handlers/review321/), a check-in the manager
marked "needs follow-up" (handlers/checkin/), a photo rated "needs support" (handlers/evidence/), and the
``/action`` command. All of them go through ``open_action_item`` (other flows call it through ``api.py``)
so every item gets the same owner card, audit row and clock. The owner marks it done (optionally after
sending a photo), the acceptor accepts or returns it. Status changes are compare-and-set, so a late or
double click changes nothing.

The scheduler calls ``remind_action_item`` (T-N days and on the day); each reminder is sent once per
item, owner and deadline — a deadline extension or a reassignment arms the reminders again. Only the newest
card about an item keeps live buttons: a new owner card retires the one before it, and an item that is done
puts its last cards into their final state.

``/actions`` lists my own open items with a button per item; ``/action`` creates one, asking once for a
concrete deliverable when the text is only a direction (the vague-word guard, ``bot.core.vague``), and then
which of the owner's key results it serves (``kr_link.py``, issue 17).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select

from bot.core.context import Context, Reply
from bot.core.forms import form_of, text
from bot.core.people import find_by_mention, is_manager_of, manager_of, may_oversee
from bot.core.router import Router
from bot.core.schedule import Entry, Job, ReminderArgs, ScheduleEntry
from bot.core.status import OPEN_ACTION_ITEM, ActionItemStatus, action_days_overdue
from bot.core.vague import is_vague
from cards.action_items import (
    ActionAccept,
    ActionAck,
    ActionCreate,
    ActionDone,
    ActionDoneListed,
    ActionNudge,
    ActionReturn,
    ListedItem,
    acceptor_card,
    bounce_card,
    create_form,
    my_items_card,
    resolved_card,
    return_form,
)
from cards.model import Card, Form
from cards.notice import notice_card
from handlers.action_items.item import (
    build_owner_card,
    describe,
    load_item,
    owner_card_key,
    send_owner_card,
    settle_cards,
)
from handlers.action_items.kr_link import link_offer
from handlers.feedback.api import open_deliverable_ratings
from storage.models import ActionItem, Evidence, Person
from storage.queries.once import done_before
from storage.queries.status import transition

router = Router()

REMINDER_KINDS = ("before", "due")
EVIDENCE_FLAGS = ("+photo", "+照片", "+证据")


async def open_action_item(
    ctx: Context,
    *,
    owner: Person,
    deliverable: str,
    deadline: date,
    acceptor: Person | None,
    source: str,
    source_id: int | None = None,
    evidence_required: bool = False,
    action_type: str | None = None,
    created_by: Person | None = None,
    key_result_id: int | None = None,
) -> ActionItem:
    """Create an item and send its card to the owner, in the caller's transaction.

    ``source`` is "review", "checkin", "evidence" or "manual"; ``source_id`` the record it came from;
    ``key_result_id`` the owner's key result the item serves (issue 17 item 7), when the caller knows it.
    """
    item = ActionItem(
        owner_id=owner.id,
        acceptor_id=acceptor.id if acceptor else None,
        created_by_id=(created_by or ctx.person).id,
        source=source,
        source_id=source_id,
        deliverable=deliverable.strip()[:2000],
        deadline=deadline,
        status=ActionItemStatus.OPEN,
        evidence_required=evidence_required,
        action_type=action_type,
        key_result_id=key_result_id,
        created_at=ctx.now,
    )
    ctx.session.add(item)
    await ctx.session.flush()
    t = ctx.translator(owner)
    ctx.outbox.send(owner, await build_owner_card(ctx, item, t), card_key=owner_card_key(item.id))
    ctx.audit(
        "action_item.created",
        "action_item",
        item.id,
        source=source,
        source_id=source_id,
        owner_id=owner.id,
        deadline=deadline.isoformat(),
    )
    return item


async def remind_action_item(ctx: Context, item_id: int, *, kind: str) -> bool:
    """Scheduler entry point: the T-N ("before") or on-the-day ("due") reminder, each sent once.

    Returns False, sending nothing, when the item is no longer open, the reminder was already sent for this
    owner and deadline, or the moment has passed (a late "due" reminder would contradict the escalation).
    """
    if kind not in REMINDER_KINDS:
        raise ValueError(f"unknown reminder kind {kind!r}")
    item = await ctx.session.get(ActionItem, item_id)
    if item is None or item.status not in OPEN_ACTION_ITEM:
        return False
    owner = await ctx.session.get(Person, item.owner_id)
    if owner is None or not owner.active:
        return False
    today = ctx.today(owner)
    if today > item.deadline:
        return False
    key = f"remind:{kind}:{item.deadline.isoformat()}:{owner.id}"
    if await done_before(
        ctx.session, action="action_item.reminded", entity="action_item", entity_id=item.id, key=key
    ):
        return False
    t = ctx.translator(owner)
    days = (item.deadline - today).days
    intro = t("action_items.reminder_due") if kind == "due" else t("action_items.reminder_before", days=days)
    card = await build_owner_card(
        ctx,
        item,
        t,
        title_key=f"action_items.reminder_title_{kind}",
        intro=intro,
        colour="orange" if kind == "due" else "blue",
    )
    await send_owner_card(
        ctx,
        owner,
        item,
        card,
        dedupe_key=f"action-remind:{item.id}:{kind}:{item.deadline.isoformat()}:{owner.id}",
    )
    ctx.audit("action_item.reminded", "action_item", item.id, key=key, kind=kind)
    return True


async def record_first_response(ctx: Context, item: ActionItem, at: datetime) -> None:
    """The owner's first reaction (ack, photo, done) stops the response-time clock; later ones do not."""
    await transition(
        ctx.session,
        ActionItem,
        item.id,
        column="first_response_at",
        allowed=[None],
        values={"first_response_at": at},
    )


# ------------------------------------------------------------------ the /action command


def parse_action_args(args: str) -> tuple[str, date, str, bool] | None:
    """``@张三 2026-12-01 交付客户回访报告 +photo`` → (mention, deadline, deliverable, evidence_required)."""
    tokens = args.split()
    if len(tokens) < 3 or not tokens[0].startswith(("@", "＠")):
        return None
    mention = tokens[0]
    deadline: date | None = None
    words: list[str] = []
    evidence = False
    for token in tokens[1:]:
        if deadline is None:
            try:
                deadline = date.fromisoformat(token)
                continue
            except ValueError:
                pass
        if token.lower() in EVIDENCE_FLAGS:
            evidence = True
            continue
        words.append(token)
    if deadline is None or not words:
        return None
    return mention, deadline, " ".join(words), evidence


async def _acceptor_for(ctx: Context, owner: Person) -> Person | None:
    """Who signs the item off: the creator when they oversee the owner, the manager for one's own item."""
    if owner.id == ctx.person.id:
        return await manager_of(ctx.session, owner)
    if await may_oversee(ctx.session, ctx.person, owner):
        return ctx.person
    raise ctx.refuse("common.not_allowed_overseer", name=owner.name)


async def _create(
    ctx: Context, owner: Person, deliverable: str, deadline: date, evidence: bool, *, asked: bool
) -> Reply:
    """Create a ``/action`` item, or ask once for a concrete deliverable (issue 15 #7).

    ``asked``: this is the answer to that question (the bounce card's form), so it is saved as written, and a
    text still vague is recorded as ``vague.accepted`` for the numbers instead of asking again. No item
    exists at the bounce, so its ``vague.bounced`` row is about the draft, under the owner's id."""
    if deadline < ctx.today():
        raise ctx.refuse("action_items.deadline_past")
    acceptor = await _acceptor_for(ctx, owner)
    vague = is_vague(deliverable)
    if vague and not asked:
        ctx.audit("vague.bounced", "action_item_draft", owner.id, text=deliverable[:500])
        warning = ctx.t("vague.bounce", text=deliverable[:200])
        card = bounce_card(
            ctx.t,
            warning=warning,
            owner_id=owner.id,
            owner=owner.name,
            evidence=evidence,
            deliverable=deliverable,
            deadline=deadline,
        )
        return Reply(toast=warning[:200], toast_kind="warning", card=card)
    item = await open_action_item(
        ctx,
        owner=owner,
        deliverable=deliverable,
        deadline=deadline,
        acceptor=acceptor,
        source="manual",
        evidence_required=evidence,
    )
    if vague:
        ctx.audit("vague.accepted", "action_item", item.id, text=deliverable[:500])
    toast = ctx.t("action_items.created", id=item.id, name=owner.name, deadline=deadline.isoformat())
    offer = await link_offer(ctx, item, owner, toast)
    if not asked:
        return Reply(toast=toast, card=offer)
    # The bounce card's form was answered: it turns into the created item (and, when the owner has key
    # results, the question which one it serves), no longer the deliverable's form.
    card = offer or resolved_card(ctx.t, **await describe(ctx, item), what=toast)
    return Reply(toast=toast, card=card)


@router.command("action", "行动")
async def action_command(ctx: Context, args: str) -> Reply:
    parsed = parse_action_args(args)
    if parsed is None:
        raise ctx.refuse("action_items.usage")
    mention, deadline, deliverable, evidence = parsed
    matches = await find_by_mention(ctx.session, ctx.workspace.id, mention)
    if not matches:
        raise ctx.refuse("action_items.no_such_person", name=mention)
    if len(matches) > 1:
        raise ctx.refuse("action_items.ambiguous_person", name=mention, count=len(matches))
    return await _create(ctx, matches[0], deliverable, deadline, evidence, asked=False)


async def _create_form(ctx: Context, payload: ActionCreate) -> Form:
    return create_form(
        ctx.t, owner_id=payload.owner_id, evidence=payload.evidence, deliverable="", deadline=payload.deadline
    )


@router.action(ActionCreate, form=_create_form)
async def create_from_form(ctx: Context, payload: ActionCreate) -> Reply:
    owner = await ctx.session.get(Person, payload.owner_id)
    if owner is None or not owner.active or owner.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    form = form_of(ctx)
    deliverable = text(form, "deliverable")
    if not deliverable:
        raise ctx.refuse("action_items.deliverable_required")
    typed = text(form, "deadline")
    try:
        deadline = date.fromisoformat(typed) if typed else payload.deadline
    except ValueError:
        raise ctx.refuse("action_items.bad_date") from None
    return await _create(ctx, owner, deliverable, deadline, payload.evidence, asked=True)


# ------------------------------------------------------------------ /actions: my open items

MINE_SHOWN = 10
"""Items listed on the ``/actions`` card (two card elements each; a card holds 30)."""


async def my_items(ctx: Context) -> Card:
    """The ``/actions`` card: my items still to deliver, overdue and soonest first, then those waiting for
    the acceptor."""
    rows = list(
        await ctx.session.scalars(
            select(ActionItem).where(
                ActionItem.owner_id == ctx.person.id,
                ActionItem.status.in_((*OPEN_ACTION_ITEM, ActionItemStatus.DONE)),
            )
        )
    )
    rows.sort(key=lambda r: (r.status == ActionItemStatus.DONE, r.deadline, r.id))
    today = ctx.today()
    listed = [
        ListedItem(
            item_id=r.id,
            deliverable=r.deliverable,
            deadline=r.deadline,
            status=r.status,
            days_overdue=action_days_overdue(r.status, r.deadline, today),
            evidence_required=r.evidence_required,
        )
        for r in rows[:MINE_SHOWN]
    ]
    return my_items_card(ctx.t, listed, more=max(0, len(rows) - MINE_SHOWN))


@router.command("actions", "我的行动")
async def actions_command(ctx: Context, args: str) -> Reply:
    del args
    return Reply(card=await my_items(ctx))


# ------------------------------------------------------------------ owner buttons


@router.action(ActionAck)
async def ack(ctx: Context, payload: ActionAck) -> Reply:
    item, owner = await load_item(ctx, payload.item_id)
    if owner.id != ctx.person.id:
        raise ctx.refuse("common.not_allowed_owner", name=owner.name)
    if item.status not in OPEN_ACTION_ITEM:
        raise ctx.refuse("common.already_done")
    await record_first_response(ctx, item, ctx.now)
    ctx.audit("action_item.acknowledged", "action_item", item.id)
    return Reply(toast=ctx.t("action_items.acked"))


async def _mark_done(ctx: Context, item_id: int) -> tuple[ActionItem, Person]:
    """The owner's "done": compare-and-set, the acceptor's card, the deliverable ratings, and the owner's
    latest item card put into its final state (the click may come from ``/actions``)."""
    item, owner = await load_item(ctx, item_id)
    if owner.id != ctx.person.id:
        raise ctx.refuse("common.not_allowed_owner", name=owner.name)
    updated = await ctx.transition_or_refuse(
        ActionItem,
        item.id,
        allowed=OPEN_ACTION_ITEM,
        values={
            "status": ActionItemStatus.DONE,
            "done_at": ctx.now,
            "first_response_at": func.coalesce(ActionItem.first_response_at, ctx.now),
        },
    )
    ctx.audit("action_item.done", "action_item", item.id)
    await open_deliverable_ratings(ctx, item.id)
    photos = (
        await ctx.session.scalar(
            select(func.count()).select_from(Evidence).where(Evidence.action_item_id == item.id)
        )
        or 0
    )
    acceptor = await ctx.session.get(Person, updated.acceptor_id) if updated.acceptor_id else None
    if acceptor is not None and acceptor.id != owner.id:
        t = ctx.translator(acceptor)
        ctx.outbox.send(
            acceptor,
            acceptor_card(t, **await describe(ctx, updated), evidence_count=photos),
            card_key=f"action-accept:{item.id}",
        )
    await settle_cards(ctx, updated, what_key="action_items.done_by", owner=owner, name=owner.name)
    return updated, owner


@router.action(ActionDone)
async def done(ctx: Context, payload: ActionDone) -> Reply:
    updated, owner = await _mark_done(ctx, payload.item_id)
    card = resolved_card(
        ctx.t, **await describe(ctx, updated), what=ctx.t("action_items.done_by", name=owner.name)
    )
    return Reply(toast=ctx.t("action_items.marked_done"), card=card)


@router.action(ActionDoneListed)
async def done_listed(ctx: Context, payload: ActionDoneListed) -> Reply:
    await _mark_done(ctx, payload.item_id)
    return Reply(toast=ctx.t("action_items.marked_done"), card=await my_items(ctx))


# ------------------------------------------------------------------ acceptor buttons


async def _check_acceptor(ctx: Context, item: ActionItem, owner: Person) -> None:
    if item.acceptor_id == ctx.person.id:
        return
    if item.acceptor_id is None and await is_manager_of(ctx.session, ctx.person, owner):
        return
    raise ctx.refuse("common.not_allowed_acceptor", name=owner.name)


@router.action(ActionAccept)
async def accept(ctx: Context, payload: ActionAccept) -> Reply:
    item, owner = await load_item(ctx, payload.item_id)
    await _check_acceptor(ctx, item, owner)
    updated = await ctx.transition_or_refuse(
        ActionItem, item.id, allowed=[ActionItemStatus.DONE], values={"status": ActionItemStatus.ACCEPTED}
    )
    ctx.audit("action_item.accepted", "action_item", item.id)
    await settle_cards(ctx, updated, what_key="action_items.accepted_by", owner=owner, name=ctx.person.name)
    t = ctx.translator(owner)
    ctx.outbox.send(
        owner,
        notice_card(
            t,
            t("action_items.accepted_title"),
            t("action_items.accepted_body", id=item.id, name=ctx.person.name, what=item.deliverable[:200]),
            colour="green",
        ),
    )
    card = resolved_card(
        ctx.t, **await describe(ctx, updated), what=ctx.t("action_items.accepted_by", name=ctx.person.name)
    )
    return Reply(toast=ctx.t("action_items.accepted_toast"), card=card)


async def _return_form(ctx: Context, payload: ActionReturn) -> Form:
    return return_form(ctx.t, payload.item_id)


@router.action(ActionReturn, form=_return_form)
async def give_back(ctx: Context, payload: ActionReturn) -> Reply:
    item, owner = await load_item(ctx, payload.item_id)
    await _check_acceptor(ctx, item, owner)
    reason = text(form_of(ctx), "comment")
    if not reason:
        raise ctx.refuse("action_items.reason_required")
    updated = await ctx.transition_or_refuse(
        ActionItem,
        item.id,
        allowed=[ActionItemStatus.DONE],
        values={"status": ActionItemStatus.RETURNED, "done_at": None},
    )
    ctx.audit("action_item.returned", "action_item", item.id, reason=reason[:500])
    t = ctx.translator(owner)
    intro = t("action_items.returned_body", name=ctx.person.name, reason=reason[:500])
    await send_owner_card(
        ctx,
        owner,
        updated,
        await build_owner_card(
            ctx, updated, t, title_key="action_items.returned_title", intro=intro, colour="orange"
        ),
    )
    card = resolved_card(
        ctx.t, **await describe(ctx, updated), what=ctx.t("action_items.returned_by", name=ctx.person.name)
    )
    return Reply(toast=ctx.t("action_items.returned_toast"), card=card)


# ------------------------------------------------------------------ nudges from the digest / escalation cards


@router.action(ActionNudge)
async def nudge(ctx: Context, payload: ActionNudge) -> Reply:
    """Remind the owner of an overdue item; at most once per item and day, however many readers click."""
    item, owner = await load_item(ctx, payload.item_id)
    if not await may_oversee(ctx.session, ctx.person, owner):
        raise ctx.refuse("common.not_allowed_overseer", name=owner.name)
    if item.status not in OPEN_ACTION_ITEM:
        raise ctx.refuse("common.already_done")
    today = ctx.today(owner)
    key = f"nudge:{today.isoformat()}"
    if await done_before(
        ctx.session, action="action_item.nudged", entity="action_item", entity_id=item.id, key=key
    ):
        return Reply(toast=ctx.t("action_items.nudged_already"), toast_kind="info")
    t = ctx.translator(owner)
    overdue = max(0, (today - item.deadline).days)
    intro = t("action_items.nudge_body", name=ctx.person.name, days=overdue)
    await send_owner_card(
        ctx,
        owner,
        item,
        await build_owner_card(
            ctx, item, t, title_key="action_items.nudge_title", intro=intro, colour="orange"
        ),
        dedupe_key=f"action-nudge:{item.id}:{today.isoformat()}",
    )
    ctx.audit("action_item.nudged", "action_item", item.id, key=key)
    return Reply(toast=ctx.t("action_items.nudged", name=owner.name))


# ------------------------------------------------------------------ schedule entries
SCHEDULE: tuple[ScheduleEntry, ...] = (
    Entry(
        Job.REMIND_ACTION_ITEM, ReminderArgs, lambda ctx, a: remind_action_item(ctx, a.item_id, kind=a.kind)
    ),
)
