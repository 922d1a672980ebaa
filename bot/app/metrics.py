"""Prometheus metrics at ``/metrics``. One registry per service, so tests can run many services side by side.

Counters are updated where things happen; outbox depth and the age of the oldest due row are read from
the database at scrape time (they are facts about the table, not about this process).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.ratelimit import TokenBucket
from storage.models import OutboxMessage

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _RateLimitWaits(Collector):
    def __init__(self, buckets: dict[str, TokenBucket]) -> None:
        self.buckets = buckets

    def collect(self):  # type: ignore[no-untyped-def]
        family = CounterMetricFamily(
            "perfloop_rate_limit_wait_seconds",
            "Seconds outbox senders waited for the per-app rate limiter",
            labels=["platform"],
        )
        for platform, bucket in sorted(self.buckets.items()):
            family.add_metric([platform], bucket.waited_seconds)
        yield family


class GroupCounts(Protocol):
    groups: int
    items: int


class _ClickGroups(Collector):
    def __init__(self, counts: GroupCounts) -> None:
        self.counts = counts

    def collect(self):  # type: ignore[no-untyped-def]
        yield CounterMetricFamily(
            "perfloop_click_groups", "Transactions of card clicks (group commit)", value=self.counts.groups
        )
        yield CounterMetricFamily(
            "perfloop_click_group_items",
            "Card clicks taken into those transactions (÷ groups: the mean group size)",
            value=self.counts.items,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.callbacks = Counter(
            "perfloop_callbacks", "Platform callbacks by result", ["platform", "result"], registry=r
        )
        self.callback_seconds = Histogram(
            "perfloop_callback_seconds",
            "Time to answer a callback",
            ["platform"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.sends = Counter(
            "perfloop_outbox_sends",
            "Outbox deliveries by result (sent, retry, deferred, dead, unknown: in doubt past the window)",
            ["platform", "op", "result"],
            registry=r,
        )
        self.job_runs = Counter(
            "perfloop_job_runs", "Background job runs by result", ["job", "result"], registry=r
        )
        self.outbox_depth = Gauge("perfloop_outbox_depth", "Outbox rows by status", ["status"], registry=r)
        self.outbox_oldest_due_seconds = Gauge(
            "perfloop_outbox_oldest_due_seconds",
            "Age of the oldest pending outbox row that is due",
            registry=r,
        )

    def watch_rate_limits(self, buckets: dict[str, TokenBucket]) -> None:
        self.registry.register(_RateLimitWaits(buckets))

    def watch_click_groups(self, counts: GroupCounts) -> None:
        self.registry.register(_ClickGroups(counts))

    async def render(self, factory: async_sessionmaker[AsyncSession], now: datetime) -> bytes:
        async with factory() as session:
            counts = dict(
                (
                    await session.execute(
                        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                    )
                ).all()
            )
            oldest = await session.scalar(
                select(func.min(OutboxMessage.next_attempt_at)).where(
                    OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now
                )
            )
        for status in ("pending", "sending", "sent", "dead", "unknown"):
            self.outbox_depth.labels(status).set(int(counts.get(status, 0)))
        # min() keeps the column type, so the value comes back as an aware UTC datetime on both databases.
        age = (now - oldest).total_seconds() if isinstance(oldest, datetime) else 0.0
        self.outbox_oldest_due_seconds.set(max(0.0, age))
        return generate_latest(self.registry)
