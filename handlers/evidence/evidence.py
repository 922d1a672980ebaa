"""Photo evidence: request, attach, rate, expire, and the two rules that watch the ratings and the gaps.

A manager asks with ``/evidence @张三 [#item]`` (or the owner taps "send a photo" on an action item, or a
rule calls ``request_evidence``): the employee gets a card and an open ``EvidenceRequest`` that accepts
images until it closes: by default at the end of the person's next workday in their zone (people answer
from their phone hours later), or ``[evidence] attach_window_minutes`` after the request when that is set.
Each image is downloaded through the adapter and checked by ``storage.media`` before anything is written; a
rejected file leaves no row and no bytes behind, and the sender is told in their language what is accepted
(the technical reason goes to the log). The rater (whoever asked, else the acceptor, else the line manager)
gets the photo with one form: 达标 / 待提升 / 需支持 and a comment; "需支持" opens a follow-up action item
for the rater. Every outcome tells both sides what happens next.

A request that closes without a photo is expired by ``sweep_evidence_requests`` (every tick): its status
becomes ``expired`` (``expires_at`` is when), the employee's card says so, and the digest reports it.

A request may name the key result its photo proves (a rhythm's request, ``handlers/evidence/rhythm.py``, or
an item linked to one); the photo then carries it and the rater's card names it (``binding.py``).

Rules: ``check_evidence_rules`` (weekly, per employee) tells the director about required actions without
a photo for ``missing_weeks_to_director`` weeks; a rating of "needs improvement" that completes a streak of
``needs_improvement_streak`` on the same action sends the coaching note for that action type.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import exists, select

from bot.core.context import Context, Reply
from bot.core.errors import DeliveryError
from bot.core.forms import form_of, text
from bot.core.notify import send_polite
from bot.core.people import director_of, find_by_mention, is_manager_of, manager_of
from bot.core.router import Router
from bot.core.schedule import Entry, Host, Job, ScheduleEntry, Sweep, WeekArgs
from bot.core.status import ATTACHABLE_EVIDENCE_REQUEST, OPEN_ACTION_ITEM, EvidenceRequestStatus
from bot.core.vague import must_bounce
from cards.action_items import ActionPhoto
from cards.catalogue import DEFAULT_LOCALE, Translator, messages
from cards.evidence import (
    EvidenceAssign,
    EvidenceDiscard,
    EvidenceRate,
    RequestState,
    as_rating,
    assign_card,
    coaching_card,
    missing_card,
    rated_card,
    rating_card,
    rating_form,
    request_card,
)
from cards.model import Card, Form
from cards.notice import notice_card
from handlers.action_items.api import load_item, open_action_item, record_first_response
from handlers.digest.api import reads_digest
from handlers.evidence.binding import NO_BINDING, Binding, binding_of
from storage.media import MediaRejected, MediaStore
from storage.models import ActionItem, Evidence, EvidenceRequest, KeyResultRhythm, Person
from storage.queries.once import done_before
from storage.queries.status import transition

log = logging.getLogger("perfloop.evidence")
router = Router()

SUPPORT_FOLLOWUP_DAYS = 7
"""Deadline of the manager's follow-up item opened by a "needs support" rating."""
WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def media_store(ctx: Context) -> MediaStore:
    return MediaStore(ctx.settings.media.dir, max_bytes=ctx.settings.media.max_image_bytes)


# ------------------------------------------------------------------ requesting

REQUEST_DAY_ENDS = time(23, 59, 59)
"""A request that runs "to the end of the next workday" closes at this local time of that day."""


def request_closes_at(ctx: Context, person: Person) -> datetime:
    """When a request opened now for ``person`` stops taking photos: ``attach_window_minutes`` from now when
    that is configured, else the end of the person's next workday in their zone (scheduler calendar)."""
    minutes = ctx.settings.evidence.attach_window_minutes
    if minutes is not None:
        return ctx.now + timedelta(minutes=minutes)
    day = ctx.scheduler().workday_after(ctx.today(person))
    return datetime.combine(day, REQUEST_DAY_ENDS, tzinfo=ctx.zone(person)).astimezone(UTC)


