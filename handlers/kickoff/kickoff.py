"""Cycle kickoff: an HR admin previews a cycle's scope, confirms it, and everyone in scope gets the kickoff
card; acknowledgements are tracked per person. Also ``/cancelcycle`` and the manager's team-goals overview.

The chat command and ``perfloop kickoff`` share ``prepare_cycle`` and ``launch_cycle``, so a cycle started
from the CLI is exactly the same as one confirmed on the preview card, and both refuse the same inputs
(``handlers/kickoff/period.py`` for codes and dates). What is allowed but risky needs an explicit yes: a
period that has already ended is flagged on the preview (the CLI wants ``--allow-past``), and an overlap
with an active cycle for the same people turns "start" into a red "start anyway" (``--allow-overlap``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.core.context import Context, Outbox, Refused, Reply
from bot.core.people import require_hr_admin
from bot.core.router import Router
from bot.core.status import CycleStatus
from cards.flow_actions import KickoffAck, KickoffCancel, KickoffConfirm, KickoffTeamGoals
from cards.flow_common import done_by, with_outcome
from cards.goals import team_card
from cards.kickoff import (
    CycleRow,
    KickoffConfirmOverlap,
    KickoffStop,
    Overlap,
    cancellable_card,
    kickoff_card,
    overlap_text,
    preview_card,
    stop_card,
)
from cards.model import Card
from handlers.kickoff.errors import KickoffError, Label
from handlers.kickoff.launch import FIRST_CHUNK, begin_launch, launch_step
from handlers.kickoff.period import Period, canonical_code, parse_range, resolve_period
from handlers.kickoff.scope import Headcount, count_scope, scope_departments
from handlers.kickoff.states import move_cycle, record_move
from storage.models import Cycle, CycleParticipant
from storage.queries import cycles as cq
from storage.queries import people as pq

router = Router()

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
SEPARATORS = re.compile(r"[,，、;；\s]+")
LOOKS_LIKE_DATE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")
FINISHED = (CycleStatus.ACTIVE, CycleStatus.CLOSING, CycleStatus.CLOSED)
CANCELLABLE = (CycleStatus.DRAFT, CycleStatus.ACTIVE)


@dataclass(frozen=True)
class Request:
    """What ``/kickoff`` (or ``perfloop kickoff``) asked for, before anything is looked up."""

    code: str
    dates: tuple[date, date] | None
    departments: list[str]


@dataclass
class Plan:
    cycle: Cycle
    headcount: Headcount
    scope_names: list[str]
    period: Period
    overlaps: list[Overlap]


def parse_args(args: str) -> Request:
    """``2026-Q1 研发部,销售部`` or ``onboarding 2026-12-01~2027-02-28 研发部``; no departments = everyone."""
    code, _, rest = args.strip().partition(" ")
    if not code:
        raise KickoffError("kickoff.usage")
    dates, rest = parse_range(rest)
    names = [n for n in SEPARATORS.split(rest.strip()) if n]
    if names and LOOKS_LIKE_DATE.match(names[0]):
        raise KickoffError("kickoff.bad_dates", dates=names[0][:40])
    return Request(code, dates, names)


def parse_request(code: str, dates: str | None, departments: list[str]) -> Request:
    """``perfloop kickoff``'s separate arguments as a ``Request``; ``dates`` must be exactly one range."""
    parsed = None
    if dates and dates.strip():
        parsed, rest = parse_range(dates)
        if parsed is None or rest.strip():
            raise KickoffError("kickoff.bad_dates", dates=dates.strip()[:40])
    return Request(code.strip(), parsed, [d.strip() for d in departments if d.strip()])


async def overlaps_of(session: AsyncSession, cycle: Cycle, departments: set[int] | None) -> list[Overlap]:
    """The other active cycles whose days meet this cycle's and whose participants include its people
    (``departments``: its scope, ``scope_departments``).

    A cycle started before dates were required has none: it counts as running from the day it started,
    without an end, which is what it does in practice.
    """
    out: list[Overlap] = []
    for other in await cq.active_cycles(session, cycle.workspace_id, exclude_id=cycle.id):
        start = other.starts_on or (other.started_at.date() if other.started_at else None)
        if cycle.starts_on is not None and other.ends_on is not None and other.ends_on < cycle.starts_on:
            continue
        if cycle.ends_on is not None and start is not None and start > cycle.ends_on:
            continue
        shared = await cq.shared_participants(session, other.id, cycle.workspace_id, departments)
        if shared:
            out.append(Overlap(other.code, start, other.ends_on, shared))
    return out


