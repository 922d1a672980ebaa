"""Outbox delivery: exclusive claims, backoff, dead letters, crash recovery, and a 10,000-person broadcast."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.base import PermanentError, RateLimited, TransientError
from adapters.ratelimit import TokenBucket
from adapters.registry import AdapterRegistry
from adapters.wecom.adapter import WeComAdapter
from bot.app.outbox import OutboxDelivery
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import OutboxConfig, Settings
from bot.core.context import Outbox
from cards.catalogue import Translator
from cards.model import Actions, Button, Card, Header, Markdown
from storage.models import OutboxMessage, Person
from tests.fakes.recording import RecordingAdapter
from tests.fakes.wecom import FakeWeCom, SentMessage
from tests.support.factories import Org, seed_org

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


async def test_a_broadcast_row_counts_against_every_person_it_reaches(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    # emp1 already had their 20 messages this minute; a two-person broadcast row (one locale, one row) then
    # waits whole, and the broadcast counts against the seller too.
    await enqueue(service, org, ["emp1"] * 20)
    d = delivery(service, "w")
    await d.drain()
    async with service.factory() as s, s.begin():
        out = Outbox(session=s, workspace=org.workspace, recipients_per_call=50, now=clock.now())
        await out.broadcast([org.emp1, org.seller], lambda t: CARD)
    await d.drain()
    assert Counter(x.recipient for x in recorder.sent) == {"emp1": 20}
    [held] = [r for r in await rows(service) if r.status == "pending"]
    assert sorted(held.recipients) == ["emp1", "seller"] and held.next_attempt_at > clock.now()
    clock.advance(timedelta(seconds=61))
    await d.drain()
    assert Counter(x.recipient for x in recorder.sent) == {"emp1": 21, "seller": 1}
    assert d.per_person.reserve_all("rec", ["seller"] * 19, clock.now()) is None
    assert d.per_person.reserve_all("rec", ["seller"], clock.now()) is not None  # the broadcast was counted


async def test_wecom_cards_with_buttons_are_one_row_per_person_and_notices_are_batched(
    service: Service, org: Org
) -> None:
    # WeCom updates a card through a response code shared by every recipient of one call, so a card that
    # will change goes one person per row (each row is rate-limited, leased and retried on its own).
    per_call = AdapterRegistry()
    per_call.add(WeComAdapter.__new__(WeComAdapter))
    assert per_call.interactive_recipients_per_call() == {"wecom": 1}
    assert per_call.recipients_per_call() == {"wecom": 1000}
    ask = CARD.model_copy(
        update={"elements": [*CARD.elements, Actions(buttons=[Button(label="好", value="kickoff.ack|{}")])]}
    )
    people = [org.emp1, org.manager, org.seller]
    async with service.factory() as s, s.begin():
        out = Outbox(
            session=s,
            workspace=org.workspace,
            recipients_per_call=1000,
            interactive_recipients_per_call=1,
            now=service.clock.now(),
        )
        assert await out.broadcast(people, lambda t: ask) == 3
        assert await out.broadcast(people, lambda t: CARD) == 1
    sent = await rows(service)
    assert sorted(len(r.recipients) for r in sent) == [1, 1, 1, 3]


# ------------------------------------------------------------------------------ resends and dedupe windows
@pytest.fixture
async def wecom(
    db_url: str, tmp_path: Path, clock: FixedClock
) -> AsyncIterator[tuple[Service, FakeWeCom, Org]]:
    async with wecom_env(db_url, tmp_path, clock) as env:
        yield env


@asynccontextmanager
async def wecom_env(
    db_url: str, tmp_path: Path, clock: FixedClock, **outbox: object
) -> AsyncIterator[tuple[Service, FakeWeCom, Org]]:
    """The real WeCom adapter against the fake, whose duplicate check runs on the test clock: a resend the
    outbox makes after WeCom's window shows a second card, exactly as on a real tenant."""
    fake = FakeWeCom(now=lambda: clock.now().timestamp())
    for uid in ("emp1", "emp2", "mgr"):
        fake.add_user(uid, uid, [1])
    await fake.start()
    settings = Settings(
        database={"url": db_url},
        media={"dir": tmp_path / "media"},
        sim={"enabled": False},
        wecom={
            "enabled": True,
            "api_base": fake.url,
            "corp_id": fake.corp_id,
            "agent_id": fake.agent_id,
            "secret": fake.secret,
            "token": fake.token,
            "encoding_aes_key": fake.encoding_aes_key,
        },
        outbox={"lease_seconds": 2 * 3600, **outbox},  # lease longer than WeCom's 30-minute duplicate check
    )
    service = build_service(settings, clock=clock, registry=AdapterRegistry.from_settings(settings))
    service.run_outbox = False
    adapter = service.registry.get("wecom")
    assert isinstance(adapter, WeComAdapter)
    adapter.client.rate_limit_pause = 0.01
    async with service.factory() as s, s.begin():
        org = await seed_org(s, platform="wecom", app_id=fake.corp_id)
    try:
        yield service, fake, org
    finally:
        await service.close()
        await fake.close()


def shown(fake: FakeWeCom) -> Counter[str]:
    return Counter(u for m in fake.messages if m.shown for u in m.recipients)


def calls_to(fake: FakeWeCom, user: str) -> list[SentMessage]:
    return [m for m in fake.messages if m.recipients == [user]]


