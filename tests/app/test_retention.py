"""Retention (issue 16 #12): bounded tables, pruned in batches, without breaking dedupe, card updates, the
scheduler's ledger or the audit trail. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import audit_archive
from bot.app.retention import RetentionJob, cutoffs, run_retention
from bot.app.service import Service, scheduler_job
from bot.core.clock import FixedClock
from bot.core.config import RetentionConfig, Settings
from bot.core.context import Context
from bot.core.events import TextMessage
from cards.model import Card, Header, Markdown
from scheduler.table import JobTable
from storage.models import (
    ActionItem,
    AuditLog,
    CardMessage,
    CheckIn,
    InboundEvent,
    OutboxMessage,
    ScheduledSend,
)
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import run_as

ANSWER: dict[str, Any] = {"toast": None, "toast_kind": "info", "card": None}
CARD: dict[str, Any] = Card(header=Header(title="t"), elements=[Markdown(text="body")]).model_dump(
    mode="json"
)


def with_retention(settings: Settings, tmp_path: Path, **kw: Any) -> Settings:
    cfg = RetentionConfig(archive_dir=tmp_path / "archive", **kw)
    return settings.model_copy(update={"retention": cfg})


async def count(service: Service, model: Any, *conds: Any) -> int:
    async with service.factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*conds)) or 0)


async def test_retention_deletes_exactly_what_is_old_enough(
    service: Service, org: Org, clock: FixedClock, tmp_path: Path
) -> None:
    settings = with_retention(service.settings, tmp_path, batch_size=10)
    now = clock.now()

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    emp = org.emp1.id
    async with service.factory() as session, session.begin():
        ws = org.workspace.id
        # inbound events: 25 past the 7-day window (three batches), one inside it, one old but unfinished
        for i in range(25):
            session.add(
                InboundEvent(
                    platform="rec", event_id=f"old-{i}", kind="text", answer=ANSWER, received_at=ago(8)
                )
            )
        session.add(
            InboundEvent(platform="rec", event_id="young", kind="text", answer=ANSWER, received_at=ago(6.9))
        )
        session.add(
            InboundEvent(platform="rec", event_id="claimed", kind="text", answer={}, received_at=ago(30))
        )

        def outbox(tag: str, status: str, sent: datetime | None, **kw: Any) -> None:
            session.add(
                OutboxMessage(
                    workspace_id=ws,
                    platform="rec",
                    recipients=["emp1"],
                    card=CARD,
                    dedupe_key=tag,
                    status=status,
                    sent_at=sent,
                    created_at=sent or ago(100),
                    next_attempt_at=sent or ago(100),
                    result={"refs": {"emp1": f"ref-{tag}"}, "invalid": []},
                    **kw,
                )
            )

        outbox("sent-100d", "sent", ago(100))
        for i in range(12):
            outbox(f"sent-10d-{i}", "sent", ago(10), card_key="k-10d")
        outbox("sent-3d", "sent", ago(3))
        outbox("dead-100d", "dead", None)
        outbox("pending-100d", "pending", None)
        outbox("update-waiting", "pending", None, op="update", card_key="k-waiting")

        def card_message(key: str, days: float) -> None:
            session.add(
                CardMessage(
                    platform="rec",
                    card_key=key,
                    platform_user_id="emp1",
                    message_ref=f"m-{key}",
                    created_at=ago(days),
                )
            )

        card_message("k-old", 500)
        card_message("k-waiting", 500)
        card_message("k-young", 10)

        open_ci = CheckIn(
            person_id=emp, period="2025-06-05", status="open", due_at=ago(540), created_at=ago(540)
        )
        done_ci = CheckIn(
            person_id=emp, period="2025-06-19", status="submitted", due_at=ago(520), created_at=ago(520)
        )
        item = ActionItem(
            owner_id=emp, source="manual", deliverable="x", deadline=date(2025, 1, 1), status="open"
        )
        session.add_all([open_ci, done_ci, item])
        await session.flush()

        def key(flow: str, period: str, days: float, status: str = "sent") -> None:
            session.add(
                ScheduledSend(flow=flow, person_id=emp, period=period, status=status, created_at=ago(days))
            )

        key("checkin", "2025-06-05", 500)  # a series key long out of reach of the scheduler: goes
        key("snooze.checkin", str(open_ci.id), 500, status="snoozed")  # a snooze still to wake: stays
        key("checkin.close", str(open_ci.id), 500)  # the check-in is still open: stays
        key("checkin.close", str(done_ci.id), 500)  # closed long ago: goes
        key("action.escalate", f"{item.id}:2025-01-01:1", 500)  # the item is still open: stays
        key("review", "2026-10", 30)  # young: stays
        for i in range(14):
            session.add(
                AuditLog(
                    at=ago(500), actor_id=emp, action="old", entity="checkin", entity_id=i, detail={"i": i}
                )
            )
        session.add(
            AuditLog(at=ago(10), actor_id=emp, action="young", entity="checkin", entity_id=99, detail={})
        )

    report = await run_retention(service.factory, settings, clock)

    assert report.finished
    assert report.counts == {
        "inbound_events deleted": 25,
        "outbox cards dropped": 12,  # the ten-day-old rows (the 100-day-old one is deleted, not compacted)
        "outbox rows deleted": 1,
        "card_messages deleted": 1,
        "scheduled_sends deleted": 2,
        "audit_log archived": 14,
    }
    async with service.factory() as session:
        events = set(await session.scalars(select(InboundEvent.event_id)))
        assert events == {"young", "claimed"}
        rows = {r.dedupe_key: r for r in await session.scalars(select(OutboxMessage))}
        assert "sent-100d" not in rows
        for i in range(12):
            compacted = rows[f"sent-10d-{i}"]
            assert compacted.card == {} and compacted.status == "sent" and compacted.card_key == "k-10d"
            assert compacted.recipients == ["emp1"] and compacted.result["refs"] == {
                "emp1": f"ref-sent-10d-{i}"
            }
        for kept in ("sent-3d", "dead-100d", "pending-100d", "update-waiting"):
            assert rows[kept].card == CARD
        assert set(await session.scalars(select(CardMessage.card_key))) == {"k-waiting", "k-young"}
        ledger = {(r.flow, r.period) for r in await session.scalars(select(ScheduledSend))}
        assert ledger == {
            ("snooze.checkin", str(open_ci.id)),
            ("checkin.close", str(open_ci.id)),
            ("action.escalate", f"{item.id}:2025-01-01:1"),
            ("review", "2026-10"),
        }
        assert list(await session.scalars(select(AuditLog.action))) == ["young"]
    archived = sorted(audit_archive.read_all(settings.retention.archive_dir), key=lambda r: r["detail"]["i"])
    assert [r["detail"] for r in archived] == [{"i": i} for i in range(14)]
    assert {r["action"] for r in archived} == {"old"} and {r["actor_id"] for r in archived} == {emp}
    assert len(audit_archive.files(settings.retention.archive_dir)) == 2  # batches of 10

    # A second run finds nothing more to do.
    again = await run_retention(service.factory, settings, clock)
    assert again.counts == {} and again.finished


async def test_archiving_is_never_lost_or_doubled_when_the_delete_did_not_happen(
    service: Service, org: Org, clock: FixedClock, tmp_path: Path
) -> None:
    """A crash between writing the archive file and deleting the rows: the next run writes the same file
    name again (replaced, not appended), so every row is archived exactly once."""
    settings = with_retention(service.settings, tmp_path, batch_size=10)
    old = clock.now() - timedelta(days=500)
    async with service.factory() as session, session.begin():
        for i in range(6):
            session.add(
                AuditLog(
                    at=old, actor_id=org.emp1.id, action="a", entity="checkin", entity_id=i, detail={"i": i}
                )
            )
    async with service.factory() as session:
        rows = list(await session.scalars(select(AuditLog).order_by(AuditLog.id)))
    first = [
        audit_archive.record(r.id, r.at, r.actor_id, r.action, r.entity, r.entity_id, r.detail)
        for r in rows[:4]
    ]
    audit_archive.write_batch(
        settings.retention.archive_dir, first
    )  # written, then "crashed" before the delete

    await run_retention(service.factory, settings, clock)

    archived = list(audit_archive.read_all(settings.retention.archive_dir))
    assert sorted(r["detail"]["i"] for r in archived) == list(range(6))
    assert await count(service, AuditLog) == 0


async def test_a_retried_event_inside_the_window_is_still_a_duplicate(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter, tmp_path: Path
) -> None:
    settings = with_retention(service.settings, tmp_path)
    event = TextMessage(
        platform="rec", workspace="rec-app", event_id="retry-me", sender_id="emp1", text="hello"
    )
    await service.dispatcher.dispatch(event)
    written = await count(service, OutboxMessage)
    assert written >= 1

    start = clock.now()
    clock.set(start + timedelta(days=settings.retention.inbound_events_days) - timedelta(minutes=1))
    await run_retention(service.factory, settings, clock)
    await service.dispatcher.dispatch(event)  # the platform's late retry
    assert await count(service, OutboxMessage) == written  # answered from the record, not run again
    assert await count(service, InboundEvent, InboundEvent.event_id == "retry-me") == 1

    clock.set(start + timedelta(days=settings.retention.inbound_events_days, minutes=1))
    await run_retention(service.factory, settings, clock)
    assert await count(service, InboundEvent, InboundEvent.event_id == "retry-me") == 0


async def test_card_updates_still_work_after_the_card_json_is_dropped(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter, tmp_path: Path
) -> None:
    settings = with_retention(service.settings, tmp_path)
    first = Card(header=Header(title="v1"), elements=[Markdown(text="one")])
    second = Card(header=Header(title="v2"), elements=[Markdown(text="two")])

    async def send(ctx: Context) -> None:
        ctx.outbox.send(ctx.person, first, card_key="retention:card")

    await run_as(service, org.emp1.id, send)
    await service.outbox.drain()
    ref = recorder.sent[-1].message_ref

    clock.set(clock.now() + timedelta(days=settings.retention.outbox_card_days + 3))
    report = await run_retention(service.factory, settings, clock)
    assert report.counts.get("outbox cards dropped", 0) >= 1
    async with service.factory() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.card_key == "retention:card"))
        assert row is not None and row.card == {} and row.status == "sent"

    async def update(ctx: Context) -> None:
        ctx.outbox.update(ctx.person, second, card_key="retention:card")

    await run_as(service, org.emp1.id, update)
    await service.outbox.drain()
    assert recorder.updates[-1][0] == ref and recorder.updates[-1][1].header.title == "v2"


async def test_the_floors_keep_the_ledger_and_the_digest_safe(settings: Settings) -> None:
    """However short the configured ages, the ledger outlives the scheduler's reach and the audit log the
    digest's trend window."""
    now = datetime(2026, 11, 24, tzinfo=UTC)
    tight = settings.model_copy(
        update={
            "retention": RetentionConfig(scheduled_sends_days=150, audit_log_days=90),
            "schedule": settings.schedule.model_copy(update={"catchup_horizon_hours": 24 * 60}),
            "digest": settings.digest.model_copy(update={"trend_days": 365}),
        }
    )
    cut = cutoffs(tight, now)
    assert now - cut.scheduled_sends >= timedelta(weeks=16, days=7) + timedelta(days=60)
    assert now - cut.audit_log > timedelta(days=365)
    with pytest.raises(ValueError):
        RetentionConfig(inbound_events_days=1)  # shorter than a platform's retries: refused


