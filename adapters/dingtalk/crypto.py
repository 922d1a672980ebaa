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
import secrets
import struct
from typing import Any

from adapters.http import ReplayWindow, UnsafeJson, loads

MAX_CLOCK_SKEW_MS = 3600 * 1000
"""DingTalk: "timestamp 与系统当前时间戳如果相差1小时以上，则认为是非法的请求"."""
DEFAULT_WINDOW = ReplayWindow(window=MAX_CLOCK_SKEW_MS / 1000, tolerance=MAX_CLOCK_SKEW_MS / 1000)
"""The ``[dingtalk]`` defaults (``replay_window_seconds`` / ``clock_tolerance_seconds``)."""


class SignatureError(Exception):
    """The request is not from DingTalk (bad signature, stale timestamp, undecryptable body)."""


class MalformedBody(SignatureError):
    """Signed and decrypted, but not a JSON object we can read (too deep, not JSON): a 400, not a 401."""


def robot_sign(timestamp: str, app_secret: str) -> str:
    msg = f"{timestamp}\n{app_secret}".encode()
    return base64.b64encode(hmac.new(app_secret.encode(), msg, hashlib.sha256).digest()).decode()


def check_robot_signature(
    timestamp: str | None,
    sign: str | None,
    app_secret: str,
    now_ms: int,
    window: ReplayWindow = DEFAULT_WINDOW,
) -> None:
    """The signature covers the timestamp only, never the body: a valid pair proves DingTalk signed *some*
    message at that time, so the adapter also remembers each pair with its first message id (issue 16 #5)."""
    if not timestamp or not sign:
        raise SignatureError("missing timestamp or sign header")
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError("timestamp is not a number") from None
    refusal = window.refusal(ts / 1000, now_ms / 1000)
    if refusal is not None:
        raise SignatureError(f"stale timestamp: {refusal}")
    if not hmac.compare_digest(robot_sign(timestamp, app_secret).encode(), sign.encode("utf-8", "replace")):
        raise SignatureError("bad signature")


def robot_signature_key(timestamp: str, sign: str) -> str:
    """What the replay memory stores for a pair: a digest, so the table holds no usable signature."""
    return hashlib.sha256(f"{timestamp}\n{sign}".encode()).hexdigest()


def event_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()  # noqa: S324


class EventCrypto:
    """Event-subscription callbacks: verify, decrypt, and encrypt the "success" answer.

    Internal apps made in the new developer console key the cipher with the app key; apps registered through
    the old ``register_call_back`` use the corp id. Both are tried, the app key first (a wrong owner key
    fails the SDK's trailing-id check, it never yields garbage).
    """

    def __init__(self, token: str, aes_key: str, app_key: str, corp_id: str = "") -> None:
        # Imported here: dingtalk-sdk brings ``requests`` and its API client (a few MB), and only an app with
        # an event-subscription key (HTTP mode) needs it; a Stream-mode process never builds this.
        from dingtalk.crypto import DingTalkCrypto

        self.token = token
        self.owner_keys = [k for k in (app_key, corp_id) if k]
        self._cryptos = [DingTalkCrypto(token, aes_key, k) for k in self.owner_keys]

    def decrypt(
        self, signature: str | None, timestamp: str | None, nonce: str | None, encrypt: str | None
    ) -> dict[str, Any]:
        from dingtalk.core.exceptions import InvalidCorpIdOrSuiteKeyException

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
                data = loads(plain)
            except UnsafeJson as exc:
                raise MalformedBody(f"decrypted body: {exc}") from None
            if not isinstance(data, dict):
                raise MalformedBody("decrypted body is not an object")
            return data
        raise SignatureError("body encrypted for another app")

    def encrypt(self, message: str, timestamp_ms: int) -> dict[str, str]:
        """``{"msg_signature","timeStamp","nonce","encrypt"}``, the shape DingTalk expects in the answer."""
        result: dict[str, str] = self._cryptos[0].encrypt_message(
            message, nonce=secrets.token_hex(4), timestamp=str(timestamp_ms)
        )
        return result
