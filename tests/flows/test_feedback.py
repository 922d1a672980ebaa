"""Self-assessment, peer nominations, the anonymity threshold and the radar chart (Flows III)."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from PIL import Image as PILImage
from pydantic import ValidationError

from bot.app.service import Service
from bot.core.config import Settings
from cards import peer_feedback as pc
from cards import self_assessment as sc
from cards.model import Image
from cards.radar import SIZE_PX, render_radar_png
from handlers.feedback.peer_feedback import store_radar
from handlers.feedback.self_assessment import due_self_assessments, open_self_assessment
from handlers.history.history import person_export
from storage.models import Cycle, PeerFeedback, SelfAssessment
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, last_to, last_update, run_as, say, text_of
from tests.support.flows3 import audit, count, dims, goals_of, make_cycle, rows

# ------------------------------------------------------------------ radar (no database)


def test_radar_png_decodes_at_the_expected_size() -> None:
    data = render_radar_png(4, [[4, 3, 5, 2], [2, 2.5, 3, None], None])
    with PILImage.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        assert img.size == (SIZE_PX, SIZE_PX)
        img.load()
        # Something was drawn in the series colours, not just an empty frame.
        colours = {c for _, c in (img.convert("RGB").getcolors(1 << 20) or [])}
    assert (0x33, 0x70, 0xFF) in colours and (0xFF, 0x88, 0x00) in colours
    with pytest.raises(ValueError):
        render_radar_png(2, [[1, 2]])


async def test_radar_is_stored_content_addressed(tmp_path: Path) -> None:
    media_id = await store_radar(tmp_path, 10**6, 4, [[4, 3, 5, 2], [2, 3, 3, 4]])
    path = tmp_path / media_id[:2] / media_id
    with PILImage.open(path) as img:
        assert img.size == (SIZE_PX, SIZE_PX)
    assert await store_radar(tmp_path, 10**6, 4, [[4, 3, 5, 2], [2, 3, 3, 4]]) == media_id


def test_anonymity_threshold_is_bounded() -> None:
    assert Settings().feedback.anonymity_threshold == 3
    for bad in (2, 11):
        with pytest.raises(ValidationError):
            Settings(feedback={"anonymity_threshold": bad})
    with pytest.raises(ValidationError):
        Settings(feedback={"calibration_band": {"Z": (0.0, 0.5)}})


# ------------------------------------------------------------------ self-assessment


def answers_for(goal_ids: list[int], example: str, dim_value: int = 4) -> dict[str, str]:
    form = dims(dim_value)
    for gid in goal_ids:
        form[sc.score_name(gid)] = "4"
        form[sc.example_name(gid)] = example
    return form


async def test_self_assessment_opens_once_bounces_vague_examples_and_tells_the_manager(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    async with service.factory() as s:
        due = await due_self_assessments(s, today=cycle.ends_on.replace(day=20), lead_days=14)  # type: ignore[union-attr]
    assert due == [(org.emp1.id, cycle.id), (org.emp2.id, cycle.id)]
    first = await run_as(service, org.emp1.id, lambda ctx: open_self_assessment(ctx, cycle_id=cycle.id))
    again = await run_as(service, org.emp1.id, lambda ctx: open_self_assessment(ctx, cycle_id=cycle.id))
    assert first is not None and again is None
    await service.outbox.drain()
    card = last_to(recorder, "emp1")
    submit = button(card, sc.SelfAssessSubmit)
    goal_ids = [g.id for g in await goals_of(service, cycle, org.emp1)]

    answer = await click(service, "emp1", submit, answers_for(goal_ids, "加强沟通"))
    assert answer.toast_kind == "warning"
    [sa] = await rows(service, SelfAssessment, SelfAssessment.person_id == org.emp1.id)
    assert sa.status == "open"

    answer = await click(
        service, "emp1", submit, answers_for(goal_ids, "11 月 12 日前把报价流程从 3 天缩短到 1 天")
    )
    assert answer.toast_kind == "success"
    [sa] = await rows(service, SelfAssessment, SelfAssessment.person_id == org.emp1.id)
    assert sa.status == "submitted" and sa.answers["dims"]["quality"] == 4
    assert sa.answers["goals"][str(goal_ids[0])]["score"] == 4
    await service.outbox.drain()
    assert "张三" in text_of(last_to(recorder, "mgr"))
    again_click = await click(service, "emp1", submit, answers_for(goal_ids, "每周五发进度邮件"))
    assert again_click.toast_kind == "error"
    # Someone else cannot submit it.
    other = await click(service, "emp2", submit, answers_for(goal_ids, "每周五发进度邮件"))
    assert other.toast_kind == "error"


async def test_hr_opens_a_whole_cycle_and_nobody_else_can(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await make_cycle(service, [org.emp1, org.emp2, org.seller])
    await say(service, "mgr", "/selfassess 2026-Q4")
    assert await count(service, SelfAssessment) == 0
    await say(service, "hr", "/selfassess 2026-Q4")
    await service.outbox.drain()
    assert await count(service, SelfAssessment) == 3
    for uid in ("emp1", "emp2", "seller"):
        assert any(
            b for c in recorder.to(uid) for b in c.buttons() if b.value.startswith("selfassess.submit")
        )


# ------------------------------------------------------------------ nominations


async def approve_peers(
    service: Service, org: Org, cycle: Cycle, peers: list[int], recorder: RecordingAdapter
) -> list[PeerFeedback]:
    answer = await click(
        service,
        "mgr",
        pc.PeerNominate(cycle_id=cycle.id, subject_id=org.emp1.id),
        {"peers": [str(p) for p in peers]},
    )
    assert answer.toast_kind == "success", answer.toast
    await service.outbox.drain()
    return await rows(
        service, PeerFeedback, PeerFeedback.subject_id == org.emp1.id, PeerFeedback.status == "requested"
    )


async def test_nomination_authorisation_and_manager_approval(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    nominate = pc.PeerNominate(cycle_id=cycle.id, subject_id=org.emp1.id)
    three = [org.emp2.id, org.seller.id, org.hrbp.id]

    too_few = await click(service, "emp1", nominate, {"peers": [str(org.emp2.id)]})
    too_many = await click(
        service, "emp1", nominate, {"peers": [str(p.id) for p in org.everyone if p.id != org.emp1.id]}
    )
    with_self = await click(service, "emp1", nominate, {"peers": [str(org.emp1.id), str(org.emp2.id)]})
    with_manager = await click(service, "emp1", nominate, {"peers": [str(org.manager.id), str(org.emp2.id)]})
    stranger = await click(service, "seller", nominate, {"peers": [str(p) for p in three]})
    kinds = [a.toast_kind for a in (too_few, too_many, with_self, with_manager, stranger)]
    assert kinds == ["error"] * 5
    assert await count(service, PeerFeedback) == 0

    proposed = await click(service, "emp1", nominate, {"peers": [str(p) for p in three]})
    assert proposed.toast_kind == "success"
    await service.outbox.drain()
    statuses = {r.rater_id: r.status for r in await rows(service, PeerFeedback)}
    assert statuses == {p: "proposed" for p in three}
    approval = last_to(recorder, "mgr")
    approve = button(approval, pc.PeerApprove)
    assert not recorder.to("seller")  # nobody is asked before the manager approves

    assert (await click(service, "emp1", approve)).toast_kind == "error"  # not their own approval
    assert (await click(service, "seller", approve)).toast_kind == "error"
    assert (await click(service, "mgr", approve)).toast_kind == "success"
    assert (await click(service, "mgr", approve)).toast_kind == "error"  # second tap changes nothing
    await service.outbox.drain()
    for uid in ("emp2", "seller", "hrbp"):
        assert any(b.value.startswith("peers.answer") for b in last_to(recorder, uid).buttons())
    assert (
        await click(service, "emp1", nominate, {"peers": [str(org.emp2.id), str(org.hr.id)]})
    ).toast_kind == "error"

    # The manager changes the approved list: hrbp is dropped (their card says so), hr is asked.
    recorder.clear()
    changed = [org.emp2.id, org.seller.id, org.hr.id]
    assert (
        await click(service, "mgr", nominate, {"peers": [str(p) for p in changed]})
    ).toast_kind == "success"
    await service.outbox.drain()
    statuses = {r.rater_id: r.status for r in await rows(service, PeerFeedback)}
    assert statuses == {
        org.emp2.id: "requested",
        org.seller.id: "requested",
        org.hr.id: "requested",
        org.hrbp.id: "dropped",
    }
    assert any(b.value.startswith("peers.answer") for b in last_to(recorder, "hr").buttons())
    assert not recorder.to("emp2")  # already asked: not asked twice
    assert "no longer needed" in text_of(last_update(recorder, "hrbp")) or "不再需要" in text_of(
        last_update(recorder, "hrbp")
    )
    assert [a.detail["peers"] for a in await audit(service, "peers.approved")][-1] == changed


async def test_nominating_in_one_chat_line(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    """For chats whose cards have no multi-select: ``/peers @李四 @周销售``, then the manager approves."""
    await make_cycle(service, [org.emp1, org.emp2])
    await say(service, "emp1", "/peers @李四")  # one name: a report's card, which only a manager may open
    assert await count(service, PeerFeedback) == 0
    await say(service, "emp1", "/peers @李四 @周销售 @赵伙伴")
    await service.outbox.drain()
    assert {r.rater_id for r in await rows(service, PeerFeedback, PeerFeedback.status == "proposed")} == {
        org.emp2.id,
        org.seller.id,
        org.hrbp.id,
    }
    assert (
        await click(service, "mgr", button(last_to(recorder, "mgr"), pc.PeerApprove))
    ).toast_kind == "success"
    assert await count(service, PeerFeedback, PeerFeedback.status == "requested") == 3


# ------------------------------------------------------------------ anonymity


async def answer_peer(service: Service, uid: str, feedback_id: int, value: int, example: str) -> str:
    answer = await click(
        service, uid, pc.PeerAnswer(feedback_id=feedback_id), {**dims(value), "example": example}
    )
    return answer.toast_kind


async def test_anonymity_threshold_aggregate_only_never_names(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    # 张三's own view of himself: 5 everywhere, so a 2-point gap to the peers is flagged.
    await run_as(service, org.emp1.id, lambda ctx: open_self_assessment(ctx, cycle_id=cycle.id))
    await service.outbox.drain()
    goal_ids = [g.id for g in await goals_of(service, cycle, org.emp1)]
    submit = button(last_to(recorder, "emp1"), sc.SelfAssessSubmit)
    assert (
        await click(service, "emp1", submit, answers_for(goal_ids, "每周五前交付 2 份报告", 5))
    ).toast_kind == "success"

    raters = [org.emp2, org.seller, org.hrbp, org.hr]
    requested = await approve_peers(service, org, cycle, [p.id for p in raters], recorder)
    by_rater = {r.rater_id: r.id for r in requested}
    recorder.clear()

    # A vague example is bounced once, then a concrete one is accepted.
    assert await answer_peer(service, "emp2", by_rater[org.emp2.id], 3, "加强沟通") == "warning"
    assert (
        await answer_peer(service, "emp2", by_rater[org.emp2.id], 3, "10 月上线夜里一起排查了支付回调")
        == "success"
    )
    assert await answer_peer(service, "emp2", by_rater[org.emp2.id], 3, "再答一次 3 次") == "error"
    assert await answer_peer(service, "emp1", by_rater[org.seller.id], 1, "冒充别人回答 3 次") == "error"
    assert (
        await answer_peer(service, "seller", by_rater[org.seller.id], 3, "每周三主动同步 2 次客户需求")
        == "success"
    )
    await service.outbox.drain()
    # N-1 answers: nothing reaches the manager or the person.
    assert not recorder.to("mgr") and not recorder.to("emp1")
    await say(service, "emp1", "/feedback")
    await service.outbox.drain()
    hidden = text_of(last_to(recorder, "emp1"))
    assert "至少需要 3 人" in hidden and "3.0" not in hidden
    async with service.factory() as s:
        emp1 = await s.get(type(org.emp1), org.emp1.id)
        assert emp1 is not None
        export = await person_export(s, emp1, settings)
    assert export["peer_feedback"] == [{"cycle": cycle.code, "shown": False}]

    recorder.clear()
    assert (
        await answer_peer(service, "hrbp", by_rater[org.hrbp.id], 3, "11 月 3 日帮我审完了 2 份合同")
        == "success"
    )
    await service.outbox.drain()
    manager_card = last_to(recorder, "mgr")
    person_card = last_to(recorder, "emp1")
    names = [p.name for p in raters]
    for card in (manager_card, person_card):
        body = text_of(card)
        assert "3.0 / 5" in body and "5.0 / 5" in body  # peers' mean, self
        assert not any(name in body for name in names)
        assert not any(p.platform_user_id in body for p in raters if p.platform_user_id not in ("hr",))
    assert "⚠" in text_of(manager_card)
    images = [el for el in manager_card.elements if isinstance(el, Image)]
    assert len(images) == 1
    png = Path(settings.media.dir) / images[0].media_id[:2] / images[0].media_id
    with PILImage.open(png) as img:
        assert img.size == (SIZE_PX, SIZE_PX)
    # Examples appear sorted, not in answer order.
    body = text_of(manager_card)
    assert body.index("10 月上线") < body.index("11 月 3 日") < body.index("每周三")

    async with service.factory() as s:
        emp1 = await s.get(type(org.emp1), org.emp1.id)
        assert emp1 is not None
        export = await person_export(s, emp1, settings)
    [entry] = export["peer_feedback"]
    assert entry["shown"] is True and entry["answered"] == 3 and entry["means"]["quality"] == 3.0
    dumped = repr(export)
    assert not any(name in dumped for name in names)
    assert "rater" not in dumped

    # A fourth answer changes nothing anyone can see: it waits for a full batch of 3 (issue 16 #2), or
    # 4 × new mean − 3 × old mean would be this rater's exact scores.
    recorder.clear()
    assert (
        await answer_peer(service, "hr", by_rater[org.hr.id], 5, "12 月 1 日前补齐了 4 份入职材料")
        == "success"
    )
    await service.outbox.drain()
    assert not recorder.to("mgr") and not [u for u in recorder.updates if u[2] in ("mgr", "emp1")]
    await say(service, "mgr", "/feedback @张三")
    await service.outbox.drain()
    shown = text_of(last_to(recorder, "mgr"))
    assert "3.0 / 5" in shown and "3.5 / 5" not in shown and "12 月 1 日" not in shown

    # The manager adds their own view: the radar now has three series and the card is updated.
    form = dims(4)
    answer = await click(
        service, "mgr", pc.PeerManagerScores(cycle_id=cycle.id, subject_id=org.emp1.id), form
    )
    assert answer.toast_kind == "success"
    assert (
        await click(service, "emp1", pc.PeerManagerScores(cycle_id=cycle.id, subject_id=org.emp1.id), form)
    ).toast_kind == "error"
    await service.outbox.drain()
    assert "4.0 / 5" in text_of(last_update(recorder, "mgr"))
    assert len(await audit(service, "peers.published")) == 1


async def test_self_assessments_open_by_lead_time(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings
) -> None:
    from handlers.feedback.self_assessment import sweep_self_assessments

    soon = await make_cycle(service, [org.emp1, org.emp2], code="SOON", ends_on=date(2026, 12, 4))
    await make_cycle(service, [org.seller], code="LATER", ends_on=date(2027, 3, 31))
    assert settings.feedback.self_assessment_lead_days == 14
    assert await sweep_self_assessments(service) == 2
    assert await sweep_self_assessments(service) == 0
    await service.outbox.drain()
    assert recorder.to("emp1") and recorder.to("emp2") and not recorder.to("seller")
    assert {r.cycle_id for r in await rows(service, SelfAssessment)} == {soon.id}
