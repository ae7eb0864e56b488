"""Opt-out, opt-in and help keywords on inbound messages of every channel, end to end: signed webhooks → the
real inbound worker → the consent ledger → the send gate → replies through the sandbox provider."""
from __future__ import annotations

import copy
import json
import secrets
import time

import pytest

from gateway import keywords
from tests.gateway.test_send_end_to_end import gateway_url, received, sandbox, wait_for  # noqa: F401  (fixtures)
from tests.webhooks.conftest import SHARED, TWILIO_SID, make_inbox
from tests.webhooks.test_receiver import text, wa_body

DEFAULT_TABLE = keywords.index(keywords.DEFAULT_KEYWORDS)


@pytest.mark.parametrize("said,family,languages", [
    ("STOP", "stop", ("en", "fr", "it")), ("  stop  ", "stop", ("en", "fr", "it")), ("Stop!", "stop", None),
    ("STOPALL", "stop", ("en",)), ("unsubscribe", "stop", ("en",)), ("Cancel", "stop", ("en",)),
    ("END", "stop", ("en",)), ("quit", "stop", ("en",)),
    ("Baja", "stop", ("es",)), ("PARAR", "stop", ("es", "pt")), ("cancelar", "stop", ("es", "pt")),
    ("sair", "stop", ("pt",)), ("Arrêt", "stop", ("fr",)), ("ARRET", "stop", ("fr",)), ("arrêt.", "stop", ("fr",)),
    ("STOPP", "stop", ("de",)), ("abmelden", "stop", ("de",)), ("Annulla", "stop", ("it",)),
    ("basta", "stop", ("it",)),
    ("START", "start", ("en", "de")), ("unstop", "start", ("en",)), ("yes", "start", ("en",)),
    ("subscribe", "start", ("en",)), ("alta", "start", ("es",)), ("Sí", "start", ("es", "it")),
    ("SI", "start", ("es", "it")), ("sim", "start", ("pt",)), ("Voltar", "start", ("pt",)),
    ("oui", "start", ("fr",)), ("JA", "start", ("de",)),
    ("HELP", "help", ("en",)), ("info", "help", ("en",)), ("Ayuda", "help", ("es",)), ("ajuda", "help", ("pt",)),
    ("aide", "help", ("fr",)), ("HILFE", "help", ("de",)), ("aiuto", "help", ("it",)),
    ("Stop promotions", "stop_marketing", ("en",)), ("PARAR PROMOÇÕES", "stop_marketing", ("pt",)),
    # Not keywords: a STOP inside a sentence, other words, empty.
    ("please stop sending me the invoice twice", None, None), ("don't stop", None, None),
    ("stop it", None, None), ("STOP STOP", None, None), ("hola", None, None), ("", None, None),
])
def test_the_keyword_table_per_language(said, family, languages):
    found = keywords.match(said, DEFAULT_TABLE)
    assert (found.family if found else None) == family
    if languages is not None:
        assert found.languages == languages


# --- helpers ---------------------------------------------------------------------------------------

def _events(conn, inbox) -> list[tuple]:
    conn.commit()   # a fresh snapshot: the worker committed on its own connection
    return [tuple(r.values()) for r in conn.execute(
        "SELECT channel_kind, purpose, action, source FROM consent_events WHERE account_id = %s "
        "ORDER BY recorded_at", (inbox.account_id,)).fetchall()]


def _outbound(inbox) -> list[dict]:
    """Outbound messages as GET /v1/messages/{id} shows them (with their purpose), oldest first."""
    found = [m for t in inbox.threads() for m in inbox.messages(t["id"]) if m["direction"] == "outbound"]
    return [inbox.api("GET", f"/v1/messages/{m['id']}").json for m in sorted(found, key=lambda m: m["created_at"])]


def _wa(inbox, ch, body, phone="34600000801", **extra):
    msg = text(phone, body, ts=int(time.time()) - 2, **extra)
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[msg]))
    inbox.drain()
    return msg


def _sms(inbox, ch, body, phone="+34600000802", **extra):
    params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": TWILIO_SID, "From": phone,
              "To": ch["external_id"], "Body": body, "NumMedia": "0", "SmsStatus": "received",
              "ApiVersion": "2010-04-01", **extra}
    assert inbox.post_twilio(params).status_code == 200
    inbox.drain()


