"""The provider session's fast path, against real local servers: what a send worker relies on.

Keep-alive, timeouts and refused connections classified as the adapters expect, TLS verified, no redirect
followed, proxies through requests' full path, answers read like requests.Response.
"""
from __future__ import annotations

import datetime
import gzip
import ipaddress
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from urllib3.exceptions import NewConnectionError

from gateway import provider_http
from gateway.provider_http import ProviderResponse, ProviderSession
from gateway.providers import OutboundMessage
from webhooks.whatsapp import PROVIDER as WHATSAPP

PHONE_ID = "109000000000001"


class Meta(BaseHTTPRequestHandler):
    """Answers every POST with ``answer`` (status, headers, body bytes) after ``delay`` seconds."""
    protocol_version = "HTTP/1.1"
    answer: tuple[int, dict, bytes] = (200, {}, b"")
    delay = 0.0
    seen: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Meta.seen.append({"path": self.path, "port": self.client_address[1], "body": body,
                          "headers": dict(self.headers)})
        if Meta.delay:
            time.sleep(Meta.delay)
        status, headers, out = Meta.answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def wamid_answer(n: int = 1) -> tuple[int, dict, bytes]:
    return 200, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(
        {"messaging_product": "whatsapp", "messages": [{"id": f"wamid.FAST{n}"}]}).encode()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass   # a client that gave up (read timeout, refused certificate) is what some tests do


def serve(tls: ssl.SSLContext | None = None):
    Meta.seen, Meta.delay, Meta.answer = [], 0.0, wamid_answer()
    httpd = Server(("127.0.0.1", 0), Meta)
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return httpd, f"{'https' if tls else 'http'}://127.0.0.1:{httpd.server_port}"


@pytest.fixture
def meta():
    httpd, base = serve()
    yield base
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def session():
    return ProviderSession(pool_connections=2, pool_maxsize=4)


def text(n: int = 0) -> OutboundMessage:
    return OutboundMessage(id=f"m{n}", to="+34600000001", to_kind="phone", kind="text",
                           content={"body": f"hola {n}"}, reply_to=None, tag=None)


def channel(base: str, **settings) -> dict:
    return {"external_id": PHONE_ID, "settings": {"api_base_url": base, **settings}}


def post(session, url, **kwargs):
    return session.post(url, json={"a": 1}, headers={"Authorization": "Bearer t"},
                        **{"timeout": (3, 5), "allow_redirects": False, **kwargs})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- keep-alive --------------------------------------------------------------------------------------

def test_sends_reuse_one_keep_alive_connection(meta):
    results = []
    for n in range(5):
        Meta.answer = wamid_answer(n)
        results.append(WHATSAPP.send(text(n), channel(meta), {"access_token": "t"}))
    assert [r.provider_message_id for r in results] == [f"wamid.FAST{n}" for n in range(5)]
    assert len({r["port"] for r in Meta.seen}) == 1
    assert [json.loads(r["body"])["biz_opaque_callback_data"] for r in Meta.seen] == [f"m{n}" for n in range(5)]


def test_a_connection_the_server_closed_is_replaced(meta, session):
    Meta.answer = (200, {"Connection": "close", "Content-Type": "application/json"}, b'{"ok": 1}')
    assert post(session, meta + "/x").json() == {"ok": 1}
    Meta.answer = (200, {"Content-Type": "application/json"}, b'{"ok": 2}')
    assert post(session, meta + "/x").json() == {"ok": 2}
    assert len({r["port"] for r in Meta.seen}) == 2


# -- failures as the adapters classify them ----------------------------------------------------------

def test_connection_refused_is_a_requests_connection_error_and_retryable(session):
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(requests.ConnectionError) as fast:
        post(session, url + "/x")
    with pytest.raises(requests.ConnectionError) as full:
        post(session, url + "/x", allow_redirects=True)          # requests' own path, for comparison
    assert type(fast.value) is type(full.value)
    assert isinstance(fast.value.args[0].reason, NewConnectionError)
    assert type(fast.value.args[0].reason) is type(full.value.args[0].reason)
    result = WHATSAPP.send(text(), channel(url), {"access_token": "t"})
    assert result.outcome == "retry" and "nothing was sent" in result.reason


