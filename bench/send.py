"""Benchmark: end-to-end sends per second (API accepted → sandbox received) against the sandbox's own capacity.

    .venv/bin/python bench/send.py [--quick] [--messages N] [--recipients R] [--batch B] [--workers K] [--backlog]
                                   [--logs DIR]

Same run, same machine, same load client (asyncio, 16 keep-alive connections,
its own process): (a) the client posts Cloud API text messages straight to the
sandbox provider - its raw capacity; (b) the client posts the same number of
messages to the real gateway (gunicorn, 2 processes) - in requests of B
messages to ``POST /v1/messages/batch`` (default 100), or one by one to
``POST /v1/messages`` with ``--batch 1`` - addressed round robin to R customers
whose window is open (default: one message each), while K RQ send workers push
them through the token bucket (limit lifted to 100,000/s, pair limit off) and
the WhatsApp adapter to the sandbox. sends/s is the number delivered over the
time from the start of (b) to the last message the sandbox received
(``--backlog``: from the moment the workers start on a queue the API already
filled). Status webhooks are off so (b) measures sending. Embedded PostgreSQL
and Valkey in a temporary folder. The last line is one JSON object:
{"sends_per_s", "sandbox_capacity_per_s", "ratio", ...}.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PHONE_NUMBER_ID = "109000000000001"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def _post_all(port: int, path: str, bodies: list[bytes], headers: str, conns: int = 16) -> list[float]:
    """POST every body over ``conns`` keep-alive connections; returns the completion time of each 2xx."""
    done: list[float] = []
    queue = list(reversed(bodies))

    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            body = queue.pop()
            writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{headers}"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            if head[9:10] == b"2":
                done.append(time.perf_counter())
            else:
                raise SystemExit(f"{path} answered {head[:40]!r}")
        writer.close()
    await asyncio.gather(*(one() for _ in range(conns)))
    return done


def _http(url: str, doc=None, headers=None, method=None):
    req = urllib.request.Request(url, data=None if doc is None else json.dumps(doc).encode(),
                                 method=method or ("POST" if doc is not None else "GET"),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def setup(sandbox_url: str, recipients: int) -> tuple[str, str, list[str]]:
    """An account, its API key, a sandbox WhatsApp channel without a rate limit, and ``recipients`` contacts
    whose customer-service window is open (each wrote once), as a CRM's customers would be."""
    from gateway import accounts, channels, db, merges, messages, runtime
    runtime.init()
    with db.connection() as conn:
        account = accounts.create_account(conn, name="bench", actor="bench")
        _, key = accounts.create_api_key(conn, account_id=account["id"], name="bench", scopes=["admin"],
                                         actor="bench")
        ch = channels.create_channel(conn, account_id=account["id"], kind="whatsapp", name="bench",
                                     external_id=PHONE_NUMBER_ID, actor="bench",
                                     credentials={"app_secret": "s", "access_token": "t", "verify_token": "v"},
                                     settings={"api_base_url": sandbox_url, "rate_per_s": 100000,
                                               "pair_interval_s": 0})
        contacts = []
        for i in range(recipients):
            contact = merges.resolve_sender(conn, account_id=account["id"],
                                            identities=[("phone", f"+3460{i:07d}")], name=None)
            messages.record_message(conn, account_id=account["id"], contact_id=contact, channel_id=ch["id"],
                                    direction="inbound", body="hola", provider_message_id=f"wamid.bench-in-{i}")
            contacts.append(str(contact))
            if i % 1000 == 999:
                conn.commit()
                log(f"  {i + 1:,} of {recipients:,} recipients ready")
    return key, str(ch["id"]), contacts


