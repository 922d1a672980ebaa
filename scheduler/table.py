"""The schedule a runner runs, checked when it is built, and what the scheduler needs from the app.

The entries come from the app (``bot/app/flows.py`` lists every flow's ``SCHEDULE``); the scheduler imports
no flow and resolves no names. A job without an entry, two entries for one job, or two sweeps of one name
are errors here, at start-up, not a warning in the log weeks later. Tests (and a deployment that runs only
part of the product) build a ``partial`` table on purpose: the items of a job it does not run wait,
unrecorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from bot.core.schedule import Entry, Host, Job, ScheduleEntry, Sweep


class ScheduleError(Exception):
    """The schedule handed to the scheduler is incomplete or ambiguous."""


class JobTable:
    def __init__(self, entries: Iterable[ScheduleEntry], *, partial: bool = False) -> None:
        self._jobs: dict[Job, Entry[Any]] = {}
        sweeps: dict[str, Sweep] = {}
        for entry in entries:
            if isinstance(entry, Sweep):
                if entry.name in sweeps:
                    raise ScheduleError(f"two sweeps named {entry.name!r}")
                sweeps[entry.name] = entry
            else:
                if entry.job in self._jobs:
                    raise ScheduleError(f"two entries for the job {entry.job}")
                self._jobs[entry.job] = entry
        missing = [str(job) for job in Job if job not in self._jobs]
        if missing and not partial:
            raise ScheduleError("no schedule entry for " + ", ".join(missing))
        self.sweeps: tuple[Sweep, ...] = tuple(sweeps.values())

    def entry(self, job: Job) -> Entry[Any] | None:
        """The entry that runs ``job``; None only in a partial table."""
        return self._jobs.get(job)


class Waker(Protocol):
    def notify(self) -> None:
        """Something was just committed to the outbox: wake the workers."""
        ...


class Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class Counter(Protocol):
    def labels(self, job: str, result: str) -> Incrementable: ...


class JobMetrics(Protocol):
    @property
    def job_runs(self) -> Counter: ...


class SchedulerHost(Host, Protocol):
    """What the engine and the runner use from the app (a ``bot.app.service.Service`` is one): a sweep's
    ``Host``, plus the outbox to wake after a tick and the ``job_runs`` counter."""

    @property
    def outbox(self) -> Waker: ...

    @property
    def metrics(self) -> JobMetrics: ...
