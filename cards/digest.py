"""The daily leadership digest card: health figures with their comparison, overdue items, risks, kudos, chart.

The builder takes plain figures (``storage.queries.metrics`` computes them) and formats them for one reader;
it knows nothing about SQL or the chart renderer, only the chart's media id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from cards.action_items import ActionNudge
from cards.actions import pack
from cards.catalogue import Translator
from cards.model import Actions, Button, Card, Fields, Header, Image, KeyValue, Markdown, Note
from cards.text import shorten as _cut

Kind = Literal["rate", "hours"]


@dataclass(frozen=True)
class Figure:
    key: str
    """Catalogue key suffix: ``digest.metric.<key>``."""
    value: float | None
    previous: float | None
    company: float | None
    kind: Kind = "rate"
    lower_is_better: bool = False


@dataclass(frozen=True)
class Overdue:
    item_id: int
    owner: str
    deliverable: str
    deadline: date
    days_late: int


@dataclass(frozen=True)
class Named:
    name: str
    count: int


@dataclass
class DigestView:
    day: date
    scope_label: str
    period_days: int
    figures: list[Figure]
    overdue_total: int
    overdue: list[Overdue]
    missed_twice: list[Named] = field(default_factory=list)
    falling_progress: list[Named] = field(default_factory=list)
    kudos_points: int = 0
    kudos_top: list[Named] = field(default_factory=list)
    chart_media_id: str | None = None
    compare_company: bool = True
    name_nonresponders: bool = True
    """A team may ask summaries not to single out people who have not answered: counts only."""


def _fmt(value: float | None, kind: Kind) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.0f}%" if kind == "rate" else f"{value:.1f}h"


def _delta(t: Translator, fig: Figure) -> str:
    if fig.value is None or fig.previous is None:
        return t("digest.no_previous")
    diff = fig.value - fig.previous
    if fig.kind == "rate":
        amount = f"{abs(diff) * 100:.0f}pp"
    else:
        amount = f"{abs(diff):.1f}h"
    if abs(diff) < 1e-9:
        return t("digest.same")
    better = (diff < 0) if fig.lower_is_better else (diff > 0)
    arrow = "↑" if diff > 0 else "↓"
    return t("digest.better" if better else "digest.worse", change=f"{arrow}{amount}")


def figure_text(t: Translator, fig: Figure, *, compare_company: bool) -> str:
    parts = [_fmt(fig.value, fig.kind), _delta(t, fig)]
    if compare_company:
        parts.append(t("digest.company", value=_fmt(fig.company, fig.kind)))
    return _cut(" · ".join(parts), 200)


def digest_card(t: Translator, view: DigestView) -> Card:
    elements: list[Markdown | Fields | Image | Note | Actions] = [
        Note(text=t("digest.period", days=view.period_days)),
        Fields(
            items=[
                KeyValue(
                    label=t(f"digest.metric.{f.key}"),
                    value=figure_text(t, f, compare_company=view.compare_company),
                )
                for f in view.figures
            ]
        ),
    ]
    if view.overdue:
        lines = [t("digest.overdue_head", total=view.overdue_total)]
        lines += [
            t(
                "digest.overdue_line",
                id=o.item_id,
                owner=o.owner,
                what=_cut(o.deliverable, 60),
                deadline=o.deadline.isoformat(),
                days=o.days_late,
            )
            for o in view.overdue
        ]
        elements.append(Markdown(text=_cut("\n".join(lines), 2000)))
        elements.append(
            Actions(
                buttons=[
                    Button(
                        label=_cut(t("digest.nudge", name=o.owner), 20),
                        value=pack(ActionNudge(item_id=o.item_id)),
                    )
                    for o in view.overdue[:5]
                ]
            )
        )
    else:
        elements.append(Markdown(text=t("digest.no_overdue")))
    risk_lines: list[str] = []
    if view.missed_twice and not view.name_nonresponders:
        risk_lines.append(t("digest.risk_missed_count", count=len(view.missed_twice)))
    elif view.missed_twice:
        names = t("digest.list_sep").join(f"{r.name}({r.count})" for r in view.missed_twice)
        risk_lines.append(t("digest.risk_missed", names=names))
    if view.falling_progress:
        names = t("digest.list_sep").join(r.name for r in view.falling_progress)
        risk_lines.append(t("digest.risk_progress", names=names))
    elements.append(
        Markdown(
            text=_cut("\n".join([t("digest.risks_head"), *(risk_lines or [t("digest.no_risks")])]), 2000)
        )
    )
    kudos = t("digest.kudos", points=view.kudos_points)
    if view.kudos_top:
        kudos += " " + t(
            "digest.kudos_top",
            names=t("digest.list_sep").join(f"{k.name}(+{k.count})" for k in view.kudos_top),
        )
    elements.append(Markdown(text=_cut(kudos, 2000)))
    if view.chart_media_id:
        elements.append(Image(media_id=view.chart_media_id, alt=_cut(t("digest.chart_alt"), 100)))
        elements.append(Note(text=t("digest.chart_legend")))
    return Card(
        header=Header(
            title=_cut(t("digest.title", day=view.day.isoformat()), 60),
            subtitle=_cut(view.scope_label, 120),
            colour="blue",
        ),
        elements=elements,
        summary=_cut(t("digest.summary", day=view.day.isoformat(), overdue=view.overdue_total), 100),
    )
