"""The monthly department brief against a hand-computed fixture, who reads it, and its schedule.

The brief of 2026-12 covers November 2026 (Shanghai), compared with October.

研发部 (head 王经理, HRBP 赵伙伴; 张三 and 李四 report to 王经理):
  check-ins Nov: 张三 11-05 submitted, 11-19 submitted; 李四 11-05 submitted, 11-19 missed → 3/4 = 75%
            Oct: 张三 10-22 submitted; 李四 10-22 submitted                                   → 2/2 = 100%
  A1 张三 deadline 11-10, photo required and sent, done 11-09, created 11-02 02:00 → response 10 h
  A2 李四 deadline 11-12, photo required, none, still open (overdue), created 11-03 → response 72 h
     → evidence 1/2 = 50% (threshold 85%), response 41 h (threshold 48 h), fulfilment 1/2 = 50%
  A3 张三 deadline 10-15 (October), photo, done 10-14, response 2 h → Oct evidence 1/1, fulfilment 1/1
  progress below plan: 张三 on 11-20 (none in October)
销售部 (head 孙经理): 周销售 11-06 and 11-20 submitted → 2/2.
Company (the leader's brief): check-ins 5/6 = 83%; teams: 孙经理's 100% (Oct: no data), 王经理's
  (75% + 50% + 50%) / 3 = 58% (Oct 100% → ↓42pp).
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

from PIL import Image as PILImage

from bot.app.service import Service
from bot.core.config import Settings
from cards.insights_chart import HEIGHT_PX
from cards.model import Card, Fields, Image, Markdown
from handlers.insights.brief import send_department_brief
from scheduler.cadence import periodic_flows, upcoming
from scheduler.calendar import ChineseWorkCalendar
from storage.media import MediaStore
from storage.models import ActionItem, AuditLog, CheckIn, Evidence, Person
from storage.queries import metrics as m
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows2 import run_job

PERIOD = "2026-12"


def utc(mo: int, d: int, h: int = 8) -> datetime:
    return datetime(2026, mo, d, h, tzinfo=UTC)


async def seed(service: Service, org: Org) -> None:
    async with service.factory() as s, s.begin():

        def ck(person: int, due: datetime, status: str) -> None:
            s.add(CheckIn(person_id=person, period=due.date().isoformat(), status=status, due_at=due))

        e1, e2, sel = org.emp1.id, org.emp2.id, org.seller.id
        ck(e1, utc(11, 5), "submitted")
        ck(e1, utc(11, 19), "submitted")
        ck(e2, utc(11, 5), "submitted")
        ck(e2, utc(11, 19), "missed")
        ck(e1, utc(10, 22), "submitted")
        ck(e2, utc(10, 22), "submitted")
        ck(sel, utc(11, 6), "submitted")
        ck(sel, utc(11, 20), "submitted")

        def item(owner: int, deadline: date, **kw: object) -> ActionItem:
            row = ActionItem(
                owner_id=owner, source="manual", deliverable=f"D{deadline}", deadline=deadline, **kw
            )
            s.add(row)
            return row

        a1 = item(
            e1,
            date(2026, 11, 10),
            evidence_required=True,
            status="done",
            done_at=utc(11, 9),
            created_at=utc(11, 2, 2),
            first_response_at=utc(11, 2, 12),
        )
        item(
            e2,
            date(2026, 11, 12),
            evidence_required=True,
            created_at=utc(11, 3, 0),
            first_response_at=utc(11, 6, 0),
        )
        a3 = item(
            e1,
            date(2026, 10, 15),
            evidence_required=True,
            status="done",
            done_at=utc(10, 14),
            created_at=utc(10, 10, 0),
            first_response_at=utc(10, 10, 2),
        )
        await s.flush()
        for a in (a1, a3):
            s.add(
                Evidence(
                    person_id=a.owner_id,
                    action_item_id=a.id,
                    file_path="x",
                    sha256="a" * 64,
                    size=1,
                    mime="image/png",
                    received_at=utc(10, 14),
                )
            )
        s.add(
            AuditLog(
                at=utc(11, 20),
                action=m.PROGRESS_GAP_ACTION,
                entity="person",
                entity_id=e1,
                detail={"key": "gap:1"},
            )
        )


def fields(card: Card) -> dict[str, str]:
    return {kv.label: kv.value for el in card.elements if isinstance(el, Fields) for kv in el.items}


def markdown(card: Card) -> str:
    return "\n".join(el.text for el in card.elements if isinstance(el, Markdown))


async def test_department_brief_matches_the_hand_computed_fixture(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await seed(service, org)
    assert await run_job(service, org.manager, lambda ctx: send_department_brief(ctx, period=PERIOD)) == 1
    await service.outbox.drain()
    [card] = recorder.to("mgr")
    assert card.header.title == "部门月报 2026-11"
    assert card.header.subtitle == "研发部"
    assert card.header.colour == "red"  # check-ins and evidence miss their thresholds
    f = fields(card)
    assert f["签到完成率"] == "75%（3/4） · ⚠️ 未达阈值 90% · 较上月 ↓25pp（上月 100%，变差）"
    assert f["证据完整率"] == "50%（1/2） · ⚠️ 未达阈值 85% · 较上月 ↓50pp（上月 100%，变差）"
    assert f["平均响应时长"] == "41.0 小时 · ✅ 达到阈值 48.0 小时 · 较上月 ↑39.0 小时（上月 2.0 小时，变差）"
    assert f["承诺兑现率"] == "50%（1/2） · 较上月 ↓50pp（上月 100%，变差）"
    body = markdown(card)
    assert "- 逾期行动项 1 项 （上月无记录）：李四" in body
    assert "- 缺少照片证据的行动项 1 项 （上月 0）：李四" in body
    assert "- 进度落后于计划 1 人 （上月 0）：张三" in body
    text = card.model_dump_json()
    assert "暂不排名" in text  # one team with data in 研发部
    assert "目标树上线后" in text  # alignment and carry-over wait for the goal tree

    [chart] = [el for el in card.elements if isinstance(el, Image)]
    data, mime = await MediaStore(service.settings.media.dir, max_bytes=10**7).read(chart.media_id)
    assert mime == "image/png"
    assert PILImage.open(io.BytesIO(data)).size[1] == HEIGHT_PX


async def test_company_brief_ranks_teams_with_the_previous_month(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await seed(service, org)
    assert await run_job(service, org.leader, lambda ctx: send_department_brief(ctx, period=PERIOD)) == 1
    await service.outbox.drain()
    [card] = recorder.to("leader")
    assert card.header.subtitle == "全公司"
    assert fields(card)["签到完成率"].startswith("83%（5/6）")
    body = markdown(card)
    top = body.split("**表现最好的团队**\n")[1].split("\n")[0]
    bottom = body.split("**最需要关注的团队**\n")[1].split("\n")[0]
    assert top == "1. 孙经理 的团队：100% · 上月无数据"
    assert bottom == "1. 王经理 的团队：58% · 较上月 ↓42pp（上月 100%，变差）"


async def test_brief_goes_only_to_heads_hrbps_and_leaders_once_a_month(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await seed(service, org)

    async def brief(who: Person) -> int:
        return await run_job(service, who, lambda ctx: send_department_brief(ctx, period=PERIOD))

    assert await brief(org.hrbp) == 2  # HRBP of both departments
    assert await brief(org.sales_manager) == 1
    assert await brief(org.emp1) == 0
    assert await brief(org.hr) == 0  # HR admin: not a department's head or HRBP
    assert await brief(org.hrbp) == 0  # once a month
    await service.outbox.drain()
    assert sorted(c.header.subtitle or "" for c in recorder.to("hrbp")) == ["研发部", "销售部"]
    [sales] = recorder.to("smgr")
    assert sales.header.subtitle == "销售部"
    assert recorder.to("emp1") == [] and recorder.to("hr") == []


async def test_next_brief_compares_overdue_with_the_previous_one(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await seed(service, org)
    assert await run_job(service, org.manager, lambda ctx: send_department_brief(ctx, period="2026-11"))
    assert await run_job(service, org.manager, lambda ctx: send_department_brief(ctx, period=PERIOD))
    await service.outbox.drain()
    latest = recorder.to("mgr")[-1]
    assert "- 逾期行动项 1 项 （上月 1）：李四" in markdown(latest)


def test_brief_is_scheduled_on_the_first_workday_of_the_month() -> None:
    settings = Settings()
    cal = ChineseWorkCalendar()
    hrbp = _person("employee,hrbp")
    flows = {f.flow: f for f in periodic_flows(hrbp, settings, cal)}
    assert set(flows) == {"insights.brief", "insights.alerts"}
    now = datetime(2026, 9, 20, tzinfo=UTC)
    occ = next(upcoming(flows["insights.brief"].series, now, "Asia/Shanghai"))
    assert (occ.period, occ.day) == ("2026-10", date(2026, 10, 8))  # after the National Day holiday
    assert occ.at == datetime(2026, 10, 8, 1, tzinfo=UTC)  # [digest] time, 09:00 in Shanghai
    employee = _person("employee", manager_id=1)
    assert "insights.warn" in {f.flow for f in periodic_flows(employee, settings, cal)}
    assert "insights.brief" not in {f.flow for f in periodic_flows(employee, settings, cal)}


def _person(roles: str, manager_id: int | None = None) -> Person:
    return Person(
        id=9,
        workspace_id=1,
        platform_user_id="x",
        name="x",
        roles=roles,
        timezone="Asia/Shanghai",
        manager_id=manager_id,
        active=True,
        paused=False,
    )
