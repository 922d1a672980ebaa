"""Deliverable ratings: when an action item (or a goal's deliverable) is done, its acceptor and up to two
named collaborators star-rate completeness, timeliness and risk disclosure within
``feedback.rating_window_hours`` (48 h). Each open request is reminded exactly once, at half-time; after
the window it expires. The ratings attach to the deliverable (``kind`` + ``ref_id``) and the owner sees
the running averages on one card that is updated in place.

Entry points for the other flows and the scheduler (they take a Context whose person is noted):
- ``open_deliverable_ratings(ctx, item_id, collaborator_ids=...)`` — ctx.person = whoever marked it done;
- ``open_goal_ratings(ctx, goal_id, collaborator_ids=...)``;
- ``remind_deliverable_rating(ctx, rating_id)`` / ``expire_deliverable_rating(ctx, rating_id)`` —
  ctx.person = the rater;
- ``sweep_deliverable_ratings(host)`` runs both for everything due; it is this flow's schedule entry
  (``SCHEDULE``), run by the scheduler's leader every tick.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.core.context import Context, Reply
from bot.core.forms import form_of, text
from bot.core.notify import send_polite
from bot.core.people import line_manager
from bot.core.router import Router
from bot.core.schedule import Host, ScheduleEntry, Sweep
from bot.core.status import RatingStatus
from cards import deliverable_ratings as rc
from cards.model import Form
from storage.feedback_scales import RATING_ASPECTS
from storage.models import ActionItem, DeliverableRating, Goal, Person
from storage.queries import feedback as fq
from storage.queries.status import transition

router = Router()

MAX_COLLABORATORS = 2


def summary_key(kind: str, ref_id: int) -> str:
    return f"ratings:{kind}:{ref_id}"


def rating_key(rating_id: int) -> str:
    return f"rating:{rating_id}"


async def _deliverable(ctx: Context, kind: str, ref_id: int) -> tuple[Person, str, int | None] | None:
    """(owner, deliverable text, acceptor id) of the rated thing."""
    if kind == "action":
        item = await ctx.session.get(ActionItem, ref_id)
        if item is None:
            return None
        owner = await ctx.session.get(Person, item.owner_id)
        return (owner, item.deliverable, item.acceptor_id) if owner is not None else None
    goal = await ctx.session.get(Goal, ref_id)
    if goal is None:
        return None
    owner = await ctx.session.get(Person, goal.person_id)
    return (owner, goal.objective, None) if owner is not None else None


async def _open(ctx: Context, kind: str, ref_id: int, collaborator_ids: Iterable[int]) -> int:
    found = await _deliverable(ctx, kind, ref_id)
    if found is None:
        return 0
    owner, deliverable, acceptor_id = found
    if acceptor_id is None or acceptor_id == owner.id:
        manager = await line_manager(ctx.session, owner)
        acceptor_id = manager.id if manager is not None else None
    raters: list[tuple[int, str]] = []
    if acceptor_id is not None:
        raters.append((acceptor_id, "acceptor"))
    for cid in collaborator_ids:
        if cid not in (owner.id, acceptor_id) and cid not in [r for r, _ in raters]:
            if sum(1 for _, role in raters if role == "collaborator") < MAX_COLLABORATORS:
                raters.append((cid, "collaborator"))
    window = timedelta(hours=ctx.settings.feedback.rating_window_hours)
    opened = 0
    for rater_id, role in raters:
        rater = await ctx.session.get(Person, rater_id)
        if rater is None or not rater.active or rater.workspace_id != owner.workspace_id:
            continue
        row = DeliverableRating(
            kind=kind,
            ref_id=ref_id,
            owner_id=owner.id,
            rater_id=rater.id,
            role=role,
            status=RatingStatus.OPEN,
            requested_at=ctx.now,
            due_at=ctx.now + window,
        )
        try:
            async with ctx.session.begin_nested():
                ctx.session.add(row)
                await ctx.session.flush()
        except IntegrityError:
            continue  # already asked for this deliverable
        rt = ctx.translator(rater)
        card = rc.rating_card(
            rt,
            rating_id=row.id,
            owner_name=owner.name,
            deliverable=deliverable,
            due_text=ctx.local_text(row.due_at, rater),
        )
        await send_polite(ctx, rater, card, card_key=rating_key(row.id), dedupe_key=f"rating:{row.id}:open")
        opened += 1
    if opened:
        ctx.audit("ratings.opened", kind, ref_id, raters=[r for r, _ in raters])
    return opened


async def open_deliverable_ratings(
    ctx: Context, item_id: int, *, collaborator_ids: Iterable[int] = ()
) -> int:
    """Ask the action item's acceptor (its owner's manager when none is named) and up to two collaborators
    to rate it; returns how many requests went out now (0 when all were asked before)."""
    return await _open(ctx, "action", item_id, collaborator_ids)


async def open_goal_ratings(ctx: Context, goal_id: int, *, collaborator_ids: Iterable[int] = ()) -> int:
    return await _open(ctx, "goal", goal_id, collaborator_ids)


async def remind_deliverable_rating(ctx: Context, rating_id: int) -> bool:
    """The one reminder, while the request is open and inside its window; True if sent now."""
    row = await ctx.session.get(DeliverableRating, rating_id)
    if row is None or row.rater_id != ctx.person.id or row.due_at <= ctx.now:
        return False
    updated = await transition(
        ctx.session,
        DeliverableRating,
        rating_id,
        allowed=[RatingStatus.OPEN],
        values={"reminded_at": ctx.now},
        extra=[DeliverableRating.reminded_at.is_(None)],
    )
    if updated is None:
        return False
    found = await _deliverable(ctx, updated.kind, updated.ref_id)
    if found is None:
        return False
    owner, deliverable, _ = found
    due_text = ctx.local_text(updated.due_at)
    # The reminder is the card to answer now; the first request would otherwise stay open-looking above it.
    await ctx.outbox.supersede(
        ctx.person,
        rating_key(updated.id),
        rc.moved_card(ctx.t, owner_name=owner.name, deliverable=deliverable, due_text=due_text),
    )
    card = rc.rating_card(
        ctx.t,
        rating_id=updated.id,
        owner_name=owner.name,
        deliverable=deliverable,
        due_text=due_text,
        reminder=True,
    )
    await send_polite(
        ctx, ctx.person, card, card_key=rating_key(updated.id), dedupe_key=f"rating:{updated.id}:remind"
    )
    ctx.audit("ratings.reminded", "deliverable_rating", updated.id)
    return True


async def expire_deliverable_rating(ctx: Context, rating_id: int) -> bool:
    row = await ctx.session.get(DeliverableRating, rating_id)
    if row is None or row.rater_id != ctx.person.id or row.due_at > ctx.now:
        return False
    updated = await transition(
        ctx.session,
        DeliverableRating,
        rating_id,
        allowed=[RatingStatus.OPEN],
        values={"status": RatingStatus.EXPIRED},
    )
    if updated is None:
        return False
    ctx.audit("ratings.expired", "deliverable_rating", rating_id)
    found = await _deliverable(ctx, updated.kind, updated.ref_id)
    if found is not None:
        owner, deliverable, _ = found
        final = rc.expired_card(
            ctx.t, owner_name=owner.name, deliverable=deliverable, due_text=ctx.local_text(updated.due_at)
        )
        await ctx.outbox.supersede(ctx.person, rating_key(rating_id), final)
    return True


async def _run(
    host: Host, person_id: int, fn: Callable[[Context, int], Awaitable[bool]], rating_id: int
) -> bool:
    box: list[bool] = []

    async def job(ctx: Context) -> None:
        box.append(await fn(ctx, rating_id))

    await host.run_for_person(person_id, job)
    return bool(box and box[0])


async def sweep_deliverable_ratings(host: Host) -> tuple[int, int]:
    """Remind (once, at half-time) and expire (at the end of the window) every open request that is due.
    Each runs in the rater's own transaction through the dispatcher; returns (reminded, expired)."""
    now = host.clock.now()
    half = timedelta(hours=host.settings.feedback.rating_window_hours / 2)
    async with host.factory() as session:
        rows = list(
            (
                await session.execute(
                    select(
                        DeliverableRating.id,
                        DeliverableRating.rater_id,
                        DeliverableRating.due_at,
                        DeliverableRating.requested_at,
                        DeliverableRating.reminded_at,
                    )
                    .where(DeliverableRating.status == RatingStatus.OPEN)
                    .order_by(DeliverableRating.id)
                )
            ).all()
        )
    reminded = expired = 0
    for rating_id, rater_id, due_at, requested_at, reminded_at in rows:
        step: Callable[[Context, int], Awaitable[bool]] | None = None
        if due_at <= now:
            step = expire_deliverable_rating
        elif reminded_at is None and requested_at + half <= now:
            step = remind_deliverable_rating
        if step is None:
            continue
        if await _run(host, rater_id, step, rating_id):
            if step is expire_deliverable_rating:
                expired += 1
            else:
                reminded += 1
    return reminded, expired


