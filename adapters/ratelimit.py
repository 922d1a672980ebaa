"""A per-app rate limiter: the platforms' own limits (WeCom per minute, Feishu 50/s and 1,000/min, DingTalk
QPS) are per app, and each counts the calls that reached it in a sliding window.

Two rules decide when a call may go:

- **An absolute schedule** (GCRA): call *k* is due ``1 / rate`` after call *k − 1*, and may go up to
  ``burst − 1`` slots early. A caller reserves its slot the moment it asks, so a caller that wakes late
  still sends at once, and the next caller's slot has not moved: a late wake-up loses no credit. (A
  bucket topped up when a waiter wakes lost every late wake-up's delay: about a third of the rate at
  300/s on a busy event loop; a limiter that slept and then took the next slot from "now" did the same.)
- **Sliding windows** (the platform's per-second figure, and per-minute where it has one): at most
  ``limit`` calls in any ``seconds + margin``. Late wake-ups bunch grants that the schedule meant to
  spread, and the window check holds such a grant back just long enough. A call made through ``slot()``
  counts in the windows from the moment its answer came back: the platform saw it at some point between
  the grant and the answer, and only the answer's time is an upper bound. (Counting from the grant lets a
  call delayed on its way — a busy event loop, a descheduled process — arrive inside the window of a call
  granted a second later: on a loaded machine that was dozens of "rate limited" answers a minute, each
  stopping every sender for a second.) A call still in flight occupies its windows until it is answered.

Waiting callers never hold a lock: each has its own slot, so one caller's sleep delays nobody else.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core.config import RateLimit

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_EPSILON = 1e-9


class Window:
    """At most ``limit`` calls in any ``seconds``: the times calls were counted at, oldest first, plus the
    calls granted and not yet answered (which count until they are)."""

    def __init__(self, limit: int, seconds: float) -> None:
        if limit < 1 or seconds <= 0:
            raise ValueError("a window needs limit >= 1 and seconds > 0")
        self.limit = limit
        self.seconds = seconds
        self._counted: deque[float] = deque()
        self.in_flight = 0

    def free_at(self, now: float) -> float | None:
        """The earliest time one more call fits (``now`` when it fits already); None while the room depends
        only on calls still in flight (it frees when one is answered)."""
        counted = self._counted
        while counted and counted[0] <= now - self.seconds + _EPSILON:
            counted.popleft()
        over = len(counted) + self.in_flight - self.limit
        if over < 0:
            return now
        if over < len(counted):
            return counted[over] + self.seconds
        return None

    def count(self, at: float) -> None:
        self._counted.append(at)


class TokenBucket:
    """``rate`` grants per second on an absolute schedule, ``burst`` of them at once after a pause, and never
    more than each window's limit in any of its windows (see the module docstring).

    ``clock`` and ``sleep`` are the monotonic clock and ``asyncio.sleep``; tests pass a virtual pair."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        windows: Sequence[tuple[int, float]] = (),
        margin: float = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1 or margin < 0:
            raise ValueError("rate must be > 0, burst >= 1 and margin >= 0")
        self.rate = rate
        self.burst = burst
        self.margin = margin
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) / rate
        self._clock = clock
        self._sleep = sleep
        self._tat = clock()
        """When the next reserved slot falls due (GCRA's theoretical arrival time)."""
        self.windows = [Window(limit, seconds + margin) for limit, seconds in windows]
        self._answered = asyncio.Event()
        """Set whenever a call in flight is answered: a caller waiting for room in a window full of calls in
        flight wakes then."""
        self._shift = 0.0
        """Seconds added to every slot by ``penalise`` so far: reserved slots move with the schedule."""
        self._not_before = -math.inf
        self.waited_seconds = 0.0
        """Seconds callers spent waiting, summed over callers (``/metrics``)."""

    def reserve(self) -> float:
        """Take the next slot on the schedule; returns when it falls due."""
        now = self._clock()
        tat = max(self._tat, now)
        self._tat = tat + self._interval
        return tat - self._tolerance

    async def _grant(self) -> float:
        due = self.reserve()
        shift = self._shift
        while True:
            now = self._clock()
            at: float | None = max(due + self._shift - shift, self._not_before)
            for window in self.windows:
                free = window.free_at(now)
                at = None if free is None or at is None else max(at, free)
            if at is not None and at <= now:
                return now
            if at is None:
                self._answered.clear()
                started = self._clock()
                await self._answered.wait()
                self.waited_seconds += self._clock() - started
                continue
            self.waited_seconds += at - now
            await self._sleep(at - now)

    async def acquire(self) -> None:
        """Wait for this caller's slot (and room in every window); the call counts from now."""
        now = await self._grant()
        for window in self.windows:
            window.count(now)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """``async with limiter.slot(): <one platform call>``: wait as ``acquire`` does; the call counts in
        the windows from the moment it is answered (or fails), and occupies them until then."""
        await self._grant()
        for window in self.windows:
            window.in_flight += 1
        try:
            yield
        finally:
            now = self._clock()
            for window in self.windows:
                window.in_flight -= 1
                window.count(now)
            self._answered.set()

    def penalise(self, seconds: float) -> None:
        """The platform answered "rate limited, wait ``seconds``": nothing goes before then, and every slot
        still to come moves back with the schedule, so the senders resume at the rate, not all at once.
        Several answers to calls of one burst push the schedule back once, not once each."""
        now = self._clock()
        until = now + seconds
        moved = until - max(self._not_before, now)
        if moved <= 0:
            return
        self._not_before = until
        self._shift += moved
        self._tat = max(self._tat, now) + moved


class Unlimited(TokenBucket):
    def __init__(self) -> None:
        super().__init__(1.0, 1)

    async def acquire(self) -> None:
        return None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        yield

    def penalise(self, seconds: float) -> None:
        return None


def limiter_for(cfg: RateLimit) -> TokenBucket:
    """The limiter a ``[<platform>.rate_limit]`` section describes: paced at ``per_second``, at most that
    many calls in any second (rounded down, at least one) and, where set, ``per_minute`` in any minute."""
    windows: list[tuple[int, float]] = [(max(1, math.floor(cfg.per_second + _EPSILON)), 1.0)]
    if cfg.per_minute:
        windows.append((cfg.per_minute, 60.0))
    return TokenBucket(cfg.per_second, cfg.burst, windows=windows, margin=cfg.margin_seconds)
