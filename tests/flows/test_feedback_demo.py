"""The scripted peer-feedback round of the demo ends with the manager's aggregate card and its radar."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image as PILImage

from bot.app.demo_feedback import DemoError, run_peer_round
from bot.app.service import Service
from bot.core.config import Settings
from cards.model import Image
from cards.radar import SIZE_PX
from storage.models import PeerFeedback
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import text_of
from tests.support.flows3 import count


async def test_demo_round_leaves_the_aggregate_with_the_manager(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings
) -> None:
    await run_peer_round(
        service, platform="rec", workspace="rec-app", subject="emp1", peers=("emp2", "seller", "hrbp")
    )
    await service.outbox.drain()
    assert await count(service, PeerFeedback, PeerFeedback.status == "answered") == 3
    [aggregate] = [c for c in recorder.to("mgr") if any(isinstance(e, Image) for e in c.elements)]
    assert "张三" in aggregate.header.title and "李四" not in text_of(aggregate)
    [image] = [e for e in aggregate.elements if isinstance(e, Image)]
    with PILImage.open(Path(settings.media.dir) / image.media_id[:2] / image.media_id) as img:
        assert img.size == (SIZE_PX, SIZE_PX)
    assert any("⚠" in text_of(c) for c in recorder.to("mgr"))  # self 5 vs peers ~3: flagged
    with pytest.raises(DemoError):
        await run_peer_round(service, platform="rec", workspace="rec-app", subject="nobody")
