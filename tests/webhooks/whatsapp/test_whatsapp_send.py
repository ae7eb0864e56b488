"""Sending through the Cloud API against a local HTTP server that answers like Meta. No database."""
from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from urllib3.exceptions import MaxRetryError
from urllib3.exceptions import SSLError as Urllib3SSLError
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from gateway import provider_http
from gateway.providers import OutboundMessage, SendResult
from webhooks.whatsapp import PROVIDER
from webhooks.whatsapp import errors as wa_errors
from webhooks.whatsapp import send as wa_send

TOKEN = "EAAG-send-token"
PHONE_ID = "1122334455667"
CUSTOMER = "+34600000001"
RESPONSES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "whatsapp_api_responses"


class FakeMeta:
    """``POST /<version>/<phone-number-id>/messages``: records each request, answers like Graph.

    Default answer: B2's 200 with a fresh wamid, or ``{"success": true}`` for a read receipt.
    ``answer = (status, body, headers)`` overrides it; ``delay`` stalls every answer.
    """

    def __init__(self):
        self.requests: list[dict] = []
        self.answer: tuple[int, object, dict] | None = None
        self.delay = 0.0
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def reset(self):
        self.requests.clear()
        self.answer, self.delay = None, 0.0

    def app(self, environ, start_response):
        request = Request(environ)
        body = json.loads(request.get_data() or b"null")
        self.requests.append({"method": request.method, "path": request.path,
                              "auth": request.headers.get("Authorization"),
                              "content_type": request.headers.get("Content-Type"),
                              "port": environ.get("REMOTE_PORT"), "body": body})
        if self.delay:
            time.sleep(self.delay)
        if self.answer is not None:
            status, payload, headers = self.answer
        elif isinstance(body, dict) and body.get("status") == "read":
            status, payload, headers = 200, {"success": True}, {}
        else:
            status, headers = 200, {}
            payload = {"messaging_product": "whatsapp",
                       "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                       "messages": [{"id": f"wamid.TEST{len(self.requests)}", "message_status": "accepted"}]}
        if isinstance(payload, (dict, list)):
            payload, headers = json.dumps(payload), {"Content-Type": "application/json", **headers}
        return Response(payload, status=status, headers=headers)(environ, start_response)

    def channel(self, **settings):
        return {"external_id": PHONE_ID, "settings": {"api_base_url": self.base, **settings}}

    @property
    def last(self) -> dict:
        assert self.requests, "no request reached the fake"
        return self.requests[-1]


@pytest.fixture(scope="module")
def _server():
    fake = FakeMeta()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def meta(_server):
    _server.reset()
    yield _server
    _server.reset()


def msg(kind: str, content: dict, *, to: str = CUSTOMER, to_kind: str = "phone", reply_to: str | None = None,
        id: str = "msg_01") -> OutboundMessage:
    return OutboundMessage(id=id, to=to, to_kind=to_kind, kind=kind, content=content, reply_to=reply_to)


def send(meta, message: OutboundMessage, **settings) -> SendResult:
    result = PROVIDER.send(message, meta.channel(**settings), {"access_token": TOKEN})
    assert isinstance(result, SendResult)
    return result


def envelope(kind: str, payload, **extra) -> dict:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600000001",
            "type": kind, kind: payload, **extra, "biz_opaque_callback_data": "msg_01"}


# -- bodies (protocols.md B1) -------------------------------------------------------------------------

TEMPLATE_COMPONENTS = [
    {"type": "header", "parameters": [{"type": "image", "image": {"id": "4490"}}]},
    {"type": "body", "parameters": [
        {"type": "text", "text": "Ana"},
        {"type": "currency", "currency": {"fallback_value": "$10", "code": "USD", "amount_1000": 10000}}]},
    {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "YES"}]},
]
CARD = {"name": {"formatted_name": "Ana Lima", "first_name": "Ana"}, "phones": [{"phone": "+5511999990000"}]}

