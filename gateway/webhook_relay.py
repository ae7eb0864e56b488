"""The relay: turns committed events into webhook deliveries, and keeps a delivery job running while any are due.

It runs as a thread of the sweeper process. Each tick reads the events after its cursor that the change feed
would show (transactions older than every running one, in (xid, seq) order), writes one delivery per enabled
endpoint subscribed to the type, and moves the cursor, all in one statement: a crash before commit leaves
the cursor where it was, so an event is fanned out exactly once and never for a transaction that rolled back.
Two sweepers are safe: the cursor row is taken with SKIP LOCKED, so one relays while the other waits.

A meta-format endpoint (WhatsApp in Meta's webhook format) takes only its types' events of WhatsApp channels:
those of its ``channel_ids`` when set (all WhatsApp channels, checked at the time), else of any channel of the
account whose kind is whatsapp - a primary-key probe, made only for a meta endpoint's candidate events. A
twilio-format endpoint (the /twilio facade's status callbacks) takes only the events of messages linked to it
in message_callbacks: a primary-key probe too, made only for a twilio endpoint's candidate events.
"""
from __future__ import annotations

import logging
import threading
import time

import redis
from rq.job import Job, JobStatus

from gateway import db, events, jobs, runtime, webhook_endpoints

log = logging.getLogger("gateway.webhooks")

TICK_S = 0.02
CHECK_DUE_S = 0.25
BATCH = 5000
DRAIN_JOB_ID = "webhooks_drain"
DRAIN_FUNC = "gateway.webhook_delivery.drain_job"
_QUEUED = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
HEARTBEAT_KEY = "gateway:webhooks:drain-alive"
HEARTBEAT_TTL_S = 5

_FAN_OUT = f"""
WITH cursor AS (SELECT xid, seq FROM webhook_relay WHERE id = 1 FOR UPDATE SKIP LOCKED),
batch AS (
    SELECT e.account_id, e.id, e.type, e.subject_id, e.created_at, e.xid, e.seq,
           CASE WHEN e.type LIKE 'message.%%' THEN e.data ->> 'channel_id' END AS channel_id,
           CASE WHEN e.type LIKE 'message.%%' THEN e.data ->> 'message_id' END AS message_id
    FROM events e, cursor c
    WHERE {events.committed_after("(c.xid, c.seq)")}
    ORDER BY e.xid, e.seq LIMIT %s
),
fan AS (
    INSERT INTO webhook_deliveries (account_id, id, endpoint_id, event_id, event_type, lane, committed_at)
    SELECT b.account_id, gen_random_uuid(), w.id, b.id, b.type, coalesce(b.subject_id, b.id), clock_timestamp()
    FROM batch b JOIN webhook_endpoints w
      ON w.account_id = b.account_id AND w.enabled AND b.type = ANY (w.event_types) AND w.created_at <= b.created_at
     AND {webhook_endpoints.format_filter("w", "b.account_id", "b.channel_id", "b.message_id")}
    ORDER BY b.xid, b.seq, w.id
    RETURNING 1
),
moved AS (
    UPDATE webhook_relay r SET xid = last.xid, seq = last.seq
    FROM (SELECT xid, seq FROM batch ORDER BY xid DESC, seq DESC LIMIT 1) last
    WHERE r.id = 1
    RETURNING 1
)
SELECT (SELECT count(*) FROM batch) AS events, (SELECT count(*) FROM fan) AS deliveries, (SELECT count(*) FROM moved)
"""


_ANY_NEW = f"""
SELECT 1 FROM events e, webhook_relay c WHERE c.id = 1 AND {events.committed_after("(c.xid, c.seq)")} LIMIT 1
"""


def relay_once(conn, batch: int = BATCH) -> tuple[int, int]:
    """Fan out the next events; returns (events read, deliveries made). Commits without waiting for the disk:
    a crash may take back the last fan-out, and then it is made again from the events (committed durably by
    the changes themselves): a delivery may repeat, never go missing."""
    if conn.execute(_ANY_NEW).fetchone() is None:   # idle ticks read only: no lock, no transaction id, no WAL
        conn.commit()
        return 0, 0
    conn.execute("SET LOCAL synchronous_commit = off")
    row = conn.execute(_FAN_OUT, (batch,)).fetchone()
    conn.commit()
    return row["events"], row["deliveries"]


def relay_all(conn) -> int:
    """Relay until caught up (tests and the CLI); returns deliveries made."""
    made = 0
    while True:
        n_events, n_deliveries = relay_once(conn)
        made += n_deliveries
        if n_events < BATCH:
            return made


def due_exists(conn) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.enabled AND EXISTS ("
                        "SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.state = 'pending' "
                        "AND d.next_attempt_at <= now())) OR EXISTS (SELECT 1 FROM webhook_deliveries "
                        "WHERE state = 'delivering' AND lease_until < now()) AS due").fetchone()["due"]


def ensure_drain() -> bool:
    """Enqueue the delivery job unless one is queued or alive; False when Redis is unreachable. A job counts
    as alive by its heartbeat, not by RQ's status: a worker killed mid-job leaves it 'started' for good."""
    conn_redis = runtime.redis_client()
    try:
        if conn_redis.exists(HEARTBEAT_KEY):
            return True
        job = Job.fetch_many([DRAIN_JOB_ID], connection=conn_redis)[0]
        if job is not None:
            if job.get_status(refresh=False) in _QUEUED:
                return True
            job.delete()
        jobs.queue("webhooks").enqueue(DRAIN_FUNC, job_id=DRAIN_JOB_ID, job_timeout=600, result_ttl=60,
                                       failure_ttl=86400)
        return True
    except redis.RedisError as exc:
        log.warning("delivery job not enqueued: Redis unavailable", extra={"error": type(exc).__name__})
        return False


def run_forever(stop: threading.Event) -> None:
    log.info("webhook relay started")
    checked_at = 0.0
    while not stop.is_set():
        try:
            with db.connection() as conn:
                n_events, made = relay_once(conn)
                now = time.monotonic()
                if made or (now - checked_at >= CHECK_DUE_S and due_exists(conn)):
                    ensure_drain()
                if now - checked_at >= CHECK_DUE_S:
                    checked_at = now
        except db.DatabaseUnavailable as exc:
            log.warning("webhook relay waiting for the database", extra={"error": type(exc).__name__})
            stop.wait(1.0)
            continue
        except Exception as exc:   # the relay must outlive one bad tick; the cursor did not move
            log.error("webhook relay tick failed", extra={"error": type(exc).__name__}, exc_info=True)
            stop.wait(1.0)
            continue
        if n_events < BATCH:
            stop.wait(TICK_S)
    log.info("webhook relay stopped")


def start_thread() -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(stop,), name="webhook-relay", daemon=True).start()
    return stop
