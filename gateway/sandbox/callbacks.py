"""Signed webhooks from the sandbox to the gateway: status updates, template updates.

Everything here runs off the request thread. A *chain* is the list of webhooks about
one message (sent → delivered → read); its steps go out one after the other, each
``delay`` after the previous one was answered, so they arrive in order. Several
chains run in parallel on a small pool of workers, each with its own
``requests.Session`` (keep-alive to the gateway).

Bodies are built when they are sent (fresh timestamps), serialised like Meta does
(compact JSON, non-ASCII escaped as ``\\uXXXX``) and signed over those exact bytes.
"""
from __future__ import annotations

import base64
import collections
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import urlencode

import requests

log = logging.getLogger("gateway.sandbox")

META_USER_AGENT = "facebookexternalua"
TWILIO_USER_AGENT = "TwilioProxy/1.1"


# -- signing ---------------------------------------------------------------------------------------------
def meta_dumps(doc: Any) -> bytes:
    """Meta's wire form: compact, every non-ASCII character escaped (what Meta signs)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def meta_signature(raw: bytes, app_secret: str) -> str:
    """X-Hub-Signature-256 value: 'sha256=' + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


def twilio_signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by name+value of each parameter, names sorted."""
    text = url + "".join(name + value for name, value in sorted(params, key=lambda p: (p[0], p[1])))
    return base64.b64encode(hmac.new(auth_token.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
                            ).decode("ascii")


# -- bodies ----------------------------------------------------------------------------------------------
def whatsapp_envelope(waba_id: str, value: dict, field_name: str = "messages") -> dict:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"value": value, "field": field_name}]}]}


def whatsapp_status_item(*, wamid: str, status: str, recipient_id: str, biz_opaque_callback_data: str | None = None,
                         errors: list | None = None, pricing: dict | None = None) -> dict:
    """One ``statuses[]`` item, stamped now."""
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time())),
                            "recipient_id": recipient_id}
    if pricing and status in ("sent", "delivered"):
        item["pricing"] = pricing
    if biz_opaque_callback_data is not None:
        item["biz_opaque_callback_data"] = biz_opaque_callback_data
    if errors:
        item["errors"] = errors
    return item


def whatsapp_statuses(*, phone_number_id: str, display_phone_number: str, waba_id: str, items: list) -> dict:
    return whatsapp_envelope(waba_id, {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
        "statuses": items})


def whatsapp_status(*, phone_number_id: str, display_phone_number: str, waba_id: str, **item: Any) -> dict:
    """A whole notification carrying one status (see whatsapp_status_item for the fields)."""
    return whatsapp_statuses(phone_number_id=phone_number_id, display_phone_number=display_phone_number,
                             waba_id=waba_id, items=[whatsapp_status_item(**item)])


def messenger_echo(*, page_id: str, psid: str, mid: str, message: dict) -> dict:
    """The message_echoes event Meta sends a subscribed page for what it sent: from the page, with the
    send's ``metadata`` and content."""
    echo: dict[str, Any] = {"is_echo": True, "app_id": 1517599999999999, "mid": mid}
    if isinstance(message.get("metadata"), str):
        echo["metadata"] = message["metadata"]
    if isinstance(message.get("text"), str):
        echo["text"] = message["text"]
    if isinstance(message.get("attachment"), dict):
        echo["attachments"] = [message["attachment"]]
    return {"sender": {"id": page_id}, "recipient": {"id": psid}, "timestamp": int(time.time() * 1000),
            "message": echo}


