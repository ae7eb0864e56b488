"""GDPR erasure (Art. 17) and retention (Art. 5(1)(e)), end to end through the real receiver and worker.

The erasure test seeds a customer the way traffic does (signed webhooks, drained by the real worker, a
media download from a local Graph stand-in, an outbound message through the API, a merged contact, a
consent event with proof), erases it, and then scans every column of every table - in clear, and
decrypted with every data key still alive - for the customer's number, name and texts.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from gateway import contacts, keystore
from gateway.crypto import DecryptionError, field_aad
from gateway.db import uuid7
from tests.webhooks.conftest import make_inbox
from tests.webhooks.test_receiver import status, text, wa_body


class Graph:
    """The Cloud API's two media endpoints, serving one file whose bytes hold personal data."""

    def __init__(self, data: bytes):
        self.data = data
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @Request.application
    def app(self, request):
        if request.path.startswith("/file/"):
            return Response(self.data, 200, mimetype="text/plain")
        media_id = request.path.rsplit("/", 1)[-1]
        return Response(json.dumps({"url": f"{self.base}/file/{media_id}", "mime_type": "text/plain",
                                    "id": media_id, "messaging_product": "whatsapp"}), 200,
                        mimetype="application/json")


class Person:
    """A customer whose every trace is findable: a random number, name and texts."""

    def __init__(self):
        tag = secrets.token_hex(4)
        self.digits = "346" + str(secrets.randbelow(10 ** 8)).zfill(8)
        self.phone = "+" + self.digits
        self.second_digits = "346" + str(secrets.randbelow(10 ** 8)).zfill(8)
        self.name = f"Zoraida Quintanilla {tag}"
        self.work_name = f"Zoraida Q. Trabajo {tag}"
        self.inbound = f"Mi cita del martes {tag}, por favor cambiadla"
        self.second = f"Escribo desde el otro numero {tag}"
        self.outbound = f"Claro, la movemos {tag}"
        self.caption = f"Factura adjunta {tag}"
        self.file = f"FACTURA {tag} a nombre de {self.name}, telefono {self.phone}".encode()
        self.proof = f"Acepto promociones {tag} - {self.phone}"

    def needles(self) -> list[str]:
        national = self.digits[2:]
        spaced = f"+34 {national[:3]} {national[3:5]} {national[5:7]} {national[7:]}"
        return [self.phone, self.digits, national, spaced, f"whatsapp:{self.phone}", self.second_digits,
                self.second_digits[2:], self.name, self.work_name, "Quintanilla", self.inbound, self.second,
                self.outbound, self.caption, self.file.decode(), self.proof]


def _tables(conn) -> list[str]:
    return [r["tablename"] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()]


def _text_of(value) -> list[str]:
    """A column value as every string it could show a needle in."""
    if value is None:
        return []
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes):
        return [value.decode("utf-8", "replace"), value.decode("latin-1"), value.hex()]
    if isinstance(value, (dict, list)):
        return [json.dumps(value, ensure_ascii=False), json.dumps(value)]
    return [str(value)]


def _clear_scan(conn, needles: list[str]) -> list[str]:
    """Every column of every row of every table, as stored."""
    found = []
    hexes = {n: n.encode().hex() for n in needles}
    for table in _tables(conn):
        for row in conn.execute(f'SELECT * FROM "{table}"').fetchall():
            for column, value in row.items():
                for shown in _text_of(value):
                    for needle in needles:
                        if needle in shown or hexes[needle] in shown:
                            found.append(f"{table}.{column}: {needle!r}")
    return found


