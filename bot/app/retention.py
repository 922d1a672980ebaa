"""Retention: the tables that grow with every message stay bounded (issue 16 #12), and leavers are erased
after ``[retention] leavers_erase_days`` (#13).

A ``Sweep`` of the scheduler's table (``RetentionJob.entry()``), so it runs on the scheduler's leader only:
N replicas never sweep N times, and a follower that takes over simply sweeps at its next tick. Each run
works in batches of ``batch_size`` rows, one short transaction each, within a time budget; a run that hit
the budget goes on at the next tick instead of waiting for ``every_hours``.

What is kept, and why it is safe:
- ``inbound_events``: the dedupe of platform retries and replays. Rows younger than ``inbound_events_days``
  (at least two days: Feishu retries for hours, WeCom and DingTalk within minutes) stay, and never fewer days
  than any enabled platform still accepts a signed callback (replay window plus clock tolerance, and a
  DingTalk card's click-token life: ``replay_reach``); so does an event whose processing is unfinished (its
  retry must stay a duplicate).
- ``outbox``: a sent row loses its card JSON after ``outbox_card_days`` (status, recipients, card key,
  dedupe key and message refs stay) and is deleted after ``outbox_sent_days``; pending, sending and dead
  rows are never touched. Updating a card in place reads ``card_messages``, not old outbox rows.
- ``card_messages``: where a card landed, kept ``card_messages_days`` after its latest send (each send under
  the same key refreshes it), and longer while an update of that card waits in the outbox.
- ``scheduled_sends``: the ledger's natural keys stop double sends. A key is pruned only when it is older
  than anything the scheduler could recompute (the longest series lookback plus the catch-up horizon, with
  a margin), is not a snooze still to wake, and does not belong to a record that is still open.
- snapshot images: the card image of a monthly growth snapshot (``snapshots.media_id``, ~60 KB per person
  and month) is deleted from the media store once its month is more than ``snapshot_image_months`` before
  the current one; the row and its figures stay (``/snapshot`` draws the image again if asked), and a file
  another row or a photo still names stays too. The PDFs are drawn on request and never stored.
- ``audit_log``: never deleted; rows older than ``audit_log_days`` (and never fewer days than the digest
  looks back) move to compressed JSON lines under ``archive_dir`` (``bot/app/audit_archive.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import audit_archive
from bot.app.erase import EraseError, erase_person
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.schedule import Host, Sweep
from bot.core.status import OPEN_ACTION_ITEM, CheckInStatus, ReviewStatus, SendStatus
from storage.media import MediaStore
from storage.models import AuditLog
from storage.queries import retention as rq
from storage.queries import snapshot as snapshots

log = logging.getLogger("perfloop.retention")

LONGEST_LOOKBACK = timedelta(weeks=2 * 8, days=7)
"""The longest way back ``scheduler.cadence`` ever looks for a series' latest occurrence (a check-in every 8
weeks: two periods plus a week of holiday shift); the monthly, weekly and daily series look back less."""
LEDGER_MARGIN = timedelta(days=30)
LEAVERS_PER_RUN = 20
"""Erasures per run: each is one transaction that also scans the outbox and the archive."""


@dataclass(frozen=True)
class Cutoffs:
    """Rows older than these instants are due (all UTC)."""

    inbound_events: datetime
    outbox_card: datetime
    outbox_sent: datetime
    card_messages: datetime
    scheduled_sends: datetime
    audit_log: datetime
    leavers: datetime | None
    snapshot_images: str | None
    """Snapshot images of months before this one (``2025-10``) are deleted; None: never."""


def replay_reach(settings: Settings) -> timedelta:
    """How long a signed callback of an enabled platform can still be accepted: its replay window plus the
    clock tolerance, and for DingTalk the life of a card's click token. An inbound event is the dedupe of
    that callback, so it must outlive it: pruned earlier, a captured callback replayed later would pass both
    the signature check and the dedupe."""
    reach = timedelta(0)
    for name in settings.enabled_platforms:
        platform = getattr(settings, name)
        window = timedelta(seconds=platform.replay_window_seconds + platform.clock_tolerance_seconds)
        reach = max(reach, window)
    if settings.dingtalk.enabled:
        reach = max(reach, timedelta(days=settings.dingtalk.card_click_ttl_days))
    return reach + timedelta(days=1)


def cutoffs(settings: Settings, now: datetime) -> Cutoffs:
    """The configured ages, with the floors that keep them safe whatever the configuration says."""
    cfg = settings.retention
    horizon = timedelta(hours=settings.schedule.catchup_horizon_hours)
    ledger_days = max(timedelta(days=cfg.scheduled_sends_days), LONGEST_LOOKBACK + horizon + LEDGER_MARGIN)
    audit_days = max(cfg.audit_log_days, settings.digest.trend_days + 1)
    return Cutoffs(
        inbound_events=now - max(timedelta(days=cfg.inbound_events_days), replay_reach(settings)),
        outbox_card=now - timedelta(days=cfg.outbox_card_days),
        outbox_sent=now - timedelta(days=max(cfg.outbox_sent_days, cfg.outbox_card_days)),
        card_messages=now - timedelta(days=cfg.card_messages_days),
        scheduled_sends=now - ledger_days,
        audit_log=now - timedelta(days=audit_days),
        leavers=now - timedelta(days=cfg.leavers_erase_days) if cfg.leavers_erase_days > 0 else None,
        snapshot_images=months_before(now, cfg.snapshot_image_months) if cfg.snapshot_image_months else None,
    )


def months_before(now: datetime, months: int) -> str:
    """The month ``months`` before ``now``'s (UTC), as a snapshot's key: 13 before 2026-11 is 2025-10."""
    index = now.year * 12 + now.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass
class RetentionReport:
    counts: dict[str, int] = field(default_factory=dict)
    finished: bool = True
    """False when the time budget ran out before every table was done (the next tick goes on)."""
    errors: list[str] = field(default_factory=list)

    def add(self, what: str, n: int) -> None:
        if n:
            self.counts[what] = self.counts.get(what, 0) + n

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "nothing due"
        return parts + ("" if self.finished else " (budget used up; continuing at the next tick)")


class _OutOfTime(Exception):
    """The run's time budget is spent: stop between batches and go on at the next tick."""


