"""The monthly department brief: on the first workday of a month, each department's head and HRBP get one
card about the month before (a leader gets one for the whole company).

It shows the health figures against their thresholds (``[thresholds]``) beside the month before, a trend
chart of the last ``TREND_MONTHS`` months, the best and the worst teams (people reporting to one manager,
ranked by the mean of their rates), and the risks: overdue action items (compared with what the previous
brief showed), photo-less action items and progress below plan (compared with the month before).

A department counts with its sub-departments. The figures come from ``storage.queries.metrics`` grouped per
department and per person for the whole workspace (a fixed number of statements however many departments),
computed once per reader and shared by all their briefs. The goal tree does not exist yet, so the alignment
rate and the carry-over share are not shown (the card says they come later).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.context import Context
from bot.core.schedule import Entry, Job, PeriodArgs, ScheduleEntry
from bot.core.status import OPEN_ACTION_ITEM
from cards.insights import BriefFigure, BriefView, Named, Risk, TeamLine, brief_card
from cards.insights_chart import BriefChart, Line, brief_chart_png, has_data
from handlers.insights.figures import (
    Thresholds,
    month_window,
    months_before,
    ranked_teams,
    rolled_up,
    subtree,
    thresholds_for,
    top_and_bottom,
)
from storage.media import MediaStore
from storage.models import Person
from storage.queries import insights as iq
from storage.queries import metrics as m
from storage.queries.once import done_before

SENT = "insights.brief"
TREND_MONTHS = 6
LIST_SIZE = 3
"""Teams shown at the top and at the bottom; people named per risk."""
COMPANY = "company"


@dataclass(frozen=True)
class Subject:
    """One brief: a department (with its sub-departments), or the whole company (``dept_id`` None)."""

    dept_id: int | None
    label: str

    @property
    def key(self) -> str:
        return COMPANY if self.dept_id is None else str(self.dept_id)


def brief_subjects(reader: Person, depts: dict[int, iq.Dept], company_label: str) -> list[Subject]:
    """Whose brief ``reader`` may read: the company for a leader, and every department they head or are the
    HRBP of. Nobody else reads a department brief."""
    out: list[Subject] = []
    if reader.has_role("leader"):
        out.append(Subject(None, company_label))
    out += [Subject(d.id, d.name) for d in depts.values() if reader.id in (d.head_id, d.hrbp_id)]
    return out


def _covered(period: str) -> tuple[int, int]:
    """``2026-12`` (the month the brief is sent in) → (2026, 11), the month it covers."""
    year, month = (int(x) for x in period.split("-"))
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def _named(behind: iq.Behind) -> list[Named]:
    return [Named(p.name, p.count) for p in behind.people]


def _figures(now: m.Metrics, before: m.Metrics, limits: Thresholds) -> list[BriefFigure]:
    return [
        BriefFigure(
            "checkin",
            now.checkin_rate,
            before.checkin_rate,
            limits.checkin,
            done=now.checkins_done,
            total=now.checkins_due,
        ),
        BriefFigure(
            "evidence",
            now.evidence_rate,
            before.evidence_rate,
            limits.evidence,
            done=now.evidence_with,
            total=now.evidence_required,
        ),
        BriefFigure(
            "response",
            now.response_hours,
            before.response_hours,
            limits.response_hours,
            kind="hours",
            lower_is_better=True,
        ),
        BriefFigure(
            "fulfilment",
            now.fulfilment_rate,
            before.fulfilment_rate,
            done=now.actions_on_time,
            total=now.actions_due,
        ),
    ]


@dataclass
class BriefData:
    """Everything one reader's briefs share, read once: the months, the per-department and per-person
    figures of the whole workspace, the organisation, and what the reader's previous brief showed."""

    months: list[tuple[int, int]]
    windows: list[m.Window]
    per_month: list[dict[int | None, m.Metrics]]
    people_now: dict[int, m.Metrics]
    people_before: dict[int, m.Metrics]
    people: dict[int, iq.Member]
    depts: dict[int, iq.Dept]
    previous_overdue: dict[str, int]


async def read_brief_data(ctx: Context, reader: Person, depts: dict[int, iq.Dept], period: str) -> BriefData:
    tz = ctx.zone(reader)
    year, month = _covered(period)
    months = [*months_before(year, month, TREND_MONTHS - 1), (year, month)]
    windows = [month_window(y, mo, tz) for y, mo in months]
    scope = m.Scope(reader.workspace_id)
    per_month = [await m.metrics_by(ctx.session, scope, w, "department") for w in windows]
    previous = await iq.sent_detail(
        ctx.session, action=SENT, entity="person", entity_id=reader.id, key=f"brief:{_label(year, month)}"
    )
    shown = previous.get("overdue") if previous else None
    return BriefData(
        months=months,
        windows=windows,
        per_month=per_month,
        people_now=await m.metrics_by(ctx.session, scope, windows[-1], "person"),
        people_before=await m.metrics_by(ctx.session, scope, windows[-2], "person"),
        people=await iq.members(ctx.session, reader.workspace_id),
        depts=depts,
        previous_overdue={k: v for k, v in shown.items() if isinstance(v, int)}
        if isinstance(shown, dict)
        else {},
    )