def _decrypted_scan(conn, account_id, needles: list[str]) -> list[str]:
    """Every *_enc column of the account's rows, decrypted with every data key of the account still alive
    (the account's, the channels', other contacts'): what anyone holding the keyring could still read."""
    keys = []
    for r in conn.execute("SELECT id FROM data_keys WHERE account_id = %s AND wrapped IS NOT NULL",
                          (account_id,)).fetchall():
        keys.append(keystore.load_key(conn, account_id=account_id, key_id=r["id"]))
    columns = conn.execute(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "WHERE c.table_schema = 'public' AND c.data_type = 'bytea' AND c.column_name LIKE '%%\\_enc' "
        "AND EXISTS (SELECT 1 FROM information_schema.columns k WHERE k.table_schema = 'public' "
        "AND k.table_name = c.table_name AND k.column_name = 'account_id') "
        "AND EXISTS (SELECT 1 FROM information_schema.columns k WHERE k.table_schema = 'public' "
        "AND k.table_name = c.table_name AND k.column_name = 'id')").fetchall()
    found = []
    for col in columns:
        table, column = col["table_name"], col["column_name"]
        rows = conn.execute(f'SELECT id, "{column}" AS v FROM "{table}" WHERE account_id = %s AND "{column}" IS NOT NULL',
                            (account_id,)).fetchall()
        for row in rows:
            aad = field_aad(table, column[:-len("_enc")], account_id, row["id"])
            for key in keys:
                try:
                    plain = key.decrypt(bytes(row["v"]), aad).decode("utf-8", "replace")
                except DecryptionError:
                    continue
                found += [f"{table}.{column} (decrypted): {n!r}" for n in needles if n in plain]
    return found


def _seed(inbox, conn, person: Person, graph: Graph) -> dict:
    ch = inbox.channel("whatsapp", settings={"api_base_url": graph.base})
    now = int(time.time())
    card = {"profile": {"name": person.name}, "wa_id": person.digits}
    first = text(person.digits, person.inbound, ts=now - 120)
    document = {"from": person.digits, "id": f"wamid.{secrets.token_hex(8)}", "timestamp": str(now - 100),
                "type": "document", "document": {"id": "77" + secrets.token_hex(4), "mime_type": "text/plain",
                                                 "filename": f"{person.name}.txt", "caption": person.caption}}
    assert inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[first], contacts=[card])).status_code == 200
    assert inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[document],
                                               contacts=[card])).status_code == 200
    # A status for a message the gateway never recorded: it waits, naming the customer as recipient.
    late = status(f"wamid.{secrets.token_hex(8)}", "delivered", recipient_id=person.digits)
    assert inbox.post_meta("whatsapp", wa_body(ch["external_id"], statuses=[late])).status_code == 200
    # The same customer from a second number, merged into the first by the CRM.
    work = {"profile": {"name": person.work_name}, "wa_id": person.second_digits}
    assert inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[
        text(person.second_digits, person.second, ts=now - 90)], contacts=[work])).status_code == 200
    inbox.drain(("inbound", "default"))

    contact = contacts.contact_id_for(conn, account_id=inbox.account_id, kind="phone", address=person.phone)
    merged = contacts.contact_id_for(conn, account_id=inbox.account_id, kind="phone", address="+" + person.second_digits)
    assert contact and merged and contact != merged
    conn.commit()
    r = inbox.api("POST", f"/v1/contacts/{contact}/merge", json={"contact_id": str(merged)})
    assert r.status_code in (200, 201), r.json
    r = inbox.api("POST", "/v1/messages", json={"channel_id": ch["id"], "contact_id": str(contact), "type": "text",
                                                "text": {"body": person.outbound}})
    assert r.status_code == 202, r.json
    # A consent event with its proof, under the contact's key as the ledger keeps it.
    key = contacts.contact_key(conn, account_id=inbox.account_id, contact_id=contact)
    consent_id = uuid7()
    conn.execute(
        "INSERT INTO consent_events (account_id, id, contact_id, channel_kind, purpose, action, source, proof_enc, "
        "occurred_at) VALUES (%s, %s, %s, 'whatsapp', 'marketing', 'granted', 'web_form', %s, now())",
        (inbox.account_id, consent_id, contact, key.encrypt(
            person.proof, field_aad("consent_events", "proof", inbox.account_id, consent_id))))
    conn.commit()
    return {"channel": ch, "contact": contact, "merged": merged, "card": card, "first": first}


