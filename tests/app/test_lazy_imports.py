"""An idle service does not carry what only some paths need (issue 22 #4: < 120 MB with three platforms).

A fresh interpreter builds the service as ``perfloop run`` does, WeCom, Feishu and DingTalk enabled, and
runs the start-up migration check; none of the heavy packages only some paths use may be loaded by then:
the WeCom SDK (its cipher is ``cryptography`` now), the DingTalk SDK (HTTP-mode event crypto), Pillow
(uploads), alembic (``perfloop migrate``), matplotlib (charts) and lark-oapi (Feishu's long connection).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from storage.db import migrate

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("wechatpy", "dingtalk", "PIL", "alembic", "mako", "pygments", "matplotlib", "lark_oapi", "requests")

PROBE = """
import asyncio, json, sys
from pathlib import Path
from bot.core.config import load_settings
from bot.app.http import create_app
from bot.app.service import build_service
from bot.app.cli import _add_background
from storage.db import create_engine, ensure_migrated

settings = load_settings(Path(sys.argv[1]))
service = build_service(settings)
_add_background(service)
create_app(service)

async def check():
    engine = create_engine(settings.database.url)
    await ensure_migrated(engine)
    await engine.dispose()

asyncio.run(check())
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""

CONFIG = """
[database]
url = "sqlite+aiosqlite:///{db}"
[media]
dir = "{media}"
[wecom]
enabled = true
api_base = "http://127.0.0.1:9"
corp_id = "ww0001"
agent_id = 1000002
secret = "s"
token = "t"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
[feishu]
enabled = true
api_base = "http://127.0.0.1:9"
app_id = "cli_x"
app_secret = "y"
verification_token = "v"
encrypt_key = "k"
[dingtalk]
enabled = true
api_base = "http://127.0.0.1:9"
oapi_base = "http://127.0.0.1:9"
app_key = "dingappkey0001"
app_secret = "app-secret-for-tests-0123456789abcdef"
robot_code = "dingappkey0001"
"""


async def test_starting_with_three_platforms_loads_none_of_the_heavy_packages(tmp_path: Path) -> None:
    db = tmp_path / "idle.db"
    await migrate(f"sqlite+aiosqlite:///{db}")
    config = tmp_path / "perfloop.toml"
    config.write_text(CONFIG.format(db=db, media=tmp_path / "media"), encoding="utf-8")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "aiohttp" in loaded and "sqlalchemy" in loaded  # the probe did build the service
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
