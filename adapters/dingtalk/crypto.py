"""Everything that proves a DingTalk request is genuine: robot signatures and event-subscription crypto.

Robot messages (HTTP mode) carry ``timestamp`` (ms) and ``sign`` headers:
``sign = base64(HMAC-SHA256(app_secret, timestamp + "\\n" + app_secret))``. DingTalk documents that a
timestamp more than one hour away from now must be rejected, so a captured request cannot be replayed
later. Event subscriptions are the WeCom scheme with JSON: dingtalk-sdk's ``DingTalkCrypto`` does the AES
part; we check the SHA-1 signature ourselves first, in constant time, because the SDK compares with ``!=``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import struct
from typing import Any

from dingtalk.core.exceptions import InvalidCorpIdOrSuiteKeyException
from dingtalk.crypto import DingTalkCrypto

MAX_CLOCK_SKEW_MS = 3600 * 1000
"""DingTalk: "timestamp 与系统当前时间戳如果相差1小时以上，则认为是非法的请求"."""


class SignatureError(Exception):
    """The request is not from DingTalk (bad signature, stale timestamp, undecryptable body)."""


def robot_sign(timestamp: str, app_secret: str) -> str:
    msg = f"{timestamp}\n{app_secret}".encode()
    return base64.b64encode(hmac.new(app_secret.encode(), msg, hashlib.sha256).digest()).decode()


def check_robot_signature(timestamp: str | None, sign: str | None, app_secret: str, now_ms: int) -> None:
    if not timestamp or not sign:
        raise SignatureError("missing timestamp or sign header")
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError("timestamp is not a number") from None
    if abs(now_ms - ts) > MAX_CLOCK_SKEW_MS:
        raise SignatureError("stale timestamp")
    if not hmac.compare_digest(robot_sign(timestamp, app_secret).encode(), sign.encode()):
        raise SignatureError("bad signature")


def event_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()  # noqa: S324


class EventCrypto:
    """Event-subscription callbacks: verify, decrypt, and encrypt the "success" answer.

    Internal apps made in the new developer console key the cipher with the app key; apps registered through
    the old ``register_call_back`` use the corp id. Both are tried, the app key first (a wrong owner key
    fails the SDK's trailing-id check, it never yields garbage).
    """

    def __init__(self, token: str, aes_key: str, app_key: str, corp_id: str = "") -> None:
        self.token = token
        self.owner_keys = [k for k in (app_key, corp_id) if k]
        self._cryptos = [DingTalkCrypto(token, aes_key, k) for k in self.owner_keys]

    def decrypt(
        self, signature: str | None, timestamp: str | None, nonce: str | None, encrypt: str | None
    ) -> dict[str, Any]:
        if not (signature and timestamp and nonce and encrypt):
            raise SignatureError("missing signature, timestamp, nonce or encrypt")
        expected = event_signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise SignatureError("bad signature")
        for crypto in self._cryptos:
            try:
                plain = crypto.decrypt_encrypt_str(signature, timestamp, nonce, encrypt)
            except (ValueError, TypeError, IndexError, struct.error, binascii.Error, UnicodeDecodeError):
                raise SignatureError("undecryptable body") from None
            except InvalidCorpIdOrSuiteKeyException:  # encrypted with the other owner key
                continue
            try:
                data = json.loads(plain)
            except ValueError:
                raise SignatureError("decrypted body is not JSON") from None
            if not isinstance(data, dict):
                raise SignatureError("decrypted body is not an object")
            return data
        raise SignatureError("body encrypted for another app")

    def encrypt(self, message: str, timestamp_ms: int) -> dict[str, str]:
        """``{"msg_signature","timeStamp","nonce","encrypt"}``, the shape DingTalk expects in the answer."""
        result: dict[str, str] = self._cryptos[0].encrypt_message(
            message, nonce=secrets.token_hex(4), timestamp=str(timestamp_ms)
        )
        return result
