"""Contacts and the identities that reach them, encrypted under each contact's data key."""
from __future__ import annotations

import json

import phonenumbers

from gateway import keystore, runtime
from gateway.accounts import audit
from gateway.crypto import field_aad
from gateway.db import uuid7

IDENTITY_KINDS = ("phone", "bsuid", "psid", "igsid", "email")


class InvalidAddress(ValueError):
    pass


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """E.164 form of a phone number, or InvalidAddress saying why not."""
    text = raw.strip()
    if text.startswith("whatsapp:"):
        text = text[len("whatsapp:"):]
    if text and text[0].isdigit() and default_region is None:
        text = "+" + text   # WhatsApp's wa_id is E.164 without the plus
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidAddress("not a phone number; use international format, e.g. +34600000001") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidAddress("not a possible phone number for its country; e.g. +34600000001")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_address(kind: str, raw: str) -> str:
    if kind == "phone":
        return normalise_phone(raw)
    if kind == "email":
        return raw.strip().lower()
    value = raw.strip()
    if not value:
        raise InvalidAddress("must not be empty")
    return value


def _bidx(account_id, kind: str, address: str) -> bytes:
    return runtime.keyring().blind_indexer(account_id)(kind, address)


def create_contact(conn, *, account_id, name: str | None = None, language: str | None = None,
                   profile: dict | None = None, identities: list[tuple[str, str]] = (),
                   actor: str = "system", view: bool = True) -> dict:
    """Create a contact with its own data key; identities are (kind, normalised address).
    ``view=False`` skips reading it back (the inbound hot path only needs the id)."""
    key = keystore.create_key(conn, account_id=account_id, purpose="contact")
    contact_id = uuid7()
    conn.execute(
        "INSERT INTO contacts (account_id, id, data_key_id, name_enc, profile_enc, language) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (account_id, contact_id, key.id,
         None if name is None else key.encrypt(name, field_aad("contacts", "name", account_id, contact_id)),
         None if profile is None else key.encrypt(json.dumps(profile),
                                                  field_aad("contacts", "profile", account_id, contact_id)),
         language))
    for kind, address in identities:
        add_identity(conn, account_id=account_id, contact_id=contact_id, kind=kind, address=address, key=key)
    audit(conn, account_id=account_id, actor=actor, action="contact.created",
          target_type="contact", target_id=contact_id)
    if not view:
        return {"id": contact_id}
    return get_contact(conn, account_id=account_id, contact_id=contact_id)


def add_identity(conn, *, account_id, contact_id, kind: str, address: str, key=None) -> None:
    if key is None:
        key = contact_key(conn, account_id=account_id, contact_id=contact_id)
    identity_id = uuid7()
    conn.execute(
        "INSERT INTO contact_identities (account_id, id, contact_id, kind, address_bidx, address_enc) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (account_id, identity_id, contact_id, kind, _bidx(account_id, kind, address),
         key.encrypt(address, field_aad("contact_identities", "address", account_id, identity_id))))


def contact_key(conn, *, account_id, contact_id):
    row = conn.execute("SELECT data_key_id FROM contacts WHERE account_id = %s AND id = %s",
                       (account_id, contact_id)).fetchone()
    if row is None:
        raise LookupError("contact not found")
    return keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])


def find_by_identity(conn, *, account_id, kind: str, address: str) -> dict | None:
    contact_id = contact_id_for(conn, account_id=account_id, kind=kind, address=address)
    return None if contact_id is None else get_contact(conn, account_id=account_id, contact_id=contact_id)


def contact_id_for(conn, *, account_id, kind: str, address: str):
    """The contact this identity reaches, resolved through merges (a merged contact answers for its survivor)."""
    row = conn.execute(
        "SELECT coalesce(c.merged_into, c.id) AS id FROM contact_identities i "
        "JOIN contacts c ON c.account_id = i.account_id AND c.id = i.contact_id "
        "WHERE i.account_id = %s AND i.kind = %s AND i.address_bidx = %s",
        (account_id, kind, _bidx(account_id, kind, address))).fetchone()
    return None if row is None else row["id"]


def resolve_with_thread(conn, *, account_id, kind: str, address: str, channel_id) -> dict | None:
    """The hot path of inbound: the contact (through merges), its data key and its thread on this channel
    (None when it has none yet), in one query; None when the identity is unknown."""
    return conn.execute(
        "SELECT r.id AS contact_id, r.data_key_id, t.id AS thread_id FROM contact_identities i "
        "JOIN contacts c ON c.account_id = i.account_id AND c.id = i.contact_id "
        "JOIN contacts r ON r.account_id = c.account_id AND r.id = coalesce(c.merged_into, c.id) "
        "LEFT JOIN threads t ON t.account_id = r.account_id AND t.contact_id = r.id AND t.channel_id = %s "
        "WHERE i.account_id = %s AND i.kind = %s AND i.address_bidx = %s",
        (channel_id, account_id, kind, _bidx(account_id, kind, address))).fetchone()


