"""Twilio sending against a real HTTP server on 127.0.0.1 that records requests. No database."""
from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from gateway import provider_http
from gateway.providers import OutboundMessage, SendResult
from webhooks.twilio import PROVIDER
from webhooks.twilio import send as send_mod

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
TOKEN = "auth-token-1"
CREDS = {"account_sid": ACCOUNT, "auth_token": TOKEN}
NUMBER = "+14155238886"
CUSTOMER = "+34600000001"
SID = "SM0123456789abcdef0123456789abcdef"


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class Twilio:
    """A fake Messages API: records every request, answers with what the test queued (else 201)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.replies: list[tuple[int, object, dict, float]] = []
        self.lock = threading.Lock()
        self.url = ""

    def reply(self, status: int, body: object = None, headers: dict | None = None, delay: float = 0.0):
        self.replies.append((status, body, headers or {}, delay))

    def __call__(self, environ, start_response):
        request = Request(environ)
        auth = request.authorization
        with self.lock:
            self.requests.append({"method": request.method, "path": request.path,
                                  "content_type": request.mimetype,
                                  "auth": (auth.username, auth.password) if auth else None,
                                  "form": list(request.form.items(multi=True))})
            status, body, headers, delay = (self.replies.pop(0) if self.replies else
                                            (201, {"sid": SID, "status": "queued"}, {}, 0.0))
        if delay:
            time.sleep(delay)
        if isinstance(body, (bytes, str)):
            response = Response(body, status=status, headers=headers)
        else:
            response = Response(json.dumps(body) if body is not None else "", status=status, headers=headers,
                                content_type="application/json")
        return response(environ, start_response)


@pytest.fixture(scope="module")
def _server():
    twilio = Twilio()
    server = make_server("127.0.0.1", 0, twilio, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    twilio.url = f"http://127.0.0.1:{server.server_port}"
    yield twilio
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def twilio(_server):
    _server.requests.clear()
    _server.replies.clear()
    return _server


def channel(twilio: Twilio, external_id: str = NUMBER, **settings) -> dict:
    return {"id": "c1", "external_id": external_id, "settings": {"api_base_url": twilio.url, **settings}}


def msg(kind: str = "text", content: dict | None = None, to: str = CUSTOMER) -> OutboundMessage:
    if content is None:
        content = {"body": "Your order has shipped", "preview_url": False}
    return OutboundMessage(id="msg_01", to=to, to_kind="phone", kind=kind, content=content)


def send(twilio: Twilio, message: OutboundMessage | None = None, external_id: str = NUMBER, **settings):
    return PROVIDER.send(message or msg(), channel(twilio, external_id, **settings), CREDS)


def twilio_error(code: int, message: str, status: int = 400) -> dict:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


# -- request shape ---------------------------------------------------------------------------

def test_sms_text_with_basic_auth(twilio):
    assert send(twilio) == SendResult("sent", provider_message_id=SID)
    [request] = twilio.requests
    assert request["method"] == "POST"
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert request["auth"] == (ACCOUNT, TOKEN)
    assert request["content_type"] == "application/x-www-form-urlencoded"
    assert request["form"] == [("To", CUSTOMER), ("From", NUMBER), ("Body", "Your order has shipped")]


def test_default_endpoint():
    assert send_mod.endpoint({"external_id": NUMBER, "settings": {}}, ACCOUNT) == \
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


def test_whatsapp_channel_by_setting(twilio):
    send(twilio, channel="whatsapp")
    form = dict(twilio.requests[0]["form"])
    assert form["To"] == f"whatsapp:{CUSTOMER}" and form["From"] == f"whatsapp:{NUMBER}"


def test_whatsapp_channel_by_external_id(twilio):
    send(twilio, external_id=f"whatsapp:{NUMBER}")
    send(twilio, msg(to=f"whatsapp:{CUSTOMER}"), external_id=f"whatsapp:{NUMBER}")
    for request in twilio.requests:
        form = dict(request["form"])
        assert form["To"] == f"whatsapp:{CUSTOMER}" and form["From"] == f"whatsapp:{NUMBER}"


def test_messaging_service(twilio):
    service = "MG0123456789abcdef0123456789abcdef"
    send(twilio, external_id=service)
    send(twilio, external_id=service, channel="whatsapp")
    sms, whatsapp = (request["form"] for request in twilio.requests)
    assert sms == [("To", CUSTOMER), ("MessagingServiceSid", service), ("Body", "Your order has shipped")]
    assert dict(whatsapp)["To"] == f"whatsapp:{CUSTOMER}" and "From" not in dict(whatsapp)


def test_status_callback_setting(twilio):
    send(twilio, status_callback_url="https://gw.example/webhooks/twilio")
    assert ("StatusCallback", "https://gw.example/webhooks/twilio") in twilio.requests[0]["form"]


@pytest.mark.parametrize("kind", ["image", "video", "audio", "document", "sticker"])
def test_media_by_link(twilio, kind):
    assert send(twilio, msg(kind, {"link": "https://cdn.example/f.bin", "caption": "here it is"})).outcome == "sent"
    assert twilio.requests[0]["form"] == [("To", CUSTOMER), ("From", NUMBER), ("Body", "here it is"),
                                          ("MediaUrl", "https://cdn.example/f.bin")]


def test_media_without_caption_has_no_body(twilio):
    send(twilio, msg("image", {"link": "https://cdn.example/a.jpg"}))
    assert twilio.requests[0]["form"] == [("To", CUSTOMER), ("From", NUMBER), ("MediaUrl", "https://cdn.example/a.jpg")]


def test_media_by_provider_id_is_unsupported(twilio):
    result = send(twilio, msg("image", {"media_id": "123"}))
    assert result.outcome == "failed" and result.error_code == "unsupported" and "by URL only" in result.reason
    assert twilio.requests == []


def test_body_limit_is_1600_characters(twilio):
    assert send(twilio, msg(content={"body": "a" * 1600})).outcome == "sent"
    result = send(twilio, msg(content={"body": "a" * 1601}))
    assert result.outcome == "failed" and "at most 1600" in result.reason
    assert len(twilio.requests) == 1


@pytest.mark.parametrize("kind,content,words", [
    ("interactive", {"type": "button", "body": "b", "buttons": [{"id": "1", "title": "ok"}]}, "not supported"),
    ("location", {"latitude": 1, "longitude": 2}, "not supported"),
    ("contacts", {"contacts": []}, "not supported"),
    ("reaction", {"message_id": "SM1", "emoji": "👍"}, "not supported"),
    ("template", {"name": "hello", "language": "en", "components": []}, "ContentSid"),
])
def test_unsupported_kinds_fail_without_a_request(twilio, kind, content, words):
    result = send(twilio, msg(kind, content))
    assert result.outcome == "failed" and result.error_code == "unsupported" and words in result.reason
    assert twilio.requests == []


def test_read_is_sent_without_a_request(twilio):
    assert send(twilio, msg("read", {"message_id": "SM1"})) == SendResult("sent")
    assert twilio.requests == []


def test_missing_credentials_are_a_channel_problem(twilio):
    result = PROVIDER.send(msg(), channel(twilio), {"account_sid": ACCOUNT})
    assert result.outcome == "failed" and result.channel_problem and "auth_token" in result.reason
    assert twilio.requests == []


# -- classification --------------------------------------------------------------------------

@pytest.mark.parametrize("status,body,headers,delay_s,code", [
    (429, twilio_error(20429, "Too Many Requests", 429), {}, 1.0, "20429"),
    (429, twilio_error(20429, "Too Many Requests", 429), {"Retry-After": "4"}, 4.0, "20429"),
    (429, "", {}, 1.0, "429"),
    (400, twilio_error(21611, "This 'From' number has exceeded the maximum number of queued messages"), {}, 60.0,
     "21611"),
    (500, twilio_error(20500, "Internal Server Error", 500), {}, 5.0, "20500"),
    (503, "<html>unavailable</html>", {"Retry-After": "2"}, 2.0, "503"),
])
def test_retryable_answers(twilio, status, body, headers, delay_s, code):
    twilio.reply(status, body, headers)
    result = send(twilio)
    assert result.outcome == "retry", result
    assert result.retry_after_s == delay_s and result.error_code == code


def test_retry_after_as_an_http_date(twilio):
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    twilio.reply(429, twilio_error(20429, "Too Many Requests", 429), {"Retry-After": format_datetime(when, usegmt=True)})
    result = send(twilio)
    assert result.outcome == "retry" and 10 <= result.retry_after_s <= 31


def test_stop_is_an_opt_out(twilio):
    twilio.reply(400, twilio_error(21610, "Attempt to send to unsubscribed recipient"))
    result = send(twilio)
    assert result.outcome == "failed" and result.opted_out and not result.channel_problem
    assert result.error_code == "21610" and "the recipient replied STOP" in result.reason


@pytest.mark.parametrize("code,message,words", [
    (21211, f"The 'To' number {CUSTOMER} is not a valid phone number.", "not a valid phone number"),
    (21614, f"'To' number {CUSTOMER} is not a valid mobile number", "not a mobile number"),
    (21408, f"Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {CUSTOMER}",
     "Geo permissions"),
    (21612, f"The 'To' phone number: {CUSTOMER}, is not currently reachable using the 'From' phone number: {NUMBER}",
     "cannot route"),
    (21619, "A text message body or media urls must be specified.", "needs a text body"),
])
def test_permanent_refusals_have_readable_reasons(twilio, code, message, words):
    twilio.reply(400, twilio_error(code, message))
    result = send(twilio)
    assert result.outcome == "failed" and result.error_code == str(code)
    assert not result.opted_out and not result.channel_problem
    assert words in result.reason
    assert CUSTOMER not in result.reason and NUMBER not in result.reason


@pytest.mark.parametrize("status,body", [
    (401, twilio_error(20003, "Authenticate", 401)),
    (401, ""),
    (404, twilio_error(20404, f"The requested resource /2010-04-01/Accounts/{ACCOUNT}/Messages.json was not found",
                       404)),
    (400, twilio_error(21606, f"The From phone number {NUMBER} is not a valid, SMS-capable inbound phone number")),
])
def test_credentials_and_sender_problems_pause_the_channel(twilio, status, body):
    twilio.reply(status, body)
    result = send(twilio)
    assert result.outcome == "failed" and result.channel_problem
    assert NUMBER not in result.reason


def test_auth_failure_says_what_to_check(twilio):
    twilio.reply(401, twilio_error(20003, "Authenticate", 401))
    result = send(twilio)
    assert result.error_code == "20003" and "check the channel's account_sid/auth_token" in result.reason


def test_unknown_4xx_carries_twilios_message_without_numbers_or_text(twilio):
    text = "Your secret code is ready"
    twilio.reply(400, twilio_error(21999, f"Message '{text}' to {CUSTOMER} from {NUMBER} was refused by policy"))
    result = send(twilio, msg(content={"body": text}))
    assert result.outcome == "failed" and result.error_code == "21999" and not result.channel_problem
    assert "refused by policy" in result.reason
    for private in (text, CUSTOMER, NUMBER, CUSTOMER[1:]):
        assert private not in result.reason


def test_2xx_without_sid_is_unknown(twilio):
    twilio.reply(201, {"status": "queued"})
    result = send(twilio)
    assert result.outcome == "unknown" and "no message sid" in result.reason


# -- network ---------------------------------------------------------------------------------

def test_read_timeout_is_unknown(twilio, monkeypatch):
    monkeypatch.setattr(send_mod, "READ_TIMEOUT_S", 0.3)
    twilio.reply(201, {"sid": SID}, delay=1.0)
    result = send(twilio)
    assert result.outcome == "unknown" and "may have been sent" in result.reason


def test_connection_refused_is_retry():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = PROVIDER.send(msg(), {"external_id": NUMBER, "settings": {"api_base_url": f"http://127.0.0.1:{port}"}},
                           CREDS)
    assert result.outcome == "retry" and result.retry_after_s == send_mod.NETWORK_DELAY_S
    assert "nothing was sent" in result.reason


@pytest.fixture
def dropping_server():
    """Reads each request whole, then closes the connection without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(rest) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    rest += chunk

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_connection_dropped_after_sending_is_unknown(dropping_server):
    result = PROVIDER.send(msg(), {"external_id": NUMBER, "settings": {"api_base_url": dropping_server}}, CREDS)
    assert result.outcome == "unknown" and "may have been sent" in result.reason


