"""The start-up migration check reads the head from the migration files (no alembic in ``perfloop run``):
it must name the same head as alembic, refuse a database that is behind, and accept one that is current."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from storage.db import (
    NotMigratedError,
    alembic_config,
    create_engine,
    current_revision,
    ensure_migrated,
    head_revision,
    migrate,
)


def test_the_head_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def test_behind_current_and_never_migrated(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    engine = create_engine(url)
    try:
        assert await current_revision(engine) is None
        with pytest.raises(NotMigratedError, match="at nothing"):
            await ensure_migrated(engine)
        await migrate(url)
        assert await current_revision(engine) == head_revision()
        await ensure_migrated(engine)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0001_initial_schema'"))
        with pytest.raises(NotMigratedError, match="at 0001_initial_schema, this version needs"):
            await ensure_migrated(engine)
    finally:
        await engine.dispose()
