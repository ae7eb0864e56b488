"""Event webhook delivery: an RQ job that claims due deliveries, posts them signed, and records every attempt.

Ordering. Deliveries of one endpoint and one lane (the thread, else the event's subject) go one after
another: a delivery waits while an earlier one of its lane is in flight or waiting for its retry. Claims are
made under an advisory lock, so two workers never take the same lane at once; a claim takes a lane's whole
run of due deliveries and posts them in order, stopping at the first failure (the rest go back untouched).

Isolation. Each endpoint has threads of its own (``GATEWAY_WEBHOOK_CONCURRENCY``) that its lanes queue for, few
lanes claimed while it is failing, and claims read each endpoint's due deliveries apart: an endpoint that hangs
holds its own threads for the timeout, never another endpoint's deliveries.

Retries. Exponential backoff with jitter over more than a day (``retry_schedule``), a ``Retry-After`` honoured,
then a dead letter that no longer holds its lane up; 410 Gone disables the endpoint, and so does failing for
``GATEWAY_WEBHOOK_DISABLE_AFTER_HOURS``; a disabled endpoint's deliveries wait for it to be enabled again.
Delivery is at least once (a worker killed mid-post sends again after its lease): receivers deduplicate on
``webhook-id``, the event's id, which every attempt and replay of an event carries.

Formats. A ``meta`` endpoint's bodies are Meta's WhatsApp webhooks (gateway/facade/webhook_format.py), signed
with ``X-Hub-Signature-256`` as Meta signs them; a ``twilio`` endpoint's are Twilio's status callbacks
(gateway/facade/twilio_format.py), form-encoded and signed with ``X-Twilio-Signature``; everything else about
delivery is the same.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import queue
import random
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from gateway import db, keystore, messages, metrics, webhook_endpoints, webhook_http

log = logging.getLogger("gateway.webhooks")

CLAIM_LOCK = 0x57484B31          # one claimer at a time: lanes are decided under it
PER_ENDPOINT_SCAN = 1000
MAX_LANES = 2000                 # lanes one process may have claimed per endpoint
RECOVER_EVERY_S = 1.0
IDLE_POLL_S = 0.025              # how often an idle job looks for due deliveries
TURN_S = 0.02                    # a busy job claims and records this often
TRIP_S = 2.0                     # after a connection-level failure, an endpoint's queued lanes wait this long
IDLE_EXIT_S = 2.0
MAX_RUN_S = 60.0
LEASE_SLACK_S = 60
RETRY_AFTER_MAX_S = 86400        # a Retry-After asking for longer is taken as a day
USER_AGENT = "omnichannel-gateway-webhooks/1"
_CONTENT_TYPES = ("message.received", "message.sent")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds, e.g. {default}") from None


def timeout_s() -> float:
    return _env_float("GATEWAY_WEBHOOK_TIMEOUT_S", 10.0)


def concurrency() -> int:
    return max(1, int(_env_float("GATEWAY_WEBHOOK_CONCURRENCY", 16)))


def disable_after() -> timedelta:
    return timedelta(hours=_env_float("GATEWAY_WEBHOOK_DISABLE_AFTER_HOURS", 120))


def retry_schedule() -> list[float]:
    """Seconds to wait before each retry. The default, 10 s × 4ⁿ up to 10 h, spans 33.8 h (30 h at the
    jitter's shortest), so a CRM down for a day still gets everything; GATEWAY_WEBHOOK_RETRY_SCHEDULE
    (comma-separated seconds) replaces it, e.g. for tests."""
    raw = os.environ.get("GATEWAY_WEBHOOK_RETRY_SCHEDULE")
    if raw:
        try:
            return [float(s) for s in raw.split(",") if s.strip()]
        except ValueError:
            raise SystemExit("GATEWAY_WEBHOOK_RETRY_SCHEDULE is comma-separated seconds, e.g. 10,60,600") from None
    return [min(10 * 4 ** n, 36000) for n in range(9)]


def _jitter(seconds: float) -> float:
    return seconds * random.uniform(0.9, 1.1)


def sign(secrets: list[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``; one per secret, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join("v1," + base64.b64encode(hmac.new(s, signed, hashlib.sha256).digest()).decode() for s in secrets)


def sign_meta(secret: bytes, body: bytes) -> str:
    """Meta's ``X-Hub-Signature-256``: ``sha256=`` + hex HMAC-SHA256 of the exact body, keyed with the app secret.
    One signature only: during a rotation's grace period it is the newest secret's (signing_secrets gives only
    that one for a meta endpoint), since Meta's header has no room for two."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


# -- claiming -------------------------------------------------------------------------------------------------

@dataclass
class Item:
    seq: int                         # names the delivery: unique, and cheaper to pass around than two uuids
    endpoint_id: str
    lane: str
    attempts: int
    account_id: str = ""
    event_id: str = ""
    body: bytes = b""


@dataclass
class Lane:
    endpoint_id: str
    url: str
    secrets: list
    items: list = field(default_factory=list)
    format: str = "standard"


@dataclass
class Result:
    item: Item
    outcome: str                     # delivered, failed, expired, released
    status_code: int | None = None
    latency_ms: int = 0
    error: str | None = None
    response: str | None = None
    retry_after: float | None = None
    at: float = 0.0                  # epoch seconds of the attempt
    release_s: float | None = None   # a released delivery waits this long before it is claimed again


# Each enabled endpoint's due deliveries (a window of them, so a stuck endpoint's backlog never hides another's),
# less those that must wait: a lane goes out in seq order, so a candidate waits while its lane holds an earlier
# delivery in flight, waiting for a retry, or beyond the window.
_DUE = """
WITH win AS (
    SELECT d.seq, d.endpoint_id, d.lane, d.attempts, d.next_attempt_at
    FROM webhook_endpoints w CROSS JOIN LATERAL (
        SELECT seq, endpoint_id, lane, attempts, next_attempt_at FROM webhook_deliveries d
        WHERE d.account_id = w.account_id AND d.endpoint_id = w.id AND d.state = 'pending'
          AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at, d.seq LIMIT %s) d
    WHERE w.enabled AND NOT (w.id = ANY (%s::uuid[]))
), edge AS (
    SELECT DISTINCT ON (endpoint_id) endpoint_id, next_attempt_at, seq FROM win
    ORDER BY endpoint_id, next_attempt_at DESC, seq DESC
), held AS (
    SELECT b.endpoint_id, b.lane, min(b.seq) AS seq
    FROM webhook_deliveries b JOIN (SELECT DISTINCT endpoint_id, lane FROM win) l USING (endpoint_id, lane)
    JOIN edge ON edge.endpoint_id = b.endpoint_id
    WHERE b.state IN ('pending', 'delivering')
      AND (b.state = 'delivering' OR (b.next_attempt_at, b.seq) > (edge.next_attempt_at, edge.seq))
    GROUP BY b.endpoint_id, b.lane
)
SELECT win.seq, win.endpoint_id::text AS endpoint_id, win.lane::text AS lane, win.attempts
FROM win LEFT JOIN held USING (endpoint_id, lane)
WHERE held.seq IS NULL OR win.seq < held.seq
ORDER BY win.seq
"""
_TAKE = """
WITH l AS (SELECT * FROM unnest(string_to_array(%s, ',')::bigint[], string_to_array(%s, ',')::float8[]) AS l (seq, s)),
took AS (
    UPDATE webhook_deliveries d SET state = 'delivering', lease_until = now() + make_interval(secs => l.s)
    FROM l WHERE d.seq = l.seq RETURNING d.seq, d.account_id, d.event_id
)
SELECT took.seq, took.account_id::text AS account_id, took.event_id::text AS event_id, e.type, e.data::text AS data,
       to_json(e.created_at) #>> '{}' AS created_at, e.data ->> 'message_id' AS message_id
FROM took LEFT JOIN events e ON e.account_id = took.account_id AND e.id = took.event_id
"""


# Claims and outcomes commit without waiting for the disk. Delivery is at least once: a crash that takes back
# a 'delivering' or 'delivered' mark makes the delivery go again, which receivers absorb by its webhook-id.
_NO_FLUSH = "SET LOCAL synchronous_commit = off"


def _csv(values) -> str:
    return ",".join(map(str, values))


class _Endpoints:
    """Endpoint URL, scopes and decrypted secrets, cached per process until the row changes (read again at
    most every ``REFRESH_S``)."""
    REFRESH_S = 1.0

    def __init__(self):
        self._cache: dict = {}
        self._rows: dict = {}
        self._read_at = 0.0

    def get(self, conn, ids) -> dict:
        missing = [i for i in ids if i not in self._rows]
        if missing or time.monotonic() - self._read_at > self.REFRESH_S:
            wanted = list(set(ids) | set(self._rows))
            self._rows = {r["id"]: r for r in conn.execute(
                "SELECT account_id, id::text AS id, url, format, include_content, scopes, updated_at, failing_since, "
                "previous_secret_until > now() AS grace FROM webhook_endpoints WHERE id = ANY (%s::uuid[])",
                (wanted,)).fetchall()}
            self._read_at = time.monotonic()
        out = {}
        for endpoint_id in ids:
            r = self._rows.get(endpoint_id)
            if r is None:
                continue
            key = (r["updated_at"], r["grace"])
            cached = self._cache.get(endpoint_id)
            if cached is None or cached[0] != key:
                cached = (key, webhook_endpoints.signing_secrets(conn, account_id=r["account_id"],
                                                                 endpoint_id=endpoint_id))
                self._cache[endpoint_id] = cached
            out[endpoint_id] = dict(r, secrets=cached[1])
        return out


def lane_cap(endpoint: dict, per_endpoint: int) -> int:
    """Lanes an endpoint may have claimed at once: many while it answers (they queue for its ``per_endpoint``
    connections), as many as its connections while it fails, so a hanging endpoint holds few deliveries."""
    return MAX_LANES if endpoint["failing_since"] is None else per_endpoint


def claim(conn, endpoints: _Endpoints, in_flight: dict, per_endpoint: int, recover: bool = True) -> list[Lane]:
    """Due deliveries whose lanes are free, marked in flight, with their bodies built. Commits.
    ``in_flight`` counts this process's claimed lanes per endpoint; claimed lanes are added to it."""
    conn.execute(_NO_FLUSH)
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (CLAIM_LOCK,))
    if recover:   # a worker that died mid-post: its deliveries are owed again once their lease ran out
        conn.execute("UPDATE webhook_deliveries SET state = 'pending', lease_until = NULL "
                     "WHERE state = 'delivering' AND lease_until < now()")
    full = [e for e, n in in_flight.items() if n >= MAX_LANES]
    rows = conn.execute(_DUE, (PER_ENDPOINT_SCAN, full)).fetchall()
    info = endpoints.get(conn, {r["endpoint_id"] for r in rows}) if rows else {}
    by_lane: dict = {}
    ahead: dict = {}
    for r in rows:
        ep = info.get(r["endpoint_id"])
        if ep is None:
            continue
        key = (r["endpoint_id"], r["lane"])
        lane = by_lane.get(key)
        if lane is None:
            n = in_flight.get(r["endpoint_id"], 0)
            if n >= lane_cap(ep, per_endpoint):
                continue
            in_flight[r["endpoint_id"]] = n + 1
            ahead[key] = n
            lane = by_lane[key] = Lane(r["endpoint_id"], ep["url"], ep["secrets"], format=ep["format"])
        lane.items.append(Item(r["seq"], r["endpoint_id"], r["lane"], r["attempts"]))
    if not by_lane:
        conn.commit()
        return []
    # The lease covers the lane's wait behind the endpoint's other lanes and a timeout per delivery.
    timeout = timeout_s()
    seqs, leases, items = [], [], {}
    for key, lane in by_lane.items():
        lease = timeout * (len(lane.items) + ahead[key] // per_endpoint + 1) + LEASE_SLACK_S
        for i in lane.items:
            seqs.append(i.seq), leases.append(lease)
            items[i.seq] = i
    taken = conn.execute(_TAKE, (_csv(seqs), _csv(leases))).fetchall()
    _build_bodies(conn, items, taken, info)
    conn.commit()
    return list(by_lane.values())


def _build_bodies(conn, items: dict, taken: list[dict], info: dict) -> None:
    for fmt in ("meta", "twilio"):
        mine = [t for t in taken if info[items[t["seq"]].endpoint_id]["format"] == fmt]
        if not mine:
            continue
        taken = [t for t in taken if info[items[t["seq"]].endpoint_id]["format"] != fmt]
        if fmt == "meta":
            from gateway.facade import webhook_format
            bodies = webhook_format.bodies(conn, mine)
        else:
            from gateway.facade import twilio_format
            bodies = twilio_format.bodies(conn, mine)
        for t in mine:
            i = items[t["seq"]]
            i.account_id, i.event_id = t["account_id"], t["event_id"]
            # None (past retention, the contact erased, the message gone): nothing to send, as for standard.
            i.body = bodies.get(t["seq"]) or b""
    content = _contents(conn, items, taken, info)
    for t in taken:
        i = items[t["seq"]]
        i.account_id, i.event_id = t["account_id"], t["event_id"]
        if t["type"] is None:   # past the events' retention: nothing left to send
            continue
        extra = content.get(t["seq"])
        i.body = (f'{{"id":"{t["event_id"]}","type":"{t["type"]}","timestamp":"{t["created_at"]}",'
                  f'"account_id":"{t["account_id"]}","data":{t["data"]}'
                  + (f',"content":{json.dumps(extra, separators=(",", ":"), default=str)}}}' if extra else "}")
                  ).encode()


def _may_carry_content(ep: dict) -> bool:
    scopes = set(ep["scopes"])
    secure = ep["url"].startswith("https://") or webhook_endpoints.http_allowed()
    return ep["include_content"] and secure and bool(scopes & {"messages:read", "admin"})


def _contents(conn, items: dict, taken: list[dict], info: dict) -> dict:
    """A message event's content (text, media, buttons) by delivery seq, read from the live, encrypted record:
    only for endpoints allowed to read messages, over TLS, and never after an erasure (the key is gone)."""
    wanted: dict = {}
    for t in taken:
        if t["type"] in _CONTENT_TYPES and t["message_id"] and _may_carry_content(info[items[t["seq"]].endpoint_id]):
            wanted.setdefault(t["account_id"], {}).setdefault(t["message_id"], []).append(t["seq"])
    out = {}
    for account_id, by_message in wanted.items():
        rows = conn.execute(f"SELECT {messages.MESSAGE_COLUMNS} FROM messages m JOIN contacts c "
                            "ON c.account_id = m.account_id AND c.id = m.contact_id "
                            "WHERE m.account_id = %s AND m.id = ANY (%s::uuid[])",
                            (account_id, list(by_message))).fetchall()
        keys = keystore.load_keys(conn, account_id=account_id, key_ids={r["data_key_id"] for r in rows})
        for r in rows:
            key = keys.get(r["data_key_id"])
            if key is None:
                continue
            m = messages.decrypt_message(conn, account_id, r, key=key)
            for seq in by_message[str(r["id"])]:
                out[seq] = {"direction": m["direction"], "kind": m["kind"], "text": m["text"],
                            "content": m["content"], "reply_to_id": m["reply_to_id"], "occurred_at": m["occurred_at"]}
    return out


# -- posting --------------------------------------------------------------------------------------------------

_local = threading.local()


def _connection(url: str, timeout: float) -> tuple[webhook_http.Connection, str]:
    """This thread's kept-alive connection to the endpoint's host, and the request target."""
    conns = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    found = conns.get(url)
    if found is None or found[0].timeout != timeout:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        found = conns[url] = (webhook_http.Connection(parts.scheme, parts.hostname, parts.port, timeout), target)
    return found


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def sign_twilio(secret: bytes, url: str, body: bytes) -> str:
    """Twilio's ``X-Twilio-Signature`` (protocols.md D3): base64 HMAC-SHA1, keyed with the auth token, of the
    exact URL followed by each posted parameter's name and value, names sorted (a repeated name's values
    sorted too, as Twilio's validator does)."""
    from urllib.parse import parse_qsl
    params: dict = {}
    for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
        params.setdefault(name, []).append(value)
    payload = url + "".join(name + value for name in sorted(params) for value in sorted(params[name]))
    return base64.b64encode(hmac.new(secret, payload.encode("utf-8"), hashlib.sha1).digest()).decode()


def post(url: str, secrets: list, item: Item, timeout: float, format: str = "standard") -> Result:
    conn, target = _connection(url, timeout)
    if format == "meta":
        headers = [("Content-Type", "application/json"), ("User-Agent", USER_AGENT), ("webhook-id", item.event_id),
                   ("X-Hub-Signature-256", sign_meta(secrets[0], item.body))]
    elif format == "twilio":
        headers = [("Content-Type", "application/x-www-form-urlencoded"), ("User-Agent", USER_AGENT),
                   ("webhook-id", item.event_id), ("X-Twilio-Signature", sign_twilio(secrets[0], url, item.body))]
    else:
        stamp = int(time.time())
        headers = [("Content-Type", "application/json"), ("User-Agent", USER_AGENT), ("webhook-id", item.event_id),
                   ("webhook-timestamp", str(stamp)),
                   ("webhook-signature", sign(secrets, item.event_id, stamp, item.body))]
    at = time.time()
    started = time.perf_counter()
    for attempt in (0, 1):
        reused = conn.used and conn.sock is not None
        try:
            resp = conn.post(target, headers, item.body)
        except (webhook_http.Closed, ConnectionResetError, BrokenPipeError) as exc:
            if reused and attempt == 0:
                continue   # a kept-alive connection the server had closed: once more on a new one
            return _failure(item, started, at, f"the connection was closed: {exc}")
        except (socket.timeout, TimeoutError):
            return _failure(item, started, at, f"no answer within {timeout:g} s (GATEWAY_WEBHOOK_TIMEOUT_S)")
        except ssl.SSLError as exc:
            return _failure(item, started, at, f"TLS failed: {exc.reason or type(exc).__name__}")
        except webhook_http.NotHTTP as exc:
            return _failure(item, started, at, f"the answer is not HTTP: {exc}")
        except OSError as exc:
            return _failure(item, started, at, _describe(exc))
        latency = int((time.perf_counter() - started) * 1000)
        ok = 200 <= resp.status < 300
        retry_after = _retry_after(resp.headers.get("retry-after")) if resp.status in (429, 503) else None
        return Result(item, "delivered" if ok else "failed", resp.status, latency,
                      None if ok else f"the endpoint answered {resp.status} {resp.reason}".strip(),
                      resp.body.decode("utf-8", "replace") or None, retry_after, at)
    raise AssertionError("unreachable")


def _failure(item: Item, started: float, at: float, error: str) -> Result:
    return Result(item, "failed", None, int((time.perf_counter() - started) * 1000), error, at=at)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    return f"could not post: {type(exc).__name__}"


def deliver_lane(lane: Lane, timeout: float) -> list[Result]:
    """Post a lane's deliveries in order; after a failure the rest wait for the failed one's retry."""
    out: list[Result] = []
    for n, item in enumerate(lane.items):
        if not item.body:
            out.append(Result(item, "expired", error="the event is past its retention and was not sent" if
                              lane.format == "standard" else "nothing to send: the event is past its retention, or its "
                              "message or contact is gone (erased)"))
            continue
        result = post(lane.url, lane.secrets, item, timeout, lane.format)
        out.append(result)
        if result.outcome != "delivered":
            out += [Result(i, "released") for i in lane.items[n + 1:]]
            break
    return out


# -- recording ------------------------------------------------------------------------------------------------

def _next_delay(result: Result, schedule: list[float]) -> float | None:
    """Seconds until the next attempt, or None when the retry budget is spent (a dead letter)."""
    done = result.item.attempts + 1
    if done > len(schedule):
        return None
    delay = _jitter(schedule[done - 1])
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, RETRY_AFTER_MAX_S))
    return delay


