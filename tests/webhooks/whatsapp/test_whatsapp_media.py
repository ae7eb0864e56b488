"""Media download against a real local HTTP server that plays Graph's two endpoints. No database."""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from gateway.providers import Media, MediaError
from webhooks.whatsapp import PROVIDER
from webhooks.whatsapp import media as wa_media

TOKEN = "EAAG-test-token"
CONTENT = b"\xff\xd8\xff\xe0 pretend this is a JPEG " * 50
HEX = hashlib.sha256(CONTENT).hexdigest()
B64 = base64.b64encode(hashlib.sha256(CONTENT).digest()).decode()


class FakeGraph:
    """``GET /<version>/<media-id>`` -> JSON with a url; ``GET /files/<media-id>`` -> the bytes.

    ``answers[path] = (status, body, headers)`` overrides one path; ``delay[path]`` stalls it.
    """

    def __init__(self):
        self.calls: list[tuple[str, str | None]] = []
        self.answers: dict[str, tuple[int, bytes | str | dict, dict]] = {}
        self.delay: dict[str, float] = {}
        self.meta: dict = {}
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def app(self, environ, start_response):
        request = Request(environ)
        path = request.path
        self.calls.append((path, request.headers.get("Authorization")))
        if path in self.delay:
            time.sleep(self.delay[path])
        if path in self.answers:
            status, body, headers = self.answers[path]
            if isinstance(body, dict):
                body, headers = json.dumps(body), {"Content-Type": "application/json", **headers}
            return Response(body, status=status, headers=headers)(environ, start_response)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            # like lookaside.fbsbx.com for an anonymous fetch: not the file
            return Response("<html>login</html>", status=404, mimetype="text/html")(environ, start_response)
        if path.startswith("/files/"):
            return Response(CONTENT, mimetype="application/octet-stream")(environ, start_response)
        media_id = path.rsplit("/", 1)[-1]
        info = {"messaging_product": "whatsapp", "url": f"{self.base}/files/{media_id}", "mime_type": "image/jpeg",
                "sha256": HEX, "file_size": len(CONTENT), "id": media_id, **self.meta}
        return Response(json.dumps(info), mimetype="application/json")(environ, start_response)

    def channel(self, **settings):
        return {"external_id": "1122334455667", "settings": {"api_base_url": self.base, **settings}}


@pytest.fixture
def graph():
    fake = FakeGraph()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def download(graph, media, **settings):
    return PROVIDER.download(media, graph.channel(**settings), {"access_token": TOKEN})


def failure(graph, media, **settings) -> MediaError:
    with pytest.raises(MediaError) as caught:
        download(graph, media, **settings)
    return caught.value


def test_download_by_media_id_resolves_then_fetches_with_the_token(graph):
    data, mime = download(graph, Media(kind="image", provider_media_id="65463453", sha256=B64))
    assert data == CONTENT and mime == "image/jpeg"
    assert graph.calls == [("/v24.0/65463453", f"Bearer {TOKEN}"), ("/files/65463453", f"Bearer {TOKEN}")]


def test_graph_version_and_base_url_come_from_the_channel_settings(graph):
    download(graph, Media(kind="image", provider_media_id="1"), graph_version="v21.0")
    assert graph.calls[0][0] == "/v21.0/1"
    channel = graph.channel()
    channel["settings"]["api_base_url"] = graph.base + "/"   # a trailing slash is tolerated
    PROVIDER.download(Media(kind="image", provider_media_id="2"), channel, {"access_token": TOKEN})
    assert graph.calls[2][0] == "/v24.0/2"


def test_default_host_is_graph_facebook_com():
    assert wa_media.DEFAULT_BASE == "https://graph.facebook.com" and wa_media.DEFAULT_VERSION == "v24.0"
    assert wa_media.TIMEOUT == (5, 30)


def test_webhook_url_is_fetched_directly_and_checked_against_the_base64_digest(graph):
    media = Media(kind="image", provider_media_id="65463453", url=f"{graph.base}/files/65463453",
                  mime_type="image/jpeg", sha256=B64)
    assert download(graph, media) == (CONTENT, "image/jpeg")
    assert graph.calls == [("/files/65463453", f"Bearer {TOKEN}")]


def test_expired_webhook_url_falls_back_to_the_media_id(graph):
    graph.answers["/files/old"] = (404, "gone", {})
    media = Media(kind="image", provider_media_id="65463453", url=f"{graph.base}/files/old")
    data, _ = download(graph, media)
    assert data == CONTENT
    assert [path for path, _ in graph.calls] == ["/files/old", "/v24.0/65463453", "/files/65463453"]


def test_webhook_url_without_a_media_id_reports_its_own_failure(graph):
    graph.answers["/files/old"] = (404, "gone", {})
    error = failure(graph, Media(kind="image", url=f"{graph.base}/files/old"))
    assert not error.retryable and "404" in str(error)


def test_sha256_mismatch_from_the_media_endpoint_is_retryable(graph):
    graph.meta = {"sha256": "0" * 64}
    error = failure(graph, Media(kind="image", provider_media_id="1"))
    assert error.retryable and "sha256 mismatch" in str(error)


def test_sha256_mismatch_from_the_webhook_is_retryable(graph):
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    error = failure(graph, Media(kind="image", provider_media_id="1", sha256=wrong))
    assert error.retryable and "sha256 mismatch" in str(error)
    error = failure(graph, Media(kind="image", url=f"{graph.base}/files/1", sha256=wrong))
    assert error.retryable


