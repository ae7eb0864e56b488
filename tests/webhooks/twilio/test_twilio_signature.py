"""X-Twilio-Signature (protocols.md D3): the shared vectors, ports, keys, JSON bodies. Pure; no database."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from webhooks.twilio import PROVIDER
from webhooks.twilio import signature as tw_signature

VECTORS_FILE = (Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "signatures"
                / "twilio_request_validator_vectors.json")
SHARED = json.loads(VECTORS_FILE.read_text(encoding="utf-8")) if VECTORS_FILE.is_file() else {"vectors": []}
VECTORS = SHARED["vectors"]

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON_CT = {"Content-Type": "application/json"}

# Twilio's published example (webhooks-security docs; first vector of the shared file).
DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOCS_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
               "From": "+14158675309", "To": "+18005551212"}
DOCS_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="

URL = "https://gw.example.com/webhooks/twilio"
TOKEN = "token-primary-0123456789abcdef"
INBOUND = [("MessageSid", "SM0123"), ("From", "+15551230000"), ("To", "+14155238886"),
           ("Body", "hello"), ("SmsStatus", "received"), ("FromZip", "")]


def form(pairs) -> bytes:
    return urlencode(list(pairs.items()) if isinstance(pairs, dict) else list(pairs)).encode("ascii")


def signed(url: str, pairs, key: str = TOKEN) -> dict:
    items = list(pairs.items()) if isinstance(pairs, dict) else list(pairs)
    return {**FORM, "X-Twilio-Signature": tw_signature.compute(url, items, key)}


def vector_request(v: dict) -> tuple[bytes, dict]:
    if "raw_body" in v:
        return v["raw_body"].encode("utf-8"), {**JSON_CT, "X-Twilio-Signature": v["expected_signature"]}
    pairs = [tuple(p) for p in v["params_multi"]] if "params_multi" in v else list(v["params"].items())
    return form(pairs), {**FORM, "X-Twilio-Signature": v["expected_signature"]}


def test_vector_file_is_there_and_covers_every_variant():
    assert VECTORS, f"no vectors in {VECTORS_FILE}"
    names = {v["name"] for v in VECTORS}
    assert {"form_params_basic", "same_params_url_with_explicit_port_443", "repeated_keys_multidict",
            "json_body_bodySHA256_variant"} <= names


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_every_shared_vector_verifies(vector):
    raw, headers = vector_request(vector)
    creds = {"account_sid": "AC1", "auth_token": SHARED["auth_token"]}
    assert PROVIDER.verify(raw, headers, vector["url"], creds)
    assert not PROVIDER.verify(raw, headers, vector["url"], {"auth_token": SHARED["auth_token"] + "x"})


@pytest.mark.parametrize("vector", [v for v in VECTORS if "raw_body" not in v], ids=lambda v: v["name"])
def test_every_form_vector_computes_exactly(vector):
    pairs = [tuple(p) for p in vector["params_multi"]] if "params_multi" in vector else list(vector["params"].items())
    assert tw_signature.compute(vector["url"], pairs, SHARED["auth_token"]) == vector["expected_signature"]


def test_json_vector_hash_is_the_body_hash():
    v = next(v for v in VECTORS if "raw_body" in v)
    assert hashlib.sha256(v["raw_body"].encode()).hexdigest() == v["expected_body_sha256_hex"]
    assert tw_signature.compute(v["url"], (), SHARED["auth_token"]) == v["expected_signature"]


def test_twilio_published_example():
    assert tw_signature.compute(DOCS_URL, DOCS_PARAMS.items(), "12345") == DOCS_SIGNATURE
    headers = {**FORM, "X-Twilio-Signature": DOCS_SIGNATURE}
    assert PROVIDER.verify(form(DOCS_PARAMS), headers, DOCS_URL, {"auth_token": "12345"})


def test_signed_text_sorts_names_and_each_repeated_value():
    text = tw_signature.signed_text("u", [("b", "2"), ("a", "z"), ("a", "y"), ("a", "y"), ("B", "x")])
    assert text == "uBxayazb2"


@pytest.mark.parametrize("signed_url, called_url", [
    ("https://mycompany.com/myapp.php?foo=1&bar=2", "https://mycompany.com:443/myapp.php?foo=1&bar=2"),
    ("https://mycompany.com:443/myapp.php?foo=1&bar=2", "https://mycompany.com/myapp.php?foo=1&bar=2"),
    ("http://mycompany.com/myapp.php", "http://mycompany.com:80/myapp.php"),
    ("http://mycompany.com:80/myapp.php", "http://mycompany.com/myapp.php"),
])
def test_default_port_added_or_removed(signed_url, called_url):
    headers = signed(signed_url, DOCS_PARAMS, "12345")
    assert PROVIDER.verify(form(DOCS_PARAMS), headers, called_url, {"auth_token": "12345"})


def test_non_default_port_is_never_dropped():
    headers = signed("http://mycompany.com/myapp.php", DOCS_PARAMS, "12345")
    assert not PROVIDER.verify(form(DOCS_PARAMS), headers, "http://mycompany.com:1234/myapp.php",
                               {"auth_token": "12345"})
    # and https's default port is not http's
    headers = signed("https://mycompany.com:80/myapp.php", DOCS_PARAMS, "12345")
    assert not PROVIDER.verify(form(DOCS_PARAMS), headers, "https://mycompany.com/myapp.php",
                               {"auth_token": "12345"})


@pytest.mark.parametrize("url, toggled", [
    ("https://h.example/p?q=1", "https://h.example:443/p?q=1"),
    ("https://h.example", "https://h.example:443"),
    ("https://h.example?x=%2F", "https://h.example:443?x=%2F"),
    ("http://user:pw@h.example:80/p", "http://user:pw@h.example/p"),
    ("https://[2001:db8::1]/p", "https://[2001:db8::1]:443/p"),
    ("https://[2001:db8::1]:443/p", "https://[2001:db8::1]/p"),
    ("HTTPS://H.example/p", "HTTPS://H.example:443/p"),
])
def test_url_variants_keep_everything_but_the_port(url, toggled):
    assert tw_signature.url_variants(url) == [url, toggled]


@pytest.mark.parametrize("url", ["https://h.example:8443/p", "ftp://h.example/p", "not a url", ""])
def test_url_variants_leave_other_urls_alone(url):
    assert tw_signature.url_variants(url) == [url]


def test_good_signature_and_case_insensitive_header_name():
    headers = signed(URL, INBOUND)
    assert PROVIDER.verify(form(INBOUND), headers, URL, {"auth_token": TOKEN})
    lower = {k.lower(): v for k, v in headers.items()}
    assert PROVIDER.verify(form(INBOUND), lower, URL, {"auth_token": TOKEN})


def test_wrong_token_is_rejected():
    headers = signed(URL, INBOUND, "some-other-token")
    assert not PROVIDER.verify(form(INBOUND), headers, URL, {"auth_token": TOKEN})


@pytest.mark.parametrize("tamper", [
    lambda pairs: [(k, "bye" if k == "Body" else v) for k, v in pairs],
    lambda pairs: pairs + [("Extra", "1")],
    lambda pairs: [p for p in pairs if p[0] != "FromZip"],          # a blank value is still signed
    lambda pairs: [(k, v + " ") if k == "Body" else (k, v) for k, v in pairs],   # whitespace matters
])
def test_tampered_params_are_rejected(tamper):
    headers = signed(URL, INBOUND)
    assert not PROVIDER.verify(form(tamper(list(INBOUND))), headers, URL, {"auth_token": TOKEN})


def test_other_url_is_rejected():
    headers = signed(URL, INBOUND)
    for url in (URL + "?x=1", URL.replace("https:", "http:"), "https://evil.example.com/webhooks/twilio"):
        assert not PROVIDER.verify(form(INBOUND), headers, url, {"auth_token": TOKEN})


@pytest.mark.parametrize("headers", [
    {}, FORM, {**FORM, "X-Twilio-Signature": ""}, {**FORM, "X-Twilio-Signature": "   "},
    {**FORM, "X-Twilio-Signature": "résumé"}, {**FORM, "X-Twilio-Signature": "not-base64!"},
])
def test_missing_or_malformed_header_is_rejected(headers):
    assert not PROVIDER.verify(form(INBOUND), headers, URL, {"auth_token": TOKEN})


@pytest.mark.parametrize("creds", [None, {}, {"account_sid": "AC1"}, {"auth_token": ""}, {"auth_token": None}])
def test_no_usable_key_is_rejected(creds):
    headers = signed(URL, INBOUND, "")
    assert not PROVIDER.verify(form(INBOUND), headers, URL, creds)


def test_previous_auth_token_is_accepted_during_rotation():
    headers = signed(URL, INBOUND, "old-token")
    creds = {"account_sid": "AC1", "auth_token": TOKEN, "previous_auth_token": "old-token"}
    assert PROVIDER.verify(form(INBOUND), headers, URL, creds)
    assert PROVIDER.verify(form(INBOUND), signed(URL, INBOUND), URL, creds)
    assert not PROVIDER.verify(form(INBOUND), headers, URL, {"auth_token": TOKEN})


def test_webhook_secret_overrides_the_auth_token():
    creds = {"account_sid": "AC1", "auth_token": TOKEN, "webhook_secret": "managed-key"}
    assert PROVIDER.verify(form(INBOUND), signed(URL, INBOUND, "managed-key"), URL, creds)
    assert not PROVIDER.verify(form(INBOUND), signed(URL, INBOUND, TOKEN), URL, creds)
    creds["previous_auth_token"] = "old-token"
    assert PROVIDER.verify(form(INBOUND), signed(URL, INBOUND, "old-token"), URL, creds)


def test_signing_keys_order():
    assert tw_signature.signing_keys({"auth_token": "a", "webhook_secret": "w", "previous_auth_token": "p"}) == ["w", "p"]
    assert tw_signature.signing_keys({"auth_token": "a", "previous_auth_token": "a"}) == ["a"]
    assert tw_signature.signing_keys(None) == []


def test_non_ascii_values_are_signed_as_utf8():
    pairs = [("MessageSid", "SM1"), ("Body", "Добро јутро, što ima? 👋"), ("From", "+385911234567")]
    raw = form(pairs)   # percent-encoded UTF-8, as Twilio posts it
    headers = signed(URL, pairs)
    assert PROVIDER.verify(raw, headers, URL, {"auth_token": TOKEN})
    # the same form with the UTF-8 bytes left unescaped decodes to the same parameters
    plain = "&".join(f"{k}={v}" for k, v in pairs).replace("+", "%2B").replace(" ", "+").encode("utf-8")
    assert PROVIDER.verify(plain, headers, URL, {"auth_token": TOKEN})


def test_plus_and_percent_encoding_are_decoded_before_signing():
    pairs = [("Body", "a+b c&d=e%"), ("MessageSid", "SM1")]
    assert PROVIDER.verify(form(pairs), signed(URL, pairs), URL, {"auth_token": TOKEN})


def test_undecodable_body_is_rejected_not_raised():
    headers = {**FORM, "X-Twilio-Signature": tw_signature.compute(URL, [], TOKEN)}
    assert not PROVIDER.verify(b"Body=\xff\xfe", headers, URL, {"auth_token": TOKEN})
    assert not PROVIDER.verify(b"Body=%FF", headers, URL, {"auth_token": TOKEN})


def json_request(body: bytes, key: str = TOKEN, base: str = URL, hash_hex: str | None = None):
    url = f"{base}?bodySHA256={hash_hex or hashlib.sha256(body).hexdigest()}"
    return url, {**JSON_CT, "X-Twilio-Signature": tw_signature.compute(url, (), key)}


def test_json_body_with_body_hash():
    body = b'{"MessageSid": "SM1", "Body": "hi"}'
    url, headers = json_request(body)
    assert PROVIDER.verify(body, headers, url, {"auth_token": TOKEN})
    assert not PROVIDER.verify(body + b" ", headers, url, {"auth_token": TOKEN})
    assert not PROVIDER.verify(b'{"MessageSid": "SM2", "Body": "hi"}', headers, url, {"auth_token": TOKEN})


def test_json_body_hash_is_checked_even_when_the_url_is_signed():
    body = b'{"a": 1}'
    url, headers = json_request(body, hash_hex="0" * 64)
    assert not PROVIDER.verify(body, headers, url, {"auth_token": TOKEN})


def test_json_body_without_body_hash_is_rejected():
    body = b'{"MessageSid": "SM1"}'
    headers = {**JSON_CT, "X-Twilio-Signature": tw_signature.compute(URL, (), TOKEN)}
    assert not PROVIDER.verify(body, headers, URL, {"auth_token": TOKEN})
    # also when the worker-style sniffing (no Content-Type) sees the JSON
    assert not PROVIDER.verify(body, {"X-Twilio-Signature": headers["X-Twilio-Signature"]}, URL,
                               {"auth_token": TOKEN})


def test_repeated_body_hash_parameter_is_rejected():
    body = b'{"a": 1}'
    digest = hashlib.sha256(body).hexdigest()
    url = f"{URL}?bodySHA256={digest}&bodySHA256={digest}"
    headers = {**JSON_CT, "X-Twilio-Signature": tw_signature.compute(url, (), TOKEN)}
    assert not PROVIDER.verify(body, headers, url, {"auth_token": TOKEN})


def test_json_body_hash_with_default_port_and_previous_token():
    body = b'{"property": "value", "boolean": true}'
    url, headers = json_request(body, key="old", base="https://gw.example.com:443/webhooks/twilio")
    called = url.replace(":443", "")
    assert PROVIDER.verify(body, headers, called, {"auth_token": TOKEN, "previous_auth_token": "old"})
