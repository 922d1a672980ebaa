"""WeCom callback crypto (WXBizMsgCrypt): the signature, AES-256-CBC and the envelope, on ``cryptography``.

The algorithm is wechatpy's ``PrpCrypto`` step for step (key = base64(EncodingAESKey + "="), IV = the key's
first 16 bytes, plaintext = 16 random characters + the message length as 4 big-endian bytes + the message +
the corp id, PKCS#7 to a 32-byte block), but importing anything from ``wechatpy`` loads its whole API client
(``requests``, ``dateutil``, ~150 modules, a few MB of every process), which the callback path never uses.
The published sample vectors and a drift test against wechatpy itself (``tests/adapters``) keep the two
identical. Around the cipher: a constant-time signature comparison, one exception type for every way a
forged or damaged payload can fail (bad base64, bad padding, bad length prefix, wrong corp id, not UTF-8), and
an envelope builder that the fake WeCom uses to sign callbacks exactly as WeCom does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import struct
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32
"""WXBizMsgCrypt pads to 32 bytes (PKCS#7 with a 32-byte block), not AES's 16."""
RANDOM_CHARS = string.ascii_letters + string.digits


def random_prefix() -> str:
    """The 16 random characters in front of every plaintext (wechatpy's ``random_string(16)``)."""
    return "".join(secrets.choice(RANDOM_CHARS) for _ in range(16))


class InvalidCorpId(ValueError):
    """The message decrypted, but for another corp (or suite)."""


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
        self.key = base64.b64decode(encoding_aes_key + "=")
        if len(self.key) != 32:
            raise ValueError("encoding_aes_key must decode to 32 bytes")
        self.token = token
        self.corp_id = corp_id

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), msg_signature.encode()):
            raise CryptoError("msg_signature does not match")

    def decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Verify, then decrypt ``Encrypt`` (a POST body field or the URL check's ``echostr``)."""
        self.verify(msg_signature, timestamp, nonce, encrypt)
        try:
            plain = self._decrypt(encrypt)
        except (binascii.Error, ValueError, struct.error, UnicodeDecodeError) as exc:
            raise CryptoError(f"ciphertext does not decrypt: {type(exc).__name__}") from None
        return plain

    def _decrypt(self, encrypt: str) -> str:
        raw = base64.b64decode(encrypt)
        if not raw or len(raw) % 16:
            raise ValueError("ciphertext is not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(raw) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= BLOCK or pad > len(padded):
            raise ValueError("bad padding")
        content = padded[16:-pad]
        (length,) = struct.unpack(">I", content[:4])
        message = content[4 : length + 4].decode("utf-8")
        if content[length + 4 :].decode("utf-8") != self.corp_id:
            raise InvalidCorpId("the message is for another corp")
        return message

    def encrypt(self, plaintext: str) -> str:
        """Base64 ciphertext of ``plaintext`` for this corp (random 16-character prefix, as WeCom does)."""
        text = plaintext.encode("utf-8")
        body = random_prefix().encode() + struct.pack(">I", len(text)) + text + self.corp_id.encode("utf-8")
        pad = BLOCK - len(body) % BLOCK
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(body + bytes([pad]) * pad) + encryptor.finalize()).decode()

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
        """An encrypted passive reply (``<Encrypt/><MsgSignature/><TimeStamp/><Nonce/>``), laid out as
        wechatpy's ``encrypt_message`` lays it out."""
        encrypt = self.encrypt(plaintext)
        sig = signature(self.token, timestamp, nonce, encrypt)
        return (
            f"<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
            f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>\n"
            f"<TimeStamp>{timestamp}</TimeStamp>\n"
            f"<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
        )