async def prepare_cycle(
    session: AsyncSession,
    workspace_id: int,
    request: Request,
    *,
    today: date,
    actor_id: int | None,
    at: datetime,
    via: str,
    goal_visibility: str = "company",
) -> Plan:
    """Validate the request and create (or re-open) the cycle as a draft; a started cycle is never touched.

    This is the one check behind the chat preview and ``perfloop kickoff``: a bad code, bad or missing
    dates, an unknown department or an empty scope raise ``KickoffError``. What is allowed but needs a
    second look (a period already over, ``Plan.period.past``; an overlap with an active cycle for the same
    people, ``Plan.overlaps``) is returned for the caller to show and to require an explicit yes.
    """
    if not CODE.match(request.code):
        raise KickoffError("kickoff.bad_code", code=request.code[:40])
    period = resolve_period(request.code, request.dates, today)
    code = period.code
    departments, missing = await pq.departments_by_names(session, workspace_id, request.departments)
    if missing:
        raise KickoffError("kickoff.unknown_departments", names="、".join(missing)[:200])
    existing = await cq.cycle_by_code(session, workspace_id, code)
    if existing is not None and existing.status in FINISHED:
        raise KickoffError("kickoff.duplicate", code=code, status=status_label(existing.status))
    scope = sorted(d.id for d in departments)
    if existing is None:
        cycle = Cycle(
            workspace_id=workspace_id,
            code=code,
            status=CycleStatus.DRAFT,
            scope=scope,
            goal_visibility=goal_visibility,
        )
        session.add(cycle)
        await session.flush()
        record_move(session, cycle, was=None, actor_id=actor_id, at=at, via=via)
    elif existing.status == CycleStatus.CANCELLED:  # a cancelled cycle being started again
        reopened = await move_cycle(session, existing, CycleStatus.DRAFT, actor_id=actor_id, at=at, via=via)
        if reopened is None:
            raise KickoffError("kickoff.duplicate", code=code, status=status_label(existing.status))
        cycle = reopened
    else:  # a draft previewed before
        cycle = existing
    cycle.scope = scope
    cycle.starts_on, cycle.ends_on = period.starts_on, period.ends_on
    await session.flush()
    within = await scope_departments(session, workspace_id, scope)
    counted = await count_scope(session, workspace_id, within)
    if not counted.people:
        raise KickoffError("kickoff.nobody_in_scope")
    return Plan(
        cycle, counted, [d.name for d in departments], period, await overlaps_of(session, cycle, within)
    )


def status_label(status: str) -> Label:
    """A cycle status as a catalogue reference, so chat and CLI both show words, not ``active``."""
    return Label(f"kickoff.status.{status}")


async def launch_cycle(
    session: AsyncSession, outbox: Outbox, settings: Settings, cycle: Cycle
) -> tuple[int, int]:
    """Begin the kickoff of an (already active) cycle and write its first chunk of participants and cards
    (``handlers/kickoff/launch.py``), in the confirming transaction; the app writes the rest a chunk at a
    time. Returns (people in scope, outbox rows written now).

    Called only by whoever won the draft → active compare-and-set, so it runs once per start and needs no
    dedupe key of its own (a cancelled cycle started again broadcasts again, as it should).
    """
    people = await begin_launch(session, cycle)
    first = min(FIRST_CHUNK, settings.cycles.kickoff_chunk)
    step = await launch_step(session, outbox, settings, cycle, limit=first)
    await session.flush()
    return people, step.rows


async def _preview(ctx: Context, cycle: Cycle, counted: Headcount, overlaps: list[Overlap]) -> Card:
    return preview_card(
        ctx.t,
        cycle_id=cycle.id,
        code=cycle.code,
        scope_names=[d.name for d in await pq.departments_by_ids(ctx.session, cycle.scope)],
        headcount=counted.people,
        managers=counted.managers,
        schedule=ctx.settings.schedule,
        starts_on=cycle.starts_on,
        ends_on=cycle.ends_on,
        past=cycle.ends_on is not None and cycle.ends_on < ctx.today(),
        overlaps=overlaps,
    )


@router.command("kickoff", "启动周期")
async def kickoff_command(ctx: Context, args: str) -> Reply:
    """``/kickoff 2026-Q1 研发部,销售部``: HR gets a preview with the dates, the head-count and any warning;
    nothing is sent yet."""
    require_hr_admin(ctx)
    try:
        plan = await prepare_cycle(
            ctx.session,
            ctx.workspace.id,
            parse_args(args),
            today=ctx.today(),
            actor_id=ctx.person.id,
            at=ctx.now,
            via="chat",
            goal_visibility=ctx.settings.goals.default_visibility,
        )
    except KickoffError as exc:
        raise Refused(exc.message(ctx.t)) from None
    cycle = plan.cycle
    ctx.audit(
        "cycle.previewed",
        "cycle",
        cycle.id,
        code=cycle.code,
        scope=cycle.scope,
        headcount=plan.headcount.people,
        starts_on=plan.period.starts_on.isoformat(),
        ends_on=plan.period.ends_on.isoformat(),
        past=plan.period.past,
        overlaps=[o.code for o in plan.overlaps],
    )
    card = await _preview(ctx, cycle, plan.headcount, plan.overlaps)
    return Reply(card=card)


