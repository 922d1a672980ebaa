"""``perfloop outbox list|retry`` (issue 16 #11): dead letters and sends in doubt, seen and re-queued without
SQL, on SQLite and PostgreSQL, through the real command line."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app.cli import main
from storage.db import create_engine, session_factory
from storage.models import OutboxMessage, Workspace
from tests.conftest import _truncate_pg, run_in_thread

ROWS: dict[str, dict[str, Any]] = {
    "dead": {"attempts": 8, "last_error": "TransientError: wecom message/send: HTTP 502\nsecond line"},
    "unknown": {"attempts": 1, "last_error": "in doubt: a send started at … has passed; not sent again"},
    "sent": {"attempts": 1, "last_error": None},
    "pending": {"attempts": 0, "last_error": None},
}


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_template: Path
) -> Iterator[str]:
    for key in list(os.environ):
        if key.startswith("PERFLOOP_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    if request.param == "sqlite":
        shutil.copy(sqlite_template, tmp_path / "cli.db")
        url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        run_in_thread(_truncate_pg(url))
    monkeypatch.setenv("PERFLOOP_DATABASE__URL", url)
    yield url


def seed(url: str) -> dict[str, int]:
    """One row per status, created an hour ago; returns status → id."""

    async def go() -> dict[str, int]:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as s, s.begin():
                ws = Workspace(platform="wecom", app_id="corp", name="公司")
                s.add(ws)
                await s.flush()
                made: dict[str, OutboxMessage] = {}
                for status, extra in ROWS.items():
                    row = OutboxMessage(
                        workspace_id=ws.id,
                        platform="wecom",
                        recipients=["u1", "u2", "u3"],
                        card={},
                        status=status,
                        created_at=datetime.now(UTC) - timedelta(hours=1),
                        next_attempt_at=datetime.now(UTC) - timedelta(hours=1),
                        attempt_started_at=datetime.now(UTC) - timedelta(hours=1),
                        **extra,
                    )
                    s.add(row)
                    made[status] = row
                await s.flush()
                return {k: r.id for k, r in made.items()}
        finally:
            await engine.dispose()

    return run_in_thread(go())


def state(url: str) -> dict[int, OutboxMessage]:
    async def go() -> dict[int, OutboxMessage]:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as s:
                return {r.id: r for r in await s.scalars(select(OutboxMessage))}
        finally:
            await engine.dispose()

    return run_in_thread(go())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def listed(out: str) -> set[int]:
    return {int(line.split()[0]) for line in out.splitlines()[1:] if line.strip()}


def test_outbox_list_shows_what_is_not_sent(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    ids = seed(cli_db)
    code, out, err = run(capsys, "outbox", "list")
    assert code == 0 and err == ""
    assert out.splitlines()[0].split()[:6] == ["ID", "PLATFORM", "OP", "STATUS", "RECIPIENTS", "ATTEMPTS"]
    assert listed(out) == {ids["dead"], ids["unknown"], ids["pending"]}
    dead_line = next(line for line in out.splitlines() if line.startswith(f"{ids['dead']} "))
    assert dead_line.split()[1:7] == ["wecom", "send", "dead", "3", "8", "1h0m"]
    assert "HTTP 502 second line" in dead_line  # one line per row
    code, out, _ = run(capsys, "outbox", "list", "--dead")
    assert code == 0 and listed(out) == {ids["dead"]}
    code, out, _ = run(capsys, "outbox", "list", "--unknown")
    assert code == 0 and listed(out) == {ids["unknown"]}
    code, out, _ = run(capsys, "outbox", "list", "--limit", "1")
    assert code == 0 and len(listed(out)) == 1
    code, _, err = run(capsys, "outbox", "list", "--limit", "0")
    assert code == 2 and err.strip() == "error: --limit must be at least 1"


def test_outbox_retry_requeues_one_or_all(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    ids = seed(cli_db)
    before = datetime.now(UTC)
    code, out, _ = run(capsys, "outbox", "retry", str(ids["dead"]))
    assert code == 0 and out.strip() == f"outbox row {ids['dead']} (dead) re-queued for delivery now"
    row = state(cli_db)[ids["dead"]]
    assert row.status == "pending" and row.attempts == 0 and row.attempt_started_at is None
    assert before - timedelta(seconds=5) <= row.next_attempt_at <= datetime.now(UTC)
    assert "HTTP 502" in (row.last_error or "")  # kept: why it had stopped

    code, out, _ = run(capsys, "outbox", "retry", "--all-unknown")
    assert code == 0 and out.strip() == f"re-queued 1 unknown outbox rows: {ids['unknown']}"
    assert state(cli_db)[ids["unknown"]].status == "pending"
    code, out, _ = run(capsys, "outbox", "retry", "--all-dead")
    assert code == 0 and out.strip() == "no dead outbox rows"
    assert {r.status for r in state(cli_db).values()} == {"pending", "sent"}


def test_outbox_retry_refuses_bad_input_and_changes_nothing(
    cli_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed(cli_db)
    before = {i: (r.status, r.attempts) for i, r in state(cli_db).items()}
    code, _, err = run(capsys, "outbox", "retry", "999999")
    assert code == 2 and err == "error: no outbox row with id 999999\n"
    for status in ("sent", "pending"):
        code, _, err = run(capsys, "outbox", "retry", str(ids[status]))
        assert code == 2
        refused = f"outbox row {ids[status]} is {status}; only dead or unknown rows can be retried"
        assert err == f"error: {refused}\n"
    assert {i: (r.status, r.attempts) for i, r in state(cli_db).items()} == before
    for argv in (["retry"], ["retry", "abc"], ["retry", "3", "--all-dead"], ["list", "--limit", "x"]):
        with pytest.raises(SystemExit) as exit_:
            main(["outbox", *argv])
        assert exit_.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_outbox_help() -> None:
    for argv in (["outbox", "--help"], ["outbox", "list", "--help"], ["outbox", "retry", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
