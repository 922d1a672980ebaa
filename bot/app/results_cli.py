"""``perfloop results export|flag``: a cycle's results for payroll and HRIS, and HR's flags from a shell.

``export`` writes the file ``bot/app/results.py`` describes. With ``--output`` it writes next to the file
first and renames at the end, so an export that fails halfway (the database went away) leaves no half file
an HRIS job could pick up. XLSX needs ``--output``: it is binary and would garble a terminal.

``flag`` sets or takes back a promotion or high-potential flag with the chat command's rules and words
(``handlers/results``). ``--hr USER`` records who did it and must be an HR admin; without it the flag is
recorded as set by the operator (no person), which the audit row says (``via: cli``).

Only the argument parser is built at import time; the rest is imported when a command runs, like every
other command of ``bot/app/cli.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.core.config import Settings


class ResultsFailed(ValueError):
    """Bad input for ``perfloop results``; the message is the one line to print before exiting non-zero."""


def add_parser(sub: Any) -> None:
    """``perfloop results export`` and ``perfloop results flag``."""
    res = sub.add_parser(
        "results", help="a cycle's results for payroll/HRIS; HR's promotion and high-potential flags"
    )
    actions = res.add_subparsers(dest="results_command", required=True, metavar="ACTION")
    ex = actions.add_parser(
        "export",
        help="one row per person: grade, score, pay/bonus coefficient, flags, appeal state",
        description="Export a cycle's results for payroll or HRIS import: one row per person with stable "
        "English column names (docs/results-export.md). Only released grades unless --include-unreleased. "
        "CSV is UTF-8 with a byte-order mark, for Excel.",
    )
    ex.add_argument("--cycle", required=True, help="cycle code, e.g. 2026-Q4")
    ex.add_argument("--format", default="csv", metavar="{csv,xlsx}", help="csv (default) or xlsx")
    ex.add_argument(
        "--output", type=Path, default=None, help="file to write (default: stdout; xlsx needs a file)"
    )
    ex.add_argument(
        "--include-unreleased",
        action="store_true",
        help="also people whose grade is not released yet, or who have none (see the grade_status column)",
    )
    ex.add_argument("--platform", default=None, help="workspace platform, if the code exists in several")
    fl = actions.add_parser(
        "flag",
        help="set or take back a promotion / high-potential flag for one person in one cycle",
        description="Set (or with --unset take back) HR's promotion or high-potential flag, as /flag does "
        "in chat. The person is not told; the results export carries the flag.",
    )
    fl.add_argument("user_id", help="the person's platform user id")
    fl.add_argument("kind", help="promotion or high_potential (晋升 or 高潜 work too)")
    fl.add_argument("--unset", action="store_true", help="take the flag back")
    fl.add_argument(
        "--cycle", default=None, help="cycle code (default: the person's latest active, closing or closed)"
    )
    fl.add_argument(
        "--hr", default=None, help="platform user id of the HR admin recorded as the one who set it"
    )
    fl.add_argument("--platform", default=None, help="workspace platform, if the id exists in several")


async def results_export(args: argparse.Namespace, settings: Settings) -> str:
    """Run the export; returns the summary line for stderr."""
    from bot.app.results import FORMATS, ResultsError, export_results
    from storage.db import create_engine, ensure_migrated, session_factory

    if args.format not in FORMATS:
        raise ResultsFailed(f"unknown format {args.format!r}; choose {' or '.join(FORMATS)}")
    if args.format == "xlsx" and args.output is None:
        raise ResultsFailed("--format xlsx needs --output FILE (it is binary)")
    engine = create_engine(settings.database.url)
    try:
        await ensure_migrated(engine)
        factory = session_factory(engine)
        options: dict[str, Any] = {
            "cycle": args.cycle,
            "fmt": args.format,
            "include_unreleased": args.include_unreleased,
            "platform": args.platform,
        }
        if args.output is None:
            count = await export_results(factory, settings, out=sys.stdout.buffer, **options)
            sys.stdout.flush()
            return f"exported {count} rows of cycle {args.cycle}"
        part = args.output.with_name(args.output.name + ".part")
        try:
            with part.open("wb") as fh:
                count = await export_results(factory, settings, out=fh, **options)
            part.replace(args.output)
        finally:
            part.unlink(missing_ok=True)
        return f"exported {count} rows of cycle {args.cycle} to {args.output}"
    except ResultsError as exc:
        raise ResultsFailed(str(exc)) from None
    finally:
        await engine.dispose()


async def results_flag(args: argparse.Namespace, settings: Settings) -> str:
    """Set or take back one flag; returns the outcome line (also when nothing changed)."""
    from sqlalchemy import select

    from bot.app.person_lookup import PersonLookupError, find_person
    from bot.core.clock import Clock
    from bot.core.people import is_hr_admin
    from cards.catalogue import Translator
    from handlers.results.api import FlagRefused, apply_flag, kind_of, outcome_key, pick_cycle
    from storage.db import create_engine, ensure_migrated, session_factory
    from storage.models import Person

    t = Translator(settings.i18n.default_locale)
    kind = kind_of(args.kind)
    if kind is None:
        raise ResultsFailed(f"unknown flag {args.kind!r}; choose promotion or high_potential")
    engine = create_engine(settings.database.url)
    try:
        await ensure_migrated(engine)
        async with session_factory(engine)() as session, session.begin():
            try:
                person = await find_person(session, args.user_id, args.platform)
            except PersonLookupError as exc:
                raise ResultsFailed(str(exc)) from None
            actor_id: int | None = None
            if args.hr:
                hr = await session.scalar(
                    select(Person).where(
                        Person.workspace_id == person.workspace_id,
                        Person.platform_user_id == args.hr,
                        Person.active.is_(True),
                    )
                )
                if hr is None:
                    raise ResultsFailed(f"--hr: no active person with user id {args.hr!r} in that workspace")
                if not is_hr_admin(hr):
                    raise ResultsFailed(t("results.only_hr"))
                actor_id = hr.id
            try:
                cycle = await pick_cycle(session, person.workspace_id, person, args.cycle)
            except FlagRefused as refused:
                raise ResultsFailed(refused.message(t)) from None
            on = not args.unset
            changed = await apply_flag(
                session,
                cycle=cycle,
                person=person,
                kind=kind,
                on=on,
                actor_id=actor_id,
                at=Clock().now(),
                via="cli",
            )
            return t(
                outcome_key(on, changed), name=person.name, kind=t(f"results.kind.{kind}"), cycle=cycle.code
            )
    finally:
        await engine.dispose()
