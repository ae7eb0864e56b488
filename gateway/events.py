"""Domain events for integrations: an append-only outbox in PostgreSQL.

``emit`` writes in the caller's transaction, so an event exists exactly when
what it reports was committed. ``feed`` serves them to integrators who pull
(GET /v1/events) with a cursor no later commit can pass; signed webhook
delivery is still to come. ``data`` must never hold personal data (ids and
facts only): it outlives an erasure and travels to other systems.
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


def feed(conn, *, account_id, after: tuple[str, int] | None, limit: int = 100,
         types: list[str] | None = None) -> list[dict]:
    """Events in the order their transactions were made, from after the cursor (``(xid, seq)``), showing only
    transactions older than every one still running: a cursor handed out is never passed by a later commit."""
    xid, seq = after if after else ("0", 0)
    return conn.execute(
        "SELECT id, type, subject_id, data, created_at, xid::text AS xid, seq FROM events "
        "WHERE account_id = %s AND (xid, seq) > (%s::xid8, %s) AND xid < pg_snapshot_xmin(pg_current_snapshot()) "
        "AND (%s::text[] IS NULL OR type = ANY(%s::text[])) ORDER BY xid, seq LIMIT %s",
        (account_id, xid, seq, types, types, limit)).fetchall()


def purge_older_than(conn, *, days: int, batch: int = 5000) -> int:
    """Drop events past the feed's retention, a batch at a time (the sweeper calls this each pass)."""
    return conn.execute(
        "DELETE FROM events WHERE ctid IN (SELECT ctid FROM events WHERE created_at < now() - make_interval(days => %s) "
        "LIMIT %s)", (days, batch)).rowcount
