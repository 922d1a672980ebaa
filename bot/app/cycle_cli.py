"""``perfloop cycle close [--cycle C] [--carry-over | --cancel-open] [--yes] [--hr USER]``: close a cycle
from the command line with the same preview and the same close as ``/closecycle``.

Without ``--yes`` it prints the preview (what is still open) and changes nothing: a command line has no
second look, so the look and the act are two invocations. With ``--yes`` and one of the two modes it closes
the cycle at once (an active cycle passes through *closing*; both moves are audited, ``via: cli``), and the
closing cards go through the outbox, delivered by the running service or by ``perfloop send``.

Heavy imports wait inside the functions: ``perfloop --help`` must not load the flows.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.app.service import Service
    from bot.core.config import Settings


class CycleCommandFailed(ValueError):
    """Refused input for ``perfloop cycle``; the message is the one line to print before exiting non-zero."""


def add_parser(sub: Any) -> None:
    """``perfloop cycle close``."""
    cycle = sub.add_parser("cycle", help="performance cycle states (close)")
    actions = cycle.add_subparsers(dest="cycle_command", required=True, metavar="ACTION")
    close = actions.add_parser(
        "close",
        help="preview what a cycle still has open, then close it",
        description="Without --yes: print what the cycle still has open (ungraded people, open check-ins, "
        "action items, unrated deliverables, pending appeals) and change nothing. With --yes and "
        "--carry-over or --cancel-open: close it, settle the open items that way, and queue one closing "
        "card per person in scope.",
    )
    close.add_argument("--cycle", default=None, help="cycle code (default: the one active or closing cycle)")
    mode = close.add_mutually_exclusive_group()
    mode.add_argument("--carry-over", action="store_true", help="open items stay open (check-ins move on)")
    mode.add_argument("--cancel-open", action="store_true", help="open items are cancelled")
    close.add_argument("--yes", action="store_true", help="really close (default: preview only)")
    close.add_argument("--hr", default=None, help="platform user id of the HR admin recorded as the closer")


async def close_from_cli(
    service: Service, *, code: str | None, mode: str | None, hr_user_id: str | None, yes: bool
) -> str:
    """The preview (always), then, with ``yes`` and a ``mode`` (``carry_over`` or ``cancel``), the close;
    returns the lines to print. Raises ``CycleCommandFailed`` when refused (not an HR admin, unknown code,
    a draft, cancelled or closed cycle, no mode with ``yes``)."""
    from bot.app.kickoff_cli import KickoffFailed, cli_outbox, operator
    from cards.catalogue import Translator
    from cards.cycle_close import preview_lines
    from handlers.kickoff.api import (
        CloseMode,
        KickoffError,
        close_cycle,
        close_preview,
        find_cycle_to_close,
        unclosable,
    )

    t = Translator(service.settings.i18n.default_locale)
    now = service.clock.now()
    settings = service.settings
    async with service.factory() as session, session.begin():
        try:
            closer, workspace = await operator(session, hr_user_id, t, command="cycle close")
            cycle = await find_cycle_to_close(session, workspace.id, code)
            problem = unclosable(cycle, settings)
            if problem is not None:
                raise problem
            counts = await close_preview(session, cycle)
        except KickoffFailed as exc:
            raise CycleCommandFailed(str(exc)) from None
        except KickoffError as exc:
            raise CycleCommandFailed(exc.message(t)) from None
        lines = [t("cycle_close.preview_title", code=counts.code)]
        lines += [f"  {label}: {value}" for label, value in preview_lines(t, counts)]
        if not yes:
            return "\n".join([*lines, t("cycle_close.cli_preview_only")])
        if mode is None:
            raise CycleCommandFailed(t("cycle_close.cli_need_mode"))
        chosen = CloseMode(mode)
        try:
            result = await close_cycle(
                session,
                cli_outbox(service, session, workspace, now),
                settings,
                cycle,
                mode=chosen,
                actor_id=closer.id if closer else None,
                at=now,
                via="cli",
            )
        except KickoffError as exc:
            raise CycleCommandFailed(exc.message(t)) from None
    service.outbox.notify()
    done = t(
        "cycle_close.cli_closed",
        code=counts.code,
        mode=t(f"cycle_close.mode_{chosen.word}"),
        checkins=result.checkins,
        actions=result.action_items,
        ratings=result.ratings,
        n=result.notified,
        rows=result.rows,
    )
    return "\n".join([*lines, done])


async def cycle_close(args: argparse.Namespace, settings: Settings) -> str:
    """``perfloop cycle close``: migrations checked, workspaces known, then ``close_from_cli``."""
    from bot.app.service import cli_service

    mode = "carry_over" if args.carry_over else "cancel" if args.cancel_open else None
    async with cli_service(settings) as service:
        return await close_from_cli(service, code=args.cycle, mode=mode, hr_user_id=args.hr, yes=args.yes)
