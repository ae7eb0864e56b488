"""X-Hub-Signature-256 and the GET handshake for WhatsApp. Pure; no database."""
from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from webhooks.whatsapp import PROVIDER
from webhooks.whatsapp import verify as wa_verify

SIGNATURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "signatures"
VECTORS_FILE = SIGNATURES / "meta_x_hub_signature_256_vectors.json"
VECTORS = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"] if VECTORS_FILE.is_file() else []

URL = "https://gw.example/webhooks/whatsapp"
SECRET = "s3cret-app-secret"
BODY = b'{"object":"whatsapp_business_account","entry":[]}'


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def by_name(name):
    for v in VECTORS:
        if v["name"] == name:
            return v
    pytest.skip(f"vector {name!r} not in {VECTORS_FILE}")


def test_published_real_payload_vector():
    v = by_name("pywa_real_cloud_api_text_message")
    raw = v["raw_body"].encode("utf-8")
    headers = {"X-Hub-Signature-256": v["expected_header"]}
    assert PROVIDER.verify(raw, headers, URL, {"app_secret": v["app_secret"]})
    assert not PROVIDER.verify(raw, headers, URL, {"app_secret": v["app_secret"] + "x"})


def test_published_unicode_escaping_vector():
    v = by_name("whatsapp_api_js_unicode_escaping")
    escaped = v["escaped_body_that_is_hashed"].encode("ascii")
    headers = {"x-hub-signature-256": v["expected_header"]}
    assert PROVIDER.verify(escaped, headers, URL, {"app_secret": v["app_secret"]})
    # hashing the decoded text (what re-serialising would do) must not match
    assert not PROVIDER.verify(v["decoded_body"].encode("utf-8"), headers, URL, {"app_secret": v["app_secret"]})
    assert wa_verify.compute_signature(v["decoded_body"].encode("utf-8"), v["app_secret"]) == \
        v["hash_of_unescaped_utf8_for_contrast"]


def test_published_plain_hmac_vector():
    v = by_name("plain_hmac_sanity")
    assert wa_verify.compute_signature(v["raw_body"].encode(), v["app_secret"]) == "sha256=" + v["expected_hex"]
    assert wa_verify.signature_matches(v["raw_body"].encode(), "sha256=" + v["expected_hex"], v["app_secret"])


def test_good_signature():
    assert PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY)}, URL, {"app_secret": SECRET})


def test_wrong_signature_and_wrong_secret():
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY, "other")}, URL, {"app_secret": SECRET})
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": "sha256=" + "0" * 64}, URL, {"app_secret": SECRET})
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY)[7:]}, URL, {"app_secret": SECRET})
    sha1 = "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature": sha1}, URL, {"app_secret": SECRET})
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": "sha256=ñ" * 3}, URL, {"app_secret": SECRET})


def test_missing_header_or_secret():
    assert not PROVIDER.verify(BODY, {}, URL, {"app_secret": SECRET})
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": ""}, URL, {"app_secret": SECRET})
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY)}, URL, {})
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY)}, URL, {"app_secret": ""})
    assert not PROVIDER.verify(BODY, {"X-Hub-Signature-256": sign(BODY)}, URL, {"app_secret": None})


def test_body_changed_by_one_byte():
    header = {"X-Hub-Signature-256": sign(BODY)}
    changed = bytearray(BODY)
    changed[10] ^= 0x01
    assert not PROVIDER.verify(bytes(changed), header, URL, {"app_secret": SECRET})
    assert not PROVIDER.verify(BODY + b"\n", header, URL, {"app_secret": SECRET})


@pytest.mark.parametrize("name", ["X-Hub-Signature-256", "x-hub-signature-256", "X-HUB-SIGNATURE-256",
                                  "x-Hub-signature-256"])
def test_header_casing(name):
    assert PROVIDER.verify(BODY, {name: sign(BODY)}, URL, {"app_secret": SECRET})


def test_uppercase_hex_and_werkzeug_headers():
    assert PROVIDER.verify(BODY, {"X-Hub-Signature-256": "sha256=" + sign(BODY)[7:].upper()}, URL,
                           {"app_secret": SECRET})
    from werkzeug.datastructures import Headers
    assert PROVIDER.verify(BODY, Headers({"x-hub-signature-256": sign(BODY)}), URL, {"app_secret": SECRET})


def test_handshake_good_token():
    params = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "tok-123"}
    assert wa_verify.verify_handshake(params, "tok-123") == "1158201444"


def test_handshake_wrong_token():
    params = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "tok-124"}
    assert wa_verify.verify_handshake(params, "tok-123") is None
    assert wa_verify.verify_handshake({**params, "hub.verify_token": ""}, "") is None
    assert wa_verify.verify_handshake({"hub.mode": "subscribe", "hub.challenge": "1"}, "tok-123") is None


def test_handshake_wrong_mode():
    params = {"hub.mode": "unsubscribe", "hub.challenge": "1158201444", "hub.verify_token": "tok-123"}
    assert wa_verify.verify_handshake(params, "tok-123") is None
    assert wa_verify.verify_handshake({**params, "hub.mode": None}, "tok-123") is None


def test_handshake_with_werkzeug_args():
    from werkzeug.datastructures import MultiDict
    args = MultiDict({"hub.mode": "subscribe", "hub.challenge": "abc", "hub.verify_token": "tok"})
    assert wa_verify.verify_handshake(args, "tok") == "abc"
