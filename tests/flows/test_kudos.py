"""Kudos points outside the allowed range are refused with the range, never sent as +1 (issue 15 #8)."""

from __future__ import annotations

import pytest

from bot.app.service import Service
from handlers.kudos.kudos import MAX_POINTS, BadPoints, parse_kudos
from storage.models import Recognition
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows2 import count, text


@pytest.mark.parametrize("given", ["+100", "+0", "-2", "－3", "+1.5", "+6", "＋10分"])
async def test_points_out_of_range_are_refused_with_the_range(
    service: Service, org: Org, recorder: RecordingAdapter, given: str
) -> None:
    answer = await service.dispatcher.dispatch(text("emp1", f"/kudos @李四 {given} 太强了"))
    await service.outbox.drain()
    assert answer.toast_kind == "error"
    assert answer.toast is not None
    assert f"+{MAX_POINTS}" in answer.toast and "+1" in answer.toast and given in answer.toast
    assert await count(service, Recognition) == 0
    assert recorder.to("emp2") == []
    # A chat message cannot show a toast: the sender is told on a card.
    [told] = recorder.to("emp1")
    assert given in told.model_dump_json()


@pytest.mark.parametrize(("given", "points"), [("+3", 3), ("＋2分", 2), ("+5", 5), ("", 1)])
async def test_points_in_range_are_sent(
    service: Service, org: Org, recorder: RecordingAdapter, given: str, points: int
) -> None:
    answer = await service.dispatcher.dispatch(text("emp1", f"/kudos @李四 {given} 帮我顶了周五的发布"))
    await service.outbox.drain()
    assert answer.toast_kind != "error", answer.toast
    assert await count(service, Recognition, Recognition.points == points) == 1
    [card] = recorder.to("emp2")
    assert f"+{points}" in card.model_dump_json()


def test_parser_separates_points_from_reasons() -> None:
    assert parse_kudos("@李四 +3 帮忙 上线") == ("@李四", 3, "帮忙 上线")
    assert parse_kudos("@李四 3 个版本按时上线") == ("@李四", 1, "3 个版本按时上线")
    assert parse_kudos("@李四 +2") is None
    with pytest.raises(BadPoints) as bad:
        parse_kudos("@李四 +100 太强了")
    assert bad.value.given == "+100"
