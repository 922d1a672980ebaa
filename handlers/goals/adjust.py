"""Monthly adjustment of confirmed goals (季度对齐 + 月度微调, issue 17 item 6).

Goals are aligned once a quarter and stay locked once the manager confirms them; in the first
``[goals] adjust_window_days`` days of each month (the person's local date) a person may propose changes:
key-result targets, key results added or removed, goal weights (still adding up to 100), with a reason.

- ``/adjust`` (``/调整目标``), or the button on a card asking for it, opens the form: per goal its weight and
  its key results as editable lines (``handlers.goals.kr_lines``), then the reason. Outside the window the
  refusal names the day the next one opens. The owner's manager asking for an adjustment in answer to a
  challenge (``handlers.goals.comments``) opens it until an adjustment is approved.
- The proposal is a ``GoalVersion`` (``proposed``, the next number); one open proposal per person at a time
  (checked, and the unique version number stops two taps racing past the check).
- The manager (the person's approver) gets a card with the changes, old → new per key result and weight,
  and approves (the version is applied to the live goals: key results keep their ids and value history,
  new ones are created, dropped ones removed; progress recomputed; in force from now) or returns it with a
  comment the vague-word guard checks. Both are compare-and-set on the version's status: one decision wins.
- Every step is audited on entity ``goal_version`` (``goals.adjust_proposed``, ``goals.adjust_approved``,
  ``goals.adjust_returned``).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.core.context import Context, Refused, Reply
from bot.core.forms import FormData, form_of, text
from bot.core.notify import send_polite
from bot.core.people import approver_to_notify, require_approver
from bot.core.router import Router
from bot.core.status import CycleStatus, GoalCommentStatus, GoalLevel, GoalsStatus, GoalVersionStatus
from bot.core.vague import must_bounce, must_bounce_any
from cards import goal_adjust as ga
from cards.flow_common import done_by, with_outcome
from cards.goal_actions import GoalAdjustApprove, GoalAdjustOpen, GoalAdjustReturn, GoalAdjustSubmit
from cards.model import Card, Form
from handlers.goals.kr_lines import entry_of, line_of, lines_of, read_line, split
from handlers.goals.kr_parse import KrRefused
from handlers.goals.participation import own_participation
from handlers.goals.progress import KrKind
from handlers.goals.versions import Content, apply_content, changes, in_force_now, live_content, same_promises
from storage.models import Cycle, CycleParticipant, GoalComment, GoalVersion, Person
from storage.queries import cycles as cq
from storage.queries import goal_comments as gcq
from storage.queries import goal_versions as gv
from storage.queries import goals as gq

router = Router()


class AdjustInvalid(ValueError):
    """A proposal that cannot be saved as typed (the message lists every problem, translated)."""


@dataclass(frozen=True, slots=True)
class Window:
    """This month's adjustment window as the person's calendar sees it."""

    open: bool
    closes: date
    next_opens: date


def window(today: date, days: int) -> Window:
    """Open from the 1st through the ``days``-th of the month (the month's last day if it is shorter)."""
    last = min(days, calendar.monthrange(today.year, today.month)[1])
    following = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    return Window(today.day <= last, today.replace(day=last), following)


def _key(version_id: int) -> str:
    """The approver's card."""
    return f"okr:adjust:{version_id}"


async def _requests(ctx: Context, cycle: Cycle, person: Person) -> list[GoalComment]:
    """Challenges of the person's goals their manager answered "adjust" since the last approved version:
    each opens the adjustment outside the monthly window until an adjustment is approved."""
    goals = await gq.goals_at(ctx.session, cycle.id, level=GoalLevel.PERSON, person_id=person.id)
    approved = await gv.latest_approved(ctx.session, cycle.id, person.id)
    since = approved.decided_at if approved is not None else None
    return await gcq.adjust_requests_since(
        ctx.session, [g.id for g in goals], status=GoalCommentStatus.ADJUST, since=since
    )


async def _mine(ctx: Context, cycle_id: int) -> tuple[Cycle, CycleParticipant]:
    cycle, mine = await own_participation(ctx, cycle_id, not_active="goal_adjust.cycle_not_active")
    if mine.goals_status != GoalsStatus.CONFIRMED:
        raise ctx.refuse("goal_adjust.not_confirmed", code=cycle.code)
    return cycle, mine


async def _may_propose(ctx: Context, cycle: Cycle) -> tuple[str, list[GoalComment]]:
    """Refuse beside an open proposal or outside the window (unless the manager asked for an adjustment);
    else how long the window lasts (as the form says it) and the manager's requests."""
    pending = await gv.open_proposal(ctx.session, cycle.id, ctx.person.id)
    if pending is not None:
        approver = await approver_to_notify(ctx.session, ctx.person, ctx.today())
        raise ctx.refuse(
            "goal_adjust.already_open",
            v=pending.version,
            at=ctx.local_text(pending.proposed_at),
            approver=approver.name if approver is not None else ctx.t("goal_adjust.your_manager"),
        )
    requests = await _requests(ctx, cycle, ctx.person)
    now = window(ctx.today(), ctx.settings.goals.adjust_window_days)
    if now.open:
        return now.closes.isoformat(), requests
    if requests:
        return ctx.t("goal_adjust.closes_requested"), requests
    if cycle.ends_on is not None and now.next_opens > cycle.ends_on:
        raise ctx.refuse("goal_adjust.no_window_left", code=cycle.code, ends=cycle.ends_on.isoformat())
    raise ctx.refuse(
        "goal_adjust.window_closed",
        days=ctx.settings.goals.adjust_window_days,
        opens=now.next_opens.isoformat(),
    )


def _slots(base: Content, form: FormData | None = None) -> list[ga.AdjustSlot]:
    """The goals on the form: what the person typed where they typed it, else what is in force."""
    out: list[ga.AdjustSlot] = []
    for n, goal in enumerate(base.get("goals", [])[: ga.MAX_GOALS], start=1):
        weight = text(form, f"weight_{n}", 4) if form else ""
        lines = text(form, f"krs_{n}", 2000) if form else ""
        out.append(
            ga.AdjustSlot(
                n,
                goal["objective"],
                weight or str(goal["weight"]),
                lines or lines_of(goal.get("key_results", [])),
            )
        )
    return out


async def _requested_text(ctx: Context, requests: Sequence[GoalComment]) -> str | None:
    if not requests:
        return None
    last = requests[-1]
    who = await ctx.session.get(Person, last.answered_by_id) if last.answered_by_id else None
    return ctx.t(
        "goal_adjust.requested",
        manager=who.name if who is not None else ctx.t("goal_adjust.your_manager"),
        answer=(last.answer or "")[:500],
    )


async def _form_card(
    ctx: Context,
    cycle: Cycle,
    base: Content,
    closes: str,
    requests: Sequence[GoalComment],
    *,
    form: FormData | None = None,
    error: str | None = None,
    warning: str | None = None,
) -> Card:
    returned = await gv.latest(ctx.session, cycle.id, ctx.person.id)
    comment = (
        returned.comment
        if returned is not None and returned.status == GoalVersionStatus.RETURNED and returned.comment
        else None
    )
    return ga.adjust_form_card(
        ctx.t,
        cycle_id=cycle.id,
        code=cycle.code,
        slots=_slots(base, form),
        closes=closes,
        requested=await _requested_text(ctx, requests),
        error=error,
        warning=warning,
        reason=text(form, "reason", 1000) if form else None,
        returned=comment,
    )


# ---------------------------------------------------------------- reading the form


def _weight(ctx: Context, n: int, raw: str, errors: list[str]) -> int | None:
    value = raw.rstrip("%％").strip()
    if not value.isdigit() or not 1 <= int(value) <= 100:
        errors.append(ctx.t("goal_adjust.err_weight", n=n))
        return None
    return int(value)


def propose(ctx: Context, cycle: Cycle, base: Content, form: FormData) -> tuple[Content, list[str]]:
    """The proposal the form describes, from the version in force, and the words of its new or changed
    dates and deliverables (for the vague guard); raises ``AdjustInvalid``.

    A goal whose weight or lines were left out (a skipped chat question) keeps what is in force."""
    errors: list[str] = []
    words: list[str] = []
    goals: list[dict[str, Any]] = []
    limit = ctx.settings.goals.max_key_results
    ref_day = cycle.starts_on or ctx.today()
    for n, goal in enumerate(base.get("goals", []), start=1):
        raw_weight = text(form, f"weight_{n}", 8) if n <= ga.MAX_GOALS else ""
        weight = _weight(ctx, n, raw_weight, errors) if raw_weight else int(goal["weight"])
        raw_lines = text(form, f"krs_{n}", 4000) if n <= ga.MAX_GOALS else ""
        if not raw_lines:
            goals.append({**goal, "weight": weight if weight is not None else goal["weight"]})
            continue
        by_position = {i: kr for i, kr in enumerate(goal.get("key_results", []), start=1)}
        used: set[int] = set()
        items: list[dict[str, Any]] = []
        refused = len(errors)
        for i, raw in enumerate(split(raw_lines), start=1):
            try:
                line = read_line(raw, ref_day)
            except KrRefused as exc:
                errors.append(ctx.t(f"goal_adjust.refused.{exc.reason}", n=n, line=i, text=raw[:60]))
                continue
            named = by_position.get(line.ref) if line.ref is not None and line.ref not in used else None
            if named is not None and line.ref is not None:
                used.add(line.ref)
            item = entry_of(line.kr, named)
            if line.kr.kind != KrKind.NUMBER and (named is None or line_of(named) != line_of(item)):
                words.append(line.kr.what or line.kr.title)
            items.append(item)
        if not items and len(errors) == refused:
            errors.append(ctx.t("goal_adjust.err_no_kr", n=n))
        elif len(items) > limit:
            errors.append(ctx.t("goal_adjust.err_too_many", n=n, max=limit))
        weights = [int(kr["weight"]) for kr in items]
        if any(weights) and (not all(weights) or sum(weights) != 100):
            errors.append(ctx.t("goal_adjust.err_kr_weights", n=n, total=sum(weights)))
        goals.append(
            {**goal, "weight": weight if weight is not None else goal["weight"], "key_results": items}
        )
    if not errors:
        total = sum(int(g["weight"]) for g in goals)
        if total != 100:
            errors.append(ctx.t("goal_adjust.err_sum", total=total))
    if errors:
        raise AdjustInvalid("\n".join(errors))
    return {"goals": goals}, words


# ---------------------------------------------------------------- proposing


async def _open_form(ctx: Context, cycle_id: int) -> Card:
    cycle, _ = await _mine(ctx, cycle_id)
    closes, requests = await _may_propose(ctx, cycle)
    return await _form_card(ctx, cycle, await live_content(ctx, cycle.id, ctx.person.id), closes, requests)


async def may_adjust_now(ctx: Context, cycle: Cycle) -> bool:
    """Whether the person may propose an adjustment in ``cycle`` now (what ``/adjust`` would refuse, asked
    quietly): a participant whose goals are confirmed in an active cycle, no proposal open, and the month's
    window open or their manager asked for an adjustment. The goals card shows its button only then."""
    try:
        await _mine(ctx, cycle.id)
        await _may_propose(ctx, cycle)
    except Refused:
        return False
    return True


@router.action(GoalAdjustOpen)
async def open_adjust(ctx: Context, payload: GoalAdjustOpen) -> Reply:
    """The goals card's button: the form as a card of its own (refused with the reason when not possible)."""
    ctx.outbox.send(ctx.person, await _open_form(ctx, payload.cycle_id))
    return Reply(toast=ctx.t("goal_adjust.form_sent"), toast_kind="info")


@router.command("adjust", "调整目标")
async def adjust_command(ctx: Context, args: str) -> Reply:
    """``/adjust``: the adjustment form of the person's current cycle (inside the window)."""
    del args
    found = await cq.current_participation(ctx.session, ctx.person.id)
    if found is None:
        raise ctx.refuse("goal_adjust.no_cycle")
    return Reply(card=await _open_form(ctx, found[0].id))


async def build_adjust_form(ctx: Context, payload: GoalAdjustSubmit) -> Form:
    return (await _open_form(ctx, payload.cycle_id)).forms()[0]


@router.action(GoalAdjustSubmit, form=build_adjust_form)
async def submit(ctx: Context, payload: GoalAdjustSubmit) -> Reply:
    cycle, mine = await _mine(ctx, payload.cycle_id)
    closes, requests = await _may_propose(ctx, cycle)
    form = form_of(ctx)
    if not form:  # a button (on a returned or requested card): the form as a card of its own
        ctx.outbox.send(ctx.person, await _open_form(ctx, cycle.id))
        return Reply(toast=ctx.t("goal_adjust.form_sent"), toast_kind="info")
    base = await live_content(ctx, cycle.id, ctx.person.id)

    async def again(error: str | None = None, warning: str | None = None) -> Card:
        return await _form_card(ctx, cycle, base, closes, requests, form=form, error=error, warning=warning)

    try:
        proposal, words = propose(ctx, cycle, base, form)
    except AdjustInvalid as exc:
        return Reply(
            toast=str(exc).splitlines()[0][:200], toast_kind="error", card=await again(error=str(exc))
        )
    reason = text(form, "reason", 1000)
    if not reason:
        error = ctx.t("goal_adjust.err_reason")
        return Reply(toast=error, toast_kind="error", card=await again(error=error))
    if same_promises(base, proposal):
        error = ctx.t("goal_adjust.err_nothing")
        return Reply(toast=error, toast_kind="error", card=await again(error=error))
    approver = await approver_to_notify(ctx.session, ctx.person, ctx.today())
    if approver is None:
        raise ctx.refuse("goal_adjust.no_approver")
    in_force = await in_force_now(ctx, cycle, ctx.person)
    latest = await gv.latest(ctx.session, cycle.id, ctx.person.id)
    number = (latest.version if latest is not None else in_force.version) + 1
    texts = [reason, *words]
    vague = await must_bounce_any(ctx, texts, entity=f"goal_adjust:v{number}", entity_id=mine.id)
    if vague:
        warning = "\n".join(ctx.t("vague.bounce", text=texts[i][:200]) for i in vague)
        return Reply(toast=warning[:200], toast_kind="warning", card=await again(warning=warning))
    version = GoalVersion(
        cycle_id=cycle.id,
        person_id=ctx.person.id,
        version=number,
        status=GoalVersionStatus.PROPOSED,
        content=proposal,
        reason=reason,
        proposed_by_id=ctx.person.id,
        proposed_at=ctx.now,
    )
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(version)
            await ctx.session.flush()
    except IntegrityError:
        raise ctx.refuse("common.already_done") from None
    diff = changes(base, proposal)
    ctx.audit(
        "goals.adjust_proposed",
        "goal_version",
        version.id,
        person_id=ctx.person.id,
        cycle_id=cycle.id,
        version=number,
        reason=reason,
        requested=[r.id for r in requests],
    )
    at = ctx.translator(approver)
    card = ga.review_card(
        at,
        version_id=version.id,
        name=ctx.person.name,
        code=cycle.code,
        version=number,
        reason=reason,
        proposed_at=ctx.local_text(ctx.now, approver),
        changes=diff,
    )
    await send_polite(ctx, approver, card, card_key=_key(version.id))
    note = done_by(
        ctx.t, name=ctx.person.name, what=ctx.t("goal_adjust.did_propose"), at=ctx.now, tz=ctx.zone()
    )
    mine_card = ga.proposed_card(
        ctx.t, code=cycle.code, version=number, approver=approver.name, changes=diff, note=note
    )
    return Reply(toast=ctx.t("goal_adjust.proposed_toast", approver=approver.name), card=mine_card)


# ---------------------------------------------------------------- deciding


async def _for_approver(ctx: Context, version_id: int) -> tuple[GoalVersion, Cycle, Person]:
    version = await ctx.session.get(GoalVersion, version_id)
    cycle = await ctx.session.get(Cycle, version.cycle_id) if version is not None else None
    owner = await ctx.session.get(Person, version.person_id) if version is not None else None
    if version is None or cycle is None or owner is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    await require_approver(ctx, owner)
    if version.status != GoalVersionStatus.PROPOSED:
        raise ctx.refuse("goal_adjust.already_decided", status=ctx.t(f"goal_adjust.status.{version.status}"))
    return version, cycle, owner


async def _review(
    ctx: Context,
    version: GoalVersion,
    cycle: Cycle,
    owner: Person,
    *,
    comment: str | None = None,
    warning: str | None = None,
) -> Card:
    base = await live_content(ctx, cycle.id, owner.id)
    return ga.review_card(
        ctx.t,
        version_id=version.id,
        name=owner.name,
        code=cycle.code,
        version=version.version,
        reason=version.reason or "—",
        proposed_at=ctx.local_text(version.proposed_at),
        changes=changes(base, dict(version.content or {})),
        comment=comment,
        warning=warning,
    )


@router.action(GoalAdjustApprove)
async def approve(ctx: Context, payload: GoalAdjustApprove) -> Reply:
    version, cycle, owner = await _for_approver(ctx, payload.version_id)
    if cycle.status != CycleStatus.ACTIVE:
        raise ctx.refuse("goal_adjust.cycle_not_active", code=cycle.code)
    card = await _review(ctx, version, cycle, owner)
    before = await live_content(ctx, cycle.id, owner.id)
    proposal: Content = dict(version.content or {})
    decided = await ctx.transition_or_refuse(
        GoalVersion,
        version.id,
        allowed=[GoalVersionStatus.PROPOSED],
        values={
            "status": GoalVersionStatus.APPROVED,
            "decided_by_id": ctx.person.id,
            "decided_at": ctx.now,
            "effective_from": ctx.now,
        },
    )
    decided.content = await apply_content(ctx, cycle.id, owner.id, proposal)
    diff = changes(before, decided.content)
    ctx.audit(
        "goals.adjust_approved",
        "goal_version",
        decided.id,
        person_id=owner.id,
        cycle_id=cycle.id,
        version=decided.version,
        effective_from=ctx.now.isoformat(),
        changed=sum(1 for g in diff for k in g.krs if k.change != "same")
        + sum(1 for g in diff if g.weight_before != g.weight_after),
    )
    ot = ctx.translator(owner)
    told = ga.approved_card(
        ot,
        code=cycle.code,
        version=decided.version,
        approver=ctx.person.name,
        since=ctx.local_text(ctx.now, owner),
        changes=diff,
    )
    await send_polite(ctx, owner, told, dedupe_key=f"goal_version:{decided.id}:approved")
    note = done_by(
        ctx.t, name=ctx.person.name, what=ctx.t("goal_adjust.did_approve"), at=ctx.now, tz=ctx.zone()
    )
    return Reply(toast=ctx.t("goal_adjust.approved_toast", name=owner.name), card=with_outcome(card, note))


async def build_return_form(ctx: Context, payload: GoalAdjustReturn) -> Form:
    version, cycle, owner = await _for_approver(ctx, payload.version_id)
    return (await _review(ctx, version, cycle, owner)).forms()[0]


@router.action(GoalAdjustReturn, form=build_return_form)
async def return_proposal(ctx: Context, payload: GoalAdjustReturn) -> Reply:
    version, cycle, owner = await _for_approver(ctx, payload.version_id)
    comment = text(form_of(ctx), "comment", 1000)
    if not comment:
        raise ctx.refuse("goal_adjust.comment_required")
    if await must_bounce(ctx, comment, entity="goal_version", entity_id=version.id):
        warning = ctx.t("vague.bounce", text=comment[:200])
        card = await _review(ctx, version, cycle, owner, comment=comment, warning=warning)
        return Reply(toast=warning[:200], toast_kind="warning", card=card)
    card = await _review(ctx, version, cycle, owner)
    await ctx.transition_or_refuse(
        GoalVersion,
        version.id,
        allowed=[GoalVersionStatus.PROPOSED],
        values={
            "status": GoalVersionStatus.RETURNED,
            "decided_by_id": ctx.person.id,
            "decided_at": ctx.now,
            "comment": comment,
        },
    )
    ctx.audit(
        "goals.adjust_returned",
        "goal_version",
        version.id,
        person_id=owner.id,
        cycle_id=cycle.id,
        version=version.version,
        comment=comment,
    )
    ot = ctx.translator(owner)
    now = window(ctx.today(owner), ctx.settings.goals.adjust_window_days)
    requested = await _requests(ctx, cycle, owner)
    if now.open:
        next_step = ot("goal_adjust.again_until", closes=now.closes.isoformat())
    elif requested:
        next_step = ot("goal_adjust.again_requested")
    else:
        next_step = ot("goal_adjust.again_next", opens=now.next_opens.isoformat())
    told = ga.returned_card(
        ot,
        cycle_id=cycle.id,
        code=cycle.code,
        version=version.version,
        approver=ctx.person.name,
        comment=comment,
        next_step=next_step,
    )
    await send_polite(ctx, owner, told, dedupe_key=f"goal_version:{version.id}:returned")
    note = done_by(
        ctx.t, name=ctx.person.name, what=ctx.t("goal_adjust.did_return"), at=ctx.now, tz=ctx.zone()
    )
    return Reply(
        toast=ctx.t("goal_adjust.returned_toast", name=owner.name),
        card=with_outcome(card, f"{note}: {comment}"),
    )
