"""Issue 15 #1 and #14 in the feedback flow: a bounced or half-filled form comes back carrying every value
the person entered (scores, choices, texts), and a saved score shows as the chosen option.

The recorder here answers a click with the card inline (as Feishu does), so the re-shown card is the
callback's answer, private echoes of anonymous answers included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

import pytest

from bot.app.service import Service
from cards import deliverable_ratings as rc
from cards import peer_feedback as pc
from cards import self_assessment as sc
from cards.catalogue import Translator
from cards.model import Card, Select
from handlers.feedback.deliverable_ratings import open_deliverable_ratings
from handlers.feedback.self_assessment import open_self_assessment
from storage.feedback_scales import DIMENSIONS, PeerAggregate
from storage.models import Cycle, DeliverableRating, PeerFeedback
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, last_to, run_as, say
from tests.support.flows2 import add_item
from tests.support.flows3 import goals_of, make_cycle, rows


@dataclass
class InlineRecorder(RecordingAdapter):
    answers_card_inline: ClassVar[bool] = True


@pytest.fixture
def recorder() -> RecordingAdapter:
    return InlineRecorder()


def defaults(card: Card) -> dict[str, str | None]:
    """What the re-shown form holds, input by input."""
    [form] = card.forms()
    return {i.name: i.default for i in form.inputs}


def assert_selects_match_options(card: Card) -> None:
    """A default that is no option's value shows as an empty select (the "3.0" vs "3" fault)."""
    for form in card.forms():
        for item in form.inputs:
            if isinstance(item, Select) and item.default is not None:
                assert item.default in {o.value for o in item.options}, (item.name, item.default)


# ------------------------------------------------------------------ self-assessment


async def _open_self(
    service: Service, org: Org, recorder: RecordingAdapter
) -> tuple[sc.SelfAssessSubmit, list[int]]:
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    await run_as(service, org.emp1.id, lambda ctx: open_self_assessment(ctx, cycle_id=cycle.id))
    await service.outbox.drain()
    submit = button(last_to(recorder, "emp1"), sc.SelfAssessSubmit)
    return submit, [g.id for g in await goals_of(service, cycle, org.emp1)]


