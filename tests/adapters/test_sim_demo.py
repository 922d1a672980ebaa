"""The demo: a believable seeded organisation, and ``run_demo`` starting a working simulator from scratch."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from bot.app.demo import current_quarter, play_peer_round, seed_demo
from bot.app.service import Service
from bot.core.localtime import local_today
from storage.models import Cycle, CycleParticipant, Department, Person, Workspace
from tests.support.browser import SimServer, eventually

PEER_ROUND_MANAGER = "zhaolei"

CJK_NAME = re.compile(r"^[\u4e00-\u9fff]{2,3}$")


async def test_seed_builds_a_believable_organisation(service: Service) -> None:
    async with service.factory() as session, session.begin():
        await seed_demo(session)
        await seed_demo(session)  # a second run leaves a seeded workspace alone
    async with service.factory() as session:
        ws = await session.scalar(
            select(Workspace).where(Workspace.platform == "sim", Workspace.app_id == "sim")
        )
        assert ws is not None
        people = list(await session.scalars(select(Person).where(Person.workspace_id == ws.id)))
        departments = list(await session.scalars(select(Department).where(Department.workspace_id == ws.id)))
    by_id = {p.id: p for p in people}
    assert len(people) == 40
    assert all(CJK_NAME.match(p.name) for p in people)
    assert len({p.name for p in people}) == 40
    assert sorted(d.name for d in departments) == sorted(["研发部", "销售部", "市场部", "职能部"])

    roles = Counter(r for p in people for r in p.role_set)
    assert roles["leader"] == 2 and roles["hr_admin"] == 1 and roles["hrbp"] == 4 and roles["employee"] == 40
    hrbps = {p.id for p in people if p.has_role("hrbp")}
    for dept in departments:
        head = by_id[dept.head_id] if dept.head_id else None
        assert head is not None and head.has_role("manager") and head.department_id == dept.id
        assert dept.hrbp_id in hrbps
        members = [p for p in people if p.department_id == dept.id]
        assert len(members) >= 7
        # everyone in a department has that department's HRBP, except the HRBP, who is covered by a colleague
        assert all(p.hrbp_id == dept.hrbp_id for p in members if p.id != dept.hrbp_id)
        assert by_id[dept.hrbp_id].hrbp_id in hrbps - {dept.hrbp_id}

    # one top, everybody else reaches the top through managers without a cycle
    tops = [p for p in people if p.manager_id is None]
    assert [p.name for p in tops] == ["刘建国"] and tops[0].has_role("leader")
    for p in people:
        seen: set[int] = set()
        cursor = p
        while cursor.manager_id is not None:
            assert cursor.id not in seen
            seen.add(cursor.id)
            cursor = by_id[cursor.manager_id]
        assert cursor is tops[0]
    # "manager" is exactly the set of people with direct reports
    managers = {p.manager_id for p in people if p.manager_id}
    assert {p.id for p in people if p.has_role("manager")} == managers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_demo_starts_fresh_and_prints_the_url(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    db.write_bytes(b"an old demo database that must be replaced")
    port = _free_port()
    code = f"from bot.app.demo import run_demo; run_demo({str(db)!r}, '127.0.0.1', {port})"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = f"http://127.0.0.1:{port}/sim"
        assert url in first, first + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200 and "perfloop 模拟器" in resp.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/sim/api/people", timeout=5) as resp:
            assert len(json.load(resp)["people"]) == 40
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/callbacks/sim",
            data=json.dumps({"type": "text", "user": "zhoujie", "text": "/help"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert json.load(resp)["ok"] is True
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(f"{url}/api/messages?user=zhoujie", timeout=5) as resp:
                kinds = [m["sender"] for m in json.load(resp)["messages"]]
            if kinds == ["user", "bot"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert kinds == ["user", "bot"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


async def test_peer_round_plays_in_this_quarters_cycle(sim_server: SimServer) -> None:
    """``perfloop demo --peer-round`` starts the current quarter (step 1 of the README) and plays the round
    in it: no made-up cycle beside it that the walk-through's kickoff would warn about (issue 15 #17)."""
    service = sim_server.service
    today = local_today(service.clock.now(), service.settings.schedule.default_timezone)
    await play_peer_round(service, asyncio.Event())
    async with service.factory() as session:
        cycles = list(await session.scalars(select(Cycle)))
        participants = await session.scalar(select(func.count()).select_from(CycleParticipant))
    assert [(c.code, c.status) for c in cycles] == [(current_quarter(today), "active")]
    assert participants == 40

    async def aggregate_for_manager() -> bool:
        titles = [
            m.card["header"]["title"]
            for m in sim_server.adapter.conversations.messages(PEER_ROUND_MANAGER)
            if m.card is not None
        ]
        return any("周杰" in t and current_quarter(today) in t for t in titles[1:])

    service.outbox.notify()
    await eventually(aggregate_for_manager)