@pytest.fixture
def person():
    return Person()


@pytest.fixture
def graph(person):
    g = Graph(person.file)
    yield g
    g.server.shutdown()


def test_erasure_leaves_no_trace_and_the_number_starts_afresh(client, conn, person, graph):
    inbox = make_inbox(client)
    seeded = _seed(inbox, conn, person, graph)
    contact, merged = seeded["contact"], seeded["merged"]
    a = inbox.account_id
    shown = inbox.api("GET", f"/v1/contacts/{contact}").json
    assert shown["name"] == person.name and str(merged) in map(str, shown["merged_contacts"])
    stored = conn.execute("SELECT count(*) AS n FROM media WHERE account_id = %s AND state = 'stored'", (a,)).fetchone()
    assert stored["n"] == 1
    # The scanner works: before erasure, the keys read every trace back (and nothing is in clear).
    before = _decrypted_scan(conn, a, person.needles())
    for needle in (person.phone, person.name, person.work_name, person.inbound, person.second, person.outbound,
                   person.caption, person.file.decode(), person.proof):
        assert any(repr(needle) in f for f in before), f"{needle!r} not found before erasure: scanner broken"
    assert _clear_scan(conn, person.needles()) == []

    # Ciphertexts as a backup would hold them, with the keys they were under.
    copies = conn.execute(
        "SELECT 'contacts' AS t, 'name' AS c, id, data_key_id AS k, name_enc AS v FROM contacts "
        "WHERE account_id = %(a)s AND id = ANY(%(ids)s) "
        "UNION ALL SELECT 'messages', 'body', m.id, c.data_key_id, m.body_enc FROM messages m JOIN contacts c "
        "ON c.account_id = m.account_id AND c.id = m.contact_id WHERE m.account_id = %(a)s AND m.body_enc IS NOT NULL "
        "UNION ALL SELECT 'media', 'content', m.id, c.data_key_id, m.content_enc FROM media m JOIN contacts c "
        "ON c.account_id = m.account_id AND c.id = m.contact_id WHERE m.account_id = %(a)s "
        "UNION ALL SELECT 'inbound_events', 'raw', id, data_key_id, raw_enc FROM inbound_events "
        "WHERE account_id = %(a)s", {"a": a, "ids": [contact, merged]}).fetchall()
    assert {c["t"] for c in copies} == {"contacts", "messages", "media", "inbound_events"}
    assert len([c for c in copies if c["t"] == "inbound_events"]) == 4

    # Erasure has its own scope: contacts:write does not imply it.
    writer = inbox.api("POST", "/v1/api-keys", json={"name": "crm", "scopes": ["contacts:write"]}).json["key"]
    r = client.delete(f"/v1/contacts/{contact}", headers={"Authorization": f"Bearer {writer}"})
    assert r.status_code == 403 and "contacts:erase" in r.json["detail"]
    r = inbox.api("DELETE", f"/v1/contacts/{contact}")
    assert r.status_code == 204, r.json
    conn.commit()

    assert _clear_scan(conn, person.needles()) == []
    assert _decrypted_scan(conn, a, person.needles()) == []
    for copy in copies:
        with pytest.raises(DecryptionError):   # KeyShredded is one
            key = keystore.load_key(conn, account_id=a, key_id=copy["k"])
            key.decrypt(bytes(copy["v"]), field_aad(copy["t"], copy["c"], a, copy["id"]))
    for table in ("contacts", "contact_identities", "threads", "messages", "message_events", "media",
                  "consent_events", "contact_merges", "pending_statuses", "inbound_event_contacts"):
        n = conn.execute(f"SELECT count(*) AS n FROM {table} WHERE account_id = %s", (a,)).fetchone()["n"]
        assert n == 0, f"{table} still holds {n} rows"
    raw = conn.execute("SELECT count(*) FILTER (WHERE raw_enc IS NULL AND raw_erased_at IS NOT NULL) AS wiped, "
                       "count(*) AS n FROM inbound_events WHERE account_id = %s", (a,)).fetchone()
    assert raw["wiped"] == raw["n"] == 4      # kept as dedupe keys, bodies gone

    # Tombstones, the CRM's event and the audit row: ids and times only.
    tombs = conn.execute("SELECT contact_id FROM contact_erasures WHERE account_id = %s", (a,)).fetchall()
    assert {t["contact_id"] for t in tombs} == {contact, merged}
    [event] = conn.execute("SELECT type, subject_id, data FROM events WHERE account_id = %s "
                           "AND type = 'contact.erased'", (a,)).fetchall()
    assert event["type"] == "contact.erased" and event["subject_id"] == contact
    assert event["data"] == {"contact_id": str(contact), "merged_contact_ids": [str(merged)]}
    audit = conn.execute("SELECT detail FROM audit_log WHERE account_id = %s AND action = 'contact.erased'",
                         (a,)).fetchone()
    assert audit["detail"]["counts"]["messages"] == 4 and audit["detail"]["counts"]["media"] == 1

    # Second erasure: 410 for the contact and for the one merged into it; unknown ids stay 404.
    for gone in (contact, merged):
        r = inbox.api("DELETE", f"/v1/contacts/{gone}")
        assert r.status_code == 410 and r.mimetype == "application/problem+json"
        assert r.json["type"].endswith("/contact-erased") and r.json["erased_at"]
    assert inbox.api("DELETE", f"/v1/contacts/{uuid7()}").status_code == 404
    assert inbox.api("GET", f"/v1/contacts/{contact}").status_code == 404
    other = make_inbox(client)
    assert other.api("DELETE", f"/v1/contacts/{contact}").status_code == 404   # no hint it existed elsewhere

    # A late redelivery of an old webhook is a duplicate: the old message does not come back.
    ch = seeded["channel"]
    assert inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[seeded["first"]],
                                               contacts=[seeded["card"]])).status_code == 200
    inbox.drain(("inbound", "default"))
    assert conn.execute("SELECT count(*) AS n FROM messages WHERE account_id = %s", (a,)).fetchone()["n"] == 0
    # A new message from the same number starts a new contact with no history.
    fresh_text = f"Hola de nuevo {secrets.token_hex(3)}"
    assert inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[
        text(person.digits, fresh_text, ts=int(time.time()))])).status_code == 200
    inbox.drain(("inbound",))
    conn.commit()
    fresh = contacts.contact_id_for(conn, account_id=a, kind="phone", address=person.phone)
    assert fresh is not None and fresh not in (contact, merged)
    [thread] = inbox.threads()
    assert [m["text"] for m in inbox.messages(thread["id"])] == [fresh_text]
    view = inbox.api("GET", f"/v1/contacts/{fresh}").json
    assert view["merged_contacts"] == [] and [i["address"] for i in view["identities"]] == [person.phone]


