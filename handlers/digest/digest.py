"""The daily leadership digest: one card per leader (whole company), and per manager for their own team when
``[digest] managers_too`` is on.

The figures cover the last check-in cadence (``[schedule] checkin_every_weeks`` weeks, full local days
before ``day``), compared with the cadence before it and with the company over the same days; the chart
shows the last ``[digest] trend_days`` days. Everything is SQL aggregation (``storage.queries.metrics``);
the chart renders in a worker thread and is stored in the media store, where adapters pick it up by hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.schedule import DayArgs, Entry, Job, ScheduleEntry
from bot.core.status import OPEN_ACTION_ITEM
from cards.charts import Series, trend_chart_png
from cards.digest import DigestView, Figure, Named, Overdue, digest_card
from storage.media import MediaStore
from storage.models import Person
from storage.queries import metrics as m
from storage.queries.engagement import mention_nonresponders
from storage.queries.once import done_before
from storage.queries.people import direct_reports

SENT = "digest.sent"


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


async def compute_figures(
    session: AsyncSession, scope: m.Scope, *, day: date, tz: tzinfo, period_days: int, trend_days: int
) -> DigestFigures:
    """The digest's SQL: about twenty aggregates whose cost follows the window, not the history."""
    period = m.Window.ending(day, period_days, tz)
    now = await m.metrics(session, scope, period)
    before = await m.metrics(session, scope, period.previous())
    company = now if scope == scope.company() else await m.metrics(session, scope.company(), period)
    total, top = await m.overdue(session, scope, day, open_statuses=OPEN_ACTION_ITEM)
    return DigestFigures(
        now=now,
        before=before,
        company=company,
        overdue_total=total,
        overdue=top,
        risks=await m.risks(session, scope, period),
        kudos_top=await m.top_kudos(session, scope, period),
        trend=await m.trend(session, scope, m.Window.ending(day, trend_days, tz)),
    )


async def build_digest(ctx: Context, person: Person, scope: m.Scope, day: date) -> DigestView:
    """Compute, chart and lay out ``person``'s digest of ``day``."""
    period_days = ctx.settings.schedule.checkin_every_weeks * 7
    data = await compute_figures(
        ctx.session,
        scope,
        day=day,
        tz=ctx.zone(person),
        period_days=period_days,
        trend_days=ctx.settings.digest.trend_days,
    )
    is_company = scope == scope.company()

    def fig(key: str, attr: str, kind: Literal["rate", "hours"] = "rate", lower: bool = False) -> Figure:
        return Figure(
            key, getattr(data.now, attr), getattr(data.before, attr), getattr(data.company, attr), kind, lower
        )

    figures = [
        fig("checkin", "checkin_rate"),
        fig("evidence", "evidence_rate"),
        fig("response", "response_hours", "hours", lower=True),
        fig("fulfilment", "fulfilment_rate"),
    ]
    points = data.trend
    png = await trend_chart_png(
        [p.day for p in points],
        [Series([p.checkin_rate for p in points]), Series([p.fulfilment_rate for p in points])],
    )
    store = MediaStore(ctx.settings.media.dir, max_bytes=max(ctx.settings.media.max_image_bytes, len(png)))
    stored = await store.store_image(png)
    t = ctx.translator(person)
    label = t("digest.scope_company") if is_company else t("digest.scope_team", name=person.name)
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
        kudos_points=data.now.kudos_points,
        kudos_top=[Named(k.name, k.count) for k in data.kudos_top],
        chart_media_id=stored.info.sha256,
        compare_company=not is_company,
        name_nonresponders=is_company or await mention_nonresponders(ctx.session, person.id),
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
