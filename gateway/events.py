"""Domain events for integrations: an append-only outbox in PostgreSQL.

``emit`` writes in the caller's transaction, so an event exists exactly when
what it reports was committed. Nothing delivers them yet: the integration
issue (signed webhooks and a change feed) reads this table in ``id`` order
(uuid7, time-ordered) and owns delivery, retries and cursors. ``data`` must
never hold personal data (ids and facts only): it outlives an erasure and
travels to other systems.
"""
from __future__ import annotations

from psycopg.types.json import Jsonb

from gateway.db import uuid7

CONTACT_ERASED = "contact.erased"


def emit(conn, account_id, type: str, data: dict | None = None, *, subject_id=None):
    """Append one event; returns its id."""
    event_id = uuid7()
    conn.execute("INSERT INTO events (account_id, id, type, subject_id, data) VALUES (%s, %s, %s, %s, %s)",
                 (account_id, event_id, type, subject_id, Jsonb(data or {})))
    return event_id


def list_events(conn, *, account_id, after=None, limit: int = 100) -> list[dict]:
    """Oldest first, after the given event id (the cursor a consumer keeps)."""
    return conn.execute(
        "SELECT id, type, subject_id, data, created_at FROM events WHERE account_id = %s "
        "AND (%s::uuid IS NULL OR id > %s) ORDER BY id LIMIT %s", (account_id, after, after, limit)).fetchall()
