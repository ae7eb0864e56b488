"""Messenger/Instagram attachment download against a real HTTP server on 127.0.0.1. No database."""
from __future__ import annotations

import socket
import threading
import time

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from gateway.providers import Media, MediaError
from webhooks.instagram import PROVIDER as INSTAGRAM
from webhooks.messenger import PROVIDER
from webhooks.messenger import download

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
CHANNEL = {"id": "c1", "external_id": "106000000000001", "settings": {}}
CREDS = {"app_secret": "s", "page_access_token": "t", "verify_token": "v"}


@Request.application
def cdn(request: Request) -> Response:
    path = request.path
    if path == "/ok.png":
        return Response(PNG, content_type="image/png")
    if path == "/voice.mp4":
        return Response(b"audio", headers={"Content-Type": "audio/mp4; codecs=mp4a.40.2"})
    if path == "/slow":
        time.sleep(1.5)
        return Response(b"late")
    status = int(path.strip("/"))
    return Response(f"status {status}", status=status)


@pytest.fixture(scope="module")
def base_url():
    server = make_server("127.0.0.1", 0, cdn, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def fetch(url: str, provider=PROVIDER, **media):
    return provider.download(Media(kind="image", url=url, **media), CHANNEL, CREDS)


def test_200_returns_bytes_and_media_type(base_url):
    assert fetch(f"{base_url}/ok.png") == (PNG, "image/png")
    assert fetch(f"{base_url}/voice.mp4") == (b"audio", "audio/mp4")


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_expired_url_is_permanent_and_says_so(base_url, status):
    with pytest.raises(MediaError) as err:
        fetch(f"{base_url}/{status}")
    assert err.value.retryable is False
    assert f"the attachment URL expired ({status})" in str(err.value)


def test_other_4xx_is_permanent(base_url):
    with pytest.raises(MediaError) as err:
        fetch(f"{base_url}/400")
    assert err.value.retryable is False and "(400)" in str(err.value)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_5xx_and_429_are_retryable(base_url, status):
    with pytest.raises(MediaError) as err:
        fetch(f"{base_url}/{status}")
    assert err.value.retryable is True and f"({status})" in str(err.value)


def test_read_timeout_is_retryable(base_url, monkeypatch):
    monkeypatch.setattr(download, "READ_TIMEOUT_S", 0.2)
    with pytest.raises(MediaError) as err:
        fetch(f"{base_url}/slow")
    assert err.value.retryable is True


def test_connection_refused_is_retryable():
    with socket.socket() as sock:   # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(MediaError) as err:
        fetch(f"http://127.0.0.1:{port}/ok.png")
    assert err.value.retryable is True


def test_too_large_is_permanent(base_url, monkeypatch):
    monkeypatch.setattr(download, "MAX_BYTES", 100)
    with pytest.raises(MediaError) as err:
        fetch(f"{base_url}/ok.png")
    assert err.value.retryable is False and "larger than" in str(err.value)


def test_no_url_or_unusable_url_is_permanent():
    for url in (None, ""):
        with pytest.raises(MediaError) as err:
            fetch(url, provider=INSTAGRAM)
        assert err.value.retryable is False and "Instagram attachment has no URL" in str(err.value)
    for url in ("ftp://example.com/x.png", "not a url"):
        with pytest.raises(MediaError) as err:
            fetch(url)
        assert err.value.retryable is False


def test_instagram_downloads_the_same_way(base_url):
    assert fetch(f"{base_url}/ok.png", provider=INSTAGRAM) == (PNG, "image/png")
