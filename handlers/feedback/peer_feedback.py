"""Anonymous peer feedback: nominate 2-5 collaborators, the manager approves or changes the list, each peer
answers a short card, and the result is shown only in aggregate and only once ``feedback.anonymity_threshold``
peers have answered.

Who may do what:
- the person nominates for themselves; the list then waits for the manager's approval;
- the manager (or their delegate) nominates for a report, approves a proposed list, or changes it (which
  approves the changed list); peers taken off the list before answering are dropped;
- only the rater answers their card, once.

Anonymity: cards built for anyone come from ``storage.queries.feedback.aggregate``, which returns nothing
below the threshold and no rater identity at all; the examples are shown sorted, not in answer order.

Publication policy (issue 16 #2). Re-sending the aggregate after every answer let a manager subtract: with
one-decimal means, ``4 × new mean − 3 × old mean`` is the fourth rater's exact score, and the one new example
is theirs verbatim. What mature 360 tools do is show a rater group only when it holds at least the minimum
number of responses and release results at fixed points, never response by response. Here: answers are
*released* in batches of at least ``feedback.anonymity_threshold`` (``storage.queries.feedback.release``),
the first batch when the threshold is reached, each later one only when that many new answers are waiting;
every view (the pushed cards, ``/feedback``, ``/history``, the person export, grades) reads released answers
only. So any two versions anyone can see differ by a whole batch: subtracting gives the mean of at least
threshold raters, and the new examples arrive as a sorted group of at least threshold. Answers after the
last full batch stay unreleased, which is the price of that promise. Re-nomination tricks are refused: a
peer who already answered cannot be put on the list again in the round, and adding peers after a release
releases nothing until a full new batch has answered. Answers and releases for one person are serialised
(``lock_round``), so two peers answering at once cannot each release a batch holding only their own answer.
Still out of reach of any tool: a manager who colludes with threshold − 1 raters of a batch learns the last.

Rater identity (issue 16 #3): the answer's echo back to the rater (a bounce, a half-filled form) is a
``Reply(private=True)``, never stored or sent through the outbox; its toast carries no answer text. The
audit row of an answer names the rater and the cycle only (HR can see who took part), never the answer's
row or text; the vague guard keeps its "asked once" mark on the row, and vague examples are counted per
released batch in ``peers.published`` (written by nobody: the release is the system's doing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from bot.core.context import Context, Reply
from bot.core.forms import FormData, form_of, text
from bot.core.notify import send_polite
from bot.core.people import find_by_mention, is_manager_of, line_manager
from bot.core.router import Router
from bot.core.status import OPEN_PEER_FEEDBACK, CycleStatus, PeerFeedbackStatus
from bot.core.vague import is_vague, must_bounce_anonymous
from cards import peer_feedback as pc
from cards.flow_common import with_outcome
from cards.model import Card, Form
from cards.notice import notice_card
from cards.radar import radar_png
from cards.self_assessment import PeerStart
from handlers.kickoff.api import require_answerable
from storage.feedback_scales import DIMENSIONS, MAX_PEERS, MIN_PEERS
from storage.media import MediaStore
from storage.models import AuditLog, Cycle, PeerFeedback, Person
from storage.queries import cycles as cq
from storage.queries import feedback as fq
from storage.queries.people import people_by_ids
from storage.queries.status import transition

router = Router()


def request_key(feedback_id: int) -> str:
    return f"peer:{feedback_id}"


def approval_key(cycle_id: int, subject_id: int) -> str:
    return f"peers-approve:{cycle_id}:{subject_id}"


async def _close_approval(
    ctx: Context, subject: Person, cycle: Cycle, *, peers: Sequence[Person] | None
) -> Card | None:
    """Put the manager's approval card in its final state: approved with ``peers``, or (None) replaced by
    the newer list the person just proposed. Returns the manager's final card (None: no manager)."""
    manager = await line_manager(ctx.session, subject)
    if manager is None:
        return None
    mt = ctx.translator(manager)
    if peers is None:
        note = mt("peers.approval_replaced", name=subject.name)
    else:
        note = mt("peers.approval_done", peers="、".join(p.name for p in peers), n=len(peers))
    final = pc.approval_closed_card(
        mt, subject_name=subject.name, cycle_code=cycle.code, note=note, approved=peers is not None
    )
    await ctx.outbox.supersede(manager, approval_key(cycle.id, subject.id), final)
    return final


