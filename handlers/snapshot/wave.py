"""The monthly wave: on the first workday of a month, every person's snapshot of the month before.

Why a sweep and not one scheduler job per person: the scheduler hands each due item to its flow in a
transaction of its own (about 5 ms of database round trips each), and the card's image costs a few ms more;
10,000 people would take minutes. Here one tick takes a whole *wave* — everyone in one time zone whose first
workday has come — and does it in chunks of ``CHUNK`` people per transaction: the figures as ~10 aggregate
queries per chunk (``storage.queries.snapshot``), the images drawn in a process pool (``render_processes``),
then the rows. The rules the scheduler applies to a periodic prompt hold here too:

- *when*: ``[snapshot] time`` local time on the first workday of the month in the person's zone, on the
  scheduler's Chinese calendar (holidays, make-up days, ``extra_holidays``), asked through the port the
  sweep's host carries (``Host.schedule.workday_after``), so this flow and the scheduler never disagree;
- *cheap when idle*: a tick first reads the distinct zone names in use and decides per zone; only a zone
  whose wave is due and not yet marked finished (``storage.queries.snapshot.mark_finished``) has its people
  loaded, ``CHUNK`` at a time;
- *once*: the natural key is (person, month) on ``snapshots``, inserted with ``ON CONFLICT DO NOTHING …
  RETURNING``; only the rows this transaction inserted get a card, so a second tick, a second replica or
  a retry after a crash sends nothing twice;
- *leave and catch-up*: a person on leave that day gets the row (``skipped``; ``/snapshot`` still shows
  it) but no card; after downtime longer than ``[schedule] catchup_horizon_hours`` the row is ``missed``;
- *quiet hours*: a card for someone in their quiet hours waits in the outbox until they end
  (``bot.core.notify.quiet_end``), like every other scheduled prompt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.core.context import Outbox
from bot.core.localtime import local_at, local_today, stored_tz, zone
from bot.core.notify import quiet_end
from bot.core.schedule import Host
from bot.core.schedule_port import SchedulePort
from cards.catalogue import Translator
from cards.snapshot import GoalFigure, SnapshotView, picture, snapshot_card
from cards.snapshot_chart import SnapshotPicture, render_jpeg
from storage.media import MediaStore
from storage.models import AuditLog, Person, QuietHours, Snapshot, Workspace
from storage.queries import snapshot as sq
from storage.queries.people import on_leave

log = logging.getLogger("perfloop.snapshot")

CHUNK = 500
"""People per transaction: the rows of one chunk commit together, and a crash loses at most one chunk."""
RENDER_BATCH = 50
"""Pictures per task handed to a worker process: enough to hide the pickling, small enough to share."""
MAX_IMAGE_BYTES = 10 * 1024 * 1024
"""Only ``path_for`` is used on the store a worker opens; the limit guards uploads, not our own images."""
SENT = "sent"
SKIPPED = "skipped"
MISSED = "missed"


def previous_month(day: date) -> str:
    first = day.replace(day=1) - timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


def first_workday(port: SchedulePort, day: date) -> date:
    """The first workday of ``day``'s month on the scheduler's calendar."""
    return port.workday_after(day.replace(day=1) - timedelta(days=1))


def receives(person: Person) -> bool:
    """Everyone who works here gets a snapshot: active, not paused, an employee (leaders and HR included)."""
    return person.active and not person.paused and person.has_role("employee")


def view_of(person: Person, figures: sq.MonthFigures, window: sq.MonthWindow) -> SnapshotView:
    radar = figures.radar
    return SnapshotView(
        month=figures.month,
        name=person.name,
        first_day=window.first_day,
        last_day=window.last_day,
        checkins_due=figures.checkins_due,
        checkins_on_time=figures.checkins_on_time,
        evidence=figures.evidence,
        ratings=dict(figures.ratings),
        actions_done=figures.actions_done,
        actions_overdue=figures.actions_overdue,
        kudos=figures.kudos,
        kudos_points=figures.kudos_points,
        streak=figures.streak,
        goals=tuple(GoalFigure(g.title, g.progress) for g in figures.goals),
        goal_progress=figures.goal_progress,
        peers=radar.peers if radar else None,
        self_scores=radar.self_scores if radar else None,
        peer_answers=radar.answered if radar else 0,
    )


# ------------------------------------------------------------------ drawing and storing images
def render_many(pictures: Sequence[SnapshotPicture], media_dir: str) -> list[str]:
    """A worker's task: draw a batch of card images and store them; returns their media ids.

    Top-level and picklable for the process pool; the worker writes the files itself, so only 64-character
    ids travel back instead of ~70 KB of JPEG each."""
    store = MediaStore(Path(media_dir), max_bytes=MAX_IMAGE_BYTES)
    return [store_rendered(store, render_jpeg(p)) for p in pictures]


def store_rendered(store: MediaStore, data: bytes) -> str:
    """Write an image this process drew itself (content-addressed, atomic); returns its media id.

    No ``inspect_image`` decode: that guards against what people upload, and re-decoding 10,000 JPEGs we
    just encoded would cost more than drawing them."""
    sha = hashlib.sha256(data).hexdigest()
    path = store.path_for(sha)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{sha}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return sha


@dataclass
class Renderer:
    """Draws a wave's images: in a process pool when there is more than one CPU to use, else in a thread."""

    processes: int
    _pool: Executor | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Renderer:
        wanted = settings.snapshot.render_processes or (os.cpu_count() or 1)
        return cls(processes=max(1, wanted))

    async def render(self, pictures: Sequence[SnapshotPicture], store: MediaStore) -> list[str]:
        """Draw and store every picture; their media ids, in order."""
        if not pictures:
            return []
        media_dir = str(store.root)
        batches = [list(pictures[i : i + RENDER_BATCH]) for i in range(0, len(pictures), RENDER_BATCH)]
        if self.processes <= 1:
            parts = [await asyncio.to_thread(render_many, b, media_dir) for b in batches]
        else:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.processes, mp_context=multiprocessing.get_context("spawn")
                )
            loop = asyncio.get_running_loop()
            parts = await asyncio.gather(
                *(loop.run_in_executor(self._pool, render_many, b, media_dir) for b in batches)
            )
        return [media_id for part in parts for media_id in part]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# ------------------------------------------------------------------ the wave
