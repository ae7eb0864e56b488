"""X-Twilio-Signature, exactly as protocols.md D3 describes it. Pure functions, no I/O.

* Form bodies: HMAC-SHA1 over the full URL Twilio called followed by every
  body parameter, names sorted, each value as name+value (a repeated name
  contributes its distinct values, sorted). Base64.
* JSON bodies: Twilio puts ``bodySHA256=<hex sha256 of the body>`` in the
  URL's query and signs the URL alone; the body is then bound by that hash.
* Twilio's signer is inconsistent about the default port, so the URL is tried
  as given and with ``:443``/``:80`` added or removed.
* Several keys may be valid at once (managed webhook key, auth token, the
  previous token during a rotation); each is tried in constant time.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

from gateway.providers import BadRequest
from webhooks.twilio import body as _body

SIGNATURE_HEADER = "X-Twilio-Signature"
BODY_HASH_PARAM = "bodySHA256"
DEFAULT_PORTS = {"https": "443", "http": "80"}


def signed_text(url: str, pairs: Iterable[tuple[str, str]] = ()) -> str:
    """The string Twilio signs: the URL, then name+value for each parameter in sorted order."""
    values: dict[str, set[str]] = {}
    for name, value in pairs:
        values.setdefault(name, set()).add(value)
    parts = [url]
    for name in sorted(values):
        parts.extend(name + value for value in sorted(values[name]))
    return "".join(parts)


def compute(url: str, pairs: Iterable[tuple[str, str]], key: str) -> str:
    digest = hmac.new(key.encode("utf-8"), signed_text(url, pairs).encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> list[str]:
    """The URL as given, then the same URL with the default port toggled (added when absent, removed when present).

    Edited as a string, not re-assembled with urlunsplit, because the
    signature covers the URL byte for byte (encoding, empty query, ...).
    """
    scheme, sep, rest = url.partition("://")
    default = DEFAULT_PORTS.get(scheme.lower()) if sep else None
    if default is None:
        return [url]
    end = len(rest)
    for stop in "/?#":
        at = rest.find(stop)
        if at != -1:
            end = min(end, at)
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, hostport = netloc.rpartition("@")
    prefix = userinfo + at
    host, colon, port = hostport.rpartition(":")
    if colon and port.isdigit() and not hostport.endswith("]"):
        if port != default:
            return [url]
        other = host
    elif hostport:
        other = hostport + ":" + default
    else:
        return [url]
    return [url, f"{scheme}{sep}{prefix}{other}{tail}"]


def _matches(expected: str, given: bytes) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), given)


def body_hash_in(url: str) -> str | None | bool:
    """The URL's bodySHA256 value; None when absent; False when it appears more than once (never signed so)."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return False
    found = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == BODY_HASH_PARAM]
    if not found:
        return None
    return found[0] if len(found) == 1 else False


def signing_keys(credentials: Mapping[str, Any] | None) -> list[str]:
    """The keys to try, in order: webhook_secret (else auth_token), then previous_auth_token."""
    if not isinstance(credentials, Mapping):
        return []
    keys: list[str] = []
    primary = credentials.get("webhook_secret") or credentials.get("auth_token")
    for key in (primary, credentials.get("previous_auth_token")):
        if isinstance(key, str) and key and key not in keys:
            keys.append(key)
    return keys


def verify_request(raw: bytes, headers: Mapping[str, Any] | None, url: str | None,
                   keys: Iterable[str]) -> bool:
    """True when X-Twilio-Signature matches this request under one of the keys."""
    given_text = _body.header(headers, SIGNATURE_HEADER)
    keys = [k for k in keys if k]
    if not given_text or not keys or not isinstance(url, str) or not url:
        return False
    try:
        given = given_text.strip().encode("ascii")
    except UnicodeEncodeError:
        return False

    body_hash = body_hash_in(url)
    if body_hash is False:
        return False
    if body_hash is not None:
        # JSON variant: the URL (with the hash) is what is signed; the hash binds the body.
        actual = hashlib.sha256(bytes(raw)).hexdigest()
        if not hmac.compare_digest(actual.encode("ascii"), body_hash.strip().lower().encode("ascii", "replace")):
            return False
        pairs: tuple[tuple[str, str], ...] = ()
    else:
        try:
            params = _body.decode(raw, headers)
        except BadRequest:
            return False
        if params.is_json:
            return False   # a JSON body without bodySHA256 would be signed by nothing at all
        pairs = params.pairs

    ok = False
    for key in keys:
        for candidate in url_variants(url):
            # No early exit: every key and URL form costs the same whichever one matches.
            ok |= _matches(compute(candidate, pairs, key), given)
    return ok
