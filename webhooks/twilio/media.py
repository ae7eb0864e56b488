"""Download inbound Twilio media (MediaUrlN) with the channel's credentials.

MediaUrlN points at api.twilio.com and, when the account enforces HTTP auth
on media, needs basic auth (account_sid, auth_token) (D1). Twilio answers with
a redirect to its storage host; requests drops the Authorization header when
the host changes, so the token never reaches that host.

The credentials are only sent to Twilio's own HTTPS hosts (or the configured
``api_base_url``): a media URL naming any other host is fetched without them, so
an unexpected URL can never walk away with the auth token.
"""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlsplit

import requests

from gateway.providers import Media, MediaError

TWILIO_API_HOST = "api.twilio.com"
TIMEOUT = (5, 30)   # (connect, read) seconds
# WhatsApp documents reach 100 MB; more than that is not an attachment Twilio relays.
MAX_BYTES = 100 * 1024 * 1024
CHUNK = 64 * 1024


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def resolve_url(url: str, channel: Mapping[str, Any] | None) -> str:
    """The URL to fetch: Twilio's API host swapped for ``settings.api_base_url`` when set (tests, sandboxes)."""
    settings = (channel or {}).get("settings") if isinstance(channel, Mapping) else None
    base = settings.get("api_base_url") if isinstance(settings, Mapping) else None
    if not base or _host(url) != TWILIO_API_HOST:
        return url
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return base.rstrip("/") + tail


def may_authenticate(url: str, channel: Mapping[str, Any] | None) -> bool:
    host = _host(url)
    settings = (channel or {}).get("settings") if isinstance(channel, Mapping) else None
    base = settings.get("api_base_url") if isinstance(settings, Mapping) else None
    if base and host == _host(base):
        return True
    return urlsplit(url).scheme == "https" and (host == "twilio.com" or host.endswith(".twilio.com"))


def _fail_for_status(code: int) -> None:
    if code in (401, 403):
        raise MediaError(f"Twilio rejected the credentials ({code}): check the channel's account_sid/auth_token",
                         retryable=False)
    if code in (404, 410):
        raise MediaError(f"media deleted ({code}): Twilio no longer has this media", retryable=False)
    if code == 429 or code >= 500:
        raise MediaError(f"Twilio answered {code} for the media; try again later", retryable=True)
    if code >= 400:
        raise MediaError(f"Twilio answered {code} for the media", retryable=False)


def download(media: Media, channel: Mapping[str, Any] | None,
             credentials: Mapping[str, Any] | None) -> tuple[bytes, str | None]:
    if not media.url:
        raise MediaError("the media has no URL", retryable=False)
    url = resolve_url(media.url, channel)
    auth = None
    if may_authenticate(url, channel):
        creds = credentials if isinstance(credentials, Mapping) else {}
        sid, token = creds.get("account_sid"), creds.get("auth_token")
        if not sid or not token:
            raise MediaError("the channel has no account_sid/auth_token to fetch Twilio media", retryable=False)
        auth = (sid, token)
    try:
        with requests.get(url, auth=auth, timeout=TIMEOUT, stream=True, allow_redirects=True) as resp:
            _fail_for_status(resp.status_code)
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MAX_BYTES:
                raise MediaError(f"the media is larger than {MAX_BYTES} bytes", retryable=False)
            chunks, size = [], 0
            for chunk in resp.iter_content(CHUNK):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise MediaError(f"the media is larger than {MAX_BYTES} bytes", retryable=False)
                chunks.append(chunk)
            return b"".join(chunks), resp.headers.get("Content-Type") or media.mime_type
    except requests.Timeout as exc:
        raise MediaError(f"timed out fetching the media: {exc}", retryable=True) from None
    except requests.TooManyRedirects:
        raise MediaError("too many redirects fetching the media", retryable=False) from None
    except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL) as exc:
        raise MediaError(f"the media URL is not fetchable: {exc}", retryable=False) from None
    except requests.RequestException as exc:
        raise MediaError(f"could not fetch the media: {exc}", retryable=True) from None
