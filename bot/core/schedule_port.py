"""What a flow may ask of the scheduler without importing it (``ctx.schedule``).

Three requests come from the chat: ``/checkin`` (answer early) needs the occurrence the scheduler will reach
next, ``/skip`` needs that occurrence recorded as skipped in the scheduler's ledger, and the "snooze 1 day"
button needs a wake-up recorded there; a photo request stays open until the end of the next workday, which
only the scheduler's calendar knows. The answers live in
``scheduler/`` (cadence maths, calendar, ledger); the app puts an implementation (``scheduler.port``) on every
Context, so a flow never computes a series or writes a ledger row itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Person


@dataclass(frozen=True)
class Slot:
    """One upcoming occurrence of a person's series."""

    period: str
    """The ledger period (a check-in's nominal local day, ``2026-12-04``)."""
    at: datetime
    """When it falls due, UTC."""
    local: datetime
    """The same moment where the person lives."""


@dataclass(frozen=True)
class Skipped:
    """The outcome of skipping one person's next check-in."""

    slot: Slot
    new: bool
    """False when the ledger already held the key (skipped before, or already handled)."""


@dataclass(frozen=True)
class Snoozed:
    """The outcome of snoozing one prompt."""

    until: datetime
    """When it wakes up (UTC): the new time, or the earlier snooze's when ``new`` is False."""
    new: bool
    """False when the prompt was snoozed before: one snooze per prompt."""


SnoozeKind = Literal["checkin", "review"]


class SchedulePort(Protocol):
    async def next_checkin(self, session: AsyncSession, person: Person, now: datetime) -> Slot | None:
        """The person's next check-in after ``now`` as the tick will reach it (their own cadence, else their
        manager's team settings, else the configured one); None when they take no check-ins."""
        ...

    async def next_review(self, session: AsyncSession, person: Person, now: datetime) -> Slot | None:
        """The person's next monthly 3-2-1 review after ``now`` as the tick will reach it (``/review``
        answers early); None when they take no reviews."""
        ...

    async def skip_next_checkin(
        self, session: AsyncSession, person: Person, now: datetime, *, reason: str
    ) -> Skipped | None:
        """Record the person's next check-in (as their manager's team settings schedule it) as skipped, in
        ``session``'s transaction, so the tick finds the key taken and sends nothing; None when they take no
        check-ins."""
        ...

    async def snooze(
        self,
        session: AsyncSession,
        person: Person,
        kind: SnoozeKind,
        record_id: int,
        *,
        until: datetime,
        now: datetime,
    ) -> Snoozed:
        """Record, in ``session``'s transaction, that the ``kind`` prompt of ``record_id`` wakes up at
        ``until`` as its flow's reminder; a second snooze of the same prompt changes nothing and says when
        the first one wakes."""
        ...

    def workday_after(self, day: date) -> date:
        """The first workday after ``day`` on the scheduler's calendar (Chinese public holidays and make-up
        days, plus ``[schedule] extra_holidays``/``extra_workdays``): how long a flow waits for a person."""
        ...
