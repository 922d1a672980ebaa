"""Callback security: the ``X-Lark-Signature`` check, AES-256-CBC decryption, and the verification token.

Decryption is lark-oapi's own ``AESCipher`` (key = sha256(encrypt_key), IV = the first 16 bytes, PKCS#7 on a
16-byte block), so a format change upstream is picked up with the SDK. The signature is computed here rather
than through ``EventDispatcherHandler._verify_sign`` because the SDK compares with ``!=`` and crashes on a
missing header; the algorithm is the SDK's: sha256(timestamp + nonce + encrypt_key + raw body), hex.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from lark_oapi.core.utils import AESCipher

from adapters.base import CallbackRejected

SIGNATURE_HEADER = "X-Lark-Signature"
TIMESTAMP_HEADER = "X-Lark-Request-Timestamp"
NONCE_HEADER = "X-Lark-Request-Nonce"


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode("utf-8") + body).hexdigest()


def verify_signature(
    *, timestamp: str | None, nonce: str | None, given: str | None, encrypt_key: str, body: bytes
) -> None:
    """Raise ``CallbackRejected(401)`` unless the three headers are present and the signature matches."""
    if not timestamp or not nonce or not given:
        raise CallbackRejected(401, "missing signature headers")
    expected = signature(timestamp, nonce, encrypt_key, body)
    if not hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("ascii", "replace")):
        raise CallbackRejected(401, "bad signature")


def decrypt(encrypt_key: str, encrypted: str) -> str:
    """The plaintext JSON of an ``{"encrypt": …}`` body; ``CallbackRejected(400)`` for anything malformed."""
    try:
        raw = base64.b64decode(encrypted, validate=True)
        plain: bytes = AESCipher(encrypt_key).decrypt(raw)
        return plain.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise CallbackRejected(400, f"bad ciphertext: {exc}") from None


def check_token(expected: str, given: Any) -> None:
    """Constant-time comparison of the verification token carried in the (decrypted) body."""
    if not expected or not isinstance(given, str) or not given:
        raise CallbackRejected(401, "missing verification token")
    if not hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8")):
        raise CallbackRejected(401, "bad verification token")


def load_json(raw: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CallbackRejected(400, "body is not JSON") from None
    if not isinstance(data, dict):
        raise CallbackRejected(400, "body is not a JSON object")
    return data