async def test_inbound_events_outlive_every_accepted_replay(settings: Settings) -> None:
    """An event row is the dedupe of its callback: it is kept for as long as any enabled platform would still
    accept that callback signed, so a captured callback replayed later is still a duplicate."""
    now = datetime(2026, 11, 24, tzinfo=UTC)
    base = settings.model_copy(update={"retention": RetentionConfig(inbound_events_days=2)})
    assert now - cutoffs(base, now).inbound_events == timedelta(days=2)  # only the simulator: as configured
    feishu = base.model_copy(
        update={
            "feishu": base.feishu.model_copy(
                update={
                    "enabled": True,
                    "replay_window_seconds": 6 * 24 * 3600,
                    "clock_tolerance_seconds": 300,
                }
            )
        }
    )
    assert now - cutoffs(feishu, now).inbound_events > timedelta(days=6, seconds=300)
    dingtalk = base.model_copy(
        update={"dingtalk": base.dingtalk.model_copy(update={"enabled": True, "card_click_ttl_days": 30})}
    )
    assert now - cutoffs(dingtalk, now).inbound_events > timedelta(days=30)


async def test_retention_is_a_leader_only_sweep_that_rests_between_runs(
    service: Service, org: Org, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.app.service as service_module

    tables: list[JobTable] = []

    def capture(entries: Any, **kw: Any) -> JobTable:
        tables.append(JobTable(entries, **kw))
        return tables[-1]

    monkeypatch.setattr(service_module, "JobTable", capture)
    scheduler_job()
    assert "retention" in {sweep.name for sweep in tables[0].sweeps}  # in every scheduler's table

    class Host:
        settings = with_retention(service.settings, tmp_path)
        factory = service.factory

        def __init__(self, clock: FixedClock) -> None:
            self.clock = clock

        async def run_for_person(self, person_id: int, fn: Any) -> None:
            raise AssertionError("retention does not run flows")

    job = RetentionJob()
    host = Host(clock)
    async with service.factory() as session, session.begin():
        session.add(
            InboundEvent(
                platform="rec",
                event_id="a",
                kind="text",
                answer=ANSWER,
                received_at=clock.now() - timedelta(days=9),
            )
        )
    first = await job.sweep(host)
    assert first is not None and first.counts == {"inbound_events deleted": 1}
    async with service.factory() as session, session.begin():
        session.add(
            InboundEvent(
                platform="rec",
                event_id="b",
                kind="text",
                answer=ANSWER,
                received_at=clock.now() - timedelta(days=9),
            )
        )
    assert await job.sweep(host) is None  # not due again before every_hours
    assert await count(service, InboundEvent) == 1
