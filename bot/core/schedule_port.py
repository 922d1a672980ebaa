"""What a flow may ask of the scheduler without importing it (``ctx.schedule``).

Two questions come from the chat: ``/checkin`` (answer early) needs the occurrence the scheduler will reach
next, and ``/skip`` needs that occurrence recorded as skipped in the scheduler's ledger. Both answers live in
``scheduler/`` (cadence maths, calendar, ledger); the app puts an implementation (``scheduler.port``) on every
Context, so a flow never computes a series or writes a ledger row itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

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


class SchedulePort(Protocol):
    async def next_checkin(self, session: AsyncSession, person: Person, now: datetime) -> Slot | None:
        """The person's next check-in after ``now`` from their own cadence (else the configured one); None
        when they take no check-ins."""
        ...

    async def skip_next_checkin(
        self, session: AsyncSession, person: Person, now: datetime, *, reason: str
    ) -> Skipped | None:
        """Record the person's next check-in (as their manager's team settings schedule it) as skipped, in
        ``session``'s transaction, so the tick finds the key taken and sends nothing; None when they take no
        check-ins."""
        ...
