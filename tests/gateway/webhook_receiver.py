"""A CRM's webhook endpoint for tests: a real HTTP/1.1 server on loopback that records what it is sent and
answers as scripted (status, headers, a delay), so retries, Retry-After, 410 and hangs can be played."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hit:
    def __init__(self, path: str, headers: dict, body: bytes, at: float):
        self.path, self.headers, self.body, self.at = path, headers, body, at

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """``answer(hit, n)`` returns (status, headers, delay_s) for the n-th request (from 0); default 200."""

    def __init__(self, answer=None):
        self.answer = answer or (lambda hit, n: (200, {}, 0))
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:       # the sender went away mid-request: nothing was delivered
                    self.close_connection = True
                    return
                hit = Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                with outer.lock:
                    n = len(outer.hits)
                    outer.hits.append(hit)
                status, headers, delay = outer.answer(hit, n)
                if delay:
                    time.sleep(delay)
                payload = b'{"ok":true}'
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass    # a sender killed mid-request (a test doing it on purpose) is not news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def bodies(self) -> list[dict]:
        with self.lock:
            return [h.json for h in self.hits]

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Hit]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.hits) >= n:
                    return list(self.hits)
            time.sleep(0.02)
        raise AssertionError(f"the receiver got {len(self.hits)} requests, not {n}, within {timeout} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
