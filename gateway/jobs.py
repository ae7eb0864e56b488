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

QUEUES = ("inbound", "send", "default", "webhooks")
# A worker started without queue names takes these. Event webhooks have a worker of their own: the delivery
# job runs for as long as deliveries keep coming, and customers' messages must never wait behind it.
DEFAULT_QUEUES = ("inbound", "send", "default")
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


class Coalescer:
    """Hands ids to Redis in batches from a background thread: one job per account for everything that
    arrived within ``linger_s``. Enqueueing an RQ job costs far more than the row it points at, and the
    caller (a request) must not wait for it. Lost on a crash? The row is pending in PostgreSQL: the
    sweeper enqueues it."""

    def __init__(self, queue_name: str, func: str, kind: str, linger_s: float = 0.01, batch: int = 200):
        import threading
        self.queue_name, self.func, self.kind, self.linger_s, self.batch = queue_name, func, kind, linger_s, batch
        self._cond = threading.Condition()
        self._pending: dict = {}
        self._busy = False
        self._pid = None

    def add(self, account_id, row_id) -> None:
        import os
        import threading
        with self._cond:
            if self._pid != os.getpid():
                self._pending, self._busy, self._pid = {}, False, os.getpid()
                threading.Thread(target=self._run, name=f"enqueue-{self.kind}", daemon=True).start()
            self._pending.setdefault(str(account_id), []).append(str(row_id))
            self._cond.notify_all()

    def _run(self) -> None:
        import time
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
            time.sleep(self.linger_s)
            with self._cond:
                pending, self._pending, self._busy = self._pending, {}, True
            for account_id, ids in pending.items():
                for start in range(0, len(ids), self.batch):
                    enqueue_many(self.queue_name, self.func, account_id, ids[start:start + self.batch], kind=self.kind)
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)