def test_network_errors_are_classified():
    assert send_mod.network_outcome(requests.exceptions.ConnectTimeout("connect timed out")).outcome == "retry"
    refused = requests.exceptions.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused")))
    assert send_mod.network_outcome(refused).outcome == "retry"
    aborted = requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))
    assert send_mod.network_outcome(aborted).outcome == "unknown"
    assert send_mod.network_outcome(requests.exceptions.ReadTimeout("x")).outcome == "unknown"
    bad = send_mod.network_outcome(requests.exceptions.InvalidURL("x"))
    assert bad.outcome == "failed" and bad.channel_problem


# -- connection reuse ------------------------------------------------------------------------

class KeepAliveHandler(BaseHTTPRequestHandler):
    """Werkzeug's development server closes every connection (``Connection: close``), so the
    keep-alive test uses the standard library's HTTP/1.1 server, which keeps them open."""
    protocol_version = "HTTP/1.1"
    ports: list = []
    auths: list = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).ports.append(self.client_address[1])
        type(self).auths.append(self.headers.get("Authorization"))
        body = json.dumps({"sid": f"SM{len(self.ports)}"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_keep_alive_reuses_the_connection():
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        where = {"external_id": NUMBER, "settings": {"api_base_url": f"http://127.0.0.1:{server.server_port}"}}
        results = [PROVIDER.send(msg(), where, CREDS) for _ in range(3)]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert [r.provider_message_id for r in results] == ["SM1", "SM2", "SM3"]
    assert len(set(KeepAliveHandler.ports)) == 1     # one client socket: the pool kept it open
    assert all(a and a.startswith("Basic ") for a in KeepAliveHandler.auths)
    adapter = send_mod.session().get_adapter("https://api.twilio.com")
    assert adapter._pool_maxsize == send_mod.POOL_MAXSIZE


def test_session_is_per_process(monkeypatch):
    first = send_mod.session()
    assert send_mod.session() is first
    monkeypatch.setattr(provider_http.os, "getpid", lambda: -1)   # as seen from a forked child
    assert send_mod.session() is not first
