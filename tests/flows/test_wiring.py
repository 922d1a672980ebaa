"""The seams between flows: follow-up 1:1 becomes an action item, quiet hours hold scheduled sends only,
and a team may keep non-responders' names out of its digest."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.context import Context
from cards.catalogue import Translator
from cards.digest import DigestView, digest_card
from cards.flow_actions import CheckinFollowup, CheckinSubmit
from handlers.checkin.checkin import open_checkin, remind_checkin
from storage.models import ActionItem, CheckIn, OutboxMessage, QuietHours
from tests.support.factories import Org
from tests.support.flows import click, run_as, say


async def _submitted_checkin(service: Service, org: Org) -> CheckIn:
    async def fn(ctx: Context) -> CheckIn | None:
        return await open_checkin(ctx, period="2026-11-27", due_at=datetime(2026, 11, 27, 8, tzinfo=UTC))

    checkin = await run_as(service, org.emp1.id, fn)
    assert checkin is not None
    await click(
        service,
        "emp1",
        CheckinSubmit(checkin_id=checkin.id),
        {"goal_overall": "40", "obstacles": "测试环境不稳定", "support": "需要一台测试机"},
    )
    return checkin


async def test_needs_followup_opens_an_action_item_for_the_manager(service: Service, org: Org) -> None:
    checkin = await _submitted_checkin(service, org)
    await click(service, "mgr", CheckinFollowup(checkin_id=checkin.id))
    async with service.factory() as s:
        item = (await s.scalars(select(ActionItem))).one()
    assert (item.owner_id, item.acceptor_id, item.source, item.source_id) == (
        org.manager.id,
        org.emp1.id,
        "checkin",
        checkin.id,
    )
    assert "张三" in item.deliverable
    assert item.deadline == date(2026, 11, 27)  # three days after Tuesday 24 Nov


async def test_quiet_hours_hold_scheduled_reminders_but_not_replies(
    service: Service, org: Org, clock: FixedClock
) -> None:
    checkin = await _submitted_checkin(service, org)
    async with service.factory() as s, s.begin():
        row = await s.get(CheckIn, checkin.id)
        assert row is not None
        row.status, row.submitted_at = "open", None
    await say(service, "emp1", "/quiet 09:00-12:00")  # it is 10:00 in Shanghai
    await run_as(service, org.emp1.id, lambda ctx: remind_checkin(ctx, checkin.id))
    await say(service, "emp1", "/help")
    async with service.factory() as s:
        rows = list(
            await s.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.recipients == ["emp1"])
                .order_by(OutboxMessage.id.desc())
                .limit(2)
            )
        )
        assert (await s.scalars(select(QuietHours))).one()
    help_row, reminder_row = rows
    assert reminder_row.next_attempt_at == datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # 12:00 Shanghai
    assert help_row.next_attempt_at <= clock.now() + timedelta(seconds=1)


def test_digest_can_leave_out_nonresponders_names() -> None:
    from cards.digest import Figure, Named

    figures = [Figure(key="checkin", value=0.8, previous=0.7, company=0.75)]
    base = dict(
        day=date(2026, 11, 24),
        scope_label="团队",
        period_days=14,
        figures=figures,
        overdue_total=0,
        overdue=[],
        missed_twice=[Named("张三", 2), Named("李四", 3)],
    )
    t = Translator("zh-CN")
    named = str(digest_card(t, DigestView(**base)).model_dump())  # type: ignore[arg-type]
    hidden = str(digest_card(t, DigestView(**base, name_nonresponders=False)).model_dump())  # type: ignore[arg-type]
    assert "张三" in named and "李四" in named
    assert "张三" not in hidden and "李四" not in hidden and "2 人" in hidden
