"""Image checks that protect memory: a pixel cap before decoding, and JPEGs verified at reduced scale."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from storage.media import MAX_PIXELS, MediaRejected, inspect_image


def encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_too_many_pixels_is_refused_before_decoding() -> None:
    side = int(MAX_PIXELS**0.5) + 10
    data = encoded(Image.new("1", (side, side)), "PNG")  # tiny file, huge canvas
    with pytest.raises(MediaRejected) as err:
        inspect_image(data, max_bytes=10_000_000)
    assert err.value.reason == "size"


def test_large_jpeg_keeps_its_real_size_and_truncation_still_fails() -> None:
    data = encoded(Image.new("RGB", (4000, 3000), (200, 30, 30)), "JPEG")
    info = inspect_image(data, max_bytes=10_000_000)
    assert (info.width, info.height, info.mime) == (4000, 3000, "image/jpeg")
    with pytest.raises(MediaRejected) as err:
        inspect_image(data[: len(data) // 2], max_bytes=10_000_000)
    assert err.value.reason == "corrupt"
