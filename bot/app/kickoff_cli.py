"""``perfloop kickoff CODE [--departments A,B] [--hr USER]``: start a cycle without the chat preview.

The CLI invocation *is* the confirmation, so this goes straight to what confirming the preview card does:
the same validation, the same participants and the same kickoff broadcast (through the outbox, delivered
by the running service or by ``perfloop send``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.core.context import Outbox
from bot.core.localtime import local_today, person_date
from bot.core.people import is_hr_admin
from bot.core.status import CycleStatus
from cards.catalogue import Translator
from handlers.kickoff.api import KickoffError, launch_cycle, prepare_cycle
from storage.models import AuditLog, Person, Workspace
from storage.queries.status import transition

if TYPE_CHECKING:
    from bot.app.service import Service


class KickoffFailed(ValueError):
    """Bad input for ``perfloop kickoff``; the message is the one line to print before exiting non-zero."""


async def kickoff_from_cli(
    service: Service, *, code: str, departments: list[str], hr_user_id: str | None
) -> str:
    """Start cycle ``code`` for ``departments`` (empty = whole company) and return a one-line summary.

    ``hr_user_id`` (a platform user id) is recorded as the starter and must be an HR admin; without it the
    cycle is started by the operator, which is only unambiguous when the database has one workspace.
    Raises ``KickoffFailed`` on bad input (unknown department, duplicate code, not an HR admin…).
    """
    t = Translator(service.settings.i18n.default_locale)
    now = service.clock.now()
    async with service.factory() as session, session.begin():
        starter: Person | None = None
        if hr_user_id:
            matches = list(
                await session.scalars(
                    select(Person).where(Person.platform_user_id == hr_user_id, Person.active.is_(True))
                )
            )
            if len(matches) != 1:
                raise KickoffFailed(f"kickoff: no single active person with user id {hr_user_id!r}")
            starter = matches[0]
            if not is_hr_admin(starter):
                raise KickoffFailed(t("flows.only_hr"))
            workspace = await session.get(Workspace, starter.workspace_id)
        else:
            workspaces = list(await session.scalars(select(Workspace)))
            if len(workspaces) != 1:
                raise KickoffFailed(
                    f"kickoff: {len(workspaces)} workspaces in the database; pass --hr USER to choose one"
                )
            workspace = workspaces[0]
        assert workspace is not None
        try:
            plan = await prepare_cycle(
                session, workspace.id, code, [d.strip() for d in departments if d.strip()]
            )
        except KickoffError as exc:
            raise KickoffFailed(exc.message(t)) from None
        cycle = await transition(
            session,
            type(plan.cycle),
            plan.cycle.id,
            allowed=[CycleStatus.DRAFT],
            values={
                "status": CycleStatus.ACTIVE,
                "started_at": now,
                "started_by_id": starter.id if starter else None,
            },
        )
        if cycle is None:
            raise KickoffFailed(t("kickoff.duplicate", code=code, status=CycleStatus.ACTIVE))
        if cycle.starts_on is None:
            settings = service.settings
            cycle.starts_on = (
                person_date(starter, now, settings)
                if starter
                else local_today(now, settings.schedule.default_timezone)
            )
        registry = service.registry
        outbox = Outbox(
            session=session,
            workspace=workspace,
            recipients_per_call=registry.recipients_per_call().get(workspace.platform, 1),
            interactive_recipients_per_call=registry.interactive_recipients_per_call().get(
                workspace.platform
            ),
            now=now,
        )
        participants, rows = await launch_cycle(session, outbox, service.settings, cycle)
        session.add(
            AuditLog(
                at=now,
                actor_id=starter.id if starter else None,
                action="cycle.started",
                entity="cycle",
                entity_id=cycle.id,
                detail={"code": code, "headcount": participants, "via": "cli"},
            )
        )
    service.outbox.notify()
    return t("kickoff.cli_started", code=code, n=participants, rows=rows)