def _messenger(inbox, page, body, psid="PSID-kw-1", **message):
    inbox.post_meta("messenger", {"object": "page", "entry": [{"id": page["external_id"], "time": 1, "messaging": [
        {"sender": {"id": psid}, "recipient": {"id": page["external_id"]}, "timestamp": int(time.time() * 1000),
         "message": {"mid": f"m_{secrets.token_hex(6)}", "text": body, **message}}]}]})
    inbox.drain()


def _channel(inbox, kind, sandbox=None):
    external = f"+1415{secrets.randbelow(10**7):07d}" if kind == "twilio" else None
    settings = {"api_base_url": sandbox.url, "pair_interval_s": 0} if sandbox else {}
    return inbox.channel(kind, external, settings=settings)


def _say(inbox, ch, body):
    {"whatsapp": _wa, "twilio": _sms, "messenger": _messenger}[ch["kind"]](inbox, ch, body)


def _ago(seconds: float) -> str:
    from datetime import datetime, timedelta, timezone
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat()


def _send(inbox, ch, contact, purpose="transactional", body="hola"):
    return inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "contact_id": contact, "type": "text",
                                                   "text": {"body": body}, "purpose": purpose})


# --- STOP on every channel ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind,said,reply_starts", [
    ("whatsapp", "STOP", "You have unsubscribed"),
    ("whatsapp", "baja", "Te has dado de baja"),
    ("whatsapp", " Arrêt ! ", "Vous êtes désinscrit"),
    ("twilio", "Arrêt", "Vous êtes désinscrit"),          # not one of Twilio's own words: the gateway answers
    ("twilio", "Sair", "Você cancelou"),
    ("messenger", "stopp", "Sie sind abgemeldet"),
    ("messenger", "ANNULLA", "Hai annullato"),
])
def test_stop_withdraws_everything_on_that_channel_and_confirms_in_the_keywords_language(
        client, conn, kind, said, reply_starts):
    inbox = make_inbox(client)
    ch = _channel(inbox, kind)
    _say(inbox, ch, said)
    assert _events(conn, inbox) == [(kind, "all", "withdrawn", "keyword")]
    [reply] = _outbound(inbox)
    assert reply["text"].startswith(reply_starts) and reply["purpose"] == "opt_out_confirmation"
    contact = inbox.threads()[0]["contact_id"]
    refused = _send(inbox, ch, contact)
    assert refused.status_code == 403 and refused.json["type"].endswith("/opted_out")
    doc = inbox.api("GET", f"/v1/contacts/{contact}/consents").json
    [event] = doc["history"]
    assert event["proof"]["text"] == said and event["proof"]["message_id"] == [
        m for t in inbox.threads() for m in inbox.messages(t["id"]) if m["direction"] == "inbound"][0]["id"]


@pytest.mark.parametrize("kind", ["whatsapp", "twilio", "messenger"])
def test_stop_inside_a_sentence_is_not_an_opt_out(client, conn, kind):
    inbox = make_inbox(client)
    ch = _channel(inbox, kind)
    _say(inbox, ch, "Please stop sending the invoice twice")
    _say(inbox, ch, "¿Puedo darme de BAJA del gimnasio en agosto?")
    assert _events(conn, inbox) == [] and _outbound(inbox) == []
    assert _send(inbox, ch, inbox.threads()[0]["contact_id"]).status_code == 202


def test_gate_refuses_marketing_after_stop_and_allows_it_after_start_and_a_new_grant(client, conn):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp")
    _wa(inbox, ch, "hola")
    contact = inbox.threads()[0]["contact_id"]
    grant = {"channel_kind": "whatsapp", "purpose": "marketing", "action": "granted", "source": "web_form",
             "proof": {"text": "Quiero recibir ofertas por WhatsApp", "text_version": "v1"}}
    # Given on the web a minute ago (provider timestamps are whole seconds: keep the order unambiguous).
    earlier = dict(grant, occurred_at=_ago(60))
    assert inbox.api("POST", f"/v1/contacts/{contact}/consents", json=earlier).status_code == 201
    assert _send(inbox, ch, contact, "marketing", "¡Ofertas!").status_code == 202

    _wa(inbox, ch, "STOP")
    for purpose in ("marketing", "transactional", "surveys"):
        refused = _send(inbox, ch, contact, purpose)
        assert refused.status_code == 403 and refused.json["type"].endswith("/opted_out"), purpose

    _wa(inbox, ch, "Start")
    assert _events(conn, inbox)[-1] == ("whatsapp", "all", "granted", "keyword")
    assert _send(inbox, ch, contact).status_code == 202
    # START says nothing about promotions: the grant from before the STOP no longer counts.
    again = _send(inbox, ch, contact, "marketing")
    assert again.status_code == 403 and again.json["type"].endswith("/no_marketing_consent")
    assert "no longer counts" in again.json["detail"]
    assert inbox.api("POST", f"/v1/contacts/{contact}/consents", json=grant).status_code == 201
    assert _send(inbox, ch, contact, "marketing", "¡Más ofertas!").status_code == 202
    replies = [m["text"] for m in _outbound(inbox) if m["purpose"] in ("opt_out_confirmation", "transactional")]
    assert any(t.startswith("You have unsubscribed") for t in replies)
    assert any(t.startswith("You are subscribed again") for t in replies)


