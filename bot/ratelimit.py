"""A per-app token bucket: the platforms' own limits (WeCom, Feishu ~50/s, DingTalk QPS) are per app."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()
        self.waited_seconds = 0.0

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
                self.waited_seconds += wait
                await asyncio.sleep(wait)

    def penalise(self, seconds: float) -> None:
        """After a rate-limit answer, drain the bucket so every sender backs off."""
        self._refill()
        self._tokens = min(self._tokens, -seconds * self.rate)


class Unlimited(TokenBucket):
    def __init__(self) -> None:
        super().__init__(1.0, 1)

    async def acquire(self) -> None:
        return None

    def penalise(self, seconds: float) -> None:
        return None