async def test_a_send_in_doubt_past_the_platform_window_is_not_sent_again(
    wecom: tuple[Service, FakeWeCom, Org], clock: FixedClock
) -> None:
    service, fake, org = wecom
    first, second, never = await enqueue(service, org, ["emp1", "emp2", "mgr"])
    crashed = delivery(service, "crashed")
    claimed = {r.id: r for r in await crashed.claim(10)}
    # emp1's card went out at once; the process died before it could record that.
    await crashed._deliver(claimed[first])
    # emp2's card waited 100 minutes for the rate limiter, went out, then the process died.
    clock.advance(timedelta(minutes=100))
    await crashed._deliver(claimed[second])
    # mgr's card never reached WeCom. The lease (2 h) runs out; WeCom forgot emp1's card 90 minutes ago.
    clock.advance(timedelta(minutes=21))
    await delivery(service, "survivor").drain()

    assert shown(fake) == {"emp1": 1, "emp2": 1, "mgr": 1}
    assert len(calls_to(fake, "emp1")) == 1, "emp1's card was sent again after WeCom's window"
    again = calls_to(fake, "emp2")
    assert [m.shown for m in again] == [True, False], "inside the window: resent, and WeCom dedupes it"
    assert again[0].card["task_id"] == again[1].card["task_id"]
    status = {r.id: r.status for r in await rows(service)}
    assert status == {first: "unknown", second: "sent", never: "sent"}
    assert await delivery(service, "later").drain_once() == 0, "an unknown row is not picked up again"
    metrics = (await service.metrics.render(service.factory, clock.now())).decode()
    assert 'perfloop_outbox_depth{status="unknown"} 1.0' in metrics


async def test_the_window_counts_from_the_first_unanswered_call(
    wecom: tuple[Service, FakeWeCom, Org], clock: FixedClock
) -> None:
    """Two crashes in a row: the second resend was deduplicated, so WeCom's window still runs from the first
    call; a third resend 32 minutes after it would show the card twice."""
    service, fake, org = wecom
    await enqueue(service, org, ["emp1"])
    for name in ("crash-1", "crash-2"):
        crashed = delivery(service, name, lease_seconds=900)
        (row,) = await crashed.claim(1)
        await crashed._deliver(row)  # delivered (or deduplicated), then the process died
        clock.advance(timedelta(minutes=16))
    await delivery(service, "survivor").drain()
    (row,) = await rows(service)
    assert row.status == "unknown" and "window" in (row.last_error or "")
    assert [m.shown for m in calls_to(fake, "emp1")] == [True, False]


async def test_a_rate_limited_attempt_reached_nobody_so_it_does_not_start_the_window(
    wecom: tuple[Service, FakeWeCom, Org], clock: FixedClock
) -> None:
    service, fake, org = wecom
    await enqueue(service, org, ["emp1"])
    fake.throttle(1)
    d = delivery(service, "w")
    await d.drain_once()
    (row,) = await rows(service)
    assert row.status == "pending" and row.attempt_started_at is None
    clock.advance(timedelta(hours=3))
    await d.drain()
    (row,) = await rows(service)
    assert row.status == "sent" and shown(fake) == {"emp1": 1}


async def test_a_worker_that_lost_its_lease_does_not_send(
    wecom: tuple[Service, FakeWeCom, Org], clock: FixedClock
) -> None:
    service, fake, org = wecom
    await enqueue(service, org, ["emp1"])
    slow = delivery(service, "slow", lease_seconds=60)
    (mine,) = await slow.claim(1)
    clock.advance(timedelta(seconds=61))
    fast = delivery(service, "fast")
    assert len(await fast.claim(1)) == 1  # took the row over
    outcome = await slow._deliver(mine)
    assert outcome.lost_lease and fake.messages == []


async def test_the_wecom_window_is_config_and_is_what_wecom_is_asked(
    db_url: str, tmp_path: Path, clock: FixedClock
) -> None:
    windows = {"dedupe_window_seconds": {"wecom": 4 * 3600}}
    async with wecom_env(db_url, tmp_path, clock, **windows) as (service, fake, org):
        await enqueue(service, org, ["emp1"])
        crashed = delivery(service, "crashed")
        (row,) = await crashed.claim(1)
        await crashed._deliver(row)
        clock.advance(timedelta(hours=2, minutes=1))  # the lease ran out; WeCom still remembers (4 h)
        await delivery(service, "survivor").drain()
        (row,) = await rows(service)
        assert row.status == "sent"
        assert [m.shown for m in calls_to(fake, "emp1")] == [True, False]
        assert {m.body["duplicate_check_interval"] for m in fake.messages} == {4 * 3600}


async def test_a_retried_dead_letter_is_delivered_with_a_fresh_budget(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    from bot.app.outbox_admin import OutboxAdminError, retry_one

    await enqueue(service, org, ["emp1"])
    recorder.fail_next.append(PermanentError("60020 not allow to access from your ip"))
    await service.outbox.drain()
    (row,) = await rows(service)
    assert row.status == "dead"
    with pytest.raises(OutboxAdminError, match="only dead or unknown"):
        await retry_one(service.factory, row.id, clock.now())  # fine: dead
        await retry_one(service.factory, row.id, clock.now())  # now pending: refused
    await service.outbox.drain()
    (row,) = await rows(service)
    assert row.status == "sent" and row.attempts == 1
    assert [d.recipient for d in recorder.sent] == ["emp1"]
