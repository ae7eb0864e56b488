"""An endpoint's delivery log (every delivery and every attempt), replays, and the log's retention."""
from __future__ import annotations

from datetime import datetime

from gateway import webhook_endpoints

_DELIVERY = ("d.id, d.event_id, d.event_type, d.state, d.attempts, d.last_latency_ms, "
             "CASE WHEN d.state = 'pending' AND d.next_attempt_at < 'infinity' THEN d.next_attempt_at END "
             "AS next_attempt_at, d.state = 'pending' AND d.next_attempt_at = 'infinity' AS held, "
             "d.last_status_code, d.last_error, d.replay_of, d.delivered_at, d.created_at, d.seq")
STATES = ("pending", "delivering", "delivered", "dead")
REPLAY_MAX = 100_000


def _with_attempts(conn, account_id, rows: list[dict]) -> list[dict]:
    """Each delivery with every attempt: the failed ones from webhook_attempts, the successful one from the
    delivery's own row (it is kept there to spare the busiest path a second write)."""
    failed: dict = {}
    for a in conn.execute("SELECT delivery_id, n, at, status_code, latency_ms, error, response FROM webhook_attempts "
                          "WHERE account_id = %s AND delivery_id = ANY (%s::uuid[]) ORDER BY delivery_id, n",
                          (account_id, [r["id"] for r in rows])).fetchall():
        failed.setdefault(a.pop("delivery_id"), []).append(a)
    out = []
    for r in rows:
        log = failed.get(r["id"], [])
        if r["state"] == "delivered":
            log.append({"n": r["attempts"], "at": r["delivered_at"], "status_code": r["last_status_code"],
                        "latency_ms": r["last_latency_ms"], "error": None, "response": None})
        out.append(dict({k: v for k, v in r.items() if k != "last_latency_ms"}, attempt_log=log))
    return out


def list_deliveries(conn, *, account_id, endpoint_id, state: str | None = None, event_type: str | None = None,
                    before: int | None = None, limit: int = 50) -> list[dict]:
    """Newest first, each with its attempts; ``before`` is the ``seq`` of the last one of the previous page."""
    rows = conn.execute(
        f"SELECT {_DELIVERY} FROM webhook_deliveries d WHERE d.account_id = %s AND d.endpoint_id = %s "
        "AND (%s::text IS NULL OR d.state = %s) AND (%s::text IS NULL OR d.event_type = %s) "
        "AND (%s::bigint IS NULL OR d.seq < %s) ORDER BY d.seq DESC LIMIT %s",
        (account_id, endpoint_id, state, state, event_type, event_type, before, before, limit)).fetchall()
    return _with_attempts(conn, account_id, rows)


def get_delivery(conn, *, account_id, endpoint_id, delivery_id) -> dict | None:
    row = conn.execute(f"SELECT {_DELIVERY} FROM webhook_deliveries d WHERE d.account_id = %s AND d.endpoint_id = %s "
                       "AND d.id = %s", (account_id, endpoint_id, delivery_id)).fetchone()
    if row is None:
        return None
    return _with_attempts(conn, account_id, [row])[0]


def replay_one(conn, *, account_id, endpoint_id, delivery_id) -> dict | None:
    """A new delivery of the same event (same ``webhook-id``), behind whatever its lane already holds."""
    row = conn.execute(
        "INSERT INTO webhook_deliveries (account_id, id, endpoint_id, event_id, event_type, lane, replay_of, "
        "committed_at, next_attempt_at) "
        "SELECT d.account_id, gen_random_uuid(), d.endpoint_id, d.event_id, d.event_type, d.lane, d.id, now(), "
        "CASE WHEN w.enabled THEN now() ELSE 'infinity' END "
        "FROM webhook_deliveries d JOIN webhook_endpoints w ON w.account_id = d.account_id AND w.id = d.endpoint_id "
        "WHERE d.account_id = %s AND d.endpoint_id = %s AND d.id = %s RETURNING id",
        (account_id, endpoint_id, delivery_id)).fetchone()
    if row is None:
        return None
    return get_delivery(conn, account_id=account_id, endpoint_id=endpoint_id, delivery_id=row["id"])


def replay_since(conn, *, account_id, endpoint_id, since: datetime, until: datetime | None = None,
                 only_failed: bool = False) -> dict:
    """Deliver again, in the feed's order, every kept event of the endpoint's types from ``since`` (to
    ``until``); ``only_failed`` takes just the events whose deliveries to it ended dead. At most REPLAY_MAX a call:
    ``more`` says to call again from ``next_since``."""
    rows = conn.execute(
        "WITH picked AS ("
        "  SELECT e.id, e.type, coalesce(e.subject_id, e.id) AS lane, e.created_at, e.xid, e.seq FROM events e "
        "  JOIN webhook_endpoints w ON w.account_id = e.account_id AND w.id = %(ep)s "
        "  WHERE e.account_id = %(a)s AND e.type = ANY (w.event_types) AND e.created_at >= %(since)s "
        f"  AND {webhook_endpoints.format_filter('w', 'e.account_id', '(e.data ->> %(ch)s)', '(e.data ->> %(msg)s)')} "
        "  AND (%(until)s::timestamptz IS NULL OR e.created_at < %(until)s) "
        "  AND (NOT %(failed)s OR EXISTS (SELECT 1 FROM webhook_deliveries f WHERE f.account_id = e.account_id "
        "       AND f.endpoint_id = w.id AND f.event_id = e.id AND f.state = 'dead') "
        "       AND NOT EXISTS (SELECT 1 FROM webhook_deliveries f WHERE f.account_id = e.account_id "
        "       AND f.endpoint_id = w.id AND f.event_id = e.id AND f.state IN ('pending', 'delivering', 'delivered'))) "
        "  ORDER BY e.xid, e.seq LIMIT %(max)s + 1"
        "), made AS ("
        "  INSERT INTO webhook_deliveries (account_id, id, endpoint_id, event_id, event_type, lane, committed_at, "
        "  next_attempt_at) SELECT %(a)s, gen_random_uuid(), %(ep)s, p.id, p.type, p.lane, now(), "
        "  (SELECT CASE WHEN enabled THEN now() ELSE 'infinity' END FROM webhook_endpoints "
        "   WHERE account_id = %(a)s AND id = %(ep)s) "
        "  FROM (SELECT * FROM picked ORDER BY xid, seq LIMIT %(max)s) p ORDER BY p.xid, p.seq RETURNING 1"
        ") SELECT (SELECT count(*) FROM made) AS queued, (SELECT count(*) FROM picked) AS picked, "
        "(SELECT max(created_at) FROM (SELECT created_at FROM picked ORDER BY xid, seq LIMIT %(max)s) l) AS last_at",
        {"a": account_id, "ep": endpoint_id, "since": since, "until": until, "failed": only_failed,
         "max": REPLAY_MAX, "ch": "channel_id", "msg": "message_id"}).fetchone()
    more = rows["picked"] > REPLAY_MAX
    return {"queued": rows["queued"], "more": more, "next_since": rows["last_at"] if more else None}


def purge_older_than(conn, *, days: int, batch: int = 5000) -> int:
    """Finished deliveries (and their attempts) past the events' retention, oldest first, a batch at a time.
    Walks seq (creation order) rather than keeping an index on age that every delivery would have to update."""
    return conn.execute(
        "DELETE FROM webhook_deliveries WHERE seq IN (SELECT seq FROM webhook_deliveries "
        "WHERE state IN ('delivered', 'dead') ORDER BY seq LIMIT %s) "
        "AND created_at < now() - make_interval(days => %s)", (batch, days)).rowcount
