"""Benchmark: event webhooks delivered per second to a local receiver, and the delay from commit to delivery.

    .venv/bin/python bench/events.py [--quick] [--rate R] [--seconds S] [--threads T] [--per-tx K]

Same run, same machine, same receiver (an asyncio HTTP/1.1 server in its own process that answers 204 and notes
when each ``webhook-id`` arrived): (a) the reference: one process posting signed bodies of the same size to the
receiver over 16 kept-alive connections (http.client in threads), as fast as it can - what a Python client and
this receiver manage here; (b) the gateway: a producer commits events at R a second (default 2,500; K events a
transaction, default 5, spread over T threads, default 1,000) for S seconds, while the real sweeper (its relay
thread fans them out) and a real ``gateway worker webhooks`` (the RQ delivery job) post them to one endpoint.
events/s is the number delivered over the time from the first commit to the last arrival; the delay is each
event's arrival minus its transaction's commit. Embedded PostgreSQL and Valkey in a temporary folder.
The last line is one JSON object: {"events_per_s", "delivery_p99_ms", "delivery_p50_ms", "reference_posts_per_s",
"ratio", ...}.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the receiver (its own process) ---------------------------------------------------------------------------

def serve_receiver(port_file: str, out_file: str) -> None:
    arrivals: list = []

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, msg_id = 0, b""
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"webhook-id":
                        msg_id = value.strip()
                if length:
                    await reader.readexactly(length)
                arrivals.append((msg_id.decode(), time.time()))
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()
        Path(out_file).write_text(json.dumps(arrivals))

    asyncio.run(main())


class ReceiverProcess:
    def __init__(self, tmp: Path, name: str):
        self.port_file, self.out_file = tmp / f"{name}.port", tmp / f"{name}.json"
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-receiver", str(self.port_file),
                                      str(self.out_file)])
        deadline = time.monotonic() + 20
        while not self.port_file.exists() or not self.port_file.read_text():
            if time.monotonic() > deadline:
                raise SystemExit("the receiver did not start")
            time.sleep(0.02)
        self.port = int(self.port_file.read_text())

    def stop(self) -> list:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)
        return json.loads(self.out_file.read_text())


# -- (a) the reference ----------------------------------------------------------------------------------------

def reference(port: int, n: int, body_size: int) -> float:
    """Posts/s of signed bodies to the receiver from one process, 16 threads, kept-alive connections."""
    import http.client
    from gateway.webhook_delivery import sign
    body = b'{"x":"' + b"a" * max(0, body_size - 8) + b'"}'
    secret = [os.urandom(32)]
    per = n // 16

    def run():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(per):
            msg_id = str(uuid.uuid4())
            stamp = int(time.time())
            conn.request("POST", "/hooks", body=body, headers={
                "Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(stamp),
                "webhook-signature": sign(secret, msg_id, stamp, body)})
            conn.getresponse().read()
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(16)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per * 16 / (time.perf_counter() - started)


# -- (b) the gateway ------------------------------------------------------------------------------------------

def produce(account_id, rate: float, seconds: float, n_threads: int, per_tx: int, commits: dict,
            producers: int = 4) -> int:
    """Commit events at ``rate`` a second for ``seconds`` from ``producers`` connections (changes come from many
    requests and workers at once), noting each one's commit time."""
    from gateway import db, events
    threads = [uuid.uuid4() for _ in range(n_threads)]
    counts = [0] * producers
    started = time.monotonic()

    def run(k: int) -> None:
        share = rate / producers
        with db.connection() as conn:
            while time.monotonic() - started < seconds:
                due = int((time.monotonic() - started) * share)
                while counts[k] < due:
                    ids = []
                    for _ in range(per_tx):
                        t = random.choice(threads)
                        ids.append(str(events.emit(conn, account_id, "thread.status_changed",
                                                   {"thread_id": str(t), "actor": "bench", "from": "open",
                                                    "to": "pending"}, subject_id=t)))
                    conn.commit()
                    at = time.time()
                    for i in ids:
                        commits[i] = at
                    counts[k] += per_tx
                time.sleep(0.002)

    workers = [threading.Thread(target=run, args=(k,)) for k in range(producers)]
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        time.sleep(5 if time.monotonic() - started + 5 < seconds else 0.2)
        log(f"  produced {sum(counts):,} events")
    return sum(counts)


