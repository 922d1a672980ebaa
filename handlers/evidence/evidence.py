"""Photo evidence: request, attach, rate, and the two rules that watch the ratings and the gaps.

A manager asks with ``/evidence @张三 [#item]`` (or the owner taps "send a photo" on an action item, or a
rule calls ``request_evidence``): the employee gets a card and an open ``EvidenceRequest`` that accepts
images until ``[evidence] attach_window_minutes`` have passed. Each image is downloaded through the
adapter and checked by ``storage.media`` before anything is written; a rejected file leaves no row and
no bytes behind. The rater (whoever asked, else the acceptor, else the line manager) gets the photo with
达标 / 待提升 / 需支持; "需支持" opens a follow-up action item for the rater.

Rules: ``check_evidence_rules`` (weekly, per employee) tells the director about required actions without
a photo for ``missing_weeks_to_director`` weeks; a rating of "needs improvement" that completes a streak of
``needs_improvement_streak`` on the same action sends the coaching note for that action type.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from sqlalchemy import exists, select

from bot.core.context import Context, Reply
from bot.core.errors import DeliveryError
from bot.core.forms import form_of, text
from bot.core.people import director_of, find_by_mention, is_manager_of, manager_of
from bot.core.router import Router
from bot.core.schedule import Entry, Job, ScheduleEntry, WeekArgs
from bot.core.status import ATTACHABLE_EVIDENCE_REQUEST, OPEN_ACTION_ITEM, EvidenceRequestStatus
from cards.action_items import ActionPhoto
from cards.catalogue import DEFAULT_LOCALE, Translator, messages
from cards.evidence import (
    RATINGS,
    EvidenceAssign,
    EvidenceDiscard,
    EvidenceRate,
    assign_card,
    coaching_card,
    missing_card,
    rating_card,
    rating_form,
    request_card,
)
from cards.model import Card, Form
from cards.notice import notice_card
from handlers.action_items.api import load_item, open_action_item, record_first_response
from storage.media import MediaRejected, MediaStore
from storage.models import ActionItem, Evidence, EvidenceRequest, Person
from storage.queries.once import done_before

router = Router()

SUPPORT_FOLLOWUP_DAYS = 7
"""Deadline of the manager's follow-up item opened by a "needs support" rating."""
WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def media_store(ctx: Context) -> MediaStore:
    return MediaStore(ctx.settings.media.dir, max_bytes=ctx.settings.media.max_image_bytes)


# ------------------------------------------------------------------ requesting


async def request_evidence(
    ctx: Context, *, person: Person, item: ActionItem | None, requested_by: Person
) -> EvidenceRequest:
    """Open a request and send the "send a photo" card; usable by rules (e.g. every Wednesday for item X)."""
    expires = ctx.now + timedelta(minutes=ctx.settings.evidence.attach_window_minutes)
    req = EvidenceRequest(
        person_id=person.id,
        action_item_id=item.id if item else None,
        requested_by_id=requested_by.id,
        status=EvidenceRequestStatus.OPEN,
        requested_at=ctx.now,
        expires_at=expires,
    )
    ctx.session.add(req)
    await ctx.session.flush()
    t = ctx.translator(person)
    ctx.outbox.send(
        person,
        request_card(
            t,
            requester=requested_by.name,
            deliverable=item.deliverable if item else None,
            expires=ctx.local_text(expires, person),
        ),
        card_key=f"evidence-request:{req.id}",
    )
    ctx.audit(
        "evidence.requested",
        "evidence_request",
        req.id,
        person_id=person.id,
        action_item_id=item.id if item else None,
    )
    return req


