"""The consent ledger: recording with proof, history and current state, append-only, tenant walls, merges,
provider opt-outs and the account's consent settings."""
from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from gateway import consent, db
from gateway.db import uuid7
from tests.webhooks.conftest import make_inbox
from tests.webhooks.test_receiver import text, wa_body

PROOF = {"text": "Sí, quiero recibir ofertas de Tienda Ana por WhatsApp", "text_version": "promo-es-v3",
         "form_submission_id": "form-8812", "ip": "203.0.113.7", "page": "https://tienda.example/alta"}


def _contact(inbox, phone="+34600000901", name="Lucía"):
    r = inbox.api("POST", "/v1/contacts", json={"name": name, "identities": [{"kind": "phone", "address": phone}]})
    assert r.status_code == 201, r.json
    return r.json["id"]


def _record(inbox, contact, **body):
    return inbox.api("POST", f"/v1/contacts/{contact}/consents", json=body)


def _customer_wrote(inbox, ch, phone="34600000902"):
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text(phone, "hola", ts=int(time.time()) - 5)]))
    inbox.drain()
    return inbox.threads()[0]["contact_id"]


def test_grant_with_proof_then_history_and_current_state(client):
    inbox = make_inbox(client)
    inbox.channel("whatsapp")
    contact = _contact(inbox)
    first = _record(inbox, contact, channel_kind="all", purpose="marketing", action="granted", source="web_form",
                    occurred_at="2026-01-10T09:00:00Z", proof=PROOF)
    assert first.status_code == 201, first.json
    assert first.json["purpose"] == "marketing" and first.json["proof"]["text_version"] == "promo-es-v3"
    withdrawn = _record(inbox, contact, channel_kind="whatsapp", purpose="marketing", action="withdrawn",
                        source="agent", occurred_at="2026-02-01T12:00:00Z")   # a withdrawal needs no proof
    assert withdrawn.status_code == 201, withdrawn.json
    surveys = _record(inbox, contact, channel_kind="whatsapp", purpose="surveys", action="granted",
                      proof={"message_id": "wamid.HBgLMzQ2MDAwMDA5MDEVAgASGBQzQUY"})   # a message id proves it
    assert surveys.status_code == 201, surveys.json

    got = inbox.api("GET", f"/v1/contacts/{contact}/consents")
    assert got.status_code == 200, got.json
    doc = got.json
    # Newest first; the proof comes back decrypted.
    assert [e["id"] for e in doc["history"]] == [surveys.json["id"], withdrawn.json["id"], first.json["id"]]
    assert doc["history"][2]["proof"] == PROOF and doc["history"][1]["proof"] is None
    current = {(c["channel_kind"], c["purpose"]): c["action"] for c in doc["current"]}
    assert current == {("all", "marketing"): "granted", ("whatsapp", "marketing"): "withdrawn",
                       ("whatsapp", "surveys"): "granted"}
    # What the gate does on each channel kind: marketing withdrawn on WhatsApp only.
    assert doc["send_gate"]["whatsapp"] == {"marketing": "opted_out", "transactional": "allowed",
                                            "surveys": "allowed"}
    assert doc["purposes"] == ["marketing", "transactional", "surveys"]


def test_proof_is_encrypted_at_rest_and_the_audit_row_holds_no_personal_data(client, conn):
    inbox = make_inbox(client)
    contact = _contact(inbox)
    event = _record(inbox, contact, channel_kind="whatsapp", purpose="marketing", action="granted", proof=PROOF).json
    row = conn.execute("SELECT proof_enc, source FROM consent_events WHERE account_id = %s AND id = %s",
                       (inbox.account_id, event["id"])).fetchone()
    assert row["source"] == "api"
    assert b"Tienda" not in bytes(row["proof_enc"]) and b"203.0.113.7" not in bytes(row["proof_enc"])
    audit = conn.execute("SELECT actor, action, target_id, detail::text AS detail FROM audit_log "
                         "WHERE account_id = %s AND action LIKE 'consent.%%'", (inbox.account_id,)).fetchall()
    assert [(a["action"], a["target_id"]) for a in audit] == [("consent.granted", contact)]
    assert "Tienda" not in audit[0]["detail"] and "203.0.113" not in audit[0]["detail"]