def test_uppercase_hex_and_unreadable_announced_digests(graph):
    graph.meta = {"sha256": HEX.upper()}
    # "4654+8g=" is what the fixtures carry: not a 32-byte digest, so it cannot be checked
    assert download(graph, Media(kind="image", provider_media_id="1", sha256="4654+8g="))[0] == CONTENT


def test_file_size_mismatch_is_retryable(graph):
    graph.meta = {"file_size": len(CONTENT) + 1}
    assert failure(graph, Media(kind="image", provider_media_id="1")).retryable
    graph.meta = {"file_size": str(len(CONTENT))}
    assert download(graph, Media(kind="image", provider_media_id="1"))[0] == CONTENT


def test_401_is_permanent_and_names_the_fix(graph):
    graph.answers["/v24.0/1"] = (401, {"error": {"message": "Error validating access token", "code": 190,
                                                 "type": "OAuthException"}}, {})
    error = failure(graph, Media(kind="image", provider_media_id="1"))
    assert not error.retryable
    assert str(error).startswith("access token rejected (401)")
    assert "update the channel's access_token" in str(error)


def test_expired_token_as_400_code_190_is_the_same_fix(graph):
    graph.answers["/v24.0/1"] = (400, {"error": {"message": "Session has expired", "code": 190,
                                                 "error_subcode": 463}}, {})
    error = failure(graph, Media(kind="image", provider_media_id="1"))
    assert not error.retryable and "update the channel's access_token" in str(error)


@pytest.mark.parametrize("status, body, words", [
    (403, {"error": {"message": "(#10) permission", "code": 10}}, "whatsapp_business_messaging"),
    (404, "", "ask the customer to send it again"),
    (400, {"error": {"message": "Unsupported get request", "code": 100}}, "graph_version"),
    (418, "", "unexpected answer 418"),
])
def test_client_errors_are_permanent(graph, status, body, words):
    graph.answers["/v24.0/1"] = (status, body, {})
    error = failure(graph, Media(kind="image", provider_media_id="1"))
    assert not error.retryable and words in str(error)


@pytest.mark.parametrize("path", ["/v24.0/1", "/files/1"])
@pytest.mark.parametrize("status, body", [
    (500, "oops"), (502, ""), (503, {"error": {"message": "Service temporarily unavailable", "code": 2}}),
    (429, {"error": {"message": "rate", "code": 80007}}),
    (400, {"error": {"message": "(#4) Application request limit reached", "code": 4}}),
    (400, {"error": {"message": "try later", "code": 999, "is_transient": True}}),
])
def test_server_errors_and_rate_limits_are_retryable(graph, path, status, body):
    graph.answers[path] = (status, body, {})
    error = failure(graph, Media(kind="image", provider_media_id="1"))
    assert error.retryable, error


def test_read_timeout_is_retryable(graph, monkeypatch):
    monkeypatch.setattr(wa_media, "TIMEOUT", (2, 0.2))
    graph.delay["/v24.0/1"] = 1.0
    error = failure(graph, Media(kind="image", provider_media_id="1"))
    assert error.retryable and "timed out" in str(error)


def test_connection_refused_is_retryable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    channel = {"settings": {"api_base_url": f"http://127.0.0.1:{port}"}}
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(Media(kind="image", provider_media_id="1"), channel, {"access_token": TOKEN})
    assert caught.value.retryable


def test_lookup_answers_that_are_not_usable(graph):
    graph.answers["/v24.0/1"] = (200, "<html>not json</html>", {"Content-Type": "text/html"})
    assert failure(graph, Media(kind="image", provider_media_id="1")).retryable
    graph.answers["/v24.0/2"] = (200, {"id": "2", "name": "not media"}, {})
    error = failure(graph, Media(kind="image", provider_media_id="2"))
    assert not error.retryable and "no url" in str(error)
    graph.answers["/v24.0/3"] = (200, {"url": "ftp://elsewhere/file"}, {})
    assert not failure(graph, Media(kind="image", provider_media_id="3")).retryable


def test_missing_token_or_reference_is_permanent(graph):
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(Media(kind="image", provider_media_id="1"), graph.channel(), {})
    assert not caught.value.retryable and "access_token" in str(caught.value)
    assert not failure(graph, Media(kind="image")).retryable
    assert graph.calls == []


def test_mime_type_falls_back_to_the_webhook_then_the_response(graph):
    graph.meta = {"mime_type": None}
    assert download(graph, Media(kind="image", provider_media_id="1", mime_type="image/png"))[1] == "image/png"
    assert download(graph, Media(kind="image", provider_media_id="1"))[1] == "application/octet-stream"


def test_oversized_download_is_permanent(graph, monkeypatch):
    monkeypatch.setattr(wa_media, "MAX_BYTES", 100)
    error = failure(graph, Media(kind="document", provider_media_id="1"))
    assert not error.retryable and "larger than" in str(error)


@pytest.mark.parametrize("value, ok", [(HEX, True), (HEX.upper(), True), (B64, True),
                                       (B64.rstrip("="), True), ("4654+8g=", False), ("", False), (None, False),
                                       ("z" * 64, False)])
def test_digest_forms(value, ok):
    assert (wa_media.digest_bytes(value) == hashlib.sha256(CONTENT).digest()) is ok
