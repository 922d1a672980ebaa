"""``perfloop`` command line. Every subcommand has ``--help``; bad input exits non-zero with one line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from bot.core.config import ConfigError, Settings, load_settings
from storage.db import NotMigratedError

EXIT_USAGE = 2


class CliError(Exception):
    """A problem the operator can fix; printed as one line, exit code 2."""


Command = Callable[[argparse.Namespace, Settings], Awaitable[int] | int]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="perfloop", description="Chat-ops performance management bot.")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config file (default ./perfloop.toml, else built-in defaults)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="start the service (callbacks, simulator, outbox, scheduler)")
    sub.add_parser("migrate", help="upgrade the database schema to this version")
    d = sub.add_parser(
        "demo",
        help="fresh SQLite demo with a seeded org and the simulator chat",
        description="Start a throw-away demo: a fresh SQLite database with a seeded 40-person company, the "
        "service with the simulator (every real platform off) and a local web chat to open in a browser. "
        "Other settings (time zone, locale, cadence…) come from the config file and PERFLOOP_* variables.",
    )
    d.add_argument(
        "--host",
        default=None,
        help="address to listen on (default: server.host / PERFLOOP_SERVER__HOST, else 127.0.0.1); "
        "the simulator lets anyone act as anyone, so a non-loopback address needs sim.allow_remote = true",
    )
    d.add_argument(
        "--port",
        type=_port,
        default=None,
        help="port to listen on (default: server.port / PERFLOOP_SERVER__PORT, else 8080)",
    )
    d.add_argument(
        "--db",
        type=Path,
        default=Path("perfloop-demo.db"),
        help="SQLite file for the demo, deleted and created afresh on every start "
        "(default: perfloop-demo.db; database.url is never used by the demo)",
    )
    d.add_argument(
        "--peer-round",
        action="store_true",
        help="also start this quarter's cycle and play a peer-feedback round for 周杰, so his manager "
        "赵磊 has the aggregate card with the radar chart to see",
    )

    org = sub.add_parser("org", help="organisation data").add_subparsers(
        dest="org_command", required=True, metavar="ACTION"
    )
    imp = org.add_parser("import", help="import departments and people from a CSV file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--platform", default="sim", help="workspace platform (default: sim)")
    imp.add_argument(
        "--workspace", default=None, help="workspace app id (default: the platform's configured app)"
    )
    imp.add_argument(
        "--deactivate-missing",
        action="store_true",
        help="deactivate people of the workspace who are not in the file",
    )
    sync = org.add_parser("sync", help="pull departments and people from a platform's contact API")
    sync.add_argument("platform", choices=["wecom", "feishu", "dingtalk"])

    ex = sub.add_parser("export", help="export a table")
    ex.add_argument("table")
    ex.add_argument("--format", choices=["csv", "json"], default="csv")
    ex.add_argument("--output", type=Path, default=None, help="file to write (default: stdout)")

    kick = sub.add_parser("kickoff", help="start a performance cycle and broadcast the kickoff card")
    kick.add_argument(
        "code", help="cycle code: 2026-Q1, 2026-H2, 2026-03 or 2026 bring their dates; others need --dates"
    )
    kick.add_argument(
        "--dates", default=None, help="start~end, e.g. 2026-12-01~2027-02-28 (overrides the code's)"
    )
    kick.add_argument(
        "--departments", default="", help="comma-separated department names (default: everyone)"
    )
    kick.add_argument("--hr", default=None, help="platform user id of the HR admin recorded as the starter")
    kick.add_argument(
        "--allow-past", action="store_true", help="start a cycle whose period has already ended"
    )
    kick.add_argument(
        "--allow-overlap",
        action="store_true",
        help="start even if an active cycle covers the same people and days",
    )

    rep = sub.add_parser("report", help="health metrics per department and per person for a cycle")
    rep.add_argument("--cycle", default=None, help="cycle code (default: the newest active cycle)")
    rep.add_argument("--format", choices=["csv", "json"], default="csv")
    rep.add_argument("--output", type=Path, default=None, help="file to write (default: stdout)")

    sched = sub.add_parser("schedule", help="list the next scheduled items with local times and reasons")
    sched.add_argument("--next", type=int, default=20, help="how many items (default 20)")

    pex = sub.add_parser(
        "person-export", help="everything one person may see about themselves, as JSON (data requests)"
    )
    pex.add_argument("user_id", help="the person's platform user id")
    pex.add_argument("--platform", default=None, help="workspace platform, if the id exists in several")
    pex.add_argument("--output", type=Path, default=None, help="file to write (default: stdout)")

    per = sub.add_parser(
        "person-erase",
        help="erase a leaver's personal data (PIPL); counts stay, the audit trail is pseudonymised",
        description="Erase one person's personal data: name and platform id become erased-<id>; their texts, "
        "photos, events and messages go; counts, rates and the audit trail (pseudonymised) stay. "
        "Without --yes nothing changes: it prints what would be erased.",
    )
    per.add_argument("user_id", help="the person's platform user id")
    per.add_argument("--platform", default=None, help="workspace platform, if the id exists in several")
    per.add_argument(
        "--yes", action="store_true", help="really erase (default: a dry run that changes nothing)"
    )

    sub.add_parser("doctor", help="check config, database, migrations and platform credentials")
    sub.add_parser("send", help="deliver everything due in the outbox now, then exit")
    _outbox_parser(sub)
    from bot.app.cycle_cli import add_parser as cycle_parser

    cycle_parser(sub)
    from bot.app.results_cli import add_parser as results_parser

    results_parser(sub)
    return p


def _port(text: str) -> int:
    """A TCP port for ``--port``: a typo is refused by argparse with one line, not by a bind traceback."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1 to 65535)")
    return port


