"""No person gets more than ``[outbox] per_person_per_minute`` bot messages a minute, nor more than
``[outbox] per_person_per_hour`` an hour.

WeCom silently drops messages beyond 30 a minute and 1,000 an hour from one app to one member (doc 90236 /
90454: the API answers ok and the message never arrives), and a phone that buzzes twenty times a minute is
not a conversation. Sends past the cap are deferred, not lost: the outbox row waits until a slot in that
person's rolling minute and hour frees up. A platform with such a hard limit also has a ceiling here
(``PLATFORM_CEILINGS``) that no configuration can lift, not even 0 ("no cap"): the ceiling sits below the
platform's limit because one card can bring follow-up messages the outbox does not count (WeCom sends a
card's images as messages of their own, and a refused click is explained in a text). The windows are kept
per process; with several replicas each applies the cap to what it sends, which bounds the total by
replicas × cap.
"""

from __future__ import annotations

from datetime import datetime, timedelta

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
WINDOW = MINUTE  # the name older callers know

PLATFORM_CEILINGS: dict[str, tuple[int, int]] = {"wecom": (25, 900)}
"""platform → (per minute, per hour) that is never exceeded, whatever is configured. WeCom drops beyond
30/min and 1,000/h per member; the margin leaves room for a card's image messages and refusal texts."""


class RecipientCap:
    """The rolling windows of every person a message went to. Most people of a broadcast get one message an
    hour, so a person's sends are kept as one timestamp (seconds) until there is a second: a 100,000-person
    kickoff held 100,000 ``deque``s of ``datetime``s here (about 80 MB), now about 15 MB."""

    def __init__(self, per_minute: int, per_hour: int = 0) -> None:
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._sent: dict[str, dict[str, float | list[float]]] = {}
        """platform → person → the send times in the window, oldest first (one float when there is one)."""

    def limits(self, platform: str) -> tuple[int, int]:
        """(per minute, per hour) for ``platform``; 0 means no cap."""
        minute, hour = self.per_minute, self.per_hour
        ceiling = PLATFORM_CEILINGS.get(platform)
        if ceiling is not None:
            minute = min(minute, ceiling[0]) if minute > 0 else ceiling[0]
            hour = min(hour, ceiling[1]) if hour > 0 else ceiling[1]
        return minute, hour

    def reserve(self, platform: str, recipient: str, now: datetime) -> float | None:
        """Take a slot and return None, or return how many seconds until one frees up (nothing taken)."""
        per_minute, per_hour = self.limits(platform)
        if per_minute <= 0 and per_hour <= 0:
            return None
        at = now.timestamp()
        people = self._sent.setdefault(platform, {})
        keep = (HOUR if per_hour > 0 else MINUTE).total_seconds()
        stamps = [t for t in _stamps(people.get(recipient)) if at - t < keep]
        waits: list[float] = []
        if per_minute > 0:
            recent = [t for t in stamps if at - t < MINUTE.total_seconds()]
            if len(recent) >= per_minute:
                waits.append(recent[-per_minute] + MINUTE.total_seconds() - at)
        if per_hour > 0 and len(stamps) >= per_hour:
            waits.append(stamps[-per_hour] + HOUR.total_seconds() - at)
        if waits:
            _keep(people, recipient, stamps)
            return max(0.5, max(waits))
        stamps.append(at)
        _keep(people, recipient, stamps)
        if len(people) > 100_000:
            self._forget_idle(people, at)
        return None

    def reserve_all(self, platform: str, recipients: list[str], now: datetime) -> float | None:
        """A slot for every recipient of one send, or none at all: a broadcast row counts against each person
        it reaches, and waits (whole) when any of them is at the cap. Returns the longest wait, or None."""
        taken: list[str] = []
        for recipient in recipients:
            wait = self.reserve(platform, recipient, now)
            if wait is not None:
                self.release_all(platform, taken)
                return wait
            taken.append(recipient)
        return None

    def release_all(self, platform: str, recipients: list[str]) -> None:
        for recipient in recipients:
            self.release(platform, recipient)

    def release(self, platform: str, recipient: str) -> None:
        """A reserved send that failed does not count against the person."""
        people = self._sent.get(platform)
        if people is None or recipient not in people:
            return
        stamps = _stamps(people[recipient])
        stamps.pop()
        _keep(people, recipient, stamps)

    @staticmethod
    def _forget_idle(people: dict[str, float | list[float]], at: float) -> None:
        hour = HOUR.total_seconds()
        for key in [k for k, v in people.items() if at - _stamps(v)[-1] >= hour]:
            del people[key]


def _stamps(held: float | list[float] | None) -> list[float]:
    if held is None:
        return []
    return [held] if isinstance(held, float) else list(held)


def _keep(people: dict[str, float | list[float]], recipient: str, stamps: list[float]) -> None:
    if not stamps:
        people.pop(recipient, None)
    elif len(stamps) == 1:
        people[recipient] = stamps[0]
    else:
        people[recipient] = stamps