def test_start_or_yes_from_someone_who_never_opted_out_changes_nothing(client, conn):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp")
    _wa(inbox, ch, "¿Me confirmas la cita del lunes?")
    _wa(inbox, ch, "Sí")
    _wa(inbox, ch, "START")
    assert _events(conn, inbox) == [] and _outbound(inbox) == []


def test_help_answers_with_the_help_text_and_records_nothing(client, conn):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp")
    _wa(inbox, ch, "ayuda")
    assert _events(conn, inbox) == []
    [reply] = _outbound(inbox)
    assert reply["text"].startswith("Responde BAJA para darte de baja")
    # Also once opted out (carriers require HELP to be answered).
    _wa(inbox, ch, "baja")
    _wa(inbox, ch, "HELP")
    assert [m["text"][:10] for m in _outbound(inbox)] == ["Responde B", "Te has dad", "Reply STOP"]


def test_the_contacts_language_picks_the_reply_and_account_settings_change_words_and_texts(client, conn):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp")
    r = inbox.api("POST", "/v1/contacts", json={"language": "pt_BR", "identities": [
        {"kind": "phone", "address": "+34600000803"}]})
    assert r.status_code == 201
    _wa(inbox, ch, "STOP", phone="34600000803")     # STOP is en/fr/it; the contact reads Portuguese
    assert _outbound(inbox)[0]["text"].startswith("Você cancelou")
    put = inbox.api("PUT", "/v1/consent-settings", json={
        "keywords": {"stop": {"es": ["DARSE DE BAJA"]}}, "replies": {"stop": {"es": "Listo: baja hecha."}}})
    assert put.status_code == 200, put.json
    _wa(inbox, ch, "darse de baja", phone="34600000804")
    _wa(inbox, ch, "BAJA", phone="34600000805")      # replaced by the account's own Spanish list
    texts = sorted(m["text"] for m in _outbound(inbox))
    assert "Listo: baja hecha." in texts and len(texts) == 2
    assert len(_events(conn, inbox)) == 2


def test_whatsapp_stop_promotions_button_withdraws_marketing_only(client, conn):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp")
    _wa(inbox, ch, "hola")
    contact = inbox.threads()[0]["contact_id"]
    tap = {"from": "34600000801", "id": f"wamid.{secrets.token_hex(8)}", "timestamp": str(int(time.time())),
           "type": "button", "button": {"payload": "STOP", "text": "Stop promotions"},
           "context": {"from": "34910000000", "id": "wamid.promo"}}
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[tap]))
    inbox.drain()
    assert _events(conn, inbox) == [("whatsapp", "marketing", "withdrawn", "keyword")]
    history = inbox.api("GET", f"/v1/contacts/{contact}/consents").json["history"]
    assert history[0]["proof"]["button_payload"] == "STOP"
    assert _outbound(inbox)[0]["text"].startswith("You will get no more promotions")
    assert _send(inbox, ch, contact).status_code == 202       # transactional messages still go
    refused = _send(inbox, ch, contact, "marketing")
    assert refused.status_code == 403 and refused.json["type"].endswith("/opted_out")
    # START answers STOP: it does not bring promotions back.
    _wa(inbox, ch, "START")
    assert len(_events(conn, inbox)) == 1
    assert _send(inbox, ch, contact, "marketing").status_code == 403


# --- Twilio Advanced Opt-Out and WhatsApp's own marketing controls --------------------------------------