@dataclass
class WaveReport:
    sent: int = 0
    skipped: int = 0
    missed: int = 0
    months: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return self.sent + self.skipped + self.missed


@dataclass(frozen=True)
class Due:
    """One time zone's wave: which month, the day and moment it fell due, and the stored zone names of its
    people (an empty or unknown name is the default zone, ``bot.core.localtime.stored_tz``)."""

    tz: str
    month: str
    day: date
    at: datetime
    names: tuple[str, ...]


async def due_waves(
    session: AsyncSession, settings: Settings, port: SchedulePort, now: datetime
) -> list[Due]:
    """The zones whose wave has fallen due (first workday, ``time``) and is not finished yet.

    Asked from the distinct zone names in use (one query), not from everyone: most ticks of a month end here
    with no person loaded; on the days after a wave, one more query finds it finished."""
    by_zone: dict[str, list[str]] = {}
    for name in await sq.zones_in_use(session):
        by_zone.setdefault(stored_tz(name, settings), []).append(name)
    due: list[Due] = []
    for tz, names in sorted(by_zone.items()):
        today = local_today(now, tz)
        day = first_workday(port, today)
        at = local_at(day, settings.snapshot.time, tz)
        if at <= now:
            due.append(Due(tz=tz, month=previous_month(today), day=day, at=at, names=tuple(sorted(names))))
    if not due:
        return due
    finished = await sq.finished_waves(session, {d.month for d in due})
    return [d for d in due if (d.tz, d.month) not in finished]


async def run_wave(host: Host, *, renderer: Renderer | None = None) -> WaveReport:
    """Everything due now: zone by zone, ``CHUNK`` people at a time; a zone is marked finished for its month
    with its last chunk, so the ticks after it load nobody. A run cut short (a crash, a restart) leaves the
    zone unmarked, and the next tick sends the rest: the chunks already written are found by their rows."""
    settings = host.settings
    report = WaveReport()
    if not settings.snapshot.enabled:
        return report
    now = host.clock.now()
    async with host.factory() as session:
        waves = await due_waves(session, settings, host.schedule, now)
        if not waves:
            return report
        workspaces = {w.id: w for w in await session.scalars(select(Workspace))}
    own = renderer is None
    renderer = renderer or Renderer.from_settings(settings)
    store = MediaStore(settings.media.dir, max_bytes=settings.media.max_image_bytes)
    horizon = timedelta(hours=settings.schedule.catchup_horizon_hours)
    pending: tuple[Prepared, asyncio.Task[list[str]]] | None = None
    try:
        # A pipeline: while the workers draw one chunk's images, this process computes the next chunk's
        # figures and writes the previous chunk's rows, so neither side waits for the other.
        for wave in waves:
            window = sq.MonthWindow.of(wave.month, zone(wave.tz))
            late = now - wave.at > horizon
            last: Prepared | None = None
            after = 0
            while True:
                async with host.factory() as session:
                    loaded = await sq.people_in_zones(session, wave.names, after=after, limit=CHUNK)
                    chunk = await _still_to_do(session, loaded, wave.month)
                    prepared = await _prepare(session, chunk, wave, window, late, settings) if chunk else None
                if prepared is not None:
                    drawing = asyncio.create_task(renderer.render(prepared.pictures, store))
                    if pending is not None:
                        await _finish(host, *pending, now, workspaces, report)
                    pending = (prepared, drawing)
                    last = prepared
                if len(loaded) < CHUNK:
                    break
                after = loaded[-1].id
            if last is not None:
                last.closes = True
            else:
                async with host.factory() as session, session.begin():
                    sq.mark_finished(session, wave.tz, wave.month, now)
            report.months.add(wave.month)
        if pending is not None:
            await _finish(host, *pending, now, workspaces, report)
            pending = None
    finally:
        if pending is not None:
            pending[1].cancel()
        if own:
            renderer.close()
    if report.total:
        log.info(
            "snapshot wave",
            extra={"sent": report.sent, "skipped": report.skipped, "missed": report.missed},
        )
    return report


