"""Issue 17 item 5: key result values. ``record_value`` maths (numbers up and down, milestones, done dates,
the objective's own progress), the history (sources, one row per check-in however often it is resubmitted, a
backdated import), ``value_on`` and ``own_progress_at``, refusals that write nothing, and the lock that
keeps an objective's progress right when two of its key results move at once."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from bot.app.service import Service
from bot.core.numbers import looks_like_number, parse_number
from handlers.goals.api import ValueChange, ValueRefused, own_progress_at, record_value, value_on, values_at
from storage.models import Cycle, KeyResultValue
from tests.support.factories import Org
from tests.support.kr_data import Krs, goal, kr, seed_krs, values

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return (
        datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else datetime.fromisoformat(text)
    )


async def _record(
    service: Service,
    kr_id: int,
    *,
    when: str = "2026-11-24T02:00:00",
    source: str = "owner",
    source_id: int | None = None,
    value: float | None = None,
    done: bool | None = None,
    milestones_done: int | None = None,
    by: int | None = None,
) -> ValueChange:
    async with service.factory() as s, s.begin():
        return await record_value(
            s,
            kr_id,
            value=value,
            done=done,
            milestones_done=milestones_done,
            source=source,
            source_id=source_id,
            by_person_id=by,
            at=at(when),
        )


@pytest.fixture
async def krs(service: Service, org: Org) -> Krs:
    return await seed_krs(service, org.emp1)


async def test_a_number_moves_the_key_result_and_its_objective(service: Service, org: Org, krs: Krs) -> None:
    change = await _record(service, krs.nps, value=38, by=org.emp1.id)
    assert (change.before.value, change.before.progress) == (35, 0.75)
    assert (change.after.value, change.after.progress) == (38, pytest.approx(0.9))
    assert (change.goal_before, change.goal_after) == (0.375, pytest.approx(0.45))  # NPS and the site, 50/50
    assert change.current and not change.replaced
    nps = await kr(service, krs.nps)
    assert (nps.current_value, nps.progress, nps.done_at) == (38, pytest.approx(0.9), None)
    assert (await goal(service, krs.billing)).own_progress == pytest.approx(0.45)
    # where it stood before (carried over, no history) is kept first, so "35 → 38" reads right later
    assert await values(service, krs.nps) == [(35, False, "import", None), (38, False, "owner", None)]

    done = await _record(service, krs.nps, value=41)
    assert done.after.progress == 1.0 and (await kr(service, krs.nps)).done_at == at("2026-11-24T02:00:00")
    await _record(service, krs.nps, value=39, when="2026-11-25T02:00:00")
    assert (await kr(service, krs.nps)).done_at is None


async def test_a_decrease_counts_down_to_its_target(service: Service, krs: Krs) -> None:
    assert (await _record(service, krs.churn, value=4)).after.progress == pytest.approx(0.5)
    assert (await goal(service, krs.mentoring)).own_progress == pytest.approx(0.25)  # the date one not done
    assert (await _record(service, krs.churn, value=6)).after.progress == 0.0  # worse than the start
    changed = await _record(service, krs.churn, value=2.5)
    assert changed.after.progress == 1.0 and changed.after.done
    assert await values(service, krs.churn) == [
        (4, False, "owner", None),
        (6, False, "owner", None),
        (2.5, True, "owner", None),
    ]


async def test_milestones_and_done(service: Service, krs: Krs) -> None:
    two = await _record(service, krs.site, milestones_done=2)
    assert (two.after.milestones_done, two.after.progress, two.after.done) == (2, pytest.approx(2 / 3), False)
    site = await kr(service, krs.site)
    assert [m["done"] for m in site.milestones] == [True, True, False]
    assert (await goal(service, krs.billing)).own_progress == pytest.approx((0.75 + 2 / 3) / 2)

    finished = await _record(service, krs.site, done=True, when="2026-11-26T02:00:00")
    site = await kr(service, krs.site)
    assert finished.after.progress == 1.0 and all(m["done"] for m in site.milestones)
    assert site.done_at == at("2026-11-26T02:00:00")
    back = await _record(service, krs.site, done=False, milestones_done=0, when="2026-11-27T02:00:00")
    assert back.after.progress == 0.0 and (await kr(service, krs.site)).done_at is None

    dated = await _record(service, krs.oncall, done=True)
    assert dated.after.progress == 1.0 and dated.goal_after == pytest.approx(0.5)


async def test_a_resubmitted_checkin_replaces_its_own_value(service: Service, org: Org, krs: Krs) -> None:
    first = await _record(
        service, krs.nps, source="checkin", source_id=7, value=30, when="2026-11-20T02:00:00"
    )
    again = await _record(
        service, krs.nps, source="checkin", source_id=7, value=36, when="2026-11-20T03:00:00"
    )
    assert not first.replaced and again.replaced and again.row_id == first.row_id
    assert (await kr(service, krs.nps)).current_value == 36
    await _record(service, krs.nps, source="manager", value=37, by=org.manager.id, when="2026-11-21T02:00:00")
    await _record(service, krs.nps, source="checkin", source_id=8, value=38, when="2026-11-22T02:00:00")
    # the check-in answered again later: its row moves to then and is the current value
    await _record(service, krs.nps, source="checkin", source_id=7, value=39, when="2026-11-23T02:00:00")
    assert await values(service, krs.nps) == [
        (35, False, "import", None),
        (37, False, "manager", None),
        (38, False, "checkin", 8),
        (39, False, "checkin", 7),
    ]
    assert (await kr(service, krs.nps)).current_value == 39
    # an external system's pushes are idempotent by their id as well; owner updates each add a row
    await _record(service, krs.churn, source="api", source_id=501, value=4.8)
    await _record(service, krs.churn, source="api", source_id=501, value=4.6)
    await _record(service, krs.churn, source="owner", value=4.4)
    await _record(service, krs.churn, source="owner", value=4.4)
    assert [v[2:] for v in await values(service, krs.churn)] == [
        ("api", 501),
        ("owner", None),
        ("owner", None),
    ]


async def test_a_backdated_import_is_history_not_the_current_value(service: Service, krs: Krs) -> None:
    await _record(service, krs.nps, value=38, when="2026-11-24T02:00:00")
    late = await _record(service, krs.nps, source="import", source_id=1, value=31, when="2026-11-02T02:00:00")
    assert not late.current and late.after.value == 31
    nps = await kr(service, krs.nps)
    assert (nps.current_value, nps.progress) == (38, pytest.approx(0.9))
    async with service.factory() as s:
        assert [
            (r.value if r else None)
            for r in [await value_on(s, krs.nps, date(2026, 11, d), SHANGHAI) for d in (1, 2, 23, 24)]
        ] == [35, 31, 31, 38]


async def test_value_on_a_date_and_progress_in_force(service: Service, krs: Krs) -> None:
    await _record(service, krs.nps, source="checkin", source_id=1, value=30, when="2026-11-10T02:00:00")
    await _record(service, krs.nps, source="checkin", source_id=2, value=36, when="2026-11-24T01:00:00")
    await _record(service, krs.nps, source="owner", value=38, when="2026-11-24T17:30:00")  # 25th in Shanghai
    await _record(
        service, krs.site, source="checkin", source_id=2, milestones_done=1, when="2026-11-24T01:00:00"
    )
    async with service.factory() as s:
        days = [date(2026, 10, 7), date(2026, 11, 9), *(date(2026, 11, d) for d in (10, 23, 24, 25))]
        on = [await value_on(s, krs.nps, day, SHANGHAI) for day in days]
        # nothing known before NPS stood at 35 (10-08); then the check-ins; the owner's update the next day
        assert [r.value if r else None for r in on] == [None, 35, 30, 30, 36, 38]
        assert (await value_on(s, krs.nps, date(2026, 11, 24), UTC)).value == 38  # type: ignore[union-attr]
        # a key result never recorded reads as it stands
        churn = await value_on(s, krs.churn, date(2026, 11, 1))
        assert churn is not None and (churn.value, churn.progress) == (None, 0.0)
        read = await values_at(s, [krs.nps, krs.site], at("2026-11-24T02:00:00"))
        assert (read[krs.nps].value, read[krs.site].milestones_done) == (36, 1)

        progress = await own_progress_at(s, [krs.billing, krs.mentoring], at("2026-11-10T03:00:00"))
        assert progress[krs.billing] == pytest.approx(0.25)  # NPS 30 of 20 → 40, the site not started
        # the mentoring goal's key results were never recorded: as they stand (nothing), 0
        assert progress[krs.mentoring] == 0.0
        later = await own_progress_at(s, [krs.billing], at("2026-11-24T02:00:00"))
        assert later[krs.billing] == pytest.approx((0.8 + 1 / 3) / 2)


async def test_refusals_write_nothing(service: Service, krs: Krs) -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"key_result_id": krs.nps, "value": 3, "source": "guess"}, "source"),
        ({"key_result_id": krs.nps, "value": None}, "value_needed"),
        ({"key_result_id": krs.nps, "value": math.nan}, "value_needed"),
        ({"key_result_id": krs.nps, "value": math.inf}, "value_needed"),
        ({"key_result_id": krs.site}, "done_needed"),
        ({"key_result_id": krs.site, "milestones_done": 4}, "milestones"),
        ({"key_result_id": 999_999, "value": 3}, "unknown"),
    ]
    for args, reason in cases:
        kwargs: dict[str, object] = {"value": None, "done": None, "source": "owner", **args}
        kr_id = int(kwargs.pop("key_result_id"))  # type: ignore[call-overload]
        with pytest.raises(ValueRefused) as refused:
            await _record(service, kr_id, **kwargs)  # type: ignore[arg-type]
        assert refused.value.reason == reason, args
    async with service.factory() as s, s.begin():
        await s.execute(update(Cycle).where(Cycle.id == krs.cycle_id).values(status="closed"))
    with pytest.raises(ValueRefused) as refused:
        await _record(service, krs.nps, value=38)
    assert refused.value.reason == "cycle_closed"
    async with service.factory() as s:
        assert await s.scalar(select(func.count()).select_from(KeyResultValue)) == 0
    assert (await kr(service, krs.nps)).current_value == 35


async def test_two_key_results_of_one_objective_at_once(service: Service, krs: Krs, db_url: str) -> None:
    """The second value waits for the first's transaction (the objective's row is locked), then counts it."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers itself")
    first = service.factory()
    async with first.begin():
        await record_value(
            first,
            krs.nps,
            value=40,
            done=None,
            source="owner",
            source_id=None,
            by_person_id=None,
            at=at("2026-11-24T02:00:00"),
        )

        async def second() -> ValueChange:
            return await _record(service, krs.site, done=True)

        task = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not task.done()  # blocked on the objective's row
    await first.close()
    change = await task
    assert change.goal_after == 1.0 and (await goal(service, krs.billing)).own_progress == 1.0


def test_numbers_as_people_type_them() -> None:
    assert [parse_number(x) for x in ("38", "３８", " 38.5 ", "1,200", "-3", "+2", "38%", "38％")] == [
        38,
        38,
        38.5,
        1200,
        -3,
        2,
        38,
        38,
    ]
    assert parse_number("38 分", "分") == 38 and parse_number("3.5万", "万元") is None
    assert parse_number("3.5 万元", "万元") == 3.5
    for bad in ("很多", "", "38-40", "1,5", "3.5万", "三十八", "38分", "nan", "1e999"):
        assert parse_number(bad) is None, bad
    assert looks_like_number("38 家") and looks_like_number("3.5万")
    assert not looks_like_number("很多") and not looks_like_number("大概 38")