def _plan(failed: list[Result], schedule: list[float]) -> list[tuple[str, float | None]]:
    """Each failure's next state: (pending, seconds until its retry; None = held with its endpoint) or dead."""
    out = []
    for r in failed:
        delay = _next_delay(r, schedule)
        if r.status_code == 410:
            out.append(("pending", None))
        elif delay is None:
            out.append(("dead", None))
        else:
            out.append(("pending", delay))
    return out


_DELIVERED = """
UPDATE webhook_deliveries d SET state = 'delivered', attempts = d.attempts + 1, delivered_at = to_timestamp(l.at),
    lease_until = NULL, last_status_code = l.code, last_latency_ms = l.latency, last_error = NULL
FROM unnest(string_to_array(%s, ',')::bigint[], string_to_array(%s, ',')::int[], string_to_array(%s, ',')::int[],
            string_to_array(%s, ',')::float8[]) AS l (seq, code, latency, at)
WHERE d.seq = l.seq
"""


def record(conn, results: list[Result]) -> dict:
    """Write a batch of outcomes in one transaction; returns counts by outcome (delivered, retry, dead, …)."""
    by = {k: [r for r in results if r.outcome == k] for k in ("delivered", "failed", "expired", "released")}
    ok, failed, expired, released = by["delivered"], by["failed"], by["expired"], by["released"]
    counts: dict = {}
    conn.execute(_NO_FLUSH)
    if released:   # first: the failures below push what follows them in their lane, these included
        conn.execute("UPDATE webhook_deliveries d SET state = 'pending', lease_until = NULL, next_attempt_at = "
                     "greatest(d.next_attempt_at, now() + make_interval(secs => l.delay)) "
                     "FROM unnest(%s::bigint[], %s::float8[]) AS l (seq, delay) WHERE d.seq = l.seq",
                     ([r.item.seq for r in released], [r.release_s or 0.0 for r in released]))
    if ok:
        conn.execute(_DELIVERED, (_csv(r.item.seq for r in ok), _csv(r.status_code for r in ok),
                                  _csv(r.latency_ms for r in ok), _csv(r.at for r in ok)))
        conn.execute("UPDATE webhook_endpoints SET failing_since = NULL, last_success_at = now() "
                     "WHERE id = ANY (%s::uuid[]) AND (failing_since IS NOT NULL OR last_success_at IS NULL "
                     "OR last_success_at < now() - interval '10 seconds')",
                     (list({r.item.endpoint_id for r in ok}),))
        counts["delivered"] = len(ok)
    if failed or expired:
        _record_failures(conn, failed, expired, counts)
    if failed:
        counts["disabled"] = _disable_failing(conn, failed)
    conn.commit()
    _observe(ok + failed, counts)
    return {k: v for k, v in counts.items() if v}


