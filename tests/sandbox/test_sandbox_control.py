"""The control API under /_sandbox/: config, messages, stats, reset, media preload, health; and throughput."""
from __future__ import annotations

import http.client
import json
import time

import pytest

from gateway.sandbox import make_app
from gateway.sandbox.faults import ConfigError
from sandbox_helpers import cloud_send, configure, text_body


def test_health_and_config_roundtrip(http, make_sandbox):
    sandbox = make_sandbox(latency_ms=0, status_delay_ms=5)
    assert http.get(f"{sandbox.url}/_sandbox/health").json() == {"ok": True}
    out = configure(http, sandbox, scope="123", status_429_rate=0.25, retry_after_s=2)
    assert out["scope"] == "123" and out["settings"] == {"status_429_rate": 0.25, "retry_after_s": 2}
    assert out["effective"]["status_429_rate"] == 0.25 and out["effective"]["status_delay_ms"] == 5
    doc = http.get(f"{sandbox.url}/_sandbox/config").json()
    assert doc["global"] == {"latency_ms": 0, "status_delay_ms": 5}
    assert doc["scopes"] == {"123": {"status_429_rate": 0.25, "retry_after_s": 2}}
    assert doc["startup"] == {"seed": 7} and "whatsapp_error_code" in doc["defaults"]
    replaced = configure(http, sandbox, scope="123", replace=True, latency_ms=1)
    assert replaced["settings"] == {"latency_ms": 1}
    http.delete(f"{sandbox.url}/_sandbox/config?scope=123")
    assert http.get(f"{sandbox.url}/_sandbox/config").json()["scopes"] == {}


@pytest.mark.parametrize("bad", [{"nope": 1}, {"status_429_rate": 2}, {"latency_ms": -1}, {"statuses": ["gone"]},
                                 {"gateway_url": "localhost:8000"}, {"whatsapp_error_code": "131047"},
                                 {"async_failure": "yes"}, {"scope": 5}])
def test_config_rejects_bad_values(http, sandbox, bad):
    resp = http.post(f"{sandbox.url}/_sandbox/config", json=bad)
    assert resp.status_code == 400 and resp.json()["error"]


def test_make_app_rejects_unknown_settings():
    with pytest.raises(ConfigError):
        make_app({"no_such_setting": 1})


def test_messages_listing_filters_and_clear(http, sandbox):
    cloud_send(http, sandbox, text_body(text="one"))
    mark = http.get(f"{sandbox.url}/_sandbox/messages").json()
    assert mark["count"] == 1 and mark["last_seq"] == 1
    (first,) = mark["messages"]
    assert first["method"] == "POST" and first["path"] == "/v24.0/1029384756/messages"
    assert first["provider"] == "whatsapp" and first["channel_id"] == "1029384756"
    assert first["recipient"] == "34600000001" and first["type"] == "text"
    assert first["body"]["text"]["body"] == "one" and first["http_status"] == 200
    assert first["provider_message_id"].startswith("wamid.")
    assert 0 < first["received_at"] <= mark["now"] <= time.monotonic() * 1000 + 1
    time.sleep(0.005)
    cloud_send(http, sandbox, text_body(to="+34600000002", text="two"))
    cloud_send(http, sandbox, {"messaging_product": "whatsapp"})
    since = http.get(f"{sandbox.url}/_sandbox/messages", params={"since": first["received_at"]}).json()
    assert [m["seq"] for m in since["messages"]] == [2, 3]
    assert http.get(f"{sandbox.url}/_sandbox/messages?after_seq=2").json()["count"] == 1
    assert http.get(f"{sandbox.url}/_sandbox/messages?recipient=34600000002").json()["count"] == 1
    assert http.get(f"{sandbox.url}/_sandbox/messages?accepted=0").json()["messages"][0]["http_status"] == 400
    assert http.get(f"{sandbox.url}/_sandbox/messages?limit=1").json()["count"] == 1
    assert http.get(f"{sandbox.url}/_sandbox/messages?since=x").status_code == 400
    assert http.delete(f"{sandbox.url}/_sandbox/messages").json() == {"cleared": 3}
    assert http.get(f"{sandbox.url}/_sandbox/messages").json()["count"] == 0
    assert http.get(f"{sandbox.url}/_sandbox/messages/wamid.nope").status_code == 404


def test_stats_and_reset(http, make_sandbox):
    sandbox = make_sandbox(status_delay_ms=3)
    cloud_send(http, sandbox, text_body())
    cloud_send(http, sandbox, text_body(), token=None)
    configure(http, sandbox, whatsapp_error_code=131026)
    stats = http.get(f"{sandbox.url}/_sandbox/stats").json()
    assert stats["counts"]["requests"] == 2 and stats["counts"]["whatsapp:200"] == 1
    assert stats["counts"]["whatsapp:401"] == 1 and stats["messages_stored"] == 2
    assert stats["callbacks"]["pending"] == 0
    assert http.post(f"{sandbox.url}/_sandbox/reset").json() == {"reset": True}
    assert http.get(f"{sandbox.url}/_sandbox/stats").json()["counts"] == {}
    config = http.get(f"{sandbox.url}/_sandbox/config").json()
    assert config["global"] == {"status_delay_ms": 3}          # back to the startup settings
    assert cloud_send(http, sandbox, text_body()).status_code == 200


def test_preloaded_media_can_be_downloaded_like_inbound_media(http, sandbox):
    data = b"%PDF-1.4 fake"
    media = http.post(f"{sandbox.url}/_sandbox/media", data=data, headers={"Content-Type": "application/pdf"}).json()
    info = http.get(f"{sandbox.url}/v24.0/{media['id']}", headers={"Authorization": "Bearer t"}).json()
    assert info["mime_type"] == "application/pdf" and info["file_size"] == len(data)
    assert http.get(info["url"], headers={"Authorization": "Bearer t"}).content == data


def test_unknown_control_endpoint(http, sandbox):
    assert http.get(f"{sandbox.url}/_sandbox/nope").status_code == 404


def test_keep_alive_throughput(sandbox):
    """A keep-alive client gets well over a thousand sends per second (a lean client; the bar is 500 here to
    stay reliable on a busy CI machine)."""
    port = int(sandbox.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps(text_body()).encode()
    headers = {"Authorization": "Bearer t", "Content-Type": "application/json"}
    n = 1000
    started = time.perf_counter()
    for _ in range(n):
        conn.request("POST", "/v24.0/1029384756/messages", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    rate = n / (time.perf_counter() - started)
    conn.close()
    assert rate > 500, rate


def test_connections_are_kept_alive_even_when_a_body_is_left_unread(sandbox):
    port = int(sandbox.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/_sandbox/health")
    resp = conn.getresponse()
    assert json.loads(resp.read()) == {"ok": True}
    assert resp.getheader("Connection") is None and not resp.will_close
    sock = conn.sock
    # 405 without reading the body: the server drains it, the next request line is parsed correctly.
    conn.request("POST", "/_sandbox/health", body=b"x" * 100_000, headers={"Content-Type": "text/plain"})
    resp = conn.getresponse()
    assert resp.status == 405
    resp.read()
    # A chunked body on the same connection.
    conn.request("POST", "/v24.0/1/messages", body=iter([b'{"messaging_product":"whatsapp",', b'"to":"34600000001",'
                                                        b'"text":{"body":"x"}}']),
                 headers={"Authorization": "Bearer t", "Content-Type": "application/json"}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["messages"][0]["id"].startswith("wamid.")
    assert conn.sock is sock
    conn.close()
