"""Data-subject access (GET /v1/contacts/{id}/export, `gateway contacts export`) and the audit log of reads."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from gateway import contacts, export
from gateway.crypto import field_aad
from gateway.db import uuid7
from tests.webhooks.conftest import TWILIO_SID, make_inbox
from tests.webhooks.test_media_and_read_api import FILE, _image, graph  # noqa: F401  (graph is a fixture)
from tests.webhooks.test_receiver import status, text, wa_body

NAME = "Begoña Export"
PSID_NAME = "Begoña por Messenger"
PROOF_TEXT = "Sí, quiero recibir ofertas (formulario v3)"


def _seed(client, graph, conn):
    """A customer on WhatsApp and SMS (one contact by phone), with a Messenger contact merged into it:
    inbound texts and an image, an outbound echo with its statuses, a queued API send, consent events."""
    inbox = make_inbox(client)
    phone = f"+3460{secrets.randbelow(10**7):07d}"
    wa_id = phone[1:]
    wa = inbox.channel("whatsapp", settings={"api_base_url": graph.base})
    sms_number = f"+1415{secrets.randbelow(10**7):07d}"
    inbox.channel("twilio", sms_number)
    page = inbox.channel("messenger")
    texts = [f"mensaje {i} de {NAME} {secrets.token_hex(3)}" for i in range(3)]
    now = int(time.time()) - 60   # inside the 24-hour window, so the API may answer
    inbox.post_meta("whatsapp", wa_body(wa["external_id"], messages=[text(wa_id, t, ts=now + i)
                                                                     for i, t in enumerate(texts[:2])],
                                        contacts=[{"wa_id": wa_id, "profile": {"name": NAME}}]))
    inbox.post_meta("whatsapp", wa_body(wa["external_id"], messages=[_image(wa_id, "5551234")]))
    inbox.post_twilio({"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": TWILIO_SID, "From": phone,
                       "To": sms_number, "Body": texts[2], "NumMedia": "0", "SmsStatus": "received",
                       "ApiVersion": "2010-04-01"})
    wamid = "wamid.echo-" + secrets.token_hex(6)
    echo_text = f"respuesta desde el móvil {secrets.token_hex(3)}"
    echo = {"from": "34910000000", "to": wa_id, "id": wamid, "timestamp": "1732400100", "type": "text",
            "text": {"body": echo_text}}
    inbox.post_meta("whatsapp", {"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [
        {"field": "smb_message_echoes", "value": {"messaging_product": "whatsapp",
                                                  "metadata": {"display_phone_number": "34910000000",
                                                               "phone_number_id": wa["external_id"]},
                                                  "message_echoes": [echo]}}]}]})
    inbox.post_meta("whatsapp", wa_body(wa["external_id"], statuses=[status(wamid, "delivered", ts=1732400150),
                                                                     status(wamid, "read", ts=1732400200)]))
    psid = "PSID-" + secrets.token_hex(5)
    psid_text = f"hola por Messenger {secrets.token_hex(3)}"
    inbox.post_meta("messenger", {"object": "page", "entry": [{"id": page["external_id"], "time": 1732400000000,
                                  "messaging": [{"sender": {"id": psid}, "recipient": {"id": page["external_id"]},
                                                 "timestamp": 1732400000000,
                                                 "message": {"mid": "m_" + secrets.token_hex(6),
                                                             "text": psid_text}}]}]})
    inbox.drain(("inbound", "default"))
    by_kind = {t["channel_kind"]: t["contact_id"] for t in inbox.threads()}
    contact, psid_contact = by_kind["whatsapp"], by_kind["messenger"]
    assert by_kind["twilio"] == contact and psid_contact != contact
    r = inbox.api("POST", f"/v1/contacts/{contact}/merge", json={"contact_id": psid_contact})
    assert r.status_code == 201, r.json
    sent_text = f"¿En qué te ayudo, {NAME}?"
    r = inbox.api("POST", "/v1/messages", json={"channel_id": wa["id"], "contact_id": contact, "type": "text",
                                                "text": {"body": sent_text}})
    assert r.status_code == 202, r.json
    # The ledger, as its owner writes it: a grant with proof under the contact's key, then a withdrawal.
    key = contacts.contact_key(conn, account_id=inbox.account_id, contact_id=contact)
    grant = uuid7()
    conn.execute("INSERT INTO consent_events (account_id, id, contact_id, channel_kind, purpose, action, source, "
                 "proof_enc, occurred_at) VALUES (%s, %s, %s, 'whatsapp', 'marketing', 'granted', 'web_form', %s, "
                 "now() - interval '1 day')",
                 (inbox.account_id, grant, contact,
                  key.encrypt(json.dumps({"text": PROOF_TEXT, "version": "v3"}),
                              field_aad("consent_events", "proof", inbox.account_id, grant))))
    conn.execute("INSERT INTO consent_events (account_id, id, contact_id, channel_kind, purpose, action, source, "
                 "occurred_at) VALUES (%s, %s, %s, 'messenger', 'marketing', 'withdrawn', 'keyword', now())",
                 (inbox.account_id, uuid7(), psid_contact))
    conn.commit()
    return {"inbox": inbox, "contact": contact, "psid_contact": psid_contact, "phone": phone, "psid": psid,
            "texts": [*texts, echo_text, psid_text, sent_text], "wamid": wamid}


@pytest.fixture
def seeded(client, graph, conn):  # noqa: F811  (graph is the fixture imported above)
    return _seed(client, graph, conn)


def _without_time(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "exported_at"}


def test_export_holds_every_identity_thread_message_status_media_and_consent(seeded):
    inbox, contact = seeded["inbox"], seeded["contact"]
    r = inbox.api("GET", f"/v1/contacts/{contact}/export")
    assert r.status_code == 200, r.json
    assert r.mimetype == "application/json" and "attachment" in r.headers["Content-Disposition"]
    doc = r.json
    assert doc["format"] == export.FORMAT and doc["contact"]["id"] == contact and doc["contact"]["name"] == NAME
    assert [m["id"] for m in doc["merged_contacts"]] == [seeded["psid_contact"]]
    assert {(i["kind"], i["address"]) for i in doc["identities"]} == {("phone", seeded["phone"]),
                                                                       ("psid", seeded["psid"])}
    assert sorted(t["channel_kind"] for t in doc["threads"]) == ["messenger", "twilio", "whatsapp"]
    assert doc["campaigns"] == []
    assert [(m["survivor_id"], m["merged_id"]) for m in doc["merges"]] == [(contact, seeded["psid_contact"])]
    # Every message of the contact and of the merged one, decrypted, exactly once.
    count = inbox.api("GET", "/v1/threads").json["data"]
    expected = {m["id"] for t in count for m in inbox.messages(t["id"])}
    got = [m["id"] for m in doc["messages"]]
    assert len(got) == len(set(got)) == doc["message_count"] == len(expected) == 7 and set(got) == expected
    assert {m["text"] for m in doc["messages"]} >= set(seeded["texts"])
    echo = next(m for m in doc["messages"] if m["provider_message_id"] == seeded["wamid"])
    assert echo["direction"] == "outbound" and echo["status"] == "read"
    assert [s["status"] for s in echo["statuses"]] == ["delivered", "read"]
    queued = next(m for m in doc["messages"] if m["status"] == "queued")
    assert queued["text"] == seeded["texts"][-1] and queued["purpose"] == "transactional"
    [image] = [m for m in doc["messages"] if m["kind"] == "image"]
    [file] = image["media"]
    assert file["state"] == "stored" and file["size_bytes"] == len(FILE) and file["url"] == f"/v1/media/{file['id']}"
    assert file["source"]["caption"] == "la factura" and file["source"]["provider_media_id"] == "5551234"
    assert inbox.api("GET", file["url"]).data == FILE
    # Consent: the history with decrypted proof, and the current state per channel and purpose.
    history = doc["consents"]["history"]
    assert [(e["channel_kind"], e["action"]) for e in history] == [("whatsapp", "granted"), ("messenger", "withdrawn")]
    assert history[0]["proof"] == {"text": PROOF_TEXT, "version": "v3"} and history[1]["proof"] is None
    assert not any(k.endswith("_enc") for e in history for k in e)
    assert {(c["channel_kind"], c["purpose"], c["state"]) for c in doc["consents"]["current"]} == {
        ("whatsapp", "marketing", "granted"), ("messenger", "marketing", "withdrawn")}


def test_export_pages_through_long_threads_without_losing_or_repeating(seeded, conn):
    subject = export.find(conn, account_id=seeded["inbox"].account_id, contact_id=seeded["contact"])
    whole = export.document(conn, subject)
    seen = []
    paged = json.loads("".join(export.chunks(conn, subject, page=2, progress=seen.append)))
    assert [m["id"] for m in paged["messages"]] == [m["id"] for m in whole["messages"]]
    assert sum(seen) == paged["message_count"] == export.count_messages(conn, subject) == 7


def test_export_of_another_accounts_or_an_unknown_contact_is_404(seeded, client):
    other = make_inbox(client)
    for path in (f"/v1/contacts/{seeded['contact']}/export", f"/v1/contacts/{uuid7()}/export",
                 "/v1/contacts/not-an-id/export"):
        r = other.api("GET", path)
        assert r.status_code == 404 and r.mimetype == "application/problem+json"
    # A key without contacts:read is refused; nothing personal is in the refusal.
    r = seeded["inbox"].client.post("/v1/api-keys", json={"name": "reader", "scopes": ["messages:read"]},
                                    headers={"Authorization": f"Bearer {seeded['inbox'].key}"})
    narrow = r.json["key"]
    r = seeded["inbox"].client.get(f"/v1/contacts/{seeded['contact']}/export",
                                   headers={"Authorization": f"Bearer {narrow}"})
    assert r.status_code == 403


def _audit_rows(conn, account_id) -> list[dict]:
    return conn.execute("SELECT actor, action, target_type, target_id, detail::text AS detail FROM audit_log "
                        "WHERE account_id = %s ORDER BY at, id", (account_id,)).fetchall()


def test_reads_of_personal_data_are_audited_with_the_key_and_no_personal_data(seeded, conn):
    inbox, contact = seeded["inbox"], seeded["contact"]
    r = inbox.client.post("/v1/api-keys", json={"name": "crm", "scopes": ["contacts:read", "messages:read"]},
                          headers={"Authorization": f"Bearer {inbox.key}"})
    key, key_id = r.json["key"], r.json["id"]
    as_crm = {"Authorization": f"Bearer {key}"}
    [thread] = [t for t in inbox.threads() if t["channel_kind"] == "whatsapp"]
    message_id = inbox.messages(thread["id"])[0]["id"]
    before = datetime.now(timezone.utc)
    for path in (f"/v1/contacts/{contact}", f"/v1/threads/{thread['id']}", f"/v1/threads/{thread['id']}/messages",
                 f"/v1/messages/{message_id}", f"/v1/threads?contact_id={contact}", f"/v1/contacts/{contact}/export"):
        assert inbox.client.get(path, headers=as_crm).status_code == 200, path
    assert inbox.client.get("/v1/account", headers=as_crm).status_code == 200       # not personal: no row
    assert inbox.client.get(f"/v1/threads/{uuid7()}", headers=as_crm).status_code == 404   # nothing read: no row
    conn.commit()
    mine = [r for r in _audit_rows(conn, inbox.account_id) if r["actor"] == f"api_key:{key_id}"]
    assert [(r["action"], r["target_type"], r["target_id"]) for r in mine] == [
        ("read:/v1/contacts/<contact_id>", "contact", contact),
        ("read:/v1/threads/<thread_id>", "thread", thread["id"]),
        ("read:/v1/threads/<thread_id>/messages", "thread", thread["id"]),
        ("read:/v1/messages/<message_id>", "message", message_id),
        ("read:/v1/threads", "contact", contact),
        ("contact.exported", "contact", contact),
    ]
    assert json.loads(mine[-1]["detail"]) == {"via": "api", "messages": 7, "merged_contacts": 1}
    # Nothing personal anywhere in the account's log: not the number, the names, the psid or any text.
    blob = json.dumps(_audit_rows(conn, inbox.account_id), default=str)
    for secret in (seeded["phone"], seeded["phone"][1:], NAME, seeded["psid"], PROOF_TEXT, *seeded["texts"]):
        assert secret not in blob, secret
    # Filters on the API: by actor, action (exact and prefix), target and time.
    admin = inbox
    got = admin.api("GET", f"/v1/audit?actor={key_id}").json["data"]
    assert [r["action"] for r in got] == [r["action"] for r in reversed(mine)]     # newest first
    assert admin.api("GET", f"/v1/audit?actor=api_key:{key_id}").json["data"] == got
    assert [r["action"] for r in admin.api("GET", f"/v1/audit?actor={key_id}&action=read:*").json["data"]] == [
        r["action"] for r in reversed(mine[:-1])]
    exported = admin.api("GET", "/v1/audit?action=contact.exported").json["data"]
    assert len(exported) == 1 and exported[0]["target_id"] == contact
    on_thread = admin.api("GET", f"/v1/audit?target_type=thread&target_id={thread['id']}").json["data"]
    assert {r["action"] for r in on_thread} >= {"read:/v1/threads/<thread_id>", "read:/v1/threads/<thread_id>/messages"}
    since = (before - timedelta(seconds=1)).isoformat()
    assert admin.api("GET", "/v1/audit", query_string={"actor": key_id, "since": since}).json["data"] == got
    assert admin.api("GET", "/v1/audit", query_string={"actor": key_id, "until": since}).json["data"] == []
    bad = admin.api("GET", "/v1/audit?since=yesterday")
    assert bad.status_code == 400 and "ISO 8601" in bad.json["detail"]


def test_audit_pages_newest_first_and_needs_admin(seeded):
    inbox, contact = seeded["inbox"], seeded["contact"]
    for _ in range(5):
        assert inbox.api("GET", f"/v1/contacts/{contact}").status_code == 200
    everything = inbox.api("GET", "/v1/audit?limit=200").json["data"]
    seen, cursor = [], None
    while True:
        page = inbox.api("GET", "/v1/audit", query_string={"limit": 3, **({"before": cursor} if cursor else {})}).json
        seen += [r["id"] for r in page["data"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == [r["id"] for r in everything] and len(seen) == len(set(seen)) > 6
    stamps = [r["at"] for r in everything]
    assert stamps == sorted(stamps, reverse=True)
    r = inbox.client.post("/v1/api-keys", json={"name": "crm", "scopes": ["contacts:read", "messages:read"]},
                          headers={"Authorization": f"Bearer {inbox.key}"})
    r = inbox.client.get("/v1/audit", headers={"Authorization": f"Bearer {r.json['key']}"})
    assert r.status_code == 403 and r.json["type"].endswith("/missing-scope")
    assert inbox.api("GET", "/v1/audit?before=garbage").status_code == 400
    # Tenant walls: another account's admin sees none of these rows.
    other = make_inbox(inbox.client)
    assert all(row["target_id"] != contact for row in other.api("GET", "/v1/audit?limit=200").json["data"])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=os.environ, capture_output=True,
                          text=True, timeout=120)


def test_cli_export_writes_the_same_document_to_a_private_file(seeded, tmp_path, conn):
    inbox, contact = seeded["inbox"], seeded["contact"]
    out = tmp_path / "subject.json"
    done = _cli("contacts", "export", "--account", str(inbox.account_id), contact, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "7 message(s)" in done.stderr and seeded["phone"] not in done.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    from_cli = json.loads(out.read_text(encoding="utf-8"))
    from_api = inbox.api("GET", f"/v1/contacts/{contact}/export").json
    assert _without_time(from_cli) == _without_time(from_api)
    assert [r["detail"] for r in _audit_rows(conn, inbox.account_id) if r["actor"] == "cli"
            and r["action"] == "contact.exported"] == [json.dumps({"via": "cli", "messages": 7, "merged_contacts": 1})]
    unknown = _cli("contacts", "export", "--account", str(inbox.account_id), str(uuid7()), "--out", str(out))
    assert unknown.returncode != 0 and "GET /v1/contacts" in unknown.stderr
    other = make_inbox(inbox.client)
    walled = _cli("contacts", "export", "--account", str(other.account_id), contact)
    assert walled.returncode != 0 and seeded["phone"] not in walled.stdout + walled.stderr


def test_key_rotation_is_in_each_affected_accounts_log(tenant):
    made = tenant.post("/v1/contacts", {"name": "Rota", "identities": [{"kind": "phone", "address": "+34611222333"}]})
    assert made.status_code == 201
    done = _cli("keys", "rotate")
    assert done.returncode == 0, done.stderr
    [row] = tenant.get("/v1/audit?action=keys.rotated").json["data"]
    assert row["actor"] == "cli" and row["target_type"] == "master_key" and row["detail"]["rewrapped"] >= 1
