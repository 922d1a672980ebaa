"""``perfloop kickoff CODE [--dates A~B] [--departments A,B] [--hr USER] [--allow-past] [--allow-overlap]``:
start a cycle without the chat preview.

The CLI invocation *is* the confirmation, so this goes straight to what confirming the preview card does:
the same validation, the same participants and the same kickoff broadcast (through the outbox, delivered
by the running service or by ``perfloop send``). What the preview would only warn about (a period that has
already ended, an overlap with an active cycle for the same people) has no second look here, so it is
refused unless the flag says the operator meant it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Outbox
from bot.core.localtime import local_today, person_date
from bot.core.people import is_hr_admin
from bot.core.status import CycleStatus
from cards.catalogue import Translator
from cards.kickoff import overlap_text
from handlers.kickoff.api import KickoffError, launch_cycle, move_cycle, parse_request, prepare_cycle
from storage.models import Person, Workspace

if TYPE_CHECKING:
    from bot.app.service import Service


class KickoffFailed(ValueError):
    """Bad input for ``perfloop kickoff``; the message is the one line to print before exiting non-zero."""


async def operator(
    session: AsyncSession, hr_user_id: str | None, t: Translator, *, command: str
) -> tuple[Person | None, Workspace]:
    """Who runs a cycle command from the CLI, and in which workspace.

    ``hr_user_id`` (a platform user id) must be one active HR admin, recorded as the actor; without it the
    operator acts, which is only unambiguous when the database has one workspace."""
    if hr_user_id:
        matches = list(
            await session.scalars(
                select(Person).where(Person.platform_user_id == hr_user_id, Person.active.is_(True))
            )
        )
        if len(matches) != 1:
            raise KickoffFailed(f"{command}: no single active person with user id {hr_user_id!r}")
        starter = matches[0]
        if not is_hr_admin(starter):
            raise KickoffFailed(t("flows.only_hr"))
        workspace = await session.get(Workspace, starter.workspace_id)
        assert workspace is not None
        return starter, workspace
    workspaces = list(await session.scalars(select(Workspace)))
    if len(workspaces) != 1:
        raise KickoffFailed(
            f"{command}: {len(workspaces)} workspaces in the database; pass --hr USER to choose one"
        )
    return None, workspaces[0]


def cli_outbox(service: Service, session: AsyncSession, workspace: Workspace, now: datetime) -> Outbox:
    """An outbox writing into the CLI's transaction, batched the way the workspace's platform wants."""
    registry = service.registry
    return Outbox(
        session=session,
        workspace=workspace,
        recipients_per_call=registry.recipients_per_call().get(workspace.platform, 1),
        interactive_recipients_per_call=registry.interactive_recipients_per_call().get(workspace.platform),
        now=now,
    )


async def kickoff_from_cli(
    service: Service,
    *,
    code: str,
    departments: list[str],
    hr_user_id: str | None,
    dates: str | None = None,
    allow_past: bool = False,
    allow_overlap: bool = False,
    finish: bool = True,
) -> str:
    """Start cycle ``code`` for ``departments`` (empty = whole company) and return a one-line summary.

    The start commits with the first chunk of participants and cards, which the outbox may send at once;
    with ``finish`` the rest is written here, a chunk per transaction, before returning (the command line),
    otherwise by the service's kickoff writer (a caller inside ``perfloop run``).

    ``hr_user_id`` (a platform user id) is recorded as the starter and must be an HR admin; without it the
    cycle is started by the operator, which is only unambiguous when the database has one workspace.
    ``dates`` (``2026-12-01~2027-02-28``) is required for a code that is not a period (``2026-Q1``).
    Raises ``KickoffFailed`` on bad input (bad code or dates, unknown department, duplicate code, not an HR
    admin, a past period without ``allow_past``, an overlap without ``allow_overlap``…).
    """
    t = Translator(service.settings.i18n.default_locale)
    now = service.clock.now()
    async with service.factory() as session, session.begin():
        starter, workspace = await operator(session, hr_user_id, t, command="kickoff")
        settings = service.settings
        today = (
            person_date(starter, now, settings)
            if starter
            else local_today(now, settings.schedule.default_timezone)
        )
        try:
            plan = await prepare_cycle(
                session,
                workspace.id,
                parse_request(code, dates, departments),
                today=today,
                actor_id=starter.id if starter else None,
                at=now,
                via="cli",
                goal_visibility=settings.goals.default_visibility,
            )
        except KickoffError as exc:
            raise KickoffFailed(exc.message(t)) from None
        code = plan.cycle.code
        if plan.period.past and not allow_past:
            raise KickoffFailed(t("kickoff.cli_past", code=code, end=plan.period.ends_on.isoformat()))
        if plan.overlaps and not allow_overlap:
            raise KickoffFailed(t("kickoff.cli_overlap", code=code, others=overlap_text(t, plan.overlaps)))
        cycle = await move_cycle(
            session,
            plan.cycle,
            CycleStatus.ACTIVE,
            actor_id=starter.id if starter else None,
            at=now,
            via="cli",
            values={"started_at": now, "started_by_id": starter.id if starter else None},
            headcount=plan.headcount.people,
            past=plan.period.past,
            overlap_override=[o.code for o in plan.overlaps],
        )
        if cycle is None:
            raise KickoffFailed(t("kickoff.duplicate", code=code, status=t("kickoff.status.active")))
        outbox = cli_outbox(service, session, workspace, now)
        participants, rows = await launch_cycle(session, outbox, service.settings, cycle)
    service.outbox.notify()
    if finish:
        rows += await service.launches.finish(cycle.id)
    else:
        service.launches.wake()
    return t(
        "kickoff.cli_started",
        code=code,
        start=plan.period.starts_on.isoformat(),
        end=plan.period.ends_on.isoformat(),
        n=participants,
        rows=rows,
    )