async def _tell_subject(ctx: Context, subject: Person, cycle: Cycle, peers: Sequence[Person]) -> None:
    """The person hears when someone else (their manager) settled their list: their own nomination card
    still says "waiting for approval", and the requests now go out in their name."""
    if subject.id == ctx.person.id:
        return
    st = ctx.translator(subject)
    body = st("peers.list_set_body", name=ctx.person.name, peers="、".join(p.name for p in peers))
    card = notice_card(st, st("peers.list_set_title", cycle=cycle.code), body, colour="green")
    await send_polite(ctx, subject, card, card_key=f"peers-list:{cycle.id}:{subject.id}")


def manager_agg_key(cycle_id: int, subject_id: int) -> str:
    return f"peers-agg:{cycle_id}:{subject_id}"


def self_agg_key(cycle_id: int, subject_id: int) -> str:
    return f"peers-self:{cycle_id}:{subject_id}"


async def _candidates(ctx: Context, subject: Person) -> list[tuple[int, str]]:
    """Active colleagues, the subject's own department first (the likeliest collaborators)."""
    rows = list(
        await ctx.session.scalars(
            select(Person)
            .where(
                Person.workspace_id == subject.workspace_id, Person.active.is_(True), Person.id != subject.id
            )
            .order_by(Person.id)
        )
    )
    rows.sort(key=lambda p: (p.department_id != subject.department_id, p.id))
    return [(p.id, p.name) for p in rows[: pc.MAX_CANDIDATES]]


async def _subject_and_cycle(ctx: Context, cycle_id: int, subject_id: int) -> tuple[Person, Cycle, bool]:
    """Load and authorise: returns (subject, cycle, clicker_is_manager)."""
    subject = await ctx.session.get(Person, subject_id)
    cycle = await ctx.session.get(Cycle, cycle_id)
    if subject is None or cycle is None or subject.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    is_manager = await is_manager_of(ctx.session, ctx.person, subject)
    if ctx.person.id != subject.id and not is_manager:
        raise ctx.refuse("peers.not_allowed", name=subject.name)
    if cycle.status != CycleStatus.ACTIVE or await cq.participant(ctx.session, cycle.id, subject.id) is None:
        raise ctx.refuse("peers.no_cycle")
    return subject, cycle, is_manager


async def _nomination_card(ctx: Context, subject: Person, cycle: Cycle, *, by_manager: bool) -> Card:
    rows = await fq.peer_rows(ctx.session, cycle.id, subject.id)
    selected = [r.rater_id for r in rows if r.status != PeerFeedbackStatus.DROPPED]
    return pc.nomination_card(
        ctx.t,
        cycle_id=cycle.id,
        subject_id=subject.id,
        subject_name=subject.name,
        cycle_code=cycle.code,
        candidates=await _candidates(ctx, subject),
        selected=selected,
        by_manager=by_manager,
    )


@router.command("peers", "互评")
async def peers_command(ctx: Context, args: str) -> Reply:
    """``/peers`` opens my nomination card; ``/peers @李四 @周销售 …`` (2-5 names) nominates in one line,
    for chats whose cards cannot hold a multi-select; ``/peers @张三`` (manager) opens a report's card."""
    subject = ctx.person
    mentions = args.split()
    people: list[Person] = []
    for token in mentions:
        matches = await find_by_mention(ctx.session, ctx.workspace.id, token)
        if len(matches) != 1:
            raise ctx.refuse("peers.no_such_person", name=token)
        people.append(matches[0])
    if len(people) == 1:
        subject = people[0]
    found = await cq.current_participation(ctx.session, subject.id)
    if found is None:
        raise ctx.refuse("peers.no_cycle")
    subject, cycle, is_manager = await _subject_and_cycle(ctx, found[0].id, subject.id)
    if len(people) > 1:
        return await _nominate(ctx, subject, cycle, False, [p.id for p in people])
    return Reply(
        card=await _nomination_card(
            ctx, subject, cycle, by_manager=is_manager and subject.id != ctx.person.id
        )
    )