def _record_failures(conn, failed: list[Result], expired: list[Result], counts: dict) -> None:
    plan = _plan(failed, retry_schedule()) + [("dead", None)] * len(expired)
    rows = failed + expired
    conn.execute(
        "UPDATE webhook_deliveries d SET state = l.state, attempts = attempts + l.n, lease_until = NULL, "
        "last_status_code = l.code, last_latency_ms = l.latency, last_error = l.error, "
        "next_attempt_at = CASE WHEN l.state = 'pending' "
        "THEN coalesce(now() + make_interval(secs => l.delay), 'infinity') ELSE d.next_attempt_at END "
        "FROM unnest(%s::bigint[], %s::text[], %s::float8[], %s::int[], %s::text[], %s::int[], %s::int[]) "
        "AS l (seq, state, delay, code, error, n, latency) WHERE d.seq = l.seq",
        ([r.item.seq for r in rows], [p[0] for p in plan], [p[1] for p in plan], [r.status_code for r in rows],
         [r.error for r in rows], [1] * len(failed) + [0] * len(expired), [r.latency_ms for r in rows]))
    waiting = [(r, delay) for r, (state, delay) in zip(rows, plan) if state == "pending"]
    if waiting:   # what follows in the lane waits as long, so the lane keeps its order (and out of claims' sight)
        conn.execute(
            "UPDATE webhook_deliveries d SET next_attempt_at = greatest(d.next_attempt_at, "
            "coalesce(now() + make_interval(secs => l.delay), 'infinity')) "
            "FROM unnest(%s::uuid[], %s::uuid[], %s::bigint[], %s::float8[]) AS l (endpoint_id, lane, seq, delay) "
            "WHERE d.endpoint_id = l.endpoint_id AND d.lane = l.lane AND d.seq > l.seq AND d.state = 'pending'",
            ([r.item.endpoint_id for r, _ in waiting], [r.item.lane for r, _ in waiting],
             [r.item.seq for r, _ in waiting], [d for _, d in waiting]))
    for state, _ in plan:
        outcome = "retry" if state == "pending" else "dead"
        counts[outcome] = counts.get(outcome, 0) + 1
    if failed:
        conn.execute(
            "INSERT INTO webhook_attempts (account_id, delivery_id, n, at, status_code, latency_ms, error, response) "
            "SELECT d.account_id, d.id, d.attempts, to_timestamp(l.at), l.code, l.latency, l.error, l.response "
            "FROM unnest(%s::bigint[], %s::float8[], %s::int[], %s::int[], %s::text[], %s::text[]) "
            "AS l (seq, at, code, latency, error, response) JOIN webhook_deliveries d ON d.seq = l.seq "
            "ON CONFLICT DO NOTHING",
            ([r.item.seq for r in failed], [r.at for r in failed], [r.status_code for r in failed],
             [r.latency_ms for r in failed], [r.error for r in failed], [r.response for r in failed]))


