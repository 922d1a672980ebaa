"""The schedule a runner runs, checked when it is built, and what the scheduler needs from the app.

The entries come from the app (``bot/app/flows.py`` lists every flow's ``SCHEDULE``); the scheduler imports
no flow and resolves no names. A job without an entry, two entries for one job, or two sweeps of one name
are errors here, at start-up, not a warning in the log weeks later; so is a batch entry (a job done for a
chunk of people at once) without the job's own entry, which a failed batch falls back to. Tests (and a
deployment that runs only part of the product) build a ``partial`` table on purpose: the items of a job it
does not run wait, unrecorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from bot.core.schedule import BatchEntry, Entry, Host, Job, ScheduleEntry, Sweep


class ScheduleError(Exception):
    """The schedule handed to the scheduler is incomplete or ambiguous."""


class JobTable:
    def __init__(self, entries: Iterable[ScheduleEntry], *, partial: bool = False) -> None:
        self._jobs: dict[Job, Entry[Any]] = {}
        self._batches: dict[Job, BatchEntry[Any]] = {}
        sweeps: dict[str, Sweep] = {}
        for entry in entries:
            if isinstance(entry, Sweep):
                if entry.name in sweeps:
                    raise ScheduleError(f"two sweeps named {entry.name!r}")
                sweeps[entry.name] = entry
            elif isinstance(entry, BatchEntry):
                if entry.job in self._batches:
                    raise ScheduleError(f"two batch entries for the job {entry.job}")
                self._batches[entry.job] = entry
            else:
                if entry.job in self._jobs:
                    raise ScheduleError(f"two entries for the job {entry.job}")
                self._jobs[entry.job] = entry
        missing = [str(job) for job in Job if job not in self._jobs]
        if missing and not partial:
            raise ScheduleError("no schedule entry for " + ", ".join(missing))
        alone = [str(job) for job in self._batches if job not in self._jobs]
        if alone:  # a failed batch is retried item by item: that needs the job's own entry
            raise ScheduleError("a batch entry without an entry for " + ", ".join(alone))
        self.sweeps: tuple[Sweep, ...] = tuple(sweeps.values())

    def entry(self, job: Job) -> Entry[Any] | None:
        """The entry that runs ``job``; None only in a partial table."""
        return self._jobs.get(job)

    def batch(self, job: Job) -> BatchEntry[Any] | None:
        """The entry that runs ``job`` for a chunk of people at once, if the flow has one."""
        return self._batches.get(job)


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