def request_key(request_id: int) -> str:
    return f"evidence-request:{request_id}"


async def _request_card_for(ctx: Context, req: EvidenceRequest, person: Person, state: RequestState) -> Card:
    """The employee's request card rebuilt from the row, in ``state`` (to update the one sent)."""
    requester = await ctx.session.get(Person, req.requested_by_id) if req.requested_by_id else None
    item = await ctx.session.get(ActionItem, req.action_item_id) if req.action_item_id else None
    asked_by = requester if requester is not None and requester.id != person.id else None
    contact = asked_by or await manager_of(ctx.session, person)
    bound = await binding_of(ctx.session, key_result_id=req.key_result_id, rhythm_id=req.rhythm_id)
    t = ctx.translator(person)
    return request_card(
        t,
        requester=asked_by.name if asked_by else None,
        deliverable=bound.what(t, item),
        expires=ctx.local_text(req.expires_at, person),
        state=state,
        contact=contact.name if contact else person.name,
        key_result=bound.key_result,
    )


async def request_evidence(
    ctx: Context,
    *,
    person: Person,
    item: ActionItem | None,
    requested_by: Person,
    rhythm: KeyResultRhythm | None = None,
    closes_at: datetime | None = None,
) -> EvidenceRequest:
    """Open a request and send the "send a photo" card; usable by rules (e.g. every Wednesday for item X).

    The request names the key result its photo proves: a ``rhythm``'s, else the item's (issue 17 item 7).
    ``closes_at`` overrides when it stops taking photos (a rhythm's request: the end of its day)."""
    req = EvidenceRequest(
        person_id=person.id,
        action_item_id=item.id if item else None,
        requested_by_id=requested_by.id,
        status=EvidenceRequestStatus.OPEN,
        requested_at=ctx.now,
        expires_at=closes_at or request_closes_at(ctx, person),
        key_result_id=rhythm.key_result_id if rhythm else (item.key_result_id if item else None),
        rhythm_id=rhythm.id if rhythm else None,
    )
    ctx.session.add(req)
    await ctx.session.flush()
    ctx.outbox.send(person, await _request_card_for(ctx, req, person, "open"), card_key=request_key(req.id))
    ctx.audit(
        "evidence.requested",
        "evidence_request",
        req.id,
        person_id=person.id,
        action_item_id=item.id if item else None,
        expires_at=req.expires_at.isoformat(),
        key_result_id=req.key_result_id,
        rhythm_id=req.rhythm_id,
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
        raise ctx.refuse("common.not_allowed_manager", name=person.name)
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
        raise ctx.refuse("common.not_allowed_owner", name=owner.name)
    if item.status not in OPEN_ACTION_ITEM:
        raise ctx.refuse("common.already_done")
    req = await request_evidence(ctx, person=owner, item=item, requested_by=owner)
    return Reply(toast=ctx.t("evidence.send_now", expires=ctx.local_text(req.expires_at)))


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
    except DeliveryError as failed:
        log.info("evidence image not downloaded", extra={"person_id": ctx.person.id, "detail": str(failed)})
        return _rejected(ctx, ctx.t("evidence.download_failed", limit=limit_mb))
    try:
        stored = await media_store(ctx).store_image(data)
    except MediaRejected as rejected:
        log.info(
            "evidence image rejected",
            extra={"person_id": ctx.person.id, "reason": rejected.reason, "detail": str(rejected)},
        )
        return _rejected(ctx, ctx.t(f"evidence.rejected_{rejected.reason}", limit=limit_mb))
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
        key_result_id=request.key_result_id if request else None,
    )
    ctx.session.add(evidence)
    await ctx.session.flush()
    ctx.audit(
        "evidence.received", "evidence", evidence.id, sha256=info.sha256, request_id=evidence.request_id
    )
    if request is None:
        return Reply(card=assign_card(ctx.t, evidence_id=evidence.id, items=items))
    if request.status == EvidenceRequestStatus.OPEN and await transition(
        ctx.session,
        EvidenceRequest,
        request.id,
        allowed=[EvidenceRequestStatus.OPEN],
        values={"status": EvidenceRequestStatus.FULFILLED},
    ):
        received = await _request_card_for(ctx, request, ctx.person, "received")
        await ctx.outbox.supersede(ctx.person, request_key(request.id), received)
    item = await ctx.session.get(ActionItem, request.action_item_id) if request.action_item_id else None
    if item is not None and item.owner_id == ctx.person.id:
        await record_first_response(ctx, item, ctx.now)
    rater = await _send_for_rating(ctx, evidence, item, request)
    bound = await binding_of(ctx.session, key_result_id=request.key_result_id, rhythm_id=request.rhythm_id)
    what = bound.what(ctx.t, item) or ctx.t("evidence.request_general")
    return Reply(card=_received_card(ctx, what, rater))


