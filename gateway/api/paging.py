"""Cursor pagination shared by list endpoints: opaque cursors over (timestamp, id), and the limit."""
from __future__ import annotations

import base64
from datetime import datetime

from flask import request

from gateway.http import parse_uuid
from gateway.problems import Problem


def encode(at: datetime, row_id) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{row_id}".encode()).decode()


def decode(name: str):
    """The (timestamp, id) in query parameter ``name``, or None; 400 when it is not one we issued."""
    value = request.args.get(name)
    if not value:
        return None
    try:
        at, _, row_id = base64.urlsafe_b64decode(value.encode()).decode().partition("|")
        return datetime.fromisoformat(at), parse_uuid(row_id, "cursor")
    except (ValueError, UnicodeDecodeError, Problem):
        raise Problem(400, "Bad Cursor", f"the '{name}' cursor is not one this API returned; "
                      "start again without it", slug="bad-cursor") from None


def limit(default: int = 50, most: int = 200) -> int:
    try:
        value = int(request.args.get("limit", default))
    except ValueError:
        value = 0
    if not 1 <= value <= most:
        raise Problem(400, "Bad Limit", f"limit must be a whole number from 1 to {most}", slug="bad-limit")
    return value
