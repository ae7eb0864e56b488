"""The provider session: environment read once per host, the fast path identical on the wire to requests'."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from gateway.provider_http import ProviderResponse, ProviderSession


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Recorder.seen.append({"line": self.requestline, "headers": dict(self.headers), "body": body,
                              "port": self.client_address[1]})
        out = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_fast_and_full_paths_send_the_same_request_on_one_connection(server):
    session = ProviderSession(pool_connections=2, pool_maxsize=4)
    fast = session.post(server + "/v1/x", json={"a": "ñ"}, headers={"Authorization": "Bearer t"},
                        timeout=(3, 5), allow_redirects=False)
    full = session.post(server + "/v1/x", json={"a": "ñ"}, headers={"Authorization": "Bearer t"}, timeout=(3, 5))
    form = session.post(server + "/v1/y", data={"To": "+34600000001"}, auth=("AC1", "secret"), timeout=5,
                        allow_redirects=False)
    full_form = session.post(server + "/v1/y", data={"To": "+34600000001"}, auth=("AC1", "secret"), timeout=5)
    raw = session.post(server + "/v1/z", data=b'{"b": 1}', headers={"Content-Type": "application/json",
                                                                   "Accept": None}, timeout=5, allow_redirects=False)
    full_raw = session.post(server + "/v1/z", data=b'{"b": 1}', headers={"Content-Type": "application/json",
                                                                        "Accept": None}, timeout=5)
    assert {r.status_code for r in (fast, full, form, full_form, raw, full_raw)} == {200}
    assert isinstance(fast, ProviderResponse) and isinstance(full, requests.Response)
    assert fast.json() == full.json() == {"ok": True}
    for mine, theirs in zip(Recorder.seen[::2], Recorder.seen[1::2]):
        assert mine["line"] == theirs["line"] and mine["body"] == theirs["body"]
        assert mine["headers"] == theirs["headers"]
    assert Recorder.seen[2]["headers"]["Authorization"].startswith("Basic ")
    assert Recorder.seen[2]["body"] == b"To=%2B34600000001"
    assert "Accept" not in Recorder.seen[4]["headers"]           # None removes a session header, as in requests
    assert len({r["port"] for r in Recorder.seen}) == 1          # keep-alive: one client socket


def test_proxies_come_from_the_environment_once_per_host(server, monkeypatch):
    # The recorder plays an HTTP proxy: a proxied request line carries the absolute URL.
    monkeypatch.setenv("HTTP_PROXY", server)
    monkeypatch.setenv("NO_PROXY", "direct.invalid")
    session = ProviderSession(pool_connections=2, pool_maxsize=4)
    r = session.post("http://provider.invalid/send", json={}, timeout=5, allow_redirects=False)
    assert r.status_code == 200 and Recorder.seen[-1]["line"].startswith("POST http://provider.invalid/send")
    monkeypatch.delenv("HTTP_PROXY")   # read once: the session keeps what the host had when first used
    session.post("http://provider.invalid/send", json={}, timeout=5, allow_redirects=False)
    assert Recorder.seen[-1]["line"].startswith("POST http://provider.invalid/send")
    with pytest.raises(requests.ConnectionError):      # excluded by NO_PROXY: straight to a host that is not
        session.post("http://direct.invalid/send", json={}, timeout=2, allow_redirects=False)


def test_a_custom_ca_bundle_from_the_environment_is_used(monkeypatch, tmp_path):
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("not a certificate\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    session = ProviderSession(pool_connections=1, pool_maxsize=1)
    adapter = session.get_adapter("https://graph.facebook.com")
    prepared = requests.Request("POST", "https://graph.facebook.com/v24.0/1/messages").prepare()
    _, pool_kwargs = adapter.build_connection_pool_key_attributes(prepared, str(bundle))
    assert pool_kwargs["ca_certs"] == str(bundle) and pool_kwargs["cert_reqs"] == "CERT_REQUIRED"
    _, pool_kwargs = adapter.build_connection_pool_key_attributes(prepared, str(tmp_path))
    assert pool_kwargs["ca_cert_dir"] == str(tmp_path)
