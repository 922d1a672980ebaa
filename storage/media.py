"""The media store: photos and rendered charts on disk, addressed by their sha256.

Content addressing makes a re-sent photo (or an identical chart) cost nothing and lets a card carry just the
hash (``cards.model.Image(media_id=sha256)``); adapters resolve it here and upload it to their platform.
Nothing is written before the bytes are proven to be an image we accept: the magic bytes must name an
allowed format, the size must be within ``[media] max_image_bytes``, and Pillow must decode the whole
image. Pillow and file writes block, so they run in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
PILLOW_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
EXIF_IFD = 0x8769
EXIF_DATETIME_ORIGINAL = 36867
EXIF_OFFSET_TIME_ORIGINAL = 36881
TIFF_DATETIME = 306


class MediaRejected(ValueError):
    """The bytes are not an image we keep. ``reason`` is one of ``type``, ``size``, ``corrupt``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    sha256: str
    size: int
    mime: str
    width: int
    height: int
    captured_local: datetime | None
    """EXIF DateTimeOriginal as written by the camera: naive unless the camera recorded its offset."""

    def captured_at(self, tz: tzinfo) -> datetime | None:
        """The capture time as an aware datetime; a naive EXIF time is read in the sender's time zone."""
        if self.captured_local is None:
            return None
        if self.captured_local.tzinfo is None:
            return self.captured_local.replace(tzinfo=tz)
        return self.captured_local


@dataclass(frozen=True)
class StoredImage:
    info: ImageInfo
    path: Path


def sniff_mime(data: bytes) -> str | None:
    """The image type the magic bytes name, or None: file names and the platform's claims are not trusted."""
    for magic, mime in MAGIC:
        if data.startswith(magic):
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


MAX_PIXELS = 50_000_000
"""Above this an "image" is a decompression bomb or a panorama nobody needs: refused before decoding."""


def inspect_image(data: bytes, *, max_bytes: int) -> ImageInfo:
    """Validate ``data`` completely (synchronous; call through ``asyncio.to_thread``)."""
    if len(data) > max_bytes:
        raise MediaRejected("size", f"{len(data)} bytes > {max_bytes}")
    if not data:
        raise MediaRejected("type", "empty file")
    mime = sniff_mime(data)
    if mime is None:
        raise MediaRejected("type", "magic bytes name no accepted image format")
    # Pillow is imported where an upload is checked, not when the store is: a process that never receives a
    # photo (most of a day's work is clicks and scheduled cards) does not carry it.
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # A decompression bomb is a corrupt upload for us, not a warning to log.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if img.size[0] * img.size[1] > MAX_PIXELS:
                    raise MediaRejected("size", f"{img.size[0]}x{img.size[1]} pixels > {MAX_PIXELS}")
                if img.format == "JPEG":
                    # Decode at 1/8 scale: every coefficient is still read (truncation still fails) but a
                    # 48-megapixel photo costs a few MB of memory instead of ~150 MB.
                    img.draft("RGB", (max(1, img.size[0] // 8), max(1, img.size[1] // 8)))
                img.load()  # verify() does not decode pixels; a truncated body only fails here
                fmt = PILLOW_FORMATS.get(img.format or "")
                captured = _exif_capture_time(img)
    except MediaRejected:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise MediaRejected("corrupt", str(exc)[:200]) from exc
    if fmt != mime:
        raise MediaRejected("type", f"content decodes as {fmt}, magic bytes say {mime}")
    return ImageInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        mime=mime,
        width=width,
        height=height,
        captured_local=captured,
    )


def _exif_capture_time(img: Image.Image) -> datetime | None:
    try:
        exif = img.getexif()
    except Exception:  # a broken EXIF block does not make the photo unusable
        return None
    sub = exif.get_ifd(EXIF_IFD)
    raw = sub.get(EXIF_DATETIME_ORIGINAL) or exif.get(TIFF_DATETIME)
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S")  # noqa: DTZ007 - EXIF has no zone
    except ValueError:
        return None
    offset = sub.get(EXIF_OFFSET_TIME_ORIGINAL)
    if isinstance(offset, str):
        try:
            return datetime.strptime(f"{raw.strip()} {offset.strip()}", "%Y:%m:%d %H:%M:%S %z")
        except ValueError:
            pass
    return value


class MediaStore:
    """``<dir>/<sha[:2]>/<sha>``: flat enough to browse, split so no directory grows to millions of files."""

    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("media id must be a lowercase sha256 hex digest")
        return self.root / sha256[:2] / sha256

    async def store_image(self, data: bytes) -> StoredImage:
        """Validate, then write atomically; raises ``MediaRejected`` having written nothing."""
        return await asyncio.to_thread(self._store_sync, data)

    def _store_sync(self, data: bytes) -> StoredImage:
        info = inspect_image(data, max_bytes=self.max_bytes)
        path = self.path_for(info.sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{info.sha256}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return StoredImage(info=info, path=path)

    async def read(self, sha256: str) -> tuple[bytes, str]:
        """The bytes and their MIME type, for adapters uploading an ``Image`` element."""
        data = await asyncio.to_thread(self.path_for(sha256).read_bytes)
        return data, sniff_mime(data) or "application/octet-stream"

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

    def remove(self, sha256: str) -> bool:
        """Delete a stored file (synchronous); False when it was not there."""
        try:
            self.path_for(sha256).unlink()
        except FileNotFoundError:
            return False
        return True
