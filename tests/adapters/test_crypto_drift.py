"""The adapters' crypto against an independent implementation (issue 16 #18).

The protocol fakes used to sign and encrypt with ``adapters/*/crypto.py`` itself, so a mistake there would
have been made on both sides and every test would still pass. Now the fakes use
``tests/fakes/platform_crypto`` (wechatpy, dingtalk-sdk, and the documented Feishu algorithm on
pycryptodome), and this file ties the two together three ways:

1. both sides reproduce the published test vectors (PLATFORMS.md §1.5, §2.5, §3.4–3.5);
2. what the fake seals the adapter opens, and what the adapter seals (DingTalk's encrypted "success",
   WeCom's passive reply) the SDK opens, on random inputs;
3. a deliberately drifted adapter function fails (2): the check is not vacuous.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable

import pytest
from lark_oapi.core.utils.decryptor import AESCipher

from adapters.base import CallbackRejected
from adapters.dingtalk import crypto as dingtalk
from adapters.feishu import crypto as feishu
from adapters.wecom import crypto as wecom
from tests.fakes.platform_crypto import (
    DingTalkSealer,
    WeComSealer,
    dingtalk_robot_sign,
    feishu_decrypt,
    feishu_encrypt,
    feishu_signature,
)

# ------------------------------------------------------------------------------ published vectors
WECOM_VECTOR = {
    "token": "123456",
    "aes_key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    "corp_id": "wx49f0ab532d5d035a",
    "url_sig": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
    "url_ts": "1411443780",
    "url_nonce": "437374425",
    "echostr": "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
    "echo": "5927782489442352469",
    "msg_sig": "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
    "msg_ts": "1411525903",
    "msg_nonce": "461056294",
    "encrypt": (
        "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymz"
        "xh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiO"
        "AQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTK"
        "e7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
    ),
}
FEISHU_VECTOR = {
    "key": "test key",
    "ciphertext": "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=",
    "plaintext": "hello world",
    "ts": "1700000000",
    "nonce": "nonce123",
    "body": b'{"encrypt":"P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk="}',
    "signature": "669e3ed5328644f71370e3249f96af0fd17e5ed4d7b178c44f11f7997339e344",
}
DINGTALK_ROBOT_VECTOR = ("1577262236757", "testsecret", "J+BiSbR3jshnMXl7lBt86VHVkxu/BShC2VzSWYBVCKE=")
DINGTALK_EVENT_VECTOR = {
    "token": "123456",
    "aes_key": "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij",
    "key": "suite4xxxxxxxxxxxxxxx",
    "ts": "1445827045067",
    "nonce": "nEXhMP4r",
    "sig": "5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0",
    "encrypt": (
        "1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMe"
        "iZI7gTRWVdUBmfxjZ8Ej23JVYa9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgU"
        "athB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ=="
    ),
    "plaintext": {
        "EventType": "check_create_suite_url",
        "Random": "LPIdSnlF",
        "TestSuiteKey": "suite4xxxxxxxxxxxxxxx",
    },
}


def test_wecom_vectors_on_both_sides() -> None:
    v = WECOM_VECTOR
    fake = WeComSealer(v["token"], v["aes_key"], v["corp_id"])
    ours = wecom.CallbackCrypto(v["token"], v["aes_key"], v["corp_id"])
    for sign in (fake.signature, lambda ts, n, e: wecom.signature(v["token"], ts, n, e)):
        assert sign(v["url_ts"], v["url_nonce"], v["echostr"]) == v["url_sig"]
        assert sign(v["msg_ts"], v["msg_nonce"], v["encrypt"]) == v["msg_sig"]
    assert ours.decrypt(v["url_sig"], v["url_ts"], v["url_nonce"], v["echostr"]) == v["echo"]
    assert "<Content><![CDATA[test]]></Content>" in ours.decrypt(
        v["msg_sig"], v["msg_ts"], v["msg_nonce"], v["encrypt"]
    )


def test_feishu_vectors_on_both_sides() -> None:
    v = FEISHU_VECTOR
    assert feishu.decrypt(str(v["key"]), str(v["ciphertext"])) == v["plaintext"]
    assert feishu_decrypt(str(v["key"]), str(v["ciphertext"])) == v["plaintext"]
    body = v["body"]
    assert isinstance(body, bytes)
    assert feishu.signature(str(v["ts"]), str(v["nonce"]), str(v["key"]), body) == v["signature"]
    assert feishu_signature(str(v["ts"]), str(v["nonce"]), str(v["key"]), body) == v["signature"]


def test_dingtalk_vectors_on_both_sides() -> None:
    ts, secret, sign = DINGTALK_ROBOT_VECTOR
    assert dingtalk.robot_sign(ts, secret) == dingtalk_robot_sign(ts, secret) == sign
    v = DINGTALK_EVENT_VECTOR
    sealer = DingTalkSealer(str(v["token"]), str(v["aes_key"]), str(v["key"]))
    assert sealer.signature(str(v["ts"]), str(v["nonce"]), str(v["encrypt"])) == v["sig"]
    assert (
        dingtalk.event_signature(str(v["token"]), str(v["ts"]), str(v["nonce"]), str(v["encrypt"]))
        == v["sig"]
    )
    ours = dingtalk.EventCrypto(str(v["token"]), str(v["aes_key"]), str(v["key"]))
    assert ours.decrypt(str(v["sig"]), str(v["ts"]), str(v["nonce"]), str(v["encrypt"])) == v["plaintext"]


# ------------------------------------------------------------------------------ round trips, both ways
WECOM_KEY = "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=43))
DINGTALK_KEY = "".join(random.Random(8).choices(string.ascii_letters + string.digits, k=43))


def _texts(seed: int) -> list[str]:
    rnd = random.Random(seed)
    alphabet = string.printable + "张三审批通过✓"
    return ["", "x", *("".join(rnd.choices(alphabet, k=rnd.randint(1, 400))) for _ in range(8))]


def wecom_round_trips() -> None:
    fake = WeComSealer("tok-7", WECOM_KEY, "wwcorp7")
    ours = wecom.CallbackCrypto("tok-7", WECOM_KEY, "wwcorp7")
    for i, text in enumerate(_texts(1)):
        plain = f"<xml><Content><![CDATA[{text}]]></Content></xml>"
        body, sig, nonce = fake.envelope(plain, timestamp=str(1_700_000_000 + i))
        encrypt = body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
        assert ours.decrypt(sig, str(1_700_000_000 + i), nonce, encrypt) == plain
        assert wecom.signature("tok-7", "1", nonce, encrypt) == fake.signature("1", nonce, encrypt)
        reply = ours.reply(plain, timestamp="1700000000", nonce="n1")
        reply_sig = reply.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
        assert fake.open_reply(reply, msg_signature=reply_sig, timestamp="1700000000", nonce="n1") == plain


def feishu_round_trips() -> None:
    for i, text in enumerate(_texts(2)):
        key = f"encrypt-key-{i}"
        sealed = feishu_encrypt(key, text)
        assert feishu.decrypt(key, sealed) == text
        assert AESCipher(key).decrypt_str(sealed) == text  # lark-oapi agrees with the fake
        body = json.dumps({"encrypt": sealed}).encode()
        given = feishu_signature(str(1_700_000_000 + i), f"nonce{i}", key, body)
        feishu.verify_signature(
            timestamp=str(1_700_000_000 + i), nonce=f"nonce{i}", given=given, encrypt_key=key, body=body
        )


def dingtalk_round_trips() -> None:
    sealer = DingTalkSealer("tok-8", DINGTALK_KEY, "dingappkey8")
    ours = dingtalk.EventCrypto("tok-8", DINGTALK_KEY, "dingappkey8")
    for i, text in enumerate(_texts(3)):
        event = {"EventType": "user_modify_org", "UserId": [text[:50] or "u"], "TimeStamp": str(i)}
        sealed = sealer.encrypt(json.dumps(event, ensure_ascii=False), 1_700_000_000_000 + i)
        assert (
            ours.decrypt(sealed["msg_signature"], sealed["timeStamp"], sealed["nonce"], sealed["encrypt"])
            == event
        )
        assert sealer.decrypt(ours.encrypt("success", 1_700_000_000_000 + i)) == "success"
        ts = str(1_700_000_000_000 + i)
        secret = f"secret-{text[:20]}"
        dingtalk.check_robot_signature(ts, dingtalk_robot_sign(ts, secret), secret, int(ts))


ROUND_TRIPS: dict[str, Callable[[], None]] = {
    "wecom": wecom_round_trips,
    "feishu": feishu_round_trips,
    "dingtalk": dingtalk_round_trips,
}


@pytest.mark.parametrize("platform", sorted(ROUND_TRIPS))
def test_the_adapter_opens_what_the_platform_seals_and_the_other_way_round(platform: str) -> None:
    ROUND_TRIPS[platform]()


# ------------------------------------------------------------------------------ the check is not vacuous
def _sha1_unsorted(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    import hashlib

    return hashlib.sha1((token + timestamp + nonce + encrypt).encode()).hexdigest()


DRIFTS: dict[str, tuple[str, object, str, Callable[..., object]]] = {
    # name: (platform, module, attribute, the drifted implementation)
    "wecom signature without sorting": ("wecom", wecom, "signature", _sha1_unsorted),
    "feishu signature without the nonce": (
        "feishu",
        feishu,
        "signature",
        lambda ts, nonce, key, body: feishu_signature(ts, "", key, body),
    ),
    "feishu key used raw instead of its sha256": (
        "feishu",
        feishu,
        "aes_decrypt",
        lambda key, enc: enc[16:],
    ),
    "dingtalk event signature without the token": (
        "dingtalk",
        dingtalk,
        "event_signature",
        lambda token, ts, nonce, enc: _sha1_unsorted("", ts, nonce, enc),
    ),
    "dingtalk robot signature over the timestamp only": (
        "dingtalk",
        dingtalk,
        "robot_sign",
        lambda ts, secret: dingtalk_robot_sign(ts, ""),
    ),
}


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_a_drifted_adapter_is_caught(drift: str, monkeypatch: pytest.MonkeyPatch) -> None:
    platform, module, attribute, wrong = DRIFTS[drift]
    monkeypatch.setattr(module, attribute, wrong)
    with pytest.raises(
        (AssertionError, CallbackRejected, dingtalk.SignatureError, wecom.CryptoError, ValueError)
    ):
        ROUND_TRIPS[platform]()


def test_the_fakes_never_sign_with_the_adapters_crypto() -> None:
    """The independence this file relies on: no fake (nor the edge helpers) imports an adapter's crypto."""
    import ast
    from pathlib import Path

    root = Path(__file__).parents[1]
    for path in [*sorted((root / "fakes").glob("*.py")), root / "support" / "edge.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.endswith(".crypto") or not node.module.startswith("adapters"), (
                    f"{path.name} imports {node.module}"
                )
