"""The adapter interface every platform implements, what the app lends an adapter, and the errors the
outbox understands.

Adapters verify, decrypt and parse what a platform sends into neutral events, render neutral cards to the
platform's JSON, and perform the platform calls. They never apply a domain rule, and never see the service:
the app attaches ``AppLinks`` (the one event sink, the clock, read access to stored media, the people
directory, the memory of seen signatures), each a small Protocol defined here, so adapters depend on nothing
above the core.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from aiohttp import web
from pydantic import BaseModel

from adapters.ratelimit import TokenBucket
from bot.core.clock import Clock
from bot.core.errors import DeliveryError, PermanentError, RateLimited, TransientError
from bot.core.events import CardAction, Event, UrlVerification
from cards.model import Card


class CallbackRejected(Exception):
    """A callback we refuse (bad signature, stale timestamp, malformed body): answered with ``status``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_QUERY = re.compile(r"\?[^\s'\"]*")


def transport_error(exc: BaseException) -> str:
    """``Type: message`` of an HTTP transport error with every URL query string cut off.

    Some aiohttp errors quote the request URL (``ConnectionTimeoutError`` with a connect timeout,
    ``InvalidUrlClientError``), and the WeCom and DingTalk token calls carry the app secret in the query.
    The message ends up in logs, in ``outbox.last_error`` and in ``perfloop doctor`` output; callers raise
    ``from None`` so the original exception (and its URL) is not chained into a logged traceback either.
    """
    return f"{type(exc).__name__}: {_QUERY.sub('?…', str(exc))}"


@dataclass
class SendResult:
    message_refs: dict[str, str] = field(default_factory=dict)
    """Recipient platform user id → reference for later updates (message id, out-track id…)."""
    invalid_recipients: list[str] = field(default_factory=list)


@dataclass
class CallbackAnswer:
    """What the dispatcher decided; the adapter turns it into the platform's HTTP answer."""

    toast: str | None = None
    toast_kind: str = "info"  # info, success, warning, error
    card: Card | None = None


class OrgDepartment(BaseModel):
    id: str
    name: str
    parent_id: str | None = None
    leader_ids: list[str] = []


class OrgMember(BaseModel):
    user_id: str
    name: str
    department_ids: list[str] = []
    manager_id: str | None = None
    active: bool = True
    locale: str | None = None
    timezone: str | None = None
    roles: list[str] | None = None
    """Only set by sources that know roles (the CSV import); platform syncs leave roles as they are."""
    hrbp_id: str | None = None


class Org(BaseModel):
    departments: list[OrgDepartment] = []
    members: list[OrgMember] = []


ParseResult = Event | UrlVerification | None
"""None = acknowledged but nothing for the dispatcher (an event type we ignore)."""


class EventSink(Protocol):
    """The app's one ingress, as an adapter sees it.

    HTTP callbacks, the Feishu long connection, the DingTalk stream and the simulator all hand their events
    here; the app dispatches, wakes the outbox and counts the event, so no adapter knows the dispatcher, the
    outbox or the metrics.
    """

    async def __call__(self, event: Event) -> CallbackAnswer:
        """Dispatch one parsed event; the answer is what the platform should be told."""
        ...

    def wake(self) -> None:
        """Something may have become due without an event (the simulator moved the clock)."""
        ...


class MediaReader(Protocol):
    """Read access to the app's media store: card images are cited by the id they are stored under."""

    async def read(self, media_id: str) -> tuple[bytes, str]:
        """The bytes and their MIME type; ``OSError``/``ValueError`` when there is no such image."""
        ...


@dataclass(frozen=True)
class DirectoryEntry:
    """One active person of a workspace, as a people picker shows them."""

    user_id: str
    name: str
    department: str
    roles: frozenset[str]
    locale: str | None
    timezone: str = "Asia/Shanghai"
    """The zone the person's cards are written in (unknown names already resolved to the configured
    default), so the simulator shows its times in the same zone."""
    manager: str | None = None
    """The line manager's name, so the picker shows who answers to whom."""


class PeopleDirectory(Protocol):
    """Who the app knows in a workspace, read from its database. Only the simulator asks: it has no
    platform behind it, so its org *is* what the database holds, and its page offers a people picker."""

    async def people(self, platform: str, workspace: str) -> list[DirectoryEntry]:
        """Active people, by department then as created."""
        ...

    async def set_locale(self, platform: str, workspace: str, user_id: str, locale: str) -> str | None:
        """Change one person's language (the simulator's language switch): the cards built for them from
        then on are in it. Returns the locale stored, None when there is no such active person."""
        ...

    async def org(self, platform: str, workspace: str) -> Org:
        """Active departments and people, in the shape a platform's ``list_org`` returns."""
        ...


class SignatureMemory(Protocol):
    """Signatures a platform does not bind to the body, remembered with the first message id they came with.

    DingTalk robot messages are signed over the timestamp only, so one captured ``timestamp`` + ``sign`` pair
    would carry any body, from anyone, for the whole replay window (issue 16 #5). The memory must outlive a
    restart and be shared by every replica, so the app keeps it in the database; an adapter used on its own
    (a unit test, no app) falls back to ``LocalSignatureMemory``.
    """

    async def claim(self, platform: str, key: str, first_id: str, expires_at: datetime) -> str:
        """Remember ``key`` with ``first_id`` until ``expires_at`` unless it is remembered already; return
        the id remembered first (``first_id`` itself when this is the first time)."""
        ...


