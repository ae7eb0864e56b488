"""Internal notes (encrypted, never sent), tags on contacts and threads, typed attributes with their 422s and the
filterable blind index, and contact search (phone by blind index, tag, attribute, channel, last activity), on real
PostgreSQL with customers arriving through the real webhooks and inbound worker."""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone

from gateway import accounts, attributes, contact_import, contacts, db
from gateway.crypto import field_aad
from tests.gateway.test_keywords import _channel, _messenger, _sms, _wa
from tests.gateway.test_send_end_to_end import drain_sends, gateway_url, received, sandbox  # noqa: F401  (fixtures)
from tests.webhooks.conftest import make_inbox


def _customer(inbox, ch, phone=None, body="hola"):
    phone = phone or f"34600{secrets.randbelow(10**6):06d}"
    _wa(inbox, ch, body, phone=phone)
    thread = [t for t in inbox.threads() if t["channel_id"] == ch["id"]][0]
    return thread, phone


def _contact(inbox, phone=None, **body):
    idents = [{"kind": "phone", "address": phone}] if phone else []
    r = inbox.api("POST", "/v1/contacts", json={"identities": idents, **body})
    assert r.status_code == 201, r.json
    return r.json


def _patch(inbox, contact_id, status=200, **body):
    r = inbox.api("PATCH", f"/v1/contacts/{contact_id}", json=body)
    assert r.status_code == status, r.json
    return r.json


def _ids(inbox, **params) -> list[str]:
    r = inbox.api("GET", "/v1/contacts", query_string=params)
    assert r.status_code == 200, r.json
    return [c["id"] for c in r.json["data"]]


def _define(inbox, name, type_, filterable=False, status=201, **extra):
    r = inbox.api("POST", "/v1/attribute-definitions", json={"name": name, "type": type_, "filterable": filterable,
                                                              **extra})
    assert r.status_code == status, r.json
    return r.json


# --- notes ---------------------------------------------------------------------------------------------------

