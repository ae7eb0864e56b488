"""Benchmark: webhook ingest under gunicorn against a bare signature-checking endpoint, and the backlog drain.

    .venv/bin/python bench/ingest.py [--quick] [--rounds N] [--seconds S] [--workers K]

Same run, same machine, same gunicorn settings (2 workers x 16 threads, as
`gateway web` runs): (a) ``bench/bare_receiver.py`` only verifies
X-Hub-Signature-256 and parses the JSON; (b) the real receiver routes, verifies,
encrypts and durably stores every event (synchronous commit on) before its 200.
``bench/_load.py`` posts signed, unique ~1.5 KB WhatsApp webhooks over 16
keep-alive connections from its own process. Rounds alternate a/b to share
the machine's noise. Then K RQ workers (SimpleWorker processes) drain the
backlog the receiver stored: normalisation into contacts, threads and
messages. Embedded PostgreSQL and Valkey in a temporary folder, nothing else.
The last line is one JSON object:
{"bare_rps", "receiver_rps", "ratio", "p50_ms", "p99_ms", "drain_eps", ...}.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SECRET = "bench-app-secret"
PHONE_NUMBER_ID = "106540352242922"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Gunicorn:
    def __init__(self, app: str, env: dict, workers: int = 2):
        from gateway.cli import gunicorn_args
        self.port = _free_port()
        args = gunicorn_args("127.0.0.1", self.port, workers)
        args[0] = app
        self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", *args], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/nothing-here", timeout=1)
            except urllib.error.HTTPError:
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"gunicorn for {app} did not start")
                time.sleep(0.1)
            else:
                return

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


def load(port: int, seconds: float, warmup: float) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "_load.py"), "--port", str(port), "--seconds",
                          str(seconds), "--warmup", str(warmup), "--secret", SECRET, "--phone-number-id",
                          PHONE_NUMBER_ID], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def setup(env: dict) -> None:
    from gateway import accounts, channels, db, runtime
    from gateway.migrate import migrate
    migrate(env["DATABASE_URL"], log=lambda m: None)
    runtime.init()
    with db.connection() as conn:
        account = accounts.create_account(conn, name="bench", actor="bench")
        channels.create_channel(conn, account_id=account["id"], kind="whatsapp", name="bench",
                                external_id=PHONE_NUMBER_ID, actor="bench",
                                credentials={"app_secret": SECRET, "access_token": "x", "verify_token": "y"})


def pending() -> int:
    from gateway import db
    with db.connection() as conn:
        return conn.execute("SELECT count(*) AS n FROM inbound_events WHERE processed_at IS NULL").fetchone()["n"]


def drain(env: dict, workers: int) -> dict:
    backlog = pending()
    log(f"draining {backlog} stored events with {workers} worker process(es)")
    procs = [subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker", "inbound", "--burst"], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    first = last = None
    start_count = backlog
    try:
        while True:
            left = pending()
            now = time.monotonic()
            if first is None and left < backlog:
                first, start_count = now, left   # workers are up: time from the first progress
            if left == 0:
                last = now
                break
            if all(p.poll() is not None for p in procs):
                raise SystemExit(f"workers exited with {left} events still pending")
            time.sleep(0.05)
    finally:
        for p in procs:
            p.wait(timeout=120)
    elapsed = max(1e-6, last - (first or last))
    return {"backlog": backlog, "drain_eps": round(start_count / elapsed, 1) if first else None,
            "drain_s": round(elapsed, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one short round each (under a minute)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--workers", type=int, default=2, help="worker processes for the drain")
    p.add_argument("--web-workers", type=int, default=2, help="gunicorn processes for both servers")
    args = p.parse_args()
    rounds, seconds, warmup = (1, 5.0, 1.0) if args.quick else (args.rounds, args.seconds, 2.0)

    from gateway.crypto import Keyring
    from gateway.embedded import EmbeddedServers
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    servers = EmbeddedServers(tmp / "data")
    try:
        env = {**os.environ, "DATABASE_URL": servers.start_postgres("bench"), "REDIS_URL": servers.start_valkey(),
               "GATEWAY_KEYRING_FILE": str(Keyring.generate().save(tmp / "keyring.json")),
               "GATEWAY_LOG_LEVEL": "WARNING", "BENCH_APP_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
        env.pop("GATEWAY_MASTER_KEYS", None)
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "GATEWAY_KEYRING_FILE")})
        setup(env)
        bare_runs, recv_runs = [], []
        for n in range(rounds):
            for name, app, runs in (("bare", "bench.bare_receiver:app", bare_runs),
                                    ("receiver", "gateway.wsgi:app", recv_runs)):
                server = Gunicorn(app, env, args.web_workers)
                try:
                    result = load(server.port, seconds, warmup)
                finally:
                    server.stop()
                bad = {k: v for k, v in result["statuses"].items() if k != "200"}
                if bad:
                    raise SystemExit(f"{name}: non-200 answers {bad}")
                runs.append(result)
                log(f"round {n + 1}/{rounds} {name:8}: {result['rps']:8.1f} req/s  "
                    f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms")
        drained = drain(env, args.workers)
        log(f"drain: {drained}")
        bare_rps = statistics.median(r["rps"] for r in bare_runs)
        recv_rps = statistics.median(r["rps"] for r in recv_runs)
        print(json.dumps({
            "bare_rps": bare_rps, "receiver_rps": recv_rps, "ratio": round(recv_rps / bare_rps, 3),
            "p50_ms": statistics.median(r["p50_ms"] for r in recv_runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in recv_runs),
            "drain_eps": drained["drain_eps"],
            "bare_p99_ms": statistics.median(r["p99_ms"] for r in bare_runs),
            "backlog": drained["backlog"], "rounds": rounds, "seconds": seconds, "connections": 16,
            "drain_workers": args.workers,
        }))
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