def _cpu_s(pids) -> float:
    """User + system CPU seconds of these processes so far (from /proc; 0 for any already gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def _postgres_pids() -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if b"postgres" in (d / "cmdline").read_bytes()[:200]:
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def _spawn(args: list[str], env: dict, logs: Path, name: str) -> subprocess.Popen:
    out = open(logs / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", *args], env=env, stdout=out, stderr=out,
                            start_new_session=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10 s of load instead of 30 (same keys)")
    ap.add_argument("--rate", type=float, default=2500)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--threads", type=int, default=1000)
    ap.add_argument("--per-tx", type=int, default=5)
    ap.add_argument("--serve-receiver", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_receiver:
        serve_receiver(*args.serve_receiver)
        return
    seconds = args.seconds or (10 if args.quick else 30)

    from bench._embedded import embedded_gateway
    with embedded_gateway("gw-bench-events-") as tmp:
        from gateway import accounts, db, webhook_endpoints
        os.environ["GATEWAY_WEBHOOK_ALLOW_HTTP"] = "1"
        with db.connection() as conn:
            account = accounts.create_account(conn, name="bench", actor="bench")
            conn.commit()

        log("(a) reference: signed posts from one process straight to the receiver")
        ref_rx = ReceiverProcess(tmp, "reference")
        ref = reference(ref_rx.port, 8000 if args.quick else 24000, 330)
        ref_rx.stop()
        log(f"    {ref:,.0f} posts/s")

        rx = ReceiverProcess(tmp, "gateway")
        with db.connection() as conn:
            webhook_endpoints.create(conn, account_id=account["id"], url=f"http://127.0.0.1:{rx.port}/hooks",
                                     names=["thread.status_changed"], scopes=["admin"], actor="bench")
            conn.commit()
        env = {**os.environ, "GATEWAY_LOG_LEVEL": "WARNING"}
        procs = [_spawn(["sweeper"], env, tmp, "sweeper"), _spawn(["worker", "webhooks"], env, tmp, "worker")]
        try:
            time.sleep(1.5)
            log(f"(b) gateway: {args.rate:,.0f} events/s for {seconds:g} s, {args.per_tx} a transaction, "
                f"over {args.threads:,} threads")
            commits: dict = {}
            groups = {"worker": [procs[1].pid], "sweeper": [procs[0].pid], "receiver": [rx.proc.pid],
                      "postgres": _postgres_pids()}
            cpu_before = {k: _cpu_s(v) for k, v in groups.items()}
            self_before = time.process_time()
            first = time.time()
            produced = produce(account["id"], args.rate, seconds, args.threads, args.per_tx, commits)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with db.connection() as conn:
                    left = conn.execute("SELECT count(*) AS n FROM webhook_deliveries WHERE state <> 'delivered'"
                                        ).fetchone()["n"]
                    made = conn.execute("SELECT count(*) AS n FROM webhook_deliveries").fetchone()["n"]
                if made >= produced and left == 0:
                    break
                time.sleep(0.2)
            groups["postgres"] = _postgres_pids()
            cpu = {k: _cpu_s(v) - cpu_before.get(k, 0) for k, v in groups.items()}
            cpu["producer"] = time.process_time() - self_before
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        arrivals = rx.stop()
        seen: dict = {}
        for msg_id, at in arrivals:
            seen.setdefault(msg_id, at)
        delays = sorted((seen[i] - commits[i]) * 1000 for i in commits if i in seen)
        delivered = len(delays)
        last = max(seen.values()) if seen else first
        events_per_s = delivered / (last - first) if delivered else 0.0

        def pct(p):
            return round(delays[min(len(delays) - 1, int(p * len(delays)))], 1) if delays else None

        log("    CPU ms per event: " + ", ".join(f"{k} {v * 1000 / max(produced, 1):.3f}" for k, v in cpu.items()))
        log(f"    delivered {delivered:,} of {produced:,} ({len(arrivals) - len(seen)} duplicates); "
            f"{events_per_s:,.0f} events/s; delay p50 {pct(0.5)} ms, p99 {pct(0.99)} ms")
        print(json.dumps({"events_per_s": round(events_per_s), "delivery_p99_ms": pct(0.99),
                          "delivery_p50_ms": pct(0.5), "reference_posts_per_s": round(ref),
                          "ratio": round(events_per_s / ref, 2) if ref else None, "offered_per_s": args.rate,
                          "produced": produced, "delivered": delivered, "duplicates": len(arrivals) - len(seen),
                          "seconds": seconds}))


if __name__ == "__main__":
    main()
