"""Contacts and the identities that reach them, encrypted under each contact's data key."""
from __future__ import annotations

import json

import phonenumbers

from gateway import attributes, contact_tags, events, keystore, media, runtime
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


def lookup_address(kind: str, raw: str) -> str:
    """An address as inbound stores it: normalised when it can be, else as the provider gave it (an odd
    sender is still a customer)."""
    try:
        return normalise_address(kind, raw)
    except InvalidAddress:
        return raw.strip()


def _bidx(account_id, kind: str, address: str) -> bytes:
    return runtime.keyring().blind_indexer(account_id)(kind, address)


def create_contact(conn, *, account_id, name: str | None = None, language: str | None = None,
                   profile: dict | None = None, identities: list[tuple[str, str]] = (),
                   actor: str = "system", view: bool = True, source: str = "api",
                   channel_kind: str | None = None) -> dict:
    """Create a contact with its own data key; identities are (kind, normalised address).
    ``view=False`` skips reading it back (the inbound hot path only needs the id). ``source`` (inbound, api,
    import) and ``channel_kind`` go into the contact.created event."""
    key = keystore.create_key(conn, account_id=account_id, purpose="contact")
    contact_id = uuid7()
    tags = []
    if profile and "tags" in profile:   # tags are kept in contact_tags, not in the profile (migration 0019)
        profile = dict(profile)
        tags = contact_tags.legacy(profile)
        del profile["tags"]
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
    if tags:
        contact_tags.add(conn, account_id=account_id, contact_id=contact_id, tags=tags, emit=False)
    if profile:
        attributes.reindex(conn, account_id=account_id, contact_id=contact_id, profile=profile, names=list(profile))
    audit(conn, account_id=account_id, actor=actor, action="contact.created",
          target_type="contact", target_id=contact_id)
    events.emit(conn, account_id, "contact.created", {"contact_id": str(contact_id), "source": source,
                                                      "channel_kind": channel_kind}, subject_id=contact_id)
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


def addresses_of(conn, *, account_id, contact_ids: list, kind: str) -> dict:
    """contact id → its oldest identity of ``kind``, decrypted, for many contacts (keys loaded in one query)."""
    rows = conn.execute(
        "SELECT DISTINCT ON (i.contact_id) i.contact_id, i.id, i.address_enc, c.data_key_id FROM contact_identities i "
        "JOIN contacts c ON c.account_id = i.account_id AND c.id = i.contact_id WHERE i.account_id = %s "
        "AND i.contact_id = ANY(%s) AND i.kind = %s ORDER BY i.contact_id, i.created_at",
        (account_id, list(contact_ids), kind)).fetchall()
    keys = keystore.load_keys(conn, account_id=account_id, key_ids=[r["data_key_id"] for r in rows])
    out = {}
    for r in rows:
        key = keys.get(r["data_key_id"]) or keystore.load_key(conn, account_id=account_id, key_id=r["data_key_id"])
        out[r["contact_id"]] = key.decrypt_text(r["address_enc"], field_aad("contact_identities", "address",
                                                                            account_id, r["id"]))
    return out


def read_profile(conn, *, account_id, contact_id) -> dict:
    row = conn.execute("SELECT data_key_id, profile_enc FROM contacts WHERE account_id = %s AND id = %s",
                       (account_id, contact_id)).fetchone()
    if row is None or not row["profile_enc"]:
        return {}
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    return json.loads(key.decrypt_text(row["profile_enc"], field_aad("contacts", "profile", account_id, contact_id)))


