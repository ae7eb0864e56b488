"""The receiver's contract: handshake, signatures, routing, size, malformed bodies, dedupe, ordering, identities."""
from __future__ import annotations

import json
import secrets

from gateway import db
from tests.webhooks.conftest import META_SECRET, meta_raw, meta_signature


def wa_body(phone_number_id: str, *, messages=(), statuses=(), contacts=(), field="messages", entry_id="WABA1"):
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "34910000000", "phone_number_id": phone_number_id}}
    if contacts:
        value["contacts"] = list(contacts)
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": entry_id, "changes": [{"field": field, "value": value}]}]}


def text(wa_id: str, body: str, ts: int = 1732400000, **extra):
    return {"from": wa_id, "id": f"wamid.{secrets.token_hex(8)}", "timestamp": str(ts), "type": "text",
            "text": {"body": body}, **extra}


def status(wamid: str, word: str, ts: int = 1732400100, **extra):
    return {"id": wamid, "status": word, "timestamp": str(ts), "recipient_id": "34600000001", **extra}


def test_meta_handshake_echoes_the_challenge_for_the_right_token(inbox, client):
    ch = inbox.channel("whatsapp")
    token = f"vt-{ch['external_id']}"
    r = client.get(f"/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444")
    assert r.status_code == 200 and r.data == b"1158201444" and r.mimetype == "text/plain"
    r = client.get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    assert client.get("/webhooks/whatsapp").status_code == 400
    assert client.get("/webhooks/twilio").status_code == 405


def test_handshake_token_follows_a_credentials_change(inbox, client):
    ch = inbox.channel("messenger")
    r = inbox.api("PATCH", f"/v1/channels/{ch['id']}", json={"credentials": {"verify_token": "rotated-token"}})
    assert r.status_code == 200, r.json
    ok = client.get("/webhooks/messenger?hub.mode=subscribe&hub.verify_token=rotated-token&hub.challenge=abc")
    assert ok.status_code == 200 and ok.data == b"abc"
    old = client.get(f"/webhooks/messenger?hub.mode=subscribe&hub.verify_token=vt-{ch['external_id']}"
                     "&hub.challenge=abc")
    assert old.status_code == 403


def test_wrong_signature_is_401_stores_nothing_and_is_counted(inbox, conn):
    ch = inbox.channel("whatsapp")
    body = wa_body(ch["external_id"], messages=[text("34600000001", "hola")])
    assert inbox.post_meta("whatsapp", body, secret="not-the-secret").status_code == 401
    raw = meta_raw(body)
    missing = inbox.client.post("/webhooks/whatsapp", data=raw, headers={"Content-Type": "application/json"})
    assert missing.status_code == 401
    assert inbox.events(conn) == []
    shown = inbox.api("GET", f"/v1/channels/{ch['id']}").json
    assert shown["rejected_signatures"] == 2 and shown["last_rejected_at"]


def test_unknown_channel_malformed_and_oversized_bodies(inbox, conn):
    inbox.channel("whatsapp")
    r = inbox.post_meta("whatsapp", wa_body("no-such-number", messages=[text("34600000001", "x")]))
    assert r.status_code == 404 and "register the channel" in r.json["detail"]
    bad = b'{"object": "whatsapp_business_account", "entry": ['
    r = inbox.client.post("/webhooks/whatsapp", data=bad, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(bad)})
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    huge = b"{" + b" " * (4 * 1024 * 1024) + b"}"
    r = inbox.client.post("/webhooks/whatsapp", data=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert inbox.events(conn) == []


def test_unexpected_shape_is_stored_acknowledged_and_flagged(inbox, conn):
    ch = inbox.channel("whatsapp")
    odd = wa_body(ch["external_id"], field="brand_new_field_2027")
    r = inbox.post_meta("whatsapp", odd)
    assert r.status_code == 200      # Meta must not retry what will never parse
    inbox.drain()
    flagged = inbox.api("GET", "/v1/inbound-events/review").json["data"]
    assert flagged and "field:brand_new_field_2027" in flagged[0]["review_reasons"]
    assert inbox.events(conn)[0]["processed_at"] is not None


def test_duplicate_delivery_and_a_redelivery_with_another_body_make_one_message(inbox):
    ch = inbox.channel("whatsapp")
    msg = text("34600000001", "una vez")
    body = wa_body(ch["external_id"], messages=[msg], contacts=[{"wa_id": "34600000001",
                                                                  "profile": {"name": "Ana"}}])
    for _ in range(2):
        assert inbox.post_meta("whatsapp", body).status_code == 200
    # Same wamid inside a different envelope (Meta batches redeliveries differently).
    assert inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[msg, text("34600000001", "dos")])
                           ).status_code == 200
    inbox.drain()
    [thread] = inbox.threads()
    texts = [m["text"] for m in inbox.messages(thread["id"])]
    assert texts == ["una vez", "dos"]


