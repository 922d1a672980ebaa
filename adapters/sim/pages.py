"""The simulator's own HTTP surface: the page, its small JSON API, the live event stream and media.

Mounted only when the simulator is enabled (the app asks the adapter for ``web_routes``, and the registry
creates the adapter only when ``sim_enabled``), so none of these paths exist beside a real platform.
The page sees the adapter only through ``Simulator`` below: the adapter imports this module to mount it,
so this module must not import the adapter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.base import AppLinks
from adapters.sim.store import Conversations, MediaStore, SimMessage
from bot.core.clock import Clock
from cards.catalogue import LOCALES, messages, normalise_locale

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


class LocaleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    locale: Literal["zh-CN", "en"]


class Simulator(Protocol):
    """What the page uses of the simulator adapter."""

    @property
    def platform(self) -> str: ...
    @property
    def workspace(self) -> str: ...
    @property
    def default_locale(self) -> str: ...
    @property
    def default_timezone(self) -> str:
        """The zone the clock is shown in before a person is picked (``[schedule] default_timezone``)."""
        ...

    @property
    def max_body_bytes(self) -> int: ...
    @property
    def conversations(self) -> Conversations: ...
    @property
    def media(self) -> MediaStore:
        """What people uploaded in the page and the bot uploaded (the platform's media)."""
        ...

    @property
    def clock(self) -> Clock: ...
    @property
    def links(self) -> AppLinks | None:
        """None until the app attaches the adapter: no people, no fast-forward, no stored media."""
        ...

    def now(self) -> datetime: ...


class SimPages:
    def __init__(self, adapter: Simulator) -> None:
        self.adapter = adapter

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/sim", self.page),
            web.get("/sim/", self.page),
            web.get("/sim/api/people", self.people),
            web.post("/sim/api/people/{user}/locale", self.set_locale),
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
            "strings": {each: page_strings(each) for each in LOCALES},
            "maxUploadBytes": self.adapter.max_body_bytes,
            "now": self.adapter.now().isoformat(),
            "timezone": self.adapter.default_timezone,
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
        links = self.adapter.links
        if links is None:
            return web.json_response({"people": []})
        entries = await links.directory.people(self.adapter.platform, self.adapter.workspace)
        people = []
        for person in entries:
            roles = sorted(person.roles, key=lambda r: (_ROLE_ORDER.get(r, 9), r))
            history = self.adapter.conversations.messages(person.user_id)
            people.append(
                {
                    "user_id": person.user_id,
                    "name": person.name,
                    "department": person.department,
                    "roles": roles,
                    "locale": normalise_locale(person.locale),
                    "timezone": person.timezone,
                    "manager": person.manager,
                    "messages": len(history),
                    "last": _preview(history[-1]) if history else None,
                }
            )
        return web.json_response({"people": people})

    async def set_locale(self, request: web.Request) -> web.Response:
        """The page's language switch for the person it acts as: their cards (and the page) from now on are
        in that language. The person's record is changed through the app's directory, never here."""
        links = self.adapter.links
        if links is None:
            raise web.HTTPServiceUnavailable(text="simulator not bound to a service")
        user = request.match_info["user"]
        if not _USER.match(user):
            raise web.HTTPBadRequest(text="user: a platform user id is required")
        try:
            body = LocaleIn.model_validate_json(await request.read())
        except ValidationError as exc:
            err = exc.errors()[0]
            return web.json_response(
                {"error": f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}"}, status=400
            )
        stored = await links.directory.set_locale(
            self.adapter.platform, self.adapter.workspace, user, body.locale
        )
        if stored is None:
            raise web.HTTPNotFound(text=f"no simulator person {user}")
        log.info("simulator person language changed", extra={"user": user, "locale": stored})
        return web.json_response({"user": user, "locale": stored})

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
        links = self.adapter.links
        if links is None:
            raise web.HTTPServiceUnavailable(text="simulator not bound to a service")
        try:
            body = ClockIn.model_validate_json(await request.read())
        except ValidationError as exc:
            err = exc.errors()[0]
            return web.json_response(
                {"error": f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}"}, status=400
            )
        self.adapter.clock.advance(timedelta(days=body.days, hours=body.hours))
        log.info("simulator clock advanced", extra={"days": body.days, "hours": body.hours})
        links.sink.wake()  # reminders that just fell due go out now
        return web.json_response(self._clock_state())

    def _clock_state(self) -> dict[str, Any]:
        offset = self.adapter.clock.offset
        return {"now": self.adapter.now().isoformat(), "offset_seconds": offset.total_seconds()}

    async def media(self, request: web.Request) -> web.StreamResponse:
        ref = request.match_info["ref"]
        if not _MEDIA_REF.match(ref):
            raise web.HTTPNotFound()
        found = self.adapter.media.get(ref)
        if found is None:
            found = await self._stored_media(ref)
        if found is None:
            raise web.HTTPNotFound()
        data, mime = found
        return web.Response(body=data, content_type=mime, headers={"Cache-Control": "private, max-age=3600"})

    async def _stored_media(self, ref: str) -> tuple[bytes, str] | None:
        """Evidence photos and charts live in the app's media store; cards cite them by sha256."""
        links = self.adapter.links
        if links is None or not _SHA256.match(ref):
            return None
        try:
            return await links.media.read(ref)
        except (OSError, ValueError):
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
