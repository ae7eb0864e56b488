"""Helpers for the sandbox tests (imported by the test modules; fixtures live in conftest.py)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time

from werkzeug.serving import WSGIRequestHandler, make_server

APP_SECRET = "sandbox-test-app-secret"
TWILIO_SID = "AC" + "a" * 32
TWILIO_TOKEN = "sandbox-test-twilio-token"


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class Receiver:
    """Records each request: method, path, full URL as called, headers, raw body, monotonic time."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self._cond = threading.Condition()
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def _app(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        query = environ.get("QUERY_STRING")
        url = f"http://{environ['HTTP_HOST']}{environ['PATH_INFO']}" + (f"?{query}" if query else "")
        with self._cond:
            self.requests.append({"method": environ["REQUEST_METHOD"], "path": environ["PATH_INFO"], "url": url,
                                  "headers": headers, "body": body, "at": time.monotonic()})
            self._cond.notify_all()
        status = self.status
        start_response(f"{status} X", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return [b""]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} webhooks, got {len(self.requests)}: "
                                         f"{[r['path'] for r in self.requests]}")
                self._cond.wait(left)
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()



def cloud_send(http, sandbox, body, *, phone_number_id="1029384756", token="EAAG-test", **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.post(f"{sandbox.url}/v24.0/{phone_number_id}/messages", json=body, headers=headers, **kw)


def text_body(to="+34600000001", text="Hola", **extra):
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": text}, **extra}


def configure(http, sandbox, **settings):
    resp = http.post(f"{sandbox.url}/_sandbox/config", json=settings)
    assert resp.status_code == 200, resp.text
    return resp.json()


def meta_signed(request, secret=APP_SECRET) -> bool:
    """Independent check of X-Hub-Signature-256 over the raw bytes received."""
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request["headers"].get("X-Hub-Signature-256", ""))


def twilio_signed(request, token=TWILIO_TOKEN) -> bool:
    """Independent check of X-Twilio-Signature: URL + sorted name+value pairs, HMAC-SHA1, base64."""
    from urllib.parse import parse_qsl
    pairs = sorted(parse_qsl(request["body"].decode(), keep_blank_values=True))
    text = request["url"] + "".join(k + v for k, v in pairs)
    expected = base64.b64encode(hmac.new(token.encode(), text.encode(), hashlib.sha1).digest()).decode()
    return hmac.compare_digest(expected, request["headers"].get("X-Twilio-Signature", ""))
