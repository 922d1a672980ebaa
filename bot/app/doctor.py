"""``perfloop doctor``: is this deployment able to run? Config, database, migrations, platform credentials,
and the host clock against each platform's (signed callbacks fail when the clocks disagree)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from adapters.http import server_clock_offset
from adapters.registry import AdapterRegistry
from bot.core.config import Settings
from storage.db import create_engine, current_revision, head_revision, ping


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warn: bool = False
    """Works, but will not for long (a drifting clock): shown as WARN, does not fail the exit code."""

    def line(self) -> str:
        label = "FAIL" if not self.ok else "WARN" if self.warn else "OK"
        return f"[{label}] {self.name}: {self.detail}"


CLOCK_WARN_SECONDS = 30.0
"""A host clock further than this from a platform's is worth a warning even while callbacks still pass:
clocks that drift keep drifting, and the next step is every signed callback refused (issue 16 #7)."""


async def run_checks(settings: Settings, *, timeout: float = 10.0) -> list[Check]:
    checks = [
        Check(
            "config",
            True,
            f"platforms: {', '.join(settings.enabled_platforms) or 'none'}; "
            f"simulator: {'on' if settings.sim_enabled else 'off'}",
        )
    ]
    engine = create_engine(settings.database.url)
    try:
        try:
            await asyncio.wait_for(ping(engine), timeout)
            checks.append(Check("database", True, _redact(settings.database.url)))
            current = await current_revision(engine)
            head = head_revision()
            checks.append(
                Check(
                    "migrations",
                    current == head,
                    f"at {current or 'nothing'}, code needs {head}"
                    + ("" if current == head else " — run `perfloop migrate`"),
                )
            )
        except Exception as exc:
            checks.append(Check("database", False, f"{_redact(settings.database.url)}: {_short(exc)}"))
    finally:
        await engine.dispose()
    try:
        registry = AdapterRegistry.from_settings(settings)
    except Exception as exc:
        checks.append(Check("adapters", False, _short(exc)))
        return checks
    for adapter in registry:
        if adapter.platform == "sim":
            continue
        try:
            detail = await asyncio.wait_for(adapter.check_credentials(), timeout)
            checks.append(Check(f"{adapter.platform} credentials", True, detail))
        except Exception as exc:
            checks.append(Check(f"{adapter.platform} credentials", False, _short(exc)))
        finally:
            await adapter.close()
        checks.append(await clock_check(settings, adapter.platform, timeout=timeout))
    return checks


async def clock_check(settings: Settings, platform: str, *, timeout: float = 10.0) -> Check:
    """The host clock against the platform's, read from the ``Date`` header of an answer from its API host
    (no NTP needed, no credentials). Signed callbacks are refused outside ``replay_window_seconds`` (our
    clock fast: they look old) and ``clock_tolerance_seconds`` (our clock slow: they look early), so a
    difference past either is a failure, and one past ``CLOCK_WARN_SECONDS`` a warning."""
    name = f"{platform} clock"
    section = getattr(settings, platform)
    try:
        offset = await server_clock_offset(section.api_base, timeout=timeout)
    except Exception as exc:  # unreachable host, no Date header: say so, the credentials check says more
        return Check(
            name, True, f"could not compare clocks with {section.api_base}: {_short(exc)}", warn=True
        )
    ahead = -offset
    side = f"host clock {abs(ahead):.0f} s {'ahead of' if ahead >= 0 else 'behind'} {platform}'s"
    window, tolerance = section.replay_window_seconds, section.clock_tolerance_seconds
    if ahead > window or -ahead > tolerance:
        limit = (
            f"replay_window_seconds = {window}"
            if ahead > window
            else f"clock_tolerance_seconds = {tolerance}"
        )
        return Check(
            name, False, f"{side}: every signed callback is refused ({limit}); fix the host's time sync"
        )
    if abs(ahead) > CLOCK_WARN_SECONDS:
        return Check(name, True, f"{side}: callbacks still pass, but check the host's time sync", warn=True)
    return Check(name, True, side)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    return url