def test_a_note_is_encrypted_at_rest_never_a_message_and_never_sent(client, sandbox):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp", sandbox)
    thread, phone = _customer(inbox, ch)
    secret = "Cliente molesto: llamar al 612 345 678 antes del viernes"
    r = inbox.api("POST", f"/v1/threads/{thread['id']}/notes", json={"body": secret, "author": "agent-7"})
    assert r.status_code == 201, r.json
    note = r.json
    assert note["body"] == secret and note["author"] == "agent-7" and note["actor"].startswith("api_key:")
    assert note["thread_id"] == thread["id"] and note["contact_id"] == thread["contact_id"]
    mine = inbox.api("POST", f"/v1/threads/{thread['id']}/notes", json={"body": "segunda nota"}).json
    assert mine["author"] == mine["actor"]            # no author given: the API key wrote it

    listed = inbox.api("GET", f"/v1/threads/{thread['id']}/notes").json
    assert [n["body"] for n in listed["data"]] == [secret, "segunda nota"] and listed["next"] is None
    first = inbox.api("GET", f"/v1/threads/{thread['id']}/notes?limit=1").json
    rest = inbox.api("GET", f"/v1/threads/{thread['id']}/notes?limit=1&after={first['next']}").json
    assert [n["id"] for n in first["data"] + rest["data"]] == [n["id"] for n in listed["data"]]

    # Nothing reached the provider, no message row was made, nothing was queued.
    drain_sends(inbox)
    assert not [m for m in received(sandbox) if "612 345 678" in json.dumps(m["body"])]
    assert [m["direction"] for m in inbox.messages(thread["id"])] == ["inbound"]
    with db.connection() as conn:
        raw = conn.execute("SELECT id, body_enc, to_jsonb(n)::text AS dump FROM thread_notes n WHERE account_id = %s "
                           "ORDER BY created_at", (inbox.account_id,)).fetchall()
        assert len(raw) == 2
        assert b"612 345 678" not in bytes(raw[0]["body_enc"]) and b"molesto" not in bytes(raw[0]["body_enc"])
        assert "molesto" not in raw[0]["dump"] and "612 345 678" not in raw[0]["dump"]
        # Bound to its row: the ciphertext does not open as another note's.
        key = contacts.contact_key(conn, account_id=inbox.account_id, contact_id=thread["contact_id"])
        assert key.decrypt_text(raw[0]["body_enc"], field_aad("thread_notes", "body", inbox.account_id,
                                                              raw[0]["id"])) == secret
        assert conn.execute("SELECT count(*) AS n FROM messages WHERE account_id = %s",
                            (inbox.account_id,)).fetchone()["n"] == 1
        assert conn.execute("SELECT count(*) AS n FROM messages WHERE account_id = %s AND status IN "
                            "('queued', 'sending', 'retry_scheduled')", (inbox.account_id,)).fetchone()["n"] == 0
        # The CRM's event carries ids only.
        [event] = conn.execute("SELECT data FROM events WHERE account_id = %s AND type = 'thread.note_added' "
                               "ORDER BY id LIMIT 1", (inbox.account_id,)).fetchall()
        assert set(event["data"]) == {"thread_id", "note_id"} and "molesto" not in json.dumps(event["data"])

    # Validation, scopes and tenant walls.
    bad = inbox.api("POST", f"/v1/threads/{thread['id']}/notes", json={"body": "  ", "author": 5, "to": "x"})
    assert bad.status_code == 422 and {e["pointer"] for e in bad.json["errors"]} == {"/body", "/author", "/to"}
    with db.connection() as conn:
        _, reader = accounts.create_api_key(conn, account_id=inbox.account_id, name="r", scopes=["messages:read"],
                                            actor="test")
    headers = {"Authorization": f"Bearer {reader}"}
    assert client.post(f"/v1/threads/{thread['id']}/notes", json={"body": "x"}, headers=headers).status_code == 403
    assert client.get(f"/v1/threads/{thread['id']}/notes", headers=headers).status_code == 200
    other = make_inbox(client)
    assert other.api("POST", f"/v1/threads/{thread['id']}/notes", json={"body": "x"}).status_code == 404
    assert other.api("GET", f"/v1/threads/{thread['id']}/notes").status_code == 404

    # The data export lists them; erasure takes them (with the key that encrypted them).
    exported = inbox.api("GET", f"/v1/contacts/{thread['contact_id']}/export").json
    assert [n["body"] for n in exported["notes"]] == [secret, "segunda nota"]
    assert inbox.api("DELETE", f"/v1/contacts/{thread['contact_id']}").status_code == 204
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM thread_notes WHERE account_id = %s",
                            (inbox.account_id,)).fetchone()["n"] == 0


# --- tags ----------------------------------------------------------------------------------------------------

def test_contact_tags_add_remove_filter_and_merge(client):
    inbox = make_inbox(client)
    ana = _contact(inbox, "+34612000001", name="Ana", tags=["vip", " madrid "])
    luis = _contact(inbox, "+34612000002", profile={"plan": "pro", "tags": ["vip"]})   # the old way still works
    marta = _contact(inbox, "+34612000003")
    assert ana["tags"] == ["madrid", "vip"] and ana["profile"] == {}
    assert luis["tags"] == ["vip"] and luis["profile"] == {"plan": "pro"}
    assert marta["tags"] == []
    assert _ids(inbox, tag="vip") == [luis["id"], ana["id"]]
    assert _ids(inbox, tag=["vip", "madrid"]) == [ana["id"]]
    assert _ids(inbox, tag="nadie") == []

    got = _patch(inbox, marta["id"], tags_add=["vip", "mayorista"], tags_remove=["no-lo-tiene"])
    assert got["tags"] == ["mayorista", "vip"]
    got = _patch(inbox, ana["id"], tags_remove=["vip"])
    assert got["tags"] == ["madrid"]
    assert _ids(inbox, tag="vip") == [marta["id"], luis["id"]]
    bad = inbox.api("PATCH", f"/v1/contacts/{ana['id']}", json={"tags_add": "vip", "tags_remove": ["x" * 65]})
    assert bad.status_code == 422 and {e["pointer"] for e in bad.json["errors"]} == {"/tags_add", "/tags_remove"}

    # A merged contact lends its tags to the survivor, which the filter then finds (and only it).
    assert inbox.api("POST", f"/v1/contacts/{ana['id']}/merge", json={"contact_id": marta["id"]}).status_code == 201
    assert inbox.api("GET", f"/v1/contacts/{ana['id']}").json["tags"] == ["madrid", "mayorista", "vip"]
    assert _ids(inbox, tag="mayorista") == [ana["id"]]
    assert _ids(inbox, tag="vip") == [luis["id"], ana["id"]]
    # Removing from the survivor removes it from the merged contact too, and tags_add through a merged id goes
    # to the survivor.
    _patch(inbox, ana["id"], tags_remove=["vip"])
    assert _ids(inbox, tag="vip") == [luis["id"]]
    assert _patch(inbox, marta["id"], tags_add=["nuevo"])["id"] == ana["id"]

    # The automation engine and the CSV import write tags into the table, the campaign segment reads it.
    with db.connection() as conn:
        rows = conn.execute("SELECT contact_id, tag FROM contact_tags WHERE account_id = %s ORDER BY tag",
                            (inbox.account_id,)).fetchall()
        assert ("nuevo", ana["id"]) in [(r["tag"], str(r["contact_id"])) for r in rows]
        from gateway.campaigns import audience
        ids = [i for page in audience.contact_ids(conn, account_id=inbox.account_id,
                                                  audience={"segment": {"tags": ["vip"]}}, channel_kind="whatsapp")
               for i in page]
        assert [str(i) for i in ids] == [luis["id"]]
    other = make_inbox(client)
    assert [c["id"] for c in other.api("GET", "/v1/contacts?tag=vip").json["data"]] == []


