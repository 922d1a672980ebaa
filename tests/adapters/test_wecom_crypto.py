"""WeCom callback crypto against the published sample vectors (token 123456, the sample EncodingAESKey and
corp id wx49f0ab532d5d035a, as in WeCom's WXBizMsgCrypt samples and wechatpy's test suite)."""

from __future__ import annotations

import base64

import pytest

from adapters.wecom import crypto as wecom_crypto
from adapters.wecom.crypto import CallbackCrypto, CryptoError, signature
from adapters.wecom.inbound import WeComText, parse_message

TOKEN = "123456"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CORP_ID = "wx49f0ab532d5d035a"

ECHOSTR = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
ENCRYPTED = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6y"
    "dJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/"
    "TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/"
    "5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
EXPECTED_REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesE"
    "l5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsD"
    "f03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nT"
    "YjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)


@pytest.fixture
def crypto() -> CallbackCrypto:
    return CallbackCrypto(TOKEN, AES_KEY, CORP_ID)


def test_url_verification_vector(crypto: CallbackCrypto) -> None:
    plain = crypto.decrypt("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", ECHOSTR)
    assert plain == "5927782489442352469"


def test_decrypt_vector(crypto: CallbackCrypto) -> None:
    plain = crypto.decrypt("74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294", ENCRYPTED)
    msg = parse_message(plain)
    assert isinstance(msg, WeComText)
    assert (msg.from_user, msg.content, msg.msg_id) == ("messense", "test", "4363689963896700987")


def test_encrypt_vector_with_the_published_random_prefix(
    crypto: CallbackCrypto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wecom_crypto, "random_prefix", lambda: "1234567890123456")
    reply = (
        "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
        "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
        "<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n"
        "<CreateTime>1411525903</CreateTime>\n</xml>"
    )
    out = crypto.reply(reply, timestamp="1411525903", nonce="461056294")
    assert f"<Encrypt><![CDATA[{EXPECTED_REPLY_ENCRYPT}]]></Encrypt>" in out
    assert "<MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>" in out
    assert signature(TOKEN, "1411525903", "461056294", EXPECTED_REPLY_ENCRYPT) == (
        "407518b7649e86ef23978113f92d27afa9296533"
    )


def test_round_trip_through_the_envelope(crypto: CallbackCrypto) -> None:
    body, sig, nonce = crypto.envelope("<xml><a>你好</a></xml>", timestamp="1700000000")
    encrypt = body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    assert crypto.decrypt(sig, "1700000000", nonce, encrypt) == "<xml><a>你好</a></xml>"


def test_wrong_signature_is_refused_before_decrypting(crypto: CallbackCrypto) -> None:
    with pytest.raises(CryptoError, match="signature"):
        crypto.decrypt("0" * 40, "1411525903", "461056294", ENCRYPTED)
    with pytest.raises(CryptoError, match="signature"):  # right signature, different timestamp
        crypto.decrypt("74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525904", "461056294", ENCRYPTED)


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "not_base64", "empty"])
def test_damaged_ciphertext_with_a_valid_signature_is_refused(crypto: CallbackCrypto, damage: str) -> None:
    """Someone who knows the token but not the AES key can sign, yet cannot produce a decryptable payload."""
    raw = bytearray(base64.b64decode(ENCRYPTED))
    if damage == "flip_byte":
        raw[20] ^= 0xFF
        bad = base64.b64encode(bytes(raw)).decode()
    elif damage == "truncate":
        bad = base64.b64encode(bytes(raw[:-16])).decode()
    elif damage == "not_base64":
        bad = "!!!not base64!!!"
    else:
        bad = ""
    with pytest.raises(CryptoError):
        crypto.decrypt(signature(TOKEN, "1", "2", bad), "1", "2", bad)


def test_a_message_for_another_corp_is_refused() -> None:
    other = CallbackCrypto(TOKEN, AES_KEY, "ww_other_corp")
    body, sig, nonce = other.envelope("<xml/>", timestamp="1")
    encrypt = body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    with pytest.raises(CryptoError, match="InvalidCorpId"):
        CallbackCrypto(TOKEN, AES_KEY, CORP_ID).decrypt(sig, "1", nonce, encrypt)


def test_key_must_be_the_43_character_encoding_aes_key() -> None:
    with pytest.raises(ValueError, match="43"):
        CallbackCrypto(TOKEN, AES_KEY[:-1], CORP_ID)
