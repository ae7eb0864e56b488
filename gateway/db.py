"""PostgreSQL access: one connection pool per process, and the ids we mint.

Domain modules own their SQL and take ``conn`` and ``account_id`` as keyword
arguments; this module only hands out connections. A pool is created lazily
in each process (gunicorn and RQ fork), never shared across a fork.
"""
from __future__ import annotations

import os
import secrets
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached; callers answer 503 and retry later."""


_pool: ConnectionPool | None = None
_pool_pid: int | None = None
_pool_url: str | None = None
_lock = threading.Lock()


_uuid7_last = [0, 0]          # (milliseconds, rand_a) of the last id made in this process
_uuid7_lock = threading.Lock()


def uuid7() -> uuid.UUID:
    """Time-ordered UUID (RFC 9562 v7): new rows land at the right edge of indexes. Within one process the
    ids only grow (rand_a counts up within a millisecond, RFC 9562 method 3), so rows made in one
    transaction, which share created_at, still sort in the order they were made (two automated replies)."""
    ms = time.time_ns() // 1_000_000
    with _uuid7_lock:
        last_ms, last_seq = _uuid7_last
        if ms <= last_ms:
            ms, seq = last_ms, last_seq + 1
            if seq > 0xFFF:
                ms, seq = ms + 1, 0
        else:
            seq = secrets.randbits(10)   # random start, with room left to count up
        _uuid7_last[0], _uuid7_last[1] = ms, seq
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= seq << 64                   # 12 bits rand_a
    value |= 0b10 << 62                  # variant
    value |= secrets.randbits(62)        # 62 bits rand_b
    return uuid.UUID(int=value)


# A connection handed back moments ago is trusted without a round trip (on this kind of machine one costs
# as much as the rest of a hot request); an idle one is checked first. A connection cut in between (a
# restart, a failover) fails its first statement: ``connection`` then purges the pool's other stale
# connections at once, and the API retries a request whose first statement met one.
_TRUST_RECENT_S = 1.0


def _mark_returned(conn: psycopg.Connection) -> None:
    conn._gateway_returned_at = time.monotonic()


def _check_if_idle(conn: psycopg.Connection) -> None:
    if time.monotonic() - getattr(conn, "_gateway_returned_at", 0.0) <= _TRUST_RECENT_S:
        return
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        # The pool backs off (about a second, doubling) after each connection that fails its check: with
        # every idle connection cut, that outlasts the checkout timeout. Replace them all at once instead.
        _purge_stale()
        raise


class StaleConnection(Exception):
    """The pooled connection was cut before this use; nothing was done on it. Retry on another."""


def configure(database_url: str, max_size: int = 8) -> None:
    """Point this process at a database; the pool opens on first use."""
    global _pool, _pool_pid, _pool_url
    with _lock:
        if _pool is not None and _pool_pid == os.getpid() and _pool_url == database_url:
            return
        if _pool is not None and _pool_pid == os.getpid():
            _pool.close()
        _pool = ConnectionPool(
            database_url,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=5.0,
            check=_check_if_idle,
            reset=_mark_returned,
            kwargs={"autocommit": False, "row_factory": dict_row, "connect_timeout": 3},
            name="gateway",
        )
        _pool_pid = os.getpid()
        _pool_url = database_url


def pool() -> ConnectionPool:
    if _pool is None or _pool_pid != os.getpid():
        url = _pool_url or os.environ.get("DATABASE_URL")
        if not url:
            raise RuntimeError("database not configured: call gateway.db.configure() first")
        configure(url)
    assert _pool is not None
    if _pool.closed:
        _pool.open(wait=False)
    return _pool


@contextmanager
def connection(timeout: float | None = None) -> Iterator[psycopg.Connection]:
    """A pooled connection inside one transaction: committed on success, rolled back on error."""
    try:
        with pool().connection(timeout=timeout) as conn:
            try:
                yield conn
            except (psycopg.OperationalError, StaleConnection):
                if conn.broken:
                    _purge_stale()
                raise
    except PoolTimeout as exc:
        raise DatabaseUnavailable("no database connection available") from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable("database connection failed") from exc


def _purge_stale() -> None:
    """One cut connection means the others were probably cut too: check every idle one now."""
    try:
        pool().check()
    except Exception:   # the server may still be down; the next checkout will tell
        pass


def dedicated() -> psycopg.Connection:
    """A connection of its own, outside the pool, for one long-lived thread (the group committer)."""
    url = _pool_url or os.environ.get("DATABASE_URL")
    try:
        return psycopg.connect(url, autocommit=False, row_factory=dict_row, connect_timeout=3)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable("database connection failed") from exc


def close() -> None:
    global _pool
    with _lock:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.close()
        _pool = None


def ping(timeout: float = 2.0) -> bool:
    try:
        with connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")
        return True
    except DatabaseUnavailable:
        return False