def _disable_failing(conn, failed: list[Result]) -> int:
    """An endpoint that answered 410 Gone, or has failed everything for too long, is disabled, saying why."""
    endpoint_ids = list({r.item.endpoint_id for r in failed})
    conn.execute("UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now()) "
                 "WHERE id = ANY (%s::uuid[])", (endpoint_ids,))
    n = 0
    for endpoint_id, account_id in {r.item.endpoint_id: r.item.account_id for r in failed
                                    if r.status_code == 410}.items():
        webhook_endpoints.disable(conn, account_id=account_id, endpoint_id=endpoint_id,
                                  reason="the endpoint answered 410 Gone: it asked for no more deliveries")
        n += 1
    for r in conn.execute("SELECT account_id, id, failing_since FROM webhook_endpoints WHERE id = ANY (%s::uuid[]) "
                          "AND enabled AND failing_since < now() - %s", (endpoint_ids, disable_after())).fetchall():
        webhook_endpoints.disable(conn, account_id=r["account_id"], endpoint_id=r["id"],
                                  reason=f"every delivery has failed since {r['failing_since']:%Y-%m-%d %H:%M} UTC; "
                                         "fix the endpoint, then enable it (PATCH enabled=true) and its held "
                                         "deliveries go")
        n += 1
    return n


