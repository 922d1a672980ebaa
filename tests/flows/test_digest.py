"""The digest's figures against a hand-computed fixture, its card and chart, and the metrics report.

Day of the digest: 2026-11-24 (Shanghai). Period: the 14 local days 11-10 … 11-23; previous: 10-27 … 11-09.

Check-ins in the period (due 16:00 local unless noted):
  张三 11-12 submitted, 11-19 acknowledged; 李四 11-12 missed, 11-19 missed; 周销售 11-13 acknowledged,
  11-20 skipped (not counted), 11-24 00:30 local missed (next day: not counted);
  王经理 11-10 00:30 local submitted (counted: local day 11-10)                → company 4/6, team 2/4
Previous period: 张三 10-29 submitted, 李四 10-29 open                          → 1/2
Action items (deadline):
  A1 张三 11-15 evidence required, photo, done 11-15 23:00 local (on time), created 11-11 10:00 → response 6 h
  A2 李四 11-18 evidence required, no photo, open (overdue), no response
  A3 周销售 11-20 done 11-21 01:00 local (late), created 11-14 08:00 → response 24 h
  A4 张三 11-22 closed (not counted); A5 李四 11-30 open (not due)
  A6 张三 11-05 done on time (previous period), response 2 h; A7 李四 11-01 open (previous period, overdue)
  → fulfilment company 1/3, previous 1/2; evidence 1/2; response 15 h (previous 2 h); overdue A7, A2
Kudos in the period: 张三 +3, 周销售 +1 (an older +5 is outside) → 4 points.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from PIL import Image as PILImage

from bot.app.report import build_report
from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.status import OPEN_ACTION_ITEM
from cards.charts import HEIGHT_PX, WIDTH_PX
from cards.model import Card, Fields, Image, Markdown
from handlers.digest.digest import send_digest
from storage.media import MediaStore
from storage.models import (
    ActionItem,
    AuditLog,
    CheckIn,
    Cycle,
    Evidence,
    EvidenceRequest,
    InboundEvent,
    Recognition,
)
from storage.queries import metrics as m
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows2 import run_job

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 24)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


async def seed(service: Service, org: Org) -> dict[str, int]:
    async with service.factory() as s, s.begin():

        def ck(person: int, due: datetime, status: str) -> None:
            s.add(CheckIn(person_id=person, period=due.isoformat(), status=status, due_at=due))

        e1, e2, sel, mgr = org.emp1.id, org.emp2.id, org.seller.id, org.manager.id
        ck(e1, utc(2026, 11, 12, 8), "submitted")
        ck(e1, utc(2026, 11, 19, 8), "acknowledged")
        ck(e2, utc(2026, 11, 12, 8), "missed")
        ck(e2, utc(2026, 11, 19, 8), "missed")
        ck(sel, utc(2026, 11, 13, 8), "acknowledged")
        ck(sel, utc(2026, 11, 20, 8), "skipped")
        ck(sel, utc(2026, 11, 23, 16, 30), "missed")
        ck(mgr, utc(2026, 11, 9, 16, 30), "submitted")
        ck(e1, utc(2026, 10, 29, 8), "submitted")
        ck(e2, utc(2026, 10, 29, 8), "open")

        def item(owner: int, deadline: date, **kw: object) -> ActionItem:
            row = ActionItem(
                owner_id=owner,
                source="manual",
                deliverable=f"D{deadline}",
                deadline=deadline,
                created_at=kw.pop("created_at", utc(2026, 10, 1)),
                **kw,
            )
            s.add(row)
            return row

        a1 = item(
            e1,
            date(2026, 11, 15),
            evidence_required=True,
            status="accepted",
            done_at=utc(2026, 11, 15, 15),
            created_at=utc(2026, 11, 11, 2),
            first_response_at=utc(2026, 11, 11, 8),
        )
        a2 = item(e2, date(2026, 11, 18), evidence_required=True, created_at=utc(2026, 11, 12))
        item(
            sel,
            date(2026, 11, 20),
            status="done",
            done_at=utc(2026, 11, 20, 17),
            created_at=utc(2026, 11, 14),
            first_response_at=utc(2026, 11, 15),
        )
        item(e1, date(2026, 11, 22), status="closed", closed_at=utc(2026, 11, 21))
        item(e2, date(2026, 11, 30))
        item(
            e1,
            date(2026, 11, 5),
            status="done",
            done_at=utc(2026, 11, 4),
            created_at=utc(2026, 10, 28),
            first_response_at=utc(2026, 10, 28, 2),
        )
        a7 = item(e2, date(2026, 11, 1), created_at=utc(2026, 10, 20))
        await s.flush()
        s.add(
            Evidence(
                person_id=e1,
                action_item_id=a1.id,
                file_path="x",
                sha256="a" * 64,
                size=1,
                mime="image/png",
                received_at=utc(2026, 11, 14),
            )
        )
        s.add(
            Recognition(
                from_person_id=e2, to_person_id=e1, reason="r", points=3, created_at=utc(2026, 11, 15)
            )
        )
        s.add(
            Recognition(
                from_person_id=e1, to_person_id=sel, reason="r", points=1, created_at=utc(2026, 11, 20)
            )
        )
        s.add(
            Recognition(
                from_person_id=e1, to_person_id=sel, reason="r", points=5, created_at=utc(2026, 10, 1)
            )
        )
        s.add(
            AuditLog(
                at=utc(2026, 11, 20),
                action=m.PROGRESS_GAP_ACTION,
                entity="person",
                entity_id=e1,
                detail={"key": "gap:1"},
            )
        )
        cycle = Cycle(
            workspace_id=org.workspace.id,
            code="2026-Q4",
            status="active",
            starts_on=date(2026, 10, 1),
            ends_on=date(2026, 11, 23),
        )
        s.add(cycle)
        return {"a2": a2.id, "a7": a7.id}


def fields(card: Card) -> dict[str, str]:
    return {kv.label: kv.value for el in card.elements if isinstance(el, Fields) for kv in el.items}


async def test_metrics_match_the_hand_computed_fixture(service: Service, org: Org) -> None:
    ids = await seed(service, org)
    period = m.Window.ending(DAY, 14, SH)
    company, team = m.Scope(org.workspace.id), m.Scope(org.workspace.id, manager_id=org.manager.id)
    async with service.factory() as s:
        now = await m.metrics(s, company, period)
        before = await m.metrics(s, company, period.previous())
        mine = await m.metrics(s, team, period)
        total, top = await m.overdue(s, company, DAY, open_statuses=OPEN_ACTION_ITEM)
        risks = await m.risks(s, company, period)
        trend = await m.trend(s, company, m.Window.ending(DAY, 30, SH))
    assert (now.checkins_due, now.checkins_done) == (6, 4)
    assert (now.evidence_required, now.evidence_with) == (2, 1)
    assert (now.actions_due, now.actions_on_time) == (3, 1)
    assert now.responses == 2 and now.response_hours is not None and abs(now.response_hours - 15) < 1e-6
    assert now.kudos_points == 4
    assert (before.checkins_due, before.checkins_done, before.actions_due, before.actions_on_time) == (
        2,
        1,
        2,
        1,
    )
    assert before.response_hours is not None and abs(before.response_hours - 2) < 1e-6
    assert (mine.checkins_due, mine.checkins_done, mine.actions_due, mine.actions_on_time) == (4, 2, 2, 1)
    assert (total, [o.item_id for o in top]) == (2, [ids["a7"], ids["a2"]])
    assert [(r.name, r.count) for r in risks.missed_twice] == [("李四", 2)]
    assert [r.name for r in risks.falling_progress] == ["张三"]
    by_day = {p.day: p for p in trend}
    assert len(trend) == 30 and trend[0].day == date(2026, 10, 25) and trend[-1].day == date(2026, 11, 23)
    assert by_day[date(2026, 11, 10)].checkin_rate == 1.0  # 00:30 local, 16:30 UTC the day before
    assert by_day[date(2026, 11, 12)].checkin_rate == 0.5
    assert by_day[date(2026, 11, 20)].checkin_rate is None  # only a skipped one
    assert by_day[date(2026, 11, 15)].fulfilment_rate == 1.0
    assert by_day[date(2026, 11, 20)].fulfilment_rate == 0.0  # done after the local deadline day


async def test_digest_card_chart_and_once_per_day(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    await seed(service, org)
    assert await run_job(service, org.leader, lambda ctx: send_digest(ctx, day=DAY))
    assert not await run_job(service, org.leader, lambda ctx: send_digest(ctx, day=DAY))
    assert not await run_job(service, org.emp1, lambda ctx: send_digest(ctx, day=DAY))
    assert not await run_job(
        service, org.manager, lambda ctx: send_digest(ctx, day=DAY)
    )  # managers_too is off
    await service.outbox.drain()
    [card] = recorder.to("leader")
    f = fields(card)
    assert f["签到完成率"] == "67%（4/6） · 较上期 ↑17pp"
    assert f["证据完整率"] == "50%（1/2） · 上期无数据"
    assert f["平均响应时间"] == "15.0 小时（2 项） · 较上期 ↑13.0 小时（变差）"
    assert f["承诺兑现率"] == "33%（1/3） · 较上期 ↓17pp（变差）"
    body = str(card.model_dump())
    assert "逾期行动项：2 项" in body and "李四(2)" in body and "张三(+3)" in body
    assert "本期共 4 分（上期 0 分）" in body
    assert "统计区间：11-10 至 11-23（14 天）" in body
    nudges = [b for b in card.buttons() if b.value.startswith("action.nudge|")]
    assert [b.label for b in nudges] == ["催办 李四：D2026-11-01", "催办 李四：D2026-11-18"]

    [chart] = [el for el in card.elements if isinstance(el, Image)]
    data, mime = await MediaStore(service.settings.media.dir, max_bytes=10**7).read(chart.media_id)
    assert mime == "image/png"
    assert PILImage.open(io.BytesIO(data)).size == (WIDTH_PX, HEIGHT_PX)


async def test_risks_repeat_what_the_card_shows_above(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Issue 15 #15: 风险 said 暂无 under 2 overdue items and a 33 % fulfilment rate."""
    await seed(service, org)
    assert await run_job(service, org.leader, lambda ctx: send_digest(ctx, day=DAY))
    await service.outbox.drain()
    [card] = recorder.to("leader")
    risks = next(el.text for el in card.elements if isinstance(el, Markdown) and "**风险**" in el.text)
    assert risks.splitlines()[1:] == [
        "- 2 项行动项逾期，最久的已逾期 23 天（见上方列表）",
        "- 签到完成率只有 67%，低于 80%",
        "- 证据完整率只有 50%，低于 80%",
        "- 承诺兑现率只有 33%，低于 80%",
        "- 两次以上未签到：李四(2)",
        "- 进度持续落后：张三",
    ]


