"""Outbox delivery: exclusive claims, backoff, dead letters, crash recovery, and a 10,000-person broadcast."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from adapters.base import PermanentError, RateLimited, TransientError
from adapters.ratelimit import TokenBucket
from bot.app.outbox import OutboxDelivery
from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.config import OutboxConfig
from bot.core.context import Outbox
from cards.catalogue import Translator
from cards.model import Card, Header, Markdown
from storage.models import OutboxMessage, Person
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org

CARD = Card(header=Header(title="周期启动"), elements=[Markdown(text="2026-Q1 开始了")])


def delivery(service: Service, worker: str, **cfg: object) -> OutboxDelivery:
    settings = service.settings.model_copy(
        update={"outbox": OutboxConfig(**{**service.settings.outbox.model_dump(), **cfg})}
    )
    return OutboxDelivery(
        factory=service.factory,
        registry=service.registry,
        settings=settings,
        clock=service.clock,
        worker_id=worker,
    )


async def enqueue(service: Service, org: Org, recipients: list[str], **kw: object) -> list[int]:
    async with service.factory() as s, s.begin():
        out = Outbox(session=s, workspace=org.workspace, recipients_per_call=1, now=service.clock.now())
        for r in recipients:
            out.send_to_platform_id(r, CARD, **kw)  # type: ignore[arg-type]
        await s.flush()
        return [row.id for row in out.written]


async def rows(service: Service) -> list[OutboxMessage]:
    async with service.factory() as s:
        return list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def test_claims_are_exclusive_between_concurrent_workers(service: Service, org: Org) -> None:
    await enqueue(service, org, [f"u{i}" for i in range(300)])
    a, b = delivery(service, "worker-a"), delivery(service, "worker-b")

    async def claim_all(d: OutboxDelivery) -> list[int]:
        got: list[int] = []
        while batch := await d.claim(7):
            got.extend(r.id for r in batch)
        return got

    got_a, got_b = await asyncio.gather(claim_all(a), claim_all(b))
    assert len(got_a) + len(got_b) == 300
    assert not set(got_a) & set(got_b)
    assert got_a and got_b  # both really competed
    owners = Counter(r.claimed_by for r in await rows(service))
    assert owners == {"worker-a": len(got_a), "worker-b": len(got_b)}


async def test_transient_error_backs_off_then_succeeds(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    await enqueue(service, org, ["emp1"])
    recorder.fail_next.append(TransientError("502 from platform"))
    d = delivery(service, "w", backoff_base_seconds=10, backoff_max_seconds=100)
    await d.drain_once()
    (row,) = await rows(service)
    assert row.status == "pending" and row.attempts == 1 and "502" in (row.last_error or "")
    wait = (row.next_attempt_at - clock.now()).total_seconds()
    assert 5 <= wait <= 15  # base 10 s with ±50 % jitter
    assert await d.drain_once() == 0  # not due yet
    clock.advance(timedelta(seconds=16))
    await d.drain_once()
    (row,) = await rows(service)
    assert row.status == "sent" and row.attempts == 2
    assert len(recorder.sent) == 1


async def test_rate_limit_honours_retry_after(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    await enqueue(service, org, ["emp1"])
    recorder.fail_next.append(RateLimited("45009 api freq out of limit", retry_after=30))
    d = delivery(service, "w")
    await d.drain_once()
    (row,) = await rows(service)
    assert row.status == "pending"
    assert row.next_attempt_at - clock.now() == timedelta(seconds=30)


async def test_dead_letter_after_max_attempts_keeps_error(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    await enqueue(service, org, ["emp1"])
    d = delivery(service, "w", max_attempts=3, backoff_base_seconds=1, backoff_max_seconds=1)
    for i in range(3):
        recorder.fail_next.append(TransientError(f"timeout {i}"))
        await d.drain_once()
        clock.advance(timedelta(seconds=5))
    (row,) = await rows(service)
    assert row.status == "dead" and row.attempts == 3 and row.last_error == "TransientError: timeout 2"
    assert await d.drain_once() == 0
    assert recorder.sent == []


async def test_permanent_error_is_dead_at_once(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await enqueue(service, org, ["emp1"])
    recorder.fail_next.append(PermanentError("81013 user not found"))
    await delivery(service, "w").drain_once()
    (row,) = await rows(service)
    assert row.status == "dead" and row.attempts == 1


async def test_crashed_worker_lease_is_taken_over_and_sent_once(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    await enqueue(service, org, ["emp1", "emp2"])
    crashed = delivery(service, "crashed", lease_seconds=60)
    claimed = await crashed.claim(10)
    # The crashed worker had already delivered the first card before dying.
    await recorder.send("emp1", CARD, idempotency_key=f"perfloop-outbox-{claimed[0].id}")
    survivor = delivery(service, "survivor")
    assert await survivor.drain_once() == 0  # leases still valid
    clock.advance(timedelta(seconds=61))
    await survivor.drain()
    assert Counter(d.recipient for d in recorder.sent) == {"emp1": 1, "emp2": 1}
    assert {r.status for r in await rows(service)} == {"sent"}
    # The dead worker waking up cannot overwrite the survivor's result.
    await crashed._record({r.id: r for r in claimed}, [])
    assert {r.claimed_by for r in await rows(service)} == {"survivor"}


async def test_broadcast_of_10000_reaches_each_person_exactly_once(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    people = [
        Person(
            id=100_000 + i,
            workspace_id=org.workspace.id,
            platform_user_id=f"p{i:05d}",
            name=f"员工{i}",
            locale="en" if i % 10 == 0 else "zh-CN",
        )
        for i in range(10_000)
    ]
    async with service.factory() as s, s.begin():
        out = Outbox(
            session=s,
            workspace=org.workspace,
            recipients_per_call=recorder.max_recipients_per_call,
            now=service.clock.now(),
        )
        n_rows = await out.broadcast(
            people,
            lambda t: Card(
                header=Header(title=t("common.ok")), elements=[Markdown(text=t("common.help_title"))]
            ),
            card_key="kickoff:1",
            dedupe_prefix="kickoff:1",
        )
    assert n_rows == 10  # 9,000 zh-CN in 9 calls of 1,000, 1,000 en in one
    # Two processes' workers drain together.
    await asyncio.gather(delivery(service, "a").drain(), delivery(service, "b").drain())
    counts = Counter(d.recipient for d in recorder.sent)
    assert len(counts) == 10_000 and set(counts.values()) == {1}
    en = {d.card.header.title for d in recorder.sent if d.recipient == "p00010"}
    assert en == {Translator("en")("common.ok")}
    # card_messages now lets a later update find each person's card.
    async with service.factory() as s:
        from storage.models import CardMessage

        assert (
            len((await s.scalars(select(CardMessage.id).where(CardMessage.card_key == "kickoff:1"))).all())
            == 10_000
        )


async def test_update_finds_the_earlier_message(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    async with service.factory() as s, s.begin():
        emp = await s.get(Person, org.emp1.id)
        assert emp is not None
        Outbox(session=s, workspace=org.workspace, now=service.clock.now()).send(
            emp, CARD, card_key="checkin:5"
        )
    await service.outbox.drain()
    async with service.factory() as s, s.begin():
        emp = await s.get(Person, org.emp1.id)
        assert emp is not None
        Outbox(session=s, workspace=org.workspace, now=service.clock.now()).update(
            emp, CARD.disabled(), card_key="checkin:5"
        )
    await service.outbox.drain()
    assert recorder.updates == [(recorder.sent[0].message_ref, CARD.disabled(), "emp1")]


@pytest.mark.parametrize("rate", [200.0])
async def test_token_bucket_limits_rate(rate: float) -> None:
    bucket = TokenBucket(rate, 10)
    started = time.perf_counter()
    for _ in range(60):
        await bucket.acquire()
    elapsed = time.perf_counter() - started
    assert elapsed >= (60 - 10) / rate * 0.9


async def test_no_person_gets_more_than_the_cap_a_minute(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    await enqueue(service, org, ["emp1"] * 25 + ["emp2"] * 3)
    d = delivery(service, "w")
    await d.drain()
    counts = Counter(x.recipient for x in recorder.sent)
    assert counts == {"emp1": 20, "emp2": 3}
    held = [r for r in await rows(service) if r.status == "pending"]
    assert len(held) == 5 and all(r.attempts == 0 for r in held)
    assert all(r.next_attempt_at > clock.now() for r in held)
    clock.advance(timedelta(seconds=61))
    await d.drain()
    assert Counter(x.recipient for x in recorder.sent) == {"emp1": 25, "emp2": 3}
    assert {r.status for r in await rows(service)} == {"sent"}