async def _still_to_do(session: AsyncSession, loaded: list[Person], month: str) -> list[Person]:
    """Those of ``loaded`` who get a snapshot and have no row for ``month`` yet."""
    receiving = [p for p in loaded if receives(p)]
    done = await sq.existing(session, [p.id for p in receiving], month) if receiving else set()
    return [p for p in receiving if p.id not in done]


@dataclass
class Prepared:
    """One chunk's figures and pictures, computed before its images are drawn and its rows written."""

    chunk: list[Person]
    wave: Due
    status: dict[int, str]
    figures: dict[int, sq.MonthFigures]
    views: dict[int, SnapshotView]
    sending: list[Person]
    pictures: list[SnapshotPicture]
    closes: bool = False
    """The last chunk of its wave: its transaction also marks the zone finished for the month."""


async def _prepare(
    session: AsyncSession,
    chunk: list[Person],
    wave: Due,
    window: sq.MonthWindow,
    late: bool,
    settings: Settings,
) -> Prepared:
    figures = await sq.month_figures(session, chunk, window, threshold=settings.feedback.anonymity_threshold)
    status = {p.id: MISSED if late else SKIPPED if on_leave(p, wave.day) else SENT for p in chunk}
    sending = [p for p in chunk if status[p.id] == SENT]
    views = {p.id: view_of(p, figures[p.id], window) for p in chunk}
    pictures = [picture(Translator(p.locale), views[p.id]) for p in sending]
    return Prepared(chunk, wave, status, figures, views, sending, pictures)


async def _finish(
    host: Host,
    prepared: Prepared,
    drawing: asyncio.Task[list[str]],
    now: datetime,
    workspaces: dict[int, Workspace],
    report: WaveReport,
) -> None:
    media = await drawing
    async with host.factory() as session, session.begin():
        await _write(session, prepared, media, now, workspaces, report)


async def _write(
    session: AsyncSession,
    prepared: Prepared,
    media: list[str],
    now: datetime,
    workspaces: dict[int, Workspace],
    report: WaveReport,
) -> None:
    """The chunk's rows, its cards and its audit line, in one transaction."""
    chunk, wave, status, figures, views, sending = (
        prepared.chunk,
        prepared.wave,
        prepared.status,
        prepared.figures,
        prepared.views,
        prepared.sending,
    )
    media_of = {p.id: m for p, m in zip(sending, media, strict=True)}
    rows = [
        {
            "person_id": p.id,
            "month": wave.month,
            "status": status[p.id],
            "figures": figures[p.id].as_json(),
            "media_id": media_of.get(p.id),
            "created_at": now,
        }
        for p in chunk
    ]
    inserted = await _insert_new(session, rows)
    quiet = {
        q.person_id: q
        for q in await session.scalars(
            select(QuietHours).where(QuietHours.person_id.in_([p.id for p in sending]))
        )
    }
    outboxes: dict[int, Outbox] = {}
    tz = zone(wave.tz)
    for person in sending:
        if person.id not in inserted:
            continue
        ws = workspaces[person.workspace_id]
        outbox = outboxes.setdefault(ws.id, Outbox(session=session, workspace=ws, now=now))
        card = snapshot_card(Translator(person.locale), views[person.id], media_id=media_of[person.id])
        row = outbox.send(
            person,
            card,
            card_key=f"snapshot:{wave.month}",
            dedupe_key=f"snapshot:{person.id}:{wave.month}",
        )
        until = quiet_end(quiet.get(person.id), tz, now)
        if until is not None and until > row.next_attempt_at:
            row.next_attempt_at = until
    counts = {s: sum(1 for pid in inserted if status[pid] == s) for s in (SENT, SKIPPED, MISSED)}
    report.sent += counts[SENT]
    report.skipped += counts[SKIPPED]
    report.missed += counts[MISSED]
    if prepared.closes:
        sq.mark_finished(session, wave.tz, wave.month, now)
    if inserted:
        await session.execute(
            insert(AuditLog),
            [
                {
                    "at": now,
                    "actor_id": None,
                    "action": "snapshot.wave",
                    "entity": "snapshot",
                    "entity_id": None,
                    "detail": {"month": wave.month, "tz": wave.tz, **counts},
                }
            ],
        )


async def _insert_new(session: AsyncSession, rows: list[dict[str, Any]]) -> set[int]:
    """Insert the rows whose (person, month) is new; returns the person ids this transaction inserted."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    make: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        make(Snapshot)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["person_id", "month"])
        .returning(Snapshot.person_id)
    )
    return {int(pid) for pid in (await session.scalars(stmt)).all()}
