"""Benchmark: the Cloud API facade's sends/s against the REST API's, in the same run, on the same gateway.

    .venv/bin/python bench/facade.py [--quick] [--messages N] [--workers K] [--rounds R] [--logs DIR]

One gateway (gunicorn, 2 processes; K RQ send workers; the rate limiter lifted to 100,000/s, pair limit
off) sending through the sandbox provider, embedded PostgreSQL and Valkey. The same load client (asyncio,
16 keep-alive connections) posts N text messages one request each, to customers whose window is open:

- **api**: ``POST /v1/messages`` with ``{"channel_id", "to": {"kind": "phone", "address"}, "type": "text", ...}``;
- **facade**: ``POST /graph/v21.0/{phone-number-id}/messages`` with the Cloud API body
  ``{"messaging_product": "whatsapp", "to": "<phone>", "type": "text", ...}``.

Both address the customer by phone number, as a Cloud API integration does, so the difference is the facade's
own work (reading Meta's body, its throttle, Meta's answer). A REST client that names contacts by id skips
the address look-up and goes faster than either (about 1.4x here).

Rounds come in R pairs, one of each kind back to back, which of them first alternating; the figure is
the median of the pairs' ratios (a shared machine's drift shows between pairs more than within one), with
the median rate of each side beside it. sends/s is N over the time from the first request to the sandbox
receiving the last message; accept/s is N over the time the API took to answer them all. The last line is
one JSON object: {"facade_sends_per_s", "api_sends_per_s", "ratio", "facade_accept_per_s",
"api_accept_per_s", "accept_ratio", ...}.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.send import PHONE_NUMBER_ID, _http, _post_all, log, received, setup  # noqa: E402


def _round(kind: str, web_port: int, sandbox_url: str, key: str, bodies: list[bytes], path: str) -> tuple[float, float]:
    before = received(sandbox_url)
    started = time.perf_counter()
    accepted = asyncio.run(_post_all(web_port, path, bodies, f"Authorization: Bearer {key}\r\n"))
    api_done = max(accepted)
    deadline = time.monotonic() + 600
    while received(sandbox_url) - before < len(bodies):
        if time.monotonic() > deadline:
            raise SystemExit(f"{kind}: only {received(sandbox_url) - before} of {len(bodies)} reached the sandbox")
        time.sleep(0.01)
    finished = time.perf_counter()
    sends, accepts = len(bodies) / (finished - started), len(bodies) / (api_done - started)
    log(f"  {kind:6s}: {sends:7,.0f} sends/s end to end, API answered at {accepts:7,.0f}/s")
    return sends, accepts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer messages and rounds (under a minute)")
    p.add_argument("--messages", type=int, default=2000, help="messages per round")
    p.add_argument("--rounds", type=int, default=5, help="pairs of rounds (one of each kind, back to back)")
    p.add_argument("--workers", type=int, default=2, help="send worker processes")
    p.add_argument("--logs", type=Path, metavar="DIR", help="keep each process's output in DIR")
    args = p.parse_args()
    n, rounds = (1000, 2) if args.quick else (args.messages, args.rounds)

    from bench._stack import sandbox_stack, wait_http
    from gateway.cli import gunicorn_args
    with sandbox_stack("gw-bench-facade-", args.logs) as stack:
        sandbox_url, web_port = stack.sandbox_url, stack.web_port
        _http(sandbox_url + "/_sandbox/config", {"callbacks": False})
        log(f"setting up {n:,} recipients…")
        key, channel_id, contact_ids = setup(sandbox_url, n)
        stack.spawn("api", ["-m", "gunicorn", *gunicorn_args("127.0.0.1", web_port)])
        for i in range(args.workers):
            stack.spawn(f"worker-{i}", ["-m", "gateway.cli", "worker", "send"])
        wait_http(f"http://127.0.0.1:{web_port}/healthz", stack.procs)

        # The same customers both ways: setup() gave contact i the phone +3460{i:07d}.
        def api_bodies(r: int) -> list[bytes]:
            return [json.dumps({"channel_id": channel_id, "to": {"kind": "phone", "address": f"+3460{i:07d}"},
                                "type": "text", "text": {"body": f"pedido {r}-{i} listo"}}).encode()
                    for i in range(n)]

        def facade_bodies(r: int) -> list[bytes]:
            return [json.dumps({"messaging_product": "whatsapp", "recipient_type": "individual",
                                "to": f"3460{i:07d}", "type": "text",
                                "text": {"body": f"pedido {r}-{i} listo"}}).encode() for i in range(n)]

        # A short warm-up of both paths (imports, connection pools, prepared plans), not counted.
        warm = min(200, n)
        _round("warmup", web_port, sandbox_url, key, api_bodies(-1)[:warm], "/v1/messages")
        _round("warmup", web_port, sandbox_url, key, facade_bodies(-2)[:warm],
               f"/graph/v21.0/{PHONE_NUMBER_ID}/messages")
        results: dict[str, list[tuple[float, float]]] = {"api": [], "facade": []}
        log(f"{rounds} pair(s) of rounds of {n:,} messages, the first of each pair alternating:")
        for r in range(rounds):
            order = ("api", "facade") if r % 2 == 0 else ("facade", "api")
            for kind in order:
                bodies = api_bodies(r) if kind == "api" else facade_bodies(r)
                path = "/v1/messages" if kind == "api" else f"/graph/v21.0/{PHONE_NUMBER_ID}/messages"
                results[kind].append(_round(kind, web_port, sandbox_url, key, bodies, path))
        # Each pair ran back to back, so its ratio is the least disturbed by the machine's drift; the median
        # of the pairs' ratios is the figure, the medians of each side's rates beside it.
        ratios = [f[0] / a[0] for f, a in zip(results["facade"], results["api"])]
        accept_ratios = [f[1] / a[1] for f, a in zip(results["facade"], results["api"])]
        api_sends = statistics.median(s for s, _ in results["api"])
        facade_sends = statistics.median(s for s, _ in results["facade"])
        api_accept = statistics.median(a for _, a in results["api"])
        facade_accept = statistics.median(a for _, a in results["facade"])
        print(json.dumps({"facade_sends_per_s": round(facade_sends, 1), "api_sends_per_s": round(api_sends, 1),
                          "ratio": round(statistics.median(ratios), 3),
                          "facade_accept_per_s": round(facade_accept, 1), "api_accept_per_s": round(api_accept, 1),
                          "accept_ratio": round(statistics.median(accept_ratios), 3),
                          "pair_ratios": [round(x, 3) for x in ratios], "messages_per_round": n,
                          "rounds": rounds, "send_workers": args.workers, "connections": 16}))

if __name__ == "__main__":
    main()