@router.command("evidence", "证据", "photo")
async def evidence_command(ctx: Context, args: str) -> Reply:
    """``/evidence @张三`` or ``/evidence @张三 12`` (12 = the action item the photo is for)."""
    tokens = args.split()
    if not tokens or not tokens[0].startswith(("@", "＠")) or len(tokens) > 2:
        raise ctx.refuse("evidence.usage")
    matches = await find_by_mention(ctx.session, ctx.workspace.id, tokens[0])
    if not matches:
        raise ctx.refuse("evidence.no_such_person", name=tokens[0])
    if len(matches) > 1:
        raise ctx.refuse("evidence.ambiguous_person", name=tokens[0], count=len(matches))
    person = matches[0]
    if not await is_manager_of(ctx.session, ctx.person, person):
        raise ctx.refuse("common.not_allowed")
    item: ActionItem | None = None
    if len(tokens) == 2:
        raw = tokens[1].lstrip("#")
        found = await ctx.session.get(ActionItem, int(raw)) if raw.isdigit() else None
        if found is None or found.owner_id != person.id or found.status not in OPEN_ACTION_ITEM:
            raise ctx.refuse("evidence.no_such_item", ref=tokens[1], name=person.name)
        item = found
    await request_evidence(ctx, person=person, item=item, requested_by=ctx.person)
    return Reply(toast=ctx.t("evidence.requested", name=person.name))


@router.action(ActionPhoto)
async def photo_for_item(ctx: Context, payload: ActionPhoto) -> Reply:
    """The owner's "send a photo" button on an action item opens a request for that item."""
    item, owner = await load_item(ctx, payload.item_id)
    if owner.id != ctx.person.id:
        raise ctx.refuse("common.not_allowed")
    if item.status not in OPEN_ACTION_ITEM:
        raise ctx.refuse("common.already_done")
    await request_evidence(ctx, person=owner, item=item, requested_by=owner)
    return Reply(toast=ctx.t("evidence.send_now", minutes=ctx.settings.evidence.attach_window_minutes))


# ------------------------------------------------------------------ receiving images


async def _open_request(ctx: Context) -> EvidenceRequest | None:
    return await ctx.session.scalar(
        select(EvidenceRequest)
        .where(
            EvidenceRequest.person_id == ctx.person.id,
            EvidenceRequest.status.in_(ATTACHABLE_EVIDENCE_REQUEST),
            EvidenceRequest.expires_at > ctx.now,
        )
        .order_by(EvidenceRequest.requested_at.desc(), EvidenceRequest.id.desc())
        .limit(1)
    )


async def _open_items(ctx: Context) -> list[tuple[int, str]]:
    rows = await ctx.session.execute(
        select(ActionItem.id, ActionItem.deliverable)
        .where(ActionItem.owner_id == ctx.person.id, ActionItem.status.in_(OPEN_ACTION_ITEM))
        .order_by(ActionItem.deadline, ActionItem.id)
        .limit(5)
    )
    return [(r[0], r[1]) for r in rows]


