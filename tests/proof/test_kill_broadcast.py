"""A 10,000-person broadcast survives SIGKILL: every person sees the card exactly once (counted at the fake).

How exactly-once holds: outbox rows are claimed under a lease; a process killed mid-send leaves its claimed
rows in ``sending`` until the lease runs out, then the restarted process (or the other replica) claims and
sends them again. The resend carries the same ``task_id`` (derived from the outbox row id and the card) and
``enable_duplicate_check``, so WeCom shows nothing new. The kill is made to land while a send is on the wire:
the fake shows the message and the process dies before the answer reaches it, so at least one resend is
guaranteed and the duplicate check is really exercised.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import func, select

from adapters.wecom.adapter import WeComAdapter
from storage.db import session_factory
from storage.media import MediaStore
from storage.models import OutboxMessage
from tests.support.kill import (
    AGENT_ID,
    WECOM_SECRET,
    PerfloopProcess,
    WatchedWeCom,
    engine_for,
    fill_fake,
    free_port,
    seed_wecom_org,
    user_ids,
    wait_until,
    wecom_config,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

PEOPLE = 10_000
PER_CALL = 100  # 100 outbox rows of 100 recipients
RATE = 10.0  # sends per second per process: the run takes ~10 s, so a kill lands midway


async def _outbox_status(url: str) -> dict[str, int]:
    engine = engine_for(url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
            return {status: int(n) for status, n in rows.all()}
    finally:
        await engine.dispose()


async def _prepare(tmp_path: Path, db_url: str) -> tuple[WatchedWeCom, list[str], Path, dict[str, str]]:
    ids = user_ids(PEOPLE)
    fake = WatchedWeCom(secret=WECOM_SECRET)
    fill_fake(fake, ids)
    await fake.start()
    engine = engine_for(db_url)
    try:
        rows = await seed_wecom_org(engine, ids, broadcast_per_call=PER_CALL, now=datetime.now(UTC))
    finally:
        await engine.dispose()
    assert rows == PEOPLE // PER_CALL
    config = write_config(tmp_path / "perfloop.toml", wecom_config(tmp_path, db_url, per_second=RATE))
    env = {"PERFLOOP_WECOM__API_BASE": fake.url, "PERFLOOP_WECOM__SECRET": WECOM_SECRET}
    return fake, ids, config, env


def _kill_on_send(
    fake: WatchedWeCom, victim: PerfloopProcess, *, after_rows: int, token: str | None = None
) -> list[int]:
    """Arm the fake: on the first send (by ``token``'s process, if given) once ``after_rows`` calls were
    shown, SIGKILL the victim before it gets the answer."""
    fired: list[int] = []

    def hook(request: web.Request) -> None:
        if fired or len(fake.shown) < after_rows:
            return
        if token is not None and request.query.get("access_token") != token:
            return
        fired.append(len(fake.shown))
        os.kill(victim.pid, signal.SIGKILL)

    fake.on_send = hook
    return fired


def _assert_everyone_once(fake: WatchedWeCom, ids: list[str]) -> None:
    counts = fake.shown_counts()
    missing = [u for u in ids if counts[u] == 0]
    twice = [u for u in ids if counts[u] > 1]
    assert not missing, f"{len(missing)} people never saw the card, e.g. {missing[:5]}"
    assert not twice, f"{len(twice)} people saw it more than once, e.g. {twice[:5]}"
    assert set(counts) == set(ids)


async def test_broadcast_killed_midway_reaches_everyone_exactly_once(tmp_path: Path, sqlite_url: str) -> None:
    fake, ids, config, env = await _prepare(tmp_path, sqlite_url)
    proc = PerfloopProcess(config=config, port=free_port(), log_path=tmp_path / "perfloop.log", env=env)
    try:
        fired = _kill_on_send(fake, proc, after_rows=30)
        proc.start()
        await proc.wait_healthy()
        await wait_until(lambda: fired, timeout=40, what="the kill midway through the broadcast")
        proc.proc.wait(timeout=10)  # type: ignore[union-attr]
        assert proc.proc.returncode == -signal.SIGKILL  # type: ignore[union-attr]
        shown_at_kill = len(fake.shown)
        assert 30 <= shown_at_kill < PEOPLE // PER_CALL, "the kill must land midway"
        assert (await _outbox_status(sqlite_url)).get("pending", 0) > 0

        fake.on_send = None
        proc.start()
        await proc.wait_healthy()
        await wait_until(
            lambda: len(fake.shown_counts()) == PEOPLE, timeout=60, what="every person to see the card"
        )
        await wait_until(lambda: _all_sent(sqlite_url), timeout=30, what="every outbox row recorded as sent")
        # The start-up org sync read the fake's 10,000-person department whole (it used to fail on it).
        await wait_until(lambda: '"org synced"' in proc.log_text(), timeout=30, what="the org sync")
        assert '"org sync failed"' not in proc.log_text()
    finally:
        proc.stop()
        await fake.close()
    _assert_everyone_once(fake, ids)
    # The send in flight at the kill (at least) was made again after the restart and hidden by the check.
    assert fake.suppressed() >= 1
    assert proc.starts == 2


async def test_org_sync_reads_a_10000_person_department_whole(tmp_path: Path) -> None:
    """A user/list answer of several MB arrives in many pieces; the client must read all of them."""
    fake = WatchedWeCom(secret=WECOM_SECRET)
    fill_fake(fake, user_ids(PEOPLE))
    await fake.start()
    adapter = WeComAdapter(
        corp_id=fake.corp_id,
        agent_id=AGENT_ID,
        secret=WECOM_SECRET,
        token=fake.token,
        encoding_aes_key=fake.encoding_aes_key,
        api_base=fake.url,
        link_url="https://perfloop.example.com",
        media=MediaStore(tmp_path / "media", max_bytes=1024 * 1024),
    )
    try:
        org = await adapter.list_org()
    finally:
        await adapter.close()
        await fake.close()
    assert len(org.members) == PEOPLE


async def _all_sent(url: str) -> bool:
    status = await _outbox_status(url)
    return set(status) == {"sent"}


async def test_two_replicas_on_postgresql_one_killed(tmp_path: Path, pg_database: str) -> None:
    from tests.conftest import _truncate_pg

    await _truncate_pg(pg_database)
    fake, ids, config, env = await _prepare(tmp_path, pg_database)
    a = PerfloopProcess(config=config, port=free_port(), log_path=tmp_path / "replica-a.log", env=env)
    b = PerfloopProcess(config=config, port=free_port(), log_path=tmp_path / "replica-b.log", env=env)
    try:
        a.start()
        await a.wait_healthy()
        await wait_until(lambda: fake.token_order(), timeout=20, what="replica A's first send")
        token_a = fake.token_order()[0]
        b.start()
        await b.wait_healthy()
        await wait_until(lambda: len(fake.token_order()) >= 2, timeout=20, what="replica B's first send")
        token_b = fake.token_order()[1]
        # Kill A while one of its sends is on the wire, once B is sending too.
        fired = _kill_on_send(fake, a, after_rows=len(fake.shown) + 10, token=token_a)
        await wait_until(lambda: fired, timeout=30, what="replica A to be killed mid-send")
        a.proc.wait(timeout=10)  # type: ignore[union-attr]
        fake.on_send = None
        assert len(fake.shown) < PEOPLE // PER_CALL, "the kill must land midway"
        await wait_until(
            lambda: len(fake.shown_counts()) == PEOPLE, timeout=60, what="replica B to finish the broadcast"
        )
        await wait_until(lambda: _all_sent(pg_database), timeout=30, what="every outbox row recorded")
        assert b.proc is not None and b.proc.poll() is None, "the survivor kept running"
    finally:
        a.stop()
        b.stop()
        await fake.close()
    _assert_everyone_once(fake, ids)
    assert fake.suppressed() >= 1
    assert fake.sends_by_token[token_a] > 0 and fake.sends_by_token[token_b] > 0, "both replicas sent"
