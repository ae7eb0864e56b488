"""Domain events for integrations: an append-only outbox in PostgreSQL.

``emit`` writes in the caller's transaction, so an event exists exactly when
what it reports was committed. ``feed`` serves them to integrators who pull
(GET /v1/events) with a cursor no later commit can pass; the webhook relay
(gateway/webhook_relay.py) reads them the same way to push them to CRMs. ``data`` must never hold personal data (ids and
facts only): it outlives an erasure and travels to other systems.
"""
from __future__ import annotations

import base64
import uuid

from psycopg.types.json import Jsonb

from gateway.db import uuid7

CONTACT_ERASED = "contact.erased"


def emit(conn, account_id, type: str, data: dict | None = None, *, subject_id=None):
    """Append one event; returns its id."""
    event_id = uuid7()
    conn.execute("INSERT INTO events (account_id, id, type, subject_id, data) VALUES (%s, %s, %s, %s, %s)",
                 (account_id, event_id, type, subject_id, Jsonb(data or {})))
    return event_id


def emit_many(conn, account_id, rows) -> None:
    """Append several events in one statement, in the order given: ``rows`` of (type, data, subject_id).
    For batch paths (the send worker, imports), where one insert per event would cost a round trip each."""
    rows = list(rows)
    if not rows:
        return
    # The data go as one JSON array, not a jsonb[] (each element quoted inside an array literal costs the
    # send worker's batch more than the insert itself); the ids go in binary. WITH ORDINALITY and ORDER BY: the
    # feed's seq is handed out in this order, so the events read back in the order they were made.
    conn.execute(
        "INSERT INTO events (account_id, id, type, subject_id, data) SELECT %s, v.id, v.type, v.subject_id, d.data "
        "FROM unnest(%b::uuid[], %b::text[], %b::uuid[]) WITH ORDINALITY AS v(id, type, subject_id, n) "
        "JOIN jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS d(data, n) USING (n) ORDER BY n",
        (account_id, [uuid7() for _ in rows], [r[0] for r in rows],
         [s if s is None or isinstance(s, uuid.UUID) else uuid.UUID(str(s)) for _, _, s in rows],
         Jsonb([r[1] or {} for r in rows])))


def committed_after(cursor: str) -> str:
    """SQL condition on events ``e``: after ``cursor`` (an (xid, seq) row expression) and written by a transaction
    older than every one still running. The feed's rule, which the relay shares: whatever appears later sorts
    after any cursor already handed out."""
    return f"(e.xid, e.seq) > {cursor} AND e.xid < pg_snapshot_xmin(pg_current_snapshot())"


def feed(conn, *, account_id, after: tuple[str, int] | None, limit: int = 100,
         types: list[str] | None = None) -> list[dict]:
    """Events in the order their transactions were made, from after the cursor (``(xid, seq)``), showing only
    transactions older than every one still running: a cursor handed out is never passed by a later commit."""
    xid, seq = after if after else ("0", 0)
    return conn.execute(
        "SELECT e.id, e.type, e.subject_id, e.data, e.created_at, e.xid::text AS xid, e.seq FROM events e "
        f"WHERE e.account_id = %s AND {committed_after('(%s::xid8, %s)')} "
        "AND (%s::text[] IS NULL OR e.type = ANY(%s::text[])) ORDER BY e.xid, e.seq LIMIT %s",
        (account_id, xid, seq, types, types, limit)).fetchall()


def encode_cursor(xid: str, seq: int) -> str:
    """The feed's cursor as GET /v1/events hands it out."""
    return base64.urlsafe_b64encode(f"{xid}:{seq}".encode()).decode()


def head_cursor(conn, *, account_id) -> str:
    """The cursor after the account's newest visible event (the feed's start when it has none): where a reader that
    wants only what happens from now on starts (the console's live updates)."""
    row = conn.execute(
        "SELECT e.xid::text AS xid, e.seq FROM events e WHERE e.account_id = %s "
        f"AND {committed_after('(%s::xid8, %s)')} ORDER BY e.xid DESC, e.seq DESC LIMIT 1",
        (account_id, "0", 0)).fetchone()
    return encode_cursor(row["xid"], row["seq"]) if row else encode_cursor("0", 0)


def purge_older_than(conn, *, days: int, batch: int = 5000) -> int:
    """Drop events past the feed's retention, a batch at a time (the sweeper calls this each pass)."""
    return conn.execute(
        "DELETE FROM events WHERE ctid IN (SELECT ctid FROM events WHERE created_at < now() - make_interval(days => %s) "
        "LIMIT %s)", (days, batch)).rowcount