@router.action(PeerStart)
async def start(ctx: Context, payload: PeerStart) -> Reply:
    subject, cycle, is_manager = await _subject_and_cycle(ctx, payload.cycle_id, payload.subject_id)
    return Reply(
        card=await _nomination_card(
            ctx, subject, cycle, by_manager=is_manager and subject.id != ctx.person.id
        )
    )


def _picked(form: FormData) -> list[int]:
    raw = form.get("peers", [])
    values = raw if isinstance(raw, list) else raw.replace("，", ",").split(",")
    out: list[int] = []
    for value in values:
        value = str(value).strip()
        if value.isdigit() and int(value) not in out:
            out.append(int(value))
    return out


async def _valid_peers(ctx: Context, subject: Person, ids: list[int]) -> list[Person]:
    if not MIN_PEERS <= len(ids) <= MAX_PEERS:
        raise ctx.refuse("peers.count", min=MIN_PEERS, max=MAX_PEERS)
    people = await people_by_ids(ctx.session, ids)
    peers = [people[i] for i in ids if i in people]
    manager = await line_manager(ctx.session, subject)
    if (
        len(peers) != len(ids)
        or subject.id in ids
        or (manager is not None and manager.id in ids)  # the manager scores on their own series
        or any(not p.active or p.workspace_id != subject.workspace_id for p in peers)
    ):
        raise ctx.refuse("peers.bad_peer")
    return peers


async def _request(ctx: Context, row: PeerFeedback, subject: Person, cycle: Cycle) -> None:
    rater = await ctx.session.get(Person, row.rater_id)
    assert rater is not None
    card = pc.request_card(
        ctx.translator(rater), feedback_id=row.id, subject_name=subject.name, cycle_code=cycle.code
    )
    await send_polite(ctx, rater, card, card_key=request_key(row.id))


async def _apply_list(ctx: Context, subject: Person, cycle: Cycle, peers: list[Person]) -> int:
    """The manager's list becomes the approved one; returns how many peers were newly asked."""
    wanted = {p.id for p in peers}
    rows = {r.rater_id: r for r in await fq.peer_rows(ctx.session, cycle.id, subject.id)}
    for rater_id, row in rows.items():
        if rater_id not in wanted and row.status in OPEN_PEER_FEEDBACK:
            was_asked = row.status == PeerFeedbackStatus.REQUESTED
            row.status = PeerFeedbackStatus.DROPPED
            rater = await ctx.session.get(Person, rater_id)
            if was_asked and rater is not None:
                await ctx.outbox.supersede(
                    rater,
                    request_key(row.id),
                    pc.dropped_card(ctx.translator(rater), subject_name=subject.name),
                )
    asked = 0
    for peer in peers:
        found = rows.get(peer.id)
        if found is None:
            row = PeerFeedback(
                cycle_id=cycle.id,
                subject_id=subject.id,
                rater_id=peer.id,
                role="peer",
                nominated_by_id=ctx.person.id,
                status=PeerFeedbackStatus.REQUESTED,
                requested_at=ctx.now,
                created_at=ctx.now,
            )
            ctx.session.add(row)
            await ctx.session.flush()
        elif found.status in (PeerFeedbackStatus.PROPOSED, PeerFeedbackStatus.DROPPED):
            row = found
            row.status, row.requested_at = PeerFeedbackStatus.REQUESTED, ctx.now
        else:
            continue
        await _request(ctx, row, subject, cycle)
        asked += 1
    return asked


