"""One customer, one contact: resolving a sender's identities, merging contacts, and undoing a merge.

A merge never moves or re-encrypts data: the merged contact keeps its rows and
its data key and points at the survivor (``merged_into``); identity look-ups
and reads resolve through it. Unmerging clears the pointer, so it is exact.
Automatic merges happen only when a provider itself says two identities are
one person (a WhatsApp phone number and its BSUID) and the two contacts hold
no conflicting identity; everything else is the CRM's call.
"""
from __future__ import annotations

import psycopg.errors

from gateway import contacts, events
from gateway.accounts import audit
from gateway.db import uuid7


class MergeError(ValueError):
    pass


def _identity_map(conn, account_id, contact_id) -> dict[str, set[str]]:
    found = conn.execute("SELECT id FROM contacts WHERE account_id = %s AND (id = %s OR merged_into = %s)",
                         (account_id, contact_id, contact_id)).fetchall()
    out: dict[str, set[str]] = {}
    for ident in contacts._identities(conn, account_id, [r["id"] for r in found]):
        out.setdefault(ident["kind"], set()).add(ident["address"])
    return out


def conflicts(conn, account_id, a, b) -> list[str]:
    """Identity kinds where both contacts have a different address (two phone numbers, two BSUIDs...)."""
    ia, ib = _identity_map(conn, account_id, a), _identity_map(conn, account_id, b)
    return sorted(k for k in ia.keys() & ib.keys() if ia[k] != ib[k] and k != "email")


def merge(conn, *, account_id, survivor_id, merged_id, actor: str, reason: str = "api") -> dict:
    if survivor_id == merged_id:
        raise MergeError("a contact cannot be merged into itself")
    rows = {r["id"]: r for r in conn.execute(
        "SELECT id, merged_into FROM contacts WHERE account_id = %s AND id = ANY(%s) FOR UPDATE",
        (account_id, [survivor_id, merged_id])).fetchall()}
    if len(rows) != 2:
        raise LookupError("contact not found")
    for cid, row in rows.items():
        if row["merged_into"] is not None:
            raise MergeError(f"contact {cid} is itself merged into {row['merged_into']}; merge into that one")
    merge_id = uuid7()
    # Contacts merged into the merged one follow it; the merge row remembers them for unmerge.
    followers = [r["id"] for r in conn.execute(
        "UPDATE contacts SET merged_into = %s, updated_at = now() WHERE account_id = %s AND merged_into = %s "
        "RETURNING id", (survivor_id, account_id, merged_id)).fetchall()]
    conn.execute("UPDATE contacts SET merged_into = %s, updated_at = now() WHERE account_id = %s AND id = %s",
                 (survivor_id, account_id, merged_id))
    row = conn.execute(
        "INSERT INTO contact_merges (account_id, id, survivor_id, merged_id, actor, reason) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id, survivor_id, merged_id, actor, reason, merged_at, "
        "unmerged_at", (account_id, merge_id, survivor_id, merged_id, actor, reason)).fetchone()
    for follower in followers:
        conn.execute("INSERT INTO contact_merges (account_id, id, survivor_id, merged_id, actor, reason) "
                     "VALUES (%s, %s, %s, %s, %s, %s)",
                     (account_id, uuid7(), survivor_id, follower, actor, f"followed:{merge_id}"))
    audit(conn, account_id=account_id, actor=actor, action="contact.merged", target_type="contact",
          target_id=survivor_id, detail={"merged_id": str(merged_id), "reason": reason})
    # The contacts that followed the merged one are not announced again: an earlier contact.merged tied each
    # of them to it, and that chain now leads here.
    events.emit(conn, account_id, "contact.merged", {"contact_id": str(survivor_id),
                                                     "merged_contact_id": str(merged_id), "reason": reason},
                subject_id=survivor_id)
    return dict(row)


def unmerge(conn, *, account_id, survivor_id, merged_id, actor: str) -> dict | None:
    """Undo the merge of merged_id into survivor_id; contacts that followed it go back to it."""
    row = conn.execute(
        "SELECT id FROM contact_merges WHERE account_id = %s AND survivor_id = %s AND merged_id = %s "
        "AND unmerged_at IS NULL AND reason NOT LIKE 'followed:%%' ORDER BY merged_at DESC LIMIT 1 FOR UPDATE",
        (account_id, survivor_id, merged_id)).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE contacts SET merged_into = NULL, updated_at = now() WHERE account_id = %s AND id = %s",
                 (account_id, merged_id))
    followers = conn.execute(
        "UPDATE contact_merges SET unmerged_at = now(), unmerged_by = %s WHERE account_id = %s "
        "AND reason = %s AND unmerged_at IS NULL RETURNING merged_id", (actor, account_id, f"followed:{row['id']}")
    ).fetchall()
    if followers:
        conn.execute("UPDATE contacts SET merged_into = %s, updated_at = now() WHERE account_id = %s "
                     "AND id = ANY(%s)", (merged_id, account_id, [f["merged_id"] for f in followers]))
    done = conn.execute(
        "UPDATE contact_merges SET unmerged_at = now(), unmerged_by = %s WHERE account_id = %s AND id = %s "
        "RETURNING id, survivor_id, merged_id, actor, reason, merged_at, unmerged_at",
        (actor, account_id, row["id"])).fetchone()
    audit(conn, account_id=account_id, actor=actor, action="contact.unmerged", target_type="contact",
          target_id=survivor_id, detail={"merged_id": str(merged_id)})
    return dict(done)


def resolve_sender(conn, *, account_id, identities: list[tuple[str, str]], name: str | None,
                   actor: str = "inbound", source: str = "inbound", channel_kind: str | None = None):
    """The contact for a customer known by these identities (first = primary), created or completed as needed.
    ``source`` and ``channel_kind`` describe a contact created here (its contact.created event)."""
    found = {ident: contacts.contact_id_for(conn, account_id=account_id, kind=ident[0], address=ident[1])
             for ident in identities}
    owners = [cid for cid in found.values() if cid is not None]
    if not owners:
        try:
            with conn.transaction():   # another worker may create the same customer at this moment
                made = contacts.create_contact(conn, account_id=account_id, name=name, identities=identities,
                                               actor=actor, view=False, source=source, channel_kind=channel_kind)
            return made["id"]
        except psycopg.errors.UniqueViolation:
            return resolve_sender(conn, account_id=account_id, identities=identities, name=name, actor=actor,
                                  source=source, channel_kind=channel_kind)
    primary = found[identities[0]] or owners[0]
    for ident, owner in found.items():
        if owner is None:
            try:
                with conn.transaction():
                    contacts.add_identity(conn, account_id=account_id, contact_id=primary, kind=ident[0],
                                          address=ident[1])
            except psycopg.errors.UniqueViolation:
                pass   # added concurrently; the next message resolves it
        elif owner != primary and not conflicts(conn, account_id, primary, owner):
            merge(conn, account_id=account_id, survivor_id=primary, merged_id=owner, actor=actor,
                  reason=f"same customer: {ident[0]} and {identities[0][0]} arrived together")
    return primary
