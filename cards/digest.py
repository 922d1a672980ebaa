"""The daily leadership digest card: health figures with their comparison, overdue items, risks, kudos, chart.

The builder takes plain figures (``storage.queries.metrics`` computes them) and formats them for one reader;
it knows nothing about SQL or the chart renderer, only the chart's media id.

Read on a phone, the card must agree with itself: the risks repeat, in one line each, the overdue items and
the low rates shown above (a "none" under numbers in the red would be a contradiction); a figure without data
says so and why, instead of a "0.0h" that reads like a measurement; a comparison appears whenever the
earlier value exists, also when the current one does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from cards.action_items import ActionNudge
from cards.actions import pack
from cards.catalogue import Translator
from cards.model import Actions, Button, Card, Fields, Header, Image, KeyValue, Markdown, Note
from cards.text import shorten as _cut

Kind = Literal["rate", "hours"]
BUTTON_CHARS = 20
"""A button label's limit (``cards.model.Button``)."""
MIN_WHAT_CHARS = 4
"""A nudge button shows at least this much of the deliverable, even beside a long name."""


@dataclass(frozen=True)
class Figure:
    key: str
    """Catalogue key suffix: ``digest.metric.<key>``."""
    value: float | None
    previous: float | None
    company: float | None
    kind: Kind = "rate"
    lower_is_better: bool = False
    done: int | None = None
    """For a rate: what was done (the numerator); for hours: how many responses were timed."""
    total: int | None = None
    """For a rate: what was due (the denominator)."""
    days: int | None = None
    """For a daily average (the daily-active rate): over how many workdays."""
    counts_as_risk: bool = True
    """Whether a rate below the floor is listed under the risks (an activity rate is context, not a risk)."""


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


@dataclass(frozen=True)
class GoalLine:
    """The goal tree's line (issue 17): the running cycle's alignment rate and, when a cycle before it has
    ended, the share of what it left open that was carried over."""

    code: str
    goals: int
    aligned: int
    alignment: float | None
    previous: str | None = None
    """The cycle the carry-over share looks back at; None: none has ended."""
    base: int | None = None
    carried: int = 0
    share: float | None = None


def goal_line_text(t: Translator, line: GoalLine) -> str:
    """One line, "🎯 2026-Q4 目标：对齐率 75%（…）· 行动转化度 30%（…）"; a figure without data says why,
    like every other line of the digest."""
    if line.alignment is None:
        alignment = t("goal_metrics.alignment_none")
    else:
        alignment = t(
            "goal_metrics.alignment",
            rate=f"{line.alignment * 100:.0f}%",
            aligned=line.aligned,
            goals=line.goals,
        )
    if line.previous is None:
        carry = t("goal_metrics.carry_no_previous")
    elif line.share is None:
        carry = t("goal_metrics.carry_none", previous=line.previous)
    else:
        carry = t(
            "goal_metrics.carry",
            rate=f"{line.share * 100:.0f}%",
            carried=line.carried,
            base=line.base or 0,
            previous=line.previous,
        )
    return _cut(t("goal_metrics.line", code=line.code, alignment=alignment, carry=carry), 2000)


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
    low_rate: float = 0.8
    """A rate below this is a risk."""
    kudos_previous: int | None = None
    """Kudos points of the previous period; None when that period has no data at all."""
    overdue_previous: int | None = None
    """Overdue items the previous digest showed; None for a first digest."""
    trend_days: int = 30
    expired_total: int = 0
    expired: list[Named] = field(default_factory=list)
    """Photo-evidence requests that expired unanswered since ``expired_since``, per person."""
    expired_since: date | None = None
    goals: GoalLine | None = None
    """The running cycle's goal figures; None without a running cycle."""


def _hours(t: Translator, hours: float) -> str:
    if hours < 1:
        return t("digest.minutes", value=f"{hours * 60:.0f}")
    return t("digest.hours", value=f"{hours:.1f}")


def _fmt(t: Translator, value: float, kind: Kind) -> str:
    return f"{value * 100:.0f}%" if kind == "rate" else _hours(t, value)


def _amount(t: Translator, fig: Figure) -> str:
    head = _fmt(t, fig.value, fig.kind) if fig.value is not None else ""
    if fig.kind == "rate" and fig.done is not None and fig.total:
        return head + t("digest.of", done=fig.done, total=fig.total)
    if fig.kind == "hours" and fig.done:
        return head + t("digest.timed", count=fig.done)
    if fig.days:
        return head + t("digest.over_days", days=fig.days)
    return head


def _delta(t: Translator, fig: Figure) -> str:
    if fig.previous is None:
        return t("digest.no_previous")
    if fig.value is None:
        return t("digest.previous_only", value=_fmt(t, fig.previous, fig.kind))
    diff = fig.value - fig.previous
    if abs(diff) < 1e-9 or (fig.kind == "rate" and round(abs(diff) * 100) == 0):
        return t("digest.same")
    amount = f"{abs(diff) * 100:.0f}pp" if fig.kind == "rate" else _hours(t, abs(diff))
    better = (diff < 0) if fig.lower_is_better else (diff > 0)
    arrow = "↑" if diff > 0 else "↓"
    return t("digest.better" if better else "digest.worse", change=f"{arrow}{amount}")


