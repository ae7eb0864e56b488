"""Group commit: many request threads' rows written by one short transaction, each waiting for its own commit.

One commit per webhook request is bound by commit latency (fsync), not CPU
(see the ingest benchmark). Here request threads hand their already-encrypted
row to a writer thread of their process and wait; the writer takes everything
that queued up while the previous transaction committed and writes it in one
multi-row statement and one commit. Each request still answers only after the
commit that holds its row: synchronous commit stays on, nothing is acked early.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable

log = logging.getLogger("gateway.group_commit")


class CommitTimeout(Exception):
    """The writer did not confirm in time; the caller must not acknowledge (the provider retries)."""


class _Waiter:
    __slots__ = ("item", "done", "result", "error")

    def __init__(self, item):
        self.item = item
        self.done = threading.Event()
        self.result = None
        self.error: BaseException | None = None


class GroupCommitter:
    """``write(items) -> results`` runs in the writer thread and must commit before returning;
    ``after(items, results)`` runs there too, before the waiters are released (e.g. enqueue jobs), so an
    acknowledged item already has its job: the sweeper is for crashes, not for the normal path."""

    def __init__(self, write: Callable[[list], list], after: Callable[[list, list], None] | None = None,
                 max_batch: int = 256):
        self._write = write
        self._after = after
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Waiter] = []
        self._pid: int | None = None
        self.batches = 0
        self.items = 0

    def submit(self, item: Any, timeout: float = 10.0):
        waiter = _Waiter(item)
        with self._cond:
            if self._pid != os.getpid():   # after a fork the writer thread did not come along
                self._queue = []
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="group-commit", daemon=True).start()
            self._queue.append(waiter)
            self._cond.notify()
        if not waiter.done.wait(timeout):
            raise CommitTimeout(f"no commit within {timeout} s")
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                batch = self._queue[:self._max_batch]
                del self._queue[:self._max_batch]
            items = [w.item for w in batch]
            try:
                results = self._write(items)
            except BaseException as exc:   # every waiter learns it: none of them may acknowledge
                for w in batch:
                    w.error = exc
                    w.done.set()
                continue
            self.batches += 1
            self.items += len(batch)
            if self._after is not None:
                try:
                    self._after(items, results)
                except Exception:
                    log.warning("after-commit step failed; the sweeper will pick the work up", exc_info=True)
            for w, result in zip(batch, results):
                w.result = result
                w.done.set()
