"""The operator's view: ``perfloop schedule --next 20`` lists what the scheduler will hand over next, with
each item's local time and the reason it is when it is (moved by a holiday, a make-up workday, leave, a
manager's skip, a snooze)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.status import SendStatus
from cards.catalogue import Translator
from scheduler import ledger
from scheduler.agenda import SNOOZE_JOBS, read_agenda
from scheduler.cadence import Due, Policy
from scheduler.calendar import WorkCalendar, calendar_from_settings
from storage.db import create_engine, ensure_migrated, session_factory
from storage.models import ScheduledSend
from storage.queries.people import on_leave
from storage.queries.scheduled import PersonRow


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

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def factory(self) -> async_sessionmaker[AsyncSession]: ...


async def next_due(
    service: PlanSource, limit: int, *, calendar: WorkCalendar | None = None, locale: str | None = None
) -> list[PlannedItem]:
    """The next ``limit`` items, soonest first, across everyone: the tick's own agenda, looked at ahead."""
    cal = calendar or calendar_from_settings(service.settings)
    settings = service.settings
    now = service.clock.now()
    t = Translator(locale or settings.i18n.default_locale)
    async with service.factory() as session:
        agenda = await read_agenda(session, settings, cal)
        # Look a little further than ``limit`` so keys already settled (a skip) still show but others follow.
        merged = list(itertools.islice(agenda.coming(now), limit * 3))
        ledger_rows = {}
        if merged:
            found = await session.scalars(
                select(ScheduledSend).where(ledger.key_filter({d.key for d in merged}))
            )
            ledger_rows = {(r.flow, r.person_id, r.period): r for r in found}
    out: list[PlannedItem] = []
    for due in merged:
        row = ledger_rows.get(due.key)
        if row is not None and row.status not in (SendStatus.SKIPPED, SendStatus.SNOOZED):
            continue  # already handled early (or by another path); not upcoming any more
        person = agenda.people[due.person_id]
        status, reason = _explain(t, due, person, row)
        out.append(
            PlannedItem(due=due, person_name=person.name, local=due.local(), reason=reason, status=status)
        )
        if len(out) >= limit:
            break
    return out


def _explain(t: Translator, due: Due, person: PersonRow, row: ScheduledSend | None) -> tuple[str, str]:
    reasons: list[str] = []
    status = "send"
    if row is not None and row.status == SendStatus.SKIPPED:
        status = "skip"
        reasons.append(t("schedule.reason.skipped", reason=row.reason or ""))
    elif (row is not None and row.status == SendStatus.SNOOZED) or due.flow in SNOOZE_JOBS:
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
