"""Early warning: figures that fell two periods in a row flag the person to their manager and HRBP, with the
figures named; one fall is not enough; at most one warning a month; never shown to the person.

张三's periods (check-in cadence: 2 weeks) for week 2026-W47 end on Monday 11-23 (Shanghai):
p1 = 10-12..10-25, p2 = 10-26..11-08, p3 = 11-09..11-22.
  check-ins: 10-15 answered on time (1), 10-29 answered 48 h late (½), 11-12 missed (0) → fell twice
  progress: 60 % (10-15), 50 % (10-29), none in p3 (missed)                      → not two falls
  photo ratings: 10-14 meets (2); 10-28 meets, 10-30 improve (1.5); 11-10 improve, 11-20 support (0.5)
W48 (ends 11-30, still November): ratings 1.5 → 1 → 0 fell again, but the month's warning was given.
W49 (ends 12-07, December): ratings 1.5 → 0.5 → 0 (11-25 support) → warned again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.app.service import Service
from cards.model import Card, Markdown
from handlers.insights.early_warning import check_early_warning
from storage.models import CheckIn, Evidence, OutboxMessage, Person, QuietHours
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows2 import run_job


def utc(mo: int, d: int, h: int = 8) -> datetime:
    return datetime(2026, mo, d, h, tzinfo=UTC)


async def seed(
    service: Service,
    person: Person,
    *,
    checkins: list[tuple[datetime, str, datetime | None, int | None]],
    ratings: list[tuple[datetime, str]],
) -> None:
    async with service.factory() as s, s.begin():
        for due, status, submitted, progress in checkins:
            s.add(
                CheckIn(
                    person_id=person.id,
                    period=due.date().isoformat(),
                    status=status,
                    due_at=due,
                    submitted_at=submitted,
                    progress={"1": progress} if progress is not None else {},
                )
            )
        for received, rating in ratings:
            s.add(
                Evidence(
                    person_id=person.id,
                    file_path="x",
                    sha256="b" * 64,
                    size=1,
                    mime="image/png",
                    received_at=received,
                    rating=rating,
                )
            )


FALLING = {
    "checkins": [
        (utc(10, 15), "submitted", utc(10, 15, 10), 60),
        (utc(10, 29), "acknowledged", utc(10, 31, 8), 50),
        (utc(11, 12), "missed", None, None),
    ],
    "ratings": [
        (utc(10, 14, 4), "meets"),
        (utc(10, 28, 4), "meets"),
        (utc(10, 30, 4), "improve"),
        (utc(11, 10, 4), "improve"),
        (utc(11, 20, 4), "support"),
        (utc(11, 25, 4), "support"),
    ],
}


def text(card: Card) -> str:
    return "\n".join(el.text for el in card.elements if isinstance(el, Markdown))


async def warn(service: Service, person: Person, week: str) -> int:
    return await run_job(service, person, lambda ctx: check_early_warning(ctx, week=week))


async def test_two_falls_in_a_row_flag_manager_and_hrbp_naming_the_figures(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await seed(service, org.emp1, **FALLING)
    assert await warn(service, org.emp1, "2026-W47") == 2
    await service.outbox.drain()
    [to_manager] = recorder.to("mgr")
    [to_hrbp] = recorder.to("hrbp")
    assert recorder.to("emp1") == []  # never shown to the person
    assert to_manager.header.title == "关怀提醒：张三"
    lines = text(to_manager).splitlines()
    assert lines[:3] == [
        "张三 的以下指标连续两个周期下降（每个周期 14 天，从早到晚）：",
        "- 签到按时情况（按时 100%，迟交 50%，未交 0%）：100% → 50% → 0%",
        "- 照片证据评价（达标 2，需改进 1，需支持 0）：2.0 → 1.5 → 0.5",
    ]
    assert "关键结果平均进度" not in text(to_manager)  # progress did not fall twice
    assert "**建议的关怀谈话**" in text(to_manager) and "张三" in text(to_hrbp)
    assert to_hrbp.header.title == to_manager.header.title


async def test_one_fall_is_not_a_warning(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    await seed(
        service,
        org.emp2,
        checkins=[
            (utc(10, 15), "submitted", utc(10, 15, 9), 40),
            (utc(10, 29), "submitted", utc(10, 29, 9), 40),  # no change
            (utc(11, 12), "missed", None, None),  # one fall
        ],
        ratings=[(utc(10, 14, 4), "meets"), (utc(10, 28, 4), "meets"), (utc(11, 10, 4), "improve")],
    )
    assert await warn(service, org.emp2, "2026-W47") == 0
    await service.outbox.drain()
    assert recorder.to("mgr") == [] and recorder.to("hrbp") == []


async def test_at_most_one_warning_a_month(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    await seed(service, org.emp1, **FALLING)
    assert await warn(service, org.emp1, "2026-W47") == 2
    assert await warn(service, org.emp1, "2026-W47") == 0  # a re-run
    assert await warn(service, org.emp1, "2026-W48") == 0  # still November, though the ratings fell again
    assert await warn(service, org.emp1, "2026-W49") == 2  # December
    await service.outbox.drain()
    _, december = recorder.to("mgr")
    assert "照片证据评价（达标 2，需改进 1，需支持 0）：1.5 → 0.5 → 0.0" in text(december)
    assert "签到按时情况" not in text(december)


async def test_warning_waits_for_the_readers_quiet_hours(service: Service, org: Org) -> None:
    """The clock says 10:00 in Shanghai; the HRBP's quiet hours run 09:00-12:00, the manager has none."""
    await seed(service, org.emp1, **FALLING)
    async with service.factory() as s, s.begin():
        s.add(QuietHours(person_id=org.hrbp.id, starts="09:00", ends="12:00"))
    assert await warn(service, org.emp1, "2026-W47") == 2
    async with service.factory() as s:
        rows = {r.recipients[0]: r.next_attempt_at for r in await s.scalars(select(OutboxMessage))}
    assert rows["hrbp"] == datetime(2026, 11, 24, 4, tzinfo=UTC)
    assert rows["mgr"] <= datetime(2026, 11, 24, 2, tzinfo=UTC)