def test_twilio_opt_out_type_is_recorded_without_a_second_reply(client, conn):
    inbox = make_inbox(client)
    ch = _channel(inbox, "twilio")
    # Advanced Opt-Out with a custom Spanish keyword: Twilio answered the customer already.
    _sms(inbox, ch, "Baja por favor", OptOutType="STOP")
    assert _events(conn, inbox) == [("twilio", "all", "withdrawn", "keyword")]
    contact = inbox.threads()[0]["contact_id"]
    assert inbox.api("GET", f"/v1/contacts/{contact}/consents").json["history"][0]["proof"]["handled_by"] == "twilio"
    _sms(inbox, ch, "HELP")                       # one of Twilio's default words on SMS: Twilio answers it
    _sms(inbox, ch, "UNSTOP", OptOutType="START")
    assert _events(conn, inbox)[-1] == ("twilio", "all", "granted", "keyword")
    assert _outbound(inbox) == []
    assert _send(inbox, ch, contact).status_code == 202


def _preferences(phone_number_id: str, value: str, wa_id="16505551234") -> dict:
    doc = json.loads((SHARED / "whatsapp" / "pywa_user_marketing_preferences__resume.json").read_text())
    doc = copy.deepcopy(doc)
    change = doc["entry"][0]["changes"][0]["value"]
    change["metadata"]["phone_number_id"] = phone_number_id
    pref = change["user_preferences"][0]
    pref.update(value=value, wa_id=wa_id, timestamp=int(time.time()) - 1,
                detail=f"User requested to {value} marketing messages")
    return doc


def test_whatsapp_user_preferences_stop_and_resume_write_marketing_events(client, conn):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp")
    _wa(inbox, ch, "hola", phone="16505551234")
    contact = inbox.threads()[0]["contact_id"]
    inbox.api("POST", f"/v1/contacts/{contact}/consents", json={
        "channel_kind": "whatsapp", "purpose": "marketing", "action": "granted", "occurred_at": _ago(60),
        "proof": {"text": "Ofertas por WhatsApp", "text_version": "v2"}})
    inbox.post_meta("whatsapp", _preferences(ch["external_id"], "stop"))
    inbox.drain()
    assert _events(conn, inbox)[-1] == ("whatsapp", "marketing", "withdrawn", "provider")
    refused = _send(inbox, ch, contact, "marketing")
    assert refused.status_code == 403 and refused.json["type"].endswith("/opted_out")
    time.sleep(1.1)    # Meta's timestamps are whole seconds: the resume comes after the stop
    inbox.post_meta("whatsapp", _preferences(ch["external_id"], "resume"))
    inbox.drain()
    assert _events(conn, inbox)[-1] == ("whatsapp", "marketing", "granted", "provider")
    assert _send(inbox, ch, contact, "marketing").status_code == 202
    history = inbox.api("GET", f"/v1/contacts/{contact}/consents").json["history"]
    assert history[0]["proof"] == {"text": "User requested to resume marketing messages", "value": "resume",
                                   "provider_event": "user_preferences"}
    assert _outbound(inbox)[-1]["purpose"] == "marketing"   # no keyword reply to a provider's notice


def test_user_preferences_stop_from_an_unknown_number_creates_the_contact_with_its_opt_out(client, conn):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp")
    inbox.post_meta("whatsapp", _preferences(ch["external_id"], "stop", wa_id="16505559876"))
    inbox.drain()
    assert _events(conn, inbox) == [("whatsapp", "marketing", "withdrawn", "provider")]


# --- the reply really goes out, once ------------------------------------------------------------------

def test_confirmations_are_sent_through_the_sandbox_once_per_stop(client, conn, sandbox):
    inbox = make_inbox(client)
    wa, sms, page = (_channel(inbox, k, sandbox) for k in ("whatsapp", "twilio", "messenger"))
    first = _wa(inbox, wa, "Baja")
    _sms(inbox, sms, "arret")
    _messenger(inbox, page, "STOP")
    replies = _outbound(inbox)
    assert len(replies) == 3

    def all_sent():
        states = [inbox.api("GET", f"/v1/messages/{m['id']}").json["status"] for m in replies]
        return all(s in ("sent", "delivered", "read") for s in states)

    wait_for(all_sent, inbox, what="the three confirmations sent")
    # Redelivering the same webhook changes nothing and sends nothing more.
    inbox.post_meta("whatsapp", wa_body(wa["external_id"], messages=[first]))
    inbox.drain()
    wait_for(lambda: True, inbox)
    assert len(_events(conn, inbox)) == 3 and len(_outbound(inbox)) == 3
    got = [m for m in received(sandbox) if 200 <= m["http_status"] < 300]
    bodies = sorted(m["body"].get("Body") or m["body"].get("message", {}).get("text")
                    or m["body"]["text"]["body"] for m in got)
    assert len(got) == 3
    assert [b[:12] for b in bodies] == ["Te has dado ", "Vous êtes dé", "You have uns"]
