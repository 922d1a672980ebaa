"""The adapter interface every platform implements, and the errors the outbox understands.

Adapters verify, decrypt and parse what a platform sends into neutral events, render neutral cards to the
platform's JSON, and perform the platform calls. They never apply a domain rule.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel

from bot.core.errors import DeliveryError, PermanentError, RateLimited, TransientError
from bot.core.events import CardAction, Event, UrlVerification
from cards.model import Card

__all__ = [
    "Adapter",
    "CallbackAnswer",
    "CallbackRejected",
    "DeliveryError",
    "Org",
    "OrgDepartment",
    "OrgMember",
    "PermanentError",
    "RateLimited",
    "SendResult",
    "TransientError",
    "transport_error",
]


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


class Adapter(abc.ABC):
    platform: ClassVar[str]
    max_recipients_per_call: ClassVar[int] = 1
    supports_text_inputs: ClassVar[bool] = True
    """False where cards cannot hold free-text inputs (WeCom, DingTalk general cards): the dispatcher then
    collects a form's text answers as the person's next chat messages."""
    shows_toasts: ClassVar[bool] = True
    """False where a click cannot be answered with a toast (DingTalk): refusals then arrive as a message."""
    answers_card_inline: ClassVar[bool] = False
    """True where the platform wants the updated card in the click's HTTP answer (Feishu)."""

    workspace: str
    """The app id this adapter serves (corp id, app id, app key, or "sim")."""

    async def start(self) -> None:
        """Open sessions, long connections, etc. Called once when the service starts."""
        return None

    async def close(self) -> None:
        return None

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
    "CallbackAnswer",
    "CallbackRejected",
    "CardAction",
    "DeliveryError",
    "Org",
    "OrgDepartment",
    "OrgMember",
    "ParseResult",
    "PermanentError",
    "RateLimited",
    "SendResult",
    "TransientError",
]
