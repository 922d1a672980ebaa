"""The outbox claim in two steps (issue 22 #2): rows whose lease ran out first, then pending rows by due time
and id, ``limit`` in all; never a row still leased, a row not yet due, or a row twice."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, update

from bot.app.outbox import OutboxDelivery
from bot.app.service import Service
from bot.core.clock import FixedClock
from storage.models import OutboxMessage
from tests.support.factories import Org


async def _rows(service: Service, org: Org, n: int, **values: object) -> list[int]:
    now = service.clock.now()
    async with service.factory() as s, s.begin():
        ids = await s.scalars(
            insert(OutboxMessage).returning(OutboxMessage.id),
            [
                {
                    "workspace_id": org.workspace.id,
                    "platform": "rec",
                    "op": "send",
                    "recipients": [f"u{i}"],
                    "card": {"header": {"title": "x"}, "elements": []},
                    "next_attempt_at": now,
                    **values,
                }
                for i in range(n)
            ],
        )
        return list(ids)


async def test_lapsed_leases_first_then_pending_in_due_order(
    service: Service, org: Org, clock: FixedClock
) -> None:
    now = clock.now()
    later = await _rows(service, org, 2, next_attempt_at=now - timedelta(minutes=1))
    earlier = await _rows(service, org, 2, next_attempt_at=now - timedelta(minutes=5))
    future = await _rows(service, org, 1, next_attempt_at=now + timedelta(minutes=5))
    lapsed = await _rows(service, org, 2, status="sending", claimed_until=now - timedelta(seconds=1))
    leased = await _rows(service, org, 1, status="sending", claimed_until=now + timedelta(minutes=1))
    worker = OutboxDelivery(
        factory=service.factory,
        registry=service.registry,
        settings=service.settings,
        clock=clock,
        worker_id="w",
    )
    first = [r.id for r in await worker.claim(3)]
    assert first == sorted([*lapsed, earlier[0]])
    second = [r.id for r in await worker.claim(10)]
    assert second == sorted([earlier[1], *later])
    assert await worker.claim(10) == []
    assert not set(first + second) & {*future, *leased}
    async with service.factory() as s, s.begin():
        await s.execute(update(OutboxMessage).where(OutboxMessage.id.in_(future)).values(next_attempt_at=now))
    assert [r.id for r in await worker.claim(10)] == future
