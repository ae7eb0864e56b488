"""Benchmark: seconds from `./scripts/up` to /readyz 200, with the venv built and the data folder existing.

    .venv/bin/python bench/startup.py [--quick] [--runs N]

A first, untimed run creates the data folder (initdb, keyring, migrations,
demo account); each timed run then starts ./scripts/up against it, polls
/readyz until it answers 200, and stops it with SIGTERM. The reference in the
same run is the embedded PostgreSQL and Valkey alone starting on the same
folder (`servers_s`): the floor no gateway start can go under. The last line
on stdout is one JSON object: {"ready_s": median, "servers_s": median, ...}.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_up(data: Path) -> float:
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "GATEWAY_KEYRING_FILE", "GATEWAY_MASTER_KEYS")}
    env.update(GATEWAY_DATA_DIR=str(data), PORT=str(port), GATEWAY_LOG_LEVEL="WARNING")
    started = time.monotonic()
    proc = subprocess.Popen([str(ROOT / "scripts" / "up")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit("scripts/up exited before becoming ready")
            if time.monotonic() - started > 120:
                raise SystemExit("scripts/up not ready after 120 s")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def time_servers(data: Path) -> float:
    from gateway.embedded import EmbeddedServers
    started = time.monotonic()
    servers = EmbeddedServers(data)
    servers.start_postgres()
    servers.start_valkey()
    elapsed = time.monotonic() - started
    servers.stop()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 timed runs instead of 5")
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()
    runs = args.runs or (2 if args.quick else 5)
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-startup-"))
    data = tmp / "data"
    try:
        print("first run (creates the data folder, untimed)…", file=sys.stderr)
        time_up(data)
        ready, servers = [], []
        for i in range(runs):
            servers.append(time_servers(data))
            ready.append(time_up(data))
            print(f"run {i + 1}/{runs}: up→ready {ready[-1]:.2f}s, servers alone {servers[-1]:.2f}s",
                  file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"ready_s": round(statistics.median(ready), 2),
              "servers_s": round(statistics.median(servers), 2),
              "ready_over_servers": round(statistics.median(ready) / statistics.median(servers), 2),
              "runs": runs}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
