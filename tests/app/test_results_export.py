"""The results export (issue 20 #3): exact columns and values on a hand-built cycle (CSV and XLSX), the
grade → coefficient table, the appeal column, paging, and the CLI's exit codes and messages."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import event, select

from bot.app.cli import main
from bot.app.results import COLUMNS, ResultsError, export_results, result_rows
from bot.app.service import Service
from bot.core.config import ConfigError, Settings, load_settings
from storage.models import Cycle, GoalVersion, Grade, GradeAppeal, PeerFeedback, Person, ResultFlag
from storage.queries.results import manager_score
from tests.support.factories import Org
from tests.support.flows3 import make_cycle

RELEASED = datetime(2026, 12, 20, 8, 0, tzinfo=UTC)
CORRECTED = datetime(2026, 12, 22, 9, 30, tzinfo=UTC)

HEADER = [
    "cycle",
    "person_id",
    "platform_user_id",
    "name",
    "active",
    "department",
    "manager",
    "manager_platform_user_id",
    "grade",
    "grade_status",
    "released_at",
    "corrected_at",
    "score",
    "coefficient",
    "promotion",
    "high_potential",
    "appeal_status",
    "goal_version",
]
"""Pinned here, not imported: renaming or moving a column breaks HRIS imports, so it must break this test."""


async def seed(service: Service, org: Org) -> Cycle:
    """2026-Q4 with 王经理 (no grade), 张三 (A released and corrected, both flags, manager scores 4/5/3/5,
    an appeal withdrawn then one upheld), 李四 (B proposed), 周销售 (C released, high potential, an appeal
    open, moved to 研发部 after grading); plus 2026-Q3 where 张三 has a released D and a promotion flag."""
    q4 = await make_cycle(
        service, [org.manager, org.emp1, org.emp2, org.seller], goals=False, status="closed"
    )
    q3 = await make_cycle(service, [org.emp1], code="2026-Q3", goals=False, status="closed")
    async with service.factory() as s, s.begin():

        def grade(cycle: Cycle, person: Person, value: str, status: str, dept: int, **kw: Any) -> Grade:
            row = Grade(
                cycle_id=cycle.id, person_id=person.id, department_id=dept, grade=value, status=status, **kw
            )
            s.add(row)
            return row

        a = grade(q4, org.emp1, "A", "released", org.rnd.id, released_at=RELEASED, corrected_at=CORRECTED)
        grade(q4, org.emp2, "B", "proposed", org.rnd.id)
        c = grade(q4, org.seller, "C", "released", org.sales.id, released_at=RELEASED)
        grade(q3, org.emp1, "D", "released", org.rnd.id, released_at=RELEASED)
        await s.flush()
        scores = {"responsiveness": 4, "quality": 5, "collaboration": 3, "ownership": 5}
        s.add(
            PeerFeedback(
                cycle_id=q4.id,
                subject_id=org.emp1.id,
                rater_id=org.manager.id,
                role="manager",
                status="answered",
                scores=scores,
            )
        )
        s.add(
            PeerFeedback(
                cycle_id=q4.id,
                subject_id=org.emp2.id,
                rater_id=org.emp1.id,
                role="peer",
                status="answered",
                scores=scores,
            )
        )  # a peer's scores are not the score
        for cycle, person, kind in (
            (q4, org.emp1, "promotion"),
            (q4, org.emp1, "high_potential"),
            (q4, org.seller, "high_potential"),
            (q3, org.emp1, "promotion"),
        ):
            s.add(ResultFlag(cycle_id=cycle.id, person_id=person.id, kind=kind, set_by_id=org.hr.id))
        for g, person, status in (
            (a, org.emp1, "withdrawn"),
            (a, org.emp1, "upheld"),
            (c, org.seller, "open"),
        ):
            s.add(
                GradeAppeal(
                    grade_id=g.id,
                    cycle_id=q4.id,
                    person_id=person.id,
                    reason="理由",
                    status=status,
                    grade_before=g.grade,
                    open_grade_id=g.id if status == "open" else None,
                )
            )
            await s.flush()
        seller = await s.get(Person, org.seller.id)
        assert seller is not None
        seller.department_id = org.rnd.id  # the export keeps the department the grade was given in
        # 张三's goals: confirmed (v1), adjusted in November (v2), an adjustment still waiting (v3), and one
        # approved after the cycle's last day (v4, not in force on it); the column shows v2.
        for number, status, effective in (
            (1, "approved", datetime(2026, 10, 5, tzinfo=UTC)),
            (2, "approved", datetime(2026, 11, 3, tzinfo=UTC)),
            (3, "returned", None),
            (4, "approved", datetime(2027, 1, 2, tzinfo=UTC)),
        ):
            s.add(
                GoalVersion(
                    cycle_id=q4.id,
                    person_id=org.emp1.id,
                    version=number,
                    status=status,
                    effective_from=effective,
                )
            )
    return q4


def expected(org: Org, *, unreleased: bool) -> list[dict[str, str]]:
    base = {"cycle": "2026-Q4", "active": "true", "corrected_at": "", "score": "", "goal_version": ""}
    manager = base | {
        "person_id": str(org.manager.id), "platform_user_id": "mgr", "name": "王经理", "department": "研发部",
        "manager": "刘总", "manager_platform_user_id": "leader", "grade": "", "grade_status": "ungraded",
        "released_at": "", "coefficient": "", "promotion": "false", "high_potential": "false",
        "appeal_status": "",
    }  # fmt: skip
    emp1 = base | {
        "person_id": str(org.emp1.id), "platform_user_id": "emp1", "name": "张三", "department": "研发部",
        "manager": "王经理", "manager_platform_user_id": "mgr", "grade": "A", "grade_status": "released",
        "released_at": "2026-12-20T08:00:00+00:00", "corrected_at": "2026-12-22T09:30:00+00:00",
        "score": "4.25", "coefficient": "1.2", "promotion": "true", "high_potential": "true",
        "appeal_status": "upheld", "goal_version": "2",
    }  # fmt: skip
    emp2 = base | {
        "person_id": str(org.emp2.id), "platform_user_id": "emp2", "name": "李四", "department": "研发部",
        "manager": "王经理", "manager_platform_user_id": "mgr", "grade": "B", "grade_status": "proposed",
        "released_at": "", "coefficient": "1", "promotion": "false", "high_potential": "false",
        "appeal_status": "",
    }  # fmt: skip
    seller = base | {
        "person_id": str(org.seller.id), "platform_user_id": "seller", "name": "周销售",
        "department": "销售部", "manager": "孙经理", "manager_platform_user_id": "smgr", "grade": "C",
        "grade_status": "released",
        "released_at": "2026-12-20T08:00:00+00:00", "coefficient": "0.8", "promotion": "false",
        "high_potential": "true", "appeal_status": "open",
    }  # fmt: skip
    return [manager, emp1, emp2, seller] if unreleased else [emp1, seller]


async def export(service: Service, settings: Settings, fmt: str = "csv", **kw: Any) -> bytes:
    out = io.BytesIO()
    await export_results(service.factory, settings, cycle="2026-Q4", fmt=fmt, out=out, **kw)
    return out.getvalue()


def read_csv(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    assert data.startswith(b"\xef\xbb\xbf")  # the byte-order mark Excel needs for Chinese names
    text = data.decode("utf-8-sig")
    assert "\r\n" in text
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    return header, [dict(zip(header, r, strict=True)) for r in reader]


@pytest.mark.parametrize("unreleased", [False, True])
async def test_csv_columns_and_values(
    service: Service, org: Org, settings: Settings, unreleased: bool
) -> None:
    await seed(service, org)
    header, got = read_csv(await export(service, settings, include_unreleased=unreleased))
    assert header == HEADER == list(COLUMNS)
    assert got == expected(org, unreleased=unreleased)


async def test_xlsx_holds_the_same_rows_with_types(service: Service, org: Org, settings: Settings) -> None:
    await seed(service, org)
    book = load_workbook(io.BytesIO(await export(service, settings, "xlsx", include_unreleased=True)))
    sheet = book["results"]
    [header, *values] = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header == HEADER
    got = [dict(zip(header, r, strict=True)) for r in values]
    assert [r["person_id"] for r in got] == [org.manager.id, org.emp1.id, org.emp2.id, org.seller.id]
    emp1 = got[1]
    assert (emp1["score"], emp1["coefficient"], emp1["promotion"], emp1["high_potential"]) == (
        4.25,
        1.2,
        True,
        True,
    )
    assert (emp1["released_at"], emp1["active"], emp1["name"]) == ("2026-12-20T08:00:00+00:00", True, "张三")
    assert (emp1["goal_version"], got[0]["goal_version"]) == (2, None)
    assert (got[0]["grade"], got[0]["coefficient"], got[0]["grade_status"]) == (None, None, "ungraded")
    as_text = [{k: _as_csv(v) for k, v in r.items()} for r in got]
    assert as_text == expected(org, unreleased=True)


def _as_csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


async def test_text_that_looks_like_a_formula_stays_text(
    service: Service, org: Org, settings: Settings
) -> None:
    await seed(service, org)
    async with service.factory() as s, s.begin():
        emp1 = await s.get(Person, org.emp1.id)
        assert emp1 is not None
        emp1.name = '=HYPERLINK("http://x")'
    _, got = read_csv(await export(service, settings))
    assert got[0]["name"] == '\'=HYPERLINK("http://x")'
    book = load_workbook(io.BytesIO(await export(service, settings, "xlsx")))
    cell = book["results"]["D2"]
    assert (cell.value, cell.data_type) == ('=HYPERLINK("http://x")', "s")


async def test_configured_coefficients_are_used(service: Service, org: Org, settings: Settings) -> None:
    await seed(service, org)
    settings.results.coefficients = {"A": 1.5, "B": 1.0, "C": 0.75, "D": 0}
    _, got = read_csv(await export(service, settings))
    assert [r["coefficient"] for r in got] == ["1.5", "0.75"]


def test_a_grade_without_a_coefficient_stops_the_config_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("PERFLOOP_"):
            monkeypatch.delenv(key)
    path = tmp_path / "perfloop.toml"
    path.write_text(
        '[feedback]\ngrade_scale = ["S", "A", "B", "C"]\n'
        "[results]\ncoefficients = { S = 1.5, A = 1.2, B = 1 }\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert (
        str(err.value)
        == "config error: results.coefficients: no coefficient for grade C (grade_scale is S, A, B, C)"
    )
    path.write_text("[results]\ncoefficients = { A = 1.2, B = 1, C = 0.8, D = 0, E = 0 }\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"results\.coefficients: E not in grade_scale"):
        load_settings(path)
    path.write_text("[results]\ncoefficients = { A = -1, B = 1, C = 0.8, D = 0 }\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"results\.coefficients: A = -1\.0 is out of range"):
        load_settings(path)
    path.write_text('[feedback]\ngrade_scale = ["S", "A", "B"]\n', encoding="utf-8")
    assert load_settings(path).results.table(["S", "A", "B"]) is None  # unset: the rest of the service runs


async def test_without_a_table_for_the_scale_the_export_refuses(
    service: Service, org: Org, settings: Settings
) -> None:
    await seed(service, org)
    settings.feedback.grade_scale = ["S", "A", "B", "C", "D"]
    with pytest.raises(ResultsError, match=r"grade scale S, A, B, C, D: set \[results\] coefficients"):
        await export(service, settings)


async def test_a_stored_grade_missing_from_the_table_refuses_before_writing(
    service: Service, org: Org, settings: Settings
) -> None:
    cycle = await seed(service, org)
    async with service.factory() as s, s.begin():
        s.add(Grade(cycle_id=cycle.id, person_id=org.manager.id, grade="E", status="released"))
    out = io.BytesIO()
    with pytest.raises(ResultsError, match=r"cycle '2026-Q4' has grade E without a coefficient"):
        await export_results(service.factory, settings, cycle="2026-Q4", fmt="xlsx", out=out)
    assert out.getvalue() == b""


def test_manager_score_is_the_mean_of_valid_dimensions() -> None:
    assert manager_score({"responsiveness": 4, "quality": 5, "collaboration": 3, "ownership": 5}) == 4.25
    assert manager_score({"quality": 3, "ownership": 9, "other": 1}) == 3.0
    assert manager_score({"quality": 2, "ownership": 3, "collaboration": 3}) == 2.67
    assert manager_score({}) is None


async def test_rows_are_read_page_by_page(service: Service, org: Org, settings: Settings) -> None:
    """120 graded people with a page size of 25: 5 pages of 5 statements each (the page's four, and the goal
    versions in force) and one up-front check; the first row arrives after the first page, before the rest
    is read."""
    async with service.factory() as s, s.begin():
        cycle = Cycle(workspace_id=org.workspace.id, code="2026-Q4", status="closed")
        s.add(cycle)
        people = [
            Person(workspace_id=org.workspace.id, platform_user_id=f"p{i:03}", name=f"员工{i:03}")
            for i in range(120)
        ]
        s.add_all(people)
        await s.flush()
        s.add_all(
            Grade(
                cycle_id=cycle.id,
                person_id=p.id,
                grade="ABCD"[i % 4],
                status="released",
                released_at=RELEASED,
            )
            for i, p in enumerate(people)
        )
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(service.engine.sync_engine, "before_cursor_execute", count)
    try:
        rows = result_rows(service.factory, settings, cycle, page_size=25)
        first = await anext(rows)
        assert first["platform_user_id"] == "p000"
        assert len(statements) == 1 + 5  # the grade check, then one page
        rest = [r async for r in rows]
    finally:
        event.remove(service.engine.sync_engine, "before_cursor_execute", count)
    assert [r["platform_user_id"] for r in [first, *rest]] == [f"p{i:03}" for i in range(120)]
    assert len(statements) == 1 + 5 * 5
    people_pages = [s for s in statements if "FROM people" in s and "LIMIT" in s.upper()]
    assert len(people_pages) == 5


# ----------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("PERFLOOP_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERFLOOP_DATABASE__URL", db_url)
    return tmp_path


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_cli_writes_csv_and_xlsx_files(
    service: Service, org: Org, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(service, org)
    assert await cli("results", "export", "--cycle", "2026-Q4", "--output", "q4.csv") == 0
    assert "exported 2 rows of cycle 2026-Q4 to q4.csv" in capsys.readouterr().err
    assert read_csv((cli_env / "q4.csv").read_bytes())[1] == expected(org, unreleased=False)
    assert await cli(
        "results", "export", "--cycle", "2026-Q4", "--format", "xlsx", "--output", "q4.xlsx",
        "--include-unreleased",
    ) == 0  # fmt: skip
    sheet = load_workbook(cli_env / "q4.xlsx")["results"]
    assert sheet.max_row == 5
    assert sorted(p.name for p in cli_env.iterdir() if p.suffix == ".part") == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cycle", "2030-Q1"], "error: no cycle with code '2030-Q1'; recent cycles: 2026-Q3, 2026-Q4"),
        (["--cycle", "2026-Q4", "--format", "pdf"], "error: unknown format 'pdf'; choose csv or xlsx"),
        (["--cycle", "2026-Q4", "--format", "xlsx"], "error: --format xlsx needs --output FILE"),
        (["--cycle", "2026-Q4", "--platform", "wecom"], "error: no workspace for platform 'wecom'"),
    ],
)
async def test_cli_export_refusals(
    service: Service,
    org: Org,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    await seed(service, org)
    assert await cli("results", "export", *argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    if "xlsx" not in argv:  # refused before a file is created, so no half file is left behind
        assert await cli("results", "export", *argv, "--output", "out.csv") == 2
        assert not (cli_env / "out.csv").exists() and not (cli_env / "out.csv.part").exists()


async def test_cli_flags(
    service: Service, org: Org, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_cycle(service, [org.emp1])
    assert await cli("results", "flag", "emp1", "promotion", "--hr", "hr") == 0
    assert capsys.readouterr().out.strip() == "已为 张三 标记晋升（2026-Q4）。"
    assert await cli("results", "flag", "emp1", "晋升") == 0
    assert "已有晋升标记" in capsys.readouterr().out
    assert await cli("results", "flag", "emp1", "high_potential", "--cycle", "2026-Q4") == 0
    async with service.factory() as s:
        got = [(f.kind, f.set_by_id) for f in await s.scalars(select(ResultFlag).order_by(ResultFlag.kind))]
    assert got == [("high_potential", None), ("promotion", org.hr.id)]
    assert await cli("results", "flag", "emp1", "promotion", "--unset", "--hr", "hr") == 0
    assert "已取消 张三 的晋升标记" in capsys.readouterr().out
    for argv, message in (
        (["emp1", "promotion", "--hr", "emp2"], "error: 只有 HR 管理员可以标记晋升或高潜。"),
        (["emp1", "raise"], "error: unknown flag 'raise'; choose promotion or high_potential"),
        (["nobody", "promotion"], "error: no person with user id 'nobody'"),
        (["seller", "promotion"], "error: 周销售 没有进行中或已结束的考核周期，无法标记。"),
        (
            ["emp1", "promotion", "--cycle", "2099-Q1"],
            "error: 没有代码为 2099-Q1 的周期。最近的周期：2026-Q4",
        ),
    ):
        assert await cli("results", "flag", *argv) == 2
        err = capsys.readouterr().err
        assert message in err, err
    async with service.factory() as s:
        assert [f.kind for f in await s.scalars(select(ResultFlag))] == ["high_potential"]
