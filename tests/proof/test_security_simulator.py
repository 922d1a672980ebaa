"""Security review S8 (docs/security.md): the simulator lets anyone act as anyone, so ``perfloop run`` keeps
it off beside a real platform unless explicitly allowed, and refuses to expose it on a non-loopback address.
End to end: the real command, its exit status, and what its HTTP port serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.kill import ROOT, WECOM_SECRET, PerfloopProcess, free_port, wecom_config, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _run_once(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``perfloop run`` expected to refuse its configuration: it must exit by itself, quickly."""
    return subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "--config", str(config), "run"],
        cwd=config.parent,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _wecom(tmp_path: Path, sqlite_url: str, **sim: Any) -> dict[str, dict[str, Any]]:
    cfg = wecom_config(tmp_path, sqlite_url, per_second=10.0)
    cfg["wecom"]["api_base"] = "http://127.0.0.1:9"
    if sim:
        cfg["sim"] = sim
    return cfg


def test_simulator_beside_a_platform_is_refused_without_explicit_allow(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = write_config(tmp_path / "perfloop.toml", _wecom(tmp_path, sqlite_url, enabled=True))
    done = _run_once(config, {"PERFLOOP_WECOM__SECRET": WECOM_SECRET})
    assert done.returncode == 2
    assert "sim.allow_with_platforms" in done.stderr


def test_simulator_on_a_public_address_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(
        tmp_path / "perfloop.toml",
        {"server": {"host": "0.0.0.0", "port": free_port()}, "database": {"url": sqlite_url}},
    )
    done = _run_once(config, {})
    assert done.returncode == 2
    assert "sim.allow_remote" in done.stderr and "0.0.0.0" in done.stderr


async def _status(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status


async def _post_status(url: str, body: dict[str, Any]) -> int:
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        return resp.status


@pytest.mark.parametrize(
    ("sim", "served"),
    [({}, False), ({"enabled": True, "allow_with_platforms": True}, True)],
    ids=["platform-only", "explicitly-allowed"],
)
async def test_simulator_routes_only_when_allowed(
    tmp_path: Path, sqlite_url: str, sim: dict[str, Any], served: bool
) -> None:
    config = write_config(tmp_path / "perfloop.toml", _wecom(tmp_path, sqlite_url, **sim))
    proc = PerfloopProcess(
        config=config,
        port=free_port(),
        log_path=tmp_path / "perfloop.log",
        env={"PERFLOOP_WECOM__SECRET": WECOM_SECRET},
    )
    try:
        proc.start()
        await proc.wait_healthy()
        page = await _status(f"{proc.url}/sim")
        act = await _post_status(f"{proc.url}/callbacks/sim", {"type": "text", "user": "u1", "text": "/help"})
    finally:
        proc.stop()
    if served:
        assert page == 200 and act == 200
    else:
        assert page == 404 and act == 404


async def test_default_run_binds_loopback_only(tmp_path: Path, sqlite_url: str) -> None:
    """No platform, no host configured: the simulator is on and the socket is bound to 127.0.0.1 only."""
    config = write_config(tmp_path / "perfloop.toml", {"database": {"url": sqlite_url}})
    proc = PerfloopProcess(config=config, port=free_port(), log_path=tmp_path / "perfloop.log")
    try:
        proc.start()
        await proc.wait_healthy()
        assert await _status(f"{proc.url}/sim") == 200
        listening = _listening_addresses(proc.pid)
    finally:
        proc.stop()
    assert listening and all(addr.startswith("127.") for addr in listening), listening


def _listening_addresses(pid: int) -> list[str]:
    """Local addresses of the process's listening TCP sockets, from /proc (no extra tools needed)."""
    import os

    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            hexaddr = local.split(":")[0]
            if len(hexaddr) == 8:
                octets = [str(int(hexaddr[i : i + 2], 16)) for i in range(6, -1, -2)]
                out.append(".".join(octets))
            else:
                out.append("::" if set(hexaddr) == {"0"} else hexaddr)
    return out
