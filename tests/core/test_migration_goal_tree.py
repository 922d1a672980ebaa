"""Migration 0011 (issue 17): every existing goal comes out with one key result measured in percent (0 →
100 %), titled by its old free-text key result (or its objective when it had none), standing at the last
percentage its owner reported in a submitted check-in, and the goal's cached progress following from it
(SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.db import migrate
from storage.types import JSONType, UTCDateTime
from tests.conftest import PG_ADMIN_URL, _pg_reachable

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _table(name: str, *cols: tuple[str, Any]) -> sa.TableClause:
    return sa.table(name, *(sa.column(c, t) for c, t in cols))


WORKSPACES = _table(
    "workspaces",
    ("id", sa.Integer),
    ("platform", sa.String),
    ("app_id", sa.String),
    ("name", sa.String),
    ("created_at", UTCDateTime()),
)
PEOPLE = _table(
    "people",
    ("id", sa.Integer),
    ("workspace_id", sa.Integer),
    ("platform_user_id", sa.String),
    ("name", sa.String),
    ("roles", sa.String),
    ("timezone", sa.String),
    ("locale", sa.String),
    ("active", sa.Boolean),
    ("paused", sa.Boolean),
    ("created_at", UTCDateTime()),
    ("updated_at", UTCDateTime()),
)
CYCLES = _table(
    "cycles",
    ("id", sa.Integer),
    ("workspace_id", sa.Integer),
    ("code", sa.String),
    ("status", sa.String),
    ("scope", JSONType),
    ("created_at", UTCDateTime()),
)
GOALS = _table(
    "goals",
    ("id", sa.Integer),
    ("cycle_id", sa.Integer),
    ("person_id", sa.Integer),
    ("position", sa.Integer),
    ("objective", sa.Text),
    ("key_result", sa.Text),
    ("weight", sa.Integer),
    ("created_at", UTCDateTime()),
)
CHECKINS = _table(
    "checkins",
    ("id", sa.Integer),
    ("person_id", sa.Integer),
    ("cycle_id", sa.Integer),
    ("period", sa.String),
    ("status", sa.String),
    ("progress", JSONType),
    ("due_at", UTCDateTime()),
    ("submitted_at", UTCDateTime()),
    ("created_at", UTCDateTime()),
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind (the shared fixtures are already at head)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    if not _pg_reachable():
        pytest.skip("PostgreSQL not reachable")
    name = f"perfloop_mig_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


async def _seed(engine: AsyncEngine) -> None:
    person = {
        "roles": "employee",
        "timezone": "Asia/Shanghai",
        "locale": "zh-CN",
        "active": True,
        "paused": False,
        "created_at": NOW,
        "updated_at": NOW,
        "workspace_id": 1,
    }
    goal = {"cycle_id": 1, "created_at": NOW}
    checkin = {"cycle_id": 1, "created_at": NOW, "due_at": NOW}
    async with engine.begin() as conn:
        await conn.execute(
            WORKSPACES.insert().values(id=1, platform="rec", app_id="a", name="w", created_at=NOW)
        )
        await conn.execute(
            PEOPLE.insert(),
            [{**person, "id": i, "platform_user_id": f"u{i}", "name": f"p{i}"} for i in (1, 2)],
        )
        await conn.execute(
            CYCLES.insert().values(id=1, workspace_id=1, code="Q4", status="active", scope=[], created_at=NOW)
        )
        rows = [
            (11, 1, 0, "上线计费", "3 月底前全量", 60),
            (12, 1, 1, "带新人", "", 40),
            (21, 2, 0, "客户访谈", "访谈 10 家", 100),
        ]
        await conn.execute(
            GOALS.insert(),
            [
                {**goal, "id": i, "person_id": p, "position": n, "objective": o, "key_result": k, "weight": w}
                for i, p, n, o, k, w in rows
            ],
        )
        await conn.execute(
            CHECKINS.insert(),
            [
                # person 1: 40 % then 55 % on goal 11 (the later one counts), 70 % on goal 12
                {**checkin, "id": 1, "person_id": 1, "period": "2026-10-01", "status": "acknowledged",
                 "progress": {"11": 40, "12": 70, "overall": 50, "note": "进展顺利"},
                 "submitted_at": NOW - timedelta(days=14)},
                {**checkin, "id": 2, "person_id": 1, "period": "2026-10-15", "status": "submitted",
                 "progress": {"11": 55}, "submitted_at": NOW - timedelta(days=1)},
                # never submitted: an open check-in's draft is not a report
                {**checkin, "id": 3, "person_id": 1, "period": "2026-10-29", "status": "open",
                 "progress": {"11": 90}, "submitted_at": None},
                # person 2 reported more than 100 %: capped at done
                {**checkin, "id": 4, "person_id": 2, "period": "2026-10-15", "status": "submitted",
                 "progress": {"21": 120}, "submitted_at": NOW - timedelta(days=2)},
            ],
        )  # fmt: skip


async def test_0011_gives_every_goal_a_percent_key_result_at_its_last_reported_progress(
    fresh_url: str,
) -> None:
    await migrate(fresh_url, "0010_metrics_indexes")
    engine = create_async_engine(fresh_url)
    try:
        await _seed(engine)
        await engine.dispose()
        await migrate(fresh_url, "0011_goal_tree")
        async with engine.connect() as conn:
            krs = {
                r.goal_id: r
                for r in await conn.execute(
                    sa.text(
                        "SELECT goal_id, position, title, kind, unit, start_value, target_value,"
                        " current_value, weight, progress FROM key_results ORDER BY goal_id"
                    )
                )
            }
            goals = {
                r.id: r
                for r in await conn.execute(
                    sa.text(
                        "SELECT id, level, department_id, own_progress, key_result FROM goals ORDER BY id"
                    )
                )
            }
            visibility = (await conn.execute(sa.text("SELECT goal_visibility FROM cycles"))).scalar_one()
    finally:
        await engine.dispose()
    assert sorted(krs) == [11, 12, 21]
    billing, mentoring, interviews = krs[11], krs[12], krs[21]
    assert (billing.title, billing.kind, billing.unit, billing.start_value, billing.target_value) == (
        "3 月底前全量",
        "number",
        "%",
        0.0,
        100.0,
    )
    assert (billing.current_value, billing.progress, billing.position, billing.weight) == (55.0, 0.55, 0, 0)
    assert (mentoring.title, mentoring.current_value, mentoring.progress) == ("带新人", 70.0, 0.7)
    assert (interviews.current_value, interviews.progress) == (120.0, 1.0)
    assert {g: (row.level, row.department_id, row.own_progress) for g, row in goals.items()} == {
        11: ("person", None, 0.55),
        12: ("person", None, 0.7),
        21: ("person", None, 1.0),
    }
    assert goals[11].key_result == "3 月底前全量"  # kept for history
    assert visibility == "company"


async def test_0011_on_goals_nobody_reported_on(fresh_url: str) -> None:
    await migrate(fresh_url, "0010_metrics_indexes")
    engine = create_async_engine(fresh_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                WORKSPACES.insert().values(id=1, platform="rec", app_id="a", name="w", created_at=NOW)
            )
            await conn.execute(
                PEOPLE.insert().values(
                    id=1, workspace_id=1, platform_user_id="u1", name="p1", roles="employee",
                    timezone="Asia/Shanghai", locale="zh-CN", active=True, paused=False, created_at=NOW,
                    updated_at=NOW,
                )
            )  # fmt: skip
            await conn.execute(
                CYCLES.insert().values(
                    id=1, workspace_id=1, code="Q4", status="active", scope=[], created_at=NOW
                )
            )
            await conn.execute(
                GOALS.insert().values(
                    id=5, cycle_id=1, person_id=1, position=0, objective="A", key_result="B", weight=100,
                    created_at=NOW,
                )
            )  # fmt: skip
        await engine.dispose()
        await migrate(fresh_url, "0011_goal_tree")
        async with engine.connect() as conn:
            row = (
                await conn.execute(sa.text("SELECT title, current_value, progress FROM key_results"))
            ).one()
            own = (await conn.execute(sa.text("SELECT own_progress FROM goals"))).scalar_one()
    finally:
        await engine.dispose()
    assert (row.title, row.current_value, row.progress, own) == ("B", None, 0.0, 0.0)