@router.action(pc.PeerNominate)
async def nominate(ctx: Context, payload: pc.PeerNominate) -> Reply:
    subject, cycle, is_manager = await _subject_and_cycle(ctx, payload.cycle_id, payload.subject_id)
    return await _nominate(ctx, subject, cycle, is_manager, _picked(form_of(ctx)))


async def _nominate(ctx: Context, subject: Person, cycle: Cycle, is_manager: bool, ids: list[int]) -> Reply:
    """The manager's list is the approved one; the person's own list waits for the manager."""
    peers = await _valid_peers(ctx, subject, ids)
    names = "、".join(p.name for p in peers)
    manager = await line_manager(ctx.session, subject)
    if is_manager or manager is None:
        answered = {
            r.rater_id
            for r in await fq.peer_rows(ctx.session, cycle.id, subject.id)
            if r.status == PeerFeedbackStatus.ANSWERED
        }
        again = [p.name for p in peers if p.id in answered]
        if again:
            # Listing someone who answered made "one new peer + one old" a way to get exactly one new answer.
            raise ctx.refuse("peers.answered_already", peers="、".join(again))
        asked = await _apply_list(ctx, subject, cycle, peers)
        ctx.audit("peers.approved", "person", subject.id, cycle=cycle.code, peers=[p.id for p in peers])
        await _close_approval(ctx, subject, cycle, peers=peers)
        await _tell_subject(ctx, subject, cycle, peers)
        card = await _nomination_card(ctx, subject, cycle, by_manager=True)
        return Reply(
            toast=ctx.t("peers.requested", n=asked),
            card=pc.recoloured(with_outcome(card, ctx.t("peers.list_now", peers=names)), "green"),
        )
    rows = await fq.peer_rows(ctx.session, cycle.id, subject.id)
    if any(r.status in (PeerFeedbackStatus.REQUESTED, PeerFeedbackStatus.ANSWERED) for r in rows):
        raise ctx.refuse("peers.already_approved")
    if rows:
        await _close_approval(ctx, subject, cycle, peers=None)
    for row in rows:
        await ctx.session.delete(row)
    await ctx.session.flush()
    for peer in peers:
        ctx.session.add(
            PeerFeedback(
                cycle_id=cycle.id,
                subject_id=subject.id,
                rater_id=peer.id,
                role="peer",
                nominated_by_id=ctx.person.id,
                status=PeerFeedbackStatus.PROPOSED,
                created_at=ctx.now,
            )
        )
    try:
        await ctx.session.flush()
    except IntegrityError:
        raise ctx.refuse("common.already_done") from None
    ctx.audit("peers.proposed", "person", subject.id, cycle=cycle.code, peers=[p.id for p in peers])
    mt = ctx.translator(manager)
    ctx.outbox.send(
        manager,
        pc.approval_card(
            mt,
            cycle_id=cycle.id,
            subject_id=subject.id,
            subject_name=subject.name,
            cycle_code=cycle.code,
            proposed=[p.name for p in peers],
            candidates=await _candidates(ctx, subject),
        ),
        card_key=approval_key(cycle.id, subject.id),
    )
    card = await _nomination_card(ctx, subject, cycle, by_manager=False)
    return Reply(
        toast=ctx.t("peers.proposed", name=manager.name),
        card=with_outcome(card, ctx.t("peers.waiting_approval", peers=names, name=manager.name)),
    )