def _observe(attempted: list[Result], counts: dict) -> None:
    for outcome, n in counts.items():
        metrics.EVENT_DELIVERIES.labels(outcome).inc(n)
    timeouts = sum(1 for r in attempted if r.error and r.error.startswith("no answer within"))
    if timeouts:
        metrics.EVENT_DELIVERIES.labels("timeout").inc(timeouts)
    for r in attempted:
        metrics.EVENT_DELIVERY_SECONDS.observe(r.latency_ms / 1000)


# -- the job --------------------------------------------------------------------------------------------------

class _Runner:
    """One endpoint's threads: its lanes queue for its own connections, so a hanging endpoint stalls only
    itself. A connection-level failure (timeout, refused) trips it: its queued lanes go back for ``TRIP_S``
    instead of each waiting out the same timeout."""

    def __init__(self, per_endpoint: int):
        self.pool = ThreadPoolExecutor(per_endpoint, thread_name_prefix="webhook")
        self.tripped_until = 0.0

    def run(self, lane: Lane, timeout: float, done: queue.Queue) -> None:
        try:
            if time.monotonic() < self.tripped_until:
                results = [Result(i, "released", release_s=TRIP_S) for i in lane.items]
            else:
                results = deliver_lane(lane, timeout)
                if any(r.outcome == "failed" and r.status_code is None for r in results):
                    self.tripped_until = time.monotonic() + TRIP_S
        except Exception as exc:   # a bug here must not strand the lane in flight until its lease runs out
            log.error("webhook lane failed", extra={"error": type(exc).__name__}, exc_info=True)
            results = [Result(i, "released", release_s=TRIP_S) for i in lane.items]
        done.put((lane, results))


