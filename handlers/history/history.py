"""``/history``: a person's last check-ins, reviews and actions as one card; ``/history @张三`` for someone
the asker may oversee (manager, delegate, director, HRBP, HR, leader). ``person_export`` is the same
history as plain data for exports: peer feedback appears in it only as the anonymous aggregate, and only
past the threshold, exactly as on the card (released answers only, so an export never shows a version the
cards did not). Feedback a person *gave* as a peer is never in their export: their id next to those answers
is exactly the link anonymity forbids (issue 16 #3).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.core.context import Context, Reply
from bot.core.localtime import person_date
from bot.core.people import find_by_mention, may_oversee
from bot.core.router import Router
from bot.core.status import GradeStatus, action_days_overdue
from cards.history import ActionLine, GradeEvent, HistoryView, history_card
from storage.models import ActionItem, CheckIn, Cycle, Grade, PeerFeedback, Person, Review321, SelfAssessment
from storage.queries import feedback as fq
from storage.queries.engagement import streak_for
from storage.queries.grades import grade_timeline

router = Router()

CHECKINS_SHOWN = 6
REVIEWS_SHOWN = 3
ACTIONS_SHOWN = 5


async def _feedback_cycles(session: AsyncSession, person_id: int) -> list[Cycle]:
    ids = set(
        await session.scalars(
            select(PeerFeedback.cycle_id).where(
                PeerFeedback.subject_id == person_id, PeerFeedback.role == "peer"
            )
        )
    )
    if not ids:
        return []
    return list(await session.scalars(select(Cycle).where(Cycle.id.in_(ids)).order_by(Cycle.id)))


async def build_view(session: AsyncSession, person: Person, settings: Settings, today: date) -> HistoryView:
    """The card's data; ``today`` is the person's local day, against which an open item is overdue."""
    checkins = await session.execute(
        select(CheckIn.period, CheckIn.status)
        .where(CheckIn.person_id == person.id)
        .order_by(CheckIn.due_at.desc(), CheckIn.id.desc())
        .limit(CHECKINS_SHOWN)
    )
    reviews = await session.execute(
        select(Review321.period, Review321.status)
        .where(Review321.person_id == person.id)
        .order_by(Review321.period.desc())
        .limit(REVIEWS_SHOWN)
    )
    actions = await session.execute(
        select(ActionItem.deliverable, ActionItem.deadline, ActionItem.status)
        .where(ActionItem.owner_id == person.id)
        .order_by(ActionItem.deadline.desc(), ActionItem.id.desc())
        .limit(ACTIONS_SHOWN)
    )
    peer_means = None
    peer_hidden = False
    cycles = await _feedback_cycles(session, person.id)
    if cycles:
        agg = await fq.aggregate(
            session,
            cycles[-1].id,
            person.id,
            threshold=settings.feedback.anonymity_threshold,
            with_manager=False,
        )
        peer_means, peer_hidden = agg.peers, not agg.visible
    grade = await session.scalar(
        select(Grade.grade)
        .where(Grade.person_id == person.id, Grade.status == GradeStatus.RELEASED)
        .order_by(Grade.cycle_id.desc())
        .limit(1)
    )
    return HistoryView(
        name=person.name,
        checkins=[(p, s) for p, s in checkins.all()],
        reviews=[(p, s) for p, s in reviews.all()],
        actions=[
            ActionLine(
                d,
                dl.isoformat(),
                s,
                days_overdue=action_days_overdue(s, dl, today),
            )
            for d, dl, s in actions.all()
        ],
        streak=await streak_for(session, person.id),
        peer_means=peer_means,
        peer_hidden=peer_hidden,
        ratings=fq.rating_means(await fq.ratings_received(session, person.id)),
        grade=grade,
        grade_events=[
            GradeEvent(g.kind, person_date(person, g.at, settings).isoformat(), g.cycle, g.before, g.after)
            for g in await grade_timeline(session, person.id)
        ],
    )


@router.command("history", "历史")
async def history(ctx: Context, args: str) -> Reply:
    person = ctx.person
    if args.strip():
        matches = await find_by_mention(ctx.session, ctx.workspace.id, args.strip())
        if len(matches) != 1:
            raise ctx.refuse("history.no_such_person", name=args.strip())
        person = matches[0]
        if person.id != ctx.person.id and not await may_oversee(ctx.session, ctx.person, person):
            raise ctx.refuse("history.not_allowed", name=person.name)
    ctx.audit("history.viewed", "person", person.id)
    view = await build_view(ctx.session, person, ctx.settings, ctx.today(person))
    return Reply(card=history_card(ctx.t, view))


async def person_export(session: AsyncSession, person: Person, settings: Settings) -> dict[str, Any]:
    """Everything about ``person`` that ``person`` may see, as JSON-ready data (for a personal export)."""
    checkins = await session.scalars(
        select(CheckIn).where(CheckIn.person_id == person.id).order_by(CheckIn.due_at)
    )
    reviews = await session.scalars(
        select(Review321).where(Review321.person_id == person.id).order_by(Review321.period)
    )
    actions = await session.scalars(
        select(ActionItem).where(ActionItem.owner_id == person.id).order_by(ActionItem.id)
    )
    selfs = await session.scalars(select(SelfAssessment).where(SelfAssessment.person_id == person.id))
    grades = await session.scalars(
        select(Grade)
        .where(Grade.person_id == person.id, Grade.status == GradeStatus.RELEASED)
        .order_by(Grade.cycle_id)
    )
    peer: list[dict[str, Any]] = []
    for cycle in await _feedback_cycles(session, person.id):
        agg = await fq.aggregate(
            session, cycle.id, person.id, threshold=settings.feedback.anonymity_threshold, with_manager=False
        )
        entry: dict[str, Any] = {"cycle": cycle.code, "shown": agg.visible}
        if agg.visible:
            entry.update(answered=agg.answered, means=agg.peers, examples=agg.examples)
        peer.append(entry)
    return {
        "person": {"name": person.name},
        "checkins": [
            {
                "period": c.period,
                "status": c.status,
                "progress": c.progress,
                "obstacles": c.obstacles,
                "support": c.support,
                "manager_comment": c.manager_comment,
            }
            for c in checkins
        ],
        "reviews": [
            {
                "period": r.period,
                "status": r.status,
                "solid_action": r.solid_action,
                "blocker": r.blocker,
                "new_action": r.new_action,
            }
            for r in reviews
        ],
        "action_items": [
            {"deliverable": a.deliverable, "deadline": a.deadline.isoformat(), "status": a.status}
            for a in actions
        ],
        "self_assessments": [
            {"cycle_id": s.cycle_id, "status": s.status, "answers": s.answers} for s in selfs
        ],
        "peer_feedback": peer,
        "deliverable_ratings": fq.rating_means(await fq.ratings_received(session, person.id)),
        "grades": [{"cycle_id": g.cycle_id, "grade": g.grade} for g in grades],
        "grade_history": [
            {"at": g.at.isoformat(), "step": g.kind, "cycle": g.cycle, "from": g.before, "to": g.after}
            | ({"reason": g.reason} if g.reason else {})
            for g in await grade_timeline(session, person.id)
        ],
        "streak": await streak_for(session, person.id),
    }
