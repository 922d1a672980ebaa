"""Cycle kickoff: an HR admin previews a cycle's scope, confirms it, and everyone in scope gets the kickoff
card; acknowledgements are tracked per person. Also ``/cancelcycle`` and the manager's team-goals overview.

The chat command and ``perfloop kickoff`` share ``prepare_cycle`` and ``launch_cycle``, so a cycle started
from the CLI is exactly the same as one confirmed on the preview card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.core.context import Context, Outbox, Reply
from bot.core.people import require_hr_admin
from bot.core.router import Router
from bot.core.status import CycleStatus
from cards.catalogue import Translator
from cards.flow_actions import KickoffAck, KickoffCancel, KickoffConfirm, KickoffTeamGoals
from cards.flow_common import done_by, with_outcome
from cards.goals import team_card
from cards.kickoff import kickoff_card, preview_card
from cards.model import Card
from storage.models import Cycle, CycleParticipant
from storage.queries import cycles as cq
from storage.queries import people as pq
from storage.queries.status import transition

router = Router()

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
SEPARATORS = re.compile(r"[,，、;；\s]+")
FINISHED = (CycleStatus.ACTIVE, CycleStatus.CLOSED)


class KickoffError(ValueError):
    """Bad kickoff input, phrased through the catalogue so chat and CLI say the same thing."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def message(self, t: Translator) -> str:
        return t(self.key, **self.params)


@dataclass
class Plan:
    cycle: Cycle
    people: list[pq.Member]
    manager_ids: set[int]
    scope_names: list[str]


def parse_args(args: str) -> tuple[str, list[str]]:
    """``2026-Q1 研发部,销售部`` → ("2026-Q1", ["研发部", "销售部"]); no departments = the whole company."""
    code, _, rest = args.strip().partition(" ")
    if not code:
        raise KickoffError("kickoff.usage")
    return code, [n for n in SEPARATORS.split(rest.strip()) if n]


def quarter_bounds(code: str) -> tuple[date | None, date | None]:
    m = QUARTER.match(code)
    if not m:
        return None, None
    year, q = int(m.group(1)), int(m.group(2))
    start = date(year, 3 * q - 2, 1)
    end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return start, date.fromordinal(end.toordinal() - 1)


async def scope_people(session: AsyncSession, workspace_id: int, scope: list[int]) -> list[pq.Member]:
    if not scope:
        return await pq.active_members(session, workspace_id)
    return await pq.active_members(
        session, workspace_id, await pq.department_subtree(session, workspace_id, scope)
    )


async def prepare_cycle(
    session: AsyncSession, workspace_id: int, code: str, department_names: list[str]
) -> Plan:
    """Validate the input and create (or re-open) the cycle as a draft; a started cycle is never touched."""
    if not CODE.match(code):
        raise KickoffError("kickoff.bad_code", code=code[:40])
    departments, missing = await pq.departments_by_names(session, workspace_id, department_names)
    if missing:
        raise KickoffError("kickoff.unknown_departments", names="、".join(missing)[:200])
    existing = await cq.cycle_by_code(session, workspace_id, code)
    if existing is not None and existing.status in FINISHED:
        raise KickoffError("kickoff.duplicate", code=code, status=existing.status)
    scope = sorted(d.id for d in departments)
    if existing is None:
        cycle = Cycle(workspace_id=workspace_id, code=code, status=CycleStatus.DRAFT, scope=scope)
        session.add(cycle)
    else:  # a draft previewed before, or a cancelled cycle being started again
        cycle = existing
        cycle.status = CycleStatus.DRAFT
        cycle.scope = scope
    cycle.starts_on, cycle.ends_on = quarter_bounds(code)
    await session.flush()
    people = await scope_people(session, workspace_id, scope)
    if not people:
        raise KickoffError("kickoff.nobody_in_scope")
    return Plan(cycle, people, await pq.manager_ids_among(session, people), [d.name for d in departments])


async def launch_cycle(
    session: AsyncSession, outbox: Outbox, settings: Settings, cycle: Cycle
) -> tuple[int, int]:
    """Add the participants of an (already active) cycle and broadcast the kickoff card.

    Staff and managers get different cards (managers' carries "confirm my team's goals"); each group is
    broadcast once per locale in the platform's multi-recipient batches. Returns (participants, rows).
    Called only by whoever won the draft → active compare-and-set, so it runs once per start and needs no
    dedupe key of its own (a cancelled cycle started again broadcasts again, as it should).
    """
    people = await scope_people(session, cycle.workspace_id, list(cycle.scope))
    known = await cq.participant_ids(session, cycle.id)
    stale = known - {p.id for p in people}
    stale_ids = sorted(stale)
    for start in range(0, len(stale_ids), 10_000):  # a cancelled cycle restarted with a narrower scope
        await session.execute(
            delete(CycleParticipant).where(
                CycleParticipant.cycle_id == cycle.id,
                CycleParticipant.person_id.in_(stale_ids[start : start + 10_000]),
            )
        )
    joining = [{"cycle_id": cycle.id, "person_id": p.id} for p in people if p.id not in known]
    for start in range(0, len(joining), 5000):  # bulk, not one ORM object per person
        await session.execute(insert(CycleParticipant), joining[start : start + 5000])
    managers = await pq.manager_ids_among(session, people)
    rows = 0
    for is_manager in (False, True):
        group = [p for p in people if (p.id in managers) == is_manager]
        if not group:
            continue

        def build(t: Translator, is_manager: bool = is_manager) -> Card:
            return kickoff_card(
                t,
                cycle_id=cycle.id,
                code=cycle.code,
                starts_on=cycle.starts_on,
                ends_on=cycle.ends_on,
                schedule=settings.schedule,
                max_goals=settings.cycles.max_goals,
                manager=is_manager,
            )

        rows += await outbox.broadcast(
            group,
            build,
            card_key=f"kickoff:{cycle.id}",
        )
    await session.flush()
    return len(people), rows


