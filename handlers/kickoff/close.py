"""Closing a cycle: the preview of what is still open, then the close that settles it.

Chat (``/closecycle``, ``handlers/kickoff/close_chat.py``), ``perfloop cycle close`` and the console all
call these functions, so they count the same things and refuse the same way (``KickoffError``, phrased
through the catalogue). The states and their audit rows come from ``handlers/kickoff/states.py``.

What "still open" means, per thing the issue names:
- ungraded people: active participants without any grade (and, apart, grades proposed but not released);
- open check-ins: this cycle's check-ins nobody answered yet (status ``open``);
- open action items: the participants' items still to deliver (an item belongs to no cycle, so carried
  over it simply stays open and counts again when the next cycle closes);
- unrated deliverables: deliverables of the participants (their action items, their goals of this cycle)
  with a rating still open;
- pending appeals: grade appeals of this cycle waiting for the HRBP.

Carry over keeps every open item open (a check-in moves to the person's other running cycle, or to none);
cancel marks open check-ins missed, closes open action items and expires open ratings. Grades and appeals
are never touched by a close: nobody is graded by default, and an appeal is decided by its HRBP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.core.context import Outbox
from bot.core.localtime import local_today
from bot.core.status import (
    ANSWERABLE_CYCLE,
    OPEN_ACTION_ITEM,
    OPEN_APPEAL,
    ActionItemStatus,
    CheckInStatus,
    CycleStatus,
    GradeStatus,
    RatingStatus,
)
from cards.catalogue import Translator
from cards.cycle_close import CloseCounts, Mode, closing_card
from cards.flow_common import with_outcome
from cards.kickoff import kickoff_card
from cards.model import Card
from handlers.kickoff.errors import KickoffError, Label
from handlers.kickoff.period import canonical_code
from handlers.kickoff.states import move_cycle
from storage.models import ActionItem, AuditLog, CheckIn, Cycle, DeliverableRating, OutboxMessage, Person
from storage.queries import cycles as cq
from storage.queries import people as pq

CLOSABLE = ANSWERABLE_CYCLE
GOAL_KIND = "goal"
QUEUED = ("pending", "sending")


class CloseMode(StrEnum):
    CARRY_OVER = "carry_over"
    CANCEL = "cancel"

    @property
    def word(self) -> Mode:
        """The same value, typed as the cards' ``Mode``."""
        return "cancel" if self is CloseMode.CANCEL else "carry_over"


@dataclass(frozen=True)
class CloseResult:
    """What a close did: the counts it found, and how many of each open item it carried over or cancelled
    (a check-in answered during the close is no longer open and is in neither). ``ratings`` counts
    deliverables, like the preview, not the rating requests (one deliverable may have several raters)."""

    counts: CloseCounts
    mode: CloseMode
    checkins: int
    action_items: int
    ratings: int
    notified: int
    rows: int


def closed_on(cycle: Cycle, settings: Settings) -> str:
    """The day a cycle closed, in the company's default zone (one date on a card broadcast to all)."""
    if cycle.closed_at is None:
        return "—"
    return local_today(cycle.closed_at, settings.schedule.default_timezone).isoformat()


def unclosable(cycle: Cycle, settings: Settings) -> KickoffError | None:
    """Why ``cycle`` cannot be closed (None: it can): a draft never started, a cancelled cycle is over
    another way, a closed one is closed."""
    if cycle.status in CLOSABLE:
        return None
    if cycle.status == CycleStatus.DRAFT:
        return KickoffError("cycle_close.is_draft", code=cycle.code)
    if cycle.status == CycleStatus.CANCELLED:
        return KickoffError("cycle_close.is_cancelled", code=cycle.code)
    return KickoffError("cycle_close.is_closed", code=cycle.code, date=closed_on(cycle, settings))