def test_erasing_a_contact_leaves_other_customers_alone(client, conn):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    now = int(time.time())
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[
        text("34600777001", "uno", ts=now - 5), text("34600777002", "dos", ts=now - 4)]))
    inbox.drain()
    conn.commit()
    gone = contacts.contact_id_for(conn, account_id=inbox.account_id, kind="phone", address="+34600777001")
    kept = contacts.contact_id_for(conn, account_id=inbox.account_id, kind="phone", address="+34600777002")
    assert inbox.api("DELETE", f"/v1/contacts/{gone}").status_code == 204
    [thread] = inbox.threads()
    assert thread["contact_id"] == str(kept)
    assert [m["text"] for m in inbox.messages(thread["id"])] == ["dos"]
    # The webhook named both: its body is wiped for the erased one's sake (it was applied long ago).
    row = conn.execute("SELECT raw_enc, raw_erased_at FROM inbound_events WHERE account_id = %s",
                       (inbox.account_id,)).fetchone()
    assert row["raw_enc"] is None and row["raw_erased_at"] is not None


# --- retention -----------------------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gateway.cli", "retention", "run", *args], env=os.environ,
                          capture_output=True, text=True, timeout=120)


def _snapshot(conn, account_id) -> dict:
    return {
        "messages": conn.execute("SELECT id, body_enc, content_enc, content_erased_at FROM messages "
                                 "WHERE account_id = %s ORDER BY id", (account_id,)).fetchall(),
        "events": conn.execute("SELECT id FROM inbound_events WHERE account_id = %s ORDER BY id",
                               (account_id,)).fetchall(),
        "media": conn.execute("SELECT id FROM media WHERE account_id = %s ORDER BY id", (account_id,)).fetchall(),
        "pending": conn.execute("SELECT id FROM pending_statuses WHERE account_id = %s ORDER BY id",
                                (account_id,)).fetchall(),
    }


