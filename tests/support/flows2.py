"""Helpers shared by the Flows II tests (evidence, action items, escalation, digest, kudos)."""

from __future__ import annotations

import io
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from PIL import Image as PILImage
from sqlalchemy import func, select

from bot.app.service import Service
from bot.core.context import Context
from bot.core.events import CardAction, ImageMessage, TextMessage
from cards.actions import unpack
from cards.model import Button, Card
from storage.models import ActionItem, Base, Person

T = TypeVar("T")
_ids = itertools.count(1)


def text(sender: str, body: str) -> TextMessage:
    return TextMessage(
        platform="rec", workspace="rec-app", event_id=f"t{next(_ids)}", sender_id=sender, text=body
    )


def image(sender: str, ref: str) -> ImageMessage:
    return ImageMessage(
        platform="rec", workspace="rec-app", event_id=f"i{next(_ids)}", sender_id=sender, media_ref=ref
    )


def click(sender: str, button: Button | str, form: dict[str, str | list[str]] | None = None) -> CardAction:
    value = button.value if isinstance(button, Button) else button
    return CardAction(
        platform="rec",
        workspace="rec-app",
        event_id=f"c{next(_ids)}",
        sender_id=sender,
        value=value,
        form=form or {},
        message_ref="m-clicked",
    )


def button(card: Card, action_id: str, **fields: Any) -> Button:
    """The card's button for ``action_id`` whose payload has these field values."""
    for b in card.buttons():
        payload = unpack(b.value)
        if payload.action_id == action_id and all(getattr(payload, k) == v for k, v in fields.items()):
            return b
    raise AssertionError(f"no {action_id} button {fields} on card {card.header.title!r}")


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), exif_time: str | None = None) -> bytes:
    img = PILImage.new("RGB", size, (200, 30, 30))
    buf = io.BytesIO()
    if exif_time is not None:
        exif = PILImage.Exif()
        exif.get_ifd(0x8769)[36867] = exif_time
        img.save(buf, format=fmt, exif=exif)
    else:
        img.save(buf, format=fmt)
    return buf.getvalue()


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: about 3 bytes per pixel."""
    import os

    buf = io.BytesIO()
    PILImage.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, format="PNG")
    return buf.getvalue()


async def run_job(service: Service, person: Person, fn: Callable[[Context], Awaitable[T]]) -> T:
    """Run a flow function through the dispatcher's job path and hand back its return value."""
    out: list[T] = []

    async def job(ctx: Context) -> None:
        out.append(await fn(ctx))

    await service.dispatcher.run_for_person(person.id, job)
    return out[0]


async def count(service: Service, model: type[Base], *where: Any) -> int:
    async with service.factory() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def add_item(
    service: Service,
    owner: Person,
    *,
    deadline: date,
    acceptor: Person | None = None,
    created_at: datetime | None = None,
    **kw: Any,
) -> ActionItem:
    async with service.factory() as s, s.begin():
        item = ActionItem(
            owner_id=owner.id,
            acceptor_id=acceptor.id if acceptor else None,
            source="manual",
            deliverable=kw.pop("deliverable", "交付客户回访报告"),
            deadline=deadline,
            created_at=created_at or datetime(2026, 11, 1, tzinfo=UTC),
            **kw,
        )
        s.add(item)
    return item


async def get(service: Service, model: type[T], row_id: int) -> T:
    async with service.factory() as s:
        row = await s.get(model, row_id)
        assert row is not None
        return row
