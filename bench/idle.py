"""Memory of an idle service: ``perfloop run`` with WeCom, Feishu and DingTalk enabled, doing nothing.

    python bench/idle.py [--seconds 30] [--people 0] [--tree PATH ...] [--json bench/results/idle.json]

Each tree (default: this checkout; ``--tree /tmp/before`` adds another, e.g. a ``git worktree`` of the
previous commit, measured the same way in the same run) gets a fresh SQLite database migrated by its own
code and a config enabling all three platforms in their default modes (WeCom; Feishu webhook; DingTalk
Stream, which opens its long connection at start). Their API hosts point at a closed local port, so the
start-up org sync and the Stream connection fail and retry quietly: nothing arrives, nothing is sent. The
service runs as a child process (the command an operator runs); after ``--seconds`` its RSS and peak RSS
(``VmHWM``) are read from ``/proc``. Target: < 120 MB.

With ``--people N`` the database holds the company of ``bench/wave.py`` (N people, their goals, action
items and scheduler ledger) and the scheduler ticks every 5 s, so the figure includes idle ticks over a
company of that size (nothing due: the wave has not come yet).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, load_average  # noqa: E402

DEAD = "http://127.0.0.1:9"
"""The discard port: connections are refused at once."""


def config(db: Path, media: Path, port: int, tick_seconds: int) -> str:
    return f"""
[server]
host = "127.0.0.1"
port = {port}
public_url = "https://perfloop.example.com"
log_level = "WARNING"
[database]
url = "sqlite+aiosqlite:///{db}"
[media]
dir = "{media}"
[schedule]
tick_seconds = {tick_seconds}
[wecom]
enabled = true
api_base = "{DEAD}"
corp_id = "ww0001"
agent_id = 1000002
secret = "wecom-secret"
token = "wecom-token"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
[feishu]
enabled = true
api_base = "{DEAD}"
app_id = "cli_bench"
app_secret = "feishu-secret"
verification_token = "feishu-token"
encrypt_key = "feishu-key"
[dingtalk]
enabled = true
api_base = "{DEAD}"
oapi_base = "{DEAD}"
app_key = "dingbench"
app_secret = "dingtalk-secret"
robot_code = "dingbench"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def run_tree(tree: Path, seconds: float, people: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFLOOP_")}
    env["PYTHONPATH"] = str(tree)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "idle.db"
        cfg = Path(tmp) / "perfloop.toml"
        port = free_port()
        cfg.write_text(config(db, Path(tmp) / "media", port, 5 if people else 120))
        cli = [sys.executable, "-m", "bot.app.cli", "--config", str(cfg)]
        subprocess.run([*cli, "migrate"], cwd=tree, env=env, check=True, capture_output=True)
        if people:
            from bench import wave

            asyncio.run(wave.seed(f"sqlite+aiosqlite:///{db}", people, items=True))
        log = open(Path(tmp) / "run.log", "wb")
        load = load_average()
        proc = subprocess.Popen([*cli, "run"], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            started = time.monotonic()
            samples = []
            while time.monotonic() - started < seconds:
                time.sleep(1)
                if proc.poll() is not None:
                    raise RuntimeError(f"perfloop run exited: {(Path(tmp) / 'run.log').read_text()[-3000:]}")
                samples.append(status(proc.pid)["VmRSS"])
            final = status(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    return {
        "tree": str(tree),
        "people": people,
        "seconds": seconds,
        "rss_mb": final["VmRSS"],
        "peak_rss_mb": final["VmHWM"],
        "anon_mb": final.get("RssAnon"),
        "file_mb": final.get("RssFile"),
        "rss_first_mb": samples[0] if samples else None,
        "load": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--people", type=int, default=0)
    parser.add_argument("--tree", type=Path, action="append", help="another checkout to measure (repeatable)")
    parser.add_argument("--json", type=Path, default=RESULTS / "idle.json")
    args = parser.parse_args()
    trees = [*(args.tree or []), ROOT]
    results = [run_tree(t.resolve(), args.seconds, args.people) for t in trees]
    print(f"\nidle perfloop run, WeCom + Feishu (webhook) + DingTalk (Stream), {args.people:,} people")
    print(f"{'tree':<28}{'RSS MB':>9}{'peak MB':>9}{'anon MB':>9}{'file MB':>9}  load")
    for r in results:
        print(
            f"{Path(r['tree']).name[:27]:<28}{r['rss_mb']:>9.1f}{r['peak_rss_mb']:>9.1f}"
            f"{r['anon_mb']:>9.1f}{r['file_mb']:>9.1f}  {r['load']}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"at": datetime.now(UTC).isoformat(), "results": results}, indent=2) + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