def _aged_account(client, conn, *, message_days, raw_days):
    """An account with 6 messages (3 of them 40 days old, one of those with an attachment row), 6 raw
    events (2 processed and 10 days old, 1 unprocessed and 10 days old), and two pending statuses (one
    8 days old)."""
    from gateway import inbound
    inbox = make_inbox(client)
    r = inbox.api("PATCH", "/v1/account", json={"retention_message_days": message_days,
                                                "retention_raw_event_days": raw_days})
    assert r.status_code == 200, r.json
    assert (r.json["retention_message_days"], r.json["retention_raw_event_days"]) == (message_days, raw_days)
    ch = inbox.channel("whatsapp")
    now = int(time.time())
    for i in range(6):
        inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text("34600888001", f"m{i}", ts=now - 60 + i)]))
    inbox.drain()
    a = inbox.account_id
    old = datetime.now(timezone.utc) - timedelta(days=40)
    ids = [r["id"] for r in conn.execute("SELECT id FROM messages WHERE account_id = %s ORDER BY occurred_at",
                                         (a,)).fetchall()]
    conn.execute("UPDATE messages SET occurred_at = %s WHERE account_id = %s AND id = ANY(%s)", (old, a, ids[:3]))
    contact = conn.execute("SELECT contact_id FROM messages WHERE account_id = %s LIMIT 1", (a,)).fetchone()
    key = contacts.contact_key(conn, account_id=a, contact_id=contact["contact_id"])
    media_id = uuid7()
    conn.execute("INSERT INTO media (account_id, id, message_id, contact_id, channel_id, kind, source_enc, state, "
                 "content_enc) VALUES (%s, %s, %s, %s, %s, 'image', %s, 'stored', %s)",
                 (a, media_id, ids[0], contact["contact_id"], ch["id"],
                  key.encrypt("{}", field_aad("media", "source", a, media_id)),
                  key.encrypt(b"bytes", field_aad("media", "content", a, media_id))))
    events = [r["id"] for r in conn.execute("SELECT id FROM inbound_events WHERE account_id = %s ORDER BY id",
                                            (a,)).fetchall()]
    ten_days = datetime.now(timezone.utc) - timedelta(days=10)
    conn.execute("UPDATE inbound_events SET received_at = %s WHERE account_id = %s AND id = ANY(%s)",
                 (ten_days, a, events[:2]))
    unprocessed, _ = inbound.store_event(conn, account_id=a, channel_id=ch["id"], provider="whatsapp",
                                         dedupe_key=f"old-{secrets.token_hex(4)}", raw=b"{}")
    conn.execute("UPDATE inbound_events SET received_at = %s WHERE account_id = %s AND id = %s",
                 (ten_days, a, unprocessed))
    for age in (8, 1):
        conn.execute("INSERT INTO pending_statuses (account_id, id, channel_id, provider_id_bidx, status, created_at) "
                     "VALUES (%s, %s, %s, %s, 'delivered', now() - make_interval(days => %s))",
                     (a, uuid7(), ch["id"], secrets.token_bytes(32), age))
    conn.commit()
    return inbox, {"old_messages": ids[:3], "new_messages": ids[3:], "old_events": events[:2],
                   "unprocessed": unprocessed, "media": media_id}