def _identities(conn, account_id, contact_ids: list) -> list[dict]:
    rows = conn.execute(
        "SELECT i.id, i.contact_id, i.kind, i.address_enc, c.data_key_id FROM contact_identities i "
        "JOIN contacts c ON c.account_id = i.account_id AND c.id = i.contact_id "
        "WHERE i.account_id = %s AND i.contact_id = ANY(%s) ORDER BY i.created_at, i.id",
        (account_id, contact_ids)).fetchall()
    out = []
    for i in rows:
        key = keystore.load_key(conn, account_id=account_id, key_id=i["data_key_id"])
        out.append({"kind": i["kind"], "contact_id": i["contact_id"],
                    "address": key.decrypt_text(i["address_enc"],
                                                field_aad("contact_identities", "address", account_id, i["id"]))})
    return out


def _decrypt_contact(conn, account_id, row: dict) -> dict:
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    merged = [r["id"] for r in conn.execute(
        "SELECT id FROM contacts WHERE account_id = %s AND merged_into = %s ORDER BY created_at, id",
        (account_id, row["id"])).fetchall()]
    profile = key.decrypt_text(row["profile_enc"], field_aad("contacts", "profile", account_id, row["id"]))
    identities = _identities(conn, account_id, [row["id"], *merged])
    for ident in identities:
        if ident["contact_id"] == row["id"]:
            del ident["contact_id"]
        else:
            ident["via_merged_contact"] = ident.pop("contact_id")
    return {
        "id": row["id"],
        "name": key.decrypt_text(row["name_enc"], field_aad("contacts", "name", account_id, row["id"])),
        "language": row["language"],
        "profile": json.loads(profile) if profile else {},
        "identities": identities,
        "merged_into": row["merged_into"],
        "merged_contacts": merged,
        "threads": [dict(t) for t in conn.execute(
            "SELECT t.id, t.channel_id, ch.kind AS channel_kind, t.status, t.last_activity_at FROM threads t "
            "JOIN channels ch ON ch.account_id = t.account_id AND ch.id = t.channel_id "
            "WHERE t.account_id = %s AND t.contact_id = ANY(%s) ORDER BY t.last_activity_at DESC",
            (account_id, [row["id"], *merged])).fetchall()],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


_COLUMNS = "id, data_key_id, name_enc, profile_enc, language, merged_into, created_at, updated_at"


def get_contact(conn, *, account_id, contact_id) -> dict | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM contacts WHERE account_id = %s AND id = %s",
                       (account_id, contact_id)).fetchone()
    return None if row is None else _decrypt_contact(conn, account_id, row)


def list_contacts(conn, *, account_id, limit: int = 50, before=None) -> list[dict]:
    """Newest first; ``before`` is the (created_at, id) of the last row of the previous page."""
    if before is None:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM contacts WHERE account_id = %s AND merged_into IS NULL "
            "ORDER BY created_at DESC, id DESC LIMIT %s", (account_id, limit)).fetchall()
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM contacts WHERE account_id = %s AND merged_into IS NULL "
            "AND (created_at, id) < (%s, %s) "
            "ORDER BY created_at DESC, id DESC LIMIT %s", (account_id, *before, limit)).fetchall()
    return [_decrypt_contact(conn, account_id, r) for r in rows]


def erase_contact(conn, *, account_id, contact_id, actor: str) -> bool:
    """Crypto-shred a contact (and every contact merged into it): destroy the data keys, then delete the rows.

    Destroying the key first means any copy of the ciphertext that survives
    (a backup, a replica lagging behind) is unreadable too.
    """
    rows = conn.execute(
        "SELECT id, data_key_id FROM contacts WHERE account_id = %s AND (id = %s OR merged_into = %s) FOR UPDATE",
        (account_id, contact_id, contact_id)).fetchall()
    if not any(r["id"] == contact_id for r in rows):
        return False
    for row in rows:
        keystore.shred(conn, account_id=account_id, key_id=row["data_key_id"])
    conn.execute("DELETE FROM contacts WHERE account_id = %s AND id = ANY(%s)",
                 (account_id, [r["id"] for r in rows]))
    audit(conn, account_id=account_id, actor=actor, action="contact.erased",
          target_type="contact", target_id=contact_id, detail={"merged_contacts_erased": len(rows) - 1})
    return True


def move_identity(conn, *, account_id, kind: str, old: str, new: str, actor: str) -> str:
    """The customer's address changed (WhatsApp number change): the identity moves, the history stays.

    Returns 'moved', 'unknown' (old not known) or 'conflict' (new belongs to another contact: left alone).
    """
    row = conn.execute(
        "SELECT i.id, i.contact_id, c.data_key_id FROM contact_identities i "
        "JOIN contacts c ON c.account_id = i.account_id AND c.id = i.contact_id "
        "WHERE i.account_id = %s AND i.kind = %s AND i.address_bidx = %s FOR UPDATE OF i",
        (account_id, kind, _bidx(account_id, kind, old))).fetchone()
    if row is None:
        return "unknown"
    taken = contact_id_for(conn, account_id=account_id, kind=kind, address=new)
    if taken is not None:
        return "moved" if taken == row["contact_id"] else "conflict"
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    conn.execute(
        "UPDATE contact_identities SET address_bidx = %s, address_enc = %s WHERE account_id = %s AND id = %s",
        (_bidx(account_id, kind, new),
         key.encrypt(new, field_aad("contact_identities", "address", account_id, row["id"])), account_id, row["id"]))
    audit(conn, account_id=account_id, actor=actor, action="contact.identity_moved",
          target_type="contact", target_id=row["contact_id"], detail={"kind": kind})
    return "moved"