SCHEDULE: tuple[ScheduleEntry, ...] = (Sweep("sweep_deliverable_ratings", sweep_deliverable_ratings),)


# ------------------------------------------------------------------ the rater answers


async def _own_open(ctx: Context, rating_id: int) -> DeliverableRating:
    row = await ctx.session.get(DeliverableRating, rating_id)
    if row is None or row.rater_id != ctx.person.id:
        raise ctx.refuse("common.invalid_action")
    if row.status == RatingStatus.SUBMITTED:
        raise ctx.refuse("ratings.already")
    if row.status != RatingStatus.OPEN or row.due_at <= ctx.now:
        raise ctx.refuse("ratings.closed")
    return row


async def build_form(ctx: Context, payload: rc.RatingSubmit) -> Form:
    row = await _own_open(ctx, payload.rating_id)
    found = await _deliverable(ctx, row.kind, row.ref_id)
    if found is None:
        raise ctx.refuse("common.invalid_action")
    owner, deliverable, _ = found
    return rc.rating_card(
        ctx.t,
        rating_id=row.id,
        owner_name=owner.name,
        deliverable=deliverable,
        due_text=ctx.local_text(row.due_at),
    ).forms()[0]


@router.action(rc.RatingSubmit, form=build_form)
async def submit(ctx: Context, payload: rc.RatingSubmit) -> Reply:
    row = await _own_open(ctx, payload.rating_id)
    found = await _deliverable(ctx, row.kind, row.ref_id)
    if found is None:
        raise ctx.refuse("common.invalid_action")
    owner, deliverable, _ = found
    form = form_of(ctx)
    entered = {name: text(form, name, 1000) for name in (*RATING_ASPECTS, "comment")}
    scores: dict[str, int] = {}
    for aspect in RATING_ASPECTS:
        raw = entered[aspect]
        if raw.isdigit() and 1 <= int(raw) <= 5:
            scores[aspect] = int(raw)
    if len(scores) < len(RATING_ASPECTS):
        error = ctx.t("ratings.err_missing")
        card = rc.rating_card(
            ctx.t,
            rating_id=row.id,
            owner_name=owner.name,
            deliverable=deliverable,
            due_text=ctx.local_text(row.due_at),
            error=error,
            values=entered,
        )
        return Reply(toast=error, toast_kind="error", card=card)
    values: dict[str, object] = {
        **scores,
        "status": RatingStatus.SUBMITTED,
        "submitted_at": ctx.now,
        "comment": entered["comment"] or None,
    }
    updated = await transition(
        ctx.session, DeliverableRating, row.id, allowed=[RatingStatus.OPEN], values=values
    )
    if updated is None:
        raise ctx.refuse("ratings.already")
    ctx.audit("ratings.submitted", "deliverable_rating", row.id, kind=row.kind, ref_id=row.ref_id)
    rows = await fq.ratings_for(ctx.session, row.kind, row.ref_id)
    done = sum(1 for r in rows if r.status == RatingStatus.SUBMITTED)
    summary = rc.summary_card(
        ctx.translator(owner),
        deliverable=deliverable,
        means=fq.rating_means(rows),
        done=done,
        asked=len(rows),
    )
    if done == 1:
        ctx.outbox.send(owner, summary, card_key=summary_key(row.kind, row.ref_id))
    else:
        ctx.outbox.update(owner, summary, card_key=summary_key(row.kind, row.ref_id))
    card = rc.rated_card(
        ctx.t, owner_name=owner.name, deliverable=deliverable, scores=scores, at_text=ctx.local_text(ctx.now)
    )
    await ctx.outbox.supersede(ctx.person, rating_key(row.id), card)
    return Reply(toast=ctx.t("ratings.thanks"), card=card)
