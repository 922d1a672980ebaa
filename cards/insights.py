"""The insight cards: the monthly department brief, a threshold alert, and an early warning about a person.

The builders take plain values (the insights flow computes them) and only format: every figure beside its
previous month with an arrow, every threshold named with the value that crossed it, every warning with the
figures that fell, so a reader can check the claim instead of trusting it. The early warning goes to the
person's manager and HRBP only; nothing on it is addressed to the person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from cards.catalogue import Translator
from cards.model import Card, Colour, Fields, Header, Image, KeyValue, Markdown, Note
from cards.text import shorten as _cut

Kind = Literal["rate", "hours", "score", "percent"]


@dataclass(frozen=True)
class BriefFigure:
    key: str
    """Catalogue key suffix: ``insights.metric.<key>``."""
    value: float | None
    previous: float | None
    threshold: float | None = None
    kind: Kind = "rate"
    lower_is_better: bool = False
    done: int | None = None
    total: int | None = None

    @property
    def missed(self) -> bool:
        """On the wrong side of its threshold (no data, or no threshold: not missed)."""
        if self.value is None or self.threshold is None:
            return False
        return self.value > self.threshold if self.lower_is_better else self.value < self.threshold


@dataclass(frozen=True)
class TeamLine:
    name: str
    score: float
    previous: float | None


@dataclass(frozen=True)
class Named:
    name: str
    count: int


@dataclass(frozen=True)
class Risk:
    key: str
    """Catalogue key suffix: ``insights.risk.<key>``."""
    total: int
    previous: int | None
    people: list[Named] = field(default_factory=list)
    people_total: int = 0
    """How many people are behind ``total`` (``people`` shows the first few)."""


@dataclass
class BriefView:
    month: str
    """The month the brief covers, ``2026-11``."""
    previous_month: str
    scope_label: str
    figures: list[BriefFigure]
    top: list[TeamLine]
    bottom: list[TeamLine]
    risks: list[Risk]
    chart_media_id: str | None = None
    trend_months: int = 6


@dataclass(frozen=True)
class AlertFigure:
    key: str
    value: float
    threshold: float
    kind: Kind
    behind_total: int
    behind: list[Named]


@dataclass
class AlertView:
    department: str
    first_day: str
    last_day: str
    figures: list[AlertFigure]


@dataclass(frozen=True)
class Fall:
    key: str
    """Catalogue key suffix: ``insights.fell.<key>``."""
    values: Sequence[float]
    """Oldest first: each lower than the one before."""
    kind: Kind


@dataclass
class WarningView:
    person: str
    period_days: int
    falls: list[Fall]


# ------------------------------------------------------------------ formatting


def fmt(t: Translator, value: float, kind: Kind) -> str:
    if kind == "rate":
        return f"{value * 100:.0f}%"
    if kind == "percent":
        return f"{value:.0f}%"
    if kind == "hours":
        return t("insights.hours", value=f"{value:.1f}")
    return f"{value:.1f}"


def _delta(
    t: Translator, value: float | None, previous: float | None, kind: Kind, lower_is_better: bool
) -> str:
    if previous is None:
        return t("insights.no_previous")
    if value is None:
        return t("insights.previous_only", value=fmt(t, previous, kind))
    diff = value - previous
    shown = f"{abs(diff) * 100:.0f}pp" if kind == "rate" else fmt(t, abs(diff), kind)
    if abs(diff) < 1e-9 or shown in ("0pp", fmt(t, 0.0, kind)):
        return t("insights.same", value=fmt(t, previous, kind))
    better = (diff < 0) if lower_is_better else (diff > 0)
    arrow = "↑" if diff > 0 else "↓"
    key = "insights.better" if better else "insights.worse"
    return t(key, change=f"{arrow}{shown}", value=fmt(t, previous, kind))


def figure_text(t: Translator, fig: BriefFigure) -> str:
    """``82% (41/50) ⚠ target 90% · ↓8pp vs last month (90%)``."""
    if fig.value is None:
        head = t(f"insights.no_data.{fig.key}")
    else:
        head = fmt(t, fig.value, fig.kind)
        if fig.kind == "rate" and fig.total:
            head += t("insights.of", done=fig.done or 0, total=fig.total)
    parts = [head]
    if fig.threshold is not None:
        mark = "insights.below" if fig.missed else "insights.met"
        parts.append(t(mark, threshold=fmt(t, fig.threshold, fig.kind)) if fig.value is not None else "")
    parts.append(_delta(t, fig.value, fig.previous, fig.kind, fig.lower_is_better))
    return _cut(" · ".join(p for p in parts if p), 200)


def _names(t: Translator, people: Sequence[Named], total: int) -> str:
    sep = t("insights.list_sep")
    shown = sep.join(f"{p.name}({p.count})" if p.count > 1 else p.name for p in people)
    if total > len(people):
        shown += t("insights.and_more", count=total - len(people))
    return shown


def outcome_colour(figures: Sequence[BriefFigure]) -> Colour:
    """Green when every figure with a threshold meets it, orange for one miss, red for more."""
    missed = sum(1 for f in figures if f.missed)
    return "green" if missed == 0 else "orange" if missed == 1 else "red"


# ------------------------------------------------------------------ the brief


def _team_lines(t: Translator, teams: Sequence[TeamLine]) -> list[str]:
    return [
        t(
            "insights.team_line",
            rank=i,
            name=team.name,
            score=fmt(t, team.score, "rate"),
            change=_delta(t, team.score, team.previous, "rate", False),
        )
        for i, team in enumerate(teams, start=1)
    ]


def _risk_line(t: Translator, risk: Risk) -> str:
    line = t(f"insights.risk.{risk.key}", total=risk.total)
    line += " " + (
        t("insights.risk_previous", count=risk.previous)
        if risk.previous is not None
        else t("insights.no_previous_paren")
    )
    if risk.people:
        line += t("insights.risk_people", names=_names(t, risk.people, risk.people_total))
    return line


def brief_card(t: Translator, view: BriefView) -> Card:
    elements: list[Markdown | Fields | Image | Note] = [
        Note(text=t("insights.brief_period", month=view.month, previous=view.previous_month)),
        Fields(
            items=[
                KeyValue(label=t(f"insights.metric.{f.key}"), value=figure_text(t, f)) for f in view.figures
            ]
        ),
    ]
    if view.top:
        lines = [t("insights.top_head"), *_team_lines(t, view.top), t("insights.bottom_head")]
        lines += _team_lines(t, view.bottom)
        elements.append(Markdown(text=_cut("\n".join(lines), 2000)))
        elements.append(Note(text=t("insights.team_note")))
    else:
        elements.append(Note(text=t("insights.no_ranking")))
    risks = [f"- {_risk_line(t, r)}" for r in view.risks if r.total or r.previous]
    elements.append(
        Markdown(text=_cut("\n".join([t("insights.risks_head"), *(risks or [t("insights.no_risks")])]), 2000))
    )
    if view.chart_media_id:
        elements.append(
            Image(
                media_id=view.chart_media_id, alt=_cut(t("insights.chart_alt", months=view.trend_months), 100)
            )
        )
        elements.append(Note(text=t("insights.chart_legend")))
    else:
        elements.append(Note(text=t("insights.chart_empty", months=view.trend_months)))
    elements.append(Note(text=t("insights.alignment_later")))
    missed = sum(1 for f in view.figures if f.missed)
    return Card(
        header=Header(
            title=_cut(t("insights.brief_title", month=view.month), 60),
            subtitle=_cut(view.scope_label, 120),
            colour=outcome_colour(view.figures),
        ),
        elements=elements,
        summary=_cut(
            t("insights.brief_summary", month=view.month, scope=view.scope_label, missed=missed), 100
        ),
    )


# ------------------------------------------------------------------ threshold alert


def alert_card(t: Translator, view: AlertView) -> Card:
    lines: list[str] = []
    for f in view.figures:
        key = "insights.alert_above" if f.kind == "hours" else "insights.alert_below"
        lines.append(
            t(
                key,
                metric=t(f"insights.metric.{f.key}"),
                value=fmt(t, f.value, f.kind),
                threshold=fmt(t, f.threshold, f.kind),
            )
        )
        if f.behind:
            lines.append(
                t(f"insights.behind.{f.key}", count=f.behind_total, names=_names(t, f.behind, f.behind_total))
            )
    return Card(
        header=Header(
            title=_cut(t("insights.alert_title", department=view.department), 60),
            subtitle=_cut(t("insights.alert_period", first=view.first_day, last=view.last_day), 120),
            colour="red",
        ),
        elements=[Markdown(text=_cut("\n".join(lines), 2000)), Note(text=t("insights.alert_note"))],
        summary=_cut(t("insights.alert_summary", department=view.department, count=len(view.figures)), 100),
    )


# ------------------------------------------------------------------ early warning


def warning_card(t: Translator, view: WarningView) -> Card:
    arrow = " → "
    lines = [t("insights.warning_intro", name=view.person, days=view.period_days)]
    for fall in view.falls:
        values = arrow.join(fmt(t, v, fall.kind) for v in fall.values)
        lines.append(t("insights.fell_line", metric=t(f"insights.fell.{fall.key}"), values=values))
    return Card(
        header=Header(title=_cut(t("insights.warning_title", name=view.person), 60), colour="orange"),
        elements=[
            Markdown(text=_cut("\n".join(lines), 2000)),
            Markdown(
                text=_cut(t("insights.care_head") + "\n" + t("insights.care_text", name=view.person), 2000)
            ),
            Note(text=t("insights.warning_note")),
        ],
        summary=_cut(t("insights.warning_summary", name=view.person), 100),
    )
