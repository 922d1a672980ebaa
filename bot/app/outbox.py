"""Outbox delivery: claim due rows, render and send through the adapter, record the result.

Claims are atomic and exclusive (one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``;
SQLite serialises writers so the same statement is exclusive there too). A claim is a lease: a worker that
dies leaves rows that another worker re-claims once the lease runs out. The platform idempotency key is
derived from the row id, so such a resend is recognised by platforms that deduplicate.

Resends stay inside the platform's dedupe window (issue 16 #10). A platform recognises a resend only for a
while (Feishu's ``uuid`` one hour, WeCom's duplicate check the interval we ask, 30 min by default; DingTalk
robot text not at all), so "same key" alone does not make a crash harmless. Therefore:

- Right before the platform call, in its own short commit, the worker stamps ``attempt_started_at`` (kept if
  already set) — but only while the row is still its own; a worker that lost its lease does not send.
- Any answer from the platform (sent, an error, a rate limit) is recorded, and an error answer clears the
  stamp: the adapter has said what happened, and a retry is an ordinary retry with the same key.
- A row taken over after a lease ran out with the stamp still set is *in doubt*: the call may have been
  delivered. It is sent again only while ``now < attempt_started_at + window − margin``
  (``[outbox] dedupe_window_seconds`` per platform, ``dedupe_margin_seconds`` for time in flight and clock
  difference between replicas). The stamp is the *first* unanswered call's, because a deduplicated resend
  does not extend the platform's memory.
- Past that, the row becomes ``unknown``: not sent again, counted in ``/metrics``
  (``perfloop_outbox_depth{status="unknown"}``, ``perfloop_outbox_sends_total{result="unknown"}``), listed by
  ``perfloop outbox list`` and sent again only when an operator decides so (``perfloop outbox retry``).

A row claimed but never stamped (waiting on the rate limiter or the per-person cap when the process died)
never reached the platform and is resent at any age. Updates are not stamped: setting a card to the same
content twice shows nothing new.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.base import Adapter, DeliveryError, RateLimited, SendResult
from adapters.ratelimit import TokenBucket, Unlimited, limiter_for
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
    unknown: bool = False
    """In doubt past the platform's dedupe window: not sent again (see the module docstring)."""
    lost_lease: bool = False
    """Another worker took the row over before this one reached the platform: nothing sent or recorded."""
    answered: bool = True
    """False when the call ended in our own unexpected exception: the platform may have taken it."""


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
        self.per_person = RecipientCap(
            settings.outbox.per_person_per_minute, settings.outbox.per_person_per_hour
        )
        self.factory = factory
        self.registry = registry
        self.cfg: OutboxConfig = settings.outbox
        self.clock = clock
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.buckets = buckets if buckets is not None else self._buckets(settings)
        self._stamps = StampBatch(self._stamp_rows)
        self._wake = asyncio.Event()
        self._listening = asyncio.Lock()
        self.sent_count = 0
        self.dead_count = 0

    def _buckets(self, settings: Settings) -> dict[str, TokenBucket]:
        """One limiter per platform: the adapter's own where its client paces each API call (Feishu,
        DingTalk), else one the outbox takes per row."""
        out: dict[str, TokenBucket] = {}
        for adapter in self.registry:
            if adapter.limiter is not None:
                out[adapter.platform] = adapter.limiter
                continue
            section = getattr(settings, adapter.platform, None)
            rl = getattr(section, "rate_limit", None)
            out[adapter.platform] = limiter_for(rl) if rl else Unlimited()
        return out

    def notify(self) -> None:
        """Something was just committed to the outbox: wake idle workers instead of waiting for the poll."""
        self._wake.set()

    # ------------------------------------------------------------------ claiming
    async def claim(self, limit: int) -> list[OutboxMessage]:
        """Rows whose lease ran out first, then pending rows by due time, ``limit`` in all. Two statements,
        not one with ``OR``: each is an ordered walk of the status index that stops at ``limit`` rows, where
        the ``OR`` made PostgreSQL collect and sort every due row on every claim (0.9 s a claim with a
        100,000-person wave queued: the workers, not the platform, set the pace)."""
        now = self.clock.now()
        lapsed = and_(OutboxMessage.status == "sending", OutboxMessage.claimed_until < now)
        pending = and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        rows: list[OutboxMessage] = []
        async with self.factory() as session, session.begin():
            for due in (lapsed, pending):
                if len(rows) >= limit:
                    break
                rows += list((await session.scalars(self._claim(due, limit - len(rows), now))).all())
        rows.sort(key=lambda r: r.id)
        return rows

    def _claim(self, due: Any, limit: int, now: datetime) -> Any:
        ids = (
            select(OutboxMessage.id)
            .where(due)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        return (
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

    # ------------------------------------------------------------------ sending
    async def _deliver(self, row: OutboxMessage) -> Outcome:
        people = [str(r) for r in row.recipients] if row.op == "send" else []
        wait = self.per_person.reserve_all(row.platform, people, self.clock.now())
        if wait is not None:
            return Outcome(
                row.id,
                ok=False,
                deferred=True,
                retry_after=wait,
                error="deferred: per-person message cap",
            )
        outcome = await self._send_row(row)
        if not outcome.ok:
            self.per_person.release_all(row.platform, people)
        return outcome

    async def _send_row(self, row: OutboxMessage) -> Outcome:
        try:
            adapter = self.registry.get(row.platform)
            card = Card.model_validate(row.card)
            bucket = self.buckets.get(row.platform) or Unlimited()
            if self._past_window(row):
                return self._in_doubt(row)
            # Paced here unless the adapter's client paces each of its calls itself.
            async with bucket.slot() if adapter.limiter is None else nullcontext():
                return await self._call(row, adapter, card)
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
            return Outcome(row.id, ok=False, error=f"{type(exc).__name__}: {exc}", answered=False)

    async def _call(self, row: OutboxMessage, adapter: Adapter, card: Card) -> Outcome:
        key = f"perfloop-outbox-{row.id}"
        if row.op == "update":
            ref = row.target_ref or await self._message_ref(row)
            if ref is None:
                return Outcome(row.id, ok=True, result=SendResult(), error="no earlier message to update")
            await adapter.update(ref, card, recipient=row.recipients[0])
            return Outcome(row.id, ok=True, result=SendResult())
        if self._past_window(row):  # the rate limiter may have held it a long time
            return self._in_doubt(row)
        if not await self._stamp_attempt(row):
            return Outcome(row.id, ok=False, lost_lease=True, error="lease taken over by another worker")
        result = await self._send(adapter, row.recipients, card, key)
        return Outcome(row.id, ok=True, result=result)

    def window_seconds(self, platform: str) -> int:
        """How long ``platform`` recognises a resend, minus the margin; 0 for a platform without a window."""
        window = getattr(self.cfg.dedupe_window_seconds, platform, 0)
        return max(0, int(window) - self.cfg.dedupe_margin_seconds) if window else 0

    def _past_window(self, row: OutboxMessage) -> bool:
        started = row.attempt_started_at
        if row.op != "send" or started is None:
            return False
        return self.clock.now() >= started + timedelta(seconds=self.window_seconds(row.platform))

    def _in_doubt(self, row: OutboxMessage) -> Outcome:
        started = row.attempt_started_at
        since = started.isoformat(timespec="seconds") if started is not None else "?"
        return Outcome(
            row.id,
            ok=False,
            unknown=True,
            retryable=False,
            error=(
                f"in doubt: a send started at {since} got no answer and {row.platform}'s dedupe window "
                f"({self.window_seconds(row.platform)} s with margin) has passed; not sent again"
            ),
        )

    async def _stamp_attempt(self, row: OutboxMessage) -> bool:
        """Commit "a platform call for this row starts now" before making it, so a takeover knows the call
        may have landed. False when the row is no longer this worker's (its lease ran out and another worker
        claimed it): then this worker must not send. Rows about to go at the same moment share one commit
        (``StampBatch``): one short transaction per send was most of a broadcast's database work."""
        return await self._stamps.stamp(row.id)

    async def _stamp_rows(self, ids: list[int]) -> set[int]:
        """Stamp ``ids`` (each keeps an earlier stamp); returns those still this worker's."""
        now: datetime = self.clock.now()
        async with self.factory() as session, session.begin():
            done = await session.scalars(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(ids),
                    OutboxMessage.claimed_by == self.worker_id,
                    OutboxMessage.status == "sending",
                )
                .values(
                    attempt_started_at=func.coalesce(
                        OutboxMessage.attempt_started_at,
                        literal(now, type_=OutboxMessage.attempt_started_at.type),  # stored as UTC
                    )
                )
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            )
            return set(done.all())

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
            sent: list[dict[str, Any]] = []
            for out in outcomes:
                row = rows[out.row_id]
                if out.lost_lease:
                    continue
                mine = and_(
                    OutboxMessage.id == row.id,
                    OutboxMessage.claimed_by == self.worker_id,
                    OutboxMessage.status == "sending",
                )
                if out.ok:
                    result = out.result or SendResult()
                    sent.append(
                        {
                            "row_id": row.id,
                            "error": out.error,
                            "outcome": {
                                "invalid": result.invalid_recipients,
                                "refs": dict(list(result.message_refs.items())[:50]),
                            },
                        }
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
                elif out.unknown:
                    await session.execute(
                        update(OutboxMessage)
                        .where(mine)
                        .values(status="unknown", claimed_until=None, last_error=out.error)
                    )
                    self._count(row, "unknown")
                    log.error("outbox message in doubt", extra={"outbox_id": row.id, "error": out.error})
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
                            # The platform (or the adapter) answered: no longer in doubt.
                            **({"attempt_started_at": None} if out.answered else {}),
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
            if sent:  # the common outcome: one statement for the batch, not one per row
                conn = await session.connection()
                await conn.execute(_MARK_SENT, [d | {"worker": self.worker_id, "at": now} for d in sent])
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
        lanes: dict[tuple[str, ...], list[OutboxMessage]] = {}
        for row in rows:
            lanes.setdefault((row.platform, *row.recipients), []).append(row)
        delivered = await asyncio.gather(*(self._deliver_in_order(lane) for lane in lanes.values()))
        await self._record({r.id: r for r in rows}, [o for lane in delivered for o in lane])
        return len(rows)

    async def _deliver_in_order(self, lane: list[OutboxMessage]) -> list[Outcome]:
        """Rows for the same recipients go one after another, in claim order: a person reads "echo", then
        the answer, then the next question, not whichever send happened to finish first. Different
        recipients still go concurrently."""
        return [await self._deliver(row) for row in lane]

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


_OUTBOX = OutboxMessage.metadata.tables[OutboxMessage.__tablename__]
_MARK_SENT = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id == bindparam("row_id"),
        _OUTBOX.c.claimed_by == bindparam("worker"),
        _OUTBOX.c.status == "sending",
    )
    .values(
        status="sent",
        sent_at=bindparam("at", type_=_OUTBOX.c.sent_at.type),
        claimed_until=None,
        last_error=bindparam("error", type_=_OUTBOX.c.last_error.type),
        result=bindparam("outcome", type_=_OUTBOX.c.result.type),
    )
)
"""A delivered row, still this worker's, becomes ``sent``: run once per batch with one parameter set a row."""


class StampBatch:
    """Group commit for attempt stamps: every row asking while a commit is being prepared or is in flight
    goes into the next one, each caller still learning whether its own row was stamped."""

    def __init__(self, commit: Callable[[list[int]], Awaitable[set[int]]]) -> None:
        self._commit = commit
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._running: asyncio.Task[None] | None = None

    async def stamp(self, row_id: int) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[row_id] = future
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self._waiting:
                await asyncio.sleep(0)  # the other rows going out in this turn of the loop join
                batch, self._waiting = self._waiting, {}
                try:
                    mine = await self._commit(list(batch))
                except Exception as exc:
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for row_id, future in batch.items():
                    if not future.done():
                        future.set_result(row_id in mine)
        finally:
            self._running = None


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
