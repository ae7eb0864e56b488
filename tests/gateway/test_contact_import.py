"""Contact import from CSV: POST /v1/contacts/import and `gateway contacts import`, through the app and real
PostgreSQL: attributes, tags, language and consent with proof; delimiters, BOM and bad encodings; bad lines
reported by number with the good ones imported; duplicates; re-imports; existing and merged contacts; the
per-row column values a campaign reads; tenant walls; the CLI."""
from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
import uuid

import phonenumbers
import pytest

from gateway import contact_import, contacts, db, merges
from gateway.contacts import InvalidAddress, normalise_phone
from tests.webhooks.conftest import make_inbox
from tests.webhooks.test_receiver import text, wa_body

HEADER = ("phone,name,language,tags,city,plan,consent_marketing,consent_source_text,consent_text_version,"
          "consent_at,consent_form_id,consent_ip,consent_page\n")


def _import(inbox, body, *, region="ES", content_type="text/csv", **params):
    query = "&".join(f"{k}={v}" for k, v in {**({"default_region": region} if region else {}), **params}.items())
    data = body.encode() if isinstance(body, str) else body
    return inbox.api("POST", "/v1/contacts/import" + (f"?{query}" if query else ""), data=data,
                     headers={"Content-Type": content_type})


def _audience(import_id, account_id) -> list:
    with db.connection() as conn:
        return contact_import.contact_ids(conn, account_id=account_id, import_id=import_id)


def _contacts(inbox) -> list[dict]:
    return inbox.api("GET", "/v1/contacts?limit=200").json["data"]


def _phones(contact) -> list[str]:
    return [i["address"] for i in contact["identities"] if i["kind"] == "phone"]


# --- through the API -----------------------------------------------------------------------------------

def test_good_file_with_attributes_tags_language_and_consent_proof(client):
    inbox = make_inbox(client)
    body = (HEADER
            + "+34 612 345 001,Ana García,es,vip|cliente,Madrid,pro,yes,Acepto recibir ofertas por WhatsApp,"
              "promo-v3,2026-01-10T09:00:00Z,form-8812,203.0.113.7,https://tienda.example/alta\n"
            + "612 345 002,Luis Pérez,pt-br,cliente,Sevilla,,no,,,,,,\n"
            + "612345003,,,,,basic,,,,,,,\n")
    r = _import(inbox, body, filename="clientes.csv")
    assert r.status_code == 201, r.json
    doc = r.json
    assert {k: doc[k] for k in ("rows", "imported", "created", "updated", "duplicates", "skipped")} == {
        "rows": 3, "imported": 3, "created": 3, "updated": 0, "duplicates": 0, "skipped": 0}
    assert doc["errors"] == [] and doc["status"] == "completed" and doc["filename"] == "clientes.csv"
    assert doc["columns"] == ["city", "plan"]
    assert r.headers["Location"] == f"/v1/contacts/imports/{doc['import_id']}"

    ana_id, luis_id, third_id = _audience(doc["import_id"], inbox.account_id)
    ana = inbox.api("GET", f"/v1/contacts/{ana_id}").json
    assert ana["name"] == "Ana García" and ana["language"] == "es"
    assert ana["profile"] == {"city": "Madrid", "plan": "pro"} and ana["tags"] == ["cliente", "vip"]
    assert _phones(ana) == ["+34612345001"]
    luis = inbox.api("GET", f"/v1/contacts/{luis_id}").json
    assert luis["language"] == "pt_BR" and luis["profile"] == {"city": "Sevilla"} and luis["tags"] == ["cliente"]
    third = inbox.api("GET", f"/v1/contacts/{third_id}").json
    assert third["name"] is None and third["language"] is None and third["profile"] == {"plan": "basic"}

    consents = inbox.api("GET", f"/v1/contacts/{ana_id}/consents").json
    [event] = consents["history"]
    assert {k: event[k] for k in ("channel_kind", "purpose", "action", "source")} == {
        "channel_kind": "all", "purpose": "marketing", "action": "granted", "source": "import"}
    assert event["occurred_at"].startswith("2026-01-10T09:00:00")
    assert event["proof"] == {"text": "Acepto recibir ofertas por WhatsApp", "text_version": "promo-v3",
                              "form_submission_id": "form-8812", "ip": "203.0.113.7",
                              "page": "https://tienda.example/alta"}
    [withdrawn] = inbox.api("GET", f"/v1/contacts/{luis_id}/consents").json["history"]
    assert withdrawn["action"] == "withdrawn" and withdrawn["proof"] is None
    assert inbox.api("GET", f"/v1/contacts/{third_id}/consents").json["history"] == []

    got = inbox.api("GET", f"/v1/contacts/imports/{doc['import_id']}")
    assert got.status_code == 200 and got.json["created"] == 3 and got.json["filename"] == "clientes.csv"
    listed = inbox.api("GET", "/v1/contacts/imports").json["data"]
    assert [i["import_id"] for i in listed] == [doc["import_id"]] and "errors" not in listed[0]

    # One audit row for the whole import, counts only; no per-contact or per-consent rows.
    with db.connection() as conn:
        rows = conn.execute("SELECT action, target_id, detail FROM audit_log WHERE account_id = %s "
                            "AND action NOT LIKE 'read:%%' AND action NOT LIKE 'api_key.%%'",
                            (inbox.account_id,)).fetchall()
    assert [r["action"] for r in rows if r["action"] != "account.created"] == ["contacts.imported"]
    imported = next(r for r in rows if r["action"] == "contacts.imported")
    assert imported["target_id"] == doc["import_id"] and imported["detail"]["created"] == 3
    assert imported["detail"]["consent_events"] == {"granted": 1, "withdrawn": 1}
    assert "612" not in json.dumps(imported["detail"]) and "Ana" not in json.dumps(imported["detail"])


