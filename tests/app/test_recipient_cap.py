"""The per-person message cap: a rolling minute and a rolling hour, and WeCom's ceilings (issue 16 #17)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.app.recipient_cap import PLATFORM_CEILINGS, RecipientCap

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_the_hourly_cap_defers_until_the_oldest_message_of_the_hour_ages_out() -> None:
    cap = RecipientCap(per_minute=0, per_hour=5)
    for i in range(5):
        assert cap.reserve("feishu", "u1", T0 + timedelta(minutes=10 * i)) is None
    wait = cap.reserve("feishu", "u1", T0 + timedelta(minutes=45))
    assert wait == 15 * 60  # the first message (at 0:00) leaves the hour at 1:00
    assert cap.reserve("feishu", "u2", T0 + timedelta(minutes=45)) is None  # others are not affected
    assert cap.reserve("feishu", "u1", T0 + timedelta(minutes=60)) is None


def test_a_multi_recipient_send_takes_a_slot_from_everyone_or_from_no_one() -> None:
    cap = RecipientCap(per_minute=2)
    assert cap.reserve("dingtalk", "u1", T0) is None
    assert cap.reserve("dingtalk", "u1", T0) is None
    assert cap.reserve_all("dingtalk", ["u2", "u1", "u3"], T0) == 60  # u1 is full: nothing is taken
    assert cap.reserve_all("dingtalk", ["u2", "u3"], T0) is None
    assert cap.reserve_all("dingtalk", ["u2", "u3"], T0) is None
    assert cap.reserve("dingtalk", "u2", T0) is not None and cap.reserve("dingtalk", "u3", T0) is not None


def test_the_minute_cap_still_applies_with_the_hourly_one() -> None:
    cap = RecipientCap(per_minute=2, per_hour=100)
    assert cap.reserve("feishu", "u1", T0) is None
    assert cap.reserve("feishu", "u1", T0 + timedelta(seconds=10)) is None
    assert cap.reserve("feishu", "u1", T0 + timedelta(seconds=20)) == 40
    assert cap.reserve("feishu", "u1", T0 + timedelta(seconds=60)) is None


def test_wecom_ceilings_hold_whatever_is_configured() -> None:
    per_minute, per_hour = PLATFORM_CEILINGS["wecom"]
    assert per_minute < 30 and per_hour < 1000  # WeCom drops beyond 30/min and 1,000/h per member
    for configured in (RecipientCap(0, 0), RecipientCap(1000, 100_000)):
        assert configured.limits("wecom") == (per_minute, per_hour)
        now = T0
        sent = 0
        for _ in range(34 * 60):  # try to send every second for 34 minutes
            if configured.reserve("wecom", "u1", now) is None:
                sent += 1
            now += timedelta(seconds=1)
        assert sent == min(per_hour, per_minute * 34)
    assert RecipientCap(10, 0).limits("wecom") == (10, per_hour)  # a lower setting is kept
    assert RecipientCap(0, 0).limits("feishu") == (0, 0)  # no ceiling where the platform has none


def test_the_minute_and_hour_hold_over_any_window() -> None:
    cap = RecipientCap(per_minute=0, per_hour=0)
    stamps: list[datetime] = []
    now = T0
    for _ in range(4 * 3600):
        if cap.reserve("wecom", "u1", now) is None:
            stamps.append(now)
        now += timedelta(seconds=1)
    for i, t in enumerate(stamps):
        assert sum(1 for s in stamps[i:] if s - t < timedelta(minutes=1)) <= 30
        assert sum(1 for s in stamps[i:] if s - t < timedelta(hours=1)) <= 1000
