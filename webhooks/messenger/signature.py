"""Meta webhook authentication shared by Messenger and Instagram (protocols.md A1, A2, C1).

POST bodies carry ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`` keyed
with the app secret. The raw bytes must be hashed as received: Meta escapes non-ASCII as
``\\uXXXX`` before signing, so a decoded or re-serialised body never matches.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping

from gateway.provider_http import header  # noqa: F401  (also used by this folder's other modules)

SIGNATURE_HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="




def sign(raw: bytes, app_secret: str) -> str:
    """The header value Meta would send for this body."""
    return PREFIX + hmac.new(app_secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


def signature_ok(raw: bytes, headers: Mapping[str, Any] | None, app_secret: Any) -> bool:
    """Constant-time check; False for a missing secret, header or a malformed value."""
    if not isinstance(app_secret, str) or not app_secret or not isinstance(raw, (bytes, bytearray)):
        return False
    given = header(headers, SIGNATURE_HEADER)
    if not given:
        return False
    given = given.strip()
    if given[:len(PREFIX)].lower() != PREFIX:
        return False
    try:
        digest = given[len(PREFIX):].lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    expected = sign(bytes(raw), app_secret)[len(PREFIX):].encode("ascii")
    return hmac.compare_digest(expected, digest)


def handshake(params: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(offered verify token, challenge) of a subscribe GET; the core compares the token."""
    if not params:
        return None
    try:
        mode = params.get("hub.mode")
        token = params.get("hub.verify_token")
        challenge = params.get("hub.challenge")
    except Exception:
        return None
    if mode != "subscribe" or not isinstance(token, str) or not isinstance(challenge, str):
        return None
    return token, challenge
