"""A per-app rate limiter: the platforms' own limits (WeCom, Feishu ~50/s, DingTalk QPS) are per app.

A token bucket of ``rate`` per second holding ``burst``, kept as a schedule (GCRA): every grant has a slot
``1 / rate`` after the previous one and may be taken up to ``burst - 1`` slots early. The schedule, rather
than a bucket topped up when a waiter wakes, is what keeps the rate under load: a waiter that wakes late
does not move the next slot, where a bucket of burst 1 lost every late wake-up's delay — at 300/s on a busy
event loop that was about a third of the rate (bench/broadcast.py, docs/performance.md). Either way no more
than ``rate + burst`` grants fall in any one-second window.
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) / rate
        self._slot = time.monotonic()
        """When the next grant is due (the theoretical arrival time); in the past while the bucket fills."""
        self._lock = asyncio.Lock()
        self.waited_seconds = 0.0

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            slot = max(self._slot, now)
            wait = slot - self._tolerance - now
            if wait > 0:
                self.waited_seconds += wait
                await asyncio.sleep(wait)
            self._slot = slot + self._interval

    def penalise(self, seconds: float) -> None:
        """After a rate-limit answer, push the schedule back so every sender backs off."""
        self._slot = max(self._slot, time.monotonic() + seconds + self._tolerance)


class Unlimited(TokenBucket):
    def __init__(self) -> None:
        super().__init__(1.0, 1)

    async def acquire(self) -> None:
        return None

    def penalise(self, seconds: float) -> None:
        return None