@router.action(pc.PeerApprove)
async def approve(ctx: Context, payload: pc.PeerApprove) -> Reply:
    subject, cycle, is_manager = await _subject_and_cycle(ctx, payload.cycle_id, payload.subject_id)
    if not is_manager:
        raise ctx.refuse("peers.only_manager", name=subject.name)
    rows = await fq.peer_rows(ctx.session, cycle.id, subject.id)
    proposed = [r for r in rows if r.status == PeerFeedbackStatus.PROPOSED]
    if not proposed:
        raise ctx.refuse("common.already_done")
    people = await people_by_ids(
        ctx.session, [r.rater_id for r in rows if r.status != PeerFeedbackStatus.DROPPED]
    )
    peers = [
        people[r.rater_id] for r in rows if r.status != PeerFeedbackStatus.DROPPED and r.rater_id in people
    ]
    asked = await _apply_list(ctx, subject, cycle, peers)
    ctx.audit("peers.approved", "person", subject.id, cycle=cycle.code, peers=[p.id for p in peers])
    final = await _close_approval(ctx, subject, cycle, peers=peers)
    await _tell_subject(ctx, subject, cycle, peers)
    return Reply(toast=ctx.t("peers.requested", n=asked), card=final)


# ------------------------------------------------------------------ answering


def _entered(form: FormData) -> dict[str, int]:
    """Every valid 1-5 score on the form, however many: what a re-shown form must carry back."""
    out: dict[str, int] = {}
    for dim in DIMENSIONS:
        value = text(form, f"dim_{dim}")
        if value.isdigit() and 1 <= int(value) <= 5:
            out[dim] = int(value)
    return out


def _scores(form: FormData) -> dict[str, int] | None:
    """All dimensions scored, or None."""
    out = _entered(form)
    return out if len(out) == len(DIMENSIONS) else None


async def _own_request(ctx: Context, feedback_id: int) -> tuple[PeerFeedback, Person, Cycle]:
    row = await ctx.session.get(PeerFeedback, feedback_id)
    if row is None or row.role != "peer" or row.rater_id != ctx.person.id:
        raise ctx.refuse("common.invalid_action")
    if row.status == PeerFeedbackStatus.ANSWERED:
        raise ctx.refuse("peers.already_answered")
    if row.status != PeerFeedbackStatus.REQUESTED:
        raise ctx.refuse("peers.not_needed")
    subject = await ctx.session.get(Person, row.subject_id)
    cycle = await ctx.session.get(Cycle, row.cycle_id)
    assert subject is not None and cycle is not None
    require_answerable(ctx, cycle)  # issue 20 #1: the late-submission policy of a closing/closed cycle
    return row, subject, cycle


async def build_answer_form(ctx: Context, payload: pc.PeerAnswer) -> Form:
    row, subject, cycle = await _own_request(ctx, payload.feedback_id)
    return pc.request_card(
        ctx.t, feedback_id=row.id, subject_name=subject.name, cycle_code=cycle.code
    ).forms()[0]


@router.action(pc.PeerAnswer, form=build_answer_form)
async def answer(ctx: Context, payload: pc.PeerAnswer) -> Reply:
    """Every card that shows the rater's own input back is ``private``: it is theirs to see now, but stored
    or queued under their id it would be their answer next to their name (issue 16 #3)."""
    row, subject, cycle = await _own_request(ctx, payload.feedback_id)
    await fq.lock_round(ctx.session, cycle.id, subject.id)
    await ctx.session.refresh(row)
    form = form_of(ctx)
    scores = _scores(form)
    example = text(form, "example", 1000)
    if scores is None or not example:
        error = ctx.t("peers.err_answer")
        card = pc.request_card(
            ctx.t,
            feedback_id=row.id,
            subject_name=subject.name,
            cycle_code=cycle.code,
            error=error,
            scores=_entered(form),
            example=example or None,
        )
        return Reply(toast=error, toast_kind="error", card=card, private=True)
    if must_bounce_anonymous(example, already_bounced=row.vague_bounced):
        row.vague_bounced = True
        warning = ctx.t("vague.bounce", text=example[:200])
        card = pc.request_card(
            ctx.t,
            feedback_id=row.id,
            subject_name=subject.name,
            cycle_code=cycle.code,
            error=warning,
            scores=scores,
            example=example,
        )
        return Reply(toast=ctx.t("peers.vague_again"), toast_kind="warning", card=card, private=True)
    updated = await transition(
        ctx.session,
        PeerFeedback,
        row.id,
        allowed=[PeerFeedbackStatus.REQUESTED],
        values={
            "status": PeerFeedbackStatus.ANSWERED,
            "scores": scores,
            "example": example,
            "answered_at": ctx.now,
        },
    )
    if updated is None:
        raise ctx.refuse("peers.already_answered")
    # Who took part, in which cycle: not for whom, not which row, not what (the log is exportable).
    ctx.audit("peers.answered", "cycle", cycle.id)
    await publish(ctx, cycle, subject)
    thanks = pc.thanks_card(ctx.t, subject_name=subject.name)
    await ctx.outbox.supersede(ctx.person, request_key(row.id), thanks)
    return Reply(toast=ctx.t("peers.thanks_title"), card=thanks)