def _preview(ctx: Context, plan: Plan) -> Card:
    return preview_card(
        ctx.t,
        cycle_id=plan.cycle.id,
        code=plan.cycle.code,
        scope_names=plan.scope_names,
        headcount=len(plan.people),
        managers=len(plan.manager_ids),
        schedule=ctx.settings.schedule,
    )


@router.command("kickoff", "启动周期")
async def kickoff_command(ctx: Context, args: str) -> Reply:
    """``/kickoff 2026-Q1 研发部,销售部``: HR gets a preview with the head-count; nothing is sent yet."""
    require_hr_admin(ctx)
    try:
        code, names = parse_args(args)
        plan = await prepare_cycle(ctx.session, ctx.workspace.id, code, names)
    except KickoffError as exc:
        raise ctx.refuse(exc.key, **exc.params) from None
    ctx.audit(
        "cycle.previewed",
        "cycle",
        plan.cycle.id,
        code=code,
        scope=plan.cycle.scope,
        headcount=len(plan.people),
    )
    return Reply(card=_preview(ctx, plan))


async def _cycle_of(ctx: Context, cycle_id: int) -> Cycle:
    cycle = await ctx.session.get(Cycle, cycle_id)
    if cycle is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    return cycle


@router.action(KickoffConfirm)
async def confirm_kickoff(ctx: Context, payload: KickoffConfirm) -> Reply:
    require_hr_admin(ctx)
    await _cycle_of(ctx, payload.cycle_id)
    cycle = await ctx.transition_or_refuse(
        Cycle,
        payload.cycle_id,
        allowed=[CycleStatus.DRAFT],
        values={"status": CycleStatus.ACTIVE, "started_by_id": ctx.person.id, "started_at": ctx.now},
    )
    if cycle.starts_on is None:
        cycle.starts_on = ctx.today()
    headcount, _ = await launch_cycle(ctx.session, ctx.outbox, ctx.settings, cycle)
    ctx.audit("cycle.started", "cycle", cycle.id, code=cycle.code, headcount=headcount)
    people = await scope_people(ctx.session, cycle.workspace_id, list(cycle.scope))
    names = [d.name for d in await pq.departments_by_ids(ctx.session, cycle.scope)]
    card = preview_card(
        ctx.t,
        cycle_id=cycle.id,
        code=cycle.code,
        scope_names=names,
        headcount=len(people),
        managers=len(await pq.manager_ids_among(ctx.session, people)),
        schedule=ctx.settings.schedule,
    )
    note = done_by(
        ctx.t,
        name=ctx.person.name,
        what=ctx.t("kickoff.did_start", n=headcount),
        at=ctx.now,
        tz=ctx.zone(),
    )
    return Reply(toast=ctx.t("kickoff.started", code=cycle.code, n=headcount), card=with_outcome(card, note))


@router.action(KickoffCancel)
async def cancel_preview(ctx: Context, payload: KickoffCancel) -> Reply:
    require_hr_admin(ctx)
    before = await _cycle_of(ctx, payload.cycle_id)
    code = before.code
    cycle = await ctx.transition_or_refuse(
        Cycle, payload.cycle_id, allowed=[CycleStatus.DRAFT], values={"status": CycleStatus.CANCELLED}
    )
    ctx.audit("cycle.cancelled", "cycle", cycle.id, code=code, was=CycleStatus.DRAFT)
    card = preview_card(
        ctx.t,
        cycle_id=cycle.id,
        code=code,
        scope_names=[d.name for d in await pq.departments_by_ids(ctx.session, cycle.scope)],
        headcount=0,
        managers=0,
        schedule=ctx.settings.schedule,
    )
    note = done_by(ctx.t, name=ctx.person.name, what=ctx.t("kickoff.did_cancel"), at=ctx.now, tz=ctx.zone())
    return Reply(toast=ctx.t("kickoff.cancelled", code=code), card=with_outcome(card, note))


@router.command("cancelcycle", "取消周期")
async def cancel_command(ctx: Context, args: str) -> Reply:
    """``/cancelcycle 2026-Q1``: stops a draft or active cycle (HR admins only)."""
    require_hr_admin(ctx)
    code = args.strip()
    cycle = await cq.cycle_by_code(ctx.session, ctx.workspace.id, code) if code else None
    if cycle is None:
        raise ctx.refuse("kickoff.no_such_cycle", code=code[:40] or "—")
    was = cycle.status
    if (
        await transition(
            ctx.session,
            Cycle,
            cycle.id,
            allowed=[CycleStatus.DRAFT, CycleStatus.ACTIVE],
            values={"status": CycleStatus.CANCELLED},
        )
        is None
    ):
        raise ctx.refuse("kickoff.cannot_cancel", code=code, status=was)
    ctx.audit("cycle.cancelled", "cycle", cycle.id, code=code, was=was)
    return Reply(toast=ctx.t("kickoff.cancelled", code=code))


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