def test_a_grant_without_proof_is_422_with_pointers(client, conn):
    inbox = make_inbox(client)
    contact = _contact(inbox)
    r = _record(inbox, contact, channel_kind="whatsapp", purpose="marketing", action="granted",
                proof={"text": "Acepto"})
    assert r.status_code == 422 and r.headers["Content-Type"] == "application/problem+json"
    assert [e["pointer"] for e in r.json["errors"]] == ["/proof/text_version"]
    r = _record(inbox, contact, channel_kind="whatsapp", purpose="marketing", action="granted")
    assert {e["pointer"] for e in r.json["errors"]} == {"/proof/text", "/proof/text_version"}
    assert "message_id" in r.json["errors"][0]["detail"]
    r = _record(inbox, contact, channel_kind="fax", purpose="marketing", action="maybe", source="keyword",
                occurred_at="yesterday", proof={"text": "x", "text_version": "1", "colour": "red"})
    assert {e["pointer"] for e in r.json["errors"]} == {"/channel_kind", "/action", "/source", "/occurred_at",
                                                        "/proof/colour"}
    r = _record(inbox, contact, channel_kind="whatsapp", purpose="marketing", action="withdrawn",
                occurred_at="2999-01-01T00:00:00Z")
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] == "/occurred_at"
    n = conn.execute("SELECT count(*) AS n FROM consent_events WHERE account_id = %s", (inbox.account_id,))
    assert n.fetchone()["n"] == 0


def test_unknown_purpose_lists_the_accounts_purposes_and_extra_purposes_are_accepted(client):
    inbox = make_inbox(client)
    contact = _contact(inbox)
    r = _record(inbox, contact, channel_kind="whatsapp", purpose="loyalty", action="withdrawn")
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] == "/purpose"
    assert "marketing, transactional, surveys, all" in r.json["errors"][0]["detail"]
    put = inbox.api("PUT", "/v1/consent-settings", json={"purposes": ["loyalty"]})
    assert put.status_code == 200, put.json
    assert put.json["effective"]["purposes"] == ["marketing", "transactional", "surveys", "loyalty"]
    r = _record(inbox, contact, channel_kind="whatsapp", purpose="loyalty", action="withdrawn")
    assert r.status_code == 201, r.json
    doc = inbox.api("GET", f"/v1/contacts/{contact}/consents").json
    assert doc["send_gate"]["whatsapp"]["loyalty"] == "opted_out"


def test_another_accounts_contact_is_404_and_scopes_apply(client):
    ours, theirs = make_inbox(client), make_inbox(client)
    contact = _contact(theirs)
    _record(theirs, contact, channel_kind="whatsapp", purpose="marketing", action="granted", proof=PROOF)
    assert ours.api("GET", f"/v1/contacts/{contact}/consents").status_code == 404
    r = _record(ours, contact, channel_kind="whatsapp", purpose="marketing", action="withdrawn")
    assert r.status_code == 404 and "no contact" in r.json["detail"]
    assert ours.api("GET", f"/v1/contacts/{uuid.uuid4()}/consents").status_code == 404
    assert ours.api("GET", "/v1/contacts/not-a-uuid/consents").status_code == 404
    reader = ours.api("POST", "/v1/api-keys", json={"name": "ro", "scopes": ["contacts:read"]}).json["key"]
    mine = _contact(ours, "+34600000903")
    as_reader = {"Authorization": f"Bearer {reader}"}
    assert client.get(f"/v1/contacts/{mine}/consents", headers=as_reader).status_code == 200
    assert client.post(f"/v1/contacts/{mine}/consents", headers=as_reader, json={
        "channel_kind": "all", "purpose": "marketing", "action": "withdrawn"}).status_code == 403
    assert client.get("/v1/consent-settings", headers=as_reader).status_code == 403


def test_the_ledger_is_append_only_but_erasure_still_removes_it(client, conn):
    inbox = make_inbox(client)
    contact = _contact(inbox)
    event = _record(inbox, contact, channel_kind="whatsapp", purpose="marketing", action="granted", proof=PROOF).json
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("UPDATE consent_events SET action = 'withdrawn' WHERE account_id = %s AND id = %s",
                     (inbox.account_id, event["id"]))
    conn.rollback()
    # The contact's erasure deletes it (ON DELETE CASCADE from contacts).
    with db.connection() as c:
        c.execute("DELETE FROM contacts WHERE account_id = %s AND id = %s", (inbox.account_id, contact))
    n = conn.execute("SELECT count(*) AS n FROM consent_events WHERE account_id = %s", (inbox.account_id,))
    assert n.fetchone()["n"] == 0


def test_merged_contacts_consents_belong_to_the_survivor(client):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    survivor = _customer_wrote(inbox, ch, "34600000904")
    merged = _contact(inbox, "+34600000905")
    # Recorded on the contact that is merged afterwards: it still binds the survivor.
    assert _record(inbox, merged, channel_kind="whatsapp", purpose="all", action="withdrawn").status_code == 201
    assert inbox.api("POST", f"/v1/contacts/{survivor}/merge", json={"contact_id": merged}).status_code == 201
    doc = inbox.api("GET", f"/v1/contacts/{merged}/consents").json
    assert doc["contact_id"] == survivor and doc["history"][0]["via_merged_contact"] == merged
    r = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "contact_id": survivor, "type": "text",
                                                "text": {"body": "hola"}})
    assert r.status_code == 403 and r.json["type"].endswith("/opted_out")
    # A new event for the merged id goes to the survivor.
    lifted = _record(inbox, merged, channel_kind="whatsapp", purpose="all", action="granted",
                     proof={"text": "Reply START to subscribe again", "text_version": "sms-v1"})
    assert lifted.json["contact_id"] == survivor
    r = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "contact_id": survivor, "type": "text",
                                                "text": {"body": "hola"}})
    assert r.status_code == 202, r.json