async def store_radar(
    media_dir: Path,
    max_bytes: int,
    dimensions: int,
    series: Sequence[Sequence[float | None] | None],
    *,
    labels: Sequence[str] | None = None,
    series_names: Sequence[str] | None = None,
) -> str:
    """Render and store the radar; returns its media id (sha256) for ``cards.model.Image``.

    Here, not in ``cards.radar``: cards render PNG bytes and stay clear of the media store."""
    data = await radar_png(dimensions, series, labels=labels, series_names=series_names)
    stored = await MediaStore(media_dir, max_bytes=max_bytes).store_image(data)
    return stored.info.sha256


async def aggregate_cards(
    ctx: Context,
    cycle: Cycle,
    subject: Person,
    viewer: Person,
    *,
    for_manager: bool,
    entered: dict[str, int] | None = None,
    error: str | None = None,
) -> Card:
    """The aggregate card for ``viewer`` (the subject, or their manager with the manager's own scores);
    ``entered``/``error``: the manager's half-filled scores shown back with what is missing."""
    fb = ctx.settings.feedback
    agg = await fq.aggregate(
        ctx.session, cycle.id, subject.id, threshold=fb.anonymity_threshold, with_manager=for_manager
    )
    media_id = None
    if agg.visible:
        series = [fq.series(agg.self_scores), fq.series(agg.peers)]
        if for_manager:
            series.append(fq.series(agg.manager))
        vt = ctx.translator(viewer)
        media_id = await store_radar(
            ctx.settings.media.dir,
            ctx.settings.media.max_image_bytes,
            len(DIMENSIONS),
            series,
            labels=[vt(f"peers.dim.{d}") for d in DIMENSIONS],
            series_names=[vt("charts.radar.self"), vt("charts.radar.peers"), vt("charts.radar.manager")],
        )
    return pc.aggregate_card(
        ctx.translator(viewer),
        cycle_id=cycle.id,
        subject_id=subject.id,
        subject_name=subject.name,
        cycle_code=cycle.code,
        agg=agg,
        gap_points=fb.gap_points,
        radar_media_id=media_id,
        for_manager=for_manager,
        entered=entered,
        error=error,
    )


async def publish(ctx: Context, cycle: Cycle, subject: Person) -> bool:
    """After an answer (under ``fq.lock_round``): when at least the threshold's number of answers wait,
    release them together and send (first release) or refresh the aggregate cards of manager and subject.
    Otherwise nothing changes anywhere. Returns whether it released."""
    threshold = ctx.settings.feedback.anonymity_threshold
    before = await fq.released_count(ctx.session, cycle.id, subject.id)
    batch = await fq.release(ctx.session, cycle.id, subject.id, threshold=threshold, now=ctx.now)
    if not batch:
        return False
    first = before == 0
    manager = await line_manager(ctx.session, subject)
    targets: list[tuple[Person, bool, str]] = [(subject, False, self_agg_key(cycle.id, subject.id))]
    if manager is not None:
        targets.insert(0, (manager, True, manager_agg_key(cycle.id, subject.id)))
    for viewer, for_manager, key in targets:
        card = await aggregate_cards(ctx, cycle, subject, viewer, for_manager=for_manager)
        if first:
            await send_polite(ctx, viewer, card, card_key=key)
        else:
            ctx.outbox.update(viewer, card, card_key=key)
    ctx.session.add(
        AuditLog(
            at=ctx.now,
            actor_id=None,
            action="peers.published",
            entity="person",
            entity_id=subject.id,
            detail={
                "cycle": cycle.code,
                "answered": before + len(batch),
                "batch": len(batch),
                "vague": sum(1 for r in batch if r.example and is_vague(r.example)),
            },
        )
    )
    return True