def test_semicolon_delimiter_bom_crlf_and_multipart(client):
    inbox = make_inbox(client)
    body = "\ufeffPhone;Name;Ciudad;Importe\r\n+34 612 345 101;Marta Ruiz;Bilbao;12,50\r\n".encode()
    r = inbox.api("POST", "/v1/contacts/import?default_region=ES", data={"file": (__import__("io").BytesIO(body),
                                                                                 "export.csv")},
                  content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    assert r.json["created"] == 1 and r.json["filename"] == "export.csv"
    assert r.json["columns"] == ["Ciudad", "Importe"]
    [contact] = _contacts(inbox)
    assert contact["name"] == "Marta Ruiz" and contact["profile"] == {"Ciudad": "Bilbao", "Importe": "12,50"}


def test_bad_encoding_line_is_reported_and_the_rest_imported(client):
    inbox = make_inbox(client)
    body = (b"phone,name\n+34612345201,Ana\n+34612345202,Jos\xe9 N\xfa\xf1ez\n+34612345203,Luc\xc3\xada\n")
    r = _import(inbox, body)
    assert r.status_code == 201, r.json
    assert r.json["created"] == 2 and r.json["skipped"] == 1 and r.json["rows"] == 3
    [error] = r.json["errors"]
    assert error["line"] == 3 and "not valid UTF-8" in error["reason"] and "0xe9" in error["reason"]
    assert sorted(c["name"] for c in _contacts(inbox)) == ["Ana", "Lucía"]


def test_missing_phone_column_is_422_and_imports_nothing(client):
    inbox = make_inbox(client)
    r = _import(inbox, "telefono,name\n+34612345301,Ana\n")
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert "no 'phone' column" in r.json["detail"] and "telefono" in r.json["detail"]
    assert r.json["errors"][0]["line"] == 1
    assert _contacts(inbox) == []
    assert inbox.api("GET", "/v1/contacts/imports").json["data"] == []
    r = _import(inbox, "phone,name,Name\n+34612345301,Ana,Ana\n")
    assert r.status_code == 422 and "appears twice" in r.json["detail"]


def test_malformed_lines_are_reported_by_number_and_good_ones_kept(client):
    inbox = make_inbox(client)
    body = (HEADER
            + "12ab,Uno,,,,,,,,,,,\n"                                    # 2: letters
            + ",Dos,,,,,,,,,,,\n"                                        # 3: no phone
            + "+34612345401,Tres,,,,,,,,,,,\n"                           # 4: good
            + "+34 612,Cuatro,,,,,,,,,,,\n"                              # 5: too short
            + "+34612345405,Cinco,klingon-xx,,,,,,,,,,\n"                # 6: bad language
            + "+34612345406,Seis,,,,,quizás,,,,,,\n"                     # 7: consent not understood
            + "+34612345407,Siete,,,,,yes,,,2999-01-01T00:00:00Z,,,\n"   # 8: consent in the future
            + "+34612345408,Ocho,,,,,yes,,,ayer,,,\n"                    # 9: not a date
            + "+34612345409,Nueve,es,,,,,,,,,,,extra\n"                  # 10: a cell too many
            + "\n"                                                       # 11: blank, ignored
            + "+34612345412,Doce,es,,,,,,,,,,\n")                        # 12: good
    r = _import(inbox, body)
    assert r.status_code == 201, r.json
    errors = {e["line"]: e["reason"] for e in r.json["errors"]}
    assert sorted(errors) == [2, 3, 5, 6, 7, 8, 9, 10]
    assert errors[2].startswith("phone '12ab' is not a valid phone number for region ES; write it in "
                                "international form, e.g. +34 ")
    assert errors[3] == "phone is empty"
    assert "phone '+34 612' is not a valid phone number" in errors[5]
    assert "language 'klingon-xx'" in errors[6]
    assert "consent_marketing 'quizás' is not understood" in errors[7]
    assert "in the future" in errors[8] and "is not a date-time" in errors[9]
    assert "has 14 cells but the header has 13 columns" in errors[10]
    assert r.json["created"] == 2 and r.json["skipped"] == 8 and r.json["rows"] == 10
    assert sorted(c["name"] for c in _contacts(inbox)) == ["Doce", "Tres"]
    assert inbox.api("GET", f"/v1/contacts/imports/{r.json['import_id']}").json["errors"] == r.json["errors"]

    # Without a default region a national number is reported, not guessed.
    r = _import(inbox, "phone\n612345499\n+34612345498\n", region=None)
    assert r.status_code == 201 and r.json["created"] == 1
    assert "phone '612345499' has no country code" in r.json["errors"][0]["reason"]


def test_a_file_without_one_good_line_is_422_and_creates_nothing(client):
    inbox = make_inbox(client)
    r = _import(inbox, "phone,name\nnope,Ana\n12,Luis\n")
    assert r.status_code == 422, r.json
    assert [e["line"] for e in r.json["errors"]] == [2, 3] and r.json["skipped"] == 2
    assert _contacts(inbox) == [] and inbox.api("GET", "/v1/contacts/imports").json["data"] == []
    assert _import(inbox, "phone,name\n").status_code == 422   # a header alone


def test_duplicates_collapse_into_one_contact_later_values_winning(client):
    inbox = make_inbox(client)
    body = ("phone,name,city,plan,tags\n"
            "+34 612 345 501,Ana,Madrid,basic,a\n"
            "+34612345502,Luis,Sevilla,,\n"
            "0034612345501,Ana María,,pro,b\n"     # the same number: name and plan win, city stays
            "612-345-501,,,,\n")                   # and again, empty: nothing changes
    r = _import(inbox, body)
    assert r.status_code == 201, r.json
    assert {k: r.json[k] for k in ("rows", "imported", "created", "duplicates", "skipped")} == {
        "rows": 4, "imported": 4, "created": 2, "duplicates": 2, "skipped": 0}
    assert r.json["errors"] == []
    assert r.json["duplicate_lines"] == [{"line": 4, "same_as_line": 2}, {"line": 5, "same_as_line": 2}]
    ana = next(c for c in _contacts(inbox) if _phones(c) == ["+34612345501"])
    assert ana["name"] == "Ana María" and ana["profile"] == {"city": "Madrid", "plan": "pro"}
    assert ana["tags"] == ["a", "b"]


def test_duplicates_across_batches_and_the_column_values(client):
    """Batches of two rows, so the repeated phone meets the contact an earlier batch committed."""
    inbox = make_inbox(client)
    body = ("phone,name,amount,due\n+34612345601,Ana,10,lunes\n+34612345602,Luis,20,martes\n"
            "+34612345603,Marta,30,\n+34612345601,,15,\n").encode()
    with db.connection() as conn:
        summary = contact_import.run(conn, account_id=inbox.account_id, data=body, actor="test", batch_size=2)
    assert {k: summary[k] for k in ("rows", "created", "updated", "duplicates")} == {
        "rows": 4, "created": 3, "updated": 0, "duplicates": 1}
    assert summary["duplicate_lines"] == [{"line": 5, "same_as_line": 2}]
    ids = _audience(summary["import_id"], inbox.account_id)
    assert len(ids) == 3
    with db.connection() as conn:
        values = contact_import.column_values(conn, account_id=inbox.account_id, import_id=summary["import_id"],
                                              contact_ids=ids + [uuid.uuid4()])
    assert [values[i] for i in ids] == [{"amount": "15", "due": "lunes"}, {"amount": "20", "due": "martes"},
                                        {"amount": "30"}]
    ana = inbox.api("GET", f"/v1/contacts/{ids[0]}").json
    assert ana["name"] == "Ana" and ana["profile"] == {"amount": "15", "due": "lunes"}


def test_reimport_updates_instead_of_duplicating(client):
    inbox = make_inbox(client)
    body = (HEADER + "+34612345701,Ana,es,vip,Madrid,pro,yes,Acepto,v1,2026-01-10T09:00:00Z,,,\n"
                     "+34612345702,Luis,,,,,,,,,,,\n")
    first = _import(inbox, body)
    assert first.status_code == 201 and first.json["created"] == 2
    again = _import(inbox, body)
    assert again.status_code == 201, again.json
    assert {k: again.json[k] for k in ("created", "updated", "duplicates")} == {"created": 0, "updated": 2,
                                                                              "duplicates": 0}
    assert len(_contacts(inbox)) == 2
    ana_id = _audience(again.json["import_id"], inbox.account_id)[0]
    assert _audience(first.json["import_id"], inbox.account_id)[0] == ana_id
    # The same grant at the same time is not recorded twice.
    assert len(inbox.api("GET", f"/v1/contacts/{ana_id}/consents").json["history"]) == 1
    # A later file adds a column and a tag; what it leaves out stays.
    third = _import(inbox, "phone,segment,tags\n+34612345701,gold,nuevo\n")
    assert third.json["updated"] == 1
    ana = inbox.api("GET", f"/v1/contacts/{ana_id}").json
    assert ana["profile"] == {"city": "Madrid", "plan": "pro", "segment": "gold"} and ana["tags"] == ["nuevo", "vip"]
    assert ana["name"] == "Ana" and ana["language"] == "es"
    # A withdrawal is a new fact, recorded.
    fourth = _import(inbox, "phone,consent_marketing\n+34612345701,no\n")
    assert fourth.status_code == 201
    history = inbox.api("GET", f"/v1/contacts/{ana_id}/consents").json["history"]
    assert [e["action"] for e in history] == ["withdrawn", "granted"]


def test_a_contact_made_by_an_inbound_message_is_updated_and_merged_ones_resolve(client):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text("34600000902", "hola",
                                                                           ts=int(time.time()) - 5)]))
    inbox.drain()
    [thread] = inbox.threads()
    customer = uuid.UUID(thread["contact_id"])
    with db.connection() as conn:   # two more contacts, the second merged into the first
        survivor = contacts.create_contact(conn, account_id=inbox.account_id, name="Marta",
                                           identities=[("phone", "+34612345801")], view=False)["id"]
        merged = contacts.create_contact(conn, account_id=inbox.account_id,
                                         identities=[("phone", "+34612345802")], view=False)["id"]
        merges.merge(conn, account_id=inbox.account_id, survivor_id=survivor, merged_id=merged, actor="test")
    body = ("phone,name,language,plan\n+34 600 000 902,Lucía,es,pro\n+34612345802,,,gold\n"
            "+34612345801,Marta R.,,\n")
    r = _import(inbox, body)
    assert r.status_code == 201, r.json
    assert {k: r.json[k] for k in ("created", "updated", "duplicates")} == {"created": 0, "updated": 2,
                                                                          "duplicates": 1}
    assert r.json["duplicate_lines"] == [{"line": 4, "same_as_line": 3}]
    assert _audience(r.json["import_id"], inbox.account_id) == [customer, survivor]
    lucia = inbox.api("GET", f"/v1/contacts/{customer}").json
    assert lucia["name"] == "Lucía" and lucia["language"] == "es" and lucia["profile"]["plan"] == "pro"
    assert len(lucia["threads"]) == 1
    marta = inbox.api("GET", f"/v1/contacts/{survivor}").json
    assert marta["name"] == "Marta R." and marta["profile"] == {"plan": "gold"}
    assert inbox.api("GET", f"/v1/contacts/{merged}").json["profile"] == {}
    assert len(_contacts(inbox)) == 2   # the merged one is listed through its survivor