def test_provider_opt_outs_map_to_purposes_and_are_recorded_once(client, conn):
    inbox = make_inbox(client)
    contact = _contact(inbox)
    account = inbox.account_id
    meta = consent.record_provider_opt_out(conn, account_id=account, contact_id=contact, channel_kind="whatsapp",
                                           code="131050")
    assert (meta["purpose"], meta["action"], meta["source"]) == ("marketing", "withdrawn", "provider")
    assert consent.record_provider_opt_out(conn, account_id=account, contact_id=contact, channel_kind="whatsapp",
                                           code=131050) is None     # the same refusal again: nothing new
    sms = consent.record_provider_opt_out(conn, account_id=account, contact_id=contact, channel_kind="twilio",
                                          code="21610")
    assert (sms["channel_kind"], sms["purpose"]) == ("twilio", "all")
    assert consent.record_provider_opt_out(conn, account_id=account, contact_id=contact, channel_kind="twilio",
                                           code="30003") is None    # not an opt-out
    assert consent.record_provider_opt_out(conn, account_id=account, contact_id=uuid7(), channel_kind="twilio",
                                           code="21610") is None    # erased meanwhile
    assert consent.gate_state(conn, account_id=account, contact_id=contact, channel_kind="whatsapp") == {
        "marketing": "withdrawn"}
    assert consent.gate_state(conn, account_id=account, contact_id=contact, channel_kind="twilio") == {
        "all": "withdrawn"}
    history = consent.history(conn, account_id=account, contact_id=contact)
    assert history[0]["proof"]["provider_code"] == "21610"


def test_a_grant_older_than_a_channel_wide_opt_out_lapses(client, conn):
    inbox = make_inbox(client)
    inbox.channel("whatsapp")    # the gate view covers the account's channel kinds and those in the ledger
    contact = _contact(inbox)
    _record(inbox, contact, channel_kind="all", purpose="marketing", action="granted", proof=PROOF,
            occurred_at="2026-01-01T00:00:00Z")
    _record(inbox, contact, channel_kind="twilio", purpose="all", action="withdrawn",
            occurred_at="2026-01-02T00:00:00Z")
    _record(inbox, contact, channel_kind="twilio", purpose="all", action="granted", occurred_at="2026-01-03T00:00:00Z",
            proof={"message_id": "SM0123"})
    conn.commit()
    assert consent.gate_state(conn, account_id=inbox.account_id, contact_id=contact, channel_kind="twilio") == {
        "all": "granted", "marketing": "lapsed"}
    # Other channels never saw the SMS opt-out.
    assert consent.gate_state(conn, account_id=inbox.account_id, contact_id=contact, channel_kind="whatsapp") == {
        "marketing": "granted"}
    gate = inbox.api("GET", f"/v1/contacts/{contact}/consents").json["send_gate"]
    assert gate["twilio"]["marketing"] == "no_marketing_consent" and gate["whatsapp"]["marketing"] == "allowed"


def test_consent_settings_are_validated_with_pointers_and_kept(client):
    inbox = make_inbox(client)
    defaults = inbox.api("GET", "/v1/consent-settings").json
    assert defaults["overrides"] == {} and "BAJA" in defaults["effective"]["keywords"]["stop"]["es"]
    bad = inbox.api("PUT", "/v1/consent-settings", json={
        "purposes": ["marketing", "Bad Name"], "keywords": {"stopp": {}, "start": {"es": "ALTA"}},
        "replies": {"help": {"español": "hola"}}, "colour": 1})
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.json["errors"]} == {"/purposes/0", "/purposes/1", "/keywords/stopp",
                                                          "/keywords/start/es", "/replies/help/español", "/colour"}
    clash = inbox.api("PUT", "/v1/consent-settings", json={"keywords": {"start": {"en": ["STOP"]}}})
    assert clash.status_code == 422 and "'stop'" in clash.json["errors"][0]["detail"]
    good = {"keywords": {"stop": {"es": ["BAJA", "DARSE DE BAJA"]}}, "replies": {"stop": {"es": "Hecho, adiós."}}}
    put = inbox.api("PUT", "/v1/consent-settings", json=good)
    assert put.status_code == 200 and put.json["overrides"] == good
    effective = inbox.api("GET", "/v1/consent-settings").json["effective"]
    assert effective["keywords"]["stop"]["es"] == ["BAJA", "DARSE DE BAJA"]
    assert effective["keywords"]["stop"]["pt"] == ["SAIR", "PARAR", "CANCELAR"]   # untouched languages keep theirs
    assert effective["replies"]["stop"]["es"] == "Hecho, adiós."
