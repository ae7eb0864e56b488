"""Meta epoch numbers -> UTC datetimes.

Messaging events count in milliseconds, but the dashboard "Test" button sends seconds as a
string and Instagram ``changes`` entries carry ``time`` in seconds, so the unit is inferred:
below 10^11 can only be seconds (10^11 ms is 1973; 10^11 s is the year 5138).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

_SECONDS_BELOW = 10 ** 11


def as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            try:
                return float(value.strip())
            except ValueError:
                return None
    return None


def as_text(value: Any) -> str | None:
    """The timestamp as Meta gave it, as a string (whole floats lose their '.0')."""
    number = as_number(value)
    if number is None:
        return None
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    return str(number) if not isinstance(value, str) else value.strip()


def to_datetime(value: Any) -> datetime | None:
    number = as_number(value)
    if number is None or number < 0:
        return None
    seconds = number if number < _SECONDS_BELOW else number / 1000
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
