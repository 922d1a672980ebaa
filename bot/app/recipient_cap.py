"""No person gets more than ``[outbox] per_person_per_minute`` bot messages a minute.

WeCom silently drops messages beyond roughly 30 a minute to one person, and a phone that buzzes twenty times
a minute is not a conversation. Sends past the cap are deferred, not lost: the outbox row waits until a
slot in that person's rolling minute frees up. The window is kept per process; with several replicas each
applies the cap to what it sends, which bounds the total by replicas × cap.
"""

from __future__ import annotations

from collections import defaultdict, deque
from datetime import datetime, timedelta

WINDOW = timedelta(minutes=1)


class RecipientCap:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent: defaultdict[tuple[str, str], deque[datetime]] = defaultdict(deque)

    def reserve(self, platform: str, recipient: str, now: datetime) -> float | None:
        """Take a slot and return None, or return how many seconds until one frees up (nothing taken)."""
        if self.per_minute <= 0:
            return None
        stamps = self._sent[(platform, recipient)]
        while stamps and now - stamps[0] >= WINDOW:
            stamps.popleft()
        if len(stamps) >= self.per_minute:
            return max(0.5, (stamps[0] + WINDOW - now).total_seconds())
        stamps.append(now)
        if len(self._sent) > 100_000:
            self._forget_idle(now)
        return None

    def release(self, platform: str, recipient: str) -> None:
        """A reserved send that failed does not count against the person."""
        stamps = self._sent.get((platform, recipient))
        if stamps:
            stamps.pop()

    def _forget_idle(self, now: datetime) -> None:
        for key in [k for k, v in self._sent.items() if not v or now - v[-1] >= WINDOW]:
            del self._sent[key]