def test_tags_left_in_an_old_profile_show_and_move_on_the_next_write(client):
    inbox = make_inbox(client)
    c = _contact(inbox, "+34612000011", profile={"plan": "pro"})
    with db.connection() as conn:   # a profile written before migration 0019
        key = contacts.contact_key(conn, account_id=inbox.account_id, contact_id=c["id"])
        conn.execute("UPDATE contacts SET profile_enc = %s WHERE account_id = %s AND id = %s",
                     (key.encrypt(json.dumps({"plan": "pro", "tags": ["antiguo"]}),
                                  field_aad("contacts", "profile", inbox.account_id, c["id"])),
                      inbox.account_id, c["id"]))
    got = inbox.api("GET", f"/v1/contacts/{c['id']}").json
    assert got["tags"] == ["antiguo"] and got["profile"] == {"plan": "pro"}
    _patch(inbox, c["id"], attributes={"city": "Bilbao"})
    with db.connection() as conn:
        assert contacts.read_profile(conn, account_id=inbox.account_id, contact_id=c["id"]) == {"plan": "pro",
                                                                                             "city": "Bilbao"}
    assert _ids(inbox, tag="antiguo") == [c["id"]]


def test_thread_tags_add_remove_and_the_inbox_filter(client):
    inbox = make_inbox(client)
    ch = _channel(inbox, "whatsapp")
    thread, _ = _customer(inbox, ch)
    other_thread, _ = _customer(inbox, ch)
    r = inbox.api("POST", f"/v1/threads/{thread['id']}/tags", json={"add": ["reclamación", "urgente"]})
    assert r.status_code == 200, r.json
    assert r.json["tags"] == ["reclamación", "urgente"] and r.json["added"] == ["reclamación", "urgente"]
    r = inbox.api("POST", f"/v1/threads/{thread['id']}/tags", json={"add": ["urgente"], "remove": ["reclamación"]})
    assert r.json == {"thread_id": thread["id"], "tags": ["urgente"], "added": [], "removed": ["reclamación"]}
    assert inbox.api("GET", f"/v1/threads/{thread['id']}/tags").json["tags"] == ["urgente"]
    assert inbox.api("GET", f"/v1/threads/{other_thread['id']}/tags").json["tags"] == []
    assert [t["id"] for t in inbox.threads(tag="urgente")] == [thread["id"]]
    bad = inbox.api("POST", f"/v1/threads/{thread['id']}/tags", json={"add": [""], "colour": "red"})
    assert bad.status_code == 422 and {e["pointer"] for e in bad.json["errors"]} == {"/add", "/colour"}
    stranger = make_inbox(client)
    assert stranger.api("POST", f"/v1/threads/{thread['id']}/tags", json={"add": ["x"]}).status_code == 404
    assert stranger.api("GET", f"/v1/threads/{thread['id']}/tags").status_code == 404