def _rejected(ctx: Context, message: str) -> Reply:
    """A photo that was not kept: said in the sender's language, with what would be accepted."""
    card = notice_card(ctx.t, ctx.t("evidence.rejected_title"), message, colour="orange")
    return Reply(toast=message[:200], toast_kind="error", card=card)


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
    *,
    rated_by: str | None = None,
    next_step: str | None = None,
    chosen: str | None = None,
    comment: str | None = None,
    warning: str | None = None,
    bound: Binding = NO_BINDING,
) -> Card:
    rated = as_rating(ev.rating)
    t = ctx.translator(viewer)
    return rating_card(
        t,
        evidence_id=ev.id,
        sha256=ev.sha256,
        person=person.name,
        deliverable=bound.what(t, item),
        key_result=bound.key_result,
        received=ctx.local_text(ev.received_at, viewer),
        captured=ctx.local_text(ev.captured_at, viewer) if ev.captured_at else None,
        rated=rated,
        rated_by=rated_by,
        comment=ev.comment if rated else comment,
        next_step=next_step,
        chosen=chosen,
        warning=warning,
    )


async def _send_for_rating(
    ctx: Context, ev: Evidence, item: ActionItem | None, request: EvidenceRequest | None
) -> Person | None:
    """Send the photo to its rater; returns who that is (None: nobody can rate it)."""
    person = ctx.person
    rater = await _rater(ctx, person, item, request)
    if rater is None:
        return None
    bound = await _binding_for(ctx, ev, request)
    card = _rating_card_for(ctx, ev, person, rater, item, bound=bound)
    ctx.outbox.send(rater, card, card_key=f"evidence:{ev.id}")
    return rater


async def _binding_for(ctx: Context, ev: Evidence, request: EvidenceRequest | None) -> Binding:
    """The key result a photo proves and the rhythm its request came from."""
    rhythm_id = request.rhythm_id if request is not None else None
    return await binding_of(ctx.session, key_result_id=ev.key_result_id, rhythm_id=rhythm_id)


@router.action(EvidenceAssign)
async def assign(ctx: Context, payload: EvidenceAssign) -> Reply:
    ev = await ctx.session.get(Evidence, payload.evidence_id)
    if ev is None or ev.person_id != ctx.person.id:
        raise ctx.refuse("evidence.not_your_photo")
    item, owner = await load_item(ctx, payload.item_id)
    if owner.id != ctx.person.id or item.status not in OPEN_ACTION_ITEM:
        raise ctx.refuse("evidence.not_your_item")
    updated = await ctx.transition_or_refuse(
        Evidence,
        ev.id,
        column="action_item_id",
        allowed=[None],
        values={"action_item_id": item.id, "key_result_id": item.key_result_id},
    )
    await record_first_response(ctx, item, ctx.now)
    ctx.audit("evidence.assigned", "evidence", ev.id, action_item_id=item.id)
    rater = await _send_for_rating(ctx, updated, item, None)
    return Reply(
        toast=ctx.t("evidence.attached", what=item.deliverable[:100]),
        card=_received_card(ctx, item.deliverable, rater),
    )


def _received_card(ctx: Context, what: str, rater: Person | None) -> Card:
    """The sender's receipt: where the photo went and who rates it next."""
    body = ctx.t("evidence.attached", what=what[:200])
    body += "\n" + (ctx.t("evidence.sent_to_rater", name=rater.name) if rater else ctx.t("evidence.no_rater"))
    return notice_card(ctx.t, ctx.t("evidence.received_title"), body, colour="green")