def messenger_item(*, platform: str, page_id: str, psid: str, status: str, mid: str) -> dict:
    """A delivery or read event (Messenger: watermarks; Instagram: messaging_seen with the mid), stamped now."""
    now = int(time.time() * 1000)
    event: dict[str, Any] = {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": now}
    if status == "delivered":
        event["delivery"] = {"mids": [mid], "watermark": now}
    elif platform == "instagram":
        event["read"] = {"mid": mid}
    else:
        event["read"] = {"watermark": now}
    return event


def messenger_envelope(*, platform: str, page_id: str, events: list) -> dict:
    return {"object": "instagram" if platform == "instagram" else "page",
            "entry": [{"id": page_id, "time": int(time.time() * 1000), "messaging": events}]}


def messenger_event(*, platform: str, page_id: str, psid: str, status: str, mid: str) -> dict:
    return messenger_envelope(platform=platform, page_id=page_id, events=[
        messenger_item(platform=platform, page_id=page_id, psid=psid, status=status, mid=mid)])


# -- delivery --------------------------------------------------------------------------------------------
@dataclass
class Request:
    url: str
    body: bytes
    headers: dict


@dataclass
class Step:
    """One webhook of a chain, made when it is due: ``build()`` gives the request (None: nothing to send).

    Batchable steps instead give ``item()`` (one status / event) and ``wrap(items)`` (the request carrying
    several); steps with the same ``batch_key`` that are due together go out in one POST, as Meta does
    under load (``statuses[]`` / ``messaging[]`` with several items)."""
    label: str                                  # e.g. "whatsapp:delivered"
    delay_s: float                              # after the previous step (or the submission)
    build: Callable[[], Request | None] | None = None
    provider_message_id: str | None = None
    on_sent: Callable[[int | None], None] | None = None   # told the HTTP status (None: no answer)
    batch_key: Any = None
    item: Callable[[], Any] | None = None
    wrap: Callable[[list], Request] | None = None
    window_s: float = 0.0     # batchable steps fall due on multiples of this, so neighbours share a POST


@dataclass
class Chain:
    steps: list[Step]
    generation: int = 0
    index: int = 0
    attempt: int = 0


def meta_request(url: str, doc: dict, app_secret: str) -> Request:
    raw = meta_dumps(doc)
    return Request(url, raw, {"Content-Type": "application/json", "User-Agent": META_USER_AGENT,
                              "X-Hub-Signature-256": meta_signature(raw, app_secret)})


def twilio_request(url: str, params: list[tuple[str, str]], auth_token: str) -> Request:
    params = sorted(params)
    return Request(url, urlencode(params).encode("ascii"),
                   {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                    "User-Agent": TWILIO_USER_AGENT, "X-Twilio-Signature": twilio_signature(url, params, auth_token),
                    "I-Twilio-Idempotency-Token": hashlib.sha1(urlencode(params).encode()).hexdigest()})


def _due(now: float, step: Step) -> float:
    due = now + step.delay_s
    if step.window_s > 0 and step.batch_key is not None:
        due = math.ceil(due / step.window_s) * step.window_s
    return due


class Dispatcher:
    """A timed queue of chains and a pool of workers posting them. Never blocks the caller."""

    def __init__(self, *, workers: int = 4, max_pending: int = 200_000, timeout_s: float = 10.0,
                 retries: int = 3, retry_base_s: float = 0.25, log_max: int = 10_000, batch_max: int = 50):
        self.workers = workers
        self.batch_max = max(1, batch_max)
        self.max_pending = max_pending
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_base_s = retry_base_s
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Chain]] = []
        self._seq = itertools.count()
        self._generation = 0
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._local = threading.local()
        self.log: collections.deque = collections.deque(maxlen=log_max)
        self._log_seq = itertools.count(1)
        self.counts = collections.Counter()
        self._busy = 0

    # -- lifecycle ---
    def start(self) -> None:
        with self._cond:
            if self._threads:
                return
            self._stopping = False
            for n in range(self.workers):
                t = threading.Thread(target=self._run, name=f"sandbox-callbacks-{n}", daemon=True)
                t.start()
                self._threads.append(t)

    def stop(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads = []

    def clear(self) -> int:
        """Forget every pending webhook (chains in flight stop after their current step)."""
        with self._cond:
            dropped = len(self._heap)
            self._heap.clear()
            self._generation += 1
            self.log.clear()
            self.counts.clear()
            return dropped

    # -- submission ---
    def submit(self, steps: list[Step]) -> bool:
        if not steps:
            return True
        with self._cond:
            if len(self._heap) >= self.max_pending:
                self.counts["dropped"] += 1
                return False
            chain = Chain(steps, generation=self._generation)
            heapq.heappush(self._heap, (_due(time.monotonic(), steps[0]), next(self._seq), chain))
            self.counts["chains"] += 1
            self._cond.notify()
        return True

    def _push(self, due: float, chain: Chain) -> None:
        with self._cond:
            if chain.generation != self._generation or self._stopping:
                return
            heapq.heappush(self._heap, (due, next(self._seq), chain))
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + self._busy

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once no webhook is pending or in flight (tests, `say`-then-check flows)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.005)
        return self.pending() == 0

    def stats(self) -> dict:
        with self._cond:
            out = dict(self.counts)
            out["pending"] = len(self._heap)
            out["in_flight"] = self._busy
        for key in ("chains", "sent", "ok", "failed", "retried", "dropped", "batched"):
            out.setdefault(key, 0)
        return out

    def history(self, since: int = 0, limit: int | None = None) -> list[dict]:
        with self._cond:
            items = [e for e in self.log if e["seq"] > since]
        return items[:limit] if limit else items

    # -- workers ---
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False     # no proxy / netrc lookups from the environment for local callbacks
        return session

    def _next(self) -> list[Chain] | None:
        """The next due chain, plus other due chains whose current step shares its batch key."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    chain = heapq.heappop(self._heap)[2]
                    if chain.generation != self._generation:
                        continue
                    batch = [chain]
                    key = chain.steps[chain.index].batch_key
                    if key is not None and self.batch_max > 1:
                        aside = []
                        looked = 0
                        while (self._heap and self._heap[0][0] <= now and len(batch) < self.batch_max
                               and looked < 4 * self.batch_max):
                            entry = heapq.heappop(self._heap)
                            looked += 1
                            other = entry[2]
                            if other.generation != self._generation:
                                continue
                            if other.steps[other.index].batch_key == key:
                                batch.append(other)
                            else:
                                aside.append(entry)
                        for entry in aside:
                            heapq.heappush(self._heap, entry)
                    self._busy += 1
                    return batch
                self._cond.wait(self._heap[0][0] - now if self._heap else None)

    def _run(self) -> None:
        while True:
            batch = self._next()
            if batch is None:
                return
            try:
                self._post(batch)
            except Exception:   # a bug here must not kill the worker
                log.exception("sandbox: callback step failed")
            finally:
                with self._cond:
                    self._busy -= 1

    def _post(self, batch: list[Chain]) -> None:
        steps = [chain.steps[chain.index] for chain in batch]
        first = steps[0]
        if first.wrap is not None and first.item is not None:
            req = first.wrap([step.item() for step in steps])
        else:
            req = first.build() if first.build is not None else None
        status: int | None = None
        error: str | None = None
        attempt = batch[0].attempt
        retryable = False
        if req is not None:
            try:
                resp = self._session().post(req.url, data=req.body, headers=req.headers, timeout=self.timeout_s,
                                            allow_redirects=False)
                status = resp.status_code
                resp.content          # read to the end: the connection goes back to the pool for reuse
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
            retryable = status is None or status == 429 or status >= 500
            retry = retryable and attempt < self.retries
            with self._cond:
                self.counts["sent"] += 1
                if status is not None and 200 <= status < 300:
                    self.counts["ok"] += 1
                elif retry:
                    self.counts["retried"] += 1
                else:
                    self.counts["failed"] += 1
                if len(batch) > 1:
                    self.counts["batched"] += len(batch)
                self.log.append({"seq": next(self._log_seq), "at": round(time.monotonic() * 1000, 3),
                                 "event": first.label, "url": req.url,
                                 "provider_message_id": first.provider_message_id,
                                 "provider_message_ids": [step.provider_message_id for step in steps],
                                 "batch_size": len(batch), "http_status": status, "error": error,
                                 "attempt": attempt + 1})
        now = time.monotonic()
        for chain, step in zip(batch, steps):
            if retryable and chain.attempt < self.retries:
                chain.attempt += 1
                self._push(now + self.retry_base_s * 2 ** (chain.attempt - 1), chain)
                continue
            if step.on_sent is not None:
                try:
                    step.on_sent(status)
                except Exception:
                    log.exception("sandbox: on_sent hook failed")
            chain.index += 1
            chain.attempt = 0
            if chain.index < len(chain.steps):
                self._push(_due(now, chain.steps[chain.index]), chain)
