"""The monthly 3-2-1 review: (3) the most solid action and the change it brought, (2) one blocker the
manager should coordinate, (1) one small new action for next week with a deadline. The manager confirms,
may adjust deliverable and deadline and names an acceptor; the "1" becomes an action item
(``source="review"``) that the action-item flow tracks from then on.

Lifecycle: open → submitted → confirmed (a compare-and-set; the action item is created in the same
transaction, so a double tap cannot create two). The employee may edit until the manager confirms.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from bot.core.context import Context, Reply
from bot.core.forms import form_of, iso_date, text
from bot.core.people import approver_to_notify, hrbp_of, line_manager, require_approver, require_self
from bot.core.router import Router
from bot.core.schedule import Entry, Job, PeriodArgs, ScheduleEntry
from bot.core.status import OPEN_REVIEW, ReviewStatus
from bot.core.vague import must_bounce
from cards import review321 as rc
from cards.catalogue import Translator
from cards.flow_actions import ReviewConfirm, ReviewEdit, ReviewSubmit
from cards.flow_common import done_by, with_outcome
from cards.model import Card, Form
from handlers.action_items.api import open_action_item
from storage.models import Department, Person, Review321
from storage.queries import people as pq
from storage.queries import reviews as rq
from storage.queries.status import transition

router = Router()

DEFAULT_ACTION_DAYS = 7
"""The deadline suggested for the "1": a small action for *next week*."""


def employee_key(review_id: int) -> str:
    return f"review:{review_id}"


def manager_key(review_id: int) -> str:
    return f"review-mgr:{review_id}"


def answers_of(review: Review321, *, deadline: date | None = None) -> rc.ReviewAnswers:
    chosen = deadline or review.new_action_deadline
    return rc.ReviewAnswers(
        solid_action=review.solid_action,
        change_brought=review.change_brought,
        blocker=review.blocker,
        new_action=review.new_action,
        deadline=chosen.isoformat() if chosen else None,
    )


# ------------------------------------------------------------------ contract function (scheduler)


async def open_review(ctx: Context, *, period: str, due_at: datetime) -> Review321 | None:
    """Create the 3-2-1 review for ``period`` (``YYYY-MM``) and send the card; None if it existed."""
    if await rq.review_for_period(ctx.session, ctx.person.id, period) is not None:
        return None
    review = Review321(person_id=ctx.person.id, period=period, status=ReviewStatus.OPEN, due_at=due_at)
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(review)
            await ctx.session.flush()
    except IntegrityError:
        return None
    suggested = ctx.day_of(due_at) + timedelta(days=DEFAULT_ACTION_DAYS)
    card = rc.review_card(
        ctx.t, review_id=review.id, period=period, answers=rc.ReviewAnswers(deadline=suggested.isoformat())
    )
    ctx.outbox.send(ctx.person, card, card_key=employee_key(review.id), dedupe_key=f"review:{review.id}:open")
    ctx.audit("review.opened", "review", review.id, period=period)
    return review


# ------------------------------------------------------------------ employee


async def _own_editable(ctx: Context, review_id: int) -> Review321:
    review = await ctx.session.get(Review321, review_id)
    if review is None:
        raise ctx.refuse("common.invalid_action")
    require_self(ctx, review.person_id)
    if review.status == ReviewStatus.CONFIRMED:
        raise ctx.refuse("review321.already_confirmed")
    if review.status not in OPEN_REVIEW:
        raise ctx.refuse("review321.closed", period=review.period)
    return review


async def build_review_form(ctx: Context, payload: ReviewSubmit) -> Form:
    review = await _own_editable(ctx, payload.review_id)
    return rc.review_card(
        ctx.t, review_id=review.id, period=review.period, answers=answers_of(review)
    ).forms()[0]


@router.action(ReviewSubmit, form=build_review_form)
async def submit_review(ctx: Context, payload: ReviewSubmit) -> Reply:
    review = await _own_editable(ctx, payload.review_id)
    form = form_of(ctx)
    answers = rc.ReviewAnswers(
        solid_action=text(form, "solid_action", 1000) or None,
        change_brought=text(form, "change_brought", 1000) or None,
        blocker=text(form, "blocker", 1000) or None,
        new_action=text(form, "new_action", 500) or None,
        deadline=text(form, "deadline", 40) or None,
    )
    today = ctx.today()
    deadline = iso_date(answers.deadline or "")
    # What comes back on the card is the date as a date picker holds it (a client may add a time).
    answers = replace(answers, deadline=deadline.isoformat() if deadline else None)
    errors = [
        ctx.t(f"review321.err_{name}")
        for name in ("solid_action", "change_brought", "blocker", "new_action")
        if not getattr(answers, name)
    ]
    if deadline is None:
        errors.append(ctx.t("review321.err_deadline"))
    elif deadline < today:
        errors.append(ctx.t("review321.err_deadline_past", today=today.isoformat()))
    if errors:
        return Reply(
            toast=errors[0],
            toast_kind="error",
            card=rc.review_card(
                ctx.t, review_id=review.id, period=review.period, answers=answers, error="\n".join(errors)
            ),
        )
    if await must_bounce(ctx, answers.new_action, entity="review_action", entity_id=review.id):
        warning = ctx.t("vague.bounce", text=(answers.new_action or "")[:200])
        return Reply(
            toast=warning[:200],
            toast_kind="warning",
            card=rc.review_card(
                ctx.t, review_id=review.id, period=review.period, answers=answers, error=warning
            ),
        )
    first = review.status == ReviewStatus.OPEN
    updated = await transition(
        ctx.session,
        Review321,
        review.id,
        allowed=OPEN_REVIEW,
        values={
            "status": ReviewStatus.SUBMITTED,
            "solid_action": answers.solid_action,
            "change_brought": answers.change_brought,
            "blocker": answers.blocker,
            "new_action": answers.new_action,
            "new_action_deadline": deadline,
            "submitted_at": ctx.now,
        },
    )
    if updated is None:
        raise ctx.refuse("review321.already_confirmed")
    approver = await approver_to_notify(ctx.session, ctx.person, today)
    if approver is not None:
        card = await _manager_card(
            ctx, ctx.translator(approver), updated, ctx.person, default_acceptor=approver, edited=not first
        )
        if first:
            ctx.outbox.send(approver, card, card_key=manager_key(review.id))
        else:
            ctx.outbox.update(approver, card, card_key=manager_key(review.id))
    ctx.audit("review.submitted" if first else "review.edited", "review", review.id)
    note = ctx.t(
        "review321.submitted_note",
        time=done_by(
            ctx.t,
            name=ctx.person.name,
            what=ctx.t("review321.did_submit"),
            at=ctx.now,
            tz=ctx.zone(),
        ),
    )
    return Reply(
        toast=ctx.t("review321.submitted"),
        card=rc.submitted_card(
            ctx.t, review_id=review.id, period=review.period, answers=answers_of(updated), note=note
        ),
    )


@router.action(ReviewEdit)
async def edit_review(ctx: Context, payload: ReviewEdit) -> Reply:
    review = await _own_editable(ctx, payload.review_id)
    return Reply(
        card=rc.review_card(ctx.t, review_id=review.id, period=review.period, answers=answers_of(review))
    )


# ------------------------------------------------------------------ manager


async def acceptor_choices(ctx: Context, employee: Person) -> list[Person]:
    """Who can accept the employee's new action: the line manager (default), the manager's delegate and
    their own manager, the department head, and the HRBP — never the employee themself."""
    out: list[Person] = []
    manager = await line_manager(ctx.session, employee)
    if manager is not None:
        out.append(manager)
        extra = await pq.people_by_ids(ctx.session, [manager.delegate_id, manager.manager_id])
        out.extend(extra.values())
    if employee.department_id is not None:
        dept = await ctx.session.get(Department, employee.department_id)
        if dept is not None and dept.head_id is not None:
            out.extend((await pq.people_by_ids(ctx.session, [dept.head_id])).values())
    hrbp = await hrbp_of(ctx.session, employee)
    if hrbp is not None:
        out.append(hrbp)
    seen: set[int] = set()
    unique: list[Person] = []
    for p in out:
        if p.id != employee.id and p.id not in seen and p.active:
            seen.add(p.id)
            unique.append(p)
    return unique


async def _manager_card(
    ctx: Context,
    t: Translator,
    review: Review321,
    employee: Person,
    *,
    default_acceptor: Person | None,
    deliverable: str | None = None,
    deadline: date | None = None,
    warning: str | None = None,
    edited: bool = False,
) -> Card:
    choices = await acceptor_choices(ctx, employee)
    if default_acceptor is not None and default_acceptor.id not in {p.id for p in choices}:
        choices.insert(0, default_acceptor)
    return rc.manager_card(
        t,
        review_id=review.id,
        employee_name=employee.name,
        period=review.period,
        answers=answers_of(review, deadline=deadline),
        acceptors=[(p.id, p.name) for p in choices],
        acceptor_default=default_acceptor.id if default_acceptor else None,
        deliverable_default=deliverable,
        warning=warning,
        edited=edited,
    )


async def _review_for_approver(ctx: Context, review_id: int) -> tuple[Review321, Person]:
    review = await ctx.session.get(Review321, review_id)
    if review is None:
        raise ctx.refuse("common.invalid_action")
    employee = await ctx.session.get(Person, review.person_id)
    assert employee is not None
    await require_approver(ctx, employee)
    return review, employee


async def build_confirm_form(ctx: Context, payload: ReviewConfirm) -> Form:
    review, employee = await _review_for_approver(ctx, payload.review_id)
    return (await _manager_card(ctx, ctx.t, review, employee, default_acceptor=ctx.person)).forms()[0]


@router.action(ReviewConfirm, form=build_confirm_form)
async def confirm_review(ctx: Context, payload: ReviewConfirm) -> Reply:
    review, employee = await _review_for_approver(ctx, payload.review_id)
    if review.status == ReviewStatus.OPEN:
        raise ctx.refuse("review321.not_submitted", name=employee.name)
    if review.status != ReviewStatus.SUBMITTED:
        raise ctx.refuse("common.already_done")
    form = form_of(ctx)
    deliverable = text(form, "deliverable", 500) or review.new_action or ""
    deadline = iso_date(text(form, "deadline", 40)) or review.new_action_deadline
    today = ctx.today()
    if not deliverable:
        raise ctx.refuse("review321.err_new_action")
    if deadline is None or deadline < today:
        raise ctx.refuse("review321.err_deadline_past", today=today.isoformat())
    choices = {p.id: p for p in await acceptor_choices(ctx, employee)}
    choices.setdefault(ctx.person.id, ctx.person)
    acceptor_text = text(form, "acceptor", 40)
    acceptor = (
        choices.get(int(acceptor_text))
        if acceptor_text.isdigit()
        else (ctx.person if not acceptor_text else None)
    )
    if acceptor is None:
        raise ctx.refuse("review321.bad_acceptor")
    if deliverable != review.new_action and await must_bounce(
        ctx, deliverable, entity="review_deliverable", entity_id=review.id
    ):
        warning = ctx.t("vague.bounce", text=deliverable[:200])
        card = await _manager_card(
            ctx,
            ctx.t,
            review,
            employee,
            default_acceptor=acceptor,
            deliverable=deliverable,
            deadline=deadline,
            warning=warning,
        )
        return Reply(toast=warning[:200], toast_kind="warning", card=card)
    updated = await ctx.transition_or_refuse(
        Review321,
        review.id,
        allowed=[ReviewStatus.SUBMITTED],
        values={"status": ReviewStatus.CONFIRMED, "confirmed_by_id": ctx.person.id, "confirmed_at": ctx.now},
    )
    item = await open_action_item(
        ctx,
        owner=employee,
        deliverable=deliverable,
        deadline=deadline,
        acceptor=acceptor,
        source="review",
        source_id=review.id,
    )
    updated.action_item_id = item.id
    await ctx.session.flush()
    ctx.audit(
        "review.confirmed",
        "review",
        review.id,
        action_item_id=item.id,
        acceptor_id=acceptor.id,
        deadline=deadline.isoformat(),
    )
    et = ctx.translator(employee)
    when = done_by(
        et, name=ctx.person.name, what=et("review321.did_confirm"), at=ctx.now, tz=ctx.zone(employee)
    )
    ctx.outbox.send(
        employee,
        rc.confirmed_card(
            et,
            period=updated.period,
            deliverable=deliverable,
            deadline=deadline.isoformat(),
            acceptor=acceptor.name,
            note=when,
        ),
    )
    ctx.outbox.update(
        employee,
        rc.submitted_card(
            et,
            review_id=updated.id,
            period=updated.period,
            answers=answers_of(updated),
            note=when,
            editable=False,
        ),
        card_key=employee_key(updated.id),
    )
    card = await _manager_card(
        ctx, ctx.t, updated, employee, default_acceptor=acceptor, deliverable=deliverable, deadline=deadline
    )
    note = done_by(
        ctx.t,
        name=ctx.person.name,
        what=ctx.t("review321.did_confirm_item", deadline=deadline.isoformat(), acceptor=acceptor.name),
        at=ctx.now,
        tz=ctx.zone(),
    )
    return Reply(toast=ctx.t("review321.confirmed"), card=with_outcome(card, note))


# ------------------------------------------------------------------ schedule entries
SCHEDULE: tuple[ScheduleEntry, ...] = (
    Entry(Job.OPEN_REVIEW, PeriodArgs, lambda ctx, a: open_review(ctx, period=a.period, due_at=a.due_at)),
)
"""The 3-2-1 has no reminder of its own: a snoozed prompt wakes up as the same prompt again
(``Job.REMIND_REVIEW`` is the engagement flow's ``resend_review_prompt``)."""
