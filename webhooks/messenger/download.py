"""Fetch an attachment from the URL Meta put in the webhook (``payload.url``).

Meta's attachment URLs (``cdn.fbsbx.com``, ``lookaside.fbsbx.com``, ``scontent``) are signed
and need no token, but they expire: a 4xx will not get better with time, a 5xx or a 429 may.
"""
from __future__ import annotations

import requests

from gateway.providers import Media, MediaError

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
# Meta caps attachments at 25 MB; the margin only guards the worker against a runaway body.
MAX_BYTES = 100 * 1024 * 1024
EXPIRED = frozenset({401, 403, 404, 410})


def _refused(status: int) -> MediaError:
    if status in EXPIRED:
        return MediaError(f"the attachment URL expired ({status}); attachment links are short-lived, "
                          "ask the customer to send it again", retryable=False)
    return MediaError(f"the attachment host refused the download ({status})", retryable=False)


def _read(response: requests.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=64 * 1024):
        size += len(chunk)
        if size > MAX_BYTES:
            raise MediaError(f"the attachment is larger than {MAX_BYTES // (1024 * 1024)} MB", retryable=False)
        chunks.append(chunk)
    return b"".join(chunks)


def fetch(media: Media, *, provider_label: str) -> tuple[bytes, str | None]:
    """The attachment's bytes and media type (parameters such as charset dropped)."""
    url = media.url
    if not isinstance(url, str) or not url:
        raise MediaError(f"the {provider_label} attachment has no URL to download", retryable=False)
    try:
        with requests.get(url, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S), stream=True) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise MediaError(f"the attachment host is unavailable ({status}); try again later")
            if status >= 300:
                raise _refused(status)
            body = _read(response)
            content_type = response.headers.get("Content-Type")
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema, requests.exceptions.TooManyRedirects) as exc:
        raise MediaError(f"the attachment URL cannot be fetched ({type(exc).__name__})", retryable=False) from None
    except requests.exceptions.RequestException as exc:   # timeouts, resets, refused connections
        raise MediaError(f"the attachment download failed ({type(exc).__name__}); try again later") from None
    media_type = content_type.split(";", 1)[0].strip() if content_type else None
    return body, media_type or media.mime_type