def figure_text(t: Translator, fig: Figure, *, compare_company: bool) -> str:
    if fig.value is None and fig.previous is None:
        return _cut(t(f"digest.no_data.{fig.key}"), 200)
    first = _amount(t, fig) if fig.value is not None else t(f"digest.no_data.{fig.key}")
    parts = [first, _delta(t, fig)]
    if compare_company and fig.company is not None:
        parts.append(t("digest.company", value=_fmt(t, fig.company, fig.kind)))
    return _cut(" · ".join(parts), 200)


def is_low(fig: Figure, low_rate: float) -> bool:
    return fig.counts_as_risk and fig.kind == "rate" and fig.value is not None and fig.value < low_rate


def _names(t: Translator, people: list[Named], *, counts: bool) -> str:
    sep = t("digest.list_sep")
    return sep.join(f"{p.name}({p.count})" if counts and p.count > 1 else p.name for p in people)


def risk_lines(t: Translator, view: DigestView) -> list[str]:
    """Everything above that needs attention, one line each, then the risks only this section shows."""
    lines: list[str] = []
    if view.overdue_total:
        oldest = max((o.days_late for o in view.overdue), default=0)
        lines.append(t("digest.risk_overdue", total=view.overdue_total, days=oldest))
    for fig in view.figures:
        if is_low(fig, view.low_rate) and fig.value is not None:
            lines.append(
                t(
                    "digest.risk_low",
                    metric=t(f"digest.metric.{fig.key}"),
                    value=_fmt(t, fig.value, fig.kind),
                    floor=f"{view.low_rate * 100:.0f}%",
                )
            )
    if view.missed_twice and not view.name_nonresponders:
        lines.append(t("digest.risk_missed_count", count=len(view.missed_twice)))
    elif view.missed_twice:
        names = t("digest.list_sep").join(f"{r.name}({r.count})" for r in view.missed_twice)
        lines.append(t("digest.risk_missed", names=names))
    if view.falling_progress:
        names = t("digest.list_sep").join(r.name for r in view.falling_progress)
        lines.append(t("digest.risk_progress", names=names))
    if view.expired_total:
        since = view.expired_since.strftime("%m-%d") if view.expired_since else ""
        if view.name_nonresponders and view.expired:
            lines.append(
                t(
                    "digest.risk_expired",
                    count=view.expired_total,
                    since=since,
                    names=_names(t, view.expired, counts=True),
                )
            )
        else:
            lines.append(t("digest.risk_expired_count", count=view.expired_total, since=since))
    return lines


def nudge_label(t: Translator, item: Overdue) -> str:
    """ "催办 李四：客户回访报告": who and what, the deliverable cut to what the 20-character label leaves."""
    room = BUTTON_CHARS - len(t("digest.nudge", name=item.owner, what=""))
    what = _cut(item.deliverable, max(room, MIN_WHAT_CHARS))
    return _cut(t("digest.nudge", name=item.owner, what=what), BUTTON_CHARS)


def _overdue_section(t: Translator, view: DigestView) -> list[Markdown | Actions]:
    if not view.overdue:
        return [Markdown(text=t("digest.no_overdue"))]
    if view.overdue_previous is None:
        head = t("digest.overdue_head", total=view.overdue_total)
    else:
        head = t("digest.overdue_head_vs", total=view.overdue_total, before=view.overdue_previous)
    lines = [head]
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
    buttons = [
        Button(label=nudge_label(t, o), value=pack(ActionNudge(item_id=o.item_id))) for o in view.overdue[:5]
    ]
    return [Markdown(text=_cut("\n".join(lines), 2000)), Actions(buttons=buttons)]


def digest_card(t: Translator, view: DigestView) -> Card:
    first, last = view.day - timedelta(days=view.period_days), view.day - timedelta(days=1)
    elements: list[Markdown | Fields | Image | Note | Actions] = [
        Note(
            text=t(
                "digest.period",
                days=view.period_days,
                first=first.strftime("%m-%d"),
                last=last.strftime("%m-%d"),
            )
        ),
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
    elements += _overdue_section(t, view)
    risks = risk_lines(t, view)
    elements.append(
        Markdown(text=_cut("\n".join([t("digest.risks_head"), *(risks or [t("digest.no_risks")])]), 2000))
    )
    kudos = t("digest.kudos", points=view.kudos_points)
    if view.kudos_previous is not None:
        kudos += t("digest.kudos_previous", points=view.kudos_previous)
    if view.kudos_top:
        kudos += " " + t(
            "digest.kudos_top",
            names=t("digest.list_sep").join(f"{k.name}(+{k.count})" for k in view.kudos_top),
        )
    elements.append(Markdown(text=_cut(kudos, 2000)))
    if view.goals is not None:
        elements.append(Markdown(text=goal_line_text(t, view.goals)))
    if view.chart_media_id:
        elements.append(
            Image(media_id=view.chart_media_id, alt=_cut(t("digest.chart_alt", days=view.trend_days), 100))
        )
        elements.append(Note(text=t("digest.chart_legend")))
    else:
        elements.append(Note(text=t("digest.chart_empty", days=view.trend_days)))
    return Card(
        header=Header(
            title=_cut(t("digest.title", day=view.day.isoformat()), 60),
            subtitle=_cut(view.scope_label, 120),
            colour="blue",
        ),
        elements=elements,
        summary=_cut(t("digest.summary", day=view.day.isoformat(), overdue=view.overdue_total), 100),
    )