class LocalSignatureMemory:
    """``SignatureMemory`` in this process only: for an adapter without the app. It forgets on restart and
    sees no other replica, which is why the app attaches the database-backed one."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self._claims: dict[tuple[str, str], tuple[str, datetime]] = {}

    async def claim(self, platform: str, key: str, first_id: str, expires_at: datetime) -> str:
        now = self.clock.now()
        for stale in [k for k, (_, until) in self._claims.items() if until < now]:
            del self._claims[stale]
        held, _ = self._claims.setdefault((platform, key), (first_id, expires_at))
        return held


@dataclass(frozen=True)
class AppLinks:
    """Everything the app lends an adapter, attached once when the service is assembled."""

    sink: EventSink
    clock: Clock
    """The service clock: replay windows and the simulator follow it when tests or the demo move it."""
    media: MediaReader
    directory: PeopleDirectory
    signatures: SignatureMemory


class Adapter(abc.ABC):
    platform: ClassVar[str]
    max_recipients_per_call: ClassVar[int] = 1
    max_recipients_per_interactive_call: ClassVar[int | None] = None
    """For a card with buttons, where it differs (None: the same). WeCom updates a card through a code that
    every recipient of one call shares, so its cards that will change go one person per outbox row."""
    supports_text_inputs: ClassVar[bool] = True
    """False where cards cannot hold free-text inputs (WeCom, DingTalk general cards): the dispatcher then
    collects a form's text answers as the person's next chat messages."""
    shows_toasts: ClassVar[bool] = True
    """False where a click cannot be answered with a toast (DingTalk): refusals then arrive as a message."""
    answers_card_inline: ClassVar[bool] = False
    """True where the platform wants the updated card in the click's HTTP answer (Feishu)."""

    workspace: str
    """The app id this adapter serves (corp id, app id, app key, or "sim")."""
    links: AppLinks | None = None
    """Set by ``attach``; None for an adapter used on its own (a CLI org sync, a unit test)."""
    limiter: TokenBucket | None = None
    """The app's rate limiter when the adapter's client takes it per API call, right before the request
    (the grant then meets the platform with the least jitter, and one outbox row may be many calls); the
    outbox then only penalises it. None: the outbox paces each row with a limiter of its own."""

    def attach(self, links: AppLinks) -> None:
        """Called once by the app as it assembles the service; subclasses take the parts they use."""
        self.links = links

    def attached(self) -> AppLinks:
        """The links, for paths that cannot work without the app (a long connection, a stream)."""
        if self.links is None:
            raise RuntimeError(f"the {self.platform} adapter is not attached to the app")
        return self.links

    async def start(self) -> None:
        """Open sessions, long connections, etc. Called once when the service starts."""
        return None

    async def close(self) -> None:
        return None

    async def on_shutdown(self) -> None:
        """The server is shutting down: end what would keep it waiting (the simulator's open streams)."""
        return None

    def web_routes(self) -> list[web.AbstractRouteDef]:
        """HTTP routes the adapter serves itself besides its callback (the simulator's page); none here."""
        return []

    @abc.abstractmethod
    async def parse_callback(self, request: web.Request) -> ParseResult:
        """Verify and parse one HTTP callback; raise ``CallbackRejected`` for anything untrustworthy."""

    @abc.abstractmethod
    def answer_callback(self, event: Event | None, answer: CallbackAnswer) -> web.StreamResponse:
        """The HTTP answer the platform expects for a processed callback."""

    def answer_verification(self, verification: UrlVerification) -> web.StreamResponse:
        return web.Response(text=verification.answer)

    @abc.abstractmethod
    def render(self, card: Card) -> dict[str, Any]:
        """Neutral card → the platform's card JSON."""

    @abc.abstractmethod
    async def send(self, recipient: str, card: Card, *, idempotency_key: str) -> SendResult: ...

    async def send_many(self, recipients: list[str], card: Card, *, idempotency_key: str) -> SendResult:
        """Platforms with a multi-recipient call override this; the default sends one by one."""
        result = SendResult()
        for i, rcpt in enumerate(recipients):
            one = await self.send(rcpt, card, idempotency_key=f"{idempotency_key}-{i}")
            result.message_refs.update(one.message_refs)
            result.invalid_recipients.extend(one.invalid_recipients)
        return result

    @abc.abstractmethod
    async def update(self, message_ref: str, card: Card, *, recipient: str) -> None: ...

    @abc.abstractmethod
    async def download_media(self, ref: str, *, max_bytes: int) -> bytes: ...

    @abc.abstractmethod
    async def upload_media(self, data: bytes, *, filename: str, mime: str) -> str: ...

    @abc.abstractmethod
    async def list_org(self) -> Org: ...

    async def check_credentials(self) -> str:
        """For ``perfloop doctor``: fetch a token; return a short OK description or raise."""
        return "no credentials needed"


__all__ = [
    "Adapter",
    "AppLinks",
    "CallbackAnswer",
    "CallbackRejected",
    "CardAction",
    "DeliveryError",
    "DirectoryEntry",
    "EventSink",
    "LocalSignatureMemory",
    "MediaReader",
    "Org",
    "OrgDepartment",
    "OrgMember",
    "ParseResult",
    "PeopleDirectory",
    "PermanentError",
    "RateLimited",
    "SendResult",
    "SignatureMemory",
    "TransientError",
    "transport_error",
]
