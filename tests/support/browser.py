"""Browser-test support: a real perfloop server on a free loopback port with the simulator, and headless
Chromium driven by Playwright.

Loaded for every test module through ``pytest_plugins`` in ``tests/conftest.py``. Use it like this::

    pytestmark = pytest.mark.browser

    @pytest.fixture
    def sim_routers() -> list[Router]:      # optional: extra handlers for this module's tests
        return [my_test_router]

    async def test_something(sim_server: SimServer, sim_page: Page) -> None:
        await sim_server.open_chat(sim_page, "zhoujie")
        await sim_server.push("zhoujie", card)          # through the real outbox
        await sim_page.get_by_text("...").wait_for()

The server is aiohttp on 127.0.0.1 (port chosen by the OS), SQLite in ``tmp_path``, the demo organisation
seeded (``bot.demo``), the outbox worker running, and the ``clock`` fixture as the service clock. Chromium is
Debian's ``/usr/bin/chromium`` (never ``playwright install``); without it the browser tests skip, except
under ``CI=true`` where they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from sqlalchemy import select

from adapters.sim.adapter import SimAdapter
from bot.app.demo import seed_demo
from bot.app.http import create_app
from bot.app.service import Service, build_service
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.context import Context
from bot.core.router import Router
from cards.model import Card
from storage.models import Person, Workspace

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = os.environ.get("PERFLOOP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PAGE_TIMEOUT_MS = 8_000
"""Default wait for any Playwright action or expectation: generous for a loaded 2-core machine, short
enough that a broken page fails fast."""


@dataclass
class SimServer:
    """A running perfloop service with the simulator, reachable at ``url``."""

    url: str
    service: Service
    adapter: SimAdapter
    page_errors: list[str] = field(default_factory=list)

    @property
    def sim_url(self) -> str:
        return f"{self.url}/sim"

    async def person(self, user_id: str) -> Person:
        async with self.service.factory() as session:
            person = await session.scalar(
                select(Person)
                .join(Workspace, Workspace.id == Person.workspace_id)
                .where(Workspace.platform == "sim", Person.platform_user_id == user_id)
            )
        if person is None:
            raise LookupError(f"no simulator person {user_id!r}")
        return person

    async def push(self, user_id: str, card: Card, *, card_key: str | None = None) -> None:
        """Send ``card`` to a person as a handler would: an outbox row, delivered by the running worker."""
        person = await self.person(user_id)

        async def send(ctx: Context) -> None:
            ctx.outbox.send(ctx.person, card, card_key=card_key)

        await self.service.dispatcher.run_for_person(person.id, send)
        self.service.outbox.notify()

    async def open_chat(self, page: Page, user_id: str) -> None:
        """Open ``/sim``, pick ``user_id`` in the people list and wait until the live stream is connected."""
        await page.goto(self.sim_url)
        await page.locator(f'li.person[data-user="{user_id}"]').click()
        await page.locator('body[data-stream="open"]').wait_for()

    def card(self, page: Page, title: str) -> Any:
        """The newest card in the open chat whose header title is ``title`` (a Playwright locator)."""
        return page.locator(f'.msg.bot .card[data-title="{title}"]').last


@pytest.fixture
def sim_routers() -> list[Router]:
    """Extra handler routers for the simulator server; override in a test module to add test-only handlers."""
    return []


@pytest.fixture
def sim_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database={"url": sqlite_url},
        media={"dir": tmp_path / "media"},
        sim={"enabled": True},
        outbox={"poll_seconds": 0.1, "workers": 2},
    )


@pytest.fixture
async def sim_server(
    sim_settings: Settings, clock: Clock, sim_routers: list[Router]
) -> AsyncIterator[SimServer]:
    service = build_service(sim_settings, clock=clock)
    for router in sim_routers:
        service.dispatcher.router.include(router)
    async with service.factory() as session, session.begin():
        await seed_demo(session)
    runner = web.AppRunner(create_app(service), shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    adapter = service.registry.get("sim")
    assert isinstance(adapter, SimAdapter)
    try:
        yield SimServer(url=f"http://{host}:{port}", service=service, adapter=adapter)
    finally:
        await runner.cleanup()


def _chromium_or_skip() -> str:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return CHROMIUM
    message = f"Chromium not found at {CHROMIUM} (install Debian's chromium: scripts/ensure-chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = _chromium_or_skip()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def sim_page(browser: Browser, sim_server: SimServer) -> AsyncIterator[Page]:
    """A fresh page (own context: no shared storage) that fails the test on any uncaught JavaScript error."""
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = await context.new_page()
    page.on("pageerror", lambda exc: sim_server.page_errors.append(str(exc)))
    try:
        yield page
    finally:
        await context.close()
    assert not sim_server.page_errors, f"JavaScript errors on the simulator page: {sim_server.page_errors}"


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 5.0) -> None:
    """Poll an async condition (e.g. a DB row appearing) until true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
