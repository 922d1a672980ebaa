"""Photo evidence: request, attach window, rejection of bad files, rating authorisation, and the two rules."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from cards.model import Card
from handlers.evidence.evidence import check_evidence_rules, week_bounds
from storage.media import MediaRejected, MediaStore, inspect_image, sniff_mime
from storage.models import ActionItem, AuditLog, Evidence, EvidenceRequest
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows2 import (
    add_item,
    button,
    click,
    count,
    get,
    image,
    image_bytes,
    noise_png,
    run_job,
    text,
)


def media_files(settings: Settings) -> list[Path]:
    root = Path(settings.media.dir)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def request_photo(service: Service, recorder: RecordingAdapter, item_id: int | None = None) -> Card:
    """The manager asks 张三 for a photo; returns 张三's request card and forgets everything delivered."""
    args = "@张三" + (f" {item_id}" if item_id else "")
    await service.dispatcher.dispatch(text("mgr", f"/evidence {args}"))
    await service.outbox.drain()
    [card] = recorder.to("emp1")
    assert "已请 张三 发送照片" in str(recorder.to("mgr")[0].model_dump())
    recorder.clear()
    return card


# ------------------------------------------------------------------ media store (no database)


def test_inspect_reads_exif_capture_time_and_sniffs_types() -> None:
    data = image_bytes("JPEG", exif_time="2026:11:20 08:30:00")
    info = inspect_image(data, max_bytes=10**6)
    assert info.mime == "image/jpeg" and (info.width, info.height) == (64, 48)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    shanghai = datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
    from zoneinfo import ZoneInfo

    assert info.captured_at(ZoneInfo("Asia/Shanghai")) == shanghai
    assert inspect_image(image_bytes("PNG"), max_bytes=10**6).captured_local is None
    assert sniff_mime(b"%PDF-1.7 ...") is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4\n" + b"x" * 100, "type"),
        (b"", "type"),
        (image_bytes("PNG")[:60], "corrupt"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "corrupt"),
        (noise_png(40), "size"),
    ],
)
async def test_store_rejects_and_writes_nothing(tmp_path: Path, data: bytes, reason: str) -> None:
    store = MediaStore(tmp_path / "m", max_bytes=2000)
    with pytest.raises(MediaRejected) as exc:
        await store.store_image(data)
    assert exc.value.reason == reason
    assert not (tmp_path / "m").exists()


async def test_store_is_content_addressed(tmp_path: Path) -> None:
    store = MediaStore(tmp_path, max_bytes=10**6)
    data = image_bytes("PNG")
    first = await store.store_image(data)
    second = await store.store_image(data)
    assert first.path == second.path == tmp_path / first.info.sha256[:2] / first.info.sha256
    assert (await store.read(first.info.sha256)) == (data, "image/png")


# ------------------------------------------------------------------ request → attach → rate


async def test_photo_attaches_within_window_and_manager_rates(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock, settings: Settings
) -> None:
    item = await add_item(
        service, org.emp1, deadline=date(2026, 11, 30), acceptor=org.manager, evidence_required=True
    )
    req_card = await request_photo(service, recorder, item.id)
    assert "交付客户回访报告" in str(req_card.model_dump())

    data = image_bytes("JPEG", exif_time="2026:11:24 09:15:00")
    recorder.media["ref-1"] = data
    clock.advance(timedelta(minutes=10))
    await service.dispatcher.dispatch(image("emp1", "ref-1"))
    recorder.media["ref-2"] = image_bytes("PNG", size=(32, 32))
    clock.advance(timedelta(minutes=10))
    await service.dispatcher.dispatch(image("emp1", "ref-2"))  # a second image in the window attaches too
    await service.outbox.drain()

    async with service.factory() as s:
        rows = list(await s.scalars(select(Evidence).order_by(Evidence.id)))
        req = await s.scalar(select(EvidenceRequest))
    assert [r.action_item_id for r in rows] == [item.id, item.id]
    assert rows[0].sha256 == hashlib.sha256(data).hexdigest() and rows[0].mime == "image/jpeg"
    assert rows[0].captured_at == datetime(2026, 11, 24, 1, 15, tzinfo=UTC)
    assert rows[0].platform_media_ref == "ref-1" and Path(rows[0].file_path).read_bytes() == data
    assert req is not None and req.status == "fulfilled"
    assert (await get(service, ActionItem, item.id)).first_response_at == clock.now() - timedelta(minutes=10)

    cards = recorder.to("mgr")
    assert len(cards) == 2
    # One rating card per photo, each showing its own photo (the two rows are delivered concurrently, so
    # their order at the platform is not fixed).
    shown = [[el.media_id for el in card.elements if el.kind == "image"] for card in cards]
    assert sorted(shown) == sorted([[r.sha256] for r in rows])

    # After the request closes the next image does not attach to it.
    assert req.expires_at == datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC)  # Wed 23:59:59 in Shanghai
    clock.set(req.expires_at)
    recorder.clear()
    recorder.media["ref-3"] = image_bytes("PNG", size=(20, 20))
    await service.dispatcher.dispatch(image("emp1", "ref-3"))
    await service.outbox.drain()
    [ask] = recorder.to("emp1")
    assert ask.header.title == "这张照片属于哪项行动？"
    assert recorder.to("mgr") == []
    async with service.factory() as s:
        late = await s.scalar(select(Evidence).where(Evidence.platform_media_ref == "ref-3"))
    assert late is not None and late.action_item_id is None and late.request_id is None

    # ... and the employee's button attaches it, which sends it for rating.
    await service.dispatcher.dispatch(click("emp1", button(ask, "evidence.assign", item_id=item.id)))
    await service.outbox.drain()
    assert (await get(service, Evidence, late.id)).action_item_id == item.id
    assert len(recorder.to("mgr")) == 1


