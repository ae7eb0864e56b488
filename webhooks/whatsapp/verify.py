"""WhatsApp Cloud API request authentication: pure functions, no I/O.

* POST: ``X-Hub-Signature-256: sha256=<hex>`` is HMAC-SHA256 of the raw body
  bytes keyed with the Meta App Secret (protocols.md A2). Hash the bytes as
  received: Meta escapes non-ASCII as ``\\uXXXX`` before signing, so a
  re-serialised or decoded body never matches.
* GET: the subscription handshake echoes ``hub.challenge`` when
  ``hub.mode == "subscribe"`` and ``hub.verify_token`` matches (A1).
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping

from gateway.provider_http import header  # noqa: F401  (also used by this folder's other modules)

SIGNATURE_HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="




def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def compute_signature(raw: bytes, app_secret: str | bytes) -> str:
    """The header value Meta would send: 'sha256=' + lowercase hex HMAC-SHA256."""
    return PREFIX + hmac.new(_as_bytes(app_secret), raw, hashlib.sha256).hexdigest()


def signature_matches(raw: bytes, signature: str | None, app_secret: str | bytes | None) -> bool:
    """Constant-time check of one X-Hub-Signature-256 value; False for anything missing or malformed."""
    if not signature or not app_secret or not isinstance(raw, (bytes, bytearray)):
        return False
    value = signature.strip()
    if not value[:len(PREFIX)].lower() == PREFIX:
        return False
    try:
        given = value[len(PREFIX):].lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    expected = hmac.new(_as_bytes(app_secret), bytes(raw), hashlib.sha256).hexdigest().encode("ascii")
    return hmac.compare_digest(expected, given)


def verify_request(raw: bytes, headers: Mapping[str, Any], app_secret: str | bytes | None) -> bool:
    return signature_matches(raw, header(headers, SIGNATURE_HEADER), app_secret)


def verify_handshake(params: Mapping[str, Any], verify_token: str | None) -> str | None:
    """hub.challenge (verbatim) for a valid subscribe handshake, else None (answer 403)."""
    if not verify_token or params is None:
        return None
    mode = params.get("hub.mode")
    token = params.get("hub.verify_token")
    challenge = params.get("hub.challenge")
    if mode != "subscribe" or not isinstance(token, str) or not isinstance(challenge, str):
        return None
    if not hmac.compare_digest(token.encode("utf-8"), verify_token.encode("utf-8")):
        return None
    return challenge