async def _cycle_of(ctx: Context, cycle_id: int) -> Cycle:
    cycle = await ctx.session.get(Cycle, cycle_id)
    if cycle is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    return cycle


async def _start(ctx: Context, cycle_id: int, *, overlap_ok: bool) -> Reply:
    """Confirm a draft. The overlap is checked again here: another cycle may have started since the
    preview, and only the red "start anyway" button (``overlap_ok``) may start over one."""
    require_hr_admin(ctx)
    cycle = await _cycle_of(ctx, cycle_id)
    if cycle.status != CycleStatus.DRAFT:
        raise ctx.refuse("common.already_done")
    within = await scope_departments(ctx.session, cycle.workspace_id, list(cycle.scope))
    counted = await count_scope(ctx.session, cycle.workspace_id, within)
    overlaps = await overlaps_of(ctx.session, cycle, within)
    if overlaps and not overlap_ok:
        return Reply(
            toast=ctx.t("kickoff.overlap_stopped", code=cycle.code, others=overlap_text(ctx.t, overlaps))[
                :200
            ],
            toast_kind="warning",
            card=await _preview(ctx, cycle, counted, overlaps),
        )
    started = await move_cycle(
        ctx.session,
        cycle,
        CycleStatus.ACTIVE,
        actor_id=ctx.person.id,
        at=ctx.now,
        via="chat",
        values={"started_by_id": ctx.person.id, "started_at": ctx.now},
        headcount=counted.people,
        overlap_override=[o.code for o in overlaps],
    )
    if started is None:
        raise ctx.refuse("common.already_done")
    cycle = started
    if cycle.starts_on is None:  # a draft previewed before dates were required
        cycle.starts_on = ctx.today()
    headcount, _ = await launch_cycle(ctx.session, ctx.outbox, ctx.settings, cycle)
    card = await _preview(ctx, cycle, counted, overlaps)
    note = done_by(
        ctx.t,
        name=ctx.person.name,
        what=ctx.t("kickoff.did_start", n=headcount),
        at=ctx.now,
        tz=ctx.zone(),
    )
    return Reply(toast=ctx.t("kickoff.started", code=cycle.code, n=headcount), card=with_outcome(card, note))


@router.action(KickoffConfirm)
async def confirm_kickoff(ctx: Context, payload: KickoffConfirm) -> Reply:
    return await _start(ctx, payload.cycle_id, overlap_ok=False)


@router.action(KickoffConfirmOverlap)
async def confirm_kickoff_overlap(ctx: Context, payload: KickoffConfirmOverlap) -> Reply:
    return await _start(ctx, payload.cycle_id, overlap_ok=True)


@router.action(KickoffCancel)
async def cancel_preview(ctx: Context, payload: KickoffCancel) -> Reply:
    require_hr_admin(ctx)
    before = await _cycle_of(ctx, payload.cycle_id)
    code = before.code
    if before.status != CycleStatus.DRAFT:
        raise ctx.refuse("common.already_done")
    cycle = await _move_or_refuse(ctx, before, CycleStatus.CANCELLED)
    card = await _preview(ctx, cycle, Headcount(0, 0), [])
    note = done_by(ctx.t, name=ctx.person.name, what=ctx.t("kickoff.did_cancel"), at=ctx.now, tz=ctx.zone())
    return Reply(toast=ctx.t("kickoff.cancelled", code=code), card=with_outcome(card, note))


async def _move_or_refuse(ctx: Context, cycle: Cycle, to: CycleStatus) -> Cycle:
    """A click's move: a second tap, or a move someone else made first, is "already done"."""
    moved = await move_cycle(ctx.session, cycle, to, actor_id=ctx.person.id, at=ctx.now, via="chat")
    if moved is None:
        raise ctx.refuse("common.already_done")
    return moved


async def _cancellable(ctx: Context) -> list[CycleRow]:
    cycles = await cq.cycles_in(ctx.session, ctx.workspace.id, CANCELLABLE)
    counts = await cq.participant_counts(ctx.session, [c.id for c in cycles])
    return [CycleRow(c.code, c.status, c.starts_on, c.ends_on, counts.get(c.id, 0)) for c in cycles]


