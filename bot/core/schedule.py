"""Typed schedule entries: the vocabulary the scheduler and the flows share.

The scheduler (``scheduler/``) decides *who is due when*; a flow decides what being due means. They meet
here, on the floor both stand on, so neither imports the other:

- ``Job`` names each thing the scheduler computes for a person (open a check-in, escalate an action item…),
  and ``ARGS`` says which small frozen dataclass of arguments comes with it;
- an ``Entry`` pairs a ``Job`` with the flow's callable ``(ctx, args)``; each flow declares its entries next
  to its code (a module-level ``SCHEDULE``), and ``bot/app/flows.py`` lists them all, by hand;
- a ``Sweep`` is a job that finds its own work (deliverable-rating reminders, self-assessments, the daily
  org sync); it gets a narrow ``Host`` (database, clock, settings, the scheduler's answers, "run this for
  that person"), never the whole service.

Both kinds run on the scheduler's leader only, through one error path: counted in ``job_runs``, logged, and
tried again on the next tick.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Generic, Literal, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.batch import Batch
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.context import Context
from bot.core.schedule_port import SchedulePort
from storage.models import Person
from storage.queries.scheduled import PersonRow


class Job(StrEnum):
    """What the scheduler hands to a flow. The values are the contract's names (and the log's)."""

    OPEN_CHECKIN = "open_checkin"
    REMIND_CHECKIN = "remind_checkin"
    CLOSE_MISSED_CHECKIN = "close_missed_checkin"
    OPEN_REVIEW = "open_review"
    REMIND_REVIEW = "remind_review"
    REMIND_ACTION_ITEM = "remind_action_item"
    ESCALATE_ACTION_ITEM = "escalate_action_item"
    SEND_DIGEST = "send_digest"
    CHECK_EVIDENCE_RULES = "check_evidence_rules"
    SEND_DEPARTMENT_BRIEF = "send_department_brief"
    CHECK_THRESHOLDS = "check_thresholds"
    CHECK_EARLY_WARNING = "check_early_warning"
    OPEN_RHYTHM_EVIDENCE = "open_rhythm_evidence"


# ------------------------------------------------------------------------------------ arguments
@dataclass(frozen=True)
class PeriodArgs:
    """Open the prompt of a period (check-in, 3-2-1): its key and the moment it fell due (UTC)."""

    period: str
    due_at: datetime


@dataclass(frozen=True)
class CheckinArgs:
    """Remind or close one open check-in."""

    checkin_id: int


@dataclass(frozen=True)
class ReviewArgs:
    """Wake one snoozed 3-2-1 review."""

    review_id: int


@dataclass(frozen=True)
class ReminderArgs:
    """Remind the owner of one action item, T-N days (``before``) or on the day (``due``)."""

    item_id: int
    kind: Literal["before", "due"]


@dataclass(frozen=True)
class EscalationArgs:
    """Escalate one overdue action item to ``level`` (1 owner, 2 manager, 3 HRBP)."""

    item_id: int
    level: int


@dataclass(frozen=True)
class DayArgs:
    """The leadership digest of one local day."""

    day: date


@dataclass(frozen=True)
class WeekArgs:
    """The evidence rules of one ISO week (``2026-W48``), checked once it is over."""

    week: str


@dataclass(frozen=True)
class RhythmArgs:
    """The photo request of one key-result rhythm on one local day (issue 17 item 7)."""

    rhythm_id: int
    day: date


JobArgs = (
    PeriodArgs | CheckinArgs | ReviewArgs | ReminderArgs | EscalationArgs | DayArgs | WeekArgs | RhythmArgs
)

ARGS: Mapping[Job, type[JobArgs]] = {
    Job.OPEN_CHECKIN: PeriodArgs,
    Job.REMIND_CHECKIN: CheckinArgs,
    Job.CLOSE_MISSED_CHECKIN: CheckinArgs,
    Job.OPEN_REVIEW: PeriodArgs,
    Job.REMIND_REVIEW: ReviewArgs,
    Job.REMIND_ACTION_ITEM: ReminderArgs,
    Job.ESCALATE_ACTION_ITEM: EscalationArgs,
    Job.SEND_DIGEST: DayArgs,
    Job.CHECK_EVIDENCE_RULES: WeekArgs,
    Job.SEND_DEPARTMENT_BRIEF: PeriodArgs,
    Job.CHECK_THRESHOLDS: WeekArgs,
    Job.CHECK_EARLY_WARNING: WeekArgs,
    Job.OPEN_RHYTHM_EVIDENCE: RhythmArgs,
}
"""The arguments each job comes with: the scheduler builds them, the flow's entry takes them."""