BODIES = {
    "text": (msg("text", {"body": "hello"}),
             envelope("text", {"body": "hello", "preview_url": False})),
    "text_preview_reply": (msg("text", {"body": "see https://example.org", "preview_url": True}, reply_to="wamid.IN1"),
                           envelope("text", {"body": "see https://example.org", "preview_url": True},
                                    context={"message_id": "wamid.IN1"})),
    "image_link": (msg("image", {"link": "https://cdn.example.org/a.jpg", "caption": "look"}),
                   envelope("image", {"link": "https://cdn.example.org/a.jpg", "caption": "look"})),
    "video_id": (msg("video", {"media_id": "1234567", "caption": "clip"}),
                 envelope("video", {"id": "1234567", "caption": "clip"})),
    "audio_no_caption": (msg("audio", {"media_id": "777", "caption": "ignored"}),
                         envelope("audio", {"id": "777"})),
    "document": (msg("document", {"link": "https://cdn.example.org/r.pdf", "filename": "r.pdf", "caption": "bill"}),
                 envelope("document", {"link": "https://cdn.example.org/r.pdf", "caption": "bill",
                                       "filename": "r.pdf"})),
    "sticker": (msg("sticker", {"media_id": "555"}), envelope("sticker", {"id": "555"})),
    "template": (msg("template", {"name": "order_update", "language": "en_US", "components": TEMPLATE_COMPONENTS}),
                 envelope("template", {"name": "order_update", "language": {"code": "en_US"},
                                       "components": TEMPLATE_COMPONENTS})),
    "template_no_params": (msg("template", {"name": "hello_world", "language": {"code": "en_US"}}),
                           envelope("template", {"name": "hello_world", "language": {"code": "en_US"}})),
    "buttons": (msg("interactive", {"type": "BUTTON", "header": "Order 42", "body": "Confirm?", "footer": "Shop",
                                    "buttons": [{"id": "yes", "title": "Yes"}, {"id": 2, "title": "No"}]}),
                envelope("interactive", {
                    "type": "button", "header": {"type": "text", "text": "Order 42"}, "body": {"text": "Confirm?"},
                    "footer": {"text": "Shop"},
                    "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                                           {"type": "reply", "reply": {"id": "2", "title": "No"}}]}})),
    "list": (msg("interactive", {"type": "list", "body": "Pick one", "button": "Menu",
                                 "sections": [{"title": "Pizza", "rows": [
                                     {"id": "p1", "title": "Margherita", "description": "tomato, basil"},
                                     {"id": "p2", "title": "Diavola"}]}]}),
             envelope("interactive", {
                 "type": "list", "body": {"text": "Pick one"},
                 "action": {"button": "Menu", "sections": [{"title": "Pizza", "rows": [
                     {"id": "p1", "title": "Margherita", "description": "tomato, basil"},
                     {"id": "p2", "title": "Diavola"}]}]}})),
    "location": (msg("location", {"latitude": -23.55, "longitude": -46.63, "name": "Office", "address": "Av. 1"}),
                 envelope("location", {"latitude": -23.55, "longitude": -46.63, "name": "Office",
                                       "address": "Av. 1"})),
    "contacts": (msg("contacts", {"contacts": [CARD]}), envelope("contacts", [CARD])),
    "reaction": (msg("reaction", {"message_id": "wamid.IN1", "emoji": "👍"}, reply_to="wamid.IN1"),
                 envelope("reaction", {"message_id": "wamid.IN1", "emoji": "👍"})),
    "unreact": (msg("reaction", {"message_id": "wamid.IN1", "emoji": ""}),
                envelope("reaction", {"message_id": "wamid.IN1", "emoji": ""})),
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_body_shape_for_every_kind(meta, name):
    message, expected = BODIES[name]
    result = send(meta, message)
    assert result == SendResult("sent", provider_message_id="wamid.TEST1")
    got = meta.last
    assert got["method"] == "POST" and got["path"] == f"/v24.0/{PHONE_ID}/messages"
    assert got["auth"] == f"Bearer {TOKEN}" and got["content_type"] == "application/json"
    assert got["body"] == expected


def test_read_receipt_body_and_success_answer(meta):
    result = send(meta, msg("read", {"message_id": "wamid.IN9"}))
    assert result == SendResult("sent", provider_message_id=None)
    assert meta.last["body"] == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN9"}


def test_bsuid_recipient_goes_in_to(meta):
    send(meta, msg("text", {"body": "hi"}, to="US.13491208655302741918", to_kind="bsuid"))
    assert meta.last["body"]["to"] == "US.13491208655302741918"
    assert "recipient" not in meta.last["body"]


def test_url_uses_channel_settings(meta):
    send(meta, msg("text", {"body": "hi"}), graph_version="v21.0", api_base_url=meta.base + "/")
    assert meta.last["path"] == f"/v21.0/{PHONE_ID}/messages"
    assert wa_send.endpoint({"external_id": PHONE_ID, "settings": {}}) == \
        f"https://graph.facebook.com/v24.0/{PHONE_ID}/messages"


@pytest.mark.parametrize("message, words", [
    (msg("text", {"body": ""}), "'body'"),
    (msg("text", {}), "'body'"),
    (msg("image", {"caption": "no file"}), "'link' or 'media_id'"),
    (msg("template", {"name": "x"}), "'language'"),
    (msg("interactive", {"type": "button", "body": "b", "buttons": []}), "'buttons'"),
    (msg("interactive", {"type": "list", "body": "b", "sections": [{"rows": []}], "button": "Menu"}), "'rows'"),
    (msg("interactive", {"type": "flow", "body": "b"}), "'button' or 'list'"),
    (msg("location", {"latitude": "north", "longitude": 1}), "'latitude'"),
    (msg("contacts", {"contacts": []}), "'contacts'"),
    (msg("reaction", {"message_id": "wamid.1"}), "'emoji'"),
    (msg("read", {}), "read receipt"),
    (msg("carousel", {}), "no message kind"),
    (msg("text", {"body": "hi"}, to="+34 600-000-001x"), "not an E.164"),
    (msg("text", {"body": "hi"}, to="2893749823", to_kind="psid"), "psid"),
])
def test_unbuildable_message_fails_without_a_request(meta, message, words):
    result = send(meta, message)
    assert result.outcome == "failed" and not result.channel_problem and words in result.reason
    assert "600" not in result.reason          # the recipient is never echoed
    assert meta.requests == []


@pytest.mark.parametrize("credentials, channel", [
    ({}, {"external_id": PHONE_ID, "settings": {}}),
    ({"access_token": "  "}, {"external_id": PHONE_ID, "settings": {}}),
    ({"access_token": TOKEN}, {"settings": {}}),
])
def test_missing_token_or_phone_number_id_is_a_channel_problem(credentials, channel):
    result = PROVIDER.send(msg("text", {"body": "hi"}), channel, credentials)
    assert result.outcome == "failed" and result.channel_problem


# -- classification (protocols.md B3) -----------------------------------------------------------------

def error_body(code, message="(#%s) error", details=None, **extra) -> dict:
    error = {"message": message % code if "%s" in message else message, "type": "OAuthException",
             "code": code, "fbtrace_id": "AbC123", **extra}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


def fixture_error(name: str) -> dict:
    path = RESPONSES / name
    if not path.is_file():
        pytest.skip(f"shared fixture {name} not found in {RESPONSES}")
    return {"error": json.loads(path.read_text(encoding="utf-8"))}


def test_fixture_131047_window_closed(meta):
    meta.answer = (400, fixture_error("pywa_error_obj_131047_reengagement.json"), {})
    result = send(meta, msg("text", {"body": "hi"}))
    assert result.outcome == "failed" and result.error_code == "131047"
    assert "24-hour" in result.reason and "template" in result.reason
    assert "more than 24 hours have passed" in result.reason      # error_data.details, not the title
    assert not result.opted_out and not result.channel_problem


def test_fixture_131053_media_upload(meta):
    meta.answer = (400, fixture_error("pywa_error_obj_131053_media_upload.json"), {})
    result = send(meta, msg("image", {"link": "https://cdn.example.org/a.jpg"}))
    assert result.outcome == "failed" and result.error_code == "131053"
    assert "http code 429" in result.reason and "media" in result.reason


def test_fixture_190_expired_token_is_a_channel_problem(meta):
    meta.answer = (401, fixture_error("pywa_error_obj_190_expired_token.json"), {})
    result = send(meta, msg("text", {"body": "hi"}))
    assert result.outcome == "failed" and result.error_code == "190" and result.channel_problem
    assert "update the channel's access_token" in result.reason and "subcode 463" in result.reason


RETRY = {  # code: (HTTP status Meta uses, default delay we advise)
    1: (500, 30), 2: (503, 30), 4: (400, 60), 80007: (400, 60), 130429: (400, 2), 131056: (400, 16),
    131057: (400, 60), 131000: (500, 30), 131016: (503, 30), 133016: (400, 3600), 131049: (400, 86400),
}


@pytest.mark.parametrize("code", sorted(RETRY))
def test_retryable_codes(meta, code):
    status, delay = RETRY[code]
    meta.answer = (status, error_body(code), {})
    result = send(meta, msg("text", {"body": "hi"}))
    assert result.outcome == "retry" and result.error_code == str(code)
    assert result.retry_after_s == delay and result.reason
    assert not result.opted_out and not result.channel_problem


PERMANENT = [131026, 131047, 131050, 131051, 131052, 131053, 131008, 131009, 131021, 131030, 131031, 131042,
             131045, 130472, 132000, 132001, 132005, 132007, 132008, 132012, 132015, 132016, 100, 368, 131048]


@pytest.mark.parametrize("code", PERMANENT)
def test_permanent_codes(meta, code):
    meta.answer = (400, error_body(code, details=f"detail for {code}"), {})
    result = send(meta, msg("text", {"body": "hi"}))
    assert result.outcome == "failed" and result.error_code == str(code) and result.retry_after_s is None
    assert result.opted_out is (code == 131050) and not result.channel_problem
    assert str(code) in result.reason and f"detail for {code}" in result.reason
    assert wa_errors.RULES[code].advice in result.reason


@pytest.mark.parametrize("code, status", [(0, 401), (190, 401), (3, 400), (10, 403), (200, 403), (299, 400)])
def test_auth_and_permission_codes_pause_the_channel(meta, code, status):
    meta.answer = (status, error_body(code), {})
    result = send(meta, msg("text", {"body": "hi"}))
    assert result.outcome == "failed" and result.channel_problem and result.error_code == str(code)
    assert "update the channel's access_token" in result.reason


def test_unknown_4xx_code_fails_with_metas_message(meta):
    meta.answer = (400, error_body(987654, message="Something new went wrong"), {})
    result = send(meta, msg("text", {"body": "hi"}))
    assert result == SendResult("failed", error_code="987654",
                                reason="WhatsApp error 987654: Something new went wrong")


def test_unknown_code_marked_transient_retries(meta):
    meta.answer = (400, error_body(987654, is_transient=True), {})
    assert send(meta, msg("text", {"body": "hi"})).outcome == "retry"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_unknown_5xx_retries(meta, status):
    meta.answer = (status, error_body(987654), {})
    result = send(meta, msg("text", {"body": "hi"}))
    assert result.outcome == "retry" and result.retry_after_s == wa_errors.SERVER_ERROR_DELAY


def test_bare_429_retries_with_retry_after(meta):
    meta.answer = (429, "Too Many Requests", {"Retry-After": "42"})
    result = send(meta, msg("text", {"body": "hi"}))
    assert result.outcome == "retry" and result.error_code == "429" and result.retry_after_s == 42


def test_retry_after_header_overrides_the_default(meta):
    meta.answer = (400, error_body(130429), {"Retry-After": "7"})
    assert send(meta, msg("text", {"body": "hi"})).retry_after_s == 7
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=120), usegmt=True)
    meta.answer = (503, "busy", {"Retry-After": when})
    assert 100 < send(meta, msg("text", {"body": "hi"})).retry_after_s <= 120


def test_pair_rate_and_marketing_cap_keep_their_floor(meta):
    meta.answer = (400, error_body(131056), {"Retry-After": "1"})
    assert send(meta, msg("text", {"body": "hi"})).retry_after_s == 6
    meta.answer = (400, error_body(131049), {"Retry-After": "10"})
    assert send(meta, msg("template", {"name": "promo", "language": "en"})).retry_after_s == 86400


def test_reason_carries_no_phone_number(meta):
    meta.answer = (400, error_body(100, message="(#100) Invalid parameter",
                                   details="Recipient phone number +34 600 000 001 (34600000001) is invalid"), {})
    result = send(meta, msg("text", {"body": "hi"}))
    assert result.outcome == "failed" and result.error_code == "100"
    assert "600" not in result.reason and "34600000001" not in result.reason
    assert "[recipient]" in result.reason or "[number]" in result.reason


@pytest.mark.parametrize("answer, outcome", [
    ((200, "not json", {}), "unknown"),
    ((200, {}, {}), "unknown"),
    ((200, [], {}), "unknown"),
    ((200, {"messages": []}, {}), "unknown"),
    ((200, {"messages": [{"id": None}]}, {}), "unknown"),
    ((204, "", {}), "unknown"),
    ((302, "", {"Location": "https://elsewhere.example/"}), "failed"),
    ((400, "", {}), "failed"),
    ((400, {"error": "a string"}, {}), "failed"),
    ((400, {"error": {"code": "131047"}}, {}), "failed"),
    ((400, {"error": {"code": True, "message": ["x"]}}, {}), "failed"),
    ((404, "<html>not found</html>", {}), "failed"),
    ((401, "", {}), "failed"),
    ((502, "<html>Bad Gateway</html>", {"Retry-After": "soon"}), "retry"),
    ((429, {"error": {"code": 131056}}, {"Retry-After": "-5"}), "retry"),
])
def test_nothing_raised_for_any_answer(meta, answer, outcome):
    meta.answer = answer
    result = send(meta, msg("text", {"body": "hi"}))
    assert result.outcome == outcome and result.reason


def test_string_code_is_read_as_a_code(meta):
    meta.answer = (400, {"error": {"code": "131047"}}, {})
    assert send(meta, msg("text", {"body": "hi"})).error_code == "131047"


def test_read_receipt_answered_success_false_fails(meta):
    meta.answer = (200, {"success": False}, {})
    assert send(meta, msg("read", {"message_id": "wamid.IN9"})).outcome == "failed"


def test_every_rule_is_classified_without_raising():
    for code, rule in wa_errors.RULES.items():
        result = wa_errors.classify(400, error_body(code))
        assert result.outcome == ("retry" if rule.retry else "failed") and result.error_code == str(code)
        assert rule.advice in result.reason


# -- network failures -----------------------------------------------------------------------------

def test_read_timeout_is_unknown(meta):
    meta.delay = 1.0
    started = time.monotonic()
    result = send(meta, msg("text", {"body": "hi"}), send_timeout_s=0.2)
    assert time.monotonic() - started < 0.9
    assert result.outcome == "unknown" and result.provider_message_id is None
    assert len(meta.requests) == 1           # it did reach Meta: only a status webhook can settle it


def test_read_timeout_on_a_read_receipt_is_simply_retried(meta):
    meta.delay = 1.0
    result = send(meta, msg("read", {"message_id": "wamid.IN9"}), send_timeout_s=0.2)
    assert result.outcome == "retry" and result.retry_after_s == wa_send.READ_RETRY_DELAY


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_retry():
    channel = {"external_id": PHONE_ID, "settings": {"api_base_url": f"http://127.0.0.1:{closed_port()}"}}
    result = PROVIDER.send(msg("text", {"body": "hi"}), channel, {"access_token": TOKEN})
    assert result.outcome == "retry" and result.retry_after_s and "nothing was sent" in result.reason


def test_connect_timeout_is_retry(monkeypatch):
    def refuse(*args, **kwargs):
        raise requests.exceptions.ConnectTimeout("connect timed out")
    monkeypatch.setattr(wa_send.session(), "post", refuse)
    channel = {"external_id": PHONE_ID, "settings": {}}
    assert PROVIDER.send(msg("text", {"body": "hi"}), channel, {"access_token": TOKEN}).outcome == "retry"


def tls_error(cause: BaseException) -> requests.exceptions.SSLError:
    # The chain requests builds: SSLError(MaxRetryError(reason=urllib3 SSLError(ssl error))).
    return requests.exceptions.SSLError(MaxRetryError(None, "/v24.0/x/messages", Urllib3SSLError(cause)))


@pytest.mark.parametrize("error, outcome", [
    (tls_error(ssl.SSLCertVerificationError(1, "certificate verify failed")), "retry"),   # in the handshake
    (tls_error(ssl.SSLEOFError(8, "EOF occurred in violation of protocol")), "unknown"),  # maybe mid-answer
    (requests.exceptions.ChunkedEncodingError("cut short"), "unknown"),
    (requests.exceptions.ConnectionError("Connection aborted."), "unknown"),
    (requests.exceptions.InvalidHeader("bad token"), "failed"),
    (RuntimeError("surprise"), "unknown"),
])
def test_other_request_failures_never_raise(monkeypatch, error, outcome):
    def fail(*args, **kwargs):
        raise error
    monkeypatch.setattr(wa_send.session(), "post", fail)
    channel = {"external_id": PHONE_ID, "settings": {}}
    assert PROVIDER.send(msg("text", {"body": "hi"}), channel, {"access_token": TOKEN}).outcome == outcome


def test_connection_dropped_after_the_request_is_unknown():
    """A server that reads the whole request, then hangs up without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    seen: list[bytes] = []

    def serve():
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(rest) < length:
                rest += conn.recv(65536)
            seen.append(rest)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        channel = {"external_id": PHONE_ID,
                   "settings": {"api_base_url": f"http://127.0.0.1:{listener.getsockname()[1]}"}}
        result = PROVIDER.send(msg("text", {"body": "hi"}), channel, {"access_token": TOKEN})
    finally:
        thread.join(5)
        listener.close()
    assert json.loads(seen[0])["biz_opaque_callback_data"] == "msg_01"
    assert result.outcome == "unknown" and "dropped" in result.reason


# -- the session ----------------------------------------------------------------------------------

class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive. Werkzeug's dev server (3.x) answers every request with
    ``Connection: close`` (see werkzeug/serving.py), so it cannot show a connection being reused."""
    protocol_version = "HTTP/1.1"
    seen: list[tuple[int, dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.client_address[1], body))
        answer = json.dumps({"messaging_product": "whatsapp",
                             "messages": [{"id": f"wamid.KA{len(self.seen)}"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def test_sends_reuse_one_keep_alive_connection():
    KeepAliveHandler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        channel = {"external_id": PHONE_ID, "settings": {"api_base_url": f"http://127.0.0.1:{server.server_port}"}}
        results = [PROVIDER.send(msg("text", {"body": f"n{i}"}, id=f"m{i}"), channel, {"access_token": TOKEN})
                   for i in range(5)]
    finally:
        server.shutdown()
        server.server_close()
    assert [r.provider_message_id for r in results] == [f"wamid.KA{i}" for i in range(1, 6)]
    assert [body["biz_opaque_callback_data"] for _, body in KeepAliveHandler.seen] == [f"m{i}" for i in range(5)]
    ports = {port for port, _ in KeepAliveHandler.seen}
    assert len(ports) == 1, ports            # one TCP connection carried all five requests
    assert wa_send.session() is wa_send.session()
    adapter = wa_send.session().get_adapter("https://graph.facebook.com")
    assert adapter._pool_connections == 4 and adapter._pool_maxsize == 64


def test_a_new_process_gets_a_new_session(monkeypatch):
    before = wa_send.session()
    monkeypatch.setattr(provider_http.os, "getpid", lambda: -1)
    after = wa_send.session()
    assert after is not before and wa_send.session() is after


def test_timeouts_from_settings():
    assert wa_send.timeouts({}) == (3.0, 15.0)
    assert wa_send.timeouts({"send_timeout_s": 30}) == (3.0, 30.0)
    assert wa_send.timeouts({"send_timeout_s": [1, 5]}) == (1.0, 5.0)
    assert wa_send.timeouts({"send_timeout_s": "soon"}) == (3.0, 15.0)
    assert wa_send.timeouts({"send_timeout_s": -1}) == (3.0, 15.0)
