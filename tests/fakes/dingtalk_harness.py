"""Shared set-up for the DingTalk tests: the fake platform, perfloop on loopback, a test-only router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date

from aiohttp import web
from sqlalchemy import func, select, update

from adapters.dingtalk.adapter import DingTalkAdapter
from adapters.registry import AdapterRegistry
from bot.app.http import create_app
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.context import Context, Reply
from bot.core.router import Router
from cards.actions import Action, action, pack
from cards.model import Actions, Button, Card, Form, Header, Markdown, TextInput
from cards.notice import notice_card
from storage.models import ActionItem, AuditLog, InboundEvent, OutboxMessage
from tests.fakes.dingtalk import APP_KEY, FakeDingTalk, dingtalk_settings, free_port
from tests.support.factories import Org, seed_org


@action("dttest.accept")
class DtAccept(Action):
    item_id: int


@action("dttest.note")
class DtNote(Action):
    item_id: int


test_router = Router()


@test_router.action(DtAccept)
async def accept(ctx: Context, payload: DtAccept) -> Reply:
    done = await ctx.session.execute(
        update(ActionItem)
        .where(ActionItem.id == payload.item_id, ActionItem.status == "open")
        .values(status="accepted", first_response_at=ctx.now)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise ctx.refuse("common.already_done")
    return Reply(toast="accepted", card=notice_card(ctx.t, "Accepted", f"item {payload.item_id} accepted"))


async def note_form(ctx: Context, payload: DtNote) -> Form:
    del ctx
    return Form(
        name="note",
        inputs=[
            TextInput(name="what", label="What happened?", required=True),
            TextInput(name="next", label="What next?", required=True),
        ],
        submit=Button(label="Submit", value=pack(payload)),
    )


@test_router.action(DtNote, form=note_form)
async def note(ctx: Context, payload: DtNote) -> Reply:
    assert ctx.event is not None and ctx.event.kind == "card_action"
    form = ctx.event.form
    await ctx.session.execute(
        update(ActionItem)
        .where(ActionItem.id == payload.item_id)
        .values(deliverable=f"{form['what']} / {form['next']}", status="done")
    )
    return Reply(toast="noted", card=notice_card(ctx.t, "Noted", "thanks"))


async def image_handler(ctx: Context, media_ref: str) -> Reply:
    data = await ctx.download(media_ref)
    ctx.audit("dttest.image", "evidence", None, size=len(data), head=data[:8].hex())
    return Reply(toast="photo received")


def accept_card(item_id: int) -> Card:
    return Card(
        header=Header(title="Please confirm"),
        summary="confirm item",
        elements=[
            Markdown(text=f"Action item **{item_id}**"),
            Actions(buttons=[Button(label="Accept", value=pack(DtAccept(item_id=item_id)), style="primary")]),
        ],
    )


def note_card(item_id: int) -> Card:
    return Card(
        header=Header(title="Tell us"),
        elements=[
            Markdown(text="Two questions"),
            Actions(buttons=[Button(label="Answer", value=pack(DtNote(item_id=item_id)))]),
        ],
    )


@dataclass
class Env:
    fake: FakeDingTalk
    service: Service
    adapter: DingTalkAdapter
    org: Org
    bot_url: str
    clock: FixedClock

    @property
    def now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def count(self, model: type) -> int:
        async with self.service.factory() as s:
            return int(await s.scalar(select(func.count()).select_from(model)) or 0)

    async def inbound_count(self) -> int:
        return await self.count(InboundEvent)

    async def new_item(self, person_id: int) -> int:
        async with self.service.factory() as s, s.begin():
            item = ActionItem(
                owner_id=person_id, source="manual", deliverable="ship it", deadline=date(2026, 12, 1)
            )
            s.add(item)
            await s.flush()
            return item.id

    async def item(self, item_id: int) -> ActionItem:
        async with self.service.factory() as s:
            found = await s.get(ActionItem, item_id)
            assert found is not None
            return found

    async def send_card(self, person_id: int, card: Card, card_key: str) -> None:
        """Queue a card the way handlers do (an outbox row in a transaction) and deliver it."""

        async def job(ctx: Context) -> None:
            ctx.outbox.send(ctx.person, card, card_key=card_key)

        await self.service.dispatcher.run_for_person(person_id, job)
        await self.service.outbox.drain()

    async def audits(self, action_name: str) -> list[AuditLog]:
        async with self.service.factory() as s:
            return list((await s.scalars(select(AuditLog).where(AuditLog.action == action_name))).all())

    async def outbox_rows(self) -> list[OutboxMessage]:
        async with self.service.factory() as s:
            return list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


@asynccontextmanager
async def running(settings: Settings, clock: FixedClock, *, mode: str, **extra: object) -> AsyncIterator[Env]:
    fake = FakeDingTalk()
    fake_url = await fake.start()
    port = free_port()
    cfg = dingtalk_settings(settings, fake_url, mode=mode, bot_port=port, **extra)
    adapter = DingTalkAdapter.from_settings(cfg)
    registry = AdapterRegistry()
    registry.add(adapter)
    service = build_service(cfg, clock=clock, registry=registry)
    service.run_outbox = False
    service.dispatcher.router.include(test_router)
    service.dispatcher.router.images.insert(0, image_handler)
    runner = web.AppRunner(create_app(service))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        async with service.factory() as s, s.begin():
            org = await seed_org(s, platform="dingtalk", app_id=APP_KEY)
        yield Env(fake, service, adapter, org, f"http://127.0.0.1:{port}", clock)
    finally:
        await runner.cleanup()
        await fake.stop()
