"""POST /v1/messages and the one send gate: refusals name their rule and leave no row behind."""
from __future__ import annotations

import secrets
import uuid

from gateway.db import uuid7
from tests.webhooks.conftest import make_inbox
from tests.webhooks.test_receiver import text, wa_body


def _count(conn, account_id) -> int:
    return conn.execute("SELECT count(*) AS n FROM messages WHERE account_id = %s AND direction = 'outbound'",
                        (account_id,)).fetchone()["n"]


def _customer_wrote(inbox, channel, phone="34600000501", ts=None):
    import time
    inbox.post_meta("whatsapp", wa_body(channel["external_id"], messages=[
        text(phone, "hola", ts=ts or int(time.time()) - 60)]))
    inbox.drain()
    return inbox.threads()[0]["contact_id"]


def test_free_form_outside_the_window_is_refused_with_the_rule(client, conn):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    r = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "to": {"address": "+34600000502"},
                                                "type": "text", "text": {"body": "hola"}})
    assert r.status_code == 422, r.json
    assert r.json["type"].endswith("/outside_customer_service_window")
    assert "template" in r.json["detail"] and "window_closed_at" in r.json
    assert _count(conn, inbox.account_id) == 0


def test_inside_the_window_a_text_is_queued_and_readable(client, conn):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    contact = _customer_wrote(inbox, ch)
    r = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "contact_id": contact, "type": "text",
                                                "text": {"body": "¿En qué te ayudo?"}})
    assert r.status_code == 202, r.json
    assert r.json["status"] == "queued" and r.json["direction"] == "outbound"
    shown = inbox.api("GET", f"/v1/messages/{r.json['id']}").json
    assert shown["text"] == "¿En qué te ayudo?" and shown["content"]["to"]["address"] == "+34600000501"


def test_idempotency_key_same_body_same_message_other_body_409(client, conn):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    contact = _customer_wrote(inbox, ch)
    body = {"channel_id": ch["id"], "contact_id": contact, "type": "text", "text": {"body": "una vez"}}
    key = {"Idempotency-Key": "order-" + secrets.token_hex(4)}
    first = inbox.api("POST", "/v1/messages", json=body, headers=key)
    again = inbox.api("POST", "/v1/messages", json=body, headers=key)
    assert first.status_code == 202 and again.status_code == 200 and first.json["id"] == again.json["id"]
    other = inbox.api("POST", "/v1/messages", json={**body, "text": {"body": "otra"}}, headers=key)
    assert other.status_code == 409 and other.json["type"].endswith("/idempotency-key-reused")
    assert _count(conn, inbox.account_id) == 1


def test_opted_out_and_marketing_without_consent_are_refused(client, conn):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    contact = _customer_wrote(inbox, ch)
    tpl = {"channel_id": ch["id"], "contact_id": contact, "type": "template", "purpose": "marketing",
           "template": {"name": "promo_otono", "language": "es"}}
    r = inbox.api("POST", "/v1/messages", json=tpl)
    assert r.status_code == 403 and r.json["type"].endswith("/no_marketing_consent")
    conn.execute("INSERT INTO consent_events (account_id, id, contact_id, channel_kind, purpose, action, source, "
                 "occurred_at) VALUES (%s, %s, %s, 'whatsapp', 'all', 'withdrawn', 'keyword', now())",
                 (inbox.account_id, uuid7(), contact))
    conn.commit()
    r = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "contact_id": contact, "type": "text",
                                                "text": {"body": "hola"}})
    assert r.status_code == 403 and r.json["type"].endswith("/opted_out")
    assert _count(conn, inbox.account_id) == 0


def test_bad_bodies_are_422_naming_the_field_and_unknown_ids_404(client):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    r = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "to": {"address": "+34600000503"},
                                                "type": "text"})
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] == "/text"
    r = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "type": "text", "text": {"body": "x"}})
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] == "/contact_id"
    r = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "to": {"address": "llámame"},
                                                "type": "text", "text": {"body": "x"}})
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] == "/to/address" and "+34" in r.json["detail"]
    assert inbox.api("GET", "/v1/contacts").json["data"] == []       # nothing was made for it
    r = inbox.api("POST", "/v1/messages", json={"channel_id": str(uuid.uuid4()), "to": {"address": "+34600000503"},
                                                "type": "text", "text": {"body": "x"}})
    assert r.status_code == 404
    r = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "contact_id": str(uuid.uuid4()),
                                                "type": "text", "text": {"body": "x"}})
    assert r.status_code == 404
    key = inbox.api("POST", "/v1/api-keys", json={"name": "ro", "scopes": ["messages:read"]}).json["key"]
    r = client.post("/v1/messages", json={"channel_id": ch["id"], "to": {"address": "+34600000503"},
                                          "type": "text", "text": {"body": "x"}},
                    headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403
