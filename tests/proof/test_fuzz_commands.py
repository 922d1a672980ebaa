"""Arbitrary chat text through the dispatcher with every handler registered (all of ``handlers/``).

Properties, per message, from an employee, a manager and an HR admin of a seeded org:
- no exception escapes a handler (the dispatcher would log "handler failed" and answer the generic error);
- the sender always gets an answer (a toast or a card);
- no row appears anywhere but ``inbound_events`` (the message), ``outbox`` (the answer) and
  ``conversation_states`` (a question the bot now waits on). Typing garbage never creates a goal, a cycle,
  a kudos…
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.registry import AdapterRegistry
from bot.app.service import Service, build_service, collect_routers
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.events import TextMessage
from tests.fakes.recording import RecordingAdapter
from tests.support.edge import grown, table_counts
from tests.support.factories import Org, seed_org

pytestmark = pytest.mark.timeout(120)

ALLOWED = {"inbound_events", "outbox", "conversation_states"}
COMMANDS = sorted(collect_routers().commands)
_ids = itertools.count(1)


class _Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def chat(tmp_path: Path, sqlite_url: str, clock: FixedClock) -> AsyncIterator[tuple[Service, Org]]:
    settings_ = Settings(
        database={"url": sqlite_url}, media={"dir": tmp_path / "media"}, sim={"enabled": False}
    )
    registry = AdapterRegistry()
    registry.add(RecordingAdapter())
    service = build_service(settings_, clock=clock, registry=registry)
    async with service.factory() as session, session.begin():
        org = await seed_org(session, platform="rec", app_id="rec-app")
    yield service, org
    await service.close()


garbage_args = st.text(max_size=40) | st.sampled_from(
    [
        "",
        "@emp1",
        "@emp2 thanks!",
        "2026-12-01",
        "2026-12-01 2026-12-31",
        "-1",
        "999999999",
        "emp2",
        "'; drop",
    ]
)
free_text = (
    st.text(max_size=200) | st.sampled_from(["/", "//", "/unknown", "/cancel", "/取消", "1", "yes", "是"])
).filter(
    lambda t: t.strip()[1:].partition(" ")[0].lower() not in COMMANDS if t.strip().startswith("/") else True
)
commands = st.builds(lambda c, a: f"/{c} {a}".strip(), st.sampled_from(COMMANDS), garbage_args)

# What a command may legitimately write when its (random) arguments happen to make sense for the sender: the
# rows of its own purpose, nothing else; and any command may audit what it did or what was viewed.
_EFFECTS: list[tuple[list[str], frozenset[str]]] = [
    (["checkin", "签到"], frozenset({"checkins", "scheduled_sends"})),
    (["review", "复盘"], frozenset({"reviews_321"})),
    (["skip", "跳过"], frozenset({"scheduled_sends"})),
    (["kickoff", "启动周期", "cancelcycle", "取消周期"], frozenset({"cycles", "cycle_participants"})),
    (["kudos", "点赞", "感谢"], frozenset({"recognitions"})),
    (["action", "行动"], frozenset({"action_items"})),
    (["evidence", "证据", "photo"], frozenset({"evidence_requests"})),
    (["grade", "评级"], frozenset({"grades"})),
    (["peers", "互评", "feedback", "反馈"], frozenset({"peer_feedback"})),
    (["selfassess", "自评"], frozenset({"self_assessments"})),
    (["quiet", "免打扰", "pause", "暂停", "resume", "恢复", "leave", "请假"], frozenset({"quiet_hours"})),
    (["team", "团队"], frozenset({"team_settings"})),
]
COMMAND_EFFECTS: dict[str, frozenset[str]] = {name: tables for names, tables in _EFFECTS for name in names}

EXAMPLES = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def _say(service: Service, sender: str, texts: list[str]) -> dict[str, int]:
    failures = _Failures()
    logging.getLogger("perfloop").addHandler(failures)
    try:
        before = await table_counts(service)
        for text in texts:  # a short conversation: a command may open a question the next text answers
            await service.dispatcher.dispatch(
                TextMessage(
                    platform="rec",
                    workspace="rec-app",
                    event_id=f"fuzz-{next(_ids)}",
                    sender_id=sender,
                    text=text,
                )
            )
        after = await table_counts(service)
    finally:
        logging.getLogger("perfloop").removeHandler(failures)
    crashed = [r for r in failures.records if r.exc_info]
    assert not crashed, f"{crashed[0].getMessage()} for {texts!r}"
    rows = grown(before, after)
    assert rows.get("inbound_events") == len(texts)
    # Chat has no toasts: every message is answered by a message (help, a refusal, a question, a card).
    assert rows.get("outbox", 0) >= len(texts), f"{texts!r} left unanswered"
    return rows


@EXAMPLES
@given(st.sampled_from(["emp1", "mgr", "hr"]), st.lists(free_text, min_size=1, max_size=3))
async def test_any_free_text(chat: tuple[Service, Org], sender: str, texts: list[str]) -> None:
    """Nothing is open for anyone (no command ever runs here), so text can only be answered, never stored."""
    service, _org = chat
    rows = await _say(service, sender, texts)
    event(f"rows in {sorted(rows)}")
    assert set(rows) <= ALLOWED, f"{texts!r} wrote {rows}"


@EXAMPLES
@given(st.sampled_from(["emp1", "mgr", "hr"]), commands, st.lists(free_text, max_size=2))
async def test_any_command_arguments(
    chat: tuple[Service, Org], sender: str, command: str, then: list[str]
) -> None:
    service, _org = chat
    rows = await _say(service, sender, [command, *then])
    name = command[1:].partition(" ")[0]
    event(f"/{name}: rows in {sorted(rows)}")
    allowed = ALLOWED | {"audit_log"} | COMMAND_EFFECTS.get(name, frozenset())
    assert set(rows) <= allowed, f"{[command, *then]!r} wrote {rows}"