async def build_manager_form(ctx: Context, payload: pc.PeerManagerScores) -> Form:
    subject, cycle, is_manager = await _subject_and_cycle(ctx, payload.cycle_id, payload.subject_id)
    if not is_manager:
        raise ctx.refuse("peers.only_manager", name=subject.name)
    card = await aggregate_cards(ctx, cycle, subject, ctx.person, for_manager=True)
    forms = card.forms()
    if not forms:
        raise ctx.refuse("peers.none_yet")
    return forms[0]


@router.action(pc.PeerManagerScores, form=build_manager_form)
async def manager_scores(ctx: Context, payload: pc.PeerManagerScores) -> Reply:
    subject, cycle, is_manager = await _subject_and_cycle(ctx, payload.cycle_id, payload.subject_id)
    if not is_manager:
        raise ctx.refuse("peers.only_manager", name=subject.name)
    entered = _entered(form_of(ctx))
    if len(entered) < len(DIMENSIONS):
        error = ctx.t("peers.err_manager")
        card = await aggregate_cards(
            ctx, cycle, subject, ctx.person, for_manager=True, entered=entered, error=error
        )
        if not card.forms():
            raise ctx.refuse("peers.none_yet")
        return Reply(toast=error, toast_kind="error", card=card)
    scores = entered
    row = await fq.manager_row(ctx.session, cycle.id, subject.id)
    if row is None:
        row = PeerFeedback(
            cycle_id=cycle.id,
            subject_id=subject.id,
            rater_id=ctx.person.id,
            role="manager",
            nominated_by_id=ctx.person.id,
            status=PeerFeedbackStatus.ANSWERED,
            created_at=ctx.now,
        )
        ctx.session.add(row)
    row.scores, row.answered_at, row.status = scores, ctx.now, PeerFeedbackStatus.ANSWERED
    await ctx.session.flush()
    ctx.audit("peers.manager_scored", "person", subject.id, cycle=cycle.code, scores=scores)
    card = await aggregate_cards(ctx, cycle, subject, ctx.person, for_manager=True)
    return Reply(toast=ctx.t("peers.manager_saved"), card=card)


@router.command("feedback", "反馈")
async def feedback_command(ctx: Context, args: str) -> Reply:
    """``/feedback``: my aggregate (if enough peers answered); ``/feedback @张三``: the manager's view."""
    subject = ctx.person
    if args.strip():
        matches = await find_by_mention(ctx.session, ctx.workspace.id, args.strip())
        if len(matches) != 1:
            raise ctx.refuse("peers.no_such_person", name=args.strip())
        subject = matches[0]
        if subject.id != ctx.person.id and not await is_manager_of(ctx.session, ctx.person, subject):
            raise ctx.refuse("peers.view_not_allowed", name=subject.name)
    cycle_id = await ctx.session.scalar(
        select(PeerFeedback.cycle_id)
        .where(
            PeerFeedback.subject_id == subject.id,
            or_(PeerFeedback.role == "peer", PeerFeedback.role == "manager"),
        )
        .order_by(PeerFeedback.cycle_id.desc())
        .limit(1)
    )
    cycle = await ctx.session.get(Cycle, cycle_id) if cycle_id is not None else None
    if cycle is None:
        raise ctx.refuse("peers.none_yet")
    card = await aggregate_cards(ctx, cycle, subject, ctx.person, for_manager=subject.id != ctx.person.id)
    return Reply(card=card)
