"""POST /v1/messages/batch: many messages in one request, each through the one send gate on its own."""
from __future__ import annotations

import secrets
import time
import uuid

from gateway.db import uuid7
from tests.webhooks.conftest import make_inbox
from tests.webhooks.test_receiver import text, wa_body


def _outbound(conn, account_id) -> list[dict]:
    return conn.execute("SELECT id, contact_id, status, thread_id FROM messages WHERE account_id = %s "
                        "AND direction = 'outbound' ORDER BY created_at", (account_id,)).fetchall()


def _customers(inbox, channel, n: int) -> list[str]:
    phones = [f"3460{secrets.randbelow(10**7):07d}" for _ in range(n)]
    before = {t["contact_id"] for t in inbox.threads()}
    inbox.post_meta("whatsapp", wa_body(channel["external_id"], messages=[
        text(p, "hola", ts=int(time.time()) - 30) for p in phones]))
    inbox.drain()
    new = {t["contact_id"] for t in inbox.threads()} - before
    assert len(new) == n
    return sorted(new)


def test_a_batch_queues_every_message_in_its_contacts_thread(client, conn):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    contacts = _customers(inbox, ch, 3)
    r = inbox.api("POST", "/v1/messages/batch", json={"messages": [
        {"channel_id": ch["id"], "contact_id": c, "type": "text", "text": {"body": f"pedido {i} listo"}}
        for i, c in enumerate(contacts)]})
    assert r.status_code == 200, r.json
    assert r.json["accepted"] == 3 and r.json["refused"] == 0
    assert [item["index"] for item in r.json["data"]] == [0, 1, 2]
    assert all(item["status"] == 202 and item["message"]["status"] == "queued" for item in r.json["data"])
    rows = _outbound(conn, inbox.account_id)
    assert sorted(str(row["contact_id"]) for row in rows) == contacts
    # Each message sits in its contact's thread, which now shows the outbound activity.
    for item in r.json["data"]:
        shown = inbox.api("GET", f"/v1/messages/{item['message']['id']}").json
        assert shown["text"].startswith("pedido ") and shown["status"] == "queued"
        thread = inbox.api("GET", f"/v1/threads/{shown['thread_id']}").json
        assert thread["contact_id"] in contacts


def test_each_item_is_refused_on_its_own_and_leaves_no_row(client, conn):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    [inside] = _customers(inbox, ch, 1)
    opted_out = _customers(inbox, ch, 1)
    conn.execute("INSERT INTO consent_events (account_id, id, contact_id, channel_kind, purpose, action, source, "
                 "occurred_at) VALUES (%s, %s, %s, 'whatsapp', 'all', 'withdrawn', 'keyword', now())",
                 (inbox.account_id, uuid7(), opted_out[0]))
    conn.commit()
    r = inbox.api("POST", "/v1/messages/batch", json={"messages": [
        {"channel_id": ch["id"], "contact_id": inside, "type": "text", "text": {"body": "sí"}},
        {"channel_id": ch["id"], "to": {"address": "+34600000999"}, "type": "text", "text": {"body": "fuera"}},
        {"channel_id": ch["id"], "contact_id": opted_out[0], "type": "text", "text": {"body": "no"}},
        {"channel_id": str(uuid.uuid4()), "contact_id": inside, "type": "text", "text": {"body": "¿canal?"}},
        {"channel_id": ch["id"], "contact_id": str(uuid.uuid4()), "type": "text", "text": {"body": "¿quién?"}},
        {"channel_id": ch["id"], "contact_id": inside, "type": "text"},
        "not an object",
        {"channel_id": ch["id"], "to": {"address": "no es un teléfono"}, "type": "text", "text": {"body": "x"}},
    ]})
    assert r.status_code == 200, r.json
    statuses = [item["status"] for item in r.json["data"]]
    assert statuses == [202, 422, 403, 404, 404, 422, 422, 422]
    problems = [item.get("problem") for item in r.json["data"]]
    assert problems[1]["type"].endswith("/outside_customer_service_window") and "window_closed_at" in problems[1]
    assert problems[2]["type"].endswith("/opted_out")
    assert "channel" in problems[3]["detail"] and "contact" in problems[4]["detail"]
    assert problems[5]["errors"][0]["pointer"] == "/messages/5/text"
    assert problems[7]["errors"][0]["pointer"] == "/messages/7/to/address" and "+34" in problems[7]["detail"]
    assert r.json["accepted"] == 1 and r.json["refused"] == 7
    assert [str(row["contact_id"]) for row in _outbound(conn, inbox.account_id)] == [inside]


def test_item_idempotency_keys_return_the_first_message(client, conn):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    [contact] = _customers(inbox, ch, 1)
    item = {"channel_id": ch["id"], "contact_id": contact, "type": "text", "text": {"body": "una vez"},
            "idempotency_key": "recordatorio-" + secrets.token_hex(4)}
    first = inbox.api("POST", "/v1/messages/batch", json={"messages": [item, item]}).json
    again = inbox.api("POST", "/v1/messages/batch", json={"messages": [item]}).json
    other = inbox.api("POST", "/v1/messages/batch", json={"messages": [{**item, "text": {"body": "otra"}}]}).json
    made = first["data"][0]["message"]["id"]
    assert first["data"][0]["status"] == 202
    assert first["data"][1] == {"index": 1, "status": 200, "message": {"id": made}}
    assert again["data"][0] == {"index": 0, "status": 200, "message": {"id": made}}
    assert other["data"][0]["status"] == 409
    assert other["data"][0]["problem"]["type"].endswith("/idempotency-key-reused")
    assert len(_outbound(conn, inbox.account_id)) == 1


def test_a_malformed_batch_is_one_problem_and_changes_nothing(client, conn):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    [contact] = _customers(inbox, ch, 1)
    one = {"channel_id": ch["id"], "contact_id": contact, "type": "text", "text": {"body": "x"}}
    for body in ({"messages": []}, {"messages": [one] * 101}, {"messages": one}, [one], {"messages": [one], "x": 1}):
        r = inbox.api("POST", "/v1/messages/batch", json=body)
        assert r.status_code == 422, (body, r.json)
        assert r.json["type"].endswith("/validation-failed") and "1 to 100" in r.json["detail"]
    r = inbox.api("POST", "/v1/messages/batch", data="messages", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert _outbound(conn, inbox.account_id) == []


def test_the_batch_needs_the_send_scope(client):
    inbox = make_inbox(client)
    reader = inbox.api("POST", "/v1/api-keys", json={"name": "reader", "scopes": ["messages:read"]}).json
    r = client.post("/v1/messages/batch", json={"messages": []},
                    headers={"Authorization": f"Bearer {reader['key']}"})
    assert r.status_code == 403 and r.json["type"].endswith("/missing-scope")