async def test_manager_digest_compares_with_company(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await seed(service, org)
    settings = service.settings.model_copy(
        update={"digest": service.settings.digest.model_copy(update={"managers_too": True})}
    )
    service.dispatcher.settings = settings
    assert await run_job(service, org.manager, lambda ctx: send_digest(ctx, day=DAY))
    await service.outbox.drain()
    [card] = recorder.to("mgr")
    f = fields(card)
    assert f["签到完成率"] == "50%（2/4） · 与上期持平 · 公司 67%"
    assert f["承诺兑现率"] == "50%（1/2） · 与上期持平 · 公司 33%"
    assert card.header.subtitle == "王经理 的团队"


async def test_report_per_department_and_person(service: Service, org: Org) -> None:
    await seed(service, org)
    data = json.loads(await build_report(service, cycle="2026-Q4", fmt="json"))
    assert data["cycle"] == "2026-Q4" and (data["from"], data["to"]) == ("2026-10-01", "2026-11-23")
    company = data["company"]
    # Whole cycle 10-01 … 11-23: check-ins 8 counted (skipped and 11-24 local excluded), 5 done.
    assert (company["checkins_due"], company["checkins_done"]) == (8, 5)
    assert (company["actions_due"], company["actions_on_time"]) == (5, 2)
    rnd = next(d for d in data["departments"] if d["department"] == "研发部")
    assert (rnd["checkins_due"], rnd["checkins_done"], rnd["actions_due"]) == (7, 4, 4)
    li = next(p for p in data["people"] if p["name"] == "李四")
    assert (li["checkins_due"], li["checkins_done"], li["checkin_rate"]) == (3, 0, 0.0)
    csv_text = await build_report(service, cycle="2026-Q4", fmt="csv")
    lines = csv_text.splitlines()
    assert lines[0].startswith("level,id,name,department,")
    assert any(line.startswith("person,") and ",李四," in line for line in lines)
    assert any(line.startswith("company,") for line in lines)


async def test_a_digest_without_data_says_so(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    """Issue 15 #15: "平均响应时间 0.0h" (or "—") with nothing measured, and an empty chart grid."""
    assert await run_job(service, org.leader, lambda ctx: send_digest(ctx, day=DAY))
    await service.outbox.drain()
    [card] = recorder.to("leader")
    f = fields(card)
    assert f["签到完成率"] == "暂无数据：本期没有到期的签到"
    assert f["平均响应时间"] == "暂无数据：本期新建的行动项还没有人回应"
    assert f["承诺兑现率"] == "暂无数据：本期没有到期的行动项"
    assert not [el for el in card.elements if isinstance(el, Image)]
    body = str(card.model_dump())
    assert "近 30 天还没有到期的签到或行动项" in body and "- 暂无" in body and "0.0" not in body
    assert "本期共 0 分" in body and "上期" not in body.split("本期共 0 分")[1][:8]


async def test_the_previous_period_shows_when_only_it_has_data(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """A comparison that exists appears: nothing due this period, 1 of 2 check-ins done the period before."""
    async with service.factory() as s, s.begin():
        s.add(CheckIn(person_id=org.emp1.id, period="a", status="submitted", due_at=utc(2026, 10, 29, 8)))
        s.add(CheckIn(person_id=org.emp2.id, period="b", status="missed", due_at=utc(2026, 10, 29, 8)))
    assert await run_job(service, org.leader, lambda ctx: send_digest(ctx, day=DAY))
    await service.outbox.drain()
    [card] = recorder.to("leader")
    assert fields(card)["签到完成率"] == "暂无数据：本期没有到期的签到 · 上期 50%"


async def test_expired_evidence_requests_since_the_previous_digest(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """The evidence flow promises to tell the manager about expiries in the digest: each counted once, since
    the reader's previous digest, within the reader's scope (answered requests are not expiries)."""
    await seed(service, org)
    async with service.factory() as s, s.begin():

        def req(person: int, expires: datetime, status: str) -> None:
            s.add(
                EvidenceRequest(
                    person_id=person, status=status, requested_at=utc(2026, 11, 1), expires_at=expires
                )
            )

        req(org.emp2.id, utc(2026, 11, 22, 15, 59), "expired")  # 11-22 23:59 local: reported on 11-23
        req(org.emp2.id, utc(2026, 11, 23, 15, 59), "expired")  # 11-23 local: reported on 11-24
        req(org.emp1.id, utc(2026, 11, 23, 10), "open")  # lapsed, not swept yet: still an expiry
        req(org.emp1.id, utc(2026, 11, 23, 10), "fulfilled")  # answered: not an expiry
        req(org.seller.id, utc(2026, 11, 23, 10), "expired")  # another team
    yesterday = date(2026, 11, 23)
    assert await run_job(service, org.leader, lambda ctx: send_digest(ctx, day=yesterday))
    assert await run_job(service, org.leader, lambda ctx: send_digest(ctx, day=DAY))
    settings = service.settings.model_copy(
        update={"digest": service.settings.digest.model_copy(update={"managers_too": True})}
    )
    service.dispatcher.settings = settings
    assert await run_job(service, org.manager, lambda ctx: send_digest(ctx, day=DAY))
    await service.outbox.drain()
    first, second = recorder.to("leader")
    assert "照片证据请求过期未交：1 个（11-09 以来）：李四" in str(first.model_dump())
    body = str(second.model_dump())
    assert "照片证据请求过期未交：3 个（11-23 以来）：张三、李四、周销售" in body
    assert "逾期行动项：2 项**（上次简报 2 项" in body
    [team] = recorder.to("mgr")
    # The manager's first digest: since the start of the period, own team only.
    assert "照片证据请求过期未交：3 个（11-10 以来）：李四(2)、张三" in str(team.model_dump())


async def _activity(service: Service, org: Org, *when: tuple[int, datetime]) -> None:
    async with service.factory() as s, s.begin():
        for i, (person, at) in enumerate(when):
            s.add(
                InboundEvent(
                    platform="rec",
                    event_id=f"act{i}",
                    kind="text",
                    person_id=person,
                    answer={"ok": True},
                    received_at=at,
                )
            )


async def test_daily_active_rate_over_the_kept_workdays(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Issue 20 #8: one line for the daily-active rate. Inbound events are kept a week (the clock is 11-24
    10:00 local), so the rate covers the workdays 11-18, 11-19, 11-20, 11-23 and has nothing to compare with.
    8 people, 张三 active 11-18 and 11-19, 周销售 11-23 (late evening), 李四 on Saturday 11-21 → 3 / 32."""
    await seed(service, org)
    await _activity(
        service,
        org,
        (org.emp1.id, utc(2026, 11, 18, 2)),
        (org.emp1.id, utc(2026, 11, 19, 2)),
        (org.emp1.id, utc(2026, 11, 19, 6)),
        (org.seller.id, utc(2026, 11, 23, 15)),
        (org.emp2.id, utc(2026, 11, 21, 2)),
        (org.emp2.id, utc(2026, 11, 3, 2)),
    )
    assert await run_job(service, org.leader, lambda ctx: send_digest(ctx, day=DAY))
    await service.outbox.drain()
    [card] = recorder.to("leader")
    assert fields(card)["日活跃率"] == "9%（4 个工作日平均） · 上期无数据"
    assert "日活跃率只有" not in str(card.model_dump())  # context, not a risk


async def test_daily_active_rate_compares_when_events_are_kept_long_enough(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """With 30 days of inbound events both periods are whole: 4 / (8 × 10) now, 1 / (8 × 10) before; a
    manager's team (张三, 李四) against the company."""
    await seed(service, org)
    await _activity(
        service,
        org,
        (org.emp1.id, utc(2026, 11, 10, 2)),
        (org.emp1.id, utc(2026, 11, 18, 2)),
        (org.emp2.id, utc(2026, 11, 19, 2)),
        (org.seller.id, utc(2026, 11, 23, 15)),
        (org.emp2.id, utc(2026, 11, 3, 2)),
    )
    settings = service.settings.model_copy(
        update={
            "retention": service.settings.retention.model_copy(update={"inbound_events_days": 30}),
            "digest": service.settings.digest.model_copy(update={"managers_too": True}),
        }
    )
    service.dispatcher.settings = settings
    assert await run_job(service, org.leader, lambda ctx: send_digest(ctx, day=DAY))
    assert await run_job(service, org.manager, lambda ctx: send_digest(ctx, day=DAY))
    await service.outbox.drain()
    [card] = recorder.to("leader")
    assert fields(card)["日活跃率"] == "5%（10 个工作日平均） · 较上期 ↑4pp"
    [team] = recorder.to("mgr")
    # 张三 11-10, 11-18; 李四 11-19 → 3 / 20; before: 李四 11-03 → 1 / 20.
    assert fields(team)["日活跃率"] == "15%（10 个工作日平均） · 较上期 ↑10pp · 公司 5%"
