"""The sweeper: re-enqueue work PostgreSQL says is pending but Redis does not hold; it also runs the
campaign feeder (gateway/campaigns/feeder.py) and the event webhook relay (gateway/webhook_relay.py) on threads
of their own.

Redis may be flushed or restarted without persistence at any time (DESIGN
invariant 2). Each kind of pending work registers a Sweep: a query for rows
still owed a job, and the job to run for them. Jobs have deterministic ids, so
one EXISTS per row tells whether Redis still holds the pointer.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass

import redis
from rq.job import Job, JobStatus

from gateway import db, events, inbound, jobs, media, metrics, retention, runtime, thread_status, uploads, webhook_log

log = logging.getLogger("gateway.sweeper")
MAX_ATTEMPTS = 10
# Retention: checked this often once nothing is due; while a backlog lasts each pass takes a short slice of
# it, so the sweeper's own work (re-enqueueing) is never held up for long and workers stay free for traffic.
try:
    RETENTION_INTERVAL_S = float(os.environ.get("GATEWAY_RETENTION_INTERVAL_S") or 3600)
except ValueError:
    raise SystemExit("GATEWAY_RETENTION_INTERVAL_S must be a number of seconds, e.g. 3600") from None
RETENTION_SLICE_S = 2.0
# The change feed (GET /v1/events) keeps events this long; an integrator pulling less often than this misses some.
try:
    EVENTS_RETENTION_DAYS = int(os.environ.get("GATEWAY_EVENTS_RETENTION_DAYS") or 30)
except ValueError:
    raise SystemExit("GATEWAY_EVENTS_RETENTION_DAYS must be a whole number of days, e.g. 30") from None


@dataclass(frozen=True)
class Sweep:
    kind: str          # job id prefix
    queue: str
    func: str
    pending_sql: str   # params: grace seconds, max attempts, batch size; returns account_id, id
    batch: int = 1     # >1: one job takes a list of up to this many ids of one account
    min_age_env: str | None = None   # a variable holding a longer wait than the grace (seconds)


SWEEPS: list[Sweep] = [
    Sweep(kind="inbound", queue="inbound", func=inbound.PROCESS_BATCH_JOB, batch=inbound.MAX_JOB_BATCH,
          pending_sql="SELECT account_id, id FROM inbound_events "
                      "WHERE processed_at IS NULL AND received_at < now() - make_interval(secs => %s) "
                      "AND attempts < %s ORDER BY received_at LIMIT %s"),
    Sweep(kind="send", queue="send", func="gateway.send_worker.send_batch", batch=200,
          pending_sql="SELECT account_id, id FROM messages WHERE status IN ('queued', 'retry_scheduled') "
                      "AND coalesce(next_attempt_at, created_at) < now() - make_interval(secs => %s) "
                      "AND attempts < %s ORDER BY coalesce(next_attempt_at, created_at) LIMIT %s"),
    # A send whose outcome is unknown (crash mid-call, timeout after writing) waits for a status webhook
    # that proves it went out before the reconcile job may schedule it again.
    Sweep(kind="reconcile", queue="send", func="gateway.send_worker.reconcile", min_age_env="GATEWAY_SEND_RECONCILE_S",
          pending_sql="SELECT account_id, id FROM messages WHERE status = 'sending' "
                      "AND send_started_at < now() - make_interval(secs => %s) AND attempts < %s + 100 "
                      "ORDER BY send_started_at LIMIT %s"),
    Sweep(kind="media", queue="default", func=media.DOWNLOAD_JOB,
          pending_sql="SELECT account_id, id FROM media "
                      "WHERE state = 'pending' AND next_attempt_at < now() - make_interval(secs => %s) "
                      "AND attempts < %s ORDER BY next_attempt_at LIMIT %s"),
]

_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def sweep_once(grace_s: float = 10.0, batch: int = 1000) -> dict[str, int]:
    """One pass over every Sweep; returns how many jobs each re-enqueued."""
    conn_redis = runtime.redis_client()
    counts: dict[str, int] = {}
    for sweep in SWEEPS:
        wait = grace_s
        if sweep.min_age_env:
            wait = max(grace_s, float(os.environ.get(sweep.min_age_env, "120")))
        with db.connection() as conn:
            rows = conn.execute(sweep.pending_sql, (wait, MAX_ATTEMPTS, batch)).fetchall()
        if not rows:
            counts[sweep.kind] = 0
            continue
        units = _units(rows, sweep.batch)
        ids = [jobs.job_id(sweep.kind, account_id, chunk[0]) for account_id, chunk in units]
        existing = Job.fetch_many(ids, connection=conn_redis)
        q = jobs.queue(sweep.queue)
        n = 0
        for (account_id, chunk), jid, job in zip(units, ids, existing):
            if job is not None:
                if job.get_status(refresh=False) in _LIVE:
                    continue
                job.delete()  # finished or failed, yet the row is still pending: run it again
            if sweep.batch > 1:
                q.enqueue(sweep.func, str(account_id), [str(c) for c in chunk], job_id=jid, result_ttl=300,
                          failure_ttl=86400)
            else:
                jobs.enqueue_on(q, sweep.func, account_id, chunk[0], jid)
            n += len(chunk)
        counts[sweep.kind] = n
        if n:
            log.info("re-enqueued pending work", extra={"kind": sweep.kind, "count": n})
            metrics.SWEEPER_REENQUEUED.labels(sweep.kind).inc(n)
    # Uploads past their 30 days are deleted here: nothing may send them any more.
    with db.connection() as conn:
        counts["expired_uploads"] = uploads.purge_expired(conn, batch_size=batch)
    with db.connection() as conn:
        counts["woken_threads"] = thread_status.wake_snoozed(conn, limit=batch)
    with db.connection() as conn:
        counts["expired_events"] = events.purge_older_than(conn, days=EVENTS_RETENTION_DAYS, batch=batch)
    with db.connection() as conn:
        counts["expired_deliveries"] = webhook_log.purge_older_than(conn, days=EVENTS_RETENTION_DAYS, batch=batch)
    return counts


def _units(rows, batch: int) -> list[tuple[object, list]]:
    """Rows grouped per account into jobs of at most ``batch`` ids (one id each when batch is 1)."""
    by_account: dict = {}
    for r in rows:
        by_account.setdefault(r["account_id"], []).append(r["id"])
    return [(account_id, ids[i:i + batch]) for account_id, ids in by_account.items()
            for i in range(0, len(ids), batch)]


def run_forever(interval_s: float) -> None:
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("sweeper started", extra={"interval_s": interval_s})
    # Campaigns are fed from here too: a steady clock beside the re-enqueueing, with no job of its own to lose.
    from gateway.campaigns import feeder
    feeder_stop = feeder.start_thread()
    from gateway import webhook_relay
    relay_stop = webhook_relay.start_thread()
    retention_at = time.monotonic()
    while not stopping:
        try:
            sweep_once(grace_s=max(10.0, 2 * interval_s))
        except (db.DatabaseUnavailable, redis.RedisError) as exc:
            log.warning("sweep skipped: backend unavailable", extra={"error": type(exc).__name__})
        if time.monotonic() >= retention_at:
            try:
                caught_up = retention.sweep_slice(RETENTION_SLICE_S)
                retention_at = time.monotonic() + (RETENTION_INTERVAL_S if caught_up else 0)
            except db.DatabaseUnavailable as exc:
                log.warning("retention skipped: database unavailable", extra={"error": type(exc).__name__})
            except Exception as exc:   # retention must never take the sweeper's re-enqueueing down with it
                log.error("retention failed; retried after the interval", extra={"error": type(exc).__name__},
                          exc_info=True)
                retention_at = time.monotonic() + RETENTION_INTERVAL_S
        deadline = time.monotonic() + interval_s
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, interval_s))
    feeder_stop.set()
    relay_stop.set()
    log.info("sweeper stopped")