def drain(max_run_s: float = MAX_RUN_S, idle_exit_s: float = IDLE_EXIT_S) -> dict:
    """Claim, post and record until nothing has been due for ``idle_exit_s`` (or ``max_run_s`` passed: the
    relay starts another job). Claims and records are batched: one transaction each per turn of the loop."""
    timeout = timeout_s()
    per_endpoint = concurrency()
    endpoints = _Endpoints()
    runners: dict = {}
    done: queue.Queue = queue.Queue()
    lanes_in_flight: dict = {}
    in_flight = 0
    totals: dict = {}
    started = last_work = recovered_at = time.monotonic()
    beat_at = 0.0
    try:
        while True:
            now = time.monotonic()
            claiming = now - started < max_run_s
            if now - beat_at >= 1.0:
                _heartbeat()
                beat_at = now
            claimed = 0
            if claiming:
                recover = now - recovered_at >= RECOVER_EVERY_S
                with db.connection() as conn:
                    lanes = claim(conn, endpoints, lanes_in_flight, per_endpoint, recover=recover)
                if recover:
                    recovered_at = now
                for lane in lanes:
                    runner = runners.get(lane.endpoint_id) or runners.setdefault(lane.endpoint_id,
                                                                                 _Runner(per_endpoint))
                    runner.pool.submit(runner.run, lane, timeout, done)
                    in_flight += 1
                    claimed += len(lane.items)
            # One turn lasts TURN_S (IDLE_POLL_S when nothing is under way): what finishes meanwhile is recorded in
            # one transaction and the next claim takes all that came due, so the database sees a few statements
            # per turn rather than per delivery.
            turn_ends = now + (TURN_S if claimed or in_flight else IDLE_POLL_S)
            finished = []
            while True:
                left = turn_ends - time.monotonic()
                if left <= 0:
                    break
                try:
                    finished.append(done.get(timeout=left))
                except queue.Empty:
                    break
            if finished:
                results = [r for lane, rs in finished for r in rs]
                with db.connection() as conn:
                    for outcome, n in record(conn, results).items():
                        totals[outcome] = totals.get(outcome, 0) + n
                for lane, _ in finished:
                    in_flight -= 1
                    lanes_in_flight[lane.endpoint_id] -= 1
            if claimed or finished:
                last_work = time.monotonic()
            if in_flight == 0 and (not claiming or time.monotonic() - last_work > idle_exit_s):
                return totals
    finally:
        for runner in runners.values():
            runner.pool.shutdown(wait=False, cancel_futures=True)
        _heartbeat(stop=True)


def _heartbeat(stop: bool = False) -> None:
    """Tells the relay a delivery job is running (it enqueues another when this stops, a killed worker included);
    ``stop`` says at once that it has ended, so deliveries made just after wait for no expiry."""
    from gateway import runtime, webhook_relay
    try:
        if stop:
            runtime.redis_client().delete(webhook_relay.HEARTBEAT_KEY)
        else:
            runtime.redis_client().set(webhook_relay.HEARTBEAT_KEY, "1", ex=webhook_relay.HEARTBEAT_TTL_S)
    except Exception as exc:   # Redis down: the relay may start a second job, which is safe, only wasteful
        log.warning("delivery heartbeat not written", extra={"error": type(exc).__name__})


def drain_job() -> dict:
    """The RQ entry point (queue ``webhooks``), enqueued by the relay when deliveries are due."""
    totals = drain()
    if totals:
        log.info("webhook deliveries", extra=totals)
    return totals
