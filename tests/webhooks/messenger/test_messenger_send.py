"""Messenger/Instagram sending against a real HTTP server on 127.0.0.1 that records requests. No database."""
from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from gateway import provider_http
from gateway.providers import OutboundMessage, SendResult
from webhooks.instagram import PROVIDER as INSTAGRAM
from webhooks.messenger import PROVIDER
from webhooks.messenger import send as send_mod

PAGE = "106000000000001"
PSID = "6543210987654321"
TOKEN = "EAAG-page-token"
CREDS = {"app_secret": "s", "page_access_token": TOKEN, "verify_token": "v"}
FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "messenger"


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class Graph:
    """A fake Graph API: records every request, answers with what the test queued (else a success)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.replies: list[tuple[int, object, dict, float]] = []
        self.lock = threading.Lock()
        self.url = ""

    def reply(self, status: int, body: object = None, headers: dict | None = None, delay: float = 0.0):
        self.replies.append((status, body, headers or {}, delay))

    def __call__(self, environ, start_response):
        request = Request(environ)
        raw = request.get_data()
        with self.lock:
            self.requests.append({"method": request.method, "path": request.path, "args": dict(request.args),
                                  "headers": dict(request.headers), "json": json.loads(raw) if raw else None,
                                  "port": environ.get("REMOTE_PORT")})
            status, body, headers, delay = (self.replies.pop(0) if self.replies else
                                            (200, {"recipient_id": PSID, "message_id": "m_OK"}, {}, 0.0))
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
    graph = Graph()
    server = make_server("127.0.0.1", 0, graph, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    graph.url = f"http://127.0.0.1:{server.server_port}"
    yield graph
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def graph(_server):
    _server.requests.clear()
    _server.replies.clear()
    return _server


def channel(graph: Graph, **settings) -> dict:
    return {"id": "c1", "external_id": PAGE, "settings": {"api_base_url": graph.url, **settings}}


def msg(kind: str = "text", content: dict | None = None, **extra) -> OutboundMessage:
    if content is None:
        content = {"body": "Hola, ¿en qué te ayudo?", "preview_url": False}
    return OutboundMessage(id="msg_01", to=PSID, to_kind="psid", kind=kind, content=content, **extra)


def send(graph: Graph, message: OutboundMessage | None = None, provider=PROVIDER, **settings) -> SendResult:
    return provider.send(message or msg(), channel(graph, **settings), CREDS)


# -- request shape ---------------------------------------------------------------------------

def test_text_is_sent_with_bearer_token_and_metadata(graph):
    result = send(graph)
    assert result == SendResult("sent", provider_message_id="m_OK")
    [request] = graph.requests
    assert request["method"] == "POST"
    assert request["path"] == f"/v24.0/{PAGE}/messages"
    assert request["args"] == {}                     # the token never travels in the URL
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["json"] == {"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
                               "message": {"text": "Hola, ¿en qué te ayudo?", "metadata": "msg_01"}}


def test_text_body_matches_the_send_api_fixture(graph):
    sample = FIXTURES / "mseri_sendapi_textMessage_request.json"
    if not sample.is_file():
        pytest.skip("shared fixture not found")
    expected = json.loads(sample.read_text())
    send(graph, OutboundMessage(id="m", to="USER_ID", to_kind="psid", kind="text",
                                content={"body": expected["message"]["text"]}))
    body = graph.requests[0]["json"]
    assert body["recipient"] == expected["recipient"]
    assert body["message"]["text"] == expected["message"]["text"]


def test_message_tag_outside_the_window(graph):
    assert send(graph, msg(tag="HUMAN_AGENT")).outcome == "sent"
    body = graph.requests[0]["json"]
    assert body["messaging_type"] == "MESSAGE_TAG" and body["tag"] == "HUMAN_AGENT"


def test_graph_version_setting(graph):
    send(graph, graph_version="v23.0")
    assert graph.requests[0]["path"] == f"/v23.0/{PAGE}/messages"


def test_default_endpoints():
    assert send_mod.endpoint({"external_id": PAGE, "settings": {}}) == \
        f"https://graph.facebook.com/v24.0/{PAGE}/messages"
    assert send_mod.endpoint({"external_id": "17841400000000000",
                              "settings": {"api_base_url": "https://graph.instagram.com/"}}) == \
        "https://graph.instagram.com/v24.0/17841400000000000/messages"


@pytest.mark.parametrize("kind,attachment_type", [
    ("image", "image"), ("video", "video"), ("audio", "audio"), ("document", "file"), ("sticker", "image")])
def test_media_by_link_is_a_reusable_attachment(graph, kind, attachment_type):
    content = {"link": "https://cdn.example/f.bin"}
    if kind == "document":
        content["filename"] = "invoice.pdf"
    assert send(graph, msg(kind, content)).outcome == "sent"
    assert graph.requests[0]["json"]["message"] == {
        "attachment": {"type": attachment_type, "payload": {"url": "https://cdn.example/f.bin", "is_reusable": True}},
        "metadata": "msg_01"}


def test_media_by_id_uses_the_attachment_id(graph):
    send(graph, msg("image", {"media_id": "1857777774821032"}))
    assert graph.requests[0]["json"]["message"]["attachment"] == {
        "type": "image", "payload": {"attachment_id": "1857777774821032"}}


def test_caption_is_refused_before_any_request(graph):
    result = send(graph, msg("image", {"link": "https://cdn.example/a.jpg", "caption": "look"}))
    assert result.outcome == "failed" and result.error_code == "unsupported"
    assert "caption" in result.reason and graph.requests == []


def test_buttons_become_quick_replies(graph):
    content = {"type": "button", "header": "Pedido 42", "body": "¿Confirmas?", "footer": "Tienda",
               "buttons": [{"id": "yes", "title": "Sí"}, {"id": "no", "title": "No"}]}
    assert send(graph, msg("interactive", content)).outcome == "sent"
    assert graph.requests[0]["json"]["message"] == {
        "text": "Pedido 42\n\n¿Confirmas?\n\nTienda",
        "quick_replies": [{"content_type": "text", "title": "Sí", "payload": "yes"},
                          {"content_type": "text", "title": "No", "payload": "no"}],
        "metadata": "msg_01"}


@pytest.mark.parametrize("content,words", [
    ({"type": "button", "body": "b", "buttons": [{"id": str(i), "title": f"t{i}"} for i in range(14)]}, "at most 13"),
    ({"type": "button", "body": "b", "buttons": [{"id": "1", "title": "x" * 21}]}, "at most 20"),
    ({"type": "button", "body": "b", "buttons": []}, "at least one button"),
    ({"type": "list", "body": "b", "button": "Menu", "sections": []}, "not supported on Messenger"),
])
def test_interactive_limits(graph, content, words):
    result = send(graph, msg("interactive", content))
    assert result.outcome == "failed" and words in result.reason
    assert graph.requests == []


def test_thirteen_buttons_of_twenty_characters_fit(graph):
    buttons = [{"id": str(i), "title": f"{i:02d}" + "x" * 18} for i in range(13)]
    assert send(graph, msg("interactive", {"type": "button", "body": "b", "buttons": buttons})).outcome == "sent"
    assert len(graph.requests[0]["json"]["message"]["quick_replies"]) == 13


@pytest.mark.parametrize("kind,content", [
    ("location", {"latitude": 1, "longitude": 2}),
    ("contacts", {"contacts": [{"name": {"formatted_name": "A"}}]}),
    ("template", {"name": "hello", "language": "en", "components": []}),
    ("reaction", {"message_id": "m_1", "emoji": "👍"}),
])
def test_unsupported_kinds_fail_without_a_request(graph, kind, content):
    result = send(graph, msg(kind, content))
    assert result.outcome == "failed" and result.error_code == "unsupported"
    assert "not supported on Messenger" in result.reason
    assert graph.requests == []


def test_text_limit_is_2000_characters(graph):
    assert send(graph, msg(content={"body": "a" * 2000})).outcome == "sent"
    result = send(graph, msg(content={"body": "a" * 2001}))
    assert result.outcome == "failed" and "at most 2000" in result.reason and "2001 characters" in result.reason
    assert len(graph.requests) == 1


def test_empty_text_fails(graph):
    assert send(graph, msg(content={"body": "  "})).outcome == "failed"
    assert graph.requests == []


def test_read_is_a_mark_seen_sender_action(graph):
    graph.reply(200, {"recipient_id": PSID})
    result = send(graph, msg("read", {"message_id": "m_in"}))
    assert result == SendResult("sent")
    assert graph.requests[0]["json"] == {"recipient": {"id": PSID}, "sender_action": "mark_seen"}


def test_instagram_uses_the_same_send_api(graph):
    ig = {"id": "c2", "external_id": "17841400000000000", "settings": {"api_base_url": graph.url}}
    message = OutboundMessage(id="m2", to="IGSID123", to_kind="igsid", kind="text", content={"body": "hi"})
    assert INSTAGRAM.send(message, ig, CREDS) == SendResult("sent", provider_message_id="m_OK")
    assert graph.requests[0]["path"] == "/v24.0/17841400000000000/messages"
    result = INSTAGRAM.send(msg("location", {"latitude": 1, "longitude": 2}), ig, CREDS)
    assert "not supported on Instagram" in result.reason


def test_missing_token_is_a_channel_problem(graph):
    result = PROVIDER.send(msg(), channel(graph), {"app_secret": "s"})
    assert result.outcome == "failed" and result.channel_problem and "page_access_token" in result.reason
    assert graph.requests == []


# -- classification --------------------------------------------------------------------------

def graph_error(code, subcode=None, message="An error", **extra):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC", **extra}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


@pytest.mark.parametrize("status,body,headers,delay_s,code", [
    (400, graph_error(613, message="(#613) Calls to this api have exceeded the rate limit."), {}, 60.0, "613"),
    (400, graph_error(4), {"Retry-After": "7"}, 7.0, "4"),
    (400, graph_error(80006), {}, 60.0, "80006"),
    (429, "", {}, 60.0, "429"),
    (429, "", {"Retry-After": "12"}, 12.0, "429"),
    (500, graph_error(1, message="An unknown error occurred"), {}, 30.0, "1"),
    (500, graph_error(2, message="Service temporarily unavailable"), {"Retry-After": "3"}, 3.0, "2"),
    (503, "<html>bad gateway</html>", {}, 30.0, "503"),
    (400, graph_error(1200, message="Temporary send message failure."), {}, 30.0, "1200"),
])
def test_retryable_answers(graph, status, body, headers, delay_s, code):
    graph.reply(status, body, headers)
    result = send(graph)
    assert result.outcome == "retry", result
    assert result.retry_after_s == delay_s and result.error_code == code
    assert not result.channel_problem and not result.opted_out


def test_retry_after_as_an_http_date(graph):
    when = datetime.now(timezone.utc) + timedelta(seconds=120)
    graph.reply(429, "", {"Retry-After": format_datetime(when, usegmt=True)})
    result = send(graph)
    assert result.outcome == "retry" and 100 <= result.retry_after_s <= 121


@pytest.mark.parametrize("subcode", [2018278, 2018108])
def test_outside_the_window(graph, subcode):
    graph.reply(400, graph_error(10, subcode, "(#10) This message is sent outside of allowed window."))
    result = send(graph)
    assert result.outcome == "failed" and result.error_code == "10" and not result.channel_problem
    assert result.reason.startswith("outside the 24-hour window")
    assert "HUMAN_AGENT within 7 days" in result.reason


def test_outside_the_window_even_with_a_tag(graph):
    graph.reply(400, graph_error(10, 2018278, "(#10) This message is sent outside of allowed window."))
    result = send(graph, msg(tag="HUMAN_AGENT"))
    assert result.outcome == "failed" and "even with the HUMAN_AGENT tag" in result.reason


def test_user_unavailable(graph):
    graph.reply(400, graph_error(551, 1545041, "This person isn't available right now."))
    result = send(graph)
    assert result.outcome == "failed" and result.error_code == "551" and not result.channel_problem
    assert "isn't available" in result.reason


def test_no_matching_user_from_the_shared_fixture(graph):
    sample = FIXTURES / "mseri_sendapi_errorResponse.json"
    body = json.loads(sample.read_text()) if sample.is_file() else {"error": {
        "message": "Invalid parameter", "type": "FacebookApiException", "code": 100,
        "error_data": "No matching user found.", "fbtrace_id": "D2kxCybrKVw"}}
    graph.reply(400, body)
    result = send(graph)
    assert result.outcome == "failed" and result.error_code == "100" and not result.channel_problem
    assert "no matching user" in result.reason


def test_invalid_parameter(graph):
    graph.reply(400, graph_error(100, message="(#100) Param recipient[id] must be a valid ID string"))
    result = send(graph)
    assert result.outcome == "failed" and result.error_code == "100"
    assert "refused a parameter" in result.reason and "must be a valid ID string" in result.reason


@pytest.mark.parametrize("status,code,subcode,words", [
    (401, 190, 463, "rejected the access token"),
    (403, 200, None, "lacks a permission"),
    (403, 10, None, "lacks a permission"),
    (400, 230, None, "lacks a permission"),
])
def test_token_and_permission_errors_are_channel_problems(graph, status, code, subcode, words):
    graph.reply(status, graph_error(code, subcode, "Error validating access token"))
    result = send(graph)
    assert result.outcome == "failed" and result.channel_problem and result.error_code == str(code)
    assert words in result.reason


def test_unknown_4xx_carries_meta_message(graph):
    graph.reply(400, graph_error(368, message="The action attempted has been deemed abusive"))
    result = send(graph)
    assert result.outcome == "failed" and result.error_code == "368" and not result.channel_problem
    assert "deemed abusive" in result.reason


def test_2xx_without_message_id_is_unknown(graph):
    graph.reply(200, {"recipient_id": PSID})
    result = send(graph)
    assert result.outcome == "unknown" and "no message id" in result.reason


def test_reason_never_repeats_the_recipient_or_the_text(graph):
    text = "my secret order details"
    graph.reply(400, graph_error(999, message=f"Cannot send '{text}' to {PSID} or +34 600 000 001"))
    result = send(graph, msg(content={"body": text}))
    assert result.outcome == "failed"
    assert text not in result.reason and PSID not in result.reason and "600 000 001" not in result.reason


# -- network ---------------------------------------------------------------------------------

def test_read_timeout_is_unknown(graph, monkeypatch):
    monkeypatch.setattr(send_mod, "READ_TIMEOUT_S", 0.3)
    graph.reply(200, {"recipient_id": PSID, "message_id": "m_late"}, delay=1.0)
    result = send(graph)
    assert result.outcome == "unknown" and "may have been sent" in result.reason


def test_connection_refused_is_retry():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = PROVIDER.send(msg(), {"external_id": PAGE, "settings": {"api_base_url": f"http://127.0.0.1:{port}"}},
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
    result = PROVIDER.send(msg(), {"external_id": PAGE, "settings": {"api_base_url": dropping_server}}, CREDS)
    assert result.outcome == "unknown" and "may have been sent" in result.reason


def test_network_errors_are_classified():
    retry = send_mod.network_outcome(requests.exceptions.ConnectTimeout("connect timed out"), "Messenger")
    assert retry.outcome == "retry"
    refused = requests.exceptions.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused")))
    assert send_mod.network_outcome(refused, "Messenger").outcome == "retry"
    aborted = requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))
    assert send_mod.network_outcome(aborted, "Messenger").outcome == "unknown"
    assert send_mod.network_outcome(requests.exceptions.ReadTimeout("x"), "Messenger").outcome == "unknown"
    assert send_mod.network_outcome(requests.exceptions.ChunkedEncodingError("x"), "Messenger").outcome == "unknown"
    bad = send_mod.network_outcome(requests.exceptions.InvalidURL("x"), "Messenger")
    assert bad.outcome == "failed" and bad.channel_problem


def test_bad_api_base_url_is_a_channel_problem():
    result = PROVIDER.send(msg(), {"external_id": PAGE, "settings": {"api_base_url": "not a url"}}, CREDS)
    assert result.outcome == "failed" and result.channel_problem


# -- connection reuse ------------------------------------------------------------------------

class KeepAliveHandler(BaseHTTPRequestHandler):
    """Werkzeug's development server closes every connection (``Connection: close``), so the
    keep-alive test uses the standard library's HTTP/1.1 server, which keeps them open."""
    protocol_version = "HTTP/1.1"
    ports: list = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).ports.append(self.client_address[1])
        body = json.dumps({"recipient_id": PSID, "message_id": f"m_{len(self.ports)}"}).encode()
        self.send_response(200)
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
        where = {"external_id": PAGE, "settings": {"api_base_url": f"http://127.0.0.1:{server.server_port}"}}
        results = [PROVIDER.send(msg(), where, CREDS) for _ in range(3)]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert [r.provider_message_id for r in results] == ["m_1", "m_2", "m_3"]
    assert len(set(KeepAliveHandler.ports)) == 1     # one client socket: the pool kept it open
    adapter = send_mod.session().get_adapter("https://graph.facebook.com")
    assert adapter._pool_maxsize == send_mod.POOL_MAXSIZE


def test_session_is_per_process(monkeypatch):
    first = send_mod.session()
    assert send_mod.session() is first
    monkeypatch.setattr(provider_http.os, "getpid", lambda: -1)   # as seen from a forked child
    assert send_mod.session() is not first