class Retention:
    """One run over every table; ``max_seconds`` bounds it (``None`` = until done, for the CLI and tests)."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        now: datetime,
        *,
        max_seconds: float | None = None,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.cfg = settings.retention
        self.cut = cutoffs(settings, now)
        self.report = RetentionReport()
        self._deadline = None if max_seconds is None else time.monotonic() + max_seconds

    def _check_time(self) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise _OutOfTime()

    async def _batches(self, what: str, batch: Callable[[AsyncSession], Awaitable[int]]) -> None:
        """Run ``batch`` in its own short transaction until it finds nothing more to do."""
        while True:
            self._check_time()
            async with self.factory() as session, session.begin():
                n = await batch(session)
            self.report.add(what, n)
            if n < self.cfg.batch_size:
                return
            await asyncio.sleep(0)  # let callbacks in between batches

    async def run(self) -> RetentionReport:
        try:
            await self._inbound_events()
            await self._outbox()
            await self._card_messages()
            await self._ledger()
            await self._snapshot_images()
            await self._audit()
            await self._leavers()
        except _OutOfTime:
            self.report.finished = False
        return self.report

    async def _inbound_events(self) -> None:
        await self._batches(
            "inbound_events deleted",
            lambda s: rq.prune_inbound_events(s, before=self.cut.inbound_events, limit=self.cfg.batch_size),
        )

    async def _outbox(self) -> None:
        # Delete first: rows past ``outbox_sent_days`` need no compacting.
        await self._batches(
            "outbox rows deleted",
            lambda s: rq.prune_sent_outbox(s, sent_before=self.cut.outbox_sent, limit=self.cfg.batch_size),
        )
        cursor: rq.Cursor = None
        while True:
            self._check_time()
            async with self.factory() as session, session.begin():
                last, n = await rq.compact_outbox(
                    session,
                    sent_after=self.cut.outbox_sent,
                    sent_before=self.cut.outbox_card,
                    cursor=cursor,
                    limit=self.cfg.batch_size,
                )
            self.report.add("outbox cards dropped", n)
            if last == cursor:
                return
            cursor = last
            await asyncio.sleep(0)

    async def _card_messages(self) -> None:
        await self._batches(
            "card_messages deleted",
            lambda s: rq.prune_card_messages(s, before=self.cut.card_messages, limit=self.cfg.batch_size),
        )

    async def _ledger(self) -> None:
        async with self.factory() as session:
            open_records = await rq.open_record_ids(
                session,
                checkin_open=[CheckInStatus.OPEN],
                review_open=[ReviewStatus.OPEN],
                action_open=list(OPEN_ACTION_ITEM),
            )
        cursor: rq.Cursor = None
        while True:
            self._check_time()
            async with self.factory() as session, session.begin():
                n, last = await rq.prune_ledger(
                    session,
                    before=self.cut.scheduled_sends,
                    cursor=cursor,
                    limit=self.cfg.batch_size,
                    keep_status=[SendStatus.SNOOZED],
                    open_records=open_records,
                )
            self.report.add("scheduled_sends deleted", n)
            if last == cursor:
                return
            cursor = last
            await asyncio.sleep(0)

    async def _snapshot_images(self) -> None:
        before = self.cut.snapshot_images
        if before is None:
            return
        media = self.settings.media
        store = MediaStore(media.dir, max_bytes=media.max_image_bytes)
        cursor = 0
        while True:
            self._check_time()
            async with self.factory() as session, session.begin():
                rows = await snapshots.old_images(
                    session, before_month=before, after_id=cursor, limit=self.cfg.batch_size
                )
                if not rows:
                    return
                await snapshots.forget_images(session, [row_id for row_id, _ in rows])
                named = {media_id for _, media_id in rows}
                unused = named - await snapshots.images_in_use(session, named)
                # The files go before the commit: if it fails the rows still name them, and the next run
                # finds the rows again (a missing file is drawn again on request); never the other way round,
                # which would leave files nothing names.
                removed = await asyncio.to_thread(_remove_files, store, unused)
            self.report.add("snapshot images deleted", removed)
            if len(rows) < self.cfg.batch_size:
                return
            cursor = rows[-1][0]
            await asyncio.sleep(0)

    async def _audit(self) -> None:
        base = self.cfg.archive_dir
        while True:
            self._check_time()
            async with self.factory() as session, session.begin():
                lock = session.get_bind().dialect.name == "postgresql"
                rows = await rq.oldest_audit(
                    session, before=self.cut.audit_log, limit=self.cfg.batch_size, lock=lock
                )
                if not rows:
                    return
                records = [
                    audit_archive.record(
                        r.id, r.at, r.actor_id, r.action, r.entity, r.entity_id, dict(r.detail or {})
                    )
                    for r in rows
                ]
                # The file is on disk (renamed, synced) before the rows leave the database, in this order.
                await asyncio.to_thread(audit_archive.write_batch, base, records)
                n = await rq.delete_ids(session, AuditLog, [r.id for r in rows])
            self.report.add("audit_log archived", n)
            if len(rows) < self.cfg.batch_size:
                return
            await asyncio.sleep(0)

    async def _leavers(self) -> None:
        if self.cut.leavers is None:
            return
        async with self.factory() as session:
            ids = await rq.leavers_to_erase(session, unchanged_before=self.cut.leavers, limit=LEAVERS_PER_RUN)
        for person_id in ids:
            self._check_time()
            try:
                await erase_person(self.factory, self.settings, person_id, apply=True)
            except EraseError as exc:  # erased or reactivated meanwhile: nothing to do
                log.info("leaver not erased", extra={"person_id": person_id, "reason": str(exc)})
                continue
            self.report.add("leavers erased", 1)


def _remove_files(store: MediaStore, media_ids: set[str]) -> int:
    removed = 0
    for media_id in sorted(media_ids):
        try:
            removed += store.remove(media_id)
        except ValueError:  # not a sha256: nothing of ours on disk
            continue
    return removed


async def run_retention(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: Clock,
    *,
    max_seconds: float | None = None,
) -> RetentionReport:
    """One full sweep now (tests, benchmarks); the scheduled one is ``RetentionJob``."""
    return await Retention(factory, settings, clock.now(), max_seconds=max_seconds).run()


class RetentionJob:
    """The scheduled sweep: due every ``every_hours``, and at every tick while a run is unfinished."""

    def __init__(self) -> None:
        self._next: float | None = None
        self.last: RetentionReport | None = None

    def entry(self) -> Sweep:
        return Sweep("retention", self.sweep)

    async def sweep(self, host: Host) -> RetentionReport | None:
        cfg = host.settings.retention
        if not cfg.enabled:
            return None
        loop = asyncio.get_running_loop()
        if self._next is not None and loop.time() < self._next:
            return None
        report = await run_retention(host.factory, host.settings, host.clock, max_seconds=cfg.max_seconds)
        self.last = report
        # Unfinished: go on at the next tick; finished: rest until the next period.
        self._next = None if not report.finished else loop.time() + cfg.every_hours * 3600
        if report.counts or not report.finished:
            log.info("retention sweep", extra={"report": report.summary()})
        return report
