"""Request signatures, as each receiver checks them (SPEC §14). Pure functions, no I/O.

- Standard Webhooks (standardwebhooks.com): headers ``webhook-id``, ``webhook-timestamp``
  (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>``;
  the key is the base64 part of a ``whsec_…`` secret.
- 钉钉 custom robot (加签): ``timestamp`` (Unix milliseconds) and
  ``sign = urlencode(base64(HMAC-SHA256(key=secret, msg="timestamp\\nsecret")))`` as query
  parameters of the robot's URL.
- 飞书 custom bot (签名校验): ``timestamp`` (Unix seconds) and
  ``sign = base64(HMAC-SHA256(key="timestamp\\nsecret", msg=b""))`` in the JSON body.

The `verify_*` functions are what a receiver (and the tests' receiver) runs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import quote_plus

WHSEC = "whsec_"


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_`` + base64; the prefix may be left off)."""
    text = secret[len(WHSEC):] if secret.startswith(WHSEC) else secret
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must hold a Standard Webhooks secret: whsec_ followed by base64") from None
    if len(key) < 16:
        raise ValueError("must hold a Standard Webhooks secret of at least 16 bytes (whsec_ + base64)")
    return key


def webhook_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 signature>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": webhook_signature(secret, msg_id, timestamp, body)}


def verify_webhook(secret: str, headers: dict[str, str], body: bytes, now: int, tolerance: int = 300) -> bool:
    """A receiver's check: one of the ``v1`` signatures matches and the timestamp is recent."""
    try:
        msg_id, stamp = headers["webhook-id"], int(headers["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(now - stamp) > tolerance:
        return False
    expected = webhook_signature(secret, msg_id, stamp, body)
    return any(hmac.compare_digest(expected, given) for given in headers.get("webhook-signature", "").split())


def _hmac_b64(key: bytes, msg: bytes) -> str:
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """钉钉's ``sign`` query parameter, already URL-encoded."""
    return quote_plus(_hmac_b64(secret.encode(), f"{timestamp_ms}\n{secret}".encode()))


def dingtalk_url(url: str, secret: str | None, timestamp_ms: int) -> str:
    """The robot URL with ``timestamp`` and ``sign`` added (unchanged without a secret)."""
    if not secret:
        return url
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


def verify_dingtalk(secret: str, timestamp_ms: str, sign: str) -> bool:
    """`sign` as it arrives, already URL-decoded by the receiver's query parsing."""
    expected = _hmac_b64(secret.encode(), f"{timestamp_ms}\n{secret}".encode())
    return hmac.compare_digest(expected, sign)


def feishu_sign(secret: str, timestamp: int) -> str:
    """飞书's ``sign`` body field: the HMAC key is "timestamp\\nsecret", the message empty."""
    return _hmac_b64(f"{timestamp}\n{secret}".encode(), b"")


def verify_feishu(secret: str, timestamp: str, sign: str) -> bool:
    return hmac.compare_digest(_hmac_b64(f"{timestamp}\n{secret}".encode(), b""), sign)
