"""Action items and photos linked to a key result (issue 17 item 7): ``/action`` asks which of the owner's
key results the new item serves, and a manager sees the proof behind a number (``proof_for_kr``,
``proof_lines``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from bot.app.service import Service
from bot.core.context import Context
from cards.catalogue import Translator
from cards.goal_actions import ActionKeyResultLink
from cards.kr_select import NO_KEY_RESULT
from cards.model import Select
from cards.proof import proof_lines, proof_section
from handlers.evidence.evidence import request_evidence
from storage.models import ActionItem, AuditLog, Evidence, EvidenceRequest
from storage.queries.kr_links import Proof, proof_for_kr
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import click, last_to, last_update, text_of
from tests.support.flows2 import add_item, count, get, image, image_bytes, run_job, text
from tests.support.goal_links import Kr, add_cycle, add_goal


async def _krs(service: Service, org: Org) -> list[int]:
    cycle = await add_cycle(service, org.workspace.id, [org.emp1, org.emp2])
    _, krs = await add_goal(
        service,
        cycle,
        org.emp1,
        "提升续约率",
        [Kr("续约率 80→90", start=80, target=90), Kr("回访 30 家", target=30)],
    )
    return [k.id for k in krs]


async def test_action_asks_which_key_result_and_links_it(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    krs = await _krs(service, org)
    answer = await service.dispatcher.dispatch(text("mgr", "/action @张三 2026-12-01 交付客户回访报告"))
    assert answer.toast_kind == "success"
    await service.outbox.drain()
    offer = last_to(recorder, "mgr")
    assert "#" in offer.header.title and "张三" in text_of(offer)
    [form] = offer.forms()
    select_ = form.inputs[0]
    assert isinstance(select_, Select)
    assert [o.value for o in select_.options] == [NO_KEY_RESULT, str(krs[0]), str(krs[1])]
    async with service.factory() as s:
        item = (await s.scalars(select(ActionItem))).one()
    assert item.key_result_id is None
    link = ActionKeyResultLink(item_id=item.id)

    # Someone who neither made nor oversees the item may not link it; a key result not the owner's is refused.
    assert (await click(service, "emp2", link, {"key_result": str(krs[0])})).toast_kind == "error"
    assert (await click(service, "mgr", link, {"key_result": "999999"})).toast_kind == "error"
    assert (await get(service, ActionItem, item.id)).key_result_id is None

    assert (await click(service, "mgr", link, {"key_result": str(krs[1])})).toast_kind == "success"
    assert (await get(service, ActionItem, item.id)).key_result_id == krs[1]
    await service.outbox.drain()
    assert "回访 30 家" in text_of(last_update(recorder, "mgr"))
    # The owner may change it, and "none" unlinks it.
    assert (await click(service, "emp1", link, {"key_result": NO_KEY_RESULT})).toast_kind == "success"
    assert (await get(service, ActionItem, item.id)).key_result_id is None
    assert await count(service, AuditLog, AuditLog.action == "action_item.key_result") == 2


async def test_action_without_key_results_is_created_as_before(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    answer = await service.dispatcher.dispatch(text("mgr", "/action @张三 2026-12-01 交付客户回访报告"))
    assert answer.toast_kind == "success"
    await service.outbox.drain()
    [notice] = recorder.to("mgr")
    assert not notice.forms()  # "created", and no question
    assert await count(service, ActionItem) == 1


async def test_photos_of_a_linked_item_carry_the_key_result_and_show_as_proof(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    krs = await _krs(service, org)
    item = await add_item(service, org.emp1, deadline=date(2026, 12, 1), acceptor=org.manager)
    async with service.factory() as s, s.begin():
        row = await s.get(ActionItem, item.id)
        assert row is not None
        row.key_result_id = krs[0]

    async def ask(ctx: Context) -> EvidenceRequest:
        loaded = await ctx.session.get(ActionItem, item.id)
        return await request_evidence(ctx, person=ctx.person, item=loaded, requested_by=ctx.person)

    req = await run_job(service, org.emp1, ask)
    assert req.key_result_id == krs[0]
    recorder.media["p1"] = image_bytes()
    await service.dispatcher.dispatch(image("emp1", "p1"))
    await service.outbox.drain()
    async with service.factory() as s:
        ev = (await s.scalars(select(Evidence))).one()
        proof = await proof_for_kr(s, krs[0])
    assert ev.key_result_id == krs[0]
    rating = [c for c in recorder.to("mgr") if c.header.title == "请评价行动照片"][-1]
    assert "续约率 80→90" in text_of(rating)
    assert [(p.kind, p.ref_id) for p in proof] == [("evidence", ev.id), ("action", item.id)]
    assert proof[0].text == "交付客户回访报告" and proof[0].status is None


async def test_proof_for_kr_is_newest_first_and_includes_photos_of_items_linked_later(
    service: Service, org: Org
) -> None:
    krs = await _krs(service, org)
    old = await add_item(
        service, org.emp1, deadline=date(2026, 12, 1), created_at=datetime(2026, 11, 2, tzinfo=UTC)
    )
    new = await add_item(
        service,
        org.emp1,
        deadline=date(2026, 12, 5),
        created_at=datetime(2026, 11, 20, tzinfo=UTC),
        deliverable="整理续约名单",
        key_result_id=krs[0],
    )
    async with service.factory() as s, s.begin():
        s.add(
            Evidence(
                person_id=org.emp1.id,
                action_item_id=new.id,
                file_path="x",
                sha256="a" * 64,
                size=1,
                mime="image/png",
                received_at=datetime(2026, 11, 21, tzinfo=UTC),
                rating="meets",
            )
        )
        s.add(  # a photo of another key result's item: not proof of this one
            Evidence(
                person_id=org.emp1.id,
                action_item_id=old.id,
                file_path="y",
                sha256="b" * 64,
                size=1,
                mime="image/png",
                received_at=datetime(2026, 11, 22, tzinfo=UTC),
            )
        )
    async with service.factory() as s:
        proof = await proof_for_kr(s, krs[0])
        assert await proof_for_kr(s, krs[1]) == []
    assert [(p.kind, p.ref_id) for p in proof] == [("evidence", proof[0].ref_id), ("action", new.id)]
    assert proof[0].status == "meets" and proof[0].media_id == "a" * 64


def test_proof_lines_read_on_a_phone() -> None:
    from zoneinfo import ZoneInfo

    t = Translator("zh-CN")
    tz = ZoneInfo("Asia/Shanghai")
    at = datetime(2026, 11, 25, 2, 5, tzinfo=UTC)
    rows = [
        Proof("evidence", 7, at, "每周三 10:00 前：上传客户拜访照片", "meets", "a" * 64),
        Proof("evidence", 6, at - timedelta(days=7), "", None),
        Proof("action", 3, at - timedelta(days=9), "整理续约名单", "open"),
    ]
    lines = proof_lines(t, rows, tz=tz)
    assert lines[0] == "📷 11-25 10:05 照片 · 达标 · 每周三 10:00 前：上传客户拜访照片"
    assert lines[1].endswith("待评价 · 关键动作")
    assert lines[2].startswith("☑ #3 整理续约名单 · ")
    assert proof_lines(t, rows, tz=tz, limit=2)[-1] == "……还有 1 条"
    assert proof_lines(t, [], tz=tz) == ["还没有照片或行动项关联到这个关键结果。"]
    section = proof_section(Translator("en"), rows, tz=tz, key_result="Renewal 80→90")
    assert section.text.startswith('Proof for "Renewal 80→90" (3)')
