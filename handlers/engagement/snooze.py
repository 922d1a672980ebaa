"""The "snooze 1 day" button on check-in and 3-2-1 prompts.

Snoozing writes one ledger row (``snooze.checkin`` / ``snooze.review``, period = the record id, status
``snoozed``, due a day later); the scheduler's tick wakes it with the flow's reminder. One snooze per prompt:
the unique key makes a second tap (or a retried callback) say "already snoozed" instead of pushing the
prompt away for ever. For a check-in the snooze *moves* its one reminder (the flow sends a check-in
reminder at most once), so once that reminder has gone out there is nothing left to snooze and the tap
says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.core.context import Context, Reply
from bot.core.router import Router
from bot.core.schedule import Entry, Job, ReviewArgs, ScheduleEntry
from bot.core.status import CheckInStatus, ReviewStatus, SendStatus
from cards.review321 import ReviewAnswers, review_card
from cards.snooze import Snooze
from storage.models import CheckIn, Review321, ScheduledSend

router = Router()

SNOOZE_FOR = timedelta(days=1)
KINDS = {"checkin": "checkin", "review": "review", "review321": "review"}


@router.action(Snooze)
async def snooze(ctx: Context, payload: Snooze) -> Reply:
    kind = KINDS.get(payload.flow)
    if kind is None:
        raise ctx.refuse("common.invalid_action")
    record: CheckIn | Review321 | None
    if kind == "checkin":
        record = await ctx.session.get(CheckIn, payload.ref_id)
    else:
        record = await ctx.session.get(Review321, payload.ref_id)
    if record is None or record.person_id != ctx.person.id:
        raise ctx.refuse("common.not_allowed")
    if record.status != (CheckInStatus.OPEN if isinstance(record, CheckIn) else ReviewStatus.OPEN):
        raise ctx.refuse("common.already_done")
    if isinstance(record, CheckIn) and record.reminded_at is not None:
        raise ctx.refuse("snooze.already_reminded")
    until = ctx.now + SNOOZE_FOR
    row = ScheduledSend(
        flow=f"snooze.{kind}",
        person_id=ctx.person.id,
        period=str(record.id),
        status=SendStatus.SNOOZED,
        due_at=until,
        reason="snoozed by the person",
        created_at=ctx.now,
    )
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(row)
            await ctx.session.flush()
    except IntegrityError:
        earlier = await ctx.session.scalar(
            select(ScheduledSend).where(
                ScheduledSend.flow == f"snooze.{kind}",
                ScheduledSend.person_id == ctx.person.id,
                ScheduledSend.period == str(record.id),
            )
        )
        when = earlier.due_at if earlier is not None and earlier.due_at is not None else until
        return Reply(toast=ctx.t("snooze.already", until=_local(ctx, when)), toast_kind="warning")
    ctx.audit("schedule.snooze", kind, record.id, until=until.isoformat())
    return Reply(toast=ctx.t("snooze.done", until=_local(ctx, until)))


async def resend_review_prompt(ctx: Context, review_id: int) -> bool:
    """The wake-up of a snoozed 3-2-1 when the flow has no reminder of its own: the same prompt again."""
    review = await ctx.session.get(Review321, review_id)
    if review is None or review.person_id != ctx.person.id or review.status != ReviewStatus.OPEN:
        return False
    card = review_card(ctx.t, review_id=review.id, period=review.period, answers=ReviewAnswers())
    ctx.outbox.send(ctx.person, card, dedupe_key=f"review-snooze:{review.id}")
    return True


def _local(ctx: Context, at: datetime) -> str:
    return at.astimezone(ctx.zone()).strftime("%m-%d %H:%M")


# ------------------------------------------------------------------ schedule entries
SCHEDULE: tuple[ScheduleEntry, ...] = (
    # The 3-2-1 flow has no reminder: a snoozed review wakes up as its prompt again. (The check-in wake-up is
    # the check-in flow's own ``remind_checkin``.)
    Entry(Job.REMIND_REVIEW, ReviewArgs, lambda ctx, a: resend_review_prompt(ctx, a.review_id)),
)