async def build_brief(
    ctx: Context, reader: Person, subject: Subject, data: BriefData
) -> tuple[BriefView, int]:
    """One subject's brief for ``reader``, and its overdue count (the next brief compares with it)."""
    ws = reader.workspace_id
    ids = subtree(data.depts, subject.dept_id) if subject.dept_id is not None else None
    limits = thresholds_for(ctx.settings, subject.dept_id)
    trend = [rolled_up(per, ids) for per in data.per_month]
    now, before = trend[-1], trend[-2]
    now_w, before_w = data.windows[-1], data.windows[-2]
    top, bottom = top_and_bottom(
        ranked_teams(data.people_now, data.people_before, data.people, ids), LIST_SIZE
    )
    session = ctx.session
    overdue = await iq.overdue_items(
        session, ws, ids, before=ctx.today(reader), open_statuses=OPEN_ACTION_ITEM, limit=LIST_SIZE
    )
    missing = await iq.missing_evidence(session, ws, ids, now_w, limit=LIST_SIZE)
    missing_before = await iq.missing_evidence(session, ws, ids, before_w, limit=0)
    falling = await iq.falling_progress(session, ws, ids, now_w, limit=LIST_SIZE)
    falling_before = await iq.falling_progress(session, ws, ids, before_w, limit=0)
    risks = [
        Risk(
            "overdue", overdue.items, data.previous_overdue.get(subject.key), _named(overdue), overdue.total
        ),
        Risk("missing_evidence", missing.items, missing_before.items, _named(missing), missing.total),
        Risk("falling_progress", falling.total, falling_before.total, _named(falling), falling.total),
    ]
    view = BriefView(
        month=_label(*data.months[-1]),
        previous_month=_label(*data.months[-2]),
        scope_label=subject.label,
        figures=_figures(now, before, limits),
        top=[TeamLine(x.name, x.score, x.previous) for x in top],
        bottom=[TeamLine(x.name, x.score, x.previous) for x in bottom],
        risks=risks,
        chart_media_id=await _chart(ctx, reader, data.months, trend, limits),
        trend_months=TREND_MONTHS,
    )
    return view, overdue.items


async def _chart(
    ctx: Context, reader: Person, months: list[tuple[int, int]], trend: list[m.Metrics], limits: Thresholds
) -> str | None:
    """Render and store the trend chart; its media id, or None when no month has any data."""
    t = ctx.translator(reader)
    chart = BriefChart(
        months=[t("insights.month_label", month=mo) for _, mo in months],
        rates=[
            Line([f.checkin_rate for f in trend], t("insights.metric.checkin"), limits.checkin),
            Line([f.evidence_rate for f in trend], t("insights.metric.evidence"), limits.evidence),
        ],
        hours=Line([f.response_hours for f in trend], t("insights.chart_hours"), limits.response_hours),
        threshold_label=t("insights.chart_threshold"),
    )
    if not has_data(chart):
        return None
    png = await brief_chart_png(chart)
    media = ctx.settings.media
    stored = await MediaStore(media.dir, max_bytes=max(media.max_image_bytes, len(png))).store_image(png)
    return stored.info.sha256


async def send_department_brief(ctx: Context, *, period: str) -> int:
    """Scheduler entry point (ctx.person = the reader, ``period`` = the month it is sent in, ``2026-12``).
    One card per subject the reader may read, once per reader and month; returns the cards sent."""
    reader = ctx.person
    if not reader.active:
        return 0
    t = ctx.translator(reader)
    depts = await iq.departments(ctx.session, reader.workspace_id)
    subjects = brief_subjects(reader, depts, t("insights.scope_company"))
    key = f"brief:{period}"
    if not subjects or await done_before(
        ctx.session, action=SENT, entity="person", entity_id=reader.id, key=key
    ):
        return 0
    data = await read_brief_data(ctx, reader, depts, period)
    overdue: dict[str, int] = {}
    for subject in subjects:
        view, overdue[subject.key] = await build_brief(ctx, reader, subject, data)
        ctx.outbox.send(
            reader,
            brief_card(t, view),
            card_key=f"brief:{period}:{subject.key}",
            dedupe_key=f"brief:{reader.id}:{period}:{subject.key}",
        )
    ctx.audit(SENT, "person", reader.id, key=key, overdue=overdue)
    return len(subjects)


# ------------------------------------------------------------------ schedule entries
SCHEDULE: tuple[ScheduleEntry, ...] = (
    Entry(Job.SEND_DEPARTMENT_BRIEF, PeriodArgs, lambda ctx, a: send_department_brief(ctx, period=a.period)),
)
