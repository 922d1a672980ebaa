"""``perfloop doctor``: is this deployment able to run? Config, database, migrations, platform credentials."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from adapters.registry import AdapterRegistry
from bot.core.config import Settings
from storage.db import create_engine, current_revision, head_revision, ping


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"[{'OK' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


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
    return checks


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
