"""Signed links to a snapshot's PDF.

The neutral card has no file element (no platform's card carries a file), so ``/snapshot`` answers with the
card and a link to the service: ``<public_url>/snapshot/<token>``. The token names whose snapshot, which
month, who asked (the PDF is written in their language, and the download is audited as theirs) and until
when it is valid, signed with HMAC-SHA256. It is a bearer link: it is only ever shown in the asker's own
chat, and it expires after ``[snapshot] link_hours``.

The key is ``[snapshot] link_secret`` when one is configured; otherwise a random key the service made for
itself on first use and keeps in the database (``storage.queries.secrets``), so a link made on one replica
opens on every other one and after a restart, with nothing to configure.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from storage.queries.secrets import service_secret

VERSION = "v1"
STORED_AS = "snapshot.links"
"""The name of the service's own key in ``service_secrets``."""


@dataclass(frozen=True)
class Link:
    subject_id: int
    month: str
    viewer_id: int
    expires: datetime


async def signing_key(session: AsyncSession, settings: Settings, now: datetime) -> bytes:
    """The configured ``link_secret``, else the service's own stored key (made now if there is none)."""
    configured = settings.snapshot.link_secret
    if configured:
        return configured.encode()
    return bytes.fromhex(await service_secret(session, STORED_AS, now))


def _sign(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:32]


def make_token(key: bytes, link: Link) -> str:
    body = f"{VERSION}.{link.subject_id}.{link.month}.{link.viewer_id}.{int(link.expires.timestamp())}"
    return f"{body}.{_sign(key, body)}"


def new_link(settings: Settings, *, subject_id: int, month: str, viewer_id: int, now: datetime) -> Link:
    return Link(subject_id, month, viewer_id, now + timedelta(hours=settings.snapshot.link_hours))


def url_for(settings: Settings, token: str) -> str:
    return f"{settings.server.public_url.rstrip('/')}/snapshot/{token}"


def read_token(key: bytes, token: str, now: datetime) -> Link | None:
    """The link a token stands for; None when it is malformed, forged or expired."""
    parts = token.split(".")
    if len(parts) != 6 or parts[0] != VERSION:
        return None
    body, sig = ".".join(parts[:5]), parts[5]
    if not hmac.compare_digest(_sign(key, body).encode(), sig.encode()):
        return None
    try:
        subject, viewer, expires = int(parts[1]), int(parts[3]), int(parts[4])
    except ValueError:
        return None
    link = Link(subject, parts[2], viewer, datetime.fromtimestamp(expires, tz=UTC))
    return link if link.expires > now else None