def update_profile(conn, *, account_id, contact_id, change) -> bool:
    """Apply ``change(profile)`` (it edits the dict in place) to the contact's encrypted profile, under the
    row lock; emits contact.updated with the names of the attributes that changed (never their values)."""
    row = conn.execute("SELECT data_key_id, profile_enc FROM contacts WHERE account_id = %s AND id = %s "
                       "FOR UPDATE", (account_id, contact_id)).fetchone()
    if row is None:
        return False
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    aad = field_aad("contacts", "profile", account_id, contact_id)
    profile = json.loads(key.decrypt_text(row["profile_enc"], aad)) if row["profile_enc"] else {}
    before = json.loads(json.dumps(profile))
    change(profile)
    # Tags left in a profile from before migration 0019 move to contact_tags with this write.
    contact_tags.take_from_profile(conn, account_id=account_id, contact_id=contact_id, profile=profile)
    changed = sorted(k for k in set(before) | set(profile) if before.get(k) != profile.get(k))
    if not changed:
        return False
    conn.execute("UPDATE contacts SET profile_enc = %s, updated_at = now() WHERE account_id = %s AND id = %s",
                 (key.encrypt(json.dumps(profile), aad), account_id, contact_id))
    attributes.reindex(conn, account_id=account_id, contact_id=contact_id, profile=profile, names=changed)
    events.emit(conn, account_id, "contact.updated", {"contact_id": str(contact_id), "changed": changed},
                subject_id=contact_id)
    return True


KEEP = object()


def update_details(conn, *, account_id, contact_id, name=KEEP, language=KEEP) -> list[str] | None:
    """Set the contact's name and/or language (None clears one; KEEP leaves it); returns the fields that changed
    (emitting contact.updated with their names, never their values), or None when the contact is unknown."""
    row = conn.execute("SELECT data_key_id, name_enc, language FROM contacts WHERE account_id = %s AND id = %s "
                       "FOR UPDATE", (account_id, contact_id)).fetchone()
    if row is None:
        return None
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    aad = field_aad("contacts", "name", account_id, contact_id)
    name_enc, changed = row["name_enc"], []
    if name is not KEEP and name != key.decrypt_text(row["name_enc"], aad):
        name_enc = None if name is None else key.encrypt(name, aad)
        changed.append("name")
    if language is not KEEP and language != row["language"]:
        changed.append("language")
    if changed:
        conn.execute("UPDATE contacts SET name_enc = %s, language = %s, updated_at = now() "
                     "WHERE account_id = %s AND id = %s",
                     (name_enc, row["language"] if language is KEEP else language, account_id, contact_id))
        events.emit(conn, account_id, "contact.updated", {"contact_id": str(contact_id), "changed": changed},
                    subject_id=contact_id)
    return changed


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
    profile = json.loads(profile) if profile else {}
    # Tags have their own table (merged contacts' included); a profile not rewritten since migration 0019
    # may still hold some, shown as tags all the same.
    tags = contact_tags.tags_of(conn, account_id=account_id, contact_id=row["id"])
    if "tags" in profile:
        tags = sorted(set(tags) | set(contact_tags.legacy(profile)))
        del profile["tags"]
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
        "profile": profile,
        "tags": tags,
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



def languages(conn, *, account_id, contact_id) -> tuple[str | None, str | None]:
    """(the contact's language, the account's default language): what a reply, a template translation or a
    survey is chosen by."""
    row = conn.execute("SELECT c.language, a.default_language FROM accounts a LEFT JOIN contacts c "
                       "ON c.account_id = a.id AND c.id = %s WHERE a.id = %s", (contact_id, account_id)).fetchone()
    return (row["language"], row["default_language"]) if row else (None, None)

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


class AlreadyErased(LookupError):
    """The contact was erased before (a tombstone says when); nothing of it is left to erase."""

    def __init__(self, erased_at):
        super().__init__("contact already erased")
        self.erased_at = erased_at


def erasure_of(conn, *, account_id, contact_id):
    """When this contact id was erased, or None (never, or it never existed in this account)."""
    row = conn.execute("SELECT erased_at FROM contact_erasures WHERE account_id = %s AND contact_id = %s",
                       (account_id, contact_id)).fetchone()
    return None if row is None else row["erased_at"]


