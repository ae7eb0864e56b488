"""Messenger provider surface: attributes, X-Hub-Signature-256, handshake, dedupe, send. Pure."""
from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from werkzeug.datastructures import Headers

from gateway.providers import OutboundMessage, SendResult
from webhooks.messenger import PROVIDER

SIGNATURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "signatures"
VECTORS_FILE = SIGNATURES / "meta_x_hub_signature_256_vectors.json"
VECTORS = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"] if VECTORS_FILE.is_file() else []

URL = "https://gw.example/webhooks/messenger"
SECRET = "messenger-app-secret"
CREDS = {"app_secret": SECRET, "page_access_token": "EAAG...", "verify_token": "tok"}
BODY = b'{"object":"page","entry":[{"id":"1","time":1,"messaging":[]}]}'


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_provider_attributes():
    assert PROVIDER.name == "messenger"
    assert PROVIDER.required_credentials == ("app_secret", "page_access_token", "verify_token")
    assert PROVIDER.optional_credentials == ()
    assert PROVIDER.ack == ("", "text/plain")


def test_good_signature_any_header_case():
    assert PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY)}, URL, CREDS)
    assert PROVIDER.verify(BODY, {"x-hub-signature-256": sign(BODY)}, URL, CREDS)
    assert PROVIDER.verify(BODY, Headers({"X-Hub-Signature-256": sign(BODY)}), URL, CREDS)


def test_wrong_secret_and_malformed_values_fail():
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY, "other")}, URL, CREDS)
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY)[len("sha256="):]}, URL, CREDS)
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": "sha256=" + "0" * 64}, URL, CREDS)
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": "sha256=ñ"}, URL, CREDS)
    sha1 = "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature": sha1}, URL, CREDS)


def test_missing_header_or_secret_fails():
    assert not PROVIDER.verify(BODY, {}, URL, CREDS)
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": ""}, URL, CREDS)
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY)}, URL, {})
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY)}, URL, {"app_secret": ""})
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY)}, URL, {"app_secret": None})
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY)}, URL, None)


def test_tampered_body_fails():
    header = {"X-Hub-Signature-256": sign(BODY)}
    assert not PROVIDER.verify(BODY.replace(b'"1"', b'"2"'), header, URL, CREDS)
    assert not PROVIDER.verify(BODY + b" ", header, URL, CREDS)


def test_escaped_non_ascii_body_verifies_only_as_received():
    escaped = json.dumps({"object": "page", "text": "¡Hola 👋"}, separators=(",", ":")).encode("ascii")
    decoded = json.dumps({"object": "page", "text": "¡Hola 👋"}, separators=(",", ":"),
                         ensure_ascii=False).encode("utf-8")
    header = {"X-Hub-Signature-256": sign(escaped)}
    assert PROVIDER.verify(escaped, header, URL, CREDS)
    assert not PROVIDER.verify(decoded, header, URL, CREDS)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.get("name", "?"))
def test_published_meta_vectors(vector):
    raw = (vector.get("raw_body") or vector.get("escaped_body_that_is_hashed") or "").encode("utf-8")
    expected = vector.get("expected_header") or "sha256=" + vector["expected_hex"]
    assert PROVIDER.verify(raw, {"X-Hub-Signature-256": expected}, URL, {"app_secret": vector["app_secret"]})


def test_handshake():
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    assert PROVIDER.handshake(params) == ("tok", "1158201444")
    assert PROVIDER.handshake({**params, "hub.mode": "unsubscribe"}) is None
    assert PROVIDER.handshake({"hub.mode": "subscribe", "hub.challenge": "1"}) is None
    assert PROVIDER.handshake({"hub.mode": "subscribe", "hub.verify_token": "tok"}) is None
    assert PROVIDER.handshake({}) is None


def test_dedupe_key_is_the_body_hash():
    assert PROVIDER.dedupe_key(BODY, {}) == "sha256:" + hashlib.sha256(BODY).hexdigest()
    assert PROVIDER.dedupe_key(BODY, {"X-Other": "1"}) == PROVIDER.dedupe_key(BODY, {})
    assert PROVIDER.dedupe_key(BODY + b" ", {}) != PROVIDER.dedupe_key(BODY, {})


def test_send_takes_message_channel_and_credentials():
    # Sending itself is covered in test_messenger_send.py; without a token nothing goes out.
    message = OutboundMessage(id="m1", to="1", to_kind="psid", kind="text", content={"body": "hi"})
    result = PROVIDER.send(message, {"external_id": "106000000000001", "settings": {}}, {"app_secret": "s"})
    assert result == SendResult("failed", error_code="config", channel_problem=True,
                                reason="the Messenger channel has no page_access_token")
