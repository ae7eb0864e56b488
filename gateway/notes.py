"""Internal notes on threads: what agents write for each other about a conversation.

A note is never a message: it is stored in ``thread_notes`` (never in ``messages``), never passes the send
gate and is never enqueued, so nothing can deliver it to the customer. Its body is personal data about the
customer and is encrypted like a message body, under the data key of the thread's contact and bound to its
row (``field_aad("thread_notes", "body", account_id, note_id)``): erasing the contact shreds it, and its row
goes with the thread. Events and audit rows carry ids only.
"""
from __future__ import annotations

from gateway import events, keystore
from gateway.accounts import audit
from gateway.crypto import field_aad
from gateway.db import uuid7

MAX_BODY = 10_000
MAX_AUTHOR = 200


_COLUMNS = "n.id, n.thread_id, n.contact_id, n.author, n.actor, n.body_enc, n.created_at, c.data_key_id"


class ThreadNotFound(LookupError):
    pass


def _aad(account_id, note_id) -> bytes:
    return field_aad("thread_notes", "body", account_id, note_id)


def add(conn, *, account_id, thread_id, body: str, actor: str, author: str | None = None) -> dict:
    """Write a note on the thread; raises ThreadNotFound when the thread is not in the account.
    ``author``: who wrote it in the CRM (an agent's external id); the caller (``actor``) when not given."""
    row = conn.execute(
        "SELECT t.contact_id, c.data_key_id FROM threads t JOIN contacts c ON c.account_id = t.account_id "
        "AND c.id = t.contact_id WHERE t.account_id = %s AND t.id = %s", (account_id, thread_id)).fetchone()
    if row is None:
        raise ThreadNotFound(f"no thread with id {thread_id} in this account")
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    note_id = uuid7()
    stored = conn.execute(
        "INSERT INTO thread_notes (account_id, id, thread_id, contact_id, author, actor, body_enc) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id, thread_id, contact_id, author, actor, created_at",
        (account_id, note_id, thread_id, row["contact_id"], author or actor, actor,
         key.encrypt(body, _aad(account_id, note_id)))).fetchone()
    events.emit(conn, account_id, "thread.note_added", {"thread_id": str(thread_id), "note_id": str(note_id)},
                subject_id=thread_id)
    audit(conn, account_id=account_id, actor=actor, action="thread.note_added", target_type="thread",
          target_id=thread_id, detail={"note_id": str(note_id)})
    return dict(stored, body=body)


def list_for(conn, *, account_id, thread_id, limit: int = 50, after=None) -> list[dict] | None:
    """The thread's notes oldest first, decrypted; ``after`` is the (created_at, id) of the previous page's
    last note. None when the thread is not in the account."""
    thread = conn.execute("SELECT 1 FROM threads WHERE account_id = %s AND id = %s", (account_id, thread_id)).fetchone()
    if thread is None:
        return None
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM thread_notes n JOIN contacts c ON c.account_id = n.account_id "
        "AND c.id = n.contact_id WHERE n.account_id = %s AND n.thread_id = %s "
        + ("AND (n.created_at, n.id) > (%s, %s) " if after else "") + "ORDER BY n.created_at, n.id LIMIT %s",
        (account_id, thread_id, *(after or ()), limit)).fetchall()
    return decrypt(conn, account_id, rows)


def decrypt(conn, account_id, rows: list[dict]) -> list[dict]:
    """Note rows (with body_enc and data_key_id) as the API shows them."""
    keys = keystore.load_keys(conn, account_id=account_id, key_ids=[r["data_key_id"] for r in rows])
    out = []
    for r in rows:
        key = keys.get(r["data_key_id"]) or keystore.load_key(conn, account_id=account_id, key_id=r["data_key_id"])
        out.append({"id": r["id"], "thread_id": r["thread_id"], "contact_id": r["contact_id"], "author": r["author"],
                    "actor": r["actor"], "body": key.decrypt_text(r["body_enc"], _aad(account_id, r["id"])),
                    "created_at": r["created_at"]})
    return out


def for_contacts(conn, *, account_id, contact_ids: list) -> list[dict]:
    """Every note on the threads of these contacts, oldest first (the data export)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM thread_notes n JOIN contacts c ON c.account_id = n.account_id "
        "AND c.id = n.contact_id WHERE n.account_id = %s AND n.contact_id = ANY(%s) ORDER BY n.created_at, n.id",
        (account_id, contact_ids)).fetchall()
    return decrypt(conn, account_id, rows)
