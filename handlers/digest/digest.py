"""The daily leadership digest: one card per leader (whole company), and per manager for their own team when
``[digest] managers_too`` is on.

The figures cover the last check-in cadence (``[schedule] checkin_every_weeks`` weeks, full local days
before ``day``), compared with the cadence before it and with the company over the same days; the chart
shows the last ``[digest] trend_days`` days. Everything is SQL aggregation (``storage.queries.metrics``);
the chart renders in a worker thread and is stored in the media store, where adapters pick it up by hash.
With nothing due in the trend window there is no chart, only a line saying so. Photo-evidence requests
that expired unanswered are counted since the reader's previous digest (the evidence flow's promise to
tell the manager), so each expiry is reported once. The daily-active rate counts the period's workdays (the
scheduler's calendar) whose inbound events are still kept (``[retention] inbound_events_days``): with the
default week of retention it covers the last few workdays, and its comparison needs a retention of at least
two periods. One line gives the running cycle's goal figures (issue 17): the alignment rate and the
carry-over share from the cycle before it (``handlers.goals.api.goal_figures_of``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.schedule import DayArgs, Entry, Job, ScheduleEntry
from bot.core.status import OPEN_ACTION_ITEM, EvidenceRequestStatus
from cards.charts import Series, has_data, trend_chart_png
from cards.digest import DigestView, Figure, GoalLine, Named, Overdue, digest_card
from handlers.goals.api import goal_figures_of
from storage.media import MediaStore
from storage.models import Person
from storage.queries import metrics as m
from storage.queries.cycles import latest_active_cycle
from storage.queries.engagement import mention_nonresponders
from storage.queries.once import done_before
from storage.queries.people import direct_reports

SENT = "digest.sent"
LOW_RATE = 0.8
"""A completion, evidence or fulfilment rate below this is listed under the digest's risks."""


async def digest_scope(ctx: Context, person: Person) -> m.Scope | None:
    """Leaders see the company; managers (if enabled) their direct reports; anyone else gets no digest."""
    if person.has_role("leader"):
        return m.Scope(person.workspace_id)
    if ctx.settings.digest.managers_too:
        if await direct_reports(ctx.session, person.id):
            return m.Scope(person.workspace_id, manager_id=person.id)
    return None


@dataclass
class DigestFigures:
    """Everything the digest shows, straight from the aggregations (no formatting, no chart yet)."""

    now: m.Metrics
    before: m.Metrics
    company: m.Metrics
    overdue_total: int
    overdue: list[m.OverdueItem]
    risks: m.Risks
    kudos_top: list[m.RiskPerson]
    trend: list[m.TrendDay]
    expired: m.Expired
    expired_since: date
    previous_digest: m.PreviousDigest | None
    active: m.DailyActive = field(default_factory=m.DailyActive)
    active_before: m.DailyActive = field(default_factory=m.DailyActive)
    active_company: m.DailyActive = field(default_factory=m.DailyActive)


def has_any(figures: m.Metrics) -> bool:
    """Whether a period has any data at all (then a 0 is a value to compare with, not an absence)."""
    return bool(figures.checkins_due or figures.actions_due or figures.responses or figures.kudos_points)


async def compute_figures(
    session: AsyncSession,
    scope: m.Scope,
    *,
    day: date,
    tz: tzinfo,
    period_days: int,
    trend_days: int,
    reader_id: int | None = None,
    workdays: Collection[date] | None = None,
    kept_since: datetime | None = None,
) -> DigestFigures:
    """The digest's SQL: about twenty aggregates whose cost follows the window, not the history.
    ``reader_id`` finds the reader's previous digest (the start of "since last time"); ``workdays`` and
    ``kept_since`` bound the daily-active rate (``storage.queries.metrics.counted_workdays``)."""
    period = m.Window.ending(day, period_days, tz)
    last = None
    if reader_id is not None:
        last = await m.previous_digest(session, reader_id, action=SENT, before=day)
    since = last.day if last is not None else period.first_day
    now = await m.metrics(session, scope, period)
    before = await m.metrics(session, scope, period.previous())
    company = now if scope == scope.company() else await m.metrics(session, scope.company(), period)
    total, top = await m.overdue(session, scope, day, open_statuses=OPEN_ACTION_ITEM)

    async def active_in(where: m.Scope, window: m.Window) -> m.DailyActive:
        return await m.daily_active(session, where, window, workdays=workdays, kept_since=kept_since)

    active = await active_in(scope, period)
    active_company = active if scope == scope.company() else await active_in(scope.company(), period)
    return DigestFigures(
        now=now,
        before=before,
        company=company,
        overdue_total=total,
        overdue=top,
        risks=await m.risks(session, scope, period),
        kudos_top=await m.top_kudos(session, scope, period),
        trend=await m.trend(session, scope, m.Window.ending(day, trend_days, tz)),
        expired=await m.expired_evidence(
            session,
            scope,
            m.Window(since, day, tz),
            expired_status=EvidenceRequestStatus.EXPIRED,
            open_status=EvidenceRequestStatus.OPEN,
        ),
        expired_since=since,
        previous_digest=last,
        active=active,
        active_before=await active_in(scope, period.previous()),
        active_company=active_company,
    )


def scheduler_workdays(ctx: Context, first: date, end: date) -> frozenset[date] | None:
    """The scheduler's workdays in ``[first, end)``: a day is one when the first workday after the day
    before is the day itself. None (Monday to Friday) on a context without the scheduler's port."""
    port = ctx.schedule
    if port is None:
        return None
    days = (first + timedelta(days=i) for i in range((end - first).days))
    return frozenset(d for d in days if port.workday_after(d - timedelta(days=1)) == d)