A = TypeVar(
    "A", PeriodArgs, CheckinArgs, ReviewArgs, ReminderArgs, EscalationArgs, DayArgs, WeekArgs, RhythmArgs
)


# ------------------------------------------------------------------------------------ entries
@dataclass(frozen=True)
class Entry(Generic[A]):
    """One job and the flow callable that does it. ``ctx.person`` is the person it is due to; the call runs
    in the transaction that records the send, so a failure leaves nothing behind and is retried.

    The result only feeds the ledger's note: ``None``, ``False`` or ``0`` means "nothing to send"."""

    job: Job
    args: type[A]
    run: Callable[[Context, A], Awaitable[object]]

    def __post_init__(self) -> None:
        if ARGS[self.job] is not self.args:
            raise TypeError(f"{self.job} takes {ARGS[self.job].__name__}, not {self.args.__name__}")


class Host(Protocol):
    """What a sweep may use: the database, the clock, the settings, the scheduler's answers (the same port a
    Context carries as ``ctx.schedule``: a sweep that waits for a workday asks the scheduler's calendar), and
    one person's own transaction (through the same context, quiet hours included, as a scheduled job)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def schedule(self) -> SchedulePort: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def factory(self) -> async_sessionmaker[AsyncSession]: ...

    async def run_for_person(self, person_id: int, fn: Callable[[Context], Awaitable[None]]) -> None: ...


@dataclass(frozen=True)
class Sweep:
    """A job that finds its own work from the records (every tick, on the leader). ``name`` labels its
    metrics and log lines; an exception counts as a failed run, and the next tick simply runs it again."""

    name: str
    run: Callable[[Host], Awaitable[object]]


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Owed(Generic[T]):
    """One person's item in a batch: who (the scheduler's row of them) and the job's arguments."""

    person: PersonRow
    args: T


@dataclass(frozen=True)
class BatchEntry(Generic[A]):
    """The same job as an ``Entry``, for many people in one transaction: a wave (100,000 check-ins due at
    16:00 in one zone) in chunks instead of one transaction per person.

    The scheduler claims the chunk's ledger keys in the transaction and hands over only the items it
    claimed; ``run`` writes through the ``Batch`` (bulk inserts, quiet hours applied) and returns the
    items (of those it was given) it had nothing to send for: the ledger's note, as an ``Entry``'s falsy
    result. A batch that fails is retried item by item through the job's ``Entry``, so one bad record fails
    alone: a BatchEntry without an Entry for its job is an error when the table is built."""

    job: Job
    args: type[A]
    run: Callable[[Batch, Sequence[Owed[A]]], Awaitable[Collection[Owed[A]]]]

    def __post_init__(self) -> None:
        if ARGS[self.job] is not self.args:
            raise TypeError(f"{self.job} takes {ARGS[self.job].__name__}, not {self.args.__name__}")


ScheduleEntry = Entry[Any] | Sweep | BatchEntry[Any]
"""What a flow's ``SCHEDULE`` holds and the registry lists."""


# ------------------------------------------------------------------------------------ who gets what
def takes_checkins(person: Person | PersonRow) -> bool:
    """Check-ins, 3-2-1 reviews and evidence rules are for employees with someone to answer them."""
    return person.has_role("employee") and person.manager_id is not None
