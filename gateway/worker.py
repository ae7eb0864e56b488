"""The RQ worker entry point.

Heavy modules are imported before any job runs: a forking worker that imports
psycopg, cryptography and requests inside each child drains jobs at single-digit
rates on this class of machine (see shared/perf-baselines.md). The default is
RQ's SimpleWorker, which runs jobs in-process and keeps the connection pool warm;
``--fork`` isolates each job in a child process instead.
"""
from __future__ import annotations

import logging

from rq import SimpleWorker, Worker

import gateway.inbound  # noqa: F401 - preload job modules and their dependencies
import gateway.media  # noqa: F401
import gateway.send_worker  # noqa: F401
import gateway.webhook_delivery  # noqa: F401
import webhooks.registry  # noqa: F401 - providers parse in the worker
from gateway import jobs, runtime

log = logging.getLogger("gateway.worker")


def run(queues: list[str] | None = None, *, burst: bool = False, fork: bool = False) -> bool:
    names = queues or list(jobs.DEFAULT_QUEUES)
    conn = runtime.redis_client()
    worker_class = Worker if fork else SimpleWorker
    worker = worker_class([jobs.queue(n) for n in names], connection=conn)
    log.info("worker started", extra={"queues": names, "class": worker_class.__name__})
    return worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
