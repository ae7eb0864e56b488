"""The folder where every process writes its metrics in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``).

Apart from gateway/metrics.py on purpose: importing that module makes the
metrics, and so their files, which must not happen before the folder exists,
nor in the gunicorn master, which serves nothing. This module is also
gunicorn's config (``--config python:gateway.multiproc``) for its hook.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_dir(path: str | os.PathLike, *, wipe: bool) -> Path:
    """Make the folder. ``wipe`` empties it (``gateway up``, before any process of its own runs); otherwise
    only the files of processes no longer alive go, so processes started side by side (a Procfile's) never
    delete each other's live files. A dead process's counters vanish with its file: the sum drops, which
    Prometheus reads as the counter reset a restart is."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.glob("*.db"):
        pid = f.stem.rsplit("_", 1)[-1]
        if wipe or (pid.isdigit() and not _alive(int(pid))):
            f.unlink(missing_ok=True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauges (sends in flight, …) from the sum; its counters stay until the
    next start, as counters should."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess
        try:
            multiprocess.mark_process_dead(pid)
        except OSError:
            pass


def child_exit(server, worker):
    """gunicorn's hook, run in the master when a worker process ends."""
    mark_process_dead(worker.pid)
