"""What the simulator page POSTs to ``/callbacks/sim``, validated, and turned into neutral events.

Three shapes, told apart by ``type``: ``text``, ``action`` (a button click, with the form's inputs and the
clicked message's id) and ``image`` (JSON with base64 bytes, or a multipart upload with a ``file`` part).
Anything else, or anything malformed, is a ``CallbackRejected(400)`` — exactly like a bad platform body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from adapters.base import CallbackRejected
from adapters.http import UnsafeJson, loads, read_callback_body

ImageMime = Literal["image/png", "image/jpeg", "image/gif", "image/webp"]

_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = Field(min_length=1, max_length=128)
    """The platform user id of the person the page is acting as."""
    client_event_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$")
    """Set by the page per submission, so a resend of the same submission is deduplicated like a
    platform retry; absent → a fresh id."""

    def event_id(self) -> str:
        return f"sim-{self.client_event_id or uuid.uuid4().hex}"


class TextIn(_Inbound):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=20_000)


class ActionIn(_Inbound):
    type: Literal["action"]
    value: str = Field(min_length=3, max_length=4000)
    form: dict[
        Annotated[str, Field(max_length=40)],
        Annotated[str, Field(max_length=2000)] | list[Annotated[str, Field(max_length=100)]],
    ] = Field(default_factory=dict, max_length=30)
    message_ref: str | None = Field(default=None, pattern=r"^sim-[0-9]{1,18}$")


class ImageIn(_Inbound):
    type: Literal["image"]
    mime: str = Field(default="application/octet-stream", max_length=100)
    """What the page claims; not trusted (see ``_checked_image``)."""
    data_base64: str = Field(min_length=4)
    filename: str = Field(default="image", max_length=200)


Inbound = Annotated[TextIn | ActionIn | ImageIn, Field(discriminator="type")]
_INBOUND: TypeAdapter[TextIn | ActionIn | ImageIn] = TypeAdapter(Inbound)


class ImageUpload(BaseModel):
    """An image after decoding, whichever way it arrived."""

    model_config = ConfigDict(frozen=True)
    user: str
    event_id: str
    data: bytes
    mime: ImageMime | Literal["application/octet-stream"]
    """What the bytes really are, sniffed: the type the chat bubble is served as."""
    filename: str


async def read_inbound(
    request: web.Request, *, max_image_bytes: int, max_body_bytes: int
) -> TextIn | ActionIn | ImageUpload:
    if request.method != "POST":
        raise CallbackRejected(405, "the simulator posts its events")
    if request.content_type.startswith("multipart/"):  # aiohttp's client_max_size caps the whole form
        return await _read_multipart(request, max_image_bytes=max_image_bytes)
    try:
        raw = loads(await read_callback_body(request, max_body_bytes))
    except UnsafeJson as exc:  # the shared depth-capped loader (issue 16 #4): never a RecursionError
        raise CallbackRejected(400, f"body is not JSON: {exc}") from None
    try:
        parsed = _INBOUND.validate_python(raw)
    except ValidationError as exc:
        raise CallbackRejected(400, _first_error(exc)) from None
    if isinstance(parsed, ImageIn):
        try:
            data = base64.b64decode(parsed.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRejected(400, "data_base64 is not base64") from None
        return _checked_image(
            parsed.user,
            parsed.event_id(),
            data,
            parsed.mime,
            parsed.filename,
            max_image_bytes=max_image_bytes,
        )
    return parsed


async def _read_multipart(request: web.Request, *, max_image_bytes: int) -> ImageUpload:
    try:
        form = await request.post()
    except ValueError:
        raise CallbackRejected(400, "malformed multipart body") from None
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise CallbackRejected(400, "multipart upload needs a 'file' part")
    meta = {
        "type": fields.get("type", "image"),
        "user": fields.get("user", ""),
        "mime": upload.content_type,
        "data_base64": "AAAA",
        "filename": upload.filename or "image",
    }
    if fields.get("client_event_id"):
        meta["client_event_id"] = fields["client_event_id"]
    try:
        checked = ImageIn.model_validate(meta)
    except ValidationError as exc:
        raise CallbackRejected(400, _first_error(exc)) from None
    data = await asyncio.to_thread(upload.file.read, max_image_bytes + 1)
    return _checked_image(
        checked.user,
        checked.event_id(),
        data,
        checked.mime,
        checked.filename,
        max_image_bytes=max_image_bytes,
    )


def _checked_image(
    user: str, event_id: str, data: bytes, claimed: str, filename: str, *, max_image_bytes: int
) -> ImageUpload:
    """Transport only, as on a real platform: whether the bytes are an image we keep is the media store's
    call, and the flow tells the person why not in their language (issue 15 #13). The chat bubble is served
    as the type the bytes really are, never as ``claimed``: a file that is no image is served as
    ``application/octet-stream``."""
    del claimed
    if len(data) > max_image_bytes:
        raise CallbackRejected(413, "image too large")
    return ImageUpload(user=user, event_id=event_id, data=data, mime=_sniffed(data), filename=filename)


def _sniffed(data: bytes) -> ImageMime | Literal["application/octet-stream"]:
    if data[8:12] == b"WEBP" and data.startswith(_MAGIC["image/webp"]):
        return "image/webp"
    for mime in ("image/png", "image/jpeg", "image/gif"):
        if data.startswith(_MAGIC[mime]):
            return mime
    return "application/octet-stream"


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{loc}: {err['msg']}"