def received(sandbox_url: str) -> int:
    """Cloud API messages the sandbox accepted (HTTP 200) so far."""
    return int(_http(sandbox_url + "/_sandbox/stats")["counts"].get("whatsapp:200", 0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer messages (under a minute)")
    p.add_argument("--messages", type=int, default=10000)
    p.add_argument("--workers", type=int, default=2, help="send worker processes")
    p.add_argument("--batch", type=int, default=100,
                   help="messages per request: 1 posts each to POST /v1/messages, more use POST /v1/messages/batch")
    p.add_argument("--recipients", type=int, default=10000,
                   help="distinct customers the messages go to, round robin (at most one per message)")
    p.add_argument("--backlog", action="store_true",
                   help="start the workers only once the API accepted everything: measures sending alone")
    p.add_argument("--logs", type=Path, metavar="DIR",
                   help="keep each server's and worker's output in DIR (otherwise discarded)")
    args = p.parse_args()
    n = 3000 if args.quick else args.messages

    from bench._stack import sandbox_stack, wait_http
    from gateway.cli import gunicorn_args
    with sandbox_stack("gw-bench-send-", args.logs) as stack:
        spawn, procs, sandbox_port, web_port = stack.spawn, stack.procs, stack.sandbox_port, stack.web_port
        sandbox_url = stack.sandbox_url
        _http(sandbox_url + "/_sandbox/config", {"callbacks": False})
        recipients = min(n, args.recipients)
        log(f"setting up {recipients:,} recipients…")
        key, channel_id, contact_ids = setup(sandbox_url, recipients)

        # (a) the sandbox's own capacity, measured by the same client
        direct = [json.dumps({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600000900",
                              "type": "text", "text": {"body": f"capacity {i}"}}).encode() for i in range(n)]
        started = time.perf_counter()
        done = asyncio.run(_post_all(sandbox_port, f"/v24.0/{PHONE_NUMBER_ID}/messages", direct,
                                     "Authorization: Bearer t\r\n"))
        capacity = len(done) / (max(done) - started)
        log(f"sandbox alone: {capacity:,.0f} messages/s")
        before = received(sandbox_url)

        # (b) the gateway end to end
        spawn("api", ["-m", "gunicorn", *gunicorn_args("127.0.0.1", web_port)])
        def start_workers():
            for i in range(args.workers):
                spawn(f"worker-{i}", ["-m", "gateway.cli", "worker", "send"])
        if not args.backlog:
            start_workers()
        wait_http(f"http://127.0.0.1:{web_port}/healthz", procs)
        messages = [{"channel_id": channel_id, "contact_id": contact_ids[i % recipients], "type": "text",
                     "text": {"body": f"pedido {i} listo"}} for i in range(n)]
        if args.batch > 1:
            path = "/v1/messages/batch"
            bodies = [json.dumps({"messages": messages[i:i + args.batch]}).encode()
                      for i in range(0, n, args.batch)]
        else:
            path, bodies = "/v1/messages", [json.dumps(m).encode() for m in messages]
        started = time.perf_counter()
        accepted = asyncio.run(_post_all(web_port, path, bodies, f"Authorization: Bearer {key}\r\n"))
        api_done = max(accepted)
        clock_from = started    # the first request sent, not its answer: a batch's answer comes late
        if args.backlog:
            time.sleep(1)
            start_workers()
            while received(sandbox_url) == before:
                time.sleep(0.005)
            clock_from = time.perf_counter()
        deadline = time.monotonic() + 600
        while received(sandbox_url) - before < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {received(sandbox_url) - before} of {n} reached the sandbox in 10 minutes")
            time.sleep(0.02)
        finished = time.perf_counter()
        sends = n / (finished - clock_from)
        log(f"gateway end to end: {sends:,.0f} messages/s (API accepted all {n} in {api_done - started:.1f} s, "
            f"{args.workers} send workers)")
        print(json.dumps({"sends_per_s": round(sends, 1), "sandbox_capacity_per_s": round(capacity, 1),
                          "ratio": round(sends / capacity, 3), "api_accept_per_s": round(n / (api_done - started), 1),
                          "messages": n, "per_request": args.batch, "recipients": recipients,
                          "send_workers": args.workers, "connections": 16}))

if __name__ == "__main__":
    main()
