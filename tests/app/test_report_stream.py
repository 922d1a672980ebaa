"""The report's speed-ups change no figure: one ``Levels`` grouping (``GROUPING SETS`` on PostgreSQL, one
statement per level on SQLite) gives what each grouping gives alone; the report streams in pieces that
join to the whole file; ``perfloop report --output`` writes the whole file or none.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import bot.app.report as report
from bot.app.cli import main
from bot.app.service import Service
from bot.core.status import GoalLevel
from storage.queries import metrics as m
from tests.app.test_cli import GOOD
from tests.flows.test_metrics_more import seed_participation
from tests.support.factories import Org

EVERY = m.Levels(("person", "department", "company"))


def _plain(level: m.Level) -> m.Group:
    return None if level == "company" else level


async def test_levels_give_what_each_grouping_gives(service: Service, org: Org) -> None:
    await seed_participation(service, org)
    async with service.factory() as session:
        from sqlalchemy import select

        from storage.models import Cycle

        cycle = (await session.scalars(select(Cycle).where(Cycle.code == "2026-Q4"))).one()
        assert cycle.starts_on is not None and cycle.ends_on is not None
        window = m.Window(cycle.starts_on, cycle.ends_on + timedelta(days=1), report.zone("Asia/Shanghai"))
        scope = m.Scope(cycle.workspace_id)
        options: dict[str, Any] = {"workdays": None, "kept_since": None, "min_answers": 2}
        levelled = {
            "metrics": await m.metrics_by(session, scope, window, EVERY),
            "participation": await m.participation_by(session, scope, window, EVERY, **options),
            "goals": await m.goal_figures_by(
                session, scope, cycle.id, EVERY, level=GoalLevel.PERSON, previous=None
            ),
        }
        for level in EVERY.levels:
            plain = {
                "metrics": await m.metrics_by(session, scope, window, _plain(level)),
                "participation": await m.participation_by(session, scope, window, _plain(level), **options),
                "goals": await m.goal_figures_by(
                    session, scope, cycle.id, _plain(level), level=GoalLevel.PERSON, previous=None
                ),
            }
            for part, found in plain.items():
                mine = {k: v for (lv, k), v in levelled[part].items() if lv == level}
                assert {k: vars(v) for k, v in mine.items()} == {k: vars(v) for k, v in found.items()}, (
                    part,
                    level,
                )
    assert any(lv == "person" for lv, _ in levelled["metrics"])  # the fixture has people with figures


async def test_the_report_streams_pieces_that_make_the_whole_file(
    service: Service, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_participation(service, org)
    whole = await report.build_report(service, cycle="2026-Q4", fmt="csv")
    monkeypatch.setattr(report, "STREAM_ROWS", 2)
    pieces = [p async for p in report.stream_report(service, cycle="2026-Q4", fmt="csv")]
    assert len(pieces) > 3 and "".join(pieces) == whole
    rows = list(csv.reader(io.StringIO(whole)))
    assert rows[0] == [*report.COLUMNS, *report.FIGURES]
    assert {len(r) for r in rows} == {len(rows[0])}
    with pytest.raises(report.ReportError, match="unknown format"):
        [p async for p in report.stream_report(service, cycle="2026-Q4", fmt="xml")]


def test_the_cli_writes_the_whole_report_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("PERFLOOP_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERFLOOP_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    assert main(["migrate"]) == 0
    (tmp_path / "org.csv").write_text(GOOD + "人事部,hr1,陈人事,boss,,hr_admin,,\n", encoding="utf-8")
    assert main(["org", "import", "org.csv"]) == 0
    assert main(["kickoff", "2026-Q1", "--hr", "hr1", "--allow-past"]) == 0
    monkeypatch.setattr(report, "STREAM_ROWS", 1)
    out = tmp_path / "q1.csv"
    assert main(["report", "--cycle", "2026-Q1", "--output", str(out)]) == 0
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[0][: len(report.COLUMNS)] == list(report.COLUMNS) and len(rows) > 3
    assert not (tmp_path / "q1.csv.partial").exists()
    missing = tmp_path / "none.csv"
    assert main(["report", "--cycle", "1999-Q9", "--output", str(missing)]) == 2
    assert not missing.exists() and not (tmp_path / "none.csv.partial").exists()
    assert "1999-Q9" in capsys.readouterr().err