async def test_image_without_request_or_items_is_not_kept(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings
) -> None:
    recorder.media["r"] = image_bytes()
    await service.dispatcher.dispatch(image("emp2", "r"))
    await service.outbox.drain()
    [reply] = recorder.to("emp2")
    assert "nothing waiting" in str(reply.model_dump())
    assert await count(service, Evidence) == 0 and media_files(settings) == []


@pytest.mark.parametrize("kind", ["pdf", "oversized", "corrupt"])
async def test_bad_files_are_rejected_with_a_message(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings, kind: str
) -> None:
    await request_photo(service, recorder)
    if kind == "pdf":
        data, expect = b"%PDF-1.7\n" + b"0" * 5000, "不超过 10 MB 的 JPEG、PNG、GIF 或 WebP 图片"
    elif kind == "oversized":
        data, expect = b"\xff\xd8\xff" + b"0" * (settings.media.max_image_bytes + 1), "上限"
    else:
        data, expect = image_bytes("JPEG")[:300], "已损坏"
    recorder.media["bad"] = data
    await service.dispatcher.dispatch(image("emp1", "bad"))
    await service.outbox.drain()
    [reply] = recorder.to("emp1")
    assert reply.header.title == "图片没有保存" and expect in str(reply.model_dump())
    assert await count(service, Evidence) == 0
    assert media_files(settings) == []
    assert recorder.to("mgr") == []
    async with service.factory() as s:
        req = await s.scalar(select(EvidenceRequest))
    assert req is not None and req.status == "open"  # still waiting for a good photo