def erase_contact(conn, *, account_id, contact_id, actor: str) -> bool:
    """Erase a contact and every contact merged into it (GDPR Art. 17); False when it is unknown.

    Raises AlreadyErased when a tombstone says it is gone. In order: the data keys are destroyed first, so
    any copy of a ciphertext that survives (a replica lagging behind, a dead tuple not yet vacuumed, a
    backup taken after this commit) is unreadable; then the messages with their statuses and media bytes,
    set-based (10,000 messages must go in well under a second, which per-row cascades would not); then the
    bodies of the raw webhooks that concerned them; then the contact rows, whose cascades take the
    identities (their blind indexes), threads, consent events, merges and notices. A tombstone, a
    ``contact.erased`` event for the CRM and an audit row stay; none holds personal data.
    """
    rows = conn.execute(
        "SELECT id, data_key_id FROM contacts WHERE account_id = %s AND (id = %s OR merged_into = %s) "
        "ORDER BY id FOR UPDATE",
        (account_id, contact_id, contact_id)).fetchall()
    if not any(r["id"] == contact_id for r in rows):
        erased_at = erasure_of(conn, account_id=account_id, contact_id=contact_id)
        if erased_at is not None:
            raise AlreadyErased(erased_at)
        return False
    ids = [r["id"] for r in rows]
    for row in rows:
        keystore.shred(conn, account_id=account_id, key_id=row["data_key_id"])
    threads = [r["id"] for r in conn.execute(
        "SELECT id FROM threads WHERE account_id = %s AND contact_id = ANY(%s)", (account_id, ids)).fetchall()]
    counts = {"merged_contacts": len(ids) - 1, "threads": len(threads)}
    counts.update(_delete_messages(conn, account_id, threads))
    counts["raw_events"] = wipe_raw_events(conn, account_id=account_id, contact_ids=ids)
    counts["pending_statuses"] = conn.execute(
        "DELETE FROM pending_statuses WHERE account_id = %s AND contact_id = ANY(%s)", (account_id, ids)).rowcount
    conn.execute("DELETE FROM contacts WHERE account_id = %s AND id = ANY(%s)", (account_id, ids))
    conn.execute("INSERT INTO contact_erasures (account_id, contact_id) SELECT %s, unnest(%s::uuid[]) "
                 "ON CONFLICT DO NOTHING", (account_id, ids))
    merged = [str(i) for i in ids if i != contact_id]
    events.emit(conn, account_id, events.CONTACT_ERASED, {"contact_id": str(contact_id), "merged_contact_ids": merged},
                subject_id=contact_id)
    audit(conn, account_id=account_id, actor=actor, action="contact.erased",
          target_type="contact", target_id=contact_id,
          detail={"merged_contacts_erased": len(ids) - 1, "merged_contact_ids": merged, "counts": counts})
    return True


def _delete_messages(conn, account_id, threads: list) -> dict:
    """The threads' messages, their status history, media (bytes included) and pending statuses, one
    statement each. Deleting children first leaves the messages' foreign-key triggers nothing to find."""
    if not threads:
        return {"messages": 0, "media": 0}
    in_threads = "SELECT id FROM messages WHERE account_id = %(a)s AND thread_id = ANY(%(t)s)"
    params = {"a": account_id, "t": threads}
    # A status that raced its message waits under the message's provider id: a blind index of it goes too.
    conn.execute(
        "DELETE FROM pending_statuses p USING messages m WHERE p.account_id = %(a)s AND m.account_id = %(a)s "
        "AND m.thread_id = ANY(%(t)s) AND m.provider_id_bidx IS NOT NULL AND p.channel_id = m.channel_id "
        "AND p.provider_id_bidx = m.provider_id_bidx", params)
    conn.execute(f"DELETE FROM message_events WHERE account_id = %(a)s AND message_id IN ({in_threads})", params)
    n_media = media.delete_for_threads(conn, account_id=account_id, thread_ids=threads)
    n_messages = conn.execute("DELETE FROM messages WHERE account_id = %(a)s AND thread_id = ANY(%(t)s)",
                              params).rowcount
    return {"messages": n_messages, "media": n_media}


def wipe_raw_events(conn, *, account_id, contact_ids: list) -> int:
    """Make the raw webhooks these contacts appeared in unreadable: their bodies are removed, the rows stay
    as dedupe keys (see migration 0010). A webhook that named several customers goes for all of them: it
    was applied long ago, and what it said about the others lives on in their own rows."""
    return conn.execute(
        "UPDATE inbound_events e SET raw_enc = NULL, raw_erased_at = now() FROM inbound_event_contacts l "
        "WHERE l.account_id = %s AND l.contact_id = ANY(%s) AND e.account_id = l.account_id "
        "AND e.id = l.event_id AND e.raw_enc IS NOT NULL", (account_id, contact_ids)).rowcount


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
