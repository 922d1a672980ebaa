"""WeCom callback crypto (WXBizMsgCrypt) on top of wechatpy's implementation.

wechatpy does the AES part (``PrpCrypto``: AES-256-CBC, PKCS#7 to 32 bytes, corp id check). Around it we add
what its ``WeChatCrypto`` leaves out: a constant-time signature comparison, one exception type for every way a
forged or damaged payload can fail (bad base64, bad padding, bad length prefix, wrong corp id, not UTF-8), and
an envelope builder that the fake WeCom uses to sign callbacks exactly as WeCom does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from xml.sax.saxutils import escape

from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto


class CryptoError(ValueError):
    """The signature does not match or the ciphertext does not decrypt to a message for this corp."""


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """``sha1`` over the four values sorted as byte strings (WeCom's ``msg_signature``)."""
    parts = sorted(p.encode() for p in (token, timestamp, nonce, encrypt))
    return hashlib.sha1(b"".join(parts)).hexdigest()  # noqa: S324 - mandated by the protocol


class CallbackCrypto:
    """One app's callback crypto: the token, EncodingAESKey and corp id from the WeCom admin console."""

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("encoding_aes_key must be the 43-character EncodingAESKey")
        self._wechat = WeChatCrypto(token, encoding_aes_key, corp_id)
        self.token = token
        self.corp_id = corp_id

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), msg_signature.encode()):
            raise CryptoError("msg_signature does not match")

    def decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Verify, then decrypt ``Encrypt`` (a POST body field or the URL check's ``echostr``)."""
        self.verify(msg_signature, timestamp, nonce, encrypt)
        try:
            plain = PrpCrypto(self._wechat.key).decrypt(encrypt, self.corp_id)
        except Exception as exc:  # binascii.Error, ValueError, struct.error, UnicodeDecodeError, corp id
            raise CryptoError(f"ciphertext does not decrypt: {type(exc).__name__}") from None
        return str(plain)

    def encrypt(self, plaintext: str) -> str:
        """Base64 ciphertext of ``plaintext`` for this corp (random 16-byte prefix, as WeCom does)."""
        raw = PrpCrypto(self._wechat.key).encrypt(plaintext, self.corp_id)
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
        """Encrypt and sign a callback the way WeCom sends it: ``(body_xml, msg_signature, nonce)``."""
        nonce = nonce or str(secrets.randbelow(10**10))
        encrypt = self.encrypt(plaintext)
        sig = signature(self.token, timestamp, nonce, encrypt)
        body = (
            f"<xml><ToUserName><![CDATA[{escape(to_user or self.corp_id)}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            f"<AgentID><![CDATA[{agent_id if agent_id is not None else ''}]]></AgentID></xml>"
        )
        return body, sig, nonce

    def reply(self, plaintext: str, *, timestamp: str, nonce: str) -> str:
        """An encrypted passive reply (``<Encrypt/><MsgSignature/><TimeStamp/><Nonce/>``)."""
        return str(self._wechat.encrypt_message(plaintext, nonce, timestamp))
