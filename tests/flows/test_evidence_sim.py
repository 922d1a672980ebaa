"""Photo evidence through the simulator's real HTTP callback (no browser needed): a file the page uploads is
judged by the media store, not by what the page claims, so a bad one is refused with a catalogue message in
the person's language instead of the adapter's internal "bytes are not a image/jpeg image" (issue 15 #13)."""

from __future__ import annotations

import io
import json

import aiohttp
from PIL import Image
from sqlalchemy import select

from storage.models import Evidence
from tests.support.browser import SimServer, eventually


async def say(server: SimServer, user: str, body: str) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            f"{server.url}/callbacks/sim", json={"type": "text", "user": user, "text": body}
        )
        assert resp.status == 200, await resp.text()


async def upload(server: SimServer, user: str, data: bytes, *, filename: str, claimed: str) -> None:
    form = aiohttp.FormData()
    form.add_field("type", "image")
    form.add_field("user", user)
    form.add_field("file", data, filename=filename, content_type=claimed)
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{server.url}/callbacks/sim", data=form)
        assert resp.status == 200, await resp.text()


def bot_texts(server: SimServer, user: str) -> list[str]:
    return [
        json.dumps(m.card, ensure_ascii=False)
        for m in server.adapter.conversations.messages(user)
        if m.sender == "bot" and m.card is not None
    ]


async def test_bad_upload_is_refused_in_the_persons_language_and_a_mislabelled_photo_is_kept(
    sim_server: SimServer,
) -> None:
    await say(sim_server, "zhaolei", "/evidence @周杰")

    async def asked() -> bool:
        return any("请发送关键动作照片" in t for t in bot_texts(sim_server, "zhoujie"))

    await eventually(asked)

    # An iPhone photo the page labels as it likes: not an image the store keeps.
    await upload(
        sim_server,
        "zhoujie",
        b"\x00\x00\x00\x18ftypheic" + b"\x00" * 400,
        filename="IMG_0001.HEIC",
        claimed="image/heic",
    )

    async def refused() -> bool:
        return any("图片没有保存" in t for t in bot_texts(sim_server, "zhoujie"))

    await eventually(refused)
    [said] = [t for t in bot_texts(sim_server, "zhoujie") if "图片没有保存" in t]
    assert "JPEG、PNG、GIF 或 WebP" in said and "10 MB" in said
    everything = json.dumps(
        [m.as_json() for m in sim_server.adapter.conversations.messages("zhoujie")], ensure_ascii=False
    )
    assert "bytes are not" not in everything and "magic" not in everything

    # A PNG saved as "shelf.jpg" is still a photo: the store goes by the bytes, not the name.
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 160, 90)).save(buf, format="PNG")
    await upload(sim_server, "zhoujie", buf.getvalue(), filename="shelf.jpg", claimed="image/jpeg")

    async def kept() -> bool:
        async with sim_server.service.factory() as s:
            return await s.scalar(select(Evidence.mime)) == "image/png"

    await eventually(kept)
