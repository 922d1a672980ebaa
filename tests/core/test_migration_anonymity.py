"""Migration 0004, findings #2 and #3: an existing database comes out with its peer answers released the way
they were already shown, and without the rows that tied a rater to an answer (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
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
PEERS = _table(
    "peer_feedback",
    ("id", sa.Integer),
    ("cycle_id", sa.Integer),
    ("subject_id", sa.Integer),
    ("rater_id", sa.Integer),
    ("role", sa.String),
    ("status", sa.String),
    ("scores", JSONType),
    ("example", sa.Text),
    ("answered_at", UTCDateTime()),
    ("created_at", UTCDateTime()),
)
AUDIT = _table(
    "audit_log",
    ("id", sa.Integer),
    ("at", UTCDateTime()),
    ("actor_id", sa.Integer),
    ("action", sa.String),
    ("entity", sa.String),
    ("entity_id", sa.Integer),
    ("detail", JSONType),
)
INBOUND = _table(
    "inbound_events",
    ("id", sa.Integer),
    ("platform", sa.String),
    ("event_id", sa.String),
    ("kind", sa.String),
    ("person_id", sa.Integer),
    ("answer", JSONType),
    ("received_at", UTCDateTime()),
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
    async with engine.begin() as conn:
        await conn.execute(
            WORKSPACES.insert().values(id=1, platform="rec", app_id="a", name="w", created_at=NOW)
        )
        await conn.execute(
            PEOPLE.insert(),
            [{**person, "id": i, "platform_user_id": f"u{i}", "name": f"p{i}"} for i in range(1, 8)],
        )
        await conn.execute(
            CYCLES.insert().values(id=1, workspace_id=1, code="Q4", status="active", scope=[], created_at=NOW)
        )
        answered = {
            "cycle_id": 1,
            "role": "peer",
            "status": "answered",
            "scores": {"quality": 3},
            "answered_at": NOW,
            "created_at": NOW,
        }
        # Person 1 had three answers (shown under any threshold the config accepts), person 2 only two.
        await conn.execute(
            PEERS.insert(),
            [
                {**answered, "id": 11, "subject_id": 1, "rater_id": 3, "example": "例子甲"},
                {**answered, "id": 12, "subject_id": 1, "rater_id": 4, "example": "例子乙"},
                {**answered, "id": 13, "subject_id": 1, "rater_id": 5, "example": "例子丙"},
                {**answered, "id": 21, "subject_id": 2, "rater_id": 6, "example": "例子丁"},
                {**answered, "id": 22, "subject_id": 2, "rater_id": 7, "example": "例子戊"},
            ],
        )
        await conn.execute(
            AUDIT.insert(),
            [
                {
                    "id": 1,
                    "at": NOW,
                    "actor_id": 3,
                    "action": "vague.bounced",
                    "entity": "peer_feedback",
                    "entity_id": 11,
                    "detail": {"text": "加强沟通"},
                },
                {
                    "id": 2,
                    "at": NOW,
                    "actor_id": 3,
                    "action": "vague.accepted",
                    "entity": "peer_feedback",
                    "entity_id": 11,
                    "detail": {"text": "例子甲"},
                },
                {
                    "id": 3,
                    "at": NOW,
                    "actor_id": 3,
                    "action": "peers.answered",
                    "entity": "peer_feedback",
                    "entity_id": 11,
                    "detail": {},
                },
                {
                    "id": 4,
                    "at": NOW,
                    "actor_id": 1,
                    "action": "vague.bounced",
                    "entity": "checkin_comment",
                    "entity_id": 5,
                    "detail": {"text": "多沟通"},
                },
            ],
        )
        echo = {"toast": "“加强沟通”…", "toast_kind": "warning", "card": {"buttons": ["peers.answer|11"]}}
        await conn.execute(
            INBOUND.insert(),
            [
                {
                    "id": 1,
                    "platform": "rec",
                    "event_id": "e1",
                    "kind": "card_action",
                    "person_id": 3,
                    "answer": echo,
                    "received_at": NOW,
                },
                {
                    "id": 2,
                    "platform": "rec",
                    "event_id": "e2",
                    "kind": "text",
                    "person_id": 1,
                    "answer": {"toast": "ok", "toast_kind": "info", "card": None},
                    "received_at": NOW,
                },
            ],
        )


async def test_0004_releases_what_was_shown_and_unlinks_raters(fresh_url: str) -> None:
    await migrate(fresh_url, "0003_flows3")
    engine = create_async_engine(fresh_url)
    try:
        await _seed(engine)
        await engine.dispose()
        await migrate(fresh_url)
        async with engine.connect() as conn:
            peers = {
                r.id: r
                for r in await conn.execute(
                    sa.text("SELECT id, released_at, vague_bounced FROM peer_feedback ORDER BY id")
                )
            }
            audit = {
                r.id: r
                for r in await conn.execute(
                    sa.select(AUDIT.c.id, AUDIT.c.actor_id, AUDIT.c.entity, AUDIT.c.entity_id, AUDIT.c.detail)
                )
            }
            inbound = {r.id: r.answer for r in await conn.execute(sa.select(INBOUND.c.id, INBOUND.c.answer))}
    finally:
        await engine.dispose()
    assert [p for p, r in peers.items() if r.released_at is not None] == [11, 12, 13]
    assert [p for p, r in peers.items() if r.vague_bounced] == [11]
    for vague in (1, 2):  # the vague guard's rows about a peer answer: no rater, no row, no text
        assert (audit[vague].actor_id, audit[vague].entity_id, audit[vague].detail) == (None, None, {})
    assert (audit[3].actor_id, audit[3].entity, audit[3].entity_id) == (3, "cycle", 1)
    assert audit[4].detail == {"text": "多沟通"}  # not anonymous: untouched
    assert inbound[1] == {"toast": None, "toast_kind": "info", "card": None}
    assert inbound[2]["toast"] == "ok"


async def test_upgrading_to_head_keeps_every_row(fresh_url: str) -> None:
    """On SQLite, batch mode rebuilds a table (copy, DROP, rename); with foreign keys on, rebuilding
    ``cycles`` (0005) cascaded and deleted every participant, grade and peer answer. Every row seeded before
    the upgrade must still be there after it."""
    await migrate(fresh_url, "0003_flows3")
    engine = create_async_engine(fresh_url)
    try:
        await _seed(engine)

        async def counts() -> dict[str, int]:
            async with engine.connect() as conn:
                names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
                return {
                    n: int((await conn.execute(sa.text(f'SELECT count(*) FROM "{n}"'))).scalar_one())
                    for n in names
                    if n != "alembic_version"
                }

        before = await counts()
        await engine.dispose()
        await migrate(fresh_url)
        after = await counts()
    finally:
        await engine.dispose()
    assert sum(before.values()) > 10
    assert {n: after.get(n) for n in before} == before