@router.action(EvidenceDiscard)
async def discard(ctx: Context, payload: EvidenceDiscard) -> Reply:
    """Forget an unassigned photo's record. The bytes stay: content-addressed files may be shared."""
    ev = await ctx.session.get(Evidence, payload.evidence_id)
    if ev is None or ev.person_id != ctx.person.id:
        raise ctx.refuse("evidence.not_your_photo")
    if ev.action_item_id is not None or ev.request_id is not None:
        raise ctx.refuse("common.already_done")
    await ctx.session.delete(ev)
    ctx.audit("evidence.discarded", "evidence", payload.evidence_id)
    card = notice_card(ctx.t, ctx.t("evidence.assign_title"), ctx.t("evidence.discarded"), colour="grey")
    return Reply(toast=ctx.t("evidence.discarded"), card=card)


# ------------------------------------------------------------------ rating


async def _rate_form(ctx: Context, payload: EvidenceRate) -> Form:
    return rating_form(ctx.t, payload.evidence_id)


def _ask_again(
    ctx: Context,
    ev: Evidence,
    person: Person,
    item: ActionItem | None,
    *,
    chosen: str | None,
    comment: str | None,
    warning: str,
    bound: Binding = NO_BINDING,
) -> Reply:
    """The rating comes back to the rater with everything chosen and typed still in the form. Returned, not
    raised: a vague-comment bounce must commit its audit row while the photo stays unrated."""
    card = _rating_card_for(
        ctx, ev, person, ctx.person, item, chosen=chosen, comment=comment, warning=warning, bound=bound
    )
    return Reply(toast=warning[:200], toast_kind="warning", card=card)


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
        raise ctx.refuse("evidence.not_allowed_rate", name=person.name)
    if ev.rating is not None:
        raise ctx.refuse("common.already_done")
    rating = payload.rating or as_rating(text(form_of(ctx), "rating"))
    comment = text(form_of(ctx), "comment") or None
    bound = await _binding_for(ctx, ev, request)
    if rating is None:
        warning = ctx.t("evidence.rating_missing")
        return _ask_again(ctx, ev, person, item, chosen=None, comment=comment, warning=warning, bound=bound)
    if rating == "support" and not comment:
        return _ask_again(
            ctx,
            ev,
            person,
            item,
            chosen=rating,
            comment=None,
            warning=ctx.t("evidence.support_needs_comment"),
            bound=bound,
        )
    if await must_bounce(ctx, comment, entity="evidence_comment", entity_id=ev.id):
        warning = ctx.t("vague.bounce", text=(comment or "")[:200])
        return _ask_again(ctx, ev, person, item, chosen=rating, comment=comment, warning=warning, bound=bound)
    updated = await ctx.transition_or_refuse(
        Evidence,
        ev.id,
        column="rating",
        allowed=[None],
        values={"rating": rating, "rated_by_id": ctx.person.id, "rated_at": ctx.now, "comment": comment},
    )
    ctx.audit("evidence.rated", "evidence", ev.id, rating=rating)
    t = ctx.translator(person)
    what = bound.what(t, item) or t("evidence.request_general")
    if rating == "support":
        deadline = ctx.today() + timedelta(days=SUPPORT_FOLLOWUP_DAYS)
        follow = await open_action_item(
            ctx,
            owner=ctx.person,
            acceptor=person,
            source="evidence",
            source_id=ev.id,
            deliverable=ctx.t(
                "evidence.support_deliverable",
                name=person.name,
                what=(bound.what(ctx.t, item) or ctx.t("evidence.request_general"))[:200],
                comment=comment or "-",
            ),
            deadline=deadline,
        )
        employee_next = t("evidence.next.support", name=ctx.person.name, deadline=deadline.isoformat())
        rater_next = ctx.t(
            "evidence.rater_next.support", item=follow.id, deadline=deadline.isoformat(), person=person.name
        )
    elif rating == "improve":
        coached = await _coaching_rule(ctx, updated, person, item)
        streak = ctx.settings.evidence.needs_improvement_streak
        employee_next = t("evidence.next.improve", name=ctx.person.name)
        key = "evidence.rater_next.improve_coached" if coached else "evidence.rater_next.improve"
        rater_next = ctx.t(key, person=person.name, streak=streak)
    else:
        employee_next = t("evidence.next.meets")
        rater_next = ctx.t("evidence.rater_next.meets", person=person.name)
    ctx.outbox.send(
        person,
        rated_card(
            t, rater=ctx.person.name, rating=rating, what=what, comment=comment, next_step=employee_next
        ),
    )
    card = _rating_card_for(
        ctx, updated, person, ctx.person, item, rated_by=ctx.person.name, next_step=rater_next, bound=bound
    )
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


