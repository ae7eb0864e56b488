"""The change feed: GET /v1/events, the account's events for integrators who pull instead of receiving webhooks."""
from __future__ import annotations

import base64
import re

from flask import request

from gateway import events
from gateway.api.views import bp
from gateway.http import api
from gateway.problems import Problem

_CURSOR = re.compile(r"(\d{1,20}):(\d{1,20})")
_TYPE = re.compile(r"[a-z_]+\.[a-z_]+")


def _cursor(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    try:
        found = _CURSOR.fullmatch(base64.urlsafe_b64decode(value.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        found = None
    if found is None:
        raise Problem(400, "Bad Cursor", "the 'after' cursor is not one this API returned; start without it to read "
                      "from the oldest event kept", slug="bad-cursor")
    return found.group(1), int(found.group(2))


@bp.get("/events")
@api(scope="messages:read")
def list_events(conn, principal):
    """Oldest first, from after the cursor; ``types`` filters (comma-separated). ``next`` is the cursor to
    ask with next time (the one given when nothing new came), so a consumer keeps exactly one value."""
    after = _cursor(request.args.get("after"))
    limit = min(max(request.args.get("limit", 100, type=int), 1), 1000)
    types = [t for t in (request.args.get("types") or "").split(",") if t]
    for t in types:
        if not _TYPE.fullmatch(t):
            raise Problem(400, "Bad Filter", f"types is a comma-separated list of event types such as "
                          f"message.received,thread.status_changed; {t!r} is not one", slug="bad-filter")
    rows = events.feed(conn, account_id=principal.account_id, after=after, limit=limit, types=types or None)
    data = [{"id": r["id"], "type": r["type"], "subject_id": r["subject_id"], "data": r["data"],
             "created_at": r["created_at"]} for r in rows]
    nxt = events.encode_cursor(rows[-1]["xid"], rows[-1]["seq"]) if rows else (request.args.get("after") or None)
    return {"data": data, "next": nxt, "more": len(rows) == limit}