def test_column_values_follow_a_merge_to_the_survivor(client):
    inbox = make_inbox(client)
    r = _import(inbox, "phone,amount,due\n+34612345901,10,lunes\n")
    [imported] = _audience(r.json["import_id"], inbox.account_id)
    with db.connection() as conn:
        other = contacts.create_contact(conn, account_id=inbox.account_id, identities=[("phone", "+34612345902")],
                                        view=False)["id"]
        merges.merge(conn, account_id=inbox.account_id, survivor_id=other, merged_id=imported, actor="test")
    with db.connection() as conn:
        values = contact_import.column_values(conn, account_id=inbox.account_id, import_id=r.json["import_id"],
                                              contact_ids=[other])
        assert values == {other: {"amount": "10", "due": "lunes"}}
        assert contact_import.contact_ids(conn, account_id=inbox.account_id, import_id=r.json["import_id"]) == [other]


def test_tenant_walls(client):
    a, b = make_inbox(client), make_inbox(client)
    r = _import(a, "phone,name,amount\n+34612346001,Ana,10\n")
    import_id = r.json["import_id"]
    [ana] = _audience(import_id, a.account_id)
    assert b.api("GET", f"/v1/contacts/imports/{import_id}").status_code == 404
    assert b.api("GET", "/v1/contacts/imports").json["data"] == []
    with db.connection() as conn:
        assert contact_import.column_values(conn, account_id=b.account_id, import_id=import_id,
                                            contact_ids=[ana]) == {}
        assert contact_import.contact_ids(conn, account_id=b.account_id, import_id=import_id) == []
    # The same phone in another account is another contact there; the first account's is untouched.
    rb = _import(b, "phone,name\n+34612346001,Otra\n")
    assert rb.json["created"] == 1 and rb.json["updated"] == 0
    assert a.api("GET", f"/v1/contacts/{ana}").json["name"] == "Ana"


