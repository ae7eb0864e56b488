"""Threads and messages: one thread per contact and channel, bodies encrypted per contact."""
from __future__ import annotations

from gateway import contacts, keystore, runtime
from gateway.crypto import field_aad
from gateway.db import uuid7

# Statuses only move forward; a late 'delivered' after 'read' is recorded as an
# event but does not change the message.
STATUS_RANK = {"received": 0, "queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4, "played": 5,
               "failed": 6}


def provider_id_bidx(account_id, provider_message_id: str) -> bytes:
    return runtime.keyring().blind_indexer(account_id)("provider_message_id", provider_message_id)


def thread_for(conn, *, account_id, contact_id, channel_id) -> dict:
    """The contact's thread on this channel, created on first contact."""
    row = conn.execute(
        "SELECT id, status FROM threads WHERE account_id = %s AND contact_id = %s AND channel_id = %s "
        "ORDER BY created_at DESC LIMIT 1", (account_id, contact_id, channel_id)).fetchone()
    if row is not None:
        return row
    return conn.execute(
        "INSERT INTO threads (account_id, id, contact_id, channel_id) VALUES (%s, %s, %s, %s) "
        "RETURNING id, status", (account_id, uuid7(), contact_id, channel_id)).fetchone()


def record_message(conn, *, account_id, contact_id, channel_id, direction: str, body: str | None,
                   kind: str = "text", status: str | None = None,
                   provider_message_id: str | None = None, idempotency_key: str | None = None) -> dict:
    thread = thread_for(conn, account_id=account_id, contact_id=contact_id, channel_id=channel_id)
    key = contacts.contact_key(conn, account_id=account_id, contact_id=contact_id)
    message_id = uuid7()
    status = status or ("received" if direction == "inbound" else "queued")
    row = conn.execute(
        "INSERT INTO messages (account_id, id, thread_id, contact_id, channel_id, direction, kind, body_enc, "
        "provider_id_bidx, status, status_rank, idempotency_key) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "RETURNING id, thread_id, direction, kind, status, created_at",
        (account_id, message_id, thread["id"], contact_id, channel_id, direction, kind,
         None if body is None else key.encrypt(body, field_aad("messages", "body", account_id, message_id)),
         None if provider_message_id is None else provider_id_bidx(account_id, provider_message_id),
         status, STATUS_RANK[status], idempotency_key)).fetchone()
    conn.execute(
        "UPDATE threads SET last_activity_at = now(), "
        "last_inbound_at = CASE WHEN %s THEN now() ELSE last_inbound_at END "
        "WHERE account_id = %s AND id = %s",
        (direction == "inbound", account_id, thread["id"]))
    return dict(row, body=body)


def list_thread_messages(conn, *, account_id, thread_id, limit: int = 100) -> list[dict]:
    rows = conn.execute(
        "SELECT m.id, m.direction, m.kind, m.body_enc, m.status, m.created_at, c.data_key_id "
        "FROM messages m JOIN contacts c ON c.account_id = m.account_id AND c.id = m.contact_id "
        "WHERE m.account_id = %s AND m.thread_id = %s ORDER BY m.created_at, m.id LIMIT %s",
        (account_id, thread_id, limit)).fetchall()
    out = []
    for r in rows:
        key = keystore.load_key(conn, account_id=account_id, key_id=r["data_key_id"])
        out.append({"id": r["id"], "direction": r["direction"], "kind": r["kind"], "status": r["status"],
                    "created_at": r["created_at"],
                    "body": key.decrypt_text(r["body_enc"], field_aad("messages", "body", account_id, r["id"]))})
    return out