async def find_cycle_to_close(session: AsyncSession, workspace_id: int, code: str | None) -> Cycle:
    """The cycle named by ``code`` (typed loosely: ``2026q4``), or without one the only active or closing
    cycle. Raises ``KickoffError`` for an unknown code or when the choice is not obvious, listing what can
    be closed. A named cycle is returned whatever its state: ``unclosable`` says why it cannot be closed."""
    candidates = await cq.cycles_by_status(session, workspace_id, CLOSABLE)
    codes = "、".join(c.code for c in candidates[:10])
    name = (code or "").strip()
    if name:
        cycle = await cq.cycle_by_code(session, workspace_id, name) or await cq.cycle_by_code(
            session, workspace_id, canonical_code(name)
        )
        if cycle is not None:
            return cycle
        if codes:
            raise KickoffError("cycle_close.no_such_cycle", code=name[:40], codes=codes)
        raise KickoffError("cycle_close.no_such_cycle_none", code=name[:40])
    if not candidates:
        raise KickoffError("cycle_close.nothing_to_close")
    if len(candidates) > 1:
        raise KickoffError("cycle_close.which_one", codes=codes, example=candidates[0].code)
    return candidates[0]


async def close_preview(session: AsyncSession, cycle: Cycle) -> CloseCounts:
    """Count what ``cycle`` still has open (see the module docstring for what each number means)."""
    ratings = await cq.participants_ratings(session, cycle.id, [RatingStatus.OPEN], goal_kind=GOAL_KIND)
    return CloseCounts(
        cycle_id=cycle.id,
        code=cycle.code,
        status=cycle.status,
        starts_on=cycle.starts_on,
        ends_on=cycle.ends_on,
        participants=len(await cq.active_participants(session, cycle.id)),
        ungraded=await cq.ungraded_count(session, cycle.id),
        unreleased=await cq.grade_count(
            session, cycle.id, [s for s in GradeStatus if s != GradeStatus.RELEASED]
        ),
        open_checkins=len(await cq.cycle_checkins(session, cycle.id, [CheckInStatus.OPEN])),
        open_action_items=len(await cq.participants_action_items(session, cycle.id, OPEN_ACTION_ITEM)),
        unrated_deliverables=len({(kind, ref) for _, kind, ref in ratings}),
        pending_appeals=await cq.appeal_count(session, cycle.id, OPEN_APPEAL),
    )


async def _fresh(session: AsyncSession, cycle: Cycle) -> Cycle:
    fresh = await session.get(Cycle, cycle.id, populate_existing=True)
    assert fresh is not None
    return fresh


async def _refuse_moved(session: AsyncSession, cycle: Cycle, settings: Settings) -> KickoffError:
    """Someone moved the cycle between our read and our write: say where it is now."""
    fresh = await _fresh(session, cycle)
    return unclosable(fresh, settings) or KickoffError(
        "cycle_close.moved", code=fresh.code, status=Label(f"kickoff.status.{fresh.status}")
    )


async def begin_closing(
    session: AsyncSession, settings: Settings, cycle: Cycle, *, actor_id: int | None, at: datetime, via: str
) -> Cycle:
    """active → closing (audited); a cycle already closing is returned as it is. From now on nothing new
    starts in it, and what people already started may still be handed in."""
    problem = unclosable(cycle, settings)
    if problem is not None:
        raise problem
    if cycle.status == CycleStatus.CLOSING:
        return cycle
    moved = await move_cycle(session, cycle, CycleStatus.CLOSING, actor_id=actor_id, at=at, via=via)
    if moved is None:
        raise await _refuse_moved(session, cycle, settings)
    return moved


async def resume_cycle(
    session: AsyncSession, cycle: Cycle, *, actor_id: int | None, at: datetime, via: str
) -> Cycle:
    """closing → active (audited): HR decided not to close after all. Raises ``KickoffError`` when the
    cycle is not closing (any more)."""
    moved = None
    if cycle.status == CycleStatus.CLOSING:
        moved = await move_cycle(session, cycle, CycleStatus.ACTIVE, actor_id=actor_id, at=at, via=via)
    if moved is None:
        fresh = await _fresh(session, cycle)
        raise KickoffError("cycle_close.not_closing", code=fresh.code)
    return moved


