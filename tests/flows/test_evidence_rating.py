"""The evidence rating card (issue 15 #1, #9, #11): one way to choose, a bounce that keeps every value the
rater entered, and an outcome that is coloured by what it means and says what happens next, on both sides."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.app.service import Service
from bot.core.events import CardAction
from cards.model import Actions, Card, Form, Note, Select, TextInput
from storage.models import ActionItem, AuditLog, Evidence
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import last_update
from tests.support.flows2 import click, count, get, image, image_bytes, text


async def rating_card(service: Service, recorder: RecordingAdapter, user: str = "emp1") -> Card:
    """The manager asks ``user`` for a photo, it arrives; returns the manager's rating card."""
    mention = {"emp1": "@张三", "emp2": "@李四"}[user]
    await service.dispatcher.dispatch(text("mgr", f"/evidence {mention}"))
    recorder.media["p"] = image_bytes()
    await service.dispatcher.dispatch(image(user, "p"))
    await service.outbox.drain()
    [card] = [c for c in recorder.to("mgr") if c.header.title == "请评价行动照片"]
    recorder.clear()
    return card


def the_form(card: Card) -> Form:
    [form] = [el for el in card.elements if isinstance(el, Form)]
    return form


def returned(recorder: RecordingAdapter) -> Card:
    """The new version of the clicked card (the recording adapter takes it as an update, not inline)."""
    return last_update(recorder, "mgr")


def submit(card: Card, values: dict[str, str]) -> CardAction:
    return click("mgr", the_form(card).submit, dict(values))


def defaults(card: Card) -> dict[str, Any]:
    return {i.name: i.default for i in the_form(card).inputs if isinstance(i, Select | TextInput)}


async def the_evidence(service: Service) -> Evidence:
    async with service.factory() as s:
        return (await s.scalars(select(Evidence))).one()


async def test_rating_card_offers_one_way_to_choose(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    card = await rating_card(service, recorder)
    assert not [el for el in card.elements if isinstance(el, Actions)]
    form = the_form(card)
    assert card.buttons() == [form.submit]
    [select_input] = [i for i in form.inputs if isinstance(i, Select)]
    assert [o.label for o in select_input.options] == ["达标", "待提升", "需支持"]


async def test_vague_comment_bounce_keeps_the_rating_and_the_comment(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    card = await rating_card(service, recorder)
    answer = await service.dispatcher.dispatch(submit(card, {"rating": "improve", "comment": "加强沟通"}))
    await service.outbox.drain()
    assert answer.toast_kind == "warning"
    bounced = returned(recorder)
    assert defaults(bounced) == {"rating": "improve", "comment": "加强沟通"}
    assert bounced.header.colour == "orange" and "加强沟通" in bounced.model_dump_json()
    assert (await the_evidence(service)).rating is None

    # Submitted again as it stands (asked once): saved with the rating chosen the first time.
    again = await service.dispatcher.dispatch(submit(bounced, defaults(bounced)))
    assert again.toast_kind == "success"
    ev = await the_evidence(service)
    assert (ev.rating, ev.comment) == ("improve", "加强沟通")
    async with service.factory() as s:
        actions = list(await s.scalars(select(AuditLog.action).where(AuditLog.entity == "evidence_comment")))
    assert actions == ["vague.bounced", "vague.accepted"]


async def test_a_missing_rating_or_a_support_without_comment_comes_back_with_what_was_entered(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    card = await rating_card(service, recorder)
    no_rating = await service.dispatcher.dispatch(submit(card, {"comment": "货架第 3 层缺两个价签"}))
    await service.outbox.drain()
    assert no_rating.toast == "请选择一个评价。"
    assert defaults(returned(recorder)) == {"rating": None, "comment": "货架第 3 层缺两个价签"}

    no_comment = await service.dispatcher.dispatch(submit(card, {"rating": "support"}))
    await service.outbox.drain()
    assert no_comment.toast_kind == "warning" and "需要提供什么支持" in (no_comment.toast or "")
    assert defaults(returned(recorder)) == {"rating": "support", "comment": None}
    assert (await the_evidence(service)).rating is None
    assert await count(service, ActionItem) == 0


@pytest.mark.parametrize(
    ("user", "rating", "comment", "colour", "title", "next_step"),
    [
        ("emp1", "meets", "A 区 12 个价签全部到位", "green", "你的行动照片：达标", "无需其他操作"),
        (
            "emp1",
            "improve",
            "货架第 3 层缺两个价签",
            "orange",
            "你的行动照片：待提升",
            "下次执行后再发一张照片",
        ),
        (
            "emp1",
            "support",
            "需要申请 2 个新价签打印机",
            "red",
            "你的行动照片：需支持",
            "王经理 会在 2026-12-01 前跟进",
        ),
        (
            "emp2",
            "improve",
            "货架第 3 层缺两个价签",
            "orange",
            "Your action photo: improve",
            "send a new photo",
        ),
    ],
)
async def test_each_outcome_has_its_colour_and_says_what_happens_next(
    service: Service,
    org: Org,
    recorder: RecordingAdapter,
    user: str,
    rating: str,
    comment: str,
    colour: str,
    title: str,
    next_step: str,
) -> None:
    card = await rating_card(service, recorder, user)
    answer = await service.dispatcher.dispatch(submit(card, {"rating": rating, "comment": comment}))
    await service.outbox.drain()
    assert answer.toast_kind == "success"

    [told] = [c for c in recorder.to(user) if c.header.title == title]
    assert told.header.colour == colour
    assert comment in told.model_dump_json()
    [note] = [el for el in told.elements if isinstance(el, Note)]
    assert next_step in note.text

    final = returned(recorder)
    assert final.header.colour == colour and not final.buttons()
    [rater_note] = [el for el in final.elements if isinstance(el, Note)]
    if rating == "support":
        async with service.factory() as s:
            follow = (await s.scalars(select(ActionItem).where(ActionItem.source == "evidence"))).one()
        assert f"#{follow.id}" in rater_note.text and "2026-12-01" in rater_note.text
        assert (await get(service, ActionItem, follow.id)).owner_id == org.manager.id
    else:
        assert "已通知" in rater_note.text
