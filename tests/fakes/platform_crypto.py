"""How the platforms themselves sign and encrypt, for the protocol fakes (issue 16 #18).

The fakes used to sign and encrypt with ``adapters/*/crypto.py``, the very code under test, so a mistake
there would have been made twice and never shown. Everything here comes from elsewhere:

- WeCom: wechatpy's ``WeChatCrypto`` (the SDK's WXBizMsgCrypt port) encrypts and signs the envelope;
- DingTalk events: dingtalk-sdk's ``DingTalkCrypto`` encrypts and signs; robot signatures are written out
  from the documented formula (the SDK has no helper);
- Feishu: lark-oapi ships only the decrypting half and a signature *check*, so AES (pycryptodome, not the
  adapter's ``cryptography``) and the signature are written out from the documented algorithm.

``tests/adapters/test_crypto_drift.py`` pins every function here to the published test vectors in
PLATFORMS.md / REFERENCE.md and checks the adapters against these fakes both ways; this module must never
import from ``adapters``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from typing import Any
from xml.sax.saxutils import escape

import dingtalk.crypto as dingtalk_crypto
import wechatpy.crypto as wechat_crypto
from Crypto.Cipher import AES
from dingtalk.crypto import DingTalkCrypto
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

# ----------------------------------------------------------------------------------------------- WeCom
_CDATA = r"<{tag}><!\[CDATA\[(.*?)\]\]></{tag}>"


class WeComSealer:
    """WeCom's side of WXBizMsgCrypt: what it POSTs to a callback URL, and the URL check's ``echostr``."""

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        self.token = token
        self.corp_id = corp_id
        self._sdk = WeChatCrypto(token, encoding_aes_key, corp_id)

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return str(wechat_crypto._get_signature(self.token, timestamp, nonce, encrypt))

    def encrypt(self, plaintext: str) -> str:
        """Base64 ciphertext (16 random bytes, length, message, corp id; PKCS#7 to 32 bytes)."""
        raw = PrpCrypto(self._sdk.key).encrypt(plaintext, self.corp_id)
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def envelope(
        self,
        plaintext: str,
        *,
        timestamp: str,
        nonce: str | None = None,
        to_user: str | None = None,
        agent_id: int | None = None,
    ) -> tuple[str, str, str]:
        """``(body_xml, msg_signature, nonce)`` of one callback, encrypted and signed by wechatpy."""
        nonce = nonce or str(secrets.randbelow(10**10))
        sealed = str(self._sdk.encrypt_message(plaintext, nonce, timestamp))
        encrypt = _cdata(sealed, "Encrypt")
        sig = _cdata(sealed, "MsgSignature")
        body = (
            f"<xml><ToUserName><![CDATA[{escape(to_user or self.corp_id)}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            f"<AgentID><![CDATA[{agent_id if agent_id is not None else ''}]]></AgentID></xml>"
        )
        return body, sig, nonce

    def open_reply(self, reply_xml: str, *, msg_signature: str, timestamp: str, nonce: str) -> str:
        """What WeCom does with an encrypted passive reply: check its signature and decrypt it."""
        return str(self._sdk.decrypt_message(reply_xml, msg_signature, timestamp, nonce))


def _cdata(xml: str, tag: str) -> str:
    found = re.search(_CDATA.format(tag=tag), xml, re.S)
    if found is None:
        raise ValueError(f"no <{tag}> in {xml[:80]!r}")
    return found.group(1)


# -------------------------------------------------------------------------------------------- DingTalk
def dingtalk_robot_sign(timestamp: str, app_secret: str) -> str:
    """``base64(HmacSHA256(key=appSecret, msg=timestamp + "\\n" + appSecret))``, as documented."""
    digest = hmac.new(app_secret.encode("utf-8"), f"{timestamp}\n{app_secret}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


class DingTalkSealer:
    """DingTalk's side of event subscriptions, by dingtalk-sdk: the encrypted callback and its signature."""

    def __init__(self, token: str, aes_key: str, owner_key: str) -> None:
        self.token = token
        self._sdk = DingTalkCrypto(token, aes_key, owner_key)

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return str(dingtalk_crypto._get_signature(self.token, timestamp, nonce, encrypt))

    def encrypt(self, message: str, timestamp_ms: int, *, nonce: str | None = None) -> dict[str, str]:
        """``{"msg_signature","timeStamp","nonce","encrypt"}`` for ``message``."""
        sealed: dict[str, Any] = self._sdk.encrypt_message(
            message, nonce=nonce or secrets.token_hex(4), timestamp=str(timestamp_ms)
        )
        return {k: str(v) for k, v in sealed.items()}

    def decrypt(self, sealed: dict[str, str]) -> str:
        """What DingTalk does with our encrypted answer: check its signature and decrypt it."""
        return str(
            self._sdk.decrypt_encrypt_str(
                sealed["msg_signature"], sealed["timeStamp"], sealed["nonce"], sealed["encrypt"]
            )
        )


# ---------------------------------------------------------------------------------------------- Feishu
def feishu_encrypt(encrypt_key: str, plaintext: str) -> str:
    """AES-256-CBC, key sha256(encrypt_key), a random IV in front, PKCS#7 on 16 bytes, base64."""
    key = hashlib.sha256(encrypt_key.encode("utf-8")).digest()
    iv = os.urandom(16)
    data = plaintext.encode("utf-8")
    pad = 16 - len(data) % 16
    data += bytes([pad]) * pad
    return base64.b64encode(iv + AES.new(key, AES.MODE_CBC, iv).encrypt(data)).decode("ascii")


def feishu_decrypt(encrypt_key: str, encrypted: str) -> str:
    """The inverse, for checking vectors (lark-oapi's ``AESCipher`` is the other check)."""
    raw = base64.b64decode(encrypted)
    key = hashlib.sha256(encrypt_key.encode("utf-8")).digest()
    plain = AES.new(key, AES.MODE_CBC, raw[:16]).decrypt(raw[16:])
    return plain[: -plain[-1]].decode("utf-8")


def feishu_signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """``X-Lark-Signature``: sha256 over timestamp + nonce + encrypt key + the raw body, hex."""
    digest = hashlib.sha256()
    for part in (timestamp, nonce, encrypt_key):
        digest.update(part.encode("utf-8"))
    digest.update(body)
    return digest.hexdigest()
