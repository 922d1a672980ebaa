"""A company-wide kickoff survives SIGKILL while its participants are still being written (issue 22 #3).

The HR admin previews and confirms the kickoff in chat, exactly as on WeCom; ``perfloop run`` commits the
first chunk with the confirmation and its kickoff writer goes on a chunk per transaction while the outbox is
already sending. The process is killed part-way through the writing. After the restart the writer resumes
from its last commit: every person in scope becomes a participant once and sees the kickoff card once
(counted at the fake; a card cut off on the wire is resent with the same duplicate-check key and hidden).
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cards.actions import unpack
from cards.flow_actions import KickoffAck, KickoffConfirm
from storage.db import session_factory
from storage.models import Cycle, CycleParticipant, OutboxMessage
from tests.fakes.wecom import SentMessage
from tests.support.kill import (
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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PEOPLE = 3000
CHUNK = 20
KILL_AT = 5 * CHUNK  # participants written when the process is killed (at least)


def _keys(message: SentMessage) -> list[str]:
    return [str(b.get("key", "")) for b in message.card.get("button_list") or []]


def _has(message: SentMessage, kind: type) -> str | None:
    for key in _keys(message):
        try:
            if isinstance(unpack(key), kind):
                return key
        except ValueError:
            continue
    return None


def _kickoff_cards(fake: WatchedWeCom) -> Counter[str]:
    """Kickoff cards each person saw (resends hidden by the duplicate check do not count)."""
    counts: Counter[str] = Counter()
    for m in fake.shown:
        if _has(m, KickoffAck):
            counts.update(u for u in m.recipients if u not in m.invalid)
    return counts


async def _launch_state(url: str) -> tuple[int, int, int | None, dict[str, int]]:
    """(participants, distinct participants, the launch position, outbox rows by status)."""
    engine = engine_for(url)
    try:
        async with session_factory(engine)() as s:
            n = int(await s.scalar(select(func.count()).select_from(CycleParticipant)) or 0)
            distinct = int(await s.scalar(select(func.count(func.distinct(CycleParticipant.person_id)))) or 0)
            cycle = await s.scalar(select(Cycle).where(Cycle.status == "active"))
            rows = await s.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
            return n, distinct, cycle.launch_after if cycle else None, {k: int(v) for k, v in rows.all()}
    finally:
        await engine.dispose()


async def test_kickoff_killed_mid_launch_resumes_and_tells_everyone_once(
    tmp_path: Path, sqlite_url: str
) -> None:
    ids = user_ids(PEOPLE)
    hr = ids[0]
    fake = WatchedWeCom(secret=WECOM_SECRET)
    fill_fake(fake, ids)
    await fake.start()
    engine = engine_for(sqlite_url)
    try:
        await seed_wecom_org(engine, ids, hr_admins=[hr])
    finally:
        await engine.dispose()
    sections = {"cycles": {"kickoff_chunk": CHUNK}}
    config = write_config(
        tmp_path / "perfloop.toml",
        wecom_config(tmp_path, sqlite_url, per_second=2000.0, burst=50, sections=sections, batch_size=20),
    )
    env = {"PERFLOOP_WECOM__API_BASE": fake.url, "PERFLOOP_WECOM__SECRET": WECOM_SECRET}
    proc = PerfloopProcess(config=config, port=free_port(), log_path=tmp_path / "perfloop.log", env=env)
    try:
        proc.start()
        await proc.wait_healthy()
        status, _ = await fake.deliver(proc.url, fake.text_xml(hr, "/kickoff 2026-Q4"))
        assert status == 200
        await wait_until(
            lambda: any(hr in m.recipients and _has(m, KickoffConfirm) for m in fake.shown),
            timeout=30,
            what="the preview card",
        )
        preview = next(m for m in fake.shown if hr in m.recipients and _has(m, KickoffConfirm))
        key = _has(preview, KickoffConfirm)
        assert key is not None
        xml, _code = fake.click_xml(hr, preview, key)
        status, _ = await fake.deliver(proc.url, xml)
        assert status == 200

        # Kill it while the writer is part-way through the company.
        while True:
            written, _, position, _ = await _launch_state(sqlite_url)
            if written >= KILL_AT or (position is None and written):
                break
            await asyncio.sleep(0.02)
        proc.kill()
        assert proc.proc is not None and proc.proc.returncode == -signal.SIGKILL
        written, distinct, position, _ = await _launch_state(sqlite_url)
        assert position is not None and written < PEOPLE, "the kill must land while participants are written"
        assert written == distinct and written % CHUNK == 0, "a chunk is written whole or not at all"
        seen_at_kill = sum(_kickoff_cards(fake).values())
        assert 0 < seen_at_kill < PEOPLE, "cards were already going out while participants were written"

        proc.start()
        await proc.wait_healthy()

        async def finished() -> bool:
            n, d, pos, status = await _launch_state(sqlite_url)
            return n == d == PEOPLE and pos is None and set(status) == {"sent"}

        await wait_until(finished, timeout=120, what="the launch and its cards to finish")
        await wait_until(
            lambda: len(_kickoff_cards(fake)) == PEOPLE, timeout=30, what="every person to see the card"
        )
        await asyncio.sleep(0.5)  # a card sent twice would show up now
        assert '"kickoff written"' in proc.log_text(), "the restarted writer resumed the launch"
    finally:
        proc.stop()
        await fake.close()
    counts = _kickoff_cards(fake)
    assert set(counts) == set(ids)
    twice = [u for u, n in counts.items() if n > 1]
    assert not twice, f"{len(twice)} people saw the kickoff card more than once, e.g. {twice[:5]}"
    assert proc.starts == 2
    print(
        f"\nkickoff of {PEOPLE}: killed with {written} participants written and {seen_at_kill} cards seen; "
        f"resends hidden by the duplicate check {fake.suppressed()}"
    )