def inbound_kept_since(ctx: Context) -> datetime | None:
    """Inbound events before this may have been purged by the retention sweep (None: it never runs)."""
    retention = ctx.settings.retention
    return ctx.now - timedelta(days=retention.inbound_events_days) if retention.enabled else None


async def goal_line(ctx: Context, scope: m.Scope) -> GoalLine | None:
    """The running cycle's alignment rate and carry-over share in the digest's scope (issue 17)."""
    cycle = await latest_active_cycle(ctx.session, scope.workspace_id)
    if cycle is None:
        return None
    found = await goal_figures_of(ctx.session, scope, cycle, now=ctx.now)
    figures = found.figures[0]
    return GoalLine(
        code=cycle.code,
        goals=figures.goals,
        aligned=figures.aligned,
        alignment=figures.alignment_rate,
        previous=found.previous.code if found.previous is not None else None,
        base=figures.carry_base,
        carried=figures.carried,
        share=figures.carry_over_share,
    )


async def build_digest(ctx: Context, person: Person, scope: m.Scope, day: date) -> DigestView:
    """Compute, chart and lay out ``person``'s digest of ``day``."""
    period_days = ctx.settings.schedule.checkin_every_weeks * 7
    trend_days = ctx.settings.digest.trend_days
    first = day - timedelta(days=2 * period_days)
    data = await compute_figures(
        ctx.session,
        scope,
        day=day,
        tz=ctx.zone(person),
        period_days=period_days,
        trend_days=trend_days,
        reader_id=person.id,
        workdays=scheduler_workdays(ctx, first, day),
        kept_since=inbound_kept_since(ctx),
    )
    is_company = scope == scope.company()
    now, before, company = data.now, data.before, data.company
    figures = [
        Figure(
            "checkin",
            now.checkin_rate,
            before.checkin_rate,
            company.checkin_rate,
            done=now.checkins_done,
            total=now.checkins_due,
        ),
        Figure(
            "evidence",
            now.evidence_rate,
            before.evidence_rate,
            company.evidence_rate,
            done=now.evidence_with,
            total=now.evidence_required,
        ),
        Figure(
            "response",
            now.response_hours,
            before.response_hours,
            company.response_hours,
            kind="hours",
            lower_is_better=True,
            done=now.responses,
        ),
        Figure(
            "fulfilment",
            now.fulfilment_rate,
            before.fulfilment_rate,
            company.fulfilment_rate,
            done=now.actions_on_time,
            total=now.actions_due,
        ),
        Figure(
            "active",
            data.active.rate,
            data.active_before.rate,
            data.active_company.rate,
            days=data.active.workdays if data.active.rate is not None else None,
            counts_as_risk=False,
        ),
    ]
    t = ctx.translator(person)
    points = data.trend
    series = [
        Series([p.checkin_rate for p in points], t("digest.series.checkin")),
        Series([p.fulfilment_rate for p in points], t("digest.series.fulfilment")),
    ]
    chart_media_id = None
    if has_data(series):
        png = await trend_chart_png([p.day for p in points], series)
        media = ctx.settings.media
        stored = await MediaStore(media.dir, max_bytes=max(media.max_image_bytes, len(png))).store_image(png)
        chart_media_id = stored.info.sha256
    label = t("digest.scope_company") if is_company else t("digest.scope_team", name=person.name)
    name_nonresponders = is_company or await mention_nonresponders(ctx.session, person.id)
    return DigestView(
        day=day,
        scope_label=label,
        period_days=period_days,
        figures=figures,
        overdue_total=data.overdue_total,
        overdue=[
            Overdue(o.item_id, o.owner_name, o.deliverable, o.deadline, (day - o.deadline).days)
            for o in data.overdue
        ],
        missed_twice=[Named(r.name, r.count) for r in data.risks.missed_twice],
        falling_progress=[Named(r.name, r.count) for r in data.risks.falling_progress],
        kudos_points=now.kudos_points,
        kudos_top=[Named(k.name, k.count) for k in data.kudos_top],
        chart_media_id=chart_media_id,
        compare_company=not is_company,
        name_nonresponders=name_nonresponders,
        low_rate=LOW_RATE,
        kudos_previous=before.kudos_points if has_any(before) else None,
        overdue_previous=data.previous_digest.overdue if data.previous_digest else None,
        trend_days=trend_days,
        expired_total=data.expired.total,
        expired=[Named(r.name, r.count) for r in data.expired.people],
        expired_since=data.expired_since,
        goals=await goal_line(ctx, scope),
    )


async def send_digest(ctx: Context, *, day: date) -> bool:
    """Scheduler entry point (ctx.person = the reader). One card per reader and day; False if none is due."""
    person = ctx.person
    if not ctx.settings.digest.enabled or not person.active:
        return False
    scope = await digest_scope(ctx, person)
    if scope is None:
        return False
    key = f"digest:{day.isoformat()}"
    if await done_before(ctx.session, action=SENT, entity="person", entity_id=person.id, key=key):
        return False
    view = await build_digest(ctx, person, scope, day)
    ctx.outbox.send(
        person,
        digest_card(ctx.translator(person), view),
        card_key=f"digest:{day.isoformat()}",
        dedupe_key=f"digest:{person.id}:{day.isoformat()}",
    )
    ctx.audit(SENT, "person", person.id, key=key, overdue=view.overdue_total)
    return True


# ------------------------------------------------------------------ schedule entries
SCHEDULE: tuple[ScheduleEntry, ...] = (
    Entry(Job.SEND_DIGEST, DayArgs, lambda ctx, a: send_digest(ctx, day=a.day)),
)
