"""``Reply(private=True)`` in the dispatcher (issue 16 #3): a card that shows a rater their own anonymous
answer again is shown once and never stored — not as the event's stored answer, not as an outbox row.

Two platform shapes beside the recording adapter's default (tested in tests/proof/test_peer_anonymity.py):
one that answers a click with the card inline (Feishu), one without text inputs or toasts, where the answer
comes through a chat form and the reply goes by message (DingTalk, WeCom).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
from sqlalchemy import select

from bot.app.service import Service
from cards import peer_feedback as pc
from storage.feedback_scales import DIMENSIONS
from storage.models import InboundEvent, OutboxMessage, PeerFeedback
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import click, say, text_of
from tests.support.flows3 import make_cycle, rows

VAGUE = "加强沟通，多多配合"


@dataclass
class InlineRecorder(RecordingAdapter):
    answers_card_inline: ClassVar[bool] = True


@dataclass
class ChatFormRecorder(RecordingAdapter):
    supports_text_inputs: ClassVar[bool] = False
    shows_toasts: ClassVar[bool] = False


@pytest.fixture(params=["inline", "chat_form"])
def recorder(request: pytest.FixtureRequest) -> RecordingAdapter:
    return InlineRecorder() if request.param == "inline" else ChatFormRecorder()


async def _stored(service: Service) -> str:
    async with service.factory() as s:
        answers = [e.answer for e in await s.scalars(select(InboundEvent))]
        cards = [(o.recipients, o.card) for o in await s.scalars(select(OutboxMessage))]
    return json.dumps([answers, cards], ensure_ascii=False)


async def test_an_echoed_anonymous_answer_is_shown_but_never_stored(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    people = [org.emp2.id, org.seller.id, org.hrbp.id]
    nominate = await click(
        service,
        "mgr",
        pc.PeerNominate(cycle_id=cycle.id, subject_id=org.emp1.id),
        {"peers": [str(p) for p in people]},
    )
    assert nominate.toast_kind == "success", nominate.toast
    await service.outbox.drain()
    [row] = await rows(service, PeerFeedback, PeerFeedback.rater_id == org.emp2.id)
    form = {**{f"dim_{d}": "3" for d in DIMENSIONS}, "example": VAGUE}
    recorder.clear()

    if isinstance(recorder, InlineRecorder):
        answer = await click(service, "emp2", pc.PeerAnswer(feedback_id=row.id), form)
        assert answer.toast_kind == "warning" and answer.toast and VAGUE not in answer.toast
        assert answer.card is not None and VAGUE in text_of(answer.card)  # the rater sees their text again
    else:
        started = await click(service, "emp2", pc.PeerAnswer(feedback_id=row.id))
        assert started.toast_kind == "info"
        for reply in [*("3" for _ in DIMENSIONS), VAGUE]:
            await say(service, "emp2", reply)
            await service.outbox.drain()
        told = text_of(recorder.to("emp2")[-1])
        # Heard why, by message, without their text.
        assert "not a checkable behaviour" in told and VAGUE not in told
        assert not recorder.updates  # the request card stays as it was: tapping it again starts over
    await service.outbox.drain()
    assert VAGUE not in await _stored(service)
    [row] = await rows(service, PeerFeedback, PeerFeedback.rater_id == org.emp2.id)
    assert row.status == "requested" and row.vague_bounced
