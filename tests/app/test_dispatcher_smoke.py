from __future__ import annotations

from sqlalchemy import func, select

from bot.app.service import Service
from bot.core.events import TextMessage
from storage.models import InboundEvent
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org


async def test_help_command_and_dedupe(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    ev = TextMessage(platform="rec", workspace="rec-app", event_id="e1", sender_id="emp1", text="/help")
    await service.dispatcher.dispatch(ev)
    await service.dispatcher.dispatch(ev)
    await service.outbox.drain()
    assert len(recorder.to("emp1")) == 1
    async with service.factory() as s:
        assert await s.scalar(select(func.count()).select_from(InboundEvent)) == 1
