"""The aiohttp application: callbacks, health, simulator, and the background workers' lifecycle.

``/metrics`` and ``/healthz`` (issue 16 #14): with ``[server] admin_port`` set, a second listener on
``admin_host`` serves both and ``/metrics`` leaves the public port; ``/healthz`` stays there too, because a
load balancer probes the port it routes to, and it tells nothing beyond up/down, the enabled platforms and
a database error's class. ``[server] metrics_token`` puts ``/metrics`` behind a bearer token wherever it is
served (metrics name platforms, job names and volumes: nothing for the internet).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from bot.app.logs import request_id
from bot.app.metrics import CONTENT_TYPE
from bot.app.service import Service, ensure_workspaces
from cards.catalogue import Translator
from handlers.snapshot.api import pdf_for_link
from storage.db import ensure_migrated, ping

log = logging.getLogger("perfloop.http")

SERVICE = web.AppKey("service", Service)


@web.middleware
async def request_log(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    rid = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:16]
    token = request_id.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = rid
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return web.json_response({"error": "internal error", "request_id": rid}, status=500)
    finally:
        if request.path != "/sim/api/stream":
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
        request_id.reset(token)


async def healthz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    try:
        await ping(service.engine)
    except Exception as exc:
        return web.json_response({"status": "error", "database": type(exc).__name__}, status=503)
    return web.json_response({"status": "ok", "platforms": [a.platform for a in service.registry]})


async def callback(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    platform = request.match_info["platform"]
    if platform not in service.registry:
        raise web.HTTPNotFound(text="platform not enabled")
    return await service.ingress.callback(service.registry.get(platform), request)


async def metrics_endpoint(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    token = service.settings.server.metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return web.json_response(
                {"error": "metrics need a bearer token"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
    body = await service.metrics.render(service.factory, service.clock.now())
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def snapshot_pdf(request: web.Request) -> web.Response:
    """A growth snapshot's PDF behind a signed, expiring link (``/snapshot`` in chat hands it out)."""
    service = request.app[SERVICE]
    pdf = await pdf_for_link(
        service.factory, service.settings, request.match_info["token"], service.clock.now()
    )
    if pdf is None:
        t = Translator(service.settings.i18n.default_locale)
        raise web.HTTPNotFound(text=t("snapshot.link_expired"))
    headers = {"Content-Disposition": 'inline; filename="snapshot.pdf"', "Cache-Control": "private, no-store"}
    return web.Response(body=pdf, content_type="application/pdf", headers=headers)


def create_admin_app(service: Service) -> web.Application:
    """The admin listener's application: ``/metrics`` and ``/healthz`` only."""
    app = web.Application(middlewares=[request_log])
    app[SERVICE] = service
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    return app


def create_app(service: Service) -> web.Application:
    app = web.Application(middlewares=[request_log], client_max_size=service.settings.server.max_body_bytes)
    app[SERVICE] = service
    app.router.add_get("/healthz", healthz)
    if not service.settings.server.admin_port:
        app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_route("GET", "/callbacks/{platform}", callback)
    app.router.add_route("POST", "/callbacks/{platform}", callback)
    app.router.add_get("/snapshot/{token}", snapshot_pdf)
    for adapter in service.registry:
        app.router.add_routes(adapter.web_routes())
        # The simulator ends its open event streams before the server waits on them.
        app.on_shutdown.append(_shutdown_hook(adapter.on_shutdown))
    app.cleanup_ctx.append(_admin_listener)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _admin_listener(app: web.Application) -> AsyncIterator[None]:
    """Start the admin listener beside the public one (when configured), and stop it with the app."""
    service = app[SERVICE]
    server = service.settings.server
    if not server.admin_port:
        if not server.metrics_token and not _is_loopback(server.host):
            log.warning(
                "/metrics is served on the public port without a token: set [server] admin_port or "
                "metrics_token",
                extra={"host": server.host, "port": server.port},
            )
        yield
        return
    runner = web.AppRunner(create_admin_app(service), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, server.admin_host, server.admin_port).start()
        log.info("admin listener started", extra={"host": server.admin_host, "port": server.admin_port})
        yield
    finally:
        await runner.cleanup()


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _shutdown_hook(hangup: Callable[[], Awaitable[None]]) -> Callable[[web.Application], Awaitable[None]]:
    async def on_shutdown(_app: web.Application) -> None:
        await hangup()

    return on_shutdown


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE]
    await ensure_migrated(service.engine)
    await ensure_workspaces(service)
    for adapter in service.registry:
        await adapter.start()
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    if service.run_outbox:
        tasks.append(asyncio.create_task(service.outbox.run(stop), name="outbox"))
        tasks.append(asyncio.create_task(service.launches.run(stop), name="kickoff writer"))
    for job in service.background:
        tasks.append(asyncio.create_task(job(service, stop), name=getattr(job, "__name__", "background")))
    log.info("perfloop started", extra={"platforms": [a.platform for a in service.registry]})
    try:
        yield
    finally:
        stop.set()
        service.outbox.notify()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
        await service.close()
        log.info("perfloop stopped")
