"""``/review``: open the next monthly 3-2-1 review ahead of time, as ``/checkin`` does for check-ins.

Someone going on leave, or who simply has the month's answers ready, should not wait for the last workday
(issue 15 #13: ``/help`` had no ``/review``). The review opened is exactly the one the scheduler would open
(``ctx.scheduler().next_review``); when the tick reaches it the record exists, so nothing is sent twice.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.core.context import Context, Reply
from bot.core.router import Router
from bot.core.schedule import takes_checkins
from bot.core.status import ReviewStatus
from handlers.review321.review321 import open_review
from storage.models import Review321
from storage.queries import reviews as rq

router = Router()


@router.command("review", "复盘")
async def early_review(ctx: Context, args: str) -> Reply:
    del args
    person = ctx.person
    if not takes_checkins(person):
        raise ctx.refuse("review_early.no_reviews")
    waiting = await ctx.session.scalar(
        select(Review321)
        .where(Review321.person_id == person.id, Review321.status == ReviewStatus.OPEN)
        .order_by(Review321.due_at.desc())
        .limit(1)
    )
    if waiting is not None:
        raise ctx.refuse("review_early.already_open", period=waiting.period)
    slot = await ctx.scheduler().next_review(ctx.session, person, ctx.now)
    if slot is None:
        raise ctx.refuse("review_early.no_reviews")
    opened = await open_review(ctx, period=slot.period, due_at=slot.at)
    if opened is None:
        done = await rq.review_for_period(ctx.session, person.id, slot.period)
        if done is not None and done.status == ReviewStatus.OPEN:
            raise ctx.refuse("review_early.already_open", period=slot.period)
        raise ctx.refuse("review_early.already_done", period=slot.period)
    ctx.audit("review.opened_early", "review", opened.id, period=slot.period)
    return Reply(toast=ctx.t("review_early.opened", period=slot.period))
