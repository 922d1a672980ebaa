"""Outbox delivery: claim due rows, render and send through the adapter, record the result.

Claims are atomic and exclusive (one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``;
SQLite serialises writers so the same statement is exclusive there too). A claim is a lease: a worker that
dies leaves rows that another worker re-claims once the lease runs out. The platform idempotency key is
derived from the row id, so such a resend is recognised by platforms that deduplicate.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.base import Adapter, DeliveryError, RateLimited, SendResult
from adapters.ratelimit import TokenBucket, Unlimited
from adapters.registry import AdapterRegistry
from bot.app.metrics import Metrics
from bot.app.recipient_cap import RecipientCap
from bot.core.clock import Clock
from bot.core.config import OutboxConfig, Settings
from cards.model import Card
from storage.models import CardMessage, OutboxMessage

log = logging.getLogger("perfloop.outbox")


@dataclass
class Outcome:
    row_id: int
    ok: bool
    result: SendResult | None = None
    error: str | None = None
    retryable: bool = True
    retry_after: float | None = None
    deferred: bool = False
    """Held back by the per-person cap: not an attempt, not an error."""


class OutboxDelivery:
    def __init__(
        self,
        *,
        factory: async_sessionmaker[AsyncSession],
        registry: AdapterRegistry,
        settings: Settings,
        clock: Clock,
        buckets: dict[str, TokenBucket] | None = None,
        worker_id: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.per_person = RecipientCap(settings.outbox.per_person_per_minute)
        self.factory = factory
        self.registry = registry
        self.cfg: OutboxConfig = settings.outbox
        self.clock = clock
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.buckets = buckets if buckets is not None else self._buckets(settings)
        self._wake = asyncio.Event()
        self._listening = asyncio.Lock()
        self.sent_count = 0
        self.dead_count = 0

    def _buckets(self, settings: Settings) -> dict[str, TokenBucket]:
        out: dict[str, TokenBucket] = {}
        for adapter in self.registry:
            section = getattr(settings, adapter.platform, None)
            rl = getattr(section, "rate_limit", None)
            out[adapter.platform] = TokenBucket(rl.per_second, rl.burst) if rl else Unlimited()
        return out

    def notify(self) -> None:
        """Something was just committed to the outbox: wake idle workers instead of waiting for the poll."""
        self._wake.set()

    # ------------------------------------------------------------------ claiming
    async def claim(self, limit: int) -> list[OutboxMessage]:
        now = self.clock.now()
        due = or_(
            and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
            and_(OutboxMessage.status == "sending", OutboxMessage.claimed_until < now),
        )
        ids = (
            select(OutboxMessage.id)
            .where(due)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(
                status="sending",
                claimed_by=self.worker_id,
                claimed_until=now + timedelta(seconds=self.cfg.lease_seconds),
                attempts=OutboxMessage.attempts + 1,
            )
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False)
        )
        async with self.factory() as session, session.begin():
            rows = list((await session.scalars(stmt)).all())
        rows.sort(key=lambda r: r.id)
        return rows

    # ------------------------------------------------------------------ sending
    async def _deliver(self, row: OutboxMessage) -> Outcome:
        person = row.recipients[0] if row.op == "send" and len(row.recipients) == 1 else None
        if person is not None:
            wait = self.per_person.reserve(row.platform, person, self.clock.now())
            if wait is not None:
                return Outcome(
                    row.id,
                    ok=False,
                    deferred=True,
                    retry_after=wait,
                    error="deferred: per-person message cap",
                )
        outcome = await self._send_row(row)
        if person is not None and not outcome.ok:
            self.per_person.release(row.platform, person)
        return outcome

    async def _send_row(self, row: OutboxMessage) -> Outcome:
        try:
            adapter = self.registry.get(row.platform)
            card = Card.model_validate(row.card)
            bucket = self.buckets.get(row.platform) or Unlimited()
            await bucket.acquire()
            key = f"perfloop-outbox-{row.id}"
            if row.op == "update":
                ref = row.target_ref or await self._message_ref(row)
                if ref is None:
                    return Outcome(row.id, ok=True, result=SendResult(), error="no earlier message to update")
                await adapter.update(ref, card, recipient=row.recipients[0])
                return Outcome(row.id, ok=True, result=SendResult())
            result = await self._send(adapter, row.recipients, card, key)
            return Outcome(row.id, ok=True, result=result)
        except RateLimited as exc:
            limiter = self.buckets.get(row.platform)
            if limiter is not None:
                limiter.penalise(exc.retry_after or 1.0)
            return Outcome(row.id, ok=False, error=f"rate limited: {exc}", retry_after=exc.retry_after)
        except DeliveryError as exc:
            return Outcome(
                row.id,
                ok=False,
                error=f"{type(exc).__name__}: {exc}",
                retryable=exc.retryable,
                retry_after=exc.retry_after,
            )
        except Exception as exc:
            log.exception("outbox delivery crashed", extra={"outbox_id": row.id})
            return Outcome(row.id, ok=False, error=f"{type(exc).__name__}: {exc}")

    @staticmethod
    async def _send(adapter: Adapter, recipients: Sequence[str], card: Card, key: str) -> SendResult:
        if len(recipients) == 1:
            return await adapter.send(recipients[0], card, idempotency_key=key)
        return await adapter.send_many(list(recipients), card, idempotency_key=key)

    async def _message_ref(self, row: OutboxMessage) -> str | None:
        if not row.card_key:
            return None
        async with self.factory() as session:
            ref: str | None = await session.scalar(
                select(CardMessage.message_ref).where(
                    CardMessage.card_key == row.card_key,
                    CardMessage.platform_user_id == row.recipients[0],
                    CardMessage.platform == row.platform,
                )
            )
            return ref

    # ------------------------------------------------------------------ recording
    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        if retry_after is not None and retry_after > 0:
            return float(min(retry_after, self.cfg.backoff_max_seconds))
        base = self.cfg.backoff_base_seconds * (2 ** max(0, attempts - 1))
        return float(min(self.cfg.backoff_max_seconds, base * random.uniform(0.5, 1.5)))

    async def _record(self, rows: dict[int, OutboxMessage], outcomes: list[Outcome]) -> None:
        now = self.clock.now()
        async with self.factory() as session, session.begin():
            refs: list[dict[str, Any]] = []
            for out in outcomes:
                row = rows[out.row_id]
                mine = and_(
                    OutboxMessage.id == row.id,
                    OutboxMessage.claimed_by == self.worker_id,
                    OutboxMessage.status == "sending",
                )
                if out.ok:
                    result = out.result or SendResult()
                    await session.execute(
                        update(OutboxMessage)
                        .where(mine)
                        .values(
                            status="sent",
                            sent_at=now,
                            claimed_until=None,
                            last_error=out.error,
                            result={
                                "invalid": result.invalid_recipients,
                                "refs": dict(list(result.message_refs.items())[:50]),
                            },
                        )
                    )
                    self.sent_count += 1
                    self._count(row, "sent")
                    if row.card_key and row.op == "send":
                        refs.extend(
                            {
                                "platform": row.platform,
                                "card_key": row.card_key,
                                "platform_user_id": uid,
                                "message_ref": ref,
                                "created_at": now,
                            }
                            for uid, ref in result.message_refs.items()
                        )
                    if result.invalid_recipients:
                        log.warning(
                            "platform rejected recipients",
                            extra={"outbox_id": row.id, "invalid": result.invalid_recipients[:20]},
                        )
                elif out.deferred:
                    await session.execute(
                        update(OutboxMessage)
                        .where(mine)
                        .values(
                            status="pending",
                            attempts=OutboxMessage.attempts - 1,
                            next_attempt_at=now + timedelta(seconds=out.retry_after or 1.0),
                            claimed_until=None,
                            last_error=out.error,
                        )
                    )
                    self._count(row, "deferred")
                elif out.retryable and row.attempts < self.cfg.max_attempts:
                    delay = self._backoff(row.attempts, out.retry_after)
                    await session.execute(
                        update(OutboxMessage)
                        .where(mine)
                        .values(
                            status="pending",
                            next_attempt_at=now + timedelta(seconds=delay),
                            claimed_until=None,
                            last_error=out.error,
                        )
                    )
                    self._count(row, "retry")
                else:
                    await session.execute(
                        update(OutboxMessage)
                        .where(mine)
                        .values(status="dead", claimed_until=None, last_error=out.error)
                    )
                    self.dead_count += 1
                    self._count(row, "dead")
                    log.error("outbox message dead", extra={"outbox_id": row.id, "error": out.error})
            if refs:
                await _upsert_card_messages(session, refs)

    def _count(self, row: OutboxMessage, result: str) -> None:
        if self.metrics is not None:
            self.metrics.sends.labels(row.platform, row.op, result).inc()

    # ------------------------------------------------------------------ loops
    async def drain_once(self) -> int:
        rows = await self.claim(self.cfg.batch_size)
        if not rows:
            return 0
        outcomes = await asyncio.gather(*(self._deliver(r) for r in rows))
        await self._record({r.id: r for r in rows}, list(outcomes))
        return len(rows)

    async def run_worker(self, stop: asyncio.Event) -> None:
        """Idle workers take turns listening, so one ``notify()`` costs one claim, not one per worker (every
        callback notifies; most queue one row or none). A worker that claimed a full batch wakes the next
        listener, so a broadcast still gets every worker."""
        while not stop.is_set():
            try:
                n = await self.drain_once()
            except Exception:
                log.exception("outbox worker loop error")
                n = 0
            if n >= self.cfg.batch_size:
                self._wake.set()
            elif n == 0:
                async with self._listening:
                    if stop.is_set():
                        return
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=self.cfg.poll_seconds)
                    except TimeoutError:
                        pass

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self.run_worker(stop) for _ in range(self.cfg.workers)))

    async def drain(self, *, timeout: float = 60.0) -> None:
        """Deliver until nothing is due (tests, benchmarks, the CLI ``send`` command)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            counts = await asyncio.gather(*(self.drain_once() for _ in range(self.cfg.workers)))
            if sum(counts) == 0:
                return
        raise TimeoutError("outbox not drained in time")

    async def depth(self) -> dict[str, int]:
        async with self.factory() as session:
            rows = await session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
            return {status: int(n) for status, n in rows.all()}


async def _upsert_card_messages(session: AsyncSession, refs: list[dict[str, Any]]) -> None:
    # Two sends of one card key to one person in the same batch (a card and its reminder): the later wins.
    # PostgreSQL refuses an ON CONFLICT statement that touches the same row twice.
    latest = {(r["card_key"], r["platform_user_id"], r["platform"]): r for r in refs}
    refs = list(latest.values())
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for start in range(0, len(refs), 500):
        stmt = insert(CardMessage).values(refs[start : start + 500])
        stmt = stmt.on_conflict_do_update(
            index_elements=["card_key", "platform_user_id", "platform"],
            set_={"message_ref": stmt.excluded.message_ref, "created_at": stmt.excluded.created_at},
        )
        await session.execute(stmt)