async def test_a_bounced_self_assessment_keeps_every_value(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    submit, (g1, g2) = await _open_self(service, org, recorder)
    form = {
        sc.score_name(g1): "2",
        sc.example_name(g1): "加强沟通",
        sc.score_name(g2): "5",
        sc.example_name(g2): "11 月 12 日前把报价流程从 3 天缩短到 1 天",
        **{sc.dim_name(d): str(v) for d, v in zip(DIMENSIONS, (1, 2, 4, 5), strict=True)},
    }
    answer = await click(service, "emp1", submit, form)
    assert answer.toast_kind == "warning" and answer.card is not None
    assert defaults(answer.card) == form
    assert_selects_match_options(answer.card)
    # Another copy of the form (``/selfassess``) starts from the same values, not from blank.
    await say(service, "emp1", "/selfassess")
    await service.outbox.drain()
    assert defaults(last_to(recorder, "emp1")) == form


async def test_a_half_filled_self_assessment_keeps_what_was_entered(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    submit, (g1, g2) = await _open_self(service, org, recorder)
    form = {
        sc.score_name(g1): "3",
        sc.example_name(g2): "每周五 18:00 前发 1 份周报",
        sc.dim_name(DIMENSIONS[0]): "4",
        sc.dim_name(DIMENSIONS[2]): "2",
    }
    answer = await click(service, "emp1", submit, form)
    assert answer.toast_kind == "error" and answer.card is not None
    shown = defaults(answer.card)
    assert {k: v for k, v in shown.items() if v} == form
    assert_selects_match_options(answer.card)


# ------------------------------------------------------------------ peer answers


async def _requests(service: Service, org: Org) -> tuple[Cycle, dict[int, int]]:
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
    return cycle, {r.rater_id: r.id for r in await rows(service, PeerFeedback)}


async def test_a_bounced_peer_answer_keeps_every_value(service: Service, org: Org) -> None:
    _, by_rater = await _requests(service, org)
    form = {
        **{f"dim_{d}": str(v) for d, v in zip(DIMENSIONS, (5, 1, 3, 2), strict=True)},
        "example": "加强沟通",
    }
    answer = await click(service, "emp2", pc.PeerAnswer(feedback_id=by_rater[org.emp2.id]), form)
    assert answer.toast_kind == "warning" and answer.card is not None
    assert defaults(answer.card) == form
    assert_selects_match_options(answer.card)


async def test_a_half_filled_peer_answer_keeps_what_was_entered(service: Service, org: Org) -> None:
    _, by_rater = await _requests(service, org)
    form = {
        f"dim_{DIMENSIONS[0]}": "5",
        f"dim_{DIMENSIONS[3]}": "2",
        "example": "10 月上线夜里一起排查了支付回调",
    }
    answer = await click(service, "emp2", pc.PeerAnswer(feedback_id=by_rater[org.emp2.id]), form)
    assert answer.toast_kind == "error" and answer.card is not None
    shown = defaults(answer.card)
    assert {k: v for k, v in shown.items() if v} == form
    [row] = await rows(service, PeerFeedback, PeerFeedback.rater_id == org.emp2.id)
    assert row.status == "requested"


# ------------------------------------------------------------------ manager scores (#14)


async def test_saved_manager_scores_show_as_chosen_options(service: Service, org: Org) -> None:
    cycle, by_rater = await _requests(service, org)
    for uid, person in (("emp2", org.emp2), ("seller", org.seller), ("hrbp", org.hrbp)):
        peer = {
            **{f"dim_{d}": "3" for d in DIMENSIONS},
            "example": f"11 月 {person.id} 日一起完成了 2 次联调",
        }
        done = await click(service, uid, pc.PeerAnswer(feedback_id=by_rater[person.id]), peer)
        assert done.toast_kind == "success", done.toast
    scores = pc.PeerManagerScores(cycle_id=cycle.id, subject_id=org.emp1.id)
    form = {f"dim_{d}": str(v) for d, v in zip(DIMENSIONS, (3, 4, 2, 5), strict=True)}
    answer = await click(service, "mgr", scores, form)
    assert answer.toast_kind == "success", answer.toast
    card = answer.card
    assert card is not None
    assert defaults(card) == form
    assert_selects_match_options(card)
    # A half-filled form is not thrown away either.
    half = {f"dim_{DIMENSIONS[1]}": "1"}
    again = await click(service, "mgr", scores, half)
    assert again.toast_kind == "error" and again.card is not None
    assert {k: v for k, v in defaults(again.card).items() if v} == half
    [row] = await rows(service, PeerFeedback, PeerFeedback.role == "manager")
    assert row.scores == {d: int(v) for d, v in zip(DIMENSIONS, (3, 4, 2, 5), strict=True)}


def test_aggregate_card_shows_float_scores_as_options() -> None:
    """The aggregate reads the manager's scores back as floats (3.0): the form must still select 3."""
    agg = PeerAggregate(
        answered=3,
        threshold=3,
        peers={d: 3.0 for d in DIMENSIONS},
        self_scores={d: 4.0 for d in DIMENSIONS},
        manager={d: float(i + 1) for i, d in enumerate(DIMENSIONS)},
        examples=["10 月上线"],
    )
    card = pc.aggregate_card(
        Translator("zh-CN"),
        cycle_id=1,
        subject_id=2,
        subject_name="张三",
        cycle_code="2026-Q4",
        agg=agg,
        gap_points=1.5,
        radar_media_id=None,
        for_manager=True,
    )
    assert defaults(card) == {f"dim_{d}": str(i + 1) for i, d in enumerate(DIMENSIONS)}
    assert_selects_match_options(card)


# ------------------------------------------------------------------ deliverable ratings


async def test_a_half_filled_rating_keeps_what_was_entered(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 30), acceptor=org.manager)
    assert await run_as(service, org.emp1.id, lambda ctx: open_deliverable_ratings(ctx, item.id)) == 1
    await service.outbox.drain()
    submit = button(last_to(recorder, "mgr"), rc.RatingSubmit)
    form = {"completeness": "4", "risk_disclosure": "2", "comment": "风险在 11 月 20 日周会上才提出"}
    answer = await click(service, "mgr", submit, form)
    assert answer.toast_kind == "error" and answer.card is not None
    assert {k: v for k, v in defaults(answer.card).items() if v} == form
    assert_selects_match_options(answer.card)
    [row] = await rows(service, DeliverableRating)
    assert row.status == "open"