# --- typed attributes ----------------------------------------------------------------------------------------

def test_attribute_definitions_and_a_422_per_type_naming_the_attribute(client):
    inbox = make_inbox(client)
    for name, type_ in (("nickname", "string"), ("age", "number"), ("birthday", "date"), ("vip", "boolean"),
                        ("interests", "list")):
        made = _define(inbox, name, type_, label=name.title())
        assert made["type"] == type_ and made["filterable"] is False and made["label"] == name.title()
    listed = inbox.api("GET", "/v1/attribute-definitions").json
    assert [d["name"] for d in listed["data"]] == ["age", "birthday", "interests", "nickname", "vip"]
    clash = _define(inbox, "age", "string", status=409)
    assert "already defined as number" in clash["detail"] and "PATCH /v1/attribute-definitions/age" in clash["detail"]
    bad = inbox.api("POST", "/v1/attribute-definitions", json={"name": "tags", "type": "colour", "x": 1}).json
    assert {e["pointer"] for e in bad["errors"]} == {"/name", "/type", "/x"}
    assert inbox.api("PATCH", "/v1/attribute-definitions/age", json={"type": "string"}).status_code == 422
    assert inbox.api("PATCH", "/v1/attribute-definitions/nothing", json={"label": "x"}).status_code == 404

    c = _contact(inbox, "+34612000021")
    wrong = {"nickname": 5, "age": "42", "birthday": "17/05/1990", "vip": "yes", "interests": "golf"}
    for name, value in wrong.items():
        r = inbox.api("PATCH", f"/v1/contacts/{c['id']}", json={"attributes": {name: value}})
        assert r.status_code == 422, (name, r.json)
        assert r.json["type"].endswith("/attribute-type") and name in r.json["detail"]
        [err] = r.json["errors"]
        assert err["pointer"] == f"/attributes/{name}" and err["attribute"] == name
        assert err["expected_type"] == listed["data"][[d["name"] for d in listed["data"]].index(name)]["type"]
        assert f"'{name}'" in err["detail"] and "expected" in err["detail"]
    everything = inbox.api("PATCH", f"/v1/contacts/{c['id']}", json={"attributes": wrong}).json
    assert {e["attribute"] for e in everything["errors"]} == set(wrong)
    assert inbox.api("PATCH", f"/v1/contacts/{c['id']}", json={"attributes": {"age": True}}).status_code == 422
    assert inbox.api("PATCH", f"/v1/contacts/{c['id']}", json={"attributes": {"birthday": "1990-02-30"}}
                     ).status_code == 422
    assert inbox.api("GET", f"/v1/contacts/{c['id']}").json["profile"] == {}   # nothing was written

    right = {"nickname": "Anita", "age": 42, "birthday": "1990-05-17", "vip": True, "interests": ["golf", "tenis"],
             "shoe_size": "38", "free_form": {"any": ["json"]}}   # undefined attributes are kept as given
    got = _patch(inbox, c["id"], attributes=right, name="Ana Pérez", language="es")
    assert got["profile"] == right and got["name"] == "Ana Pérez" and got["language"] == "es"
    [edit] = inbox.api("GET", "/v1/audit?action=contact.updated").json["data"]
    assert edit["target_id"] == c["id"] and edit["detail"]["attributes"] == sorted(right)
    assert edit["detail"]["fields"] == ["language", "name"] and "Anita" not in json.dumps(edit)
    got = _patch(inbox, c["id"], attributes={"shoe_size": None, "age": 43.5}, name=None)
    assert "shoe_size" not in got["profile"] and got["profile"]["age"] == 43.5 and got["name"] is None
    assert inbox.api("PATCH", f"/v1/contacts/{c['id']}", json={"attributes": {"tags": ["x"]}}).status_code == 422
    assert inbox.api("PATCH", f"/v1/contacts/{c['id']}", json={"language": "spanish"}).status_code == 422
    # POST /v1/contacts checks the profile the same way.
    r = inbox.api("POST", "/v1/contacts", json={"profile": {"age": "forty"}})
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] == "/profile/age" and "age" in r.json["detail"]
    # Another account's contact is not found; its definitions are its own.
    other = make_inbox(client)
    assert other.api("PATCH", f"/v1/contacts/{c['id']}", json={"attributes": {"age": 1}}).status_code == 404
    assert other.api("GET", "/v1/attribute-definitions").json["data"] == []
    assert _patch(other, _contact(other)["id"], attributes={"age": "forty"})["profile"] == {"age": "forty"}
    assert inbox.api("DELETE", "/v1/attribute-definitions/age").status_code == 204
    assert inbox.api("DELETE", "/v1/attribute-definitions/age").status_code == 404
    assert _patch(inbox, c["id"], attributes={"age": "forty"})["profile"]["age"] == "forty"


