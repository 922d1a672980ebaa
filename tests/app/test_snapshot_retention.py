"""Snapshot images in the retention sweep (issue 20 #4, second pass): images of months more than
``[retention] snapshot_image_months`` back leave the media store, in batches that survive a crash; rows and
figures stay, files another row or a photo still names stay, and ``/snapshot`` draws a gone image again.
Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import retention
from bot.app.retention import months_before, run_retention
from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.config import RetentionConfig, Settings
from cards.model import Image
from handlers.snapshot.wave import store_rendered
from storage.media import MediaStore
from storage.models import Evidence, Snapshot
from storage.queries.snapshot import MonthFigures
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import say

OLD = ("2025-06", "2025-07", "2025-08", "2025-09")
"""Before 2025-10: more than 13 months before the clock's November 2026."""


def with_retention(settings: Settings, tmp_path: Path, **kw: Any) -> Settings:
    cfg = RetentionConfig(archive_dir=tmp_path / "archive", batch_size=10, **kw)
    return settings.model_copy(update={"retention": cfg})


def store_of(service: Service) -> MediaStore:
    return MediaStore(service.settings.media.dir, max_bytes=service.settings.media.max_image_bytes)


async def seed(service: Service, org: Org, now: datetime) -> dict[tuple[int, str], str | None]:
    """Old and recent snapshots with their image files; returns (person, month) -> media id."""
    store = store_of(service)
    people = [org.emp1.id, org.emp2.id, org.manager.id, org.hrbp.id]
    media: dict[tuple[int, str], str | None] = {}
    for person in people:
        for month in OLD:
            media[person, month] = store_rendered(store, f"{person}-{month}".encode())
    media[org.emp1.id, "2025-10"] = store_rendered(store, b"kept: 13 months back")
    media[org.emp1.id, "2026-10"] = store_rendered(store, b"kept: last month")
    media[org.emp2.id, "2026-10"] = media[org.emp2.id, "2025-09"]  # one file, an old and a new row
    media[org.hrbp.id, "2025-08"] = None  # skipped on leave: no image
    store.remove(str(media[org.hrbp.id, "2025-07"]))  # already gone from the disk
    async with service.factory() as s, s.begin():
        s.add_all(
            Snapshot(
                person_id=person,
                month=month,
                status="sent" if media_id else "skipped",
                figures=MonthFigures(month=month).as_json(),
                media_id=media_id,
            )
            for (person, month), media_id in media.items()
        )
        s.add(
            Evidence(
                person_id=org.emp1.id,
                file_path="x",
                sha256=str(media[org.manager.id, "2025-06"]),  # the same bytes as a photo: unlikely, kept
                size=1,
                mime="image/jpeg",
                received_at=now,
            )
        )
    return media


async def images(service: Service) -> dict[tuple[int, str], str | None]:
    async with service.factory() as s:
        return {(r.person_id, r.month): r.media_id for r in await s.scalars(select(Snapshot))}


def test_the_cutoff_keeps_last_years_same_month() -> None:
    assert months_before(datetime(2026, 11, 24, tzinfo=UTC), 13) == "2025-10"
    assert months_before(datetime(2026, 1, 1, tzinfo=UTC), 1) == "2025-12"
    assert months_before(datetime(2026, 12, 31, tzinfo=UTC), 12) == "2025-12"


async def test_old_snapshot_images_leave_the_media_store_in_batches(
    service: Service, org: Org, clock: FixedClock, tmp_path: Path, recorder: RecordingAdapter
) -> None:
    media = await seed(service, org, clock.now())
    store = store_of(service)
    settings = with_retention(service.settings, tmp_path)
    assert settings.retention.snapshot_image_months == 13
    report = await run_retention(service.factory, settings, clock)
    old = {key: m for key, m in media.items() if key[1] in OLD and m is not None}
    shared = {media[org.emp2.id, "2025-09"], media[org.manager.id, "2025-06"]}
    missing = {media[org.hrbp.id, "2025-07"]}
    assert len(old) > settings.retention.batch_size  # more than one batch
    assert report.counts.get("snapshot images deleted") == len(set(old.values()) - shared - missing)
    after = await images(service)
    assert after.keys() == media.keys()  # the rows and their figures stay
    assert all(after[key] is None for key in old)
    for key in [(org.emp1.id, "2025-10"), (org.emp1.id, "2026-10"), (org.emp2.id, "2026-10")]:
        assert after[key] == media[key] and store.exists(str(media[key])), key
    for key, media_id in old.items():
        assert store.exists(media_id) == (media_id in shared), key
    again = await run_retention(service.factory, settings, clock)
    assert "snapshot images deleted" not in again.counts

    # The manager's latest snapshot is from 2025-09: /snapshot shows it with an image drawn again.
    recorder.clear()
    await say(service, "mgr", "/snapshot")
    await service.outbox.drain()
    card = recorder.to("mgr")[-1]
    [image] = [e for e in card.elements if isinstance(e, Image)]
    assert card.header.title.startswith("2025年9月") and store.exists(image.media_id)


async def test_a_sweep_cut_short_goes_on_where_it_stopped(
    service: Service, org: Org, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure in the second batch: the first batch is done, the second rolled back with its rows still
    naming their files; the next run finishes the job."""
    media = await seed(service, org, clock.now())
    store = store_of(service)
    settings = with_retention(service.settings, tmp_path)
    real = retention._remove_files
    calls = 0

    def failing(store: MediaStore, media_ids: set[str]) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk went away")
        return real(store, media_ids)

    monkeypatch.setattr(retention, "_remove_files", failing)
    with pytest.raises(OSError):
        await run_retention(service.factory, settings, clock)
    halfway = await images(service)
    cleared = [key for key in media if key[1] in OLD and media[key] is not None and halfway[key] is None]
    assert len(cleared) == settings.retention.batch_size
    monkeypatch.setattr(retention, "_remove_files", real)
    await run_retention(service.factory, settings, clock)
    done = await images(service)
    assert all(done[key] is None for key in media if key[1] in OLD)
    assert store.exists(str(media[org.emp1.id, "2026-10"]))


async def test_zero_months_keeps_every_image(
    service: Service, org: Org, clock: FixedClock, tmp_path: Path
) -> None:
    media = await seed(service, org, clock.now())
    settings = with_retention(service.settings, tmp_path, snapshot_image_months=0)
    report = await run_retention(service.factory, settings, clock)
    assert "snapshot images deleted" not in report.counts
    assert await images(service) == media
