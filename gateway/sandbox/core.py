"""The sandbox's shared pieces: its state object and a small request type the handlers work on.

The provider handlers (cloud, messenger, twilio) are plain functions of
``(sandbox, Req)`` returning ``(status, body, headers)``, so the hot send paths can run
as bare WSGI (no Flask request machinery) and stay fast.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from gateway.sandbox.callbacks import Dispatcher
from gateway.sandbox.faults import Faults
from gateway.sandbox.store import Store

Response = tuple[int, Any, dict | None]   # status, body (dict → JSON; bytes as is), extra headers

# Settings make_app/serve accept besides the fault/callback settings (faults.DEFAULTS).
STARTUP_KEYS = {"seed", "history_max", "callback_workers", "callback_retries", "callback_timeout_s",
                "callback_batch_max", "media_max_bytes", "max_pending_callbacks"}


class Sandbox:
    """Everything one running sandbox holds: settings and faults, what it received, the webhook dispatcher."""

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        self.startup = {k: config.pop(k) for k in list(config) if k in STARTUP_KEYS}
        self.initial = {k: v for k, v in config.items() if v is not None}
        self.faults = Faults(self.initial, seed=self.startup.get("seed"))
        self.store = Store(history_max=self.startup.get("history_max", 100_000),
                           media_max_bytes=self.startup.get("media_max_bytes", 256 * 1024 * 1024))
        self.dispatcher = Dispatcher(workers=self.startup.get("callback_workers", 4),
                                     retries=self.startup.get("callback_retries", 3),
                                     timeout_s=self.startup.get("callback_timeout_s", 10.0),
                                     max_pending=self.startup.get("max_pending_callbacks", 200_000),
                                     batch_max=self.startup.get("callback_batch_max", 50))
        self.stopping = threading.Event()
        self.dispatcher.start()

    def sleep(self, seconds: float) -> None:
        """Sleep in a request thread; cut short when the sandbox stops."""
        if seconds > 0:
            self.stopping.wait(seconds)

    def reset(self) -> None:
        """Back to the settings it started with; nothing received, nothing pending."""
        self.faults.drop(None)
        if self.initial:
            self.faults.update(None, self.initial)
        self.faults.reseed(self.startup.get("seed"))
        self.store.clear_all()
        self.dispatcher.clear()

    def close(self) -> None:
        self.stopping.set()
        self.dispatcher.stop()


class Req:
    """The parts of a WSGI request the handlers need."""
    __slots__ = ("environ", "method", "path", "body", "_query", "received_at")

    def __init__(self, environ: dict, body: bytes):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.path = environ.get("PATH_INFO", "")
        self.body = body
        self._query = None
        self.received_at = round(time.monotonic() * 1000, 3)

    def header(self, name: str) -> str | None:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            return self.environ.get(key)
        return self.environ.get("HTTP_" + key)

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.environ.get("QUERY_STRING", ""), keep_blank_values=True)
        return self._query

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def host_url(self) -> str:
        host = self.environ.get("HTTP_HOST") or f"{self.environ.get('SERVER_NAME')}:{self.environ.get('SERVER_PORT')}"
        return f"{self.environ.get('wsgi.url_scheme', 'http')}://{host}"

    def json(self) -> Any:
        """The body as JSON, or raises ValueError."""
        return json.loads(self.body)

    def bearer(self) -> str | None:
        auth = self.header("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None


def read_body(environ: dict, limit: int = 64 * 1024 * 1024) -> bytes:
    """The request body: Content-Length bytes (reads may come back short), or to the end of a chunked body."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            left = min(int(length), limit)
        except ValueError:
            return b""
        parts = []
        while left > 0:
            chunk = stream.read(left)
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)
    if environ.get("wsgi.input_terminated"):
        return stream.read(limit)
    return b""
