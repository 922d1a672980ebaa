from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app.cli import main

GOOD = """department,user_id,name,manager_id,hrbp_id,roles,timezone,locale
研发部,boss,刘总,,,employee;leader,,
研发部,mgr,王经理,boss,hrbp,manager,,
人事部,hrbp,赵伙伴,boss,,hrbp,,
研发部,emp1,张三,mgr,hrbp,,Asia/Shanghai,zh-CN
研发部,emp2,Li Si,mgr,hrbp,,Europe/Berlin,en
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import os

    for key in list(os.environ):
        if key.startswith("PERFLOOP_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "cli.db"
    monkeypatch.setenv("PERFLOOP_DATABASE__URL", f"sqlite+aiosqlite:///{db}")
    assert main(["migrate"]) == 0
    return tmp_path


def export(table: str, capsys: pytest.CaptureFixture[str], fmt: str = "csv") -> str:
    capsys.readouterr()
    assert main(["export", table, "--format", fmt]) == 0
    return capsys.readouterr().out


def test_org_import_then_export_round_trip(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "org.csv").write_text(GOOD, encoding="utf-8")
    assert main(["org", "import", "org.csv"]) == 0
    assert "imported 5 people" in capsys.readouterr().out
    people = {r["platform_user_id"]: r for r in csv.DictReader(io.StringIO(export("people", capsys)))}
    assert set(people) == {"boss", "mgr", "hrbp", "emp1", "emp2"}
    assert people["emp1"]["manager_id"] == people["mgr"]["id"]
    assert people["emp2"]["timezone"] == "Europe/Berlin" and people["emp2"]["locale"] == "en"
    assert "leader" in people["boss"]["roles"] and "manager" in people["boss"]["roles"]
    assert people["emp1"]["hrbp_id"] == people["hrbp"]["id"]
    depts = list(csv.DictReader(io.StringIO(export("departments", capsys))))
    assert sorted(d["name"] for d in depts) == ["人事部", "研发部"]
    as_json = json.loads(export("people", capsys, "json"))
    assert {p["name"] for p in as_json} == {"刘总", "王经理", "赵伙伴", "张三", "Li Si"}
    # Re-importing the same file changes nothing.
    assert main(["org", "import", "org.csv"]) == 0
    assert "+0" in capsys.readouterr().out
    assert len(list(csv.DictReader(io.StringIO(export("people", capsys))))) == 5


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("研发部,emp3,王五,nobody,,,,", "line 7: manager_id: no row with user_id 'nobody'"),
        ("研发部,emp3,王五,mgr,,boss,,", "line 7: roles: unknown role 'boss'"),
        ("研发部,emp3,王五,mgr,,,Mars/Base,", "line 7: timezone: unknown IANA timezone"),
        (",emp3,王五,mgr,,,,", "line 7: department:"),
        ("研发部,emp1,张三二,mgr,,,,", "line 7: user_id: 'emp1' already on line 5"),
    ],
)
def test_bad_row_imports_nothing(
    env: Path, capsys: pytest.CaptureFixture[str], bad_line: str, message: str
) -> None:
    (env / "org.csv").write_text(GOOD + bad_line + "\n", encoding="utf-8")
    assert main(["org", "import", "org.csv"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(csv.DictReader(io.StringIO(export("people", capsys)))) == []


def test_missing_file_and_missing_column(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["org", "import", "nope.csv"]) == 2
    assert "file not found" in capsys.readouterr().err
    (env / "x.csv").write_text("dept,user_id,name\nA,b,c\n", encoding="utf-8")
    assert main(["org", "import", "x.csv"]) == 2
    assert "missing column(s): department" in capsys.readouterr().err


def test_export_unknown_table(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "salaries"]) == 2
    err = capsys.readouterr().err
    assert "unknown table 'salaries'" in err and "people" in err


def test_doctor_against_unreachable_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERFLOOP_DATABASE__URL", "postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "[OK] config" in out
    assert "[FAIL] database" in out and "Traceback" not in out


def test_doctor_reports_unmigrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERFLOOP_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "[OK] database" in out and "[FAIL] migrations" in out and "perfloop migrate" in out


def test_export_refuses_unmigrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERFLOOP_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    assert main(["export", "people"]) == 2
    assert "run `perfloop migrate`" in capsys.readouterr().err


def test_help_for_every_command() -> None:
    for cmd in (
        ["--help"],
        ["run", "--help"],
        ["org", "import", "--help"],
        ["export", "--help"],
        ["doctor", "--help"],
        ["migrate", "--help"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "bot.app.cli", *cmd],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, (cmd, proc.stderr)
        assert "usage: perfloop" in proc.stdout


def test_run_refuses_unmigrated_database(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFLOOP_")}
    env["PERFLOOP_DATABASE__URL"] = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    env["PERFLOOP_SERVER__PORT"] = "18999"
    proc = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert proc.returncode == 2
    assert "run `perfloop migrate`" in proc.stderr and "Traceback" not in proc.stderr


def test_kickoff_from_the_cli(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "org.csv").write_text(GOOD + "人事部,hr1,陈人事,boss,,hr_admin,,\n", encoding="utf-8")
    assert main(["org", "import", "org.csv"]) == 0
    capsys.readouterr()
    assert main(["kickoff", "2026-Q1", "--departments", "研发部", "--hr", "hr1", "--allow-past"]) == 0
    assert "2026-Q1" in capsys.readouterr().out
    outbox = list(csv.DictReader(io.StringIO(export("outbox", capsys))))
    recipients = {r for row in outbox for r in json.loads(row["recipients"])}
    assert {"emp1", "emp2", "mgr"} <= recipients and "hrbp" not in recipients
    assert main(["kickoff", "2026-Q1", "--hr", "hr1"]) == 2
    assert "2026-Q1" in capsys.readouterr().err
    assert main(["kickoff", "2026-Q2", "--departments", "不存在部", "--hr", "hr1"]) == 2
    assert main(["kickoff", "2026-Q3", "--hr", "emp1"]) == 2


def test_schedule_lists_next_items(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "org.csv").write_text(GOOD, encoding="utf-8")
    assert main(["org", "import", "org.csv"]) == 0
    capsys.readouterr()
    assert main(["schedule", "--next", "5"]) == 0
    out = capsys.readouterr().out
    assert len([ln for ln in out.splitlines() if "Asia/Shanghai" in ln or "Europe/Berlin" in ln]) >= 1
    assert main(["schedule", "--next", "0"]) == 2


def test_report_for_a_cycle(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "org.csv").write_text(GOOD + "人事部,hr1,陈人事,boss,,hr_admin,,\n", encoding="utf-8")
    assert main(["org", "import", "org.csv"]) == 0
    assert main(["kickoff", "2026-Q1", "--hr", "hr1", "--allow-past"]) == 0
    capsys.readouterr()
    assert main(["report", "--cycle", "2026-Q1", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data
    assert main(["report", "--cycle", "2026-Q1", "--format", "csv"]) == 0
    assert "," in capsys.readouterr().out
    assert main(["report", "--cycle", "1999-Q9"]) == 2
    assert "1999-Q9" in capsys.readouterr().err


def test_run_serves_health_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    import os
    import signal
    import socket
    import time
    import urllib.request

    db = tmp_path / "run.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFLOOP_")}
    env["PERFLOOP_DATABASE__URL"] = f"sqlite+aiosqlite:///{db}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env["PERFLOOP_SERVER__PORT"] = str(port)
    subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "migrate"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=60,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.app.cli", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        body = b""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    body = resp.read()
                    break
            except OSError:
                time.sleep(0.2)
        assert json.loads(body)["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    messages = [line["msg"] for line in lines]
    assert "perfloop started" in messages and "perfloop stopped" in messages
    request = next(line for line in lines if line["msg"] == "request")
    assert request["path"] == "/healthz" and request["status"] == 200 and request["request_id"]


def test_person_export(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "org.csv").write_text(GOOD, encoding="utf-8")
    assert main(["org", "import", "org.csv"]) == 0
    capsys.readouterr()
    assert main(["person-export", "emp1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["person"]["name"] == "张三"
    assert main(["person-export", "nobody"]) == 2
    assert "no person" in capsys.readouterr().err
