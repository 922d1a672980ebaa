"""``Outbox.supersede`` (issue 15 #10): the card sent under a key is put into its final state, whether it is
still queued, already delivered or being delivered right now."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.app.service import Service
from bot.core.context import SUPERSEDE_SETTLE, Context
from cards.model import Card, Header, Markdown
from storage.models import OutboxMessage
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import run_as


def card(title: str) -> Card:
    return Card(header=Header(title=title), elements=[Markdown(text=title)])


async def test_a_delivered_card_is_updated_in_place(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    async def send(ctx: Context) -> None:
        ctx.outbox.send(org.emp1, card("live"), card_key="k:1")

    await run_as(service, org.emp1.id, send)
    await service.outbox.drain()
    [delivered] = recorder.sent
    assert await run_as(service, org.emp1.id, lambda ctx: ctx.outbox.supersede(org.emp1, "k:1", card("done")))
    assert not await run_as(
        service, org.emp1.id, lambda ctx: ctx.outbox.supersede(org.emp1, "k:unknown", card("done"))
    )
    assert not await run_as(
        service, org.emp2.id, lambda ctx: ctx.outbox.supersede(org.emp2, "k:1", card("x"))
    )
    await service.outbox.drain()
    assert [(ref, c.header.title, r) for ref, c, r in recorder.updates] == [
        (delivered.message_ref, "done", "emp1")
    ]


async def test_a_queued_card_is_rewritten_before_anyone_sees_it(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    async def send_and_supersede(ctx: Context) -> bool:
        ctx.outbox.send(org.emp1, card("live"), card_key="k:2")
        return await ctx.outbox.supersede(org.emp1, "k:2", card("done"))

    assert await run_as(service, org.emp1.id, send_and_supersede)
    await service.outbox.drain()
    assert [d.card.header.title for d in recorder.sent] == ["done"]
    assert not recorder.updates


async def test_a_card_in_flight_is_followed_by_an_update(service: Service, org: Org) -> None:
    async def send(ctx: Context) -> None:
        ctx.outbox.send(org.emp1, card("live"), card_key="k:3")

    await run_as(service, org.emp1.id, send)
    async with service.factory() as s, s.begin():
        await s.execute(update(OutboxMessage).values(status="sending"))
    assert await run_as(service, org.emp1.id, lambda ctx: ctx.outbox.supersede(org.emp1, "k:3", card("done")))
    async with service.factory() as s:
        rows = list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    sending, follow = rows
    assert sending.card["header"]["title"] == "done"  # a retry sends the final card
    assert (follow.op, follow.card_key, follow.card["header"]["title"]) == ("update", "k:3", "done")
    assert follow.next_attempt_at - sending.next_attempt_at >= SUPERSEDE_SETTLE - timedelta(seconds=1)