# ------------------------------------------------------------------ expiring unanswered requests


async def expire_request(ctx: Context, request_id: int) -> bool:
    """Close one request that got no photo by its ``expires_at`` (ctx.person = the employee): mark it
    expired and turn the employee's card into its final "expired" state. False when a photo or an earlier
    run got there first."""
    req = await ctx.session.get(EvidenceRequest, request_id)
    if req is None or req.person_id != ctx.person.id or req.expires_at > ctx.now:
        return False
    updated = await transition(
        ctx.session,
        EvidenceRequest,
        request_id,
        allowed=[EvidenceRequestStatus.OPEN],
        values={"status": EvidenceRequestStatus.EXPIRED},
    )
    if updated is None:
        return False
    expired = await _request_card_for(ctx, updated, ctx.person, "expired")
    await ctx.outbox.supersede(ctx.person, request_key(updated.id), expired)
    await _tell_requester_of_expiry(ctx, updated)
    ctx.audit(
        "evidence.request_expired",
        "evidence_request",
        updated.id,
        person_id=updated.person_id,
        action_item_id=updated.action_item_id,
        requested_by_id=updated.requested_by_id,
    )
    return True


async def _tell_requester_of_expiry(ctx: Context, req: EvidenceRequest) -> None:
    """The requester hears of an expiry once: in their digest if they read one, else in one notice (held for
    their quiet hours). A request the employee made of themselves tells nobody."""
    if req.requested_by_id is None or req.requested_by_id == req.person_id:
        return
    requester = await ctx.session.get(Person, req.requested_by_id)
    if requester is None or not requester.active or await reads_digest(ctx, requester):
        return
    t = ctx.translator(requester)
    item = await ctx.session.get(ActionItem, req.action_item_id) if req.action_item_id else None
    bound = await binding_of(ctx.session, key_result_id=req.key_result_id, rhythm_id=req.rhythm_id)
    body = t(
        "evidence.expired_notice.body",
        name=ctx.person.name,
        expires=ctx.local_text(req.expires_at, requester),
        what=bound.what(t, item) or t("evidence.expired_notice.no_item"),
    )
    card = notice_card(t, t("evidence.expired_notice.title", name=ctx.person.name), body, colour="grey")
    await send_polite(ctx, requester, card, dedupe_key=f"evidence-expired:{req.id}")


async def sweep_evidence_requests(host: Host) -> int:
    """Expire every open request whose time is up, each in its employee's own transaction; returns how many.
    The requester hears of each: in the digest (``status == expired``, ``expires_at`` = when) if they read
    one, else in a notice."""
    now = host.clock.now()
    async with host.factory() as session:
        rows = list(
            (
                await session.execute(
                    select(EvidenceRequest.id, EvidenceRequest.person_id)
                    .where(
                        EvidenceRequest.status == EvidenceRequestStatus.OPEN,
                        EvidenceRequest.expires_at <= now,
                    )
                    .order_by(EvidenceRequest.id)
                )
            ).all()
        )
    expired = 0
    for request_id, person_id in rows:
        expired += await _run_for(host, person_id, expire_request, request_id)
    return expired


async def _run_for(
    host: Host, person_id: int, fn: Callable[[Context, int], Awaitable[bool]], record_id: int
) -> int:
    done: list[bool] = []

    async def job(ctx: Context) -> None:
        done.append(await fn(ctx, record_id))

    await host.run_for_person(person_id, job)
    return int(bool(done and done[0]))


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
    Sweep("sweep_evidence_requests", sweep_evidence_requests),
)
