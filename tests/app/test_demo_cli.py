"""``perfloop demo`` / ``make demo`` as a newcomer meets them (issue 15 #16): the README's environment
overrides apply, a taken port is one clear line, ``--help`` documents the flags, and ``make demo`` installs
only what the demo needs."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app.demo import DemoError, current_quarter, demo_settings
from bot.core.config import Settings

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFLOOP_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def _demo(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.app.cli", "demo", "--db", str(tmp_path / "demo.db"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


def test_demo_listens_on_the_port_from_the_environment(tmp_path: Path) -> None:
    port = _free_port()
    proc = _demo(tmp_path, env=_env(PERFLOOP_SERVER__PORT=str(port)))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = f"http://127.0.0.1:{port}/sim"
        assert url in first, first + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200
        lines = [proc.stdout.readline() for _ in range(4)]
        # The walk-through's first step names the quarter the demo runs in, not a past one.
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
        assert any(f"/kickoff {current_quarter(today)}" in line and "周雅琴" in line for line in lines), lines
    finally:
        _stop(proc)


def test_current_quarter() -> None:
    assert [current_quarter(date(2026, m, 15)) for m in (1, 3, 4, 6, 7, 9, 10, 12)] == [
        "2026-Q1",
        "2026-Q1",
        "2026-Q2",
        "2026-Q2",
        "2026-Q3",
        "2026-Q3",
        "2026-Q4",
        "2026-Q4",
    ]


def test_the_port_flag_beats_the_environment(tmp_path: Path) -> None:
    port = _free_port()
    proc = _demo(tmp_path, "--port", str(port), env=_env(PERFLOOP_SERVER__PORT="1"))
    try:
        assert proc.stdout is not None
        assert f"http://127.0.0.1:{port}/sim" in proc.stdout.readline()
    finally:
        _stop(proc)


def test_a_port_in_use_is_one_line_naming_the_port_and_the_flag(tmp_path: Path) -> None:
    old = tmp_path / "demo.db"
    old.write_bytes(b"yesterday's demo")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _demo(tmp_path, "--port", str(port), env=_env())
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            _stop(proc)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(port) in lines[0] and "--port" in lines[0]
    assert "Traceback" not in err and "cannot reach a required service" not in err
    assert out == ""
    # Nothing started, so nothing was thrown away either.
    assert old.read_bytes() == b"yesterday's demo"


def test_demo_help_documents_host_port_and_db() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    for flag, words in (
        ("--host", "PERFLOOP_SERVER__HOST"),
        ("--port", "PERFLOOP_SERVER__PORT"),
        ("--db", "created afresh"),
    ):
        assert flag in text and words in text, (flag, text)


def test_a_bad_port_is_refused_by_the_parser() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "demo", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_env(),
    )
    assert proc.returncode == 2
    assert "--port" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_settings_keep_the_configuration_but_not_its_database(tmp_path: Path) -> None:
    base = Settings(
        database={"url": "postgresql+asyncpg://prod@db/perfloop"},
        server={"port": 18080},
        schedule={"default_timezone": "Europe/Berlin"},
        i18n={"default_locale": "en"},
        wecom={
            "enabled": True,
            "corp_id": "c",
            "agent_id": 1,
            "secret": "s",
            "token": "t",
            "encoding_aes_key": "k",
        },
    )
    settings = demo_settings(tmp_path / "d.db", base=base)
    assert settings.server.port == 18080 and settings.server.host == "127.0.0.1"
    assert settings.server.public_url == "http://127.0.0.1:18080"
    assert settings.database.url == f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    assert settings.schedule.default_timezone == "Europe/Berlin"
    assert settings.i18n.default_locale == "en"
    assert settings.sim_enabled and settings.enabled_platforms == []
    assert settings.schedule.tick_seconds == 10  # the demo's own default…
    tuned = Settings(schedule={"tick_seconds": 30})
    assert demo_settings(tmp_path / "d.db", base=tuned).schedule.tick_seconds == 30  # …unless configured
    assert demo_settings(tmp_path / "d.db", "127.0.0.2", 9001, base=base).server.port == 9001


def test_demo_refuses_a_public_address_without_allow_remote(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match=r"0\.0\.0\.0.*--host 127\.0\.0\.1"):
        demo_settings(tmp_path / "d.db", "0.0.0.0", 8080, base=Settings())
    allowed = demo_settings(tmp_path / "d.db", "0.0.0.0", 8080, base=Settings(sim={"allow_remote": True}))
    assert allowed.server.host == "0.0.0.0"


# ------------------------------------------------------------------ make demo / make test installs


def _make(venv: Path, target: str) -> list[str]:
    proc = subprocess.run(
        ["make", "-n", "-C", str(REPO), target, f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [line for line in proc.stdout.splitlines() if "pip install" in line]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_installs_without_the_dev_extra_and_make_test_with_it(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    demo = _make(venv, "demo")
    assert any(line.endswith("install -q -e .") for line in demo), demo
    assert not any("[dev]" in line for line in demo), demo
    assert any("'.[dev]'" in line for line in _make(venv, "pytest"))

    # After `make demo` the tests still need the dev extra…
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / ".installed-app").touch()
    assert _make(venv, "demo") == []
    assert any("'.[dev]'" in line for line in _make(venv, "pytest"))
    # …and after `make test` the demo needs nothing more, until pyproject.toml changes.
    (venv / ".installed-dev").touch()
    assert _make(venv, "pytest") == [] and _make(venv, "demo") == []
    older = (REPO / "pyproject.toml").stat().st_mtime - 60
    for stamp in (".installed-app", ".installed-dev"):
        os.utime(venv / stamp, (older, older))
    assert _make(venv, "demo") and _make(venv, "pytest")


def test_run_on_a_port_in_use_is_one_line_too(tmp_path: Path) -> None:
    """The sibling of the demo's fault: ``perfloop run`` on a taken port said "cannot reach a required
    service" with a traceback from a half-started service."""
    env = _env(PERFLOOP_DATABASE__URL=f"sqlite+aiosqlite:///{tmp_path / 'run.db'}")
    migrate = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "migrate"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert migrate.returncode == 0, migrate.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "bot.app.cli", "run"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**env, "PERFLOOP_SERVER__PORT": str(port), "PERFLOOP_SIM__ENABLED": "false"},
            cwd=tmp_path,
        )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(port) in lines[0] and "PERFLOOP_SERVER__PORT" in lines[0]
    assert "Traceback" not in proc.stderr and "cannot reach a required service" not in proc.stderr