def test_filterable_attributes_are_found_through_their_blind_index(client):
    inbox = make_inbox(client)
    _define(inbox, "tier", "string", filterable=True)
    _define(inbox, "age", "number", filterable=True)
    _define(inbox, "vip", "boolean", filterable=True)
    _define(inbox, "interests", "list", filterable=True)
    _define(inbox, "birthday", "date", filterable=True)
    _define(inbox, "city", "string")                                  # not filterable
    ana = _contact(inbox, "+34612000031", profile={"tier": "Gold Plus", "age": 42, "vip": True,
                                                   "interests": ["Golf", "tenis"], "birthday": "1990-05-17"})
    luis = _contact(inbox, "+34612000032")
    _patch(inbox, luis["id"], attributes={"tier": "silver", "age": 42.0, "vip": False, "interests": ["golf"]})
    assert _ids(inbox, **{"attribute.tier": "  gold   PLUS "}) == [ana["id"]]
    assert _ids(inbox, **{"attribute.age": "42"}) == [luis["id"], ana["id"]]
    assert _ids(inbox, **{"attribute.age": "42.00", "attribute.vip": "no"}) == [luis["id"]]
    assert _ids(inbox, **{"attribute.vip": "true"}) == [ana["id"]]
    assert _ids(inbox, **{"attribute.interests": "golf"}) == [luis["id"], ana["id"]]
    assert _ids(inbox, **{"attribute.interests": "tenis", "attribute.birthday": "1990-05-17"}) == [ana["id"]]
    # A change moves the index with it.
    _patch(inbox, ana["id"], attributes={"tier": None, "interests": ["vela"]})
    assert _ids(inbox, **{"attribute.tier": "gold plus"}) == []
    assert _ids(inbox, **{"attribute.interests": "golf"}) == [luis["id"]]
    # Filters need a filterable definition and a value of the type: 400 naming the fix.
    r = inbox.api("GET", "/v1/contacts?attribute.city=Madrid")
    assert r.status_code == 400 and "not filterable" in r.json["detail"] and "attribute-definitions" in r.json["detail"]
    r = inbox.api("GET", "/v1/contacts?attribute.age=old")
    assert r.status_code == 400 and "number" in r.json["detail"]
    assert inbox.api("GET", "/v1/contacts?colour=red").status_code == 400

    with db.connection() as conn:
        rows = conn.execute("SELECT name, value_bidx FROM contact_attribute_index WHERE account_id = %s",
                            (inbox.account_id,)).fetchall()
        assert rows and all(b"gold" not in bytes(r["value_bidx"]).lower() for r in rows)
        # The filter is an index look-up, not a scan of the profiles: without the index rows nothing is found.
        conn.execute("DELETE FROM contact_attribute_index WHERE account_id = %s AND name = 'age'", (inbox.account_id,))
    assert _ids(inbox, **{"attribute.age": "42"}) == []

    # Marking an attribute filterable indexes the values already stored; deleting the definition drops them.
    marta = _contact(inbox, "+34612000033", profile={"city": "Bilbao"})
    r = inbox.api("PATCH", "/v1/attribute-definitions/city", json={"filterable": True})
    assert r.status_code == 200 and r.json["indexed"] == 1
    assert _ids(inbox, **{"attribute.city": "BILBAO"}) == [marta["id"]]
    assert inbox.api("PATCH", "/v1/attribute-definitions/city", json={"filterable": False}).status_code == 200
    assert inbox.api("GET", "/v1/contacts?attribute.city=bilbao").status_code == 400
    assert inbox.api("DELETE", "/v1/attribute-definitions/vip").status_code == 204
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM contact_attribute_index WHERE account_id = %s AND name = 'vip'",
                            (inbox.account_id,)).fetchone()["n"] == 0

    # Writers other than the API keep the index: the CSV import (text, normalised by type) and update_profile
    # (automations, flows).
    with db.connection() as conn:
        contact_import.run(conn, account_id=inbox.account_id, actor="test",
                           data="phone,tier,age,tags\n+34612000034,Bronze,\"3,50\",csv|nuevo\n"
                                "+34612000031,Gold Plus,,\n".encode())
        luis_id = contacts.contact_id_for(conn, account_id=inbox.account_id, kind="phone", address="+34612000032")
        contacts.update_profile(conn, account_id=inbox.account_id, contact_id=luis_id,
                                change=lambda p: p.update(tier="Bronze"))
    [imported] = _ids(inbox, **{"attribute.age": "3.5"})
    assert _ids(inbox, **{"attribute.tier": "bronze"}) == [imported, luis["id"]]
    assert _ids(inbox, **{"attribute.tier": "gold plus"}) == [ana["id"]]      # an existing contact, re-indexed
    assert _ids(inbox, tag="csv") == [imported]
    got = inbox.api("GET", f"/v1/contacts/{imported}").json
    assert got["profile"] == {"tier": "Bronze", "age": "3,50"} and got["tags"] == ["csv", "nuevo"]
    # Another account asking for the same value finds nothing (its blind-index key differs, and rows are walled).
    other = make_inbox(client)
    _define(other, "tier", "string", filterable=True)
    assert _ids(other, **{"attribute.tier": "bronze"}) == []