@pytest.fixture
def unanswered_port():
    """A listener whose accept queue is full: a new connection is never completed (a connect timeout)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.05)
    yield port
    for sock in (*fillers, listener):
        sock.close()


def test_connect_timeout_is_retryable(session, unanswered_port):
    url = f"http://127.0.0.1:{unanswered_port}"
    started = time.monotonic()
    with pytest.raises(requests.ConnectTimeout):
        post(session, url + "/x", timeout=(0.2, 5))
    assert time.monotonic() - started < 2
    result = WHATSAPP.send(text(), channel(url, send_timeout_s=[0.2, 5]), {"access_token": "t"})
    assert result.outcome == "retry" and "nothing was sent" in result.reason


def test_read_timeout_keeps_the_read_timeout_and_may_have_been_sent(meta, session):
    Meta.delay = 1.0
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        post(session, meta + "/x", timeout=(3, 0.2))
    assert time.monotonic() - started < 0.9
    result = WHATSAPP.send(text(), channel(meta, send_timeout_s=0.2), {"access_token": "t"})
    assert result.outcome == "unknown"            # it reached the provider: only a status webhook can tell


def test_a_header_requests_refuses_is_refused_the_same_way(meta, session):
    with pytest.raises(requests.exceptions.InvalidHeader):
        session.post(meta + "/x", json={}, headers={"Authorization": "Bearer t\nX-Injected: 1"}, timeout=5,
                     allow_redirects=False)
    result = WHATSAPP.send(text(), channel(meta), {"access_token": "tok\r\nX-Injected: 1"})
    assert result.outcome == "failed" and not Meta.seen


@pytest.mark.parametrize("url, error", [
    ("graph.facebook.com/v24.0/1/messages", requests.exceptions.MissingSchema),
    ("ftp://graph.facebook.com/v24.0/1/messages", requests.exceptions.InvalidSchema),
    ("http:///v24.0/1/messages", requests.exceptions.InvalidURL),
])
def test_unusable_urls_raise_what_requests_raises(session, url, error):
    with pytest.raises(error):
        post(session, url)


# -- redirects, proxies, TLS -------------------------------------------------------------------------

def test_a_redirect_is_answered_not_followed(meta, session):
    Meta.answer = (301, {"Location": meta + "/elsewhere"}, b"")
    response = post(session, meta + "/x")
    assert response.status_code == 301 and response.headers["location"] == meta + "/elsewhere"
    assert [r["path"] for r in Meta.seen] == ["/x"]


def test_a_proxy_takes_requests_full_path(meta, monkeypatch):
    # The server plays the proxy: a proxied request line carries the absolute URL.
    monkeypatch.setenv("HTTP_PROXY", meta)
    session = ProviderSession(pool_connections=2, pool_maxsize=4)
    Meta.answer = (200, {"Content-Type": "application/json"}, b'{"via": "proxy"}')
    response = post(session, "http://graph.invalid/v24.0/1/messages")
    assert isinstance(response, requests.Response) and response.json() == {"via": "proxy"}
    monkeypatch.delenv("HTTP_PROXY")
    direct = ProviderSession(pool_connections=2, pool_maxsize=4)
    assert isinstance(post(direct, meta + "/x"), ProviderResponse)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return str(folder / "cert.pem"), str(folder / "key.pem")


@pytest.fixture
def tls_meta(certificate):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    httpd, base = serve(context)
    yield base
    httpd.shutdown()
    httpd.server_close()


def test_tls_is_verified_an_unknown_certificate_is_refused(tls_meta, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    session = ProviderSession(pool_connections=2, pool_maxsize=4)
    with pytest.raises(requests.exceptions.SSLError):
        post(session, tls_meta + "/x")
    assert not Meta.seen
    result = WHATSAPP.send(text(), channel(tls_meta), {"access_token": "t"})
    assert result.outcome == "retry" and "nothing was sent" in result.reason


def test_tls_with_the_ca_bundle_from_the_environment(tls_meta, certificate, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
    session = ProviderSession(pool_connections=2, pool_maxsize=4)
    first, second = post(session, tls_meta + "/x"), post(session, tls_meta + "/x")
    assert isinstance(first, ProviderResponse) and first.json() == second.json()
    assert len({r["port"] for r in Meta.seen}) == 1


# -- reading the answer ------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type, body, expected", [
    ("application/json; charset=UTF-8", '{"a": "ñ"}'.encode(), {"a": "ñ"}),
    ("application/json", '{"a": "ñ"}'.encode(), {"a": "ñ"}),
    ("application/octet-stream", '{"a": "ñ"}'.encode("utf-16"), {"a": "ñ"}),   # requests detects UTF-16 too
    ("text/plain; charset=latin-1", '{"a": "ñ"}'.encode("latin-1"), {"a": "ñ"}),
])
def test_json_is_read_like_requests(meta, session, content_type, body, expected):
    Meta.answer = (200, {"Content-Type": content_type}, body)
    fast, full = post(session, meta + "/x"), post(session, meta + "/x", allow_redirects=True)
    assert fast.json() == full.json() == expected and fast.content == full.content


def test_not_json_raises_a_value_error_like_requests(meta, session):
    Meta.answer = (502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>")
    response = post(session, meta + "/x")
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert response.status_code == 502 and not response.ok and response.text == "<html>Bad Gateway</html>"


def test_headers_are_case_insensitive_and_retry_after_is_read(meta, session):
    Meta.answer = (429, {"Retry-After": "7", "Content-Type": "application/json"}, b'{"error": {"code": 130429}}')
    response = post(session, meta + "/x")
    assert response.headers["retry-after"] == response.headers.get("Retry-After") == "7"
    assert provider_http.retry_after(response.headers) == 7.0
    assert provider_http.header(response.headers, "RETRY-AFTER") == "7"
    result = WHATSAPP.send(text(), channel(meta), {"access_token": "t"})
    assert result.outcome == "retry" and result.retry_after_s == 7.0


def test_a_compressed_answer_is_decompressed(meta, session):
    Meta.answer = (200, {"Content-Type": "application/json", "Content-Encoding": "gzip"},
                   gzip.compress(b'{"messages": [{"id": "wamid.GZ"}]}'))
    assert post(session, meta + "/x").json() == {"messages": [{"id": "wamid.GZ"}]}
    assert Meta.seen[-1]["headers"]["Accept-Encoding"] == "gzip, deflate"


def test_an_answer_cut_short_may_have_been_sent(session):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"

    def answer_half():
        for _ in range(2):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mess")

    threading.Thread(target=answer_half, daemon=True).start()
    try:
        with pytest.raises(requests.ConnectionError):
            post(session, url + "/x")
        assert WHATSAPP.send(text(), channel(url), {"access_token": "t"}).outcome == "unknown"
    finally:
        listener.close()
