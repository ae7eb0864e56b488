"""A thread's history besides its messages: status changes, assignments, hand-offs, with who and when.

Rows hold ids and facts only (no message text, no profile values): the contact timeline and the reports
read them, and erasure removes them with the thread.
"""
from __future__ import annotations

from datetime import datetime

from psycopg.types.json import Jsonb

from gateway.db import uuid7


def record(conn, *, account_id, thread_id, kind: str, actor: str, detail: dict | None = None,
           at: datetime | None = None):
    """One history row; a status change also goes out as ``thread.status_changed`` (the events outbox)."""
    event_id = uuid7()
    if kind == "status":
        from gateway import events
        events.emit(conn, account_id, "thread.status_changed", {"thread_id": str(thread_id), "actor": actor,
                                                                **{k: v for k, v in (detail or {}).items()}},
                    subject_id=thread_id)
    conn.execute("INSERT INTO thread_events (account_id, id, thread_id, kind, actor, detail, created_at) "
                 "VALUES (%s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
                 (account_id, event_id, thread_id, kind, actor, Jsonb(detail or {}), at))
    return event_id


def list_for(conn, *, account_id, thread_id, limit: int = 200) -> list[dict]:
    """Oldest first."""
    return conn.execute(
        "SELECT id, kind, actor, detail, created_at FROM thread_events WHERE account_id = %s AND thread_id = %s "
        "ORDER BY created_at, id LIMIT %s", (account_id, thread_id, limit)).fetchall()
