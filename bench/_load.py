"""Load generator for the ingest benchmark: N keep-alive connections posting signed, unique WhatsApp webhooks.

    python bench/_load.py --port P --seconds S --conns 16 --secret X --phone-number-id ID [--warmup W]

Each request is a ~1.5 KB Cloud API text-message envelope with its own wamid,
signed like Meta signs it. Prints one JSON line: acked requests, other
statuses, seconds, and latency percentiles (ms) of the measured window.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import time

PAD = "lorem ipsum dolor sit amet " * 30


def make_factory(secret: bytes, phone_number_id: str, senders: int):
    """Bodies from one serialised template with fixed-width slots: the client must stay cheap next to the server."""
    counter = itertools.count()
    run = os.urandom(4).hex()
    template = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "34910000000", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Cliente @SENDER@"}, "wa_id": "346@SENDER@"}],
            "messages": [{"from": "346@SENDER@", "id": f"wamid.bench{run}@SEQUENCE@", "timestamp": "1732400000",
                          "type": "text", "text": {"body": f"pedido @SEQUENCE@: {PAD}"}}]}}]}]},
        separators=(",", ":")).encode()
    parts = template.replace(b"@SENDER@", b"\x00S").replace(b"@SEQUENCE@", b"\x00N").split(b"\x00")
    mac = hmac.new(secret, digestmod=hashlib.sha256)

    def make() -> bytes:
        n = next(counter)
        sender, seq = b"%08d" % (n % senders), b"%012d" % n
        chunks = []
        for i, part in enumerate(parts):
            if i and part[:1] == b"S":
                chunks += [sender, part[1:]]
            elif i and part[:1] == b"N":
                chunks += [seq, part[1:]]
            else:
                chunks.append(part)
        body = b"".join(chunks)
        h = mac.copy()
        h.update(body)
        return (b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"X-Hub-Signature-256: sha256=" + h.hexdigest().encode() + b"\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)
    return make


async def connection(port, make, start_at, stop_at, lat, statuses, delay):
    # Connections open one by one, as a provider's do over time, so every server process accepts some
    # (opened all at once, the first process to wake up takes them all).
    await asyncio.sleep(delay)
    reader = writer = None
    while time.perf_counter() < stop_at:
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        req = make()
        t0 = time.perf_counter()
        writer.write(req)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer = None
            continue
        status = int(head[9:12])
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await reader.readexactly(length)
        t1 = time.perf_counter()
        if t0 >= start_at:
            lat.append(t1 - t0)
            statuses[status] = statuses.get(status, 0) + 1
        if close:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def main_async(args):
    make = make_factory(args.secret.encode(), args.phone_number_id, args.senders)
    lat: list[float] = []
    statuses: dict[int, int] = {}
    start_at = time.perf_counter() + args.warmup
    stop_at = start_at + args.seconds
    await asyncio.gather(*(connection(args.port, make, start_at, stop_at, lat, statuses, i * 0.05)
                           for i in range(args.conns)))
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else None

    print(json.dumps({"acked": statuses.get(200, 0), "statuses": {str(k): v for k, v in statuses.items()},
                      "seconds": args.seconds, "rps": round(statuses.get(200, 0) / args.seconds, 1),
                      "p50_ms": pct(0.50), "p99_ms": pct(0.99)}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--secret", default="bench-secret")
    p.add_argument("--phone-number-id", default="BENCHPN")
    p.add_argument("--senders", type=int, default=500)
    p.add_argument("--quick", action="store_true", help="a 3-second window after 0.5 s of warm-up")
    args = p.parse_args()
    if args.quick:
        args.seconds, args.warmup = 3.0, 0.5
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
