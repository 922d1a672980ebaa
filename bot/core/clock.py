"""The one source of "now". Injected everywhere so tests and the demo's fast-forward control can move time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Wall clock plus an adjustable offset (the simulator's "fast-forward" moves the offset, not the OS)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


class FixedClock(Clock):
    """A clock that only moves when told to; for tests."""

    def __init__(self, at: datetime) -> None:
        super().__init__()
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at + self.offset

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)
        self.offset = timedelta(0)
