"""The deliveries' HTTP/1.1 client against a raw socket server answering scripted bytes: every way an answer can
be framed (Content-Length, chunked, the connection's close, HTTP/1.0), interim answers, keep-alive, a server
that closes or hangs, an answer that is not HTTP, and TLS with a certificate nobody vouches for."""
from __future__ import annotations

import socket
import ssl
import threading

import pytest

from gateway import webhook_http


class RawServer:
    """Answers each request with the next scripted bytes (None: close without answering; 'hang': say nothing)."""

    def __init__(self, answers: list, tls: ssl.SSLContext | None = None):
        self.answers, self.requests, self.connections = list(answers), [], 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tls = tls
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        try:
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            f = conn.makefile("rb")
            while self.answers:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = f.readline()
                    if not line:
                        return
                    head += line
                length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0]
                             .split(b":")[1])
                self.requests.append((head, f.read(length)))
                answer = self.answers.pop(0)
                if answer is None:
                    conn.close()
                    return
                if answer == "hang":
                    threading.Event().wait(5)
                    return
                conn.sendall(answer)
                if b"Connection: close" in answer:
                    conn.close()
                    return
        except (OSError, ssl.SSLError, IndexError):
            pass

    def close(self):
        self.sock.close()


def _post(conn, body=b'{"a":1}'):
    return conn.post("/hooks?x=1", [("webhook-id", "ev_1")], body)


@pytest.fixture
def server():
    made = []

    def make(answers, tls=None):
        s = RawServer(answers, tls)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def test_content_length_keep_alive_and_the_request_sent(server):
    s = server([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"])
    conn = webhook_http.Connection("http", "127.0.0.1", s.port, 5)
    first, second = _post(conn), _post(conn, b"{}")
    assert (first.status, first.body, second.status, second.reason) == (200, b"ok", 202, "Accepted")
    assert s.connections == 1                                 # kept alive
    head, body = s.requests[0]
    assert head.startswith(b"POST /hooks?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % s.port)
    assert b"webhook-id: ev_1\r\n" in head and b"Content-Length: 7\r\n" in head and body == b'{"a":1}'


def test_chunked_interim_and_close_framed_answers(server):
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    s = server([chunked, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", ])
    conn = webhook_http.Connection("http", "127.0.0.1", s.port, 5)
    r = _post(conn)
    assert (r.status, r.body) == (500, b"hello world") and conn.sock is not None
    r = _post(conn)
    assert r.body == b"until the end" and conn.sock is None     # framed by the close: not reused


def test_a_long_answer_is_cut_and_the_connection_dropped(server):
    big = b"x" * 100_000
    s = server([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big])
    conn = webhook_http.Connection("http", "127.0.0.1", s.port, 5)
    r = _post(conn)
    assert len(r.body) == webhook_http.KEEP and conn.sock is None


def test_closed_hanging_and_not_http(server):
    s = server([None])
    with pytest.raises(webhook_http.Closed):
        _post(webhook_http.Connection("http", "127.0.0.1", s.port, 5))
    s = server(["hang"])
    with pytest.raises((socket.timeout, TimeoutError)):
        _post(webhook_http.Connection("http", "127.0.0.1", s.port, 0.3))
    s = server([b"SMTP ready\r\n\r\n"])
    with pytest.raises(webhook_http.NotHTTP):
        _post(webhook_http.Connection("http", "127.0.0.1", s.port, 5))


def test_tls_refuses_a_certificate_nobody_vouches_for(server, tmp_path):
    from datetime import datetime, timedelta, timezone
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    s = server([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], tls=ctx)
    with pytest.raises(ssl.SSLCertVerificationError):
        _post(webhook_http.Connection("https", "localhost", s.port, 5))
