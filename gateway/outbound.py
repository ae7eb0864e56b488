"""Accepting an outbound message: resolve the recipient, honour Idempotency-Key, pass the gate, record, enqueue.

The message row is committed as ``queued`` (with its content encrypted under
the contact's key) before a job naming only its id is handed to Redis; the
send worker does the rest. A refusal raises before anything is written.
"""
from __future__ import annotations

import hashlib
import json

import psycopg.errors

from gateway import contacts, jobs, keystore, merges, messages, send_gate
from gateway.crypto import field_aad

SEND_BATCH_JOB = "gateway.send_worker.send_batch"
_enqueuer = jobs.Coalescer("send", SEND_BATCH_JOB, kind="send", linger_s=0.005)


class NotFound(LookupError):
    pass


class IdempotencyConflict(Exception):
    pass


def _identity_kinds(channel_kind: str) -> tuple[str, ...]:
    from webhooks import registry
    caps = getattr(registry.get(channel_kind), "capabilities", {}) or {}
    return tuple(caps.get("identity_kinds", ("phone",)))


def channel_for_send(conn, account_id, channel_id) -> dict:
    row = conn.execute(
        "SELECT id, kind, external_id, status, paused_reason, (credentials_enc IS NOT NULL) AS has_credentials "
        "FROM channels WHERE account_id = %s AND id = %s", (account_id, channel_id)).fetchone()
    if row is None:
        raise NotFound(f"no channel with id {channel_id} in this account")
    return row


def resolve_recipient(conn, account_id, channel: dict, *, contact_id=None, to: dict | None = None):
    """(contact id, (kind, address)) for the channel: a contact's identity of the kind the channel reaches,
    or an address given directly (a phone number creates its contact on first use)."""
    kinds = _identity_kinds(channel["kind"])
    if contact_id is not None:
        # One query: the contact (through a merge), and every identity of it and of contacts merged into it.
        rows = conn.execute(
            "SELECT r.id AS root, i.id AS identity_id, i.kind, i.address_enc, m.data_key_id "
            "FROM contacts c JOIN contacts r ON r.account_id = c.account_id AND r.id = coalesce(c.merged_into, c.id) "
            "LEFT JOIN contacts m ON m.account_id = r.account_id AND (m.id = r.id OR m.merged_into = r.id) "
            "LEFT JOIN contact_identities i ON i.account_id = m.account_id AND i.contact_id = m.id "
            "AND i.kind = ANY(%s) WHERE c.account_id = %s AND c.id = %s ORDER BY i.created_at",
            (list(kinds), account_id, contact_id)).fetchall()
        if not rows:
            raise NotFound(f"no contact with id {contact_id} in this account")
        for kind in kinds:
            for r in rows:
                if r["kind"] == kind:
                    key = keystore.load_key(conn, account_id=account_id, key_id=r["data_key_id"])
                    address = key.decrypt_text(r["address_enc"], field_aad("contact_identities", "address",
                                                                           account_id, r["identity_id"]))
                    return rows[0]["root"], (kind, address)
        raise send_gate.Refused("no_address_for_channel", 422, f"the contact has no {' or '.join(kinds)} identity, "
                                f"which a {channel['kind']} channel needs; add one or pick another channel")
    kind = to.get("kind") or kinds[0]
    if kind not in kinds:
        raise send_gate.Refused("no_address_for_channel", 422, f"a {channel['kind']} channel reaches "
                                f"{' or '.join(kinds)} addresses, not {kind}")
    address = contacts.normalise_address(kind, to["address"])
    root = merges.resolve_sender(conn, account_id=account_id, identities=[(kind, address)], name=None,
                                 actor="outbound")
    return root, (kind, address)


def request_hash(body: dict) -> bytes:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).digest()


def existing_for_key(conn, account_id, key: str, digest: bytes):
    row = conn.execute("SELECT id, request_hash FROM messages WHERE account_id = %s AND idempotency_key = %s",
                       (account_id, key)).fetchone()
    if row is None:
        return None
    if row["request_hash"] is not None and bytes(row["request_hash"]) != digest:
        raise IdempotencyConflict("this Idempotency-Key was used with a different request body; use a new key "
                                  "for a new message")
    return row["id"]


def accept(conn, account_id, *, channel_id, kind: str, content: dict, contact_id=None, to: dict | None = None,
           reply_to_id=None, purpose: str = "transactional", tag: str | None = None,
           idempotency_key: str | None = None, body_for_hash: dict | None = None):
    """Queue one message. Returns (the new message's row, True), or (an existing message's id, False) for a
    repeated Idempotency-Key. Raises NotFound, send_gate.Refused, IdempotencyConflict."""
    digest = request_hash(body_for_hash or {}) if idempotency_key else None
    if idempotency_key:
        found = existing_for_key(conn, account_id, idempotency_key, digest)
        if found is not None:
            return found, False
    channel = channel_for_send(conn, account_id, channel_id)
    contact, (to_kind, address) = resolve_recipient(conn, account_id, channel, contact_id=contact_id, to=to)
    thread = send_gate.check(conn, account_id, send_gate.Request(channel=channel, contact_id=contact, kind=kind,
                                                                 content=content, purpose=purpose, tag=tag))
    reply_provider_id = None
    if reply_to_id is not None:
        reply_provider_id = provider_id_of(conn, account_id, reply_to_id)
        if reply_provider_id is None:
            raise NotFound(f"no message {reply_to_id} with a provider id to reply to in this account")
    stored = {"to": {"kind": to_kind, "address": address}, **content}
    if tag:
        stored["tag"] = tag
    text = content.get("body") if kind == "text" else content.get("caption")
    try:
        with conn.transaction():
            row = messages.record_message(
                conn, account_id=account_id, contact_id=contact, channel_id=channel["id"], direction="outbound",
                body=text or _rendition(kind, content), kind=kind, status="queued", content=stored,
                reply_to_provider_id=reply_provider_id, idempotency_key=idempotency_key,
                thread_id=thread["id"] if thread else None, purpose=purpose, request_hash=digest)
    except psycopg.errors.UniqueViolation:
        # The same Idempotency-Key raced in from another request: answer with the first one.
        found = existing_for_key(conn, account_id, idempotency_key, digest) if idempotency_key else None
        if found is None:
            raise
        return found, False
    return dict(row, contact_id=contact, channel_id=channel["id"], content=stored, purpose=purpose), True


def enqueue(account_id, message_id) -> None:
    """After commit: hand the id to the send workers (batched in the background)."""
    _enqueuer.add(account_id, message_id)


def flush_enqueues(timeout: float = 10.0) -> bool:
    return _enqueuer.flush(timeout)


def provider_id_of(conn, account_id, message_id) -> str | None:
    row = conn.execute(
        "SELECT m.id, m.provider_id_enc, c.data_key_id FROM messages m JOIN contacts c "
        "ON c.account_id = m.account_id AND c.id = m.contact_id WHERE m.account_id = %s AND m.id = %s",
        (account_id, message_id)).fetchone()
    if row is None or row["provider_id_enc"] is None:
        return None
    from gateway import keystore
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    return key.decrypt_text(row["provider_id_enc"], field_aad("messages", "provider_id", account_id, row["id"]))


def _rendition(kind: str, content: dict) -> str:
    if kind == "template":
        return f"[template {content.get('name')}]"
    if kind == "interactive":
        return content.get("body") or "[interactive]"
    if kind == "location":
        return content.get("name") or f"{content.get('latitude')},{content.get('longitude')}"
    if kind == "reaction":
        return content.get("emoji") or "[reaction removed]"
    if kind == "read":
        return "[read]"
    return f"[{kind}]"