@router.image()
async def on_image(ctx: Context, media_ref: str) -> Reply | None:
    """Attach to the open request, or ask which open item the photo is for. With neither, the image is left
    to the other image handlers (and finally the dispatcher's "nothing open"), and nothing is downloaded."""
    request = await _open_request(ctx)
    items: list[tuple[int, str]] = []
    if request is None:
        items = await _open_items(ctx)
        if not items:
            return None
    limit_mb = max(1, ctx.settings.media.max_image_bytes // (1024 * 1024))
    try:
        data = await ctx.download(media_ref)
    except DeliveryError:
        return Reply(toast=ctx.t("evidence.download_failed", limit=limit_mb), toast_kind="error")
    try:
        stored = await media_store(ctx).store_image(data)
    except MediaRejected as rejected:
        return Reply(toast=ctx.t(f"evidence.rejected_{rejected.reason}", limit=limit_mb), toast_kind="error")
    info = stored.info
    evidence = Evidence(
        person_id=ctx.person.id,
        action_item_id=request.action_item_id if request else None,
        request_id=request.id if request else None,
        file_path=str(stored.path),
        sha256=info.sha256,
        size=info.size,
        mime=info.mime,
        captured_at=info.captured_at(ctx.zone()),
        received_at=ctx.now,
        platform_media_ref=media_ref[:500],
    )
    ctx.session.add(evidence)
    await ctx.session.flush()
    ctx.audit(
        "evidence.received", "evidence", evidence.id, sha256=info.sha256, request_id=evidence.request_id
    )
    if request is None:
        return Reply(card=assign_card(ctx.t, evidence_id=evidence.id, items=items))
    if request.status == EvidenceRequestStatus.OPEN:
        request.status = EvidenceRequestStatus.FULFILLED
    item = await ctx.session.get(ActionItem, request.action_item_id) if request.action_item_id else None
    if item is not None and item.owner_id == ctx.person.id:
        await record_first_response(ctx, item, ctx.now)
    await _send_for_rating(ctx, evidence, item, request)
    what = item.deliverable if item else ctx.t("evidence.request_general")
    return Reply(toast=ctx.t("evidence.attached", what=what[:100]))


async def _rater(
    ctx: Context, person: Person, item: ActionItem | None, request: EvidenceRequest | None
) -> Person | None:
    """Who rates: whoever asked (if not the employee), else the item's acceptor, else the line manager."""
    for candidate_id in (request.requested_by_id if request else None, item.acceptor_id if item else None):
        if candidate_id is not None and candidate_id != person.id:
            candidate = await ctx.session.get(Person, candidate_id)
            if candidate is not None and candidate.active:
                return candidate
    return await manager_of(ctx.session, person)


def _rating_card_for(
    ctx: Context,
    ev: Evidence,
    person: Person,
    viewer: Person,
    item: ActionItem | None,
    rated_by: str | None = None,
) -> Card:
    return rating_card(
        ctx.translator(viewer),
        evidence_id=ev.id,
        sha256=ev.sha256,
        person=person.name,
        deliverable=item.deliverable if item else None,
        received=ctx.local_text(ev.received_at, viewer),
        captured=ctx.local_text(ev.captured_at, viewer) if ev.captured_at else None,
        rated=ev.rating if ev.rating in RATINGS else None,
        rated_by=rated_by,
        comment=ev.comment,
    )


async def _send_for_rating(
    ctx: Context, ev: Evidence, item: ActionItem | None, request: EvidenceRequest | None
) -> None:
    person = ctx.person
    rater = await _rater(ctx, person, item, request)
    if rater is None:
        return
    ctx.outbox.send(rater, _rating_card_for(ctx, ev, person, rater, item), card_key=f"evidence:{ev.id}")


@router.action(EvidenceAssign)
async def assign(ctx: Context, payload: EvidenceAssign) -> Reply:
    ev = await ctx.session.get(Evidence, payload.evidence_id)
    if ev is None or ev.person_id != ctx.person.id:
        raise ctx.refuse("common.not_allowed")
    item, owner = await load_item(ctx, payload.item_id)
    if owner.id != ctx.person.id or item.status not in OPEN_ACTION_ITEM:
        raise ctx.refuse("common.not_allowed")
    updated = await ctx.transition_or_refuse(
        Evidence,
        ev.id,
        column="action_item_id",
        allowed=[None],
        values={"action_item_id": item.id},
    )
    await record_first_response(ctx, item, ctx.now)
    ctx.audit("evidence.assigned", "evidence", ev.id, action_item_id=item.id)
    await _send_for_rating(ctx, updated, item, None)
    card = notice_card(
        ctx.t,
        ctx.t("evidence.assign_title"),
        ctx.t("evidence.attached", what=item.deliverable[:100]),
        colour="green",
    )
    return Reply(toast=ctx.t("evidence.attached", what=item.deliverable[:100]), card=card)


@router.action(EvidenceDiscard)
async def discard(ctx: Context, payload: EvidenceDiscard) -> Reply:
    """Forget an unassigned photo's record. The bytes stay: content-addressed files may be shared."""
    ev = await ctx.session.get(Evidence, payload.evidence_id)
    if ev is None or ev.person_id != ctx.person.id:
        raise ctx.refuse("common.not_allowed")
    if ev.action_item_id is not None or ev.request_id is not None:
        raise ctx.refuse("common.already_done")
    await ctx.session.delete(ev)
    ctx.audit("evidence.discarded", "evidence", payload.evidence_id)
    card = notice_card(ctx.t, ctx.t("evidence.assign_title"), ctx.t("evidence.discarded"), colour="grey")
    return Reply(toast=ctx.t("evidence.discarded"), card=card)


# ------------------------------------------------------------------ rating


async def _rate_form(ctx: Context, payload: EvidenceRate) -> Form:
    return rating_form(ctx.t, payload.evidence_id)


@router.action(EvidenceRate, form=_rate_form)
async def rate(ctx: Context, payload: EvidenceRate) -> Reply:
    ev = await ctx.session.get(Evidence, payload.evidence_id)
    person = await ctx.session.get(Person, ev.person_id) if ev is not None else None
    if ev is None or person is None or person.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    item = await ctx.session.get(ActionItem, ev.action_item_id) if ev.action_item_id else None
    request = await ctx.session.get(EvidenceRequest, ev.request_id) if ev.request_id else None
    rater = await _rater(ctx, person, item, request)
    allowed = ctx.person.id != person.id and (
        (rater is not None and rater.id == ctx.person.id)
        or await is_manager_of(ctx.session, ctx.person, person)
    )
    if not allowed:
        raise ctx.refuse("common.not_allowed")
    rating = payload.rating or text(form_of(ctx), "rating")
    if rating not in RATINGS:
        raise ctx.refuse("evidence.rating_missing")
    comment = text(form_of(ctx), "comment") or None
    updated = await ctx.transition_or_refuse(
        Evidence,
        ev.id,
        column="rating",
        allowed=[None],
        values={"rating": rating, "rated_by_id": ctx.person.id, "rated_at": ctx.now, "comment": comment},
    )
    ctx.audit("evidence.rated", "evidence", ev.id, rating=rating)
    t = ctx.translator(person)
    body = t(
        "evidence.rated_body",
        name=ctx.person.name,
        rating=t(f"evidence.rating.{rating}"),
        what=(item.deliverable if item else t("evidence.request_general"))[:200],
    )
    if comment:
        body += "\n" + t("evidence.rated_comment", comment=comment)
    ctx.outbox.send(person, notice_card(t, t("evidence.rated_title"), body, colour="green"))
    if rating == "support":
        what = item.deliverable if item else t("evidence.request_general")
        await open_action_item(
            ctx,
            owner=ctx.person,
            acceptor=person,
            source="evidence",
            source_id=ev.id,
            deliverable=ctx.t(
                "evidence.support_deliverable", name=person.name, what=what[:200], comment=comment or "-"
            ),
            deadline=ctx.today() + timedelta(days=SUPPORT_FOLLOWUP_DAYS),
        )
    elif rating == "improve":
        await _coaching_rule(ctx, updated, person, item)
    card = _rating_card_for(ctx, updated, person, ctx.person, item, rated_by=ctx.person.name)
    return Reply(toast=ctx.t("evidence.rated_toast"), card=card)


def coaching_note(t: Translator, action_type: str | None) -> str:
    """The note configured in the catalogue for this action type (``evidence.coaching.<type>``), else the
    default. Adding a note for a new action type is a two-line catalogue change, no code."""
    if action_type:
        key = f"evidence.coaching.{action_type}"
        if key in messages(t.locale) or key in messages(DEFAULT_LOCALE):
            return t(key)
    return t("evidence.coaching.default")


async def _coaching_rule(ctx: Context, ev: Evidence, person: Person, item: ActionItem | None) -> bool:
    """Sent once, when this rating completes a streak of exactly ``needs_improvement_streak`` on the action
    (same action type if the item has one, else the same item)."""
    streak = ctx.settings.evidence.needs_improvement_streak
    stmt = select(Evidence.rating).where(Evidence.person_id == person.id, Evidence.rating.is_not(None))
    if item is not None and item.action_type:
        stmt = stmt.join(ActionItem, ActionItem.id == Evidence.action_item_id).where(
            ActionItem.action_type == item.action_type
        )
    elif item is not None:
        stmt = stmt.where(Evidence.action_item_id == item.id)
    else:
        stmt = stmt.where(Evidence.action_item_id.is_(None))
    ratings = list(
        await ctx.session.scalars(
            stmt.order_by(Evidence.rated_at.desc(), Evidence.id.desc()).limit(streak + 1)
        )
    )
    run = 0
    for r in ratings:
        if r != "improve":
            break
        run += 1
    if run != streak:
        return False
    t = ctx.translator(person)
    what = item.deliverable if item else t("evidence.request_general")
    ctx.outbox.send(
        person,
        coaching_card(
            t,
            deliverable=what[:200],
            note=coaching_note(t, item.action_type if item else None),
            streak=streak,
        ),
        dedupe_key=f"evidence-coaching:{ev.id}",
    )
    ctx.audit("evidence.coaching_sent", "evidence", ev.id, action_type=item.action_type if item else None)
    return True


# ------------------------------------------------------------------ the weekly rule


def week_bounds(week: str, weeks: int) -> tuple[date, date]:
    """``2026-W48``, 2 → (Monday of W47, Monday of W49): the last ``weeks`` ISO weeks ending with ``week``."""
    m = WEEK.match(week)
    if m is None:
        raise ValueError(f"week must look like 2026-W48, not {week!r}")
    monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    return monday - timedelta(weeks=weeks - 1), monday + timedelta(weeks=1)


async def check_evidence_rules(ctx: Context, *, week: str) -> int:
    """Scheduler entry point (ctx.person = the employee): alert the director about required actions that
    had no photo in any of the last ``missing_weeks_to_director`` weeks. Returns the alerts sent (0 or 1:
    one card lists every such action). Each action is reported once per week."""
    person = ctx.person
    weeks = ctx.settings.evidence.missing_weeks_to_director
    first, end = week_bounds(week, weeks)
    tz = ctx.zone(person)
    start_at = datetime.combine(first, time(0), tzinfo=tz)
    end_at = datetime.combine(end, time(0), tzinfo=tz)
    photo = exists().where(
        Evidence.action_item_id == ActionItem.id,
        Evidence.received_at >= start_at,
        Evidence.received_at < end_at,
    )
    rows = list(
        await ctx.session.execute(
            select(ActionItem.id, ActionItem.deliverable)
            .where(
                ActionItem.owner_id == person.id,
                ActionItem.evidence_required.is_(True),
                ActionItem.status.in_(OPEN_ACTION_ITEM),
                ActionItem.created_at < start_at,
                ~photo,
            )
            .order_by(ActionItem.id)
        )
    )
    key = f"missing:{week}"
    fresh: list[tuple[int, str]] = []
    for item_id, deliverable in rows:
        if not await done_before(
            ctx.session, action="evidence.missing_alert", entity="action_item", entity_id=item_id, key=key
        ):
            fresh.append((item_id, deliverable))
    if not fresh:
        return 0
    director = await director_of(ctx.session, person)
    if director is None:
        return 0
    t = ctx.translator(director)
    ctx.outbox.send(
        director,
        missing_card(t, person=person.name, items=fresh, weeks=weeks),
        dedupe_key=f"evidence-missing:{person.id}:{week}",
    )
    for item_id, _ in fresh:
        ctx.audit("evidence.missing_alert", "action_item", item_id, key=key, director_id=director.id)
    return 1


# ------------------------------------------------------------------ schedule entries
SCHEDULE: tuple[ScheduleEntry, ...] = (
    Entry(Job.CHECK_EVIDENCE_RULES, WeekArgs, lambda ctx, a: check_evidence_rules(ctx, week=a.week)),
)