async def close_cycle(
    session: AsyncSession,
    outbox: Outbox,
    settings: Settings,
    cycle: Cycle,
    *,
    mode: CloseMode,
    actor_id: int | None,
    at: datetime,
    via: str,
) -> CloseResult:
    """Close ``cycle`` (active or closing) in the caller's transaction: closing → closed with who, when
    and how (an active cycle passes through closing, both moves audited), settle the open items as
    ``mode`` says, send everyone in scope the closing card and put their kickoff card in its final state.

    The move to closed comes first, by compare-and-set: a second close racing this one finds the cycle no
    longer closing and is refused. The items are settled by compare-and-set too, so a check-in submitted
    at the same moment is either answered (and left alone) or cancelled (and its late answer refused),
    never both. Raises ``KickoffError`` when the cycle cannot be closed, saying why.
    """
    cycle = await begin_closing(session, settings, cycle, actor_id=actor_id, at=at, via=via)
    counts = await close_preview(session, cycle)
    closed = await move_cycle(
        session,
        cycle,
        CycleStatus.CLOSED,
        actor_id=actor_id,
        at=at,
        via=via,
        values={"closed_at": at, "closed_by_id": actor_id, "close_mode": mode},
        mode=str(mode),
        open={
            "ungraded": counts.ungraded,
            "unreleased": counts.unreleased,
            "checkins": counts.open_checkins,
            "action_items": counts.open_action_items,
            "unrated_deliverables": counts.unrated_deliverables,
            "pending_appeals": counts.pending_appeals,
        },
    )
    if closed is None:
        raise await _refuse_moved(session, cycle, settings)
    if mode == CloseMode.CANCEL:
        checkins, items, ratings = await _cancel_open(session, closed, actor_id=actor_id, at=at)
    else:
        checkins, items, ratings = await _carry_over(session, closed)
    people = await cq.active_participants(session, closed.id)
    rows = await _announce(outbox, settings, closed, people, mode)
    await _settle_kickoff_cards(session, outbox, settings, closed, people)
    await session.flush()
    return CloseResult(counts, mode, checkins, items, ratings, len(people), rows)


async def _carry_over(session: AsyncSession, cycle: Cycle) -> tuple[int, int, int]:
    """Open items stay open. A check-in moves to the person's other running cycle (its plan and goals are
    that cycle's now), or to none; items and ratings belong to no cycle and need nothing."""
    open_checkins = await cq.cycle_checkins(session, cycle.id, [CheckInStatus.OPEN])
    target = await cq.other_active_cycle_of(
        session, [p for _, p in open_checkins], cycle.id, [CycleStatus.ACTIVE]
    )
    groups: dict[int | None, list[int]] = {}
    for checkin_id, person_id in open_checkins:
        groups.setdefault(target.get(person_id), []).append(checkin_id)
    moved = 0
    for cycle_id, ids in groups.items():
        moved += len(
            await cq.settle_rows(
                session, CheckIn, ids, allowed=[CheckInStatus.OPEN], values={"cycle_id": cycle_id}
            )
        )
    items = await cq.participants_action_items(session, cycle.id, OPEN_ACTION_ITEM)
    ratings = await cq.participants_ratings(session, cycle.id, [RatingStatus.OPEN], goal_kind=GOAL_KIND)
    return moved, len(items), len({(kind, ref) for _, kind, ref in ratings})