def test_attribute_value_typing_table():
    ok = {"string": ["", "x" * 2000], "number": [0, -3, 2.5, 10**12], "date": ["2024-02-29"],
          "boolean": [True, False], "list": [[], ["a", 1, 2.5]]}
    bad = {"string": [1, True, ["a"], "x" * 2001], "number": ["1", True, float("nan"), [1]],
           "date": ["2023-02-29", "2024-2-1", "2024-02-01T00:00:00Z", 20240201],
           "boolean": ["true", 1, 0], "list": ["a", [["nested"]], [{"a": 1}], [True], list(range(101))]}
    for type_, values in ok.items():
        for value in values:
            assert attributes.type_error(type_, value) is None, (type_, value)
    for type_, values in bad.items():
        for value in values:
            assert attributes.type_error(type_, value), (type_, value)
    assert attributes.index_values("number", "3,50") == attributes.index_values("number", 3.5) == ["3.5"]
    assert attributes.index_values("number", 30) == ["30"] and attributes.index_values("number", "abc") == []
    assert attributes.index_values("boolean", "Sí") == ["true"] and attributes.index_values("boolean", "maybe") == []
    assert attributes.index_values("list", "a|B; c") == ["a", "b", "c"]
    assert attributes.index_values("date", "1990-05-17T10:00:00Z") == ["1990-05-17"]


# --- contact search --------------------------------------------------------------------------------------

