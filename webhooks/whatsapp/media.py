"""Download inbound media through the Cloud API (protocols.md B7).

Two calls: ``GET /{version}/{media-id}`` answers ``{url, mime_type, sha256 (hex), file_size}``,
then ``GET url`` gives the bytes. Both need the channel's access token as a Bearer header:
the lookaside URL answers an anonymous fetch with HTML or 404, not the file.

Failures are sorted for the worker: retryable (timeouts, 429, 5xx, a transient Graph
code, bytes that do not match their digest) or permanent with a reason that names the fix.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, Mapping
from urllib.parse import quote

import requests

from gateway.providers import Media, MediaError

DEFAULT_BASE = "https://graph.facebook.com"
DEFAULT_VERSION = "v24.0"
TIMEOUT = (5, 30)                    # (connect, read) seconds
MAX_BYTES = 128 * 1024 * 1024        # above WhatsApp's largest media (documents, 100 MB)
CHUNK = 64 * 1024
# Graph error codes that say "later": unknown/temporary error, rate limits, service unavailable.
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 613, 80007, 130429, 131016})
PERMISSION_CODES = frozenset({3, 10, *range(200, 300)})


def digest_bytes(value: Any) -> bytes | None:
    """A SHA-256 digest given as hex (media endpoint) or base64 (webhook); None if it is neither."""
    if not isinstance(value, str):
        return None
    candidate = value.strip()
    if len(candidate) == 64:
        try:
            return bytes.fromhex(candidate)
        except ValueError:
            pass
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(candidate + "=" * (-len(candidate) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            return raw
    return None


def _graph_error(resp: requests.Response) -> tuple[int | None, str | None, bool]:
    """(code, message, is_transient) from Graph's ``{"error": {...}}`` body, as far as it is there."""
    try:
        error = resp.json().get("error")
    except (ValueError, AttributeError):
        return None, None, False
    if not isinstance(error, dict):
        return None, None, False
    code = error.get("code")
    message = error.get("message")
    return (code if isinstance(code, int) and not isinstance(code, bool) else None,
            message if isinstance(message, str) else None, error.get("is_transient") is True)


def classify(resp: requests.Response, what: str) -> MediaError:
    status = resp.status_code
    code, message, transient = _graph_error(resp)
    said = f" (Graph: {message})" if message else ""
    if status == 429 or status >= 500:
        return MediaError(f"{what}: Graph answered {status}{said}; try again later", retryable=True)
    if status == 401 or code == 190:
        return MediaError(f"access token rejected ({status}){said}: update the channel's access_token",
                          retryable=False)
    if status == 403 or code in PERMISSION_CODES:
        return MediaError(f"access token lacks permission ({status}){said}: give the token's system user "
                          "the whatsapp_business_messaging permission on this WABA", retryable=False)
    if transient or code in TRANSIENT_CODES:
        return MediaError(f"{what}: Graph is rate limiting or briefly failing ({status}){said}; try again later",
                          retryable=True)
    if status == 404:
        return MediaError(f"media not found (404){said}: the media id has expired (Meta keeps inbound media "
                          "for a limited time) or belongs to another app; ask the customer to send it again",
                          retryable=False)
    if status == 400:
        return MediaError(f"{what} rejected (400){said}: check the media id and the channel's graph_version "
                          "setting", retryable=False)
    return MediaError(f"{what}: unexpected answer {status}{said}", retryable=not 400 <= status < 500)


def _get(url: str, token: str, what: str, *, stream: bool = False) -> requests.Response:
    try:
        resp = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT, stream=stream)
    except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL) as exc:
        raise MediaError(f"{what}: unusable URL {url!r}: {exc}", retryable=False) from exc
    except requests.Timeout as exc:
        raise MediaError(f"{what} timed out: {exc}", retryable=True) from exc
    except requests.RequestException as exc:   # connection refused/reset, DNS, TLS, too many redirects
        raise MediaError(f"{what} failed: {exc}", retryable=True) from exc
    if not 200 <= resp.status_code < 300:
        error = classify(resp, what)
        resp.close()
        raise error
    return resp


def lookup(media_id: str, settings: Mapping[str, Any], token: str) -> dict:
    """Graph's description of the media: a short-lived url plus mime_type, sha256 (hex) and file_size."""
    base = (settings.get("api_base_url") or DEFAULT_BASE).rstrip("/")
    version = (settings.get("graph_version") or DEFAULT_VERSION).strip("/")
    resp = _get(f"{base}/{version}/{quote(media_id, safe='')}", token, "media lookup")
    try:
        info = resp.json()
    except ValueError as exc:
        raise MediaError("media lookup: Graph's answer is not JSON", retryable=True) from exc
    if not isinstance(info, dict) or not isinstance(info.get("url"), str) or not info["url"]:
        raise MediaError(f"media lookup: Graph's answer for {media_id!r} has no url; the id does not name "
                         "a media object", retryable=False)
    return info


def fetch(url: str, token: str) -> tuple[bytes, str | None]:
    resp = _get(url, token, "media download", stream=True)
    with resp:
        chunks, size = [], 0
        try:
            for chunk in resp.iter_content(CHUNK):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise MediaError(f"media download: larger than {MAX_BYTES} bytes", retryable=False)
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise MediaError(f"media download interrupted: {exc}", retryable=True) from exc
        return b"".join(chunks), resp.headers.get("Content-Type")


def check(data: bytes, announced: list[Any], file_size: Any) -> None:
    """Compare with every well-formed digest we were given; a malformed one cannot be checked, only skipped."""
    actual = hashlib.sha256(data).digest()
    for value in announced:
        expected = digest_bytes(value)
        if expected is not None and expected != actual:
            raise MediaError(f"media download: sha256 mismatch (announced {value}, got {actual.hex()}); "
                             "the transfer was corrupted or cut short", retryable=True)
    size = file_size if isinstance(file_size, int) and not isinstance(file_size, bool) else None
    if isinstance(file_size, str) and file_size.isdigit():
        size = int(file_size)
    if size is not None and size != len(data):
        raise MediaError(f"media download: {len(data)} bytes, Graph announced {size}", retryable=True)


def download(media: Media, channel: Mapping[str, Any], credentials: Mapping[str, Any]) -> tuple[bytes, str | None]:
    token = (credentials or {}).get("access_token")
    if not isinstance(token, str) or not token:
        raise MediaError("the channel has no access_token: add the WhatsApp system user's token to the channel",
                         retryable=False)
    settings = (channel or {}).get("settings") or {}
    if media.url:
        try:
            data, content_type = fetch(media.url, token)
            check(data, [media.sha256], None)
            return data, media.mime_type or content_type
        except MediaError as exc:
            # Webhook URLs live for minutes; a media id can still be resolved to a fresh one.
            if exc.retryable or not media.provider_media_id:
                raise
    if not media.provider_media_id:
        raise MediaError("nothing to download: the message named neither a media id nor a url", retryable=False)
    info = lookup(media.provider_media_id, settings, token)
    data, content_type = fetch(info["url"], token)
    check(data, [info.get("sha256"), media.sha256], info.get("file_size"))
    mime = info.get("mime_type") if isinstance(info.get("mime_type"), str) else None
    return data, mime or media.mime_type or content_type
