"""Group commit: items that arrive while the database is busy are handed over together, a group at a time.

Why: a card click costs a transaction, and most of a small transaction's cost is fixed — a pooled connection
checked out (and pinged), BEGIN, COMMIT (an fsync), the inbound row claimed and answered. When clicks arrive
faster than one transaction at a time can take them, those waiting are better served by one transaction
together than by queueing for one each (on SQLite they would queue anyway: there is one writer, and the busy
handler sleeps). Each item still gets its own result.

How: ``submit`` puts an item in the queue and waits for its result. A lane starts on the next turn of the
event loop (so everything that arrived in the same turn goes together) and, when its group is done, takes
whatever queued meanwhile, up to ``max_items``. At low load a group is one item and nobody waits for anyone;
under load groups grow by themselves, as large as the arrivals during one group. A second lane (up to
``lanes``) opens only while every group in flight has been running longer than ``stall``: one slow handler
then holds up its own group, not every click behind it. ``run`` gets the items and returns, per item, a
result, an exception for that item, or ``AGAIN``: not processed, put back at the front of the queue (a group
that ran out of its time budget).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeAlias, TypeVar

log = logging.getLogger("perfloop.group_commit")

T = TypeVar("T")
R = TypeVar("R")


class _Again:
    """The item was not processed: queue it again (at the front, it has waited longest)."""


AGAIN = _Again()

Outcome: TypeAlias = R | BaseException | _Again
"""What a group runner says of one item: its result, its exception, or ``AGAIN``."""
GroupRunner: TypeAlias = Callable[[list[T]], Awaitable[list[Outcome[R]]]]


class GroupCommit(Generic[T, R]):
    def __init__(
        self, run: GroupRunner[T, R], *, lanes: int, max_items: int, stall: float | None = None
    ) -> None:
        """``lanes``: groups in flight at most. ``stall``: a further lane opens only when every group in
        flight has been running this many seconds (None: whenever items wait), so that groups stay large
        while the database keeps up, and one slow handler does not hold up every click behind it."""
        if lanes < 1 or max_items < 1:
            raise ValueError("lanes and max_items must be at least 1")
        self._run = run
        self.lanes = lanes
        self.max_items = max_items
        self.stall = stall
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._running = 0
        self._busy_since: dict[int, float] = {}
        """Lane → when its group in flight started."""
        self._recheck: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.groups = 0
        """Groups run so far, and the items they held: ``items / groups`` is the mean group size."""
        self.items = 0

    async def submit(self, item: T) -> R:
        """The item's result, or its exception raised. A caller that goes away (a cancelled request) does
        not take the item out of its group: it is processed and committed all the same, and a platform's
        retry of it is then a duplicate with a stored answer."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._start_lanes()
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(_unobserved)
            raise

    async def close(self) -> None:
        """Wait for the groups in flight (nothing new is started once the queue is empty)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None

    def _start_lanes(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue and self._running < self.lanes:
            busy = self._busy_since.values()
            if len(busy) < self._running:
                return  # a lane is starting or between groups: it takes the queue next
            if busy and self.stall is not None:
                young = self.stall - (loop.time() - max(busy))
                if young > 0:  # the groups in flight are not stuck (yet): look again when they would be
                    if self._recheck is None:
                        self._recheck = loop.call_later(young, self._look_again)
                    return
            self._running += 1
            task = loop.create_task(self._lane())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _look_again(self) -> None:
        self._recheck = None
        self._start_lanes()

    async def _lane(self) -> None:
        loop = asyncio.get_running_loop()
        lane = id(asyncio.current_task())
        try:
            await asyncio.sleep(0)  # one turn of the loop: whatever arrives in it joins the group
            while self._queue:
                group = [self._queue.popleft() for _ in range(min(self.max_items, len(self._queue)))]
                self.groups += 1
                self.items += len(group)
                self._busy_since[lane] = loop.time()
                try:
                    outcomes = await self._run([item for item, _ in group])
                    if len(outcomes) != len(group):
                        raise RuntimeError(f"group runner returned {len(outcomes)} outcomes for {len(group)}")
                except asyncio.CancelledError:
                    for _, future in group:
                        future.cancel()
                    raise
                except Exception as exc:  # a bug in the runner: every item of the group hears it
                    log.exception("group failed as a whole", extra={"items": len(group)})
                    outcomes = [exc] * len(group)
                again = []
                for (item, future), outcome in zip(group, outcomes, strict=True):
                    if isinstance(outcome, _Again):
                        again.append((item, future))
                    elif future.done():
                        continue
                    elif isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
                self._queue.extendleft(reversed(again))
                del self._busy_since[lane]
        finally:
            self._busy_since.pop(lane, None)
            self._running -= 1
            if self._queue:
                self._start_lanes()


def _unobserved(future: asyncio.Future[R]) -> None:
    """The outcome of an item whose caller went away: retrieved, so that asyncio does not report it."""
    if not future.cancelled():
        future.exception()
