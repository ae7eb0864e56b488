"""Twilio media download against real local HTTP servers (basic auth, redirect, errors). Pure; no database."""
from __future__ import annotations

import base64
import socket
import threading
import time

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from gateway.providers import Media, MediaError
from webhooks.twilio import PROVIDER
from webhooks.twilio import media as tw_media

SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "auth-token-for-tests"
MEDIA_PATH = f"/2010-04-01/Accounts/{SID}/Messages/MM0123/Media"
TWILIO = "https://api.twilio.com"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 300   # ~77 kB, several chunks


def _authorised(request: Request) -> bool:
    expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    return request.headers.get("Authorization") == expected


class Servers:
    """The Twilio API stand-in and a separate 'storage host' it redirects to (another port: requests
    treats it as another origin and drops the Authorization header, as it does for Twilio's real storage)."""

    def __init__(self):
        self.seen: list[tuple[str, str, str | None]] = []   # (server, path, Authorization header)
        self.api = make_server("127.0.0.1", 0, self._api_app, threaded=True)
        self.storage = make_server("127.0.0.1", 0, self._storage_app, threaded=True)
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (self.api, self.storage)]
        for t in self.threads:
            t.start()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.api.server_port}"

    @property
    def storage_base(self) -> str:
        return f"http://127.0.0.1:{self.storage.server_port}"

    @Request.application
    def _api_app(self, request: Request) -> Response:
        self.seen.append(("api", request.full_path.rstrip("?"), request.headers.get("Authorization")))
        name = request.path.rsplit("/", 1)[-1]
        if name == "public":
            return Response(b"public bytes", content_type="text/plain")
        if not _authorised(request):
            return Response("unauthorised", status=401, headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if name == "ME_ok":
            return Response(JPEG, content_type="image/jpeg")
        if name == "ME_redirect":
            return Response("", status=307, headers={"Location": f"{self.storage_base}/bucket/ME_redirect?sig=abc"})
        if name == "ME_loop":
            return Response("", status=302, headers={"Location": request.url})
        if name == "ME_slow":
            time.sleep(1.0)
            return Response(b"late", content_type="image/png")
        if name == "ME_untyped":
            response = Response(b"raw")
            del response.headers["Content-Type"]
            return response
        statuses = {"ME_gone": 404, "ME_boom": 500, "ME_busy": 429, "ME_forbidden": 403, "ME_teapot": 418,
                    "ME_unavailable": 503}
        if name in statuses:
            return Response("no", status=statuses[name])
        return Response("unknown test path", status=400)

    @Request.application
    def _storage_app(self, request: Request) -> Response:
        self.seen.append(("storage", request.full_path.rstrip("?"), request.headers.get("Authorization")))
        return Response(b"stored bytes", content_type="audio/ogg")

    def close(self):
        for s in (self.api, self.storage):
            s.shutdown()
            s.server_close()


@pytest.fixture(scope="module")
def servers():
    s = Servers()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _forget(servers, monkeypatch):
    servers.seen.clear()
    # a developer's HTTP(S)_PROXY must not swallow requests to the local servers
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def media(name: str, mime: str | None = "image/jpeg") -> Media:
    return Media(kind="image", url=f"{TWILIO}{MEDIA_PATH}/{name}", mime_type=mime)


def channel(servers) -> dict:
    return {"id": "ch1", "kind": "twilio", "external_id": "+14155238886", "settings": {"api_base_url": servers.api_base}}


CREDS = {"account_sid": SID, "auth_token": TOKEN}


def test_200_with_basic_auth(servers):
    data, content_type = PROVIDER.download(media("ME_ok"), channel(servers), CREDS)
    assert data == JPEG and content_type == "image/jpeg"
    assert servers.seen == [("api", f"{MEDIA_PATH}/ME_ok",
                             "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode())]


def test_redirect_is_followed_and_the_storage_host_gets_no_credentials(servers):
    data, content_type = PROVIDER.download(media("ME_redirect", "audio/ogg"), channel(servers), CREDS)
    assert (data, content_type) == (b"stored bytes", "audio/ogg")
    assert [(who, path) for who, path, _ in servers.seen] == [
        ("api", f"{MEDIA_PATH}/ME_redirect"), ("storage", "/bucket/ME_redirect?sig=abc")]
    assert servers.seen[0][2] is not None and servers.seen[1][2] is None


@pytest.mark.parametrize("creds", [{"account_sid": SID, "auth_token": "wrong"}, {"account_sid": "ACother", "auth_token": TOKEN}])
def test_401_is_not_retryable_and_says_what_to_check(servers, creds):
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(media("ME_ok"), channel(servers), creds)
    assert caught.value.retryable is False
    assert str(caught.value) == ("Twilio rejected the credentials (401): "
                                 "check the channel's account_sid/auth_token")


def test_403_is_not_retryable(servers):
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(media("ME_forbidden"), channel(servers), CREDS)
    assert caught.value.retryable is False and "(403)" in str(caught.value)


def test_404_means_deleted(servers):
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(media("ME_gone"), channel(servers), CREDS)
    assert caught.value.retryable is False and "media deleted" in str(caught.value)


@pytest.mark.parametrize("name", ["ME_boom", "ME_unavailable", "ME_busy"])
def test_5xx_and_429_are_retryable(servers, name):
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(media(name), channel(servers), CREDS)
    assert caught.value.retryable is True


def test_other_4xx_is_not_retryable(servers):
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(media("ME_teapot"), channel(servers), CREDS)
    assert caught.value.retryable is False and "418" in str(caught.value)


def test_redirect_loop_is_not_retryable(servers):
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(media("ME_loop"), channel(servers), CREDS)
    assert caught.value.retryable is False


def test_read_timeout_is_retryable(servers, monkeypatch):
    monkeypatch.setattr(tw_media, "TIMEOUT", (2, 0.2))
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(media("ME_slow"), channel(servers), CREDS)
    assert caught.value.retryable is True


def test_connection_refused_is_retryable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = {"settings": {"api_base_url": f"http://127.0.0.1:{port}"}}
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(media("ME_ok"), closed, CREDS)
    assert caught.value.retryable is True


def test_content_type_falls_back_to_the_announced_one(servers):
    assert PROVIDER.download(media("ME_untyped", "image/png"), channel(servers), CREDS) == (b"raw", "image/png")


def test_too_large_media_is_refused(servers, monkeypatch):
    monkeypatch.setattr(tw_media, "MAX_BYTES", 1000)
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(media("ME_ok"), channel(servers), CREDS)
    assert caught.value.retryable is False


def test_credentials_are_never_sent_to_a_host_that_is_not_twilio(servers):
    foreign = Media(kind="document", url=f"{servers.api_base}{MEDIA_PATH}/public")
    data, content_type = PROVIDER.download(foreign, {"settings": {}}, CREDS)
    assert data == b"public bytes" and content_type.startswith("text/plain")
    assert servers.seen == [("api", f"{MEDIA_PATH}/public", None)]


def test_missing_url_or_credentials_are_not_retryable(servers):
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(Media(kind="image"), channel(servers), CREDS)
    assert caught.value.retryable is False
    with pytest.raises(MediaError) as caught:
        PROVIDER.download(media("ME_ok"), channel(servers), {"account_sid": SID})
    assert caught.value.retryable is False
    assert servers.seen == []


@pytest.mark.parametrize("url, settings, expected", [
    ("https://api.twilio.com/2010-04-01/A/M/ME1", {"api_base_url": "http://sandbox:8080/"},
     "http://sandbox:8080/2010-04-01/A/M/ME1"),
    ("https://api.twilio.com/2010-04-01/A/M/ME1?x=1", {"api_base_url": "http://sandbox/twilio"},
     "http://sandbox/twilio/2010-04-01/A/M/ME1?x=1"),
    ("https://api.twilio.com/2010-04-01/A/M/ME1", {}, "https://api.twilio.com/2010-04-01/A/M/ME1"),
    ("https://media.example.com/x", {"api_base_url": "http://sandbox"}, "https://media.example.com/x"),
])
def test_api_base_url_override(url, settings, expected):
    assert tw_media.resolve_url(url, {"settings": settings}) == expected


@pytest.mark.parametrize("url, allowed", [
    ("https://api.twilio.com/2010-04-01/x", True), ("https://media.twiliocdn.com.evil.example/x", False),
    ("http://api.twilio.com/x", False), ("https://eviltwilio.com/x", False), ("https://mms.twilio.com/x", True),
])
def test_which_hosts_get_credentials(url, allowed):
    assert tw_media.may_authenticate(url, {"settings": {}}) is allowed
