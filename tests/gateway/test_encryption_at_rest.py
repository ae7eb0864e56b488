"""DESIGN invariant 5: a dump of every table shows no phone number and no message text."""
import io
import os
import subprocess
import sys

from gateway import channels, contacts, keystore, messages
from gateway.crypto import KeyShredded


PHONE = "+34611223344"
TEXT = "Hola, quiero cambiar mi cita del martes"


def _dump_all_tables(conn) -> str:
    tables = [r["tablename"] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()]
    assert {"contacts", "contact_identities", "messages", "inbound_events", "channels"} <= set(tables)
    out = io.StringIO()
    for table in tables:
        # COPY ... TO STDOUT is what pg_dump emits for data; bytea appears as hex.
        with conn.cursor().copy(f'COPY "{table}" TO STDOUT') as copy:
            for chunk in copy:
                out.write(bytes(chunk).decode())
    return out.getvalue()


def _hexes(value: str) -> list[str]:
    return [value.encode().hex(), value.lstrip("+").encode().hex()]


def test_dump_has_no_phone_number_and_no_message_text(tenant, conn):
    api = tenant.post("/v1/contacts", {"name": "Lucía Pérez",
                                       "identities": [{"kind": "phone", "address": PHONE}]}).json
    channel = channels.create_channel(conn, account_id=tenant.id, kind="sandbox", name="test",
                                      external_id=f"pn-{tenant.id}", credentials={"access_token": "EAAGsecret"},
                                      actor="test")
    messages.record_message(conn, account_id=tenant.id, contact_id=api["id"], channel_id=channel["id"],
                            direction="inbound", body=TEXT, provider_message_id="wamid.HBgLMzQ2MTEyMjMzNDQV")
    messages.record_message(conn, account_id=tenant.id, contact_id=api["id"], channel_id=channel["id"],
                            direction="outbound", body="Claro, " + TEXT, status="sent",
                            content={"to": {"kind": "phone", "address": PHONE}, "body": "Claro, " + TEXT})
    # Providers repeat the customer's ids in every status (WhatsApp: phone, BSUID, username).
    for wamid in ("wamid.HBgLMzQ2MTEyMjMzNDQV", "wamid.not-known-yet"):
        messages.apply_status(conn, account_id=tenant.id, channel_id=channel["id"], provider_message_id=wamid,
                              status="delivered", detail={"status": "delivered", "recipient_type": "individual",
                                                          "recipient_wa_id": PHONE.lstrip("+"),
                                                          "recipient_user_id": "US.1349120865530",
                                                          "recipient_username": "lucia_perez"})
    from gateway import inbound
    inbound.store_event(conn, account_id=tenant.id, channel_id=channel["id"], provider="sandbox",
                        dedupe_key="evt-1", raw=f'{{"from": "{PHONE}", "text": "{TEXT}"}}'.encode())
    conn.commit()

    dump = _dump_all_tables(conn)
    for needle in (PHONE, PHONE.lstrip("+"), "611223344", TEXT, "cambiar mi cita", "Lucía", "EAAGsecret",
                   "wamid.HBgLMzQ2MTEyMjMzNDQV", "US.1349120865530", "lucia_perez"):
        assert needle not in dump, f"{needle!r} found in clear in the dump"
    for h in _hexes(PHONE) + _hexes(TEXT):
        assert h not in dump
    # ...while the gateway itself still reads everything back.
    thread = messages.thread_for(conn, account_id=tenant.id, contact_id=api["id"], channel_id=channel["id"])
    bodies = [m["text"] for m in messages.list_thread_messages(conn, account_id=tenant.id, thread_id=thread["id"])]
    assert bodies == [TEXT, "Claro, " + TEXT]
    assert tenant.get(f"/v1/contacts/{api['id']}").json["identities"][0]["address"] == PHONE
    assert channels.credentials(conn, account_id=tenant.id, channel_id=channel["id"]) == {"access_token": "EAAGsecret"}


def test_ciphertext_moved_to_another_row_does_not_decrypt(tenant, conn):
    a = contacts.create_contact(conn, account_id=tenant.id, name="Alpha")
    b = contacts.create_contact(conn, account_id=tenant.id, name="Beta")
    # Give B A's key and A's ciphertext: AAD binds it to A's row, so B cannot read it.
    conn.execute("UPDATE contacts SET name_enc = (SELECT name_enc FROM contacts WHERE account_id = %(a)s AND id = %(x)s), "
                 "data_key_id = (SELECT data_key_id FROM contacts WHERE account_id = %(a)s AND id = %(x)s) "
                 "WHERE account_id = %(a)s AND id = %(y)s", {"a": tenant.id, "x": a["id"], "y": b["id"]})
    from gateway.crypto import DecryptionError
    import pytest
    with pytest.raises(DecryptionError):
        contacts.get_contact(conn, account_id=tenant.id, contact_id=b["id"])


def test_shredded_contact_no_longer_decrypts(tenant, conn):
    import pytest
    c = contacts.create_contact(conn, account_id=tenant.id, name="Gone Soon", identities=[("phone", "+34622000111")])
    row = conn.execute("SELECT data_key_id, name_enc FROM contacts WHERE account_id = %s AND id = %s",
                       (tenant.id, c["id"])).fetchone()
    keystore.shred(conn, account_id=tenant.id, key_id=row["data_key_id"])
    with pytest.raises(KeyShredded):
        contacts.get_contact(conn, account_id=tenant.id, contact_id=c["id"])
    wrapped = conn.execute("SELECT wrapped, shredded_at FROM data_keys WHERE account_id = %s AND id = %s",
                           (tenant.id, row["data_key_id"])).fetchone()
    assert wrapped["wrapped"] is None and wrapped["shredded_at"] is not None


def test_rotation_rewraps_every_key_and_old_rows_still_read(tenant, conn):
    """`gateway keys rotate` as an operator runs it, while this process keeps serving."""
    from gateway import runtime
    made = contacts.create_contact(conn, account_id=tenant.id, name="Before Rotation",
                                   identities=[("phone", "+34633000222")])
    conn.commit()
    old_kid = runtime.keyring().current_kid
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "keys", "rotate"], env=os.environ,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "re-wrapped" in out.stdout
    remaining = conn.execute("SELECT count(*) AS n FROM data_keys WHERE wrapped IS NOT NULL AND master_kid = %s",
                             (old_kid,)).fetchone()["n"]
    assert remaining == 0
    # This process still holds the old keyring in memory; it must follow the file.
    keystore._cache.clear()
    got = contacts.get_contact(conn, account_id=tenant.id, contact_id=made["id"])
    assert got["name"] == "Before Rotation" and got["identities"][0]["address"] == "+34633000222"
    assert runtime.keyring().current_kid != old_kid
    fresh = contacts.create_contact(conn, account_id=tenant.id, name="After")
    kid = conn.execute("SELECT d.master_kid FROM contacts c JOIN data_keys d ON d.account_id = c.account_id "
                       "AND d.id = c.data_key_id WHERE c.account_id = %s AND c.id = %s",
                       (tenant.id, fresh["id"])).fetchone()["master_kid"]
    assert kid == runtime.keyring().current_kid


def test_account_key_is_created_once_under_concurrency(tenant):
    import threading
    from gateway import db
    ids, errors = [], []

    def grab():
        try:
            with db.connection() as c:
                ids.append(keystore.account_key(c, account_id=tenant.id).id)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=grab) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len(set(ids)) == 1