async def test_rating_authorisation_and_compare_and_set(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    for outsider in ("emp2", "smgr"):  # only 张三's manager (or delegate) may ask for a photo
        assert (await service.dispatcher.dispatch(text(outsider, "/evidence @张三"))).toast_kind == "error"
    assert await count(service, EvidenceRequest) == 0
    await request_photo(service, recorder)
    recorder.media["p"] = image_bytes()
    await service.dispatcher.dispatch(image("emp1", "p"))
    await service.outbox.drain()
    [card] = recorder.to("mgr")
    submit = card.forms()[0].submit

    for outsider in ("emp2", "emp1", "smgr"):  # a peer, the employee, another department's manager
        answer = await service.dispatcher.dispatch(click(outsider, submit, {"rating": "meets"}))
        assert answer.toast_kind == "error" and "张三" in (answer.toast or ""), outsider
    async with service.factory() as s:
        ev = await s.scalar(select(Evidence))
    assert ev is not None and ev.rating is None

    answer = await service.dispatcher.dispatch(click("mgr", submit, {"rating": "meets", "comment": "很好"}))
    assert answer.toast_kind == "success"
    again = await service.dispatcher.dispatch(click("mgr", submit, {"rating": "improve"}))
    assert again.toast_kind == "error"
    rated = await get(service, Evidence, ev.id)
    assert (rated.rating, rated.rated_by_id, rated.comment) == ("meets", org.manager.id, "很好")


async def test_form_rating_needs_support_opens_follow_up_for_manager(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await request_photo(service, recorder)
    recorder.media["p"] = image_bytes()
    await service.dispatcher.dispatch(image("emp1", "p"))
    await service.outbox.drain()
    [card] = recorder.to("mgr")
    submit = card.forms()[0].submit
    missing = await service.dispatcher.dispatch(click("mgr", submit, {"comment": "x"}))
    assert missing.toast_kind == "warning" and missing.toast == "请选择一个评价。"
    assert await count(service, ActionItem) == 0
    await service.dispatcher.dispatch(click("mgr", submit, {"rating": "support", "comment": "缺少工具"}))
    await service.outbox.drain()
    async with service.factory() as s:
        follow = list(await s.scalars(select(ActionItem).where(ActionItem.source == "evidence")))
    assert len(follow) == 1
    assert follow[0].owner_id == org.manager.id and follow[0].acceptor_id == org.emp1.id
    assert "缺少工具" in follow[0].deliverable
    assert follow[0].deadline == date(2026, 11, 24) + timedelta(days=7)
    assert any(c.header.title == "新的行动项" for c in recorder.to("mgr"))


async def test_coaching_note_after_three_needs_improvement_in_a_row(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    item = await add_item(
        service,
        org.emp1,
        deadline=date(2026, 12, 31),
        acceptor=org.manager,
        action_type="customer_visit",
        evidence_required=True,
    )

    async def photo_rated(rating: str, n: int) -> None:
        recorder.clear()
        await request_photo(service, recorder, item.id)
        recorder.media[f"x{n}"] = image_bytes(size=(10 + n, 10))
        await service.dispatcher.dispatch(image("emp1", f"x{n}"))
        await service.outbox.drain()
        card = recorder.to("mgr")[-1]
        await service.dispatcher.dispatch(click("mgr", card.forms()[0].submit, {"rating": rating}))
        await service.outbox.drain()
        notes.extend(str(c.model_dump()) for c in recorder.to("emp1") if c.header.title == "辅导建议")
        clock.advance(timedelta(days=1))

    notes: list[str] = []

    def coaching() -> list[str]:
        return notes

    await photo_rated("improve", 1)
    await photo_rated("meets", 2)
    await photo_rated("improve", 3)
    await photo_rated("improve", 4)
    assert coaching() == []
    await photo_rated("improve", 5)
    assert len(coaching()) == 1 and "拜访前写下三个要确认的问题" in coaching()[0]
    await photo_rated("improve", 6)  # the streak goes on: the note is not repeated
    assert len(coaching()) == 1


async def test_missing_evidence_two_weeks_reminds_director_once(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    old = datetime(2026, 11, 1, tzinfo=UTC)
    missing = await add_item(
        service,
        org.emp1,
        deadline=date(2026, 12, 31),
        evidence_required=True,
        created_at=old,
        deliverable="每周安全巡检",
    )
    covered = await add_item(
        service,
        org.emp1,
        deadline=date(2026, 12, 31),
        evidence_required=True,
        created_at=old,
        deliverable="客户拜访",
    )
    await add_item(service, org.emp1, deadline=date(2026, 12, 31), evidence_required=False, created_at=old)
    await add_item(
        service,
        org.emp1,
        deadline=date(2026, 12, 31),
        evidence_required=True,
        created_at=datetime(2026, 11, 20, tzinfo=UTC),
        deliverable="新动作",
    )
    async with service.factory() as s, s.begin():
        s.add(
            Evidence(
                person_id=org.emp1.id,
                action_item_id=covered.id,
                file_path="x",
                sha256="0" * 64,
                size=1,
                mime="image/png",
                received_at=datetime(2026, 11, 13, 3, tzinfo=UTC),
            )
        )

    assert week_bounds("2026-W47", 2) == (date(2026, 11, 9), date(2026, 11, 23))
    sent = await run_job(service, org.emp1, lambda ctx: check_evidence_rules(ctx, week="2026-W47"))
    again = await run_job(service, org.emp1, lambda ctx: check_evidence_rules(ctx, week="2026-W47"))
    await service.outbox.drain()
    assert (sent, again) == (1, 0)
    [alert] = recorder.to("leader")  # 张三's manager's manager
    body = str(alert.model_dump())
    assert "每周安全巡检" in body and "客户拜访" not in body and "新动作" not in body
    async with service.factory() as s:
        logged = list(
            await s.scalars(select(AuditLog.entity_id).where(AuditLog.action == "evidence.missing_alert"))
        )
    assert logged == [missing.id]
