"""Group commit: many request threads' rows written by one short transaction, each waiting for its own commit.

One commit per webhook request is bound by commit latency (fsync), not CPU
(see the ingest benchmark). Here the first request thread that finds no write
in progress becomes the leader: it takes every row queued up while the previous
write ran, writes them in one statement and one commit, and releases their
threads. If more rows queued meanwhile, it hands leadership to the oldest of
them and returns; nobody waits for a thread that is not already running.
Each request still answers only after the commit that holds its row:
synchronous commit stays on, nothing is acknowledged early.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

log = logging.getLogger("gateway.group_commit")


class CommitTimeout(Exception):
    """No commit confirmed in time; the caller must not acknowledge (the provider retries)."""


class _Waiter:
    __slots__ = ("item", "done", "result", "error", "lead")

    def __init__(self, item):
        self.item = item
        self.done = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self.lead = False


class GroupCommitter:
    """``write(items) -> results`` must commit before returning; it only ever runs in one thread at a time.
    ``after(items, results)`` (e.g. enqueue jobs) runs in a thread of its own, fed every committed batch that
    piled up since its last call, so no request waits for it; ``flush()`` waits until it has caught up.
    Anything ``after`` loses (a crash, Redis down) is the sweeper's to find."""

    def __init__(self, write: Callable[[list], list], after: Callable[[list, list], None] | None = None,
                 max_batch: int = 256, after_linger_s: float = 0.02):
        self._write = write
        self._after = after
        self._after_linger_s = after_linger_s
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._leading = False
        self._pid: int | None = None
        self._after_cond = threading.Condition()
        self._after_queue: list[tuple[list, list]] = []
        self._after_busy = False
        self.batches = 0
        self.items = 0

    def submit(self, item: Any, timeout: float = 10.0):
        waiter = _Waiter(item)
        with self._lock:
            if self._pid != os.getpid():   # after a fork: no leader, no after-thread came along
                self._queue, self._leading, self._after_queue = [], False, []
                self._pid = os.getpid()
                if self._after is not None:
                    threading.Thread(target=self._run_after, name="group-commit-after", daemon=True).start()
            self._queue.append(waiter)
            lead = not self._leading
            self._leading = True
        deadline = time.monotonic() + timeout
        while not lead:
            if not waiter.done.wait(max(0.0, deadline - time.monotonic())):
                raise CommitTimeout(f"no commit within {timeout} s")
            if not waiter.lead:
                break
            waiter.lead, waiter.done = False, threading.Event()
            lead = True
        if lead:
            self._lead(waiter)
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def _lead(self, own: _Waiter) -> None:
        """Write batches until our own row is committed, then pass leadership on (or give it up)."""
        while True:
            with self._lock:
                batch = self._queue[:self._max_batch]
                del self._queue[:self._max_batch]
            if batch:
                self._write_batch(batch)
            with self._lock:
                if not self._queue:
                    self._leading = False
                    return
                if own.done.is_set():
                    successor = self._queue.pop(0)
                    successor.lead = True
                    successor.done.set()    # it wakes as the leader, its row still to write
                    self._queue.insert(0, _Placeholder(successor))
                    return

    def _write_batch(self, batch: list) -> None:
        waiters = [w.waiter if isinstance(w, _Placeholder) else w for w in batch]
        items = [w.item for w in waiters]
        try:
            results = self._write(items)
        except BaseException as exc:   # every waiter learns it: none of them may acknowledge
            for w in waiters:
                w.error = exc
                w.done.set()
            return
        self.batches += 1
        self.items += len(waiters)
        if self._after is not None:
            with self._after_cond:
                self._after_queue.append((items, results))
                self._after_cond.notify_all()
        for w, result in zip(waiters, results):
            w.result = result
            w.done.set()

    def _run_after(self) -> None:
        while True:
            with self._after_cond:
                while not self._after_queue:
                    self._after_cond.wait()
            # Linger briefly so one call covers many batches: enqueueing a job costs far more than a row.
            time.sleep(self._after_linger_s)
            with self._after_cond:
                pending, self._after_queue = self._after_queue, []
                self._after_busy = True
            items = [i for batch_items, _ in pending for i in batch_items]
            results = [r for _, batch_results in pending for r in batch_results]
            try:
                self._after(items, results)
            except Exception:
                log.warning("after-commit step failed; the sweeper will pick the work up", exc_info=True)
            with self._after_cond:
                self._after_busy = False
                self._after_cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every committed batch has been through ``after``; False on timeout."""
        with self._after_cond:
            return self._after_cond.wait_for(lambda: not self._after_queue and not self._after_busy, timeout)


class _Placeholder:
    """The successor's row stays first in line while it wakes up to lead."""
    __slots__ = ("waiter",)

    def __init__(self, waiter: _Waiter):
        self.waiter = waiter