async def _cancel_open(
    session: AsyncSession, cycle: Cycle, *, actor_id: int | None, at: datetime
) -> tuple[int, int, int]:
    """Open check-ins → missed, open action items → closed, open ratings → expired; each changed row gets
    its own audit row (``checkin.missed``, ``action_item.closed``, ``rating.expired``) naming the close."""
    checkin_ids = [i for i, _ in await cq.cycle_checkins(session, cycle.id, [CheckInStatus.OPEN])]
    missed = await cq.settle_rows(
        session, CheckIn, checkin_ids, allowed=[CheckInStatus.OPEN], values={"status": CheckInStatus.MISSED}
    )
    item_ids = await cq.participants_action_items(session, cycle.id, OPEN_ACTION_ITEM)
    closed = await cq.settle_rows(
        session,
        ActionItem,
        item_ids,
        allowed=OPEN_ACTION_ITEM,
        values={"status": ActionItemStatus.CLOSED, "closed_at": at},
    )
    ratings = await cq.participants_ratings(session, cycle.id, [RatingStatus.OPEN], goal_kind=GOAL_KIND)
    expired = await cq.settle_rows(
        session,
        DeliverableRating,
        [i for i, _, _ in ratings],
        allowed=[RatingStatus.OPEN],
        values={"status": RatingStatus.EXPIRED},
    )
    detail = {"via": "cycle.close", "cycle": cycle.code}
    audit = [
        {"at": at, "actor_id": actor_id, "action": action, "entity": entity, "entity_id": i, "detail": detail}
        for action, entity, ids in (
            ("checkin.missed", "checkin", missed),
            ("action_item.closed", "action_item", closed),
            ("rating.expired", "deliverable_rating", expired),
        )
        for i in ids
    ]
    for start in range(0, len(audit), 5000):
        await session.execute(insert(AuditLog), audit[start : start + 5000])
    gone = set(expired)
    return len(missed), len(closed), len({(kind, ref) for i, kind, ref in ratings if i in gone})


async def _announce(
    outbox: Outbox, settings: Settings, cycle: Cycle, people: list[pq.Member], mode: CloseMode
) -> int:
    """The closing card, once per person, in the platform's multi-recipient batches (like the kickoff)."""

    def build(t: Translator) -> Card:
        return closing_card(
            t,
            code=cycle.code,
            starts_on=cycle.starts_on,
            ends_on=cycle.ends_on,
            closed_on=closed_on(cycle, settings),
            mode=mode.word,
            late=settings.cycles.late_submissions,
        )

    return await outbox.broadcast(
        people, build, card_key=f"cycle_close:{cycle.id}", dedupe_prefix=f"cycle_close:{cycle.id}"
    )


async def _settle_kickoff_cards(
    session: AsyncSession, outbox: Outbox, settings: Settings, cycle: Cycle, people: list[pq.Member]
) -> None:
    """Put each person's kickoff card in its final state: its "got it" and goal buttons can only be
    refused once the cycle is closed. Delivered copies are updated in bulk (a company-wide cycle has one
    per person); the few still queued go through ``Outbox.supersede``, which knows a send in flight."""
    key = f"kickoff:{cycle.id}"
    workspace = outbox.workspace
    queued = await cq.queued_recipients(session, workspace.id, key, QUEUED)
    refs = await cq.delivered_refs(session, workspace.platform, key)
    if not queued and not refs:
        return
    managers = await pq.manager_ids_among(session, people)
    finals: dict[tuple[str, bool], Card] = {}
    dumps: dict[tuple[str, bool], dict[str, object]] = {}

    def final(locale: str, manager: bool) -> Card:
        if (locale, manager) not in finals:
            t = Translator(locale)
            card = kickoff_card(
                t,
                cycle_id=cycle.id,
                code=cycle.code,
                starts_on=cycle.starts_on,
                ends_on=cycle.ends_on,
                schedule=settings.schedule,
                max_goals=settings.cycles.max_goals,
                manager=manager,
            )
            note = t("cycle_close.kickoff_closed", code=cycle.code, date=closed_on(cycle, settings))
            finals[(locale, manager)] = with_outcome(card, note)
            dumps[(locale, manager)] = finals[(locale, manager)].model_dump(
                mode="json", exclude_defaults=False
            )
        return finals[(locale, manager)]

    rows = []
    for member in people:
        uid = member.platform_user_id
        variant = (Translator(member.locale).locale, member.id in managers)
        card = final(*variant)
        if uid in queued:
            person = await session.get(Person, member.id)
            assert person is not None
            await outbox.supersede(person, key, card)
        elif uid in refs:
            rows.append(
                {
                    "workspace_id": workspace.id,
                    "platform": workspace.platform,
                    "op": "update",
                    "recipients": [uid],
                    "card": dumps[variant],
                    "target_ref": refs[uid],
                    "next_attempt_at": outbox.now,
                }
            )
    for start in range(0, len(rows), 5000):
        await session.execute(insert(OutboxMessage), rows[start : start + 5000])
