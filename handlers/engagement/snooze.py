"""The "snooze 1 day" button on check-in and 3-2-1 prompts.

Snoozing asks the scheduler (``ctx.schedule.snooze``) to record one ledger row (``snooze.checkin`` /
``snooze.review``, period = the record id, status ``snoozed``, due a day later); the tick wakes it with the
flow's reminder. One snooze per prompt: the unique key makes a second tap (or a retried callback) say
"already snoozed" instead of pushing the prompt away for ever. For a check-in the snooze *moves* its one
reminder (the flow sends a check-in reminder at most once), so once that reminder has gone out there is
nothing left to snooze and the tap says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.context import Context, Reply
from bot.core.router import Router
from bot.core.schedule import Entry, Job, ReviewArgs, ScheduleEntry
from bot.core.schedule_port import SnoozeKind
from bot.core.status import CheckInStatus, ReviewStatus
from cards.review321 import ReviewAnswers, review_card
from cards.snooze import Snooze
from storage.models import CheckIn, Person, Review321

router = Router()

SNOOZE_FOR = timedelta(days=1)
KINDS: dict[str, SnoozeKind] = {"checkin": "checkin", "review": "review", "review321": "review"}


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
    if record is None:
        raise ctx.refuse("common.invalid_action")
    if record.person_id != ctx.person.id:
        owner = await ctx.session.get(Person, record.person_id)
        raise ctx.refuse("common.not_allowed_owner", name=owner.name if owner else "")
    if record.status != (CheckInStatus.OPEN if isinstance(record, CheckIn) else ReviewStatus.OPEN):
        raise ctx.refuse("common.already_done")
    if isinstance(record, CheckIn) and record.reminded_at is not None:
        raise ctx.refuse("snooze.already_reminded")
    snoozed = await ctx.scheduler().snooze(
        ctx.session, ctx.person, kind, record.id, until=ctx.now + SNOOZE_FOR, now=ctx.now
    )
    if not snoozed.new:
        return Reply(toast=ctx.t("snooze.already", until=_local(ctx, snoozed.until)), toast_kind="warning")
    until = snoozed.until
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
