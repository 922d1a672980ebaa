"""Issue 15 #10 in the feedback flow: a card that a newer card or a decision replaced is put into its final
state, wherever the decision was made (another copy of the card, a chat command, the demo's script), so
no message in a person's chat keeps live-looking buttons that can only be refused."""

from __future__ import annotations

from datetime import date, timedelta

from bot.app.demo_feedback import run_peer_round
from bot.app.service import Service
from bot.core.clock import FixedClock
from cards import deliverable_ratings as rc
from cards import peer_feedback as pc
from cards import self_assessment as sc
from cards.actions import Action, unpack
from cards.model import Card
from handlers.feedback.deliverable_ratings import open_deliverable_ratings, sweep_deliverable_ratings
from handlers.feedback.self_assessment import open_self_assessment
from storage.models import PeerFeedback, SelfAssessment
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, last_to, run_as, say, text_of
from tests.support.flows2 import add_item
from tests.support.flows3 import dims, goals_of, make_cycle, rows

LIVE = (sc.SelfAssessSubmit, pc.PeerAnswer, pc.PeerApprove, pc.PeerNominate, rc.RatingSubmit)


def final_view(recorder: RecordingAdapter, uid: str) -> list[Card]:
    """Every message in ``uid``'s chat as it stands now: as delivered, then updated in place."""
    shown = {d.message_ref: d.card for d in recorder.sent if d.recipient == uid}
    for ref, card, rcpt in recorder.updates:
        if rcpt == uid and ref in shown:
            shown[ref] = card
    return list(shown.values())


def live(cards: list[Card], *kinds: type[Action]) -> list[Card]:
    wanted = kinds or LIVE
    return [
        c for c in cards if any(isinstance(unpack(b.value), wanted) and not b.disabled for b in c.buttons())
    ]


async def test_a_self_assessment_answered_elsewhere_closes_the_sent_card(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1])
    await run_as(service, org.emp1.id, lambda ctx: open_self_assessment(ctx, cycle_id=cycle.id))
    await service.outbox.drain()
    assert len(live(final_view(recorder, "emp1"), sc.SelfAssessSubmit)) == 1
    submit = button(last_to(recorder, "emp1"), sc.SelfAssessSubmit)
    form = dims(4)
    for goal in await goals_of(service, cycle, org.emp1):
        form[sc.score_name(goal.id)] = "4"
        form[sc.example_name(goal.id)] = "11 月 12 日前把报价流程从 3 天缩短到 1 天"
    # Submitted from another copy (``/selfassess`` shows one), not from the card the scheduler sent.
    answer = await click(service, "emp1", submit, form, message_ref="another-copy")
    assert answer.toast_kind == "success", answer.toast
    await service.outbox.drain()
    chat = final_view(recorder, "emp1")
    assert not live(chat)
    assert any("已提交" in c.header.title and c.header.colour == "green" for c in chat)