def _outbox_parser(sub: Any) -> None:
    """``perfloop outbox list|retry``: dead letters and sends in doubt without SQL (issue 16 #11)."""
    box = sub.add_parser("outbox", help="list undelivered outbox rows; re-queue dead or in-doubt ones")
    actions = box.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    ls = actions.add_parser(
        "list",
        help="rows not sent yet, oldest first",
        description="Rows not sent yet (pending, sending, dead, unknown), oldest first: id, platform, "
        "recipients, attempts, age and the last error. 'unknown' = a send in doubt past the platform's "
        "dedupe window, not sent again automatically.",
    )
    ls.add_argument("--dead", action="store_true", help="only dead letters (gave up after errors)")
    ls.add_argument("--unknown", action="store_true", help="only sends in doubt past the dedupe window")
    ls.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    rt = actions.add_parser(
        "retry",
        help="re-queue a dead or unknown row (or all of them) for delivery now",
        description="Re-queue for delivery now: status pending, attempts reset to 0, last error kept. "
        "Retrying an 'unknown' row may show the card twice if its first send did land.",
    )
    which = rt.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", type=int, help="the outbox row id (see `perfloop outbox list`)")
    which.add_argument("--all-dead", action="store_true", help="every dead row")
    which.add_argument("--all-unknown", action="store_true", help="every row in doubt (status unknown)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    handler = COMMANDS[_command_name(args)]
    try:
        result = handler(args, settings)
        if asyncio.iscoroutine(result):
            return asyncio.run(_quiet(result))
        return int(result)  # type: ignore[arg-type]
    except (CliError, NotMigratedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: cannot reach a required service: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _command_name(args: argparse.Namespace) -> str:
    """``org import``, ``outbox list``…: commands with actions are keyed by both words."""
    action = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {action}" if action else str(args.command)


async def _quiet(coro: Coroutine[Any, Any, int]) -> int:
    return await coro


# ---------------------------------------------------------------------------------------------- commands
def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from bot.app.http import create_app
    from bot.app.listen import ListenError, listen
    from bot.app.logs import setup_logging
    from bot.app.service import build_service
    from storage.db import NotMigratedError, create_engine, ensure_migrated

    try:
        sock = listen(settings, texts="server")
    except ListenError as exc:
        raise CliError(str(exc)) from None
    setup_logging(settings.server.log_level)
    engine = create_engine(settings.database.url)
    try:
        asyncio.run(_check_migrated(engine, ensure_migrated))
    except NotMigratedError as exc:
        sock.close()
        raise CliError(str(exc)) from None
    except OSError as exc:
        sock.close()
        raise CliError(f"database unreachable: {exc}") from None
    service = build_service(settings)
    _add_background(service)
    web.run_app(
        create_app(service),
        sock=sock,
        print=None,
        access_log=None,
        shutdown_timeout=10,
    )
    return 0


def _add_background(service: Any) -> None:
    """Jobs beyond the outbox that every ``run`` process starts (scheduler leadership is decided inside):
    the scheduler with every flow's schedule entries plus the daily org sync, and the prompt org sync after
    a member change on whichever replica hears it."""
    from bot.app.orgsync_job import OrgSyncJob
    from bot.app.service import scheduler_job

    orgsync = OrgSyncJob(service)
    service.background.append(orgsync.run)
    service.background.append(scheduler_job(orgsync.entry()))


async def _check_migrated(engine: Any, check: Callable[[Any], Awaitable[None]]) -> None:
    try:
        await check(engine)
    finally:
        await engine.dispose()


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from storage.db import migrate

    try:
        await migrate(settings.database.url)
    except OSError as exc:
        raise CliError(f"database unreachable: {exc}") from None
    print(f"database at {settings.database.url.split('@')[-1]} is up to date")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """The loaded configuration goes along: the demo keeps all of it but the database and the platforms."""
    from bot.app.demo import DemoError, run_demo

    try:
        run_demo(
            args.db,
            args.host,
            args.port,
            base=settings,
            configure=_add_background,
            peer_round=args.peer_round,
        )
    except DemoError as exc:
        raise CliError(str(exc)) from None
    return 0


async def cmd_org_import(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from bot.app.orgimport import CsvImportError, read_org_csv
    from bot.app.orgsync import apply_org, workspace_for
    from storage.db import NotMigratedError, create_engine, ensure_migrated, session_factory

    try:
        org = read_org_csv(args.file)
    except CsvImportError as exc:
        raise CliError(f"{args.file}: {exc}") from None
    app_id = args.workspace or _workspace_id(settings, args.platform)
    engine = create_engine(settings.database.url)
    try:
        await ensure_migrated(engine)
        with tqdm(total=len(org.members), unit="people", disable=not sys.stderr.isatty()) as bar:
            async with session_factory(engine)() as session, session.begin():
                ws = await workspace_for(session, args.platform, app_id)
                report = await apply_org(
                    session,
                    ws,
                    org,
                    default_timezone=settings.schedule.default_timezone,
                    default_locale=settings.i18n.default_locale,
                    deactivate_missing=args.deactivate_missing,
                    progress=_ticker(bar),
                )
    except NotMigratedError as exc:
        raise CliError(str(exc)) from None
    finally:
        await engine.dispose()
    print(f"imported {len(org.members)} people into {args.platform}:{app_id}: {report.summary()}")
    return 0


def _ticker(bar: Any) -> Callable[[int], None]:
    def tick(n: int) -> None:
        bar.update(n)

    return tick


def _workspace_id(settings: Settings, platform: str) -> str:
    ids = {
        "sim": "sim",
        "wecom": settings.wecom.corp_id,
        "feishu": settings.feishu.app_id,
        "dingtalk": settings.dingtalk.app_key,
    }
    if platform not in ids:
        raise CliError(f"unknown platform {platform!r} (sim, wecom, feishu, dingtalk)")
    if not ids[platform]:
        raise CliError(f"{platform}: no app id configured; pass --workspace")
    return ids[platform]


async def cmd_org_sync(args: argparse.Namespace, settings: Settings) -> int:
    from adapters.registry import AdapterRegistry
    from bot.app.orgsync import sync_platform
    from storage.db import create_engine, ensure_migrated, session_factory

    if args.platform not in settings.enabled_platforms:
        raise CliError(
            f"{args.platform} is not enabled in the configuration ([{args.platform}] enabled = true)"
        )
    registry = AdapterRegistry.from_settings(settings)
    adapter = registry.get(args.platform)
    engine = create_engine(settings.database.url)
    try:
        await ensure_migrated(engine)
        report = await sync_platform(adapter, session_factory(engine), settings)
    finally:
        for a in registry:
            await a.close()
        await engine.dispose()
    print(f"{args.platform}: {report.summary()}")
    return 0


async def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.export import ExportError, export_table
    from storage.db import create_engine, ensure_migrated, session_factory

    engine = create_engine(settings.database.url)
    try:
        await ensure_migrated(engine)
        if args.output:
            with args.output.open("w", encoding="utf-8", newline="") as fh:
                n = await export_table(session_factory(engine), args.table, args.format, fh)
            print(f"exported {n} rows of {args.table} to {args.output}", file=sys.stderr)
        else:
            await export_table(session_factory(engine), args.table, args.format, sys.stdout)
    except ExportError as exc:
        raise CliError(str(exc)) from None
    finally:
        await engine.dispose()
    return 0


async def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.doctor import run_checks

    checks = await run_checks(settings)
    for check in checks:
        print(check.line())
    return 0 if all(c.ok for c in checks) else 1


async def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.service import cli_service

    async with cli_service(settings) as service:
        await service.outbox.drain(timeout=3600)
        depth = await service.outbox.depth()
    print(f"outbox: sent {service.outbox.sent_count}, dead {service.outbox.dead_count}, now {depth}")
    return 0


async def cmd_kickoff(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.kickoff_cli import KickoffFailed, kickoff_from_cli
    from bot.app.service import cli_service

    departments = [d.strip() for d in args.departments.replace("，", ",").split(",") if d.strip()]

    async def kickoff() -> str:
        async with cli_service(settings) as service:
            return await kickoff_from_cli(
                service,
                code=args.code,
                departments=departments,
                hr_user_id=args.hr,
                dates=args.dates,
                allow_past=args.allow_past,
                allow_overlap=args.allow_overlap,
            )

    return await _print_outcome(kickoff(), KickoffFailed)


async def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.report import ReportError, stream_report
    from bot.app.service import build_service
    from storage.db import ensure_migrated

    service = build_service(settings)
    # Each piece goes out as it is written: 100,000 people are a 10 MB file that is never held whole. A
    # file is written beside its name and moved into place at the end, so a failed run leaves no half file.
    partial = args.output.with_name(args.output.name + ".partial") if args.output else None
    done = False
    try:
        await ensure_migrated(service.engine)
        out = partial.open("w", encoding="utf-8") if partial else sys.stdout
        try:
            async for piece in stream_report(service, cycle=args.cycle, fmt=args.format):
                out.write(piece)
        finally:
            if partial:
                out.close()
        done = True
    except ReportError as exc:
        raise CliError(str(exc)) from None
    finally:
        await service.close()
        if partial and not done:
            partial.unlink(missing_ok=True)
    if partial and args.output:
        partial.replace(args.output)
        print(f"report written to {args.output}", file=sys.stderr)
    return 0


async def cmd_schedule(args: argparse.Namespace, settings: Settings) -> int:
    from scheduler.plan import show_plan

    if args.next < 1:
        raise CliError("--next must be at least 1")
    print(await show_plan(settings, args.next))
    return 0


async def cmd_person_export(args: argparse.Namespace, settings: Settings) -> int:
    """Peer feedback appears only as the anonymous aggregate, exactly as the person sees it in chat."""
    from bot.app.person_lookup import PersonLookupError, find_person
    from handlers.history.api import person_export
    from storage.db import create_engine, ensure_migrated, session_factory

    engine = create_engine(settings.database.url)
    try:
        await ensure_migrated(engine)
        async with session_factory(engine)() as session:
            person = await find_person(session, args.user_id, args.platform)
            data = await person_export(session, person, settings)
    except PersonLookupError as exc:
        raise CliError(str(exc)) from None
    finally:
        await engine.dispose()
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


async def cmd_person_erase(args: argparse.Namespace, settings: Settings) -> int:
    """A dry run by default: the summary is what ``--yes`` would do (the same work, rolled back)."""
    from bot.app.erase import EraseError, erase_person, find_person
    from storage.db import create_engine, ensure_migrated, session_factory

    engine = create_engine(settings.database.url)
    try:
        await ensure_migrated(engine)
        factory = session_factory(engine)
        async with factory() as session:
            person = await find_person(session, args.user_id, args.platform)
        report = await erase_person(factory, settings, person.id, apply=args.yes)
    except EraseError as exc:
        raise CliError(str(exc)) from None
    finally:
        await engine.dispose()
    print(report.summary())
    return 0


async def cmd_outbox_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.outbox_admin import OPEN, OutboxAdminError, format_rows, list_rows
    from bot.core.clock import Clock
    from storage.db import create_engine, ensure_migrated, session_factory

    statuses = [s for s, on in (("dead", args.dead), ("unknown", args.unknown)) if on] or list(OPEN)
    engine = create_engine(settings.database.url)
    try:
        await ensure_migrated(engine)
        rows = await list_rows(session_factory(engine), statuses=statuses, limit=args.limit)
    except OutboxAdminError as exc:
        raise CliError(str(exc)) from None
    finally:
        await engine.dispose()
    if not rows:
        print(f"no outbox rows that are {' or '.join(statuses)}")
    else:
        sys.stdout.write(format_rows(rows, Clock().now()))
    return 0


async def cmd_outbox_retry(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.outbox_admin import OutboxAdminError, retry_all, retry_one
    from bot.core.clock import Clock
    from storage.db import create_engine, ensure_migrated, session_factory

    now = Clock().now()
    engine = create_engine(settings.database.url)
    try:
        await ensure_migrated(engine)
        factory = session_factory(engine)
        if args.id is not None:
            was = await retry_one(factory, args.id, now)
            message = f"outbox row {args.id} ({was}) re-queued for delivery now"
        else:
            status = "dead" if args.all_dead else "unknown"
            ids = await retry_all(factory, status, now)
            shown = ", ".join(map(str, ids[:20])) + (" …" if len(ids) > 20 else "")
            message = f"re-queued {len(ids)} {status} outbox rows: {shown}"
            if not ids:
                message = f"no {status} outbox rows"
    except OutboxAdminError as exc:
        raise CliError(str(exc)) from None
    finally:
        await engine.dispose()
    print(message)
    return 0


async def _print_outcome(run: Awaitable[str], failed: type[Exception], *, stderr: bool = False) -> int:
    """Print the line a command returns (on stderr when stdout carries data); its ``failed`` error becomes
    a ``CliError``: one line, exit code 2."""
    try:
        print(await run, file=sys.stderr if stderr else sys.stdout)
    except failed as exc:
        raise CliError(str(exc)) from None
    return 0


async def cmd_results_export(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.results_cli import ResultsFailed, results_export

    return await _print_outcome(results_export(args, settings), ResultsFailed, stderr=True)


async def cmd_results_flag(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.results_cli import ResultsFailed, results_flag

    return await _print_outcome(results_flag(args, settings), ResultsFailed)


async def cmd_cycle_close(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.cycle_cli import CycleCommandFailed, cycle_close

    return await _print_outcome(cycle_close(args, settings), CycleCommandFailed)


COMMANDS: dict[str, Command] = {
    "run": cmd_run,
    "migrate": cmd_migrate,
    "demo": cmd_demo,
    "org import": cmd_org_import,
    "org sync": cmd_org_sync,
    "export": cmd_export,
    "doctor": cmd_doctor,
    "kickoff": cmd_kickoff,
    "cycle close": cmd_cycle_close,
    "schedule": cmd_schedule,
    "report": cmd_report,
    "person-export": cmd_person_export,
    "person-erase": cmd_person_erase,
    "send": cmd_send,
    "outbox list": cmd_outbox_list,
    "outbox retry": cmd_outbox_retry,
    "results export": cmd_results_export,
    "results flag": cmd_results_flag,
}


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(main())