@router.command("cancelcycle", "取消周期")
async def cancel_command(ctx: Context, args: str) -> Reply:
    """``/cancelcycle 2026-Q1``: a draft is cancelled at once; an active cycle, which everyone in scope has
    already been told about, first shows what cancelling means and asks for a confirmation. Without a code
    (or with an unknown one) it lists the cycles that can be cancelled."""
    require_hr_admin(ctx)
    code = args.strip()
    if not code:
        return Reply(card=cancellable_card(ctx.t, rows=await _cancellable(ctx)))
    cycle = await cq.cycle_by_code(ctx.session, ctx.workspace.id, code) or await cq.cycle_by_code(
        ctx.session, ctx.workspace.id, canonical_code(code)
    )
    if cycle is None:
        codes = ctx.t("kickoff.overlap_sep").join(r.code for r in await _cancellable(ctx))
        if codes:
            raise ctx.refuse("kickoff.no_such_cycle", code=code[:40], codes=codes[:300])
        raise ctx.refuse("kickoff.no_such_cycle_none", code=code[:40])
    if cycle.status == CycleStatus.ACTIVE:
        card = stop_card(
            ctx.t,
            cycle_id=cycle.id,
            code=cycle.code,
            starts_on=cycle.starts_on,
            ends_on=cycle.ends_on,
            participants=len(await cq.participant_ids(ctx.session, cycle.id)),
        )
        return Reply(card=card)
    if (
        cycle.status != CycleStatus.DRAFT
        or await move_cycle(
            ctx.session, cycle, CycleStatus.CANCELLED, actor_id=ctx.person.id, at=ctx.now, via="chat"
        )
        is None
    ):
        raise ctx.refuse(
            "kickoff.cannot_cancel", code=cycle.code, status=ctx.t(f"kickoff.status.{cycle.status}")
        )
    return Reply(toast=ctx.t("kickoff.cancelled", code=cycle.code))


@router.action(KickoffStop)
async def stop_cycle(ctx: Context, payload: KickoffStop) -> Reply:
    """The confirmed ``/cancelcycle`` of an active cycle."""
    require_hr_admin(ctx)
    before = await _cycle_of(ctx, payload.cycle_id)
    code = before.code
    if before.status != CycleStatus.ACTIVE:
        raise ctx.refuse("common.already_done")
    cycle = await _move_or_refuse(ctx, before, CycleStatus.CANCELLED)
    card = stop_card(
        ctx.t,
        cycle_id=cycle.id,
        code=code,
        starts_on=cycle.starts_on,
        ends_on=cycle.ends_on,
        participants=len(await cq.participant_ids(ctx.session, cycle.id)),
    )
    note = done_by(ctx.t, name=ctx.person.name, what=ctx.t("kickoff.did_stop"), at=ctx.now, tz=ctx.zone())
    return Reply(toast=ctx.t("kickoff.cancelled", code=code), card=with_outcome(card, note))


@router.action(KickoffAck)
async def acknowledge(ctx: Context, payload: KickoffAck) -> Reply:
    """ "Got it": stamps this person's participation once; the card keeps its goal buttons."""
    cycle = await _cycle_of(ctx, payload.cycle_id)
    mine = await cq.participant(ctx.session, cycle.id, ctx.person.id)
    if mine is None:
        raise ctx.refuse("kickoff.not_participant")
    if cycle.status != CycleStatus.ACTIVE:
        raise ctx.refuse("kickoff.not_active", code=cycle.code)
    await ctx.transition_or_refuse(
        CycleParticipant,
        mine.id,
        column="acknowledged_at",
        allowed=[None],
        values={"acknowledged_at": ctx.now},
    )
    ctx.audit("cycle.acknowledged", "cycle", cycle.id)
    is_manager = ctx.person.id in await pq.manager_ids_among(ctx.session, [ctx.person])
    note = done_by(ctx.t, name=ctx.person.name, what=ctx.t("kickoff.did_ack"), at=ctx.now, tz=ctx.zone())
    card = kickoff_card(
        ctx.t,
        cycle_id=cycle.id,
        code=cycle.code,
        starts_on=cycle.starts_on,
        ends_on=cycle.ends_on,
        schedule=ctx.settings.schedule,
        max_goals=ctx.settings.cycles.max_goals,
        manager=is_manager,
        acknowledged_note=note,
    )
    return Reply(toast=ctx.t("kickoff.acked"), card=card)


@router.action(KickoffTeamGoals)
async def team_goals(ctx: Context, payload: KickoffTeamGoals) -> Reply:
    """The manager's overview: each report's goal status, with a review button for those waiting."""
    cycle = await _cycle_of(ctx, payload.cycle_id)
    team = await cq.team_participants(ctx.session, cycle.id, ctx.person.id)
    if not team:
        raise ctx.refuse("kickoff.no_team")
    members = [(p.name, cp.goals_status, cp.id) for p, cp in team]
    ctx.outbox.send(ctx.person, team_card(ctx.t, code=cycle.code, members=members))
    return Reply(toast=ctx.t("kickoff.team_sent"), toast_kind="info")