def test_phone_search_through_the_blind_index(client):
    inbox = make_inbox(client)
    ana = _contact(inbox, "+34612345678", name="Ana", tags=["vip"])
    _contact(inbox, "+34612345679")
    for asked, extra in (("+34 612 34 56 78", {}), ("0034612345678", {}), ("612 345 678", {"region": "ES"}),
                         ("0034 612-345-678", {"region": "es"}), ("34612345678", {})):
        assert _ids(inbox, phone=asked, **extra) == [ana["id"]], asked
    assert _ids(inbox, phone="+34699999999") == []
    assert _ids(inbox, phone="+34612345678", tag="vip") == [ana["id"]]
    assert _ids(inbox, phone="+34612345678", tag="otro") == []
    assert inbox.api("GET", "/v1/contacts?phone=612345678&region=XX").status_code == 400
    # A merged contact's number finds its survivor.
    lucia = _contact(inbox, "+34622000001")
    assert inbox.api("POST", f"/v1/contacts/{ana['id']}/merge", json={"contact_id": lucia["id"]}).status_code == 201
    assert _ids(inbox, phone="+34 622 00 00 01") == [ana["id"]]
    # Another account never finds it, and the audit row of the search holds no phone number.
    other = make_inbox(client)
    assert _ids(other, phone="+34612345678") == []
    with db.connection() as conn:
        stored = conn.execute("SELECT to_jsonb(a)::text AS row FROM audit_log a WHERE account_id = %s "
                              "AND action = 'read:/v1/contacts'", (inbox.account_id,)).fetchall()
        assert stored and not any("612345678" in r["row"] or "622000001" in r["row"] for r in stored)
        # Nothing stored in clear to find it by: the identity holds a blind index and a ciphertext.
        dump = conn.execute("SELECT string_agg(to_jsonb(i)::text, '') AS d FROM contact_identities i "
                            "WHERE account_id = %s", (inbox.account_id,)).fetchone()["d"]
        assert "612345678" not in dump


def test_channel_and_last_activity_filters(client):
    inbox = make_inbox(client)
    wa = _channel(inbox, "whatsapp")
    sms = _channel(inbox, "twilio")
    page = _channel(inbox, "messenger")
    both = "34611000001"
    _wa(inbox, wa, "hola", phone=both)
    _sms(inbox, sms, "hola por sms", phone="+" + both)
    _wa(inbox, wa, "solo whatsapp", phone="34611000002")
    _messenger(inbox, page, "hi", psid=f"PSID-{secrets.token_hex(4)}")
    quiet = _contact(inbox, "+34611000009")                      # no thread: no activity
    with db.connection() as conn:
        ids = {p: str(contacts.contact_id_for(conn, account_id=inbox.account_id, kind="phone", address="+" + p))
               for p in (both, "34611000002")}
    assert _ids(inbox, channel_kind="twilio") == [ids[both]]
    assert set(_ids(inbox, channel_kind="whatsapp")) == set(ids.values())
    assert _ids(inbox, channel_id=sms["id"], channel_kind="whatsapp") == [ids[both]]
    assert len(_ids(inbox, channel_kind="messenger")) == 1
    assert inbox.api("GET", "/v1/contacts?channel_kind=fax").status_code == 400
    now = datetime.now(timezone.utc)
    soon, past = (now + timedelta(minutes=5)).isoformat(), (now - timedelta(hours=1)).isoformat()
    assert _ids(inbox, active_after=soon) == []
    active = _ids(inbox, active_after=past)
    assert len(active) == 3 and quiet["id"] not in active
    assert set(_ids(inbox, active_before=soon)) == set(active)
    with db.connection() as conn:   # one customer's last word was a week ago
        conn.execute("UPDATE threads SET last_activity_at = now() - interval '7 days' WHERE account_id = %s "
                     "AND contact_id = %s", (inbox.account_id, ids["34611000002"]))
    week = (now - timedelta(days=2)).isoformat()
    assert _ids(inbox, active_before=week) == [ids["34611000002"]]
    assert ids["34611000002"] not in _ids(inbox, active_after=week, channel_kind="whatsapp")
    assert inbox.api("GET", "/v1/contacts?active_after=yesterday").status_code == 400
    # Filters and paging together: every contact once.
    seen, cursor = [], None
    while True:
        r = inbox.api("GET", "/v1/contacts", query_string={"limit": 1, "active_after": past,
                                                         **({"before": cursor} if cursor else {})}).json
        seen += [c["id"] for c in r["data"]]
        cursor = r["next"]
        if not cursor:
            break
    assert seen == _ids(inbox, active_after=past) and len(seen) == 2


def test_attribute_digests_are_keyed_per_account_and_attribute(client):
    a, b = make_inbox(client), make_inbox(client)
    assert attributes.digest(a.account_id, "tier", "gold") != attributes.digest(b.account_id, "tier", "gold")
    assert attributes.digest(a.account_id, "tier", "gold") != attributes.digest(a.account_id, "plan", "gold")