def test_batched_envelope_with_non_ascii_text(inbox):
    a, b = inbox.channel("whatsapp"), inbox.channel("whatsapp")
    doc = wa_body(a["external_id"], messages=[text("34600000011", "¿Qué tal? 😀 ñandú", ts=1732400000),
                                               text("34600000012", "Привет", ts=1732400001)],
                  contacts=[{"wa_id": "34600000011", "profile": {"name": "José"}},
                            {"wa_id": "34600000012", "profile": {"name": "Иван"}}])
    second = wa_body(b["external_id"], messages=[text("34600000011", "otro número", ts=1732400002)])
    doc["entry"].append(second["entry"][0])
    doc["entry"][0]["changes"].append({"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": a["external_id"]},
        "statuses": [status("wamid.unknown-yet", "delivered")]}})
    raw = meta_raw(doc)
    assert b"\\u00bf" in raw     # escaped on the wire, as Meta signs it
    assert inbox.post_meta("whatsapp", raw).status_code == 200
    inbox.drain()
    threads = inbox.threads()
    assert len(threads) == 3       # two customers on channel a, one on channel b
    got = sorted(m["text"] for t in threads for m in inbox.messages(t["id"]))
    assert got == sorted(["¿Qué tal? 😀 ñandú", "Привет", "otro número"])
    contact = inbox.api("GET", f"/v1/contacts/{threads[0]['contact_id']}").json
    assert contact["name"] in ("José", "Иван")


def test_statuses_out_of_order_and_before_their_message(inbox, conn):
    ch = inbox.channel("whatsapp")
    wamid = "wamid.echoed-" + secrets.token_hex(4)
    # The statuses arrive first (read before delivered), then the message itself appears as an echo.
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], statuses=[status(wamid, "read", ts=1732400200)]))
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], statuses=[status(wamid, "delivered", ts=1732400150)]))
    inbox.drain()
    echo = {"from": "34910000000", "to": "34600000001", "id": wamid, "timestamp": "1732400100", "type": "text",
            "text": {"body": "sent from the phone app"}}
    assert inbox.post_meta("whatsapp", {"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [
        {"field": "smb_message_echoes", "value": {"messaging_product": "whatsapp",
                                                  "metadata": {"display_phone_number": "34910000000",
                                                               "phone_number_id": ch["external_id"]},
                                                  "message_echoes": [echo]}}]}]}).status_code == 200
    inbox.drain()
    [thread] = inbox.threads()
    [m] = inbox.messages(thread["id"])
    assert m["direction"] == "outbound" and m["status"] == "read"
    assert sorted(s["status"] for s in m["statuses"]) == ["delivered", "read"]
    # A late 'delivered' redelivered again changes nothing; 'failed' keeps its error.
    failed = status(wamid, "failed", ts=1732400300,
                    errors=[{"code": 131047, "title": "Re-engagement message",
                             "error_data": {"details": "more than 24 hours have passed"}}])
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], statuses=[failed]))
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], statuses=[status(wamid, "delivered", ts=1732400400)]))
    inbox.drain()
    [m] = inbox.messages(thread["id"])
    assert m["status"] == "failed" and m["error"]["code"] == "131047"
    assert "24 hours" in m["error"]["reason"]


def test_whatsapp_and_sms_from_one_number_are_one_contact(inbox):
    wa = inbox.channel("whatsapp")
    sms = inbox.channel("twilio", "+14155550123")
    inbox.post_meta("whatsapp", wa_body(wa["external_id"], messages=[text("34600000055", "por WhatsApp")],
                                        contacts=[{"wa_id": "34600000055", "profile": {"name": "Marta"}}]))
    inbox.post_twilio({"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": "AC" + "1" * 32,
                       "From": "+34600000055", "To": "+14155550123", "Body": "por SMS", "NumMedia": "0",
                       "SmsStatus": "received", "ApiVersion": "2010-04-01"})
    inbox.drain()
    threads = inbox.threads()
    assert len(threads) == 2 and len({t["contact_id"] for t in threads}) == 1
    contact = inbox.api("GET", f"/v1/contacts/{threads[0]['contact_id']}").json
    assert contact["name"] == "Marta"
    assert contact["identities"] == [{"kind": "phone", "address": "+34600000055"}]
    assert sorted(t["channel_kind"] for t in contact["threads"]) == ["twilio", "whatsapp"]


