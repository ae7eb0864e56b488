"""RQ queues and enqueueing. Jobs carry ids only (DESIGN invariant 8).

Enqueue only after the row the job points at is committed: a job that runs
before its row is visible would find nothing. If Redis is down at that moment
nothing is lost: the row is pending in PostgreSQL and the sweeper enqueues it.
"""
from __future__ import annotations

import logging

import redis
from rq import Queue

from gateway import runtime

QUEUES = ("inbound", "send", "default")
log = logging.getLogger("gateway.jobs")


def queue(name: str) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=runtime.redis_client())


def job_id(kind: str, account_id, row_id) -> str:
    """Deterministic job ids let the sweeper ask Redis whether a row's job exists."""
    return f"{kind}_{account_id}_{row_id}"


def enqueue(queue_name: str, func: str, account_id, row_id, *, kind: str) -> bool:
    """Enqueue func(account_id, row_id); False (logged) when Redis is unreachable."""
    try:
        enqueue_on(queue(queue_name), func, account_id, row_id, job_id(kind, account_id, row_id))
        return True
    except redis.RedisError as exc:
        log.warning("enqueue deferred to the sweeper", extra={"queue": queue_name, "kind": kind,
                                                              "error": type(exc).__name__})
        return False


def enqueue_on(q: Queue, func: str, account_id, row_id, jid: str) -> None:
    """The one place job arguments and retention are decided (ids only; results kept briefly)."""
    q.enqueue(func, str(account_id), str(row_id), job_id=jid, result_ttl=300, failure_ttl=86400)


def enqueue_many(queue_name: str, func: str, account_id, row_ids: list[str], *, kind: str) -> bool:
    """Enqueue func(account_id, row_ids) as one job named after its first row; False when Redis is down."""
    if not row_ids:
        return True
    try:
        queue(queue_name).enqueue(func, str(account_id), [str(r) for r in row_ids],
                                  job_id=job_id(kind, account_id, row_ids[0]), result_ttl=300, failure_ttl=86400)
        return True
    except redis.RedisError as exc:
        log.warning("enqueue deferred to the sweeper", extra={"queue": queue_name, "kind": kind,
                                                              "error": type(exc).__name__})
        return False
