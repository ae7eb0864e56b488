"""Provider notices (template, quality, account, preference, call updates): kept, encrypted, by topic.

The part of the gateway that owns a topic (templates, consent, channel health)
reads them from here; a notice that names a customer is encrypted under that
customer's key, so erasing the customer erases the notice too.
"""
from __future__ import annotations

import json

from gateway import contacts, keystore
from gateway.crypto import field_aad
from gateway.db import uuid7


def record(conn, *, account_id, channel_id, topic: str, detail: dict, contact_id=None, occurred_at=None):
    key = (contacts.contact_key(conn, account_id=account_id, contact_id=contact_id) if contact_id is not None
           else keystore.account_key(conn, account_id=account_id))
    notice_id = uuid7()
    conn.execute(
        "INSERT INTO notices (account_id, id, channel_id, topic, data_key_id, detail_enc, contact_id, occurred_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (account_id, notice_id, channel_id, topic, key.id,
         key.encrypt(json.dumps(detail, default=str), field_aad("notices", "detail", account_id, notice_id)),
         contact_id, occurred_at))
    return notice_id


def list_notices(conn, *, account_id, topic: str | None = None, limit: int = 100) -> list[dict]:
    rows = conn.execute(
        "SELECT id, channel_id, topic, data_key_id, detail_enc, contact_id, occurred_at, created_at, handled_at "
        "FROM notices WHERE account_id = %s AND (%s::text IS NULL OR topic = %s) "
        "ORDER BY created_at DESC, id DESC LIMIT %s", (account_id, topic, topic, limit)).fetchall()
    out = []
    for r in rows:
        key = keystore.load_key(conn, account_id=account_id, key_id=r["data_key_id"])
        detail = key.decrypt_text(r["detail_enc"], field_aad("notices", "detail", account_id, r["id"]))
        out.append({"id": r["id"], "channel_id": r["channel_id"], "topic": r["topic"],
                    "detail": json.loads(detail), "contact_id": r["contact_id"], "occurred_at": r["occurred_at"],
                    "created_at": r["created_at"], "handled_at": r["handled_at"]})
    return out
