"""The sums behind the insights: department figures rolled up over their sub-departments, teams ranked, and
the thresholds each figure is held against.

The database groups once (per department, or per person for teams) through ``storage.queries.metrics``;
everything here is arithmetic on those groups, so a whole company costs the same few statements whatever
its number of departments. A department counts together with every department below it (a brief for 研发部
covers its teams), as a cycle's scope does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Literal

from bot.core.config import Settings
from storage.queries import insights as iq
from storage.queries import metrics as m

FigureKey = Literal["checkin", "evidence", "response", "fulfilment"]


@dataclass(frozen=True)
class Thresholds:
    """Where a figure becomes a concern (``[thresholds]``); per department once templates exist."""

    checkin: float
    evidence: float
    response_hours: float

    def crossed(self, key: FigureKey, figures: m.Metrics) -> float | None:
        """The figure's value when it is on the wrong side of its threshold, else None (no data: no alert)."""
        if key == "checkin" and figures.checkin_rate is not None and figures.checkin_rate < self.checkin:
            return figures.checkin_rate
        if key == "evidence" and figures.evidence_rate is not None and figures.evidence_rate < self.evidence:
            return figures.evidence_rate
        hours = figures.response_hours
        if key == "response" and hours is not None and hours > self.response_hours:
            return hours
        return None

    def limit(self, key: FigureKey) -> float | None:
        return {"checkin": self.checkin, "evidence": self.evidence, "response": self.response_hours}.get(key)


ALERTED: tuple[FigureKey, ...] = ("evidence", "response", "checkin")
"""The figures with a threshold, in the order an alert lists them."""


def thresholds_for(settings: Settings, department_id: int | None) -> Thresholds:
    """The thresholds of one department. Today every department shares ``[thresholds]``; this is the one
    place a per-department template will plug in."""
    del department_id
    cfg = settings.thresholds
    return Thresholds(cfg.checkin_completion, cfg.evidence_completeness, cfg.response_hours)


def combine(parts: Iterable[m.Metrics]) -> m.Metrics:
    """One set of figures from several: counts add up, the average response time is weighted by the number
    of responses it averages."""
    out = m.Metrics()
    seconds = 0.0
    for p in parts:
        out.checkins_due += p.checkins_due
        out.checkins_done += p.checkins_done
        out.evidence_required += p.evidence_required
        out.evidence_with += p.evidence_with
        out.actions_due += p.actions_due
        out.actions_on_time += p.actions_on_time
        out.kudos_points += p.kudos_points
        if p.responses and p.response_seconds is not None:
            out.responses += p.responses
            seconds += p.response_seconds * p.responses
    out.response_seconds = seconds / out.responses if out.responses else None
    return out


def subtree(depts: Mapping[int, iq.Dept], root: int) -> set[int]:
    """``root`` and every department below it."""
    children: dict[int, list[int]] = {}
    for d in depts.values():
        if d.parent_id is not None:
            children.setdefault(d.parent_id, []).append(d.id)
    out: set[int] = set()
    stack = [root]
    while stack:
        current = stack.pop()
        if current not in out:
            out.add(current)
            stack.extend(children.get(current, []))
    return out


def rolled_up(per_dept: Mapping[int | None, m.Metrics], ids: set[int] | None) -> m.Metrics:
    """The figures of a set of departments (None: the whole company, people without a department too)."""
    return combine(v for k, v in per_dept.items() if ids is None or k in ids)


def health(figures: m.Metrics) -> float | None:
    """A team's one-number health for ranking: the mean of the rates it has data for (check-in completion,
    evidence completeness, commitment fulfilment); None without any."""
    rates = [
        r for r in (figures.checkin_rate, figures.evidence_rate, figures.fulfilment_rate) if r is not None
    ]
    return sum(rates) / len(rates) if rates else None


@dataclass(frozen=True)
class Team:
    manager_id: int
    name: str
    """The manager's name: a team is the people reporting to one manager."""
    score: float
    previous: float | None


def ranked_teams(
    now: Mapping[int, m.Metrics],
    before: Mapping[int, m.Metrics],
    people: Mapping[int, iq.Member],
    in_scope: set[int] | None,
) -> list[Team]:
    """Teams (direct reports of one manager, within the scope's departments) best first, by ``health``;
    teams without data are left out. ``now``/``before`` are per-person figures of the two months."""

    def per_team(figures: Mapping[int, m.Metrics]) -> dict[int, m.Metrics]:
        groups: dict[int, list[m.Metrics]] = {}
        for pid, f in figures.items():
            member = people.get(pid)
            if member is None or member.manager_id is None:
                continue
            if in_scope is not None and member.department_id not in in_scope:
                continue
            groups.setdefault(member.manager_id, []).append(f)
        return {k: combine(v) for k, v in groups.items()}

    current, previous = per_team(now), per_team(before)
    out: list[Team] = []
    for manager_id, figures in current.items():
        score = health(figures)
        manager = people.get(manager_id)
        if score is None or manager is None:
            continue
        prev = previous.get(manager_id)
        out.append(Team(manager_id, manager.name, score, health(prev) if prev is not None else None))
    out.sort(key=lambda t: (-t.score, t.name, t.manager_id))
    return out


def top_and_bottom(teams: list[Team], size: int) -> tuple[list[Team], list[Team]]:
    """The best and the worst ``size`` teams, never one team in both (below two teams: no ranking)."""
    k = min(size, len(teams) // 2)
    if k == 0:
        return [], []
    return teams[:k], list(reversed(teams[-k:]))


def month_window(year: int, month: int, tz: tzinfo) -> m.Window:
    first = date(year, month, 1)
    end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return m.Window(first, end, tz)


def months_before(year: int, month: int, count: int) -> list[tuple[int, int]]:
    """The ``count`` calendar months before (year, month), oldest first."""
    out: list[tuple[int, int]] = []
    for _ in range(count):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        out.append((year, month))
    return list(reversed(out))
