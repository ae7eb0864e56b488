"""Helper for benches (not a bench): embedded PostgreSQL and Valkey, migrated, a fresh keyring, and the
project's sandbox provider serving on a free port, for the length of a ``with`` block; the block spawns the
gateway's processes with ``stack.spawn`` and every process is stopped, the servers too, afterwards."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, procs) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"{url} did not come up")
            time.sleep(0.1)


@dataclass
class Stack:
    tmp: Path
    env: dict
    logs: Path | None
    sandbox_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    procs: list = field(default_factory=list)

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        """A ``python argv…`` process in the gateway's environment; its output kept in ``logs`` when given."""
        out = subprocess.DEVNULL
        if self.logs:
            self.logs.mkdir(parents=True, exist_ok=True)
            out = open(self.logs / f"{name}.log", "wb")
        proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=self.env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc


@contextlib.contextmanager
def sandbox_stack(prefix: str, logs: Path | None = None):
    from gateway.crypto import Keyring
    from gateway.embedded import EmbeddedServers
    from gateway.migrate import migrate
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    servers = EmbeddedServers(tmp / "data")
    stack = None
    try:
        env = {**os.environ, "DATABASE_URL": servers.start_postgres("bench"), "REDIS_URL": servers.start_valkey(),
               "GATEWAY_KEYRING_FILE": str(Keyring.generate().save(tmp / "keyring.json")),
               "GATEWAY_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
        env.pop("GATEWAY_MASTER_KEYS", None)
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "GATEWAY_KEYRING_FILE")})
        migrate(env["DATABASE_URL"], log=lambda m: None)
        stack = Stack(tmp, env, logs)
        stack.spawn("sandbox", ["-m", "gateway.cli", "sandbox", "serve", "--port", str(stack.sandbox_port),
                                "--data-dir", str(tmp)])
        wait_http(stack.sandbox_url + "/_sandbox/stats", stack.procs)
        yield stack
    finally:
        for proc in stack.procs if stack else []:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in stack.procs if stack else []:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        servers.stop()