def test_http_limits_and_media_types(client, app):
    inbox = make_inbox(client)
    r = _import(inbox, "phone\n+34612346101\n", content_type="application/json")
    assert r.status_code == 415
    r = _import(inbox, "phone\n+34612346101\n", region="XX")
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] == "/default_region"
    big = b"phone\n" + b"+34612346101\n" * ((contact_import.MAX_BYTES + 70_000) // 13)
    r = _import(inbox, big)
    assert r.status_code == 413 and _contacts(inbox) == []
    key = inbox.api("POST", "/v1/api-keys", json={"name": "ro", "scopes": ["contacts:read"]}).json["key"]
    r = client.post("/v1/contacts/import", data=b"phone\n+34612346101\n",
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"})
    assert r.status_code == 403


def test_a_phone_made_known_while_the_batch_is_written_is_updated_not_duplicated(client):
    """Another transaction creates the same phone after the import looked for it: the import's insert waits on
    the unique key, fails when that transaction commits, and the batch is written again, finding it."""
    inbox = make_inbox(client)
    other = db.dedicated()
    try:
        made = contacts.create_contact(other, account_id=inbox.account_id, name="Inbound",
                                       identities=[("phone", "+34612346201")], view=False)["id"]
        timer = threading.Timer(1.0, other.commit)
        timer.start()
        r = _import(inbox, "phone,name\n+34612346201,Ana\n+34612346202,Luis\n")
        timer.join()
    finally:
        other.close()
    assert r.status_code == 201, r.json
    assert {k: r.json[k] for k in ("created", "updated")} == {"created": 1, "updated": 1}
    assert _audience(r.json["import_id"], inbox.account_id)[0] == made
    assert inbox.api("GET", f"/v1/contacts/{made}").json["name"] == "Ana"
    assert len(_contacts(inbox)) == 2


def test_logs_carry_no_personal_data(client, caplog):
    inbox = make_inbox(client)
    with caplog.at_level(logging.DEBUG):
        r = _import(inbox, "phone,name,city\n+34612346301,Zacarías Olmedo,Cuenca\nxx612,Eloísa,Teruel\n")
    assert r.status_code == 201
    logged = "\n".join(f"{rec.getMessage()} {rec.__dict__}" for rec in caplog.records)
    for value in ("612346301", "Zacarías", "Cuenca", "xx612", "Eloísa", "Teruel"):
        assert value not in logged


# --- the CLI -----------------------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gateway.cli", "contacts", "import", *map(str, args)],
                          env=os.environ, capture_output=True, text=True, timeout=120)


def test_cli_imports_reports_bad_lines_and_exits_1(client, tmp_path):
    inbox = make_inbox(client)
    path = tmp_path / "clientes.csv"
    path.write_text("phone;name;plan\n612346401;Ana;pro\n12ab;Luis;basic\n+34 612 346 403;Marta;\n",
                    encoding="utf-8")
    done = _cli(path, "--account", inbox.account_id, "--region", "ES")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "line 3: phone '12ab' is not a valid phone number for region ES" in done.stdout
    assert "3 row(s): 2 contact(s) created, 0 updated" in done.stdout and "1 bad line(s) skipped" in done.stdout
    assert "imported 3 of 3 rows" in done.stderr   # progress, as lines when not on a terminal
    import_id = done.stdout.strip().splitlines()[-1].split()[-1]
    assert len(_audience(uuid.UUID(import_id), inbox.account_id)) == 2
    assert inbox.api("GET", f"/v1/contacts/imports/{import_id}").json["filename"] == "clientes.csv"

    path.write_text("phone;name;plan\n612346401;Ana;gold\n", encoding="utf-8")
    done = _cli(path, "--account", inbox.account_id, "--region", "ES")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 contact(s) created, 1 updated" in done.stdout

    path.write_text("telefono;name\n612346401;Ana\n", encoding="utf-8")
    done = _cli(path, "--account", inbox.account_id)
    assert done.returncode == 1 and "nothing imported: the header has no 'phone' column" in done.stderr
    done = _cli(path, "--account", inbox.account_id, "--region", "Spain")
    assert done.returncode == 2 and "not a region code" in done.stderr


# --- parsing, no database ----------------------------------------------------------------------------

def test_delimiter_and_header():
    assert contact_import.detect_delimiter("phone;name;city") == ";"
    assert contact_import.detect_delimiter("phone,name;x") == ","
    assert contact_import.detect_delimiter("phone\tname") == "\t"
    assert contact_import.detect_delimiter("phone") == ","
    header = contact_import.parse_header([" Phone ", "NAME", "Ciudad", "", "consent_marketing"])
    assert header.index == {"phone": 0, "name": 1, "consent_marketing": 4} and header.extra == [(2, "Ciudad")]
    with pytest.raises(contact_import.ImportRejected) as exc:
        contact_import.parse_header(["name", "city"])
    assert "no 'phone' column (found: name, city)" in str(exc.value)


def test_parse_rows_and_line_numbers():
    data = ("phone,name,language,tags\n+34612346501,Ana,ES,a;b|a\n\n\"+34612346502\",\"Pérez, Luis\",pt-br,\n"
            "+34612346503,\"two\nlines\",,\n+34612346504\n").encode()
    parsed = contact_import.parse(data, None)
    items = list(parsed.items())
    assert [line for line, _ in items] == [2, 4, 5, 7]
    ana, luis, two, short = (row for _, row in items)
    assert (ana.phone, ana.name, ana.language, ana.tags) == ("+34612346501", "Ana", "es", ["a", "b"])
    assert (luis.name, luis.language, luis.tags) == ("Pérez, Luis", "pt_BR", None)
    assert two.name == "two\nlines" and short.name is None and short.phone == "+34612346504"


def test_quick_phone_path_agrees_with_phonenumbers():
    """The shortcut for '+<country code><number>' gives exactly what contacts.normalise_phone gives (the
    blind index must not tell them apart), across every country code and lengths around the possible ones."""
    rnd = random.Random(9)
    checked = 0
    for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        for length in range(3, 16):
            for _ in range(4):
                raw = f"+{cc} {rnd.randrange(1, 10)}{''.join(str(rnd.randrange(10)) for _ in range(length - 1))}"
                try:
                    expected = normalise_phone(raw)
                except InvalidAddress:
                    expected = None
                try:
                    got = contact_import.import_phone(raw, None)
                except InvalidAddress:
                    got = None
                assert got == expected, raw
                checked += 1
    assert checked > 10_000
    assert contact_import.import_phone("0034 612-345-678", None) == "+34612345678"
    assert contact_import.import_phone("(612) 34.56.78", "ES") == "+34612345678"
    assert contact_import.import_phone("+44 07700 900123", None) == normalise_phone("+44 07700 900123")
    with pytest.raises(InvalidAddress):
        contact_import.import_phone("612 FLOWERS", "ES")   # a keypad word is not read as digits
