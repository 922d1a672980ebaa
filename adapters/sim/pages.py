"""The simulator's own HTTP surface: the page, its small JSON API, the live event stream and media.

Mounted only when the simulator is enabled (the app asks the adapter for ``web_routes``, and the registry
creates the adapter only when ``sim_enabled``), so none of these paths exist beside a real platform.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select

from adapters.sim.store import SimMessage
from cards.catalogue import messages, normalise_locale
from storage.models import Department, Person, Workspace

if TYPE_CHECKING:
    from adapters.sim.adapter import SimAdapter

log = logging.getLogger("perfloop.sim")

STATIC_DIR = Path(__file__).parent / "static"
KEEPALIVE_SECONDS = 15.0
_USER = re.compile(r"^[^\s/]{1,128}$")
_MEDIA_REF = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ROLE_ORDER = {"leader": 0, "hr_admin": 1, "manager": 2, "hrbp": 3, "employee": 4}


class ClockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(default=0, ge=0, le=366)
    hours: int = Field(default=0, ge=0, le=24 * 31)

    @model_validator(mode="after")
    def _moves(self) -> ClockIn:
        if self.days == 0 and self.hours == 0:
            raise ValueError("give days or hours to move the clock forward")
        return self


class SimPages:
    def __init__(self, adapter: SimAdapter) -> None:
        self.adapter = adapter

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/sim", self.page),
            web.get("/sim/", self.page),
            web.get("/sim/api/people", self.people),
            web.get("/sim/api/messages", self.messages),
            web.get("/sim/api/stream", self.stream),
            web.get("/sim/api/clock", self.clock),
            web.post("/sim/api/clock", self.advance_clock),
            web.get("/sim/media/{ref}", self.media),
            web.static("/sim/static", STATIC_DIR),
        ]

    # ------------------------------------------------------------------ page
    async def page(self, request: web.Request) -> web.Response:
        locale = normalise_locale(request.query.get("lang") or self.adapter.default_locale)
        boot = {
            "locale": locale,
            "strings": page_strings(locale),
            "maxUploadBytes": self.adapter.max_body_bytes,
            "now": self.adapter.now().isoformat(),
        }
        template = await asyncio.to_thread((STATIC_DIR / "index.html").read_text, "utf-8")
        # "</" never appears inside the JSON, so the boot data cannot close the script element early.
        boot_json = json.dumps(boot, ensure_ascii=False).replace("</", "<\\/")
        body = template.replace("__SIM_BOOT__", boot_json).replace("__SIM_LANG__", locale)
        return web.Response(
            text=body, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"}
        )

    # ------------------------------------------------------------------ api
    async def people(self, request: web.Request) -> web.Response:
        service = self.adapter.service
        if service is None:
            return web.json_response({"people": []})
        async with service.factory() as session:
            ws = await session.scalar(
                select(Workspace).where(
                    Workspace.platform == self.adapter.platform, Workspace.app_id == self.adapter.workspace
                )
            )
            rows = (
                []
                if ws is None
                else (
                    await session.execute(
                        select(Person, Department.name)
                        .outerjoin(Department, Department.id == Person.department_id)
                        .where(Person.workspace_id == ws.id, Person.active.is_(True))
                        .order_by(Department.id, Person.id)
                    )
                ).all()
            )
        people = []
        for person, department in rows:
            roles = sorted(person.role_set, key=lambda r: (_ROLE_ORDER.get(r, 9), r))
            history = self.adapter.conversations.messages(person.platform_user_id)
            people.append(
                {
                    "user_id": person.platform_user_id,
                    "name": person.name,
                    "department": department or "",
                    "roles": roles,
                    "locale": person.locale,
                    "messages": len(history),
                    "last": _preview(history[-1]) if history else None,
                }
            )
        return web.json_response({"people": people})

    async def messages(self, request: web.Request) -> web.Response:
        user = _user(request)
        return web.json_response(
            {"user": user, "messages": [m.as_json() for m in self.adapter.conversations.messages(user)]}
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events for one person: ``ready`` once subscribed, then ``message``/``update`` data."""
        user = _user(request)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        try:
            async with self.adapter.conversations.subscribe(user) as queue:
                await response.write(b"retry: 1000\nevent: ready\ndata: {}\n\n")
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        await response.write(b": keepalive\n\n")
                        continue
                    if item is None:
                        break
                    data = json.dumps(item, ensure_ascii=False)
                    await response.write(f"event: {item['type']}\ndata: {data}\n\n".encode())
        except (ConnectionResetError, ConnectionError):
            log.debug("simulator page went away", extra={"user": user})
        return response

    async def clock(self, request: web.Request) -> web.Response:
        return web.json_response(self._clock_state())

    async def advance_clock(self, request: web.Request) -> web.Response:
        """The demo's fast-forward: move the service clock (never the OS clock) by whole days or hours."""
        service = self.adapter.service
        if service is None:
            raise web.HTTPServiceUnavailable(text="simulator not bound to a service")
        try:
            body = ClockIn.model_validate_json(await request.read())
        except ValidationError as exc:
            err = exc.errors()[0]
            return web.json_response(
                {"error": f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}"}, status=400
            )
        service.clock.advance(timedelta(days=body.days, hours=body.hours))
        log.info("simulator clock advanced", extra={"days": body.days, "hours": body.hours})
        service.outbox.notify()
        return web.json_response(self._clock_state())

    def _clock_state(self) -> dict[str, Any]:
        service = self.adapter.service
        offset = service.clock.offset if service is not None else timedelta(0)
        return {"now": self.adapter.now().isoformat(), "offset_seconds": offset.total_seconds()}

    async def media(self, request: web.Request) -> web.StreamResponse:
        ref = request.match_info["ref"]
        if not _MEDIA_REF.match(ref):
            raise web.HTTPNotFound()
        found = self.adapter.media.get(ref)
        if found is None:
            found = await asyncio.to_thread(self._disk_media, ref)
        if found is None:
            raise web.HTTPNotFound()
        data, mime = found
        return web.Response(body=data, content_type=mime, headers={"Cache-Control": "private, max-age=3600"})

    def _disk_media(self, ref: str) -> tuple[bytes, str] | None:
        """Evidence photos are stored content-addressed under ``[media] dir``; cards cite them by sha256."""
        service = self.adapter.service
        if service is None or not _SHA256.match(ref):
            return None
        root = Path(service.settings.media.dir)
        if not root.is_dir():
            return None
        for path in root.rglob(f"{ref}*"):
            if path.is_file():
                mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return path.read_bytes(), mime
        return None


def page_strings(locale: str) -> dict[str, str]:
    """The page's UI texts: the ``sim.page`` table of the catalogue, falling back to zh-CN per key."""
    prefix = "sim.page."
    merged = {k: v for k, v in messages("zh-CN").items() if k.startswith(prefix)}
    merged.update({k: v for k, v in messages(locale).items() if k.startswith(prefix)})
    return {k.removeprefix(prefix): str(v) for k, v in merged.items()}


def _user(request: web.Request) -> str:
    user = request.query.get("user", "")
    if not _USER.match(user):
        raise web.HTTPBadRequest(text="user: a platform user id is required")
    return user


def _preview(message: SimMessage) -> dict[str, Any]:
    if message.kind == "card" and message.card is not None:
        text = str(message.card.get("summary") or "")
    elif message.kind == "image":
        text = ""
    else:
        text = (message.text or "")[:60]
    return {"sender": message.sender, "kind": message.kind, "text": text, "at": message.at.isoformat()}
