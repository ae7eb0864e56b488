"""Plumbing every provider folder shares: case-insensitive headers, Retry-After, reasons without personal data.

Provider knowledge (payloads, codes, signatures) stays in each folder; these
are the generic pieces they would otherwise each write again.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Mapping


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """Case-insensitive lookup that works on a plain dict as well as on Werkzeug headers."""
    if not headers:
        return None
    wanted = name.lower()
    try:
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == wanted:
                return value if isinstance(value, str) else None
    except Exception:
        return None
    return None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date, never negative); None when absent or unreadable."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


_DIGITS = re.compile(r"\+?\d(?:[\s().-]?\d){7,}")


def scrub(text: str, *secrets: str | None, limit: int = 300) -> str:
    """``text`` without the given values (recipient, message text) nor anything phone-like, at most ``limit``."""
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= 6:
            text = text.replace(secret, "[redacted]")
    text = _DIGITS.sub("[number]", text)
    text = " ".join(text.split())
    return text[:limit - 1] + "…" if len(text) > limit else text
