"""Benchmark: a 100,000-recipient campaign end to end (CSV import → feeder → send gate → send workers → sandbox)
against the sandbox's own capacity, with Redis memory and worker RSS watched throughout.

    .venv/bin/python bench/campaign.py [--quick] [--recipients N] [--workers K] [--logs DIR]

Same run, same machine: (a) a client posts Cloud API template messages straight to the sandbox provider over
16 keep-alive connections: its raw capacity; (b) a CSV of N rows (phone, name, plan, renewal date) is imported
with ``contact_import.run`` (import rows/s), then a utility campaign with the template's parameters mapped
from a contact attribute and a CSV column is started over the API, and the sweeper (whose thread is the
campaign feeder) and K send worker processes push it through the one send gate to the sandbox, with the
channel's rate limit lifted and no canary. recipients/s is N over the time from the start request to the
last send the sandbox received. Redis ``used_memory`` and each worker's RSS are sampled every 100 ms; their
peaks are reported. Status webhooks are off so (b) measures sending. Embedded PostgreSQL and Valkey in a
temporary folder. The last line is one JSON object:
{"recipients_per_s", "redis_peak_mb", "worker_rss_peak_mb", "import_rows_per_s", ...}.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _stack import free_port as _free_port, wait_http as _wait_http  # noqa: E402
from send import PHONE_NUMBER_ID, _http, _post_all, log  # noqa: E402

WABA = "WABA-bench"
TEMPLATE = {"name": "renovacion", "language": "es", "category": "UTILITY", "status": "APPROVED", "id": "90001",
            "components": [{"type": "BODY", "text": "Hola {{1}}, tu plan {{2}} se renueva el {{3}}.",
                            "example": {"body_text": [["Ana", "Plus", "1 de diciembre"]]}}]}


def _csv(n: int) -> bytes:
    lines = ["phone,name,plan,renews"]
    lines += [f"+3461{i:07d},Cliente {i},{'Plus' if i % 3 else 'Basic'},{1 + i % 28} de diciembre" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def setup(sandbox_url: str):
    from gateway import accounts, channels, db, runtime
    from templates_catalog import store
    runtime.init()
    with db.connection() as conn:
        account = accounts.create_account(conn, name="bench", actor="bench")
        _, key = accounts.create_api_key(conn, account_id=account["id"], name="bench", scopes=["admin"], actor="bench")
        ch = channels.create_channel(conn, account_id=account["id"], kind="whatsapp", name="bench",
                                     external_id=PHONE_NUMBER_ID, group_id=WABA, actor="bench",
                                     credentials={"app_secret": "s", "access_token": "t", "verify_token": "v"},
                                     settings={"api_base_url": sandbox_url, "rate_per_s": 100000, "pair_interval_s": 0})
        store.upsert_from_meta(conn, account_id=account["id"], waba_id=WABA, docs=[TEMPLATE])
    return account["id"], key, str(ch["id"])


class Peaks:
    """Samples Redis memory and the workers' RSS every 100 ms in a thread."""

    def __init__(self, redis_url: str, pids):
        import redis
        self.client = redis.Redis.from_url(redis_url)
        self.pids = pids
        self.redis_mb = self.rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.redis_mb = max(self.redis_mb, self.client.info("memory")["used_memory"] / 1048576)
            except Exception:
                pass
            for pid in self.pids():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            self.rss_mb = max(self.rss_mb, int(line.split()[1]) / 1024)
                except OSError:
                    pass
            self._stop.wait(0.1)

    def stop(self):
        self._stop.set()
        self._thread.join()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="10,000 recipients (under a minute)")
    p.add_argument("--recipients", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=2, help="send worker processes")
    p.add_argument("--logs", type=Path, metavar="DIR", help="keep each process's output in DIR")
    args = p.parse_args()
    n = 10_000 if args.quick else args.recipients

    from gateway.cli import gunicorn_args
    from gateway.crypto import Keyring
    from gateway.embedded import EmbeddedServers
    from gateway.migrate import migrate
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-campaign-"))
    servers = EmbeddedServers(tmp / "data")
    procs: list[subprocess.Popen] = []
    workers: list[subprocess.Popen] = []
    try:
        env = {**os.environ, "DATABASE_URL": servers.start_postgres("bench"), "REDIS_URL": servers.start_valkey(),
               "GATEWAY_KEYRING_FILE": str(Keyring.generate().save(tmp / "keyring.json")),
               "GATEWAY_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT), "GATEWAY_SWEEP_INTERVAL": "1"}
        env.pop("GATEWAY_MASTER_KEYS", None)
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "GATEWAY_KEYRING_FILE")})
        migrate(env["DATABASE_URL"], log=lambda m: None)

        def spawn(name: str, argv: list[str]) -> subprocess.Popen:
            out = subprocess.DEVNULL
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                out = open(args.logs / f"{name}.log", "wb")
            return subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

        sandbox_port, web_port = _free_port(), _free_port()
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        procs.append(spawn("sandbox", ["-m", "gateway.cli", "sandbox", "serve", "--port", str(sandbox_port),
                                       "--data-dir", str(tmp)]))
        _wait_http(sandbox_url + "/_sandbox/stats", procs)
        _http(sandbox_url + "/_sandbox/config", {"callbacks": False})
        account_id, key, channel_id = setup(sandbox_url)

        # (a) the sandbox's own capacity for the same kind of message
        direct = [json.dumps({"messaging_product": "whatsapp", "to": f"3461{i:07d}", "type": "template", "template": {
            "name": "renovacion", "language": {"code": "es"}, "components": [{"type": "body", "parameters": [
                {"type": "text", "text": "Ana"}, {"type": "text", "text": "Plus"}, {"type": "text", "text": "1"}]}]}}
        ).encode() for i in range(min(n, 20_000))]
        started = time.perf_counter()
        done = asyncio.run(_post_all(sandbox_port, f"/v24.0/{PHONE_NUMBER_ID}/messages", direct,
                                     "Authorization: Bearer t\r\n"))
        capacity = len(done) / (max(done) - started)
        log(f"sandbox alone: {capacity:,.0f} template messages/s")
        before = int(_http(sandbox_url + "/_sandbox/stats")["counts"].get("whatsapp:200", 0))

        # (b1) the CSV import
        from gateway import contact_import, db
        data = _csv(n)
        log(f"importing {n:,} rows…")
        started = time.perf_counter()
        with db.connection() as conn:
            summary = contact_import.run(conn, account_id=account_id, data=data, default_region="ES",
                                         filename="bench.csv", actor="bench")
        import_s = time.perf_counter() - started
        log(f"import: {summary['imported']:,} contacts in {import_s:.1f} s ({n / import_s:,.0f} rows/s)")

        # (b2) the campaign
        procs.append(spawn("api", ["-m", "gunicorn", *gunicorn_args("127.0.0.1", web_port)]))
        _wait_http(f"http://127.0.0.1:{web_port}/healthz", procs)
        auth = {"Authorization": f"Bearer {key}"}
        api = f"http://127.0.0.1:{web_port}/v1"
        campaign = _http(api + "/campaigns", {
            "name": "bench", "purpose": "utility", "channel_id": channel_id, "canary": {"size": 0},
            "message": {"template": {"name": "renovacion", "language": "es", "parameters": [
                {"contact": "name"}, {"attribute": "plan"}, {"column": "renews"}]}},
            "audience": {"import_id": str(summary["import_id"])}}, headers=auth)
        for i in range(args.workers):
            workers.append(spawn(f"worker-{i}", ["-m", "gateway.cli", "worker", "send"]))
        peaks = Peaks(env["REDIS_URL"], lambda: [w.pid for w in workers])
        started = time.perf_counter()
        _http(f"{api}/campaigns/{campaign['id']}/start", {}, headers=auth)
        procs.append(spawn("sweeper", ["-m", "gateway.cli", "sweeper"]))
        last, last_at, deadline = before, time.perf_counter(), time.monotonic() + 1800
        while True:
            got = int(_http(sandbox_url + "/_sandbox/stats")["counts"].get("whatsapp:200", 0))
            if got != last:
                last, last_at = got, time.perf_counter()
            if got - before >= n:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {got - before:,} of {n:,} sent in 30 minutes")
            if time.perf_counter() - last_at > 60:
                state = _http(f"{api}/campaigns/{campaign['id']}", headers=auth)
                raise SystemExit(f"stalled at {got - before:,} of {n:,}: {state['state']} {state['waiting']} "
                                 f"{state['counts']}")
            time.sleep(0.2)
        elapsed = last_at - started
        peaks.stop()
        rate = n / elapsed
        log(f"campaign: {n:,} recipients in {elapsed:.1f} s ({rate:,.0f}/s); Redis peak {peaks.redis_mb:.1f} MB, "
            f"worker RSS peak {peaks.rss_mb:.0f} MB")
        print(json.dumps({"recipients_per_s": round(rate), "redis_peak_mb": round(peaks.redis_mb, 1),
                          "worker_rss_peak_mb": round(peaks.rss_mb), "import_rows_per_s": round(n / import_s),
                          "recipients": n, "sandbox_capacity_per_s": round(capacity),
                          "ratio": round(rate / capacity, 2), "workers": args.workers}))
    finally:
        for proc in workers + procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 15)
                except ProcessLookupError:
                    pass
        for proc in workers + procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
        servers.stop()


if __name__ == "__main__":
    main()
