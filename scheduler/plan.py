"""The operator's view: ``perfloop schedule --next 20`` lists what the scheduler will hand over next, with
each item's local time and the reason it is when it is (moved by a holiday, a make-up workday, leave, a
manager's skip, a snooze)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.localtime import person_tz
from cards.catalogue import Translator
from scheduler import ledger
from scheduler.cadence import (
    Due,
    PeriodicFlow,
    Policy,
    action_item_steps,
    checkin_steps,
    periodic_flows,
    upcoming,
)
from scheduler.calendar import WorkCalendar, calendar_from_settings
from scheduler.engine import OPEN_ACTION_STATUSES, SNOOZE_FLOWS, on_leave, team_of, team_settings
from storage.db import create_engine, ensure_migrated, session_factory
from storage.models import ActionItem, CheckIn, Person, ScheduledSend


@dataclass(frozen=True)
class PlannedItem:
    due: Due
    person_name: str
    local: datetime
    reason: str
    status: str
    """What will happen: ``send``, ``skip`` (leave or a manager's skip), ``snoozed``."""


class PlanSource(Protocol):
    """What the plan reads: a ``Service`` has it, and so does the CLI's light-weight stand-in."""

    settings: Settings
    clock: Clock
    factory: async_sessionmaker[AsyncSession]


async def next_due(
    service: PlanSource, limit: int, *, calendar: WorkCalendar | None = None, locale: str | None = None
) -> list[PlannedItem]:
    """The next ``limit`` items, soonest first, across everyone."""
    cal = calendar or calendar_from_settings(service.settings)
    settings = service.settings
    now = service.clock.now()
    t = Translator(locale or settings.i18n.default_locale)
    async with service.factory() as session:
        people = {
            p.id: p
            for p in await session.scalars(
                select(Person).where(Person.active.is_(True), Person.paused.is_(False))
            )
        }
        tz = {pid: person_tz(p, settings) for pid, p in people.items()}
        teams = await team_settings(session)
        streams: list[Iterator[Due]] = []
        for pid, person in people.items():
            for pf in periodic_flows(person, settings, cal, team_of(person, teams)):
                streams.append(_dues(pf, pid, tz[pid], now))
        record_steps: list[Due] = []
        checkins = [
            ci
            for ci in await session.scalars(select(CheckIn).where(CheckIn.status == "open"))
            if ci.person_id in people
        ]
        snoozed = await ledger.snoozes_for(session, "snooze.checkin", (ci.id for ci in checkins))
        for ci in checkins:
            row = snoozed.get(ci.id)
            record_steps += checkin_steps(
                ci,
                tz[ci.person_id],
                settings,
                snoozed_until=row.due_at if row else None,
                team=team_of(people[ci.person_id], teams),
            )
        for item in await session.scalars(
            select(ActionItem).where(ActionItem.status.in_(OPEN_ACTION_STATUSES))
        ):
            if item.owner_id in people:
                record_steps += action_item_steps(item, tz[item.owner_id], settings, cal)
        for row in await session.scalars(
            select(ScheduledSend).where(
                ScheduledSend.status == "snoozed", ScheduledSend.flow.in_(SNOOZE_FLOWS)
            )
        ):
            if row.person_id in people and row.due_at is not None:
                record_steps.append(
                    Due(
                        flow=row.flow,
                        person_id=row.person_id,
                        period=row.period,
                        at=row.due_at,
                        tz=tz[row.person_id],
                        handler=SNOOZE_FLOWS[row.flow],
                        policy=Policy.REMINDER,
                        args=(int(row.period),),
                    )
                )
        streams.append(iter(sorted((s for s in record_steps if s.at > now), key=lambda d: d.at)))
        # Look a little further than ``limit`` so keys already settled (a skip) still show but others follow.
        merged = list(itertools.islice(heapq.merge(*streams, key=lambda d: d.at), limit * 3))
        ledger_rows = {}
        if merged:
            found = await session.scalars(
                select(ScheduledSend).where(ledger.key_filter({d.key for d in merged}))
            )
            ledger_rows = {(r.flow, r.person_id, r.period): r for r in found}
    out: list[PlannedItem] = []
    for due in merged:
        row = ledger_rows.get(due.key)
        if row is not None and row.status not in ("skipped", "snoozed"):
            continue  # already handled early (or by another path); not upcoming any more
        person = people[due.person_id]
        status, reason = _explain(t, due, person, row)
        out.append(
            PlannedItem(due=due, person_name=person.name, local=due.local(), reason=reason, status=status)
        )
        if len(out) >= limit:
            break
    return out


def _dues(pf: PeriodicFlow, person_id: int, tz: str, now: datetime) -> Iterator[Due]:
    for occ in upcoming(pf.series, now, tz):
        yield pf.due(person_id, tz, occ)


def _explain(t: Translator, due: Due, person: Person, row: ScheduledSend | None) -> tuple[str, str]:
    reasons: list[str] = []
    status = "send"
    if row is not None and row.status == "skipped":
        status = "skip"
        reasons.append(t("schedule.reason.skipped", reason=row.reason or ""))
    elif (row is not None and row.status == "snoozed") or due.flow in SNOOZE_FLOWS:
        status = "snoozed"
        reasons.append(t("schedule.reason.snoozed"))
    if due.nominal is not None:
        reasons.append(
            t(
                "schedule.reason.moved",
                nominal=due.nominal.isoformat(),
                holiday=t(f"schedule.holiday.{due.holiday or 'weekend'}"),
            )
        )
    if due.makeup:
        reasons.append(t("schedule.reason.makeup"))
    day = due.local().date()
    if on_leave(person, day):
        if due.policy is Policy.PERIODIC:
            status = "skip"
        reasons.append(t("schedule.reason.leave", until=str(person.leave_until)))
    return status, "; ".join(reasons)


def format_plan(items: list[PlannedItem], *, locale: str | None = None) -> str:
    """Plain text for the terminal, one item a line; local time first, UTC for the operator."""
    t = Translator(locale)
    if not items:
        return t("schedule.plan_empty")
    lines = []
    for it in items:
        utc = it.due.at.strftime("%m-%d %H:%M")
        flow = t("schedule.flow." + it.due.flow.replace(".", "_"))
        lines.append(
            f"{it.local:%Y-%m-%d %a %H:%M} {it.due.tz:<16} (UTC {utc})  {flow:<14}"
            f" {it.person_name:<12} {it.due.period:<12} {t(f'schedule.status.{it.status}')}"
            + (f"  {it.reason}" if it.reason else "")
        )
    return "\n".join(lines)


@dataclass
class _Source:
    settings: Settings
    clock: Clock
    factory: async_sessionmaker[AsyncSession]


async def show_plan(settings: Settings, limit: int, *, locale: str | None = None) -> str:
    """``perfloop schedule --next N``: the plan as text, straight from the configured database."""
    if limit < 1:
        raise ValueError("--next must be at least 1")
    engine = create_engine(settings.database.url)
    try:
        await ensure_migrated(engine)
        source = _Source(settings=settings, clock=Clock(), factory=session_factory(engine))
        items = await next_due(source, limit, locale=locale)
    finally:
        await engine.dispose()
    return format_plan(items, locale=locale or settings.i18n.default_locale)
