"""The rate limiter's schedule, on virtual time: deterministic, and late wake-ups are injected on purpose.

A busy event loop wakes a sleeper late; the limiter must then neither lose the late caller's credit (the
schedule stays absolute, so the rate holds) nor let the late grant bunch with the next ones past the
platform's limit in any sliding window (that is what the platform answers "rate limited" to).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Sequence

import pytest

from adapters.ratelimit import TokenBucket, limiter_for
from bot.core.config import FeishuConfig, RateLimit


class VirtualTime:
    """A clock and a ``sleep`` for the limiter. ``run`` wakes sleepers in time order; ``late(n)`` says how
    many seconds after its due time the n-th wake-up happens (every sleeper due by then wakes with it, as
    the timers of a loop that was busy do)."""

    def __init__(self, late: Callable[[int], float] = lambda n: 0.0) -> None:
        self.now = 0.0
        self.late = late
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._wakes = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._seq), future))
        await future

    async def _settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    async def run(self, *tasks: asyncio.Task[None]) -> None:
        await self._settle()
        while not all(t.done() for t in tasks):
            assert self._sleepers, "tasks are stuck without a sleeper to wake"
            due = self._sleepers[0][0]
            self.now = max(self.now, due + self.late(next(self._wakes)))
            while self._sleepers and self._sleepers[0][0] <= self.now:
                _, _, future = heapq.heappop(self._sleepers)
                future.set_result(None)
            await self._settle()
        for t in tasks:
            t.result()


def bucket(
    vt: VirtualTime,
    rate: float,
    burst: int = 1,
    *,
    windows: Sequence[tuple[int, float]] = (),
    margin: float = 0.0,
) -> TokenBucket:
    return TokenBucket(rate, burst, windows=windows, margin=margin, clock=vt.clock, sleep=vt.sleep)


async def senders(vt: VirtualTime, limiter: TokenBucket, *, n: int, concurrency: int) -> list[float]:
    """``concurrency`` callers (the outbox's rows in flight) taking ``n`` grants in all; the grant times."""
    grants: list[float] = []
    left = itertools.count()

    async def caller() -> None:
        while next(left) < n:
            await limiter.acquire()
            grants.append(vt.now)

    await vt.run(*(asyncio.create_task(caller()) for _ in range(concurrency)))
    return sorted(grants)


def most_in_any_window(grants: list[float], seconds: float) -> int:
    """The most grants falling in any half-open window ``(t - seconds, t]`` (how a platform counts)."""
    best, start = 0, 0
    for end, at in enumerate(grants):
        while grants[start] <= at - seconds + 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_late_wake_ups_keep_their_credit() -> None:
    # Every 5th wake-up comes 35 ms late: three and a half slots at 100/s.
    vt = VirtualTime(late=lambda n: 0.035 if n % 5 == 0 else 0.0)
    limiter = bucket(vt, 100.0)
    grants = await senders(vt, limiter, n=2000, concurrency=50)
    assert len(grants) == 2000
    # The slot of every late wake-up is used: 2,000 grants take 20 s, as at a perfect pace...
    assert 19.99 <= grants[-1] <= 19.99 + 0.035
    # ...because late grants go at once with the next ones (the credit they have).
    assert any(b - a < 1e-9 for a, b in itertools.pairwise(grants))


async def test_a_window_never_holds_more_than_its_limit_whatever_the_wake_ups() -> None:
    vt = VirtualTime(late=lambda n: 0.035 if n % 5 == 0 else 0.0)
    limiter = bucket(vt, 100.0, windows=[(100, 1.0)])
    grants = await senders(vt, limiter, n=2000, concurrency=50)
    assert most_in_any_window(grants, 1.0) == 100
    # A late grant holds back only the grant a full window later (the platform counts real times); a
    # limiter that dropped the credit of each late wake-up would need about 30 s here.
    assert grants[-1] < 21.0


async def test_one_late_caller_sends_at_once_and_the_next_slots_do_not_move() -> None:
    vt = VirtualTime(late=lambda n: 0.25 if n == 0 else 0.0)
    limiter = bucket(vt, 10.0, windows=[(10, 1.0)])
    grants = await senders(vt, limiter, n=6, concurrency=6)
    # Slots every 0.1 s from 0; the wake-up due at 0.1 comes at 0.35 and wakes the callers of 0.2 and 0.3
    # with it: all three go at 0.35 (no credit lost), and 0.4 and 0.5 keep their slots.
    assert grants == pytest.approx([0.0, 0.35, 0.35, 0.35, 0.4, 0.5])


async def test_the_minute_window_and_the_second_window_both_hold() -> None:
    # Feishu's message limits: 50/s and 1,000/min.
    vt = VirtualTime(late=lambda n: 0.03 if n % 7 == 0 else 0.0)
    limiter = bucket(vt, 50.0, windows=[(50, 1.0), (1000, 60.0)])
    grants = await senders(vt, limiter, n=1500, concurrency=40)
    assert most_in_any_window(grants, 1.0) == 50
    assert most_in_any_window(grants, 60.0) == 1000
    assert 19.98 <= grants[999] < 20.5  # the first thousand at 50/s
    assert grants[1000] >= grants[0] + 60.0  # then the minute window decides
    assert 69.98 <= grants[-1] < 71.0  # and the last 500 go at 50/s again


async def test_the_margin_widens_every_window() -> None:
    vt = VirtualTime()
    limiter = bucket(vt, 100.0, windows=[(100, 1.0)], margin=0.05)
    grants = await senders(vt, limiter, n=300, concurrency=20)
    assert most_in_any_window(grants, 1.05) == 100
    assert grants[100] - grants[0] >= 1.05 - 1e-9


async def test_idle_time_earns_no_more_than_the_burst() -> None:
    vt = VirtualTime()
    limiter = bucket(vt, 10.0, burst=3, windows=[(10, 1.0)])
    vt.now = 100.0  # long idle
    grants = await senders(vt, limiter, n=6, concurrency=6)
    assert grants == pytest.approx([100.0, 100.0, 100.0, 100.1, 100.2, 100.3])


async def test_a_rate_limit_answer_moves_every_slot_back_once() -> None:
    vt = VirtualTime()
    limiter = bucket(vt, 10.0, windows=[(10, 1.0)])
    grants: list[float] = []

    async def caller() -> None:
        await limiter.acquire()
        grants.append(vt.now)

    async def platform_says_wait() -> None:
        await vt.sleep(0.15)
        limiter.penalise(1.0)
        limiter.penalise(1.0)  # a second answer to a call of the same burst: the same pause
        await vt.sleep(0.01)
        limiter.penalise(0.5)  # inside the pause already: nothing more

    tasks = [asyncio.create_task(caller()) for _ in range(6)]
    await vt.run(asyncio.create_task(platform_says_wait()), *tasks)
    # 0.0 and 0.1 went before the answer at 0.15; the slots of 0.2…0.5 each move back by one second.
    assert sorted(grants) == pytest.approx([0.0, 0.1, 1.2, 1.3, 1.4, 1.5])
    assert limiter.waited_seconds > 4.0


async def test_a_call_counts_from_its_answer_so_a_slow_arrival_cannot_overfill_a_window() -> None:
    """Through ``slot()`` a call counts from the moment it is answered: the platform saw it between the grant
    and the answer, so counting the answer's time keeps every window whatever the delay on the way."""
    vt = VirtualTime()
    limiter = bucket(vt, 10.0, windows=[(10, 1.0)])
    answered: list[float] = []
    granted: list[float] = []

    async def call(trip: float) -> None:
        async with limiter.slot():
            granted.append(vt.now)
            await vt.sleep(trip)  # on the wire: the platform sees it somewhere in here
        answered.append(vt.now)

    # Every answer takes 0.3 s (a slow path: the platform may have seen each call at any point in it).
    await vt.run(*(asyncio.create_task(call(0.3)) for _ in range(12)))
    assert granted[:10] == pytest.approx([i / 10 for i in range(10)])
    # The 11th goes a second after the first answer (0.3), not a second after the first grant.
    assert granted[10:] == pytest.approx([1.3, 1.4])
    assert answered[0] == pytest.approx(0.3)
    assert limiter.windows[0].in_flight == 0


async def test_calls_in_flight_hold_their_place_until_answered() -> None:
    vt = VirtualTime()
    limiter = bucket(vt, 100.0, windows=[(3, 1.0)])
    granted: list[float] = []

    async def call() -> None:
        async with limiter.slot():
            granted.append(vt.now)
            await vt.sleep(5.0)  # a platform that takes five seconds to answer

    await vt.run(*(asyncio.create_task(call()) for _ in range(4)))
    # Three in flight fill the window; the fourth goes a second after the first answers.
    assert granted == pytest.approx([0.0, 0.01, 0.02, 6.0])


def test_the_config_describes_both_windows() -> None:
    limiter = limiter_for(RateLimit(per_second=50.0, burst=10, per_minute=1000, margin_seconds=0.02))
    assert [(w.limit, w.seconds) for w in limiter.windows] == [(50, 1.02), (1000, 60.02)]
    # A fractional rate rounds its per-second window down, never to zero.
    assert limiter_for(RateLimit(per_second=166.7, burst=1)).windows[0].limit == 166
    assert limiter_for(RateLimit(per_second=0.5, burst=1)).windows[0].limit == 1
    # Feishu's defaults are its documented figures.
    feishu = FeishuConfig().rate_limit
    assert (feishu.per_second, feishu.per_minute) == (50.0, 1000)