async def test_a_card_answered_before_delivery_is_sent_in_its_final_state(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Still queued (held for quiet hours, or the outbox simply has not run yet): the queued row is
    rewritten, so the person never sees the live form at all."""
    cycle = await make_cycle(service, [org.emp1])
    await run_as(service, org.emp1.id, lambda ctx: open_self_assessment(ctx, cycle_id=cycle.id))
    [sa_goal, *_] = await goals_of(service, cycle, org.emp1)
    [sa] = await rows(service, SelfAssessment)
    form = dims(3)
    for goal in await goals_of(service, cycle, org.emp1):
        form[sc.score_name(goal.id)] = "3"
        form[sc.example_name(goal.id)] = "每周五 18:00 前给客户发 1 次进度邮件"
    answer = await click(service, "emp1", sc.SelfAssessSubmit(assessment_id=sa.id), form, message_ref="x")
    assert answer.toast_kind == "success", answer.toast
    await service.outbox.drain()
    chat = final_view(recorder, "emp1")
    assert chat and not live(chat)
    assert sa_goal.objective in text_of(chat[0])


async def test_peer_cards_close_when_answered_approved_or_replaced(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    nominate = pc.PeerNominate(cycle_id=cycle.id, subject_id=org.emp1.id)
    first = [org.emp2.id, org.seller.id]
    assert (
        await click(service, "emp1", nominate, {"peers": [str(p) for p in first]})
    ).toast_kind == "success"
    await service.outbox.drain()
    assert len(live(final_view(recorder, "mgr"), pc.PeerApprove)) == 1

    # The person sends a newer list before the manager decided: the first approval card is void.
    second = [org.emp2.id, org.seller.id, org.hrbp.id]
    assert (
        await click(service, "emp1", nominate, {"peers": [str(p) for p in second]})
    ).toast_kind == "success"
    await service.outbox.drain()
    cards = final_view(recorder, "mgr")
    assert len(live(cards, pc.PeerApprove)) == 1
    assert any(c.header.colour == "grey" and not c.buttons() for c in cards)
    assert "赵伙伴" in text_of(live(cards, pc.PeerApprove)[0])

    # The manager decides on the nomination card ``/peers @张三`` shows, not on the approval card.
    assert (await say(service, "mgr", "/peers @张三")).toast_kind != "error"
    assert (
        await click(service, "mgr", nominate, {"peers": [str(p) for p in second]}, message_ref="elsewhere")
    ).toast_kind == "success"
    await service.outbox.drain()
    cards = final_view(recorder, "mgr")
    assert not live(cards, pc.PeerApprove)
    assert any(c.header.colour == "green" and "赵伙伴" in text_of(c) for c in cards)
    told = last_to(recorder, "emp1")  # the person hears their list is set, not only the peers
    assert told.header.colour == "green" and "王经理" in text_of(told) and "赵伙伴" in text_of(told)

    # A peer answers from another copy: the request in their chat turns into the thank-you.
    [row] = await rows(service, PeerFeedback, PeerFeedback.rater_id == org.seller.id)
    answer = {**dims(3), "example": "每周三主动同步 2 次客户需求"}
    done = await click(service, "seller", pc.PeerAnswer(feedback_id=row.id), answer, message_ref="copy")
    assert done.toast_kind == "success", done.toast
    await service.outbox.drain()
    seller_chat = final_view(recorder, "seller")
    assert seller_chat and not live(seller_chat)
    assert any(c.header.colour == "green" for c in seller_chat)


async def test_rating_cards_close_on_reminder_rating_and_expiry(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 30), acceptor=org.manager)
    collaborators = [org.emp2.id]
    assert (
        await run_as(
            service,
            org.emp1.id,
            lambda ctx: open_deliverable_ratings(ctx, item.id, collaborator_ids=collaborators),
        )
        == 2
    )
    await service.outbox.drain()
    clock.advance(timedelta(hours=25))
    assert await sweep_deliverable_ratings(service) == (2, 0)
    await service.outbox.drain()
    # Two cards each (request and reminder), one of them live: the reminder.
    for uid in ("mgr", "emp2"):
        chat = final_view(recorder, uid)
        assert len(chat) == 2 and live(chat) == [chat[-1]], uid

    stars = {"completeness": "2", "timeliness": "2", "risk_disclosure": "4"}
    rated = await click(service, "mgr", button(last_to(recorder, "mgr"), rc.RatingSubmit), stars)
    assert rated.toast_kind == "success", rated.toast
    clock.advance(timedelta(hours=24))
    assert await sweep_deliverable_ratings(service) == (0, 1)
    await service.outbox.drain()
    assert not live(final_view(recorder, "mgr")) and not live(final_view(recorder, "emp2"))
    assert any(c.header.colour == "grey" for c in final_view(recorder, "emp2"))
    # The owner's summary: low scores on an orange card that says what to do next.
    summary = last_to(recorder, "emp1")
    assert summary.header.colour == "orange" and "1:1" in text_of(summary)


async def test_the_demo_round_leaves_no_live_seeded_forms(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await run_peer_round(
        service, platform="rec", workspace="rec-app", subject="emp1", peers=("emp2", "seller", "hrbp")
    )
    await service.outbox.drain()
    for uid in ("emp1", "mgr", "emp2", "seller", "hrbp"):
        assert not live(final_view(recorder, uid), *LIVE[:3]), uid
