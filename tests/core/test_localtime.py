"""Local time: one rule turns a person into a zone and a local date, with one fallback for a bad zone name.

Before the re-layering, a person with an unknown zone got UTC in some flows, Asia/Shanghai in others and the
configured default in the scheduler; now every path answers with the configured default.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.core.config import Settings
from bot.core.context import Context
from bot.core.localtime import person_date, person_text, person_tz, person_zone
from cards.flow_common import local_time
from storage.models import Person, Workspace

# 2026-11-24 20:30 UTC: already the 25th in Shanghai (UTC+8), still the 24th in New York and in UTC, and
# the 25th in Auckland (UTC+13 in November).
LATE = datetime(2026, 11, 24, 20, 30, tzinfo=UTC)


def settings(default: str = "Pacific/Auckland") -> Settings:
    return Settings(schedule={"default_timezone": default})


def person(timezone: Any) -> Person:
    return Person(id=7, workspace_id=1, platform_user_id="u7", name="张三", timezone=timezone)


def context(who: Person, cfg: Settings) -> Context:
    return Context(
        session=None,  # type: ignore[arg-type]  # the local-time helpers never touch the database
        person=who,
        workspace=Workspace(id=1, platform="sim", app_id="a", name="w"),
        settings=cfg,
        now=LATE,
        outbox=None,  # type: ignore[arg-type]
    )


def test_a_known_zone_is_used_as_it_is() -> None:
    who = person("America/New_York")
    assert person_tz(who, settings()) == "America/New_York"
    assert person_zone(who, settings()) == ZoneInfo("America/New_York")
    assert person_date(who, LATE, settings()) == date(2026, 11, 24)
    assert person_text(who, LATE, settings()) == "2026-11-24 15:30"


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "", None, "../etc/passwd", "Asia/Shang hai"])
def test_an_unknown_zone_falls_back_to_the_configured_default(
    bad: Any, caplog: pytest.LogCaptureFixture
) -> None:
    who = person(bad)
    with caplog.at_level("WARNING", logger="perfloop.localtime"):
        assert person_tz(who, settings()) == "Pacific/Auckland"
    assert person_zone(who, settings()) == ZoneInfo("Pacific/Auckland")
    assert person_date(who, LATE, settings()) == date(2026, 11, 25)
    assert person_text(who, LATE, settings()) == "2026-11-25 09:30"
    # Not UTC (the cards' old fallback) and not a hard-coded Asia/Shanghai (the flows' old fallback).
    assert person_text(who, LATE, settings("UTC")) == "2026-11-24 20:30"
    assert person_text(who, LATE, settings("Asia/Shanghai")) == "2026-11-25 04:30"
    if bad:
        assert "unknown timezone" in caplog.text


def test_the_context_asks_the_same_rule() -> None:
    cfg = settings()
    sender, other = person("Nowhere/Atlantis"), person("America/New_York")
    ctx = context(sender, cfg)
    assert ctx.zone() == ZoneInfo("Pacific/Auckland")
    assert ctx.today() == date(2026, 11, 25)
    assert ctx.local_text(LATE) == "2026-11-25 09:30"
    assert ctx.zone(other) == ZoneInfo("America/New_York")
    assert ctx.today(other) == date(2026, 11, 24)
    assert ctx.day_of(datetime(2026, 11, 25, 6, 0, tzinfo=UTC), other) == date(2026, 11, 25)
    assert ctx.local_text(LATE, other) == "2026-11-24 15:30"


def test_cards_format_in_the_zone_they_are_given() -> None:
    assert local_time(LATE, ZoneInfo("Asia/Shanghai")) == "2026-11-25 04:30"
    assert local_time(LATE, UTC) == "2026-11-24 20:30"