def test_bsuid_only_user_then_linked_to_the_phone_when_both_appear(inbox):
    ch = inbox.channel("whatsapp")
    bsuid = "US.1349120865530274191" + str(secrets.randbelow(10))
    hidden = {"from_user_id": bsuid, "id": f"wamid.{secrets.token_hex(8)}", "timestamp": "1732400000",
              "type": "text", "text": {"body": "sin número"}}
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[hidden],
                                        contacts=[{"user_id": bsuid, "profile": {"name": "Oculto"}}]))
    inbox.drain()
    [first] = inbox.threads()
    assert inbox.api("GET", f"/v1/contacts/{first['contact_id']}").json["identities"] == [
        {"kind": "bsuid", "address": bsuid}]
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text("34600000066", "ahora con número")],
                                        contacts=[{"wa_id": "34600000066", "user_id": bsuid,
                                                   "profile": {"name": "Oculto"}}]))
    inbox.drain()
    threads = inbox.threads()
    assert len(threads) == 1 and threads[0]["id"] == first["id"]
    kinds = sorted(i["kind"] for i in inbox.api("GET", f"/v1/contacts/{first['contact_id']}").json["identities"])
    assert kinds == ["bsuid", "phone"]
    assert len(inbox.messages(first["id"])) == 2


def test_number_change_moves_the_identity_not_the_history(inbox):
    ch = inbox.channel("whatsapp")
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text("34600000071", "número viejo")]))
    inbox.drain()
    change = {"from": "34600000071", "id": f"wamid.{secrets.token_hex(8)}", "timestamp": "1732400500",
              "type": "system", "system": {"body": "User A changed from 34600000071 to 34600000072",
                                           "wa_id": "34600000072", "type": "user_changed_number"}}
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[change]))
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text("34600000072", "número nuevo", ts=1732400600)]))
    inbox.drain()
    [thread] = inbox.threads()
    assert [m["text"] for m in inbox.messages(thread["id"])][-1] == "número nuevo"
    contact = inbox.api("GET", f"/v1/contacts/{thread['contact_id']}").json
    assert contact["identities"] == [{"kind": "phone", "address": "+34600000072"}]


def test_messenger_echo_is_outbound_and_watermark_marks_earlier_messages(inbox):
    page = inbox.channel("messenger")
    pid, psid = page["external_id"], "PSID" + secrets.token_hex(4)

    def envelope(*events):
        return {"object": "page", "entry": [{"id": pid, "time": 1732400000000, "messaging": list(events)}]}

    inbound = {"sender": {"id": psid}, "recipient": {"id": pid}, "timestamp": 1732400000000,
               "message": {"mid": "m_in", "text": "hello page"}}
    echo = {"sender": {"id": pid}, "recipient": {"id": psid}, "timestamp": 1732400001000,
            "message": {"mid": "m_echo", "is_echo": True, "app_id": 263902037430900, "text": "hi from the inbox"}}
    read = {"sender": {"id": psid}, "recipient": {"id": pid}, "timestamp": 1732400009000,
            "read": {"watermark": 1732400005000}}
    assert inbox.post_meta("messenger", envelope(inbound, echo)).status_code == 200
    assert inbox.post_meta("messenger", envelope(read)).status_code == 200
    inbox.drain()
    [thread] = inbox.threads()
    msgs = {m["provider_message_id"]: m for m in inbox.messages(thread["id"])}
    assert msgs["m_in"]["direction"] == "inbound"
    assert msgs["m_echo"]["direction"] == "outbound" and msgs["m_echo"]["status"] == "read"
    contact = inbox.api("GET", f"/v1/contacts/{thread['contact_id']}").json
    assert contact["identities"] == [{"kind": "psid", "address": psid}]


def test_twilio_signature_uses_the_public_url(inbox, conn, monkeypatch):
    """Behind a proxy the gateway sees its own URL; GATEWAY_PUBLIC_URL makes the signature match Twilio's."""
    import dataclasses
    from gateway import runtime
    from tests.webhooks.conftest import TWILIO_TOKEN, twilio_signature
    from urllib.parse import urlencode
    inbox.channel("twilio", "+14155550199")
    params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": "AC" + "1" * 32, "From": "+34600000081",
              "To": "+14155550199", "Body": "hola", "NumMedia": "0", "SmsStatus": "received"}
    public = "https://gw.example.com/webhooks/twilio"
    sig = twilio_signature(public, params, TWILIO_TOKEN)
    send = lambda: inbox.client.post("/webhooks/twilio", data=urlencode(params), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
    assert send().status_code == 401
    monkeypatch.setattr(runtime, "_settings", dataclasses.replace(runtime.settings(),
                                                                  public_url="https://gw.example.com"))
    r = send()
    assert r.status_code == 200 and r.mimetype == "text/xml"
    assert len(inbox.events(conn)) == 1