def test_retention_settings_are_validated(client):
    inbox = make_inbox(client)
    assert inbox.api("GET", "/v1/account").json["retention_raw_event_days"] == 30   # the documented default
    assert inbox.api("GET", "/v1/account").json["retention_message_days"] is None
    r = inbox.api("PATCH", "/v1/account", json={"retention_raw_event_days": 3})
    assert r.status_code == 422 and "7" in r.json["errors"][0]["detail"]
    r = inbox.api("PATCH", "/v1/account", json={"retention_message_days": "a year"})
    assert r.status_code == 422
    r = inbox.api("PATCH", "/v1/account", json={"retention_message_days": 365, "retention_raw_event_days": None})
    assert (r.json["retention_message_days"], r.json["retention_raw_event_days"]) == (365, None)


def test_retention_removes_exactly_what_is_due(client, conn):
    inbox, seeded = _aged_account(client, conn, message_days=30, raw_days=7)
    keep_all, _ = _aged_account(client, conn, message_days=None, raw_days=None)
    a = inbox.account_id
    before, before_other = _snapshot(conn, a), _snapshot(conn, keep_all.account_id)

    dry = _cli("--account", str(a), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "message contents: 3 would go" in dry.stdout and "raw events: 2 would go" in dry.stdout
    assert "pending statuses: 1 would go" in dry.stdout
    summary = json.loads(dry.stdout.strip().splitlines()[-1])
    assert summary["dry_run"] is True
    assert {(r["table"], r["due"]) for r in summary["results"]} == {
        ("messages", 3), ("inbound_events", 2), ("pending_statuses", 1)}
    conn.commit()
    assert _snapshot(conn, a) == before           # a dry run changes nothing

    done = _cli("--account", str(a), "--batch", "2")
    assert done.returncode == 0, done.stderr
    assert "message contents: 3 went" in done.stdout and "raw events: 2 went" in done.stdout
    assert "of 3" in done.stderr                  # progress
    conn.commit()
    rows = {r["id"]: r for r in conn.execute(
        "SELECT id, body_enc, content_enc, content_erased_at, status, direction FROM messages WHERE account_id = %s",
        (a,)).fetchall()}
    for mid in seeded["old_messages"]:
        assert rows[mid]["body_enc"] is None and rows[mid]["content_enc"] is None
        assert rows[mid]["content_erased_at"] is not None and rows[mid]["direction"] == "inbound"
    for mid in seeded["new_messages"]:
        assert rows[mid]["body_enc"] is not None and rows[mid]["content_erased_at"] is None
    assert conn.execute("SELECT count(*) AS n FROM media WHERE account_id = %s", (a,)).fetchone()["n"] == 0
    events = {r["id"] for r in conn.execute("SELECT id FROM inbound_events WHERE account_id = %s", (a,)).fetchall()}
    assert events == {e["id"] for e in before["events"]} - set(seeded["old_events"])
    assert seeded["unprocessed"] in events        # a worker still owes it
    assert len(_snapshot(conn, a)["pending"]) == 1
    # The wiped messages still read (as metadata), in order.
    [thread] = inbox.threads()
    assert [m["text"] for m in inbox.messages(thread["id"])] == [None, None, None, "m3", "m4", "m5"]
    # --account touched no other account (one that keeps everything has old rows of every kind).
    assert _snapshot(conn, keep_all.account_id) == before_other
    again = _cli("--account", str(a))
    assert "message contents: 0 went" in again.stdout and "raw events: 0 went" in again.stdout


def test_sweeper_slice_applies_retention(client, conn):
    from gateway import retention
    inbox, seeded = _aged_account(client, conn, message_days=30, raw_days=7)
    while not retention.sweep_slice(budget_s=5.0):
        pass
    conn.commit()
    wiped = conn.execute("SELECT count(*) AS n FROM messages WHERE account_id = %s AND content_erased_at IS NOT NULL",
                         (inbox.account_id,)).fetchone()["n"]
    assert wiped == 3
