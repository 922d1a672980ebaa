"""Engagement and noise controls: pause/resume, quiet hours, answering early, and per-team settings.

- ``/pause`` and ``/resume`` flip ``people.paused``; the scheduler already leaves paused people out of its
  prompts, so pausing is one switch with one meaning.
- ``/quiet 22:00-08:00`` stores the person's quiet hours. Prompts sent through ``send_polite`` are written
  to the outbox as usual but not due before the quiet hours end, so nothing is lost and nothing is
  dropped: the card simply arrives in the morning.
- ``/checkin`` opens the next scheduled check-in now (answer early). It goes through the check-in flow's
  own ``open_checkin`` with the next occurrence's period, so when the scheduler reaches that occurrence the
  check-in already exists and nothing is sent twice.
- ``/team cadence 1 [weekday]``, ``/team window 48``, ``/team mentions off``: a manager's settings for
  their direct reports. The cadence is written onto each report (``cadence_weeks``/``checkin_weekday``,
  which the scheduler reads), so sales can run weekly while R&D runs every two weeks.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from bot.core.context import Context, Reply
from bot.core.router import Router
from bot.core.schedule import takes_checkins
from bot.core.status import ANSWERABLE_CHECKIN, CheckInStatus
from cards.engagement import social_proof_line, streak_line, team_card
from handlers.checkin.api import open_checkin
from storage.models import QuietHours, TeamSetting
from storage.queries import checkins as chq
from storage.queries import engagement as eq
from storage.queries.people import direct_reports

router = Router()

MAX_WINDOW_HOURS = 14 * 24
MAX_CADENCE_WEEKS = 8
ON_WORDS = {"on", "yes", "开", "开启"}
OFF_WORDS = {"off", "no", "关", "关闭"}


async def streak_note(ctx: Context) -> str | None:
    """The line for the check-in confirmation card ("🔥 4 on-time check-ins in a row"), or None."""
    return streak_line(ctx.t, await eq.streak_for(ctx.session, ctx.person.id))


async def social_proof_note(ctx: Context, period: str) -> str | None:
    """The line for a check-in reminder ("12 of 15 teammates have answered"), or None when it would not
    encourage anyone (nobody else answered yet)."""
    answered, asked = await eq.social_proof(ctx.session, ctx.person, period)
    return social_proof_line(ctx.t, answered, asked)


# ------------------------------------------------------------------ pause / resume


@router.command("pause", "暂停")
async def pause(ctx: Context, args: str) -> Reply:
    if ctx.person.paused:
        return Reply(toast=ctx.t("engagement.already_paused"), toast_kind="info")
    ctx.person.paused = True
    ctx.audit("engagement.paused", "person", ctx.person.id)
    return Reply(toast=ctx.t("engagement.paused"))


@router.command("resume", "恢复")
async def resume(ctx: Context, args: str) -> Reply:
    if not ctx.person.paused:
        return Reply(toast=ctx.t("engagement.not_paused"), toast_kind="info")
    ctx.person.paused = False
    ctx.audit("engagement.resumed", "person", ctx.person.id)
    return Reply(toast=ctx.t("engagement.resumed"))


# ------------------------------------------------------------------ quiet hours


@router.command("quiet", "免打扰")
async def quiet(ctx: Context, args: str) -> Reply:
    row = await eq.quiet_hours_of(ctx.session, ctx.person.id)
    word = args.strip().lower()
    if not word:
        if row is None:
            return Reply(toast=ctx.t("engagement.quiet_none"), toast_kind="info")
        return Reply(
            toast=ctx.t("engagement.quiet_current", start=row.starts, end=row.ends), toast_kind="info"
        )
    if word in OFF_WORDS:
        if row is not None:
            await ctx.session.delete(row)
        ctx.audit("engagement.quiet_cleared", "person", ctx.person.id)
        return Reply(toast=ctx.t("engagement.quiet_cleared"))
    start_text, sep, end_text = word.replace("～", "-").replace("~", "-").partition("-")
    start, end = eq.parse_hhmm(start_text), eq.parse_hhmm(end_text)
    if not sep or start is None or end is None or start == end:
        raise ctx.refuse("engagement.quiet_usage")
    starts, ends = start.strftime("%H:%M"), end.strftime("%H:%M")
    if row is None:
        try:
            async with ctx.session.begin_nested():
                ctx.session.add(QuietHours(person_id=ctx.person.id, starts=starts, ends=ends))
                await ctx.session.flush()
        except IntegrityError:
            row = await eq.quiet_hours_of(ctx.session, ctx.person.id)
    if row is not None:
        row.starts, row.ends = starts, ends
    ctx.audit("engagement.quiet_set", "person", ctx.person.id, starts=starts, ends=ends)
    return Reply(toast=ctx.t("engagement.quiet_set", start=starts, end=ends))


# ------------------------------------------------------------------ answer early


@router.command("checkin", "签到")
async def early_checkin(ctx: Context, args: str) -> Reply:
    """Open the next scheduled check-in ahead of time."""
    person = ctx.person
    if not takes_checkins(person):
        raise ctx.refuse("engagement.no_checkins")
    current = await chq.latest_answerable(ctx.session, person.id, ANSWERABLE_CHECKIN)
    if current is not None and current.status == CheckInStatus.OPEN:
        raise ctx.refuse("engagement.checkin_already_open", period=current.period)
    occurrence = await ctx.scheduler().next_checkin(ctx.session, person, ctx.now)
    if occurrence is None:
        raise ctx.refuse("engagement.no_checkins")
    opened = await open_checkin(ctx, period=occurrence.period, due_at=occurrence.at)
    if opened is None:
        raise ctx.refuse("engagement.checkin_already_open", period=occurrence.period)
    ctx.audit("engagement.early_checkin", "checkin", opened.id, period=occurrence.period)
    return Reply(toast=ctx.t("engagement.early_opened", period=occurrence.period))


# ------------------------------------------------------------------ team settings


async def _team_setting(ctx: Context) -> TeamSetting:
    row = await eq.team_setting(ctx.session, ctx.person.id)
    if row is not None:
        return row
    try:
        async with ctx.session.begin_nested():
            row = TeamSetting(manager_id=ctx.person.id, updated_at=ctx.now)
            ctx.session.add(row)
            await ctx.session.flush()
    except IntegrityError:
        row = await eq.team_setting(ctx.session, ctx.person.id)
        assert row is not None
    return row


def _weekday(text: str) -> int | None:
    """1 = Monday … 7 = Sunday, as people count; stored 0-6 like ``schedule.checkin_weekday``."""
    return int(text) - 1 if text.isdigit() and 1 <= int(text) <= 7 else None


@router.command("team", "团队")
async def team(ctx: Context, args: str) -> Reply:
    reports = await direct_reports(ctx.session, ctx.person.id)
    if not reports:
        raise ctx.refuse("engagement.team_only_managers")
    words = args.split()
    cfg = ctx.settings.schedule
    if words:
        row = await _team_setting(ctx)
        key, values = words[0].lower(), words[1:]
        if key in ("cadence", "节奏") and values:
            weeks = int(values[0]) if values[0].isdigit() else 0
            weekday = _weekday(values[1]) if len(values) > 1 else row.checkin_weekday
            if not 1 <= weeks <= MAX_CADENCE_WEEKS or (len(values) > 1 and weekday is None):
                raise ctx.refuse("engagement.team_usage")
            row.cadence_weeks, row.checkin_weekday = weeks, weekday
            for person in reports:
                person.cadence_weeks, person.checkin_weekday = weeks, weekday
        elif key in ("window", "窗口") and values:
            hours = int(values[0]) if values[0].isdigit() else 0
            if not 1 <= hours <= MAX_WINDOW_HOURS:
                raise ctx.refuse("engagement.team_usage")
            row.answer_window_hours = hours
        elif key in ("mentions", "提醒") and values and values[0].lower() in ON_WORDS | OFF_WORDS:
            row.mention_nonresponders = values[0].lower() in ON_WORDS
        else:
            raise ctx.refuse("engagement.team_usage")
        row.updated_at = ctx.now
        ctx.audit(
            "engagement.team_set",
            "person",
            ctx.person.id,
            setting=key,
            values=values[:2],
            members=[p.id for p in reports],
        )
    current = await eq.team_setting(ctx.session, ctx.person.id)
    weekday = (
        cfg.checkin_weekday if current is None or current.checkin_weekday is None else current.checkin_weekday
    )
    card = team_card(
        ctx.t,
        cadence_weeks=(
            current.cadence_weeks if current and current.cadence_weeks else cfg.checkin_every_weeks
        ),
        weekday=weekday,
        window_hours=(
            current.answer_window_hours
            if current and current.answer_window_hours
            else cfg.checkin_answer_window_hours
        ),
        mentions=True if current is None else current.mention_nonresponders,
        members=len(reports),
    )
    return Reply(toast=ctx.t("engagement.team_saved") if words else None, card=card)
