"""Small coercions for loosely typed webhook values (ids arrive as strings or numbers)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def text(value: Any) -> str | None:
    """A non-empty string form of an id-like value; None for missing, empty, or structured values."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    out = str(value)
    return out or None


def phone_digits(value: Any) -> str | None:
    """The digits of a wa_id ("972987654321", tolerating a leading '+'); None when it is not a number."""
    raw = text(value)
    if raw is None:
        return None
    digits = raw[1:] if raw.startswith("+") else raw
    return digits if digits.isascii() and digits.isdigit() else None


def e164(value: Any) -> str | None:
    digits = phone_digits(value)
    return "+" + digits if digits else None


def utc_from_seconds(value: Any) -> datetime | None:
    """Meta timestamps are Unix seconds, usually as a string; None when unreadable."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def dict_list(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
