"""Data-subject access and portability (GDPR Art. 15 and 20): everything held about one contact, decrypted,
as one JSON document.

The document covers the contact and every contact merged into it (merges keep each contact's rows and key):
attributes, tags, identities, threads, consent events, internal notes on its threads, notices that name it,
and every message with its status history and media. It is produced as JSON text in pieces (``chunks``) so a
long history is never held as Python objects at once: messages are read a page at a time per thread (three
statements per page, however many statuses or files), and each contact's data key is unwrapped once.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Callable, Iterator

from gateway import contact_import, contact_tags, keystore, messages, notes
from gateway.accounts import audit
from gateway.crypto import DataKey, DecryptionError, field_aad

FORMAT = "gateway.contact-export/1"
PAGE = 1000


@dataclass
class Subject:
    """The contact being exported, the contacts merged into it, and their unwrapped data keys."""
    account_id: object
    contact: dict
    merged: list[dict]
    keys: dict = field(default_factory=dict)   # data key id → DataKey
    message_count: int = 0

    @property
    def contact_ids(self) -> list:
        return [self.contact["id"], *(m["id"] for m in self.merged)]

    def key_of(self, conn, data_key_id) -> DataKey:
        key = self.keys.get(data_key_id)
        if key is None:
            key = self.keys[data_key_id] = keystore.load_key(conn, account_id=self.account_id, key_id=data_key_id)
        return key


def _default(o):
    if isinstance(o, datetime | date):
        return o.isoformat()
    if isinstance(o, uuid.UUID):
        return str(o)
    raise TypeError(f"cannot export a {type(o).__name__}")


def _dumps(doc) -> str:
    return json.dumps(doc, default=_default, ensure_ascii=False, separators=(",", ":"))


def find(conn, *, account_id, contact_id) -> Subject | None:
    """The contact (in this account only) and those merged into it; None when there is no such contact."""
    contact_id = contact_id if isinstance(contact_id, uuid.UUID) else uuid.UUID(str(contact_id))
    rows = conn.execute(
        "SELECT id, data_key_id, name_enc, profile_enc, language, merged_into, created_at, updated_at "
        "FROM contacts WHERE account_id = %s AND (id = %s OR merged_into = %s) ORDER BY created_at, id",
        (account_id, contact_id, contact_id)).fetchall()
    main = next((r for r in rows if r["id"] == contact_id), None)
    if main is None:
        return None
    return Subject(account_id, main, [r for r in rows if r["id"] != contact_id])


def record(conn, *, subject: Subject, actor: str, via: str) -> None:
    """The export's audit row: counts only."""
    audit(conn, account_id=subject.account_id, actor=actor, action="contact.exported", target_type="contact",
          target_id=subject.contact["id"], detail={"via": via, "messages": subject.message_count,
                                                   "merged_contacts": len(subject.merged)})


def count_messages(conn, subject: Subject) -> int:
    return conn.execute(
        "SELECT count(*) AS n FROM messages m JOIN threads t ON t.account_id = m.account_id AND t.id = m.thread_id "
        "WHERE t.account_id = %s AND t.contact_id = ANY(%s)", (subject.account_id, subject.contact_ids)).fetchone()["n"]


def chunks(conn, subject: Subject, *, page: int = PAGE,
           progress: Callable[[int], None] | None = None) -> Iterator[str]:
    """The export document as JSON text, in pieces; ``progress(n)`` after each page of n messages."""
    a = subject.account_id
    threads = _threads(conn, subject)
    head = {
        "format": FORMAT,
        "exported_at": datetime.now(timezone.utc),
        "account_id": a,
        "contact": _contact(conn, subject, subject.contact),
        "merged_contacts": [_contact(conn, subject, m) for m in subject.merged],
        "merges": _merges(conn, subject),
        "identities": _identities(conn, subject),
        "threads": threads,
        "consents": _consents(conn, subject),
        "notes": notes.for_contacts(conn, account_id=a, contact_ids=subject.contact_ids),
        "notices": _notices(conn, subject),
        "campaigns": _campaigns(conn, subject),
        "imports": contact_import.rows_of(conn, account_id=subject.account_id, contact_ids=subject.contact_ids),
    }
    text = _dumps(head)
    yield text[:-1] + ',"messages":['
    subject.message_count = 0
    for thread in threads:
        after = None
        while True:
            batch = _message_page(conn, subject, thread["id"], after, page)
            if not batch:
                break
            yield ("," if subject.message_count else "") + ",".join(_dumps(m) for m in batch)
            subject.message_count += len(batch)
            if progress is not None:
                progress(len(batch))
            if len(batch) < page:
                break
            after = (batch[-1]["occurred_at"], batch[-1]["id"])
    yield f'],"message_count":{subject.message_count}}}'


def document(conn, subject: Subject) -> dict:
    """The whole document as a dict (small exports, tests)."""
    return json.loads("".join(chunks(conn, subject)))


def _contact(conn, subject: Subject, row: dict) -> dict:
    a, key = subject.account_id, subject.key_of(conn, row["data_key_id"])
    profile = key.decrypt_text(row["profile_enc"], field_aad("contacts", "profile", a, row["id"]))
    return {"id": row["id"], "name": key.decrypt_text(row["name_enc"], field_aad("contacts", "name", a, row["id"])),
            "language": row["language"], "profile": json.loads(profile) if profile else {},
            "tags": contact_tags.own_tags(conn, account_id=a, contact_id=row["id"]),
            "merged_into": row["merged_into"], "created_at": row["created_at"], "updated_at": row["updated_at"]}


def _identities(conn, subject: Subject) -> list[dict]:
    a = subject.account_id
    rows = conn.execute(
        "SELECT i.id, i.contact_id, i.kind, i.address_enc, i.created_at, c.data_key_id FROM contact_identities i "
        "JOIN contacts c ON c.account_id = i.account_id AND c.id = i.contact_id "
        "WHERE i.account_id = %s AND i.contact_id = ANY(%s) ORDER BY i.created_at, i.id",
        (a, subject.contact_ids)).fetchall()
    return [{"id": r["id"], "contact_id": r["contact_id"], "kind": r["kind"],
             "address": subject.key_of(conn, r["data_key_id"]).decrypt_text(
                 r["address_enc"], field_aad("contact_identities", "address", a, r["id"])),
             "created_at": r["created_at"]} for r in rows]


def _merges(conn, subject: Subject) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT id, survivor_id, merged_id, actor, reason, merged_at, unmerged_at, unmerged_by FROM contact_merges "
        "WHERE account_id = %s AND (survivor_id = ANY(%s) OR merged_id = ANY(%s)) ORDER BY merged_at, id",
        (subject.account_id, subject.contact_ids, subject.contact_ids)).fetchall()]


def _threads(conn, subject: Subject) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT t.id, t.contact_id, t.channel_id, ch.kind AS channel_kind, ch.name AS channel_name, "
        "ch.external_id AS channel_external_id, t.status, t.last_inbound_at, t.last_outbound_at, "
        "t.last_activity_at, t.reopened_at, t.created_at FROM threads t "
        "JOIN channels ch ON ch.account_id = t.account_id AND ch.id = t.channel_id "
        "WHERE t.account_id = %s AND t.contact_id = ANY(%s) ORDER BY t.created_at, t.id",
        (subject.account_id, subject.contact_ids)).fetchall()]


def _decrypt_any(key: DataKey, token, aad: bytes):
    """A field decrypted, as JSON when it is JSON; a field that does not decrypt says so instead of failing
    the whole export."""
    try:
        text = key.decrypt_text(token, aad)
    except DecryptionError as exc:
        return {"unreadable": str(exc)}
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _consents(conn, subject: Subject) -> dict:
    """History and current state, read from the ledger directly. Columns are taken as they come (the ledger
    grows columns of its own): encrypted ``<name>_enc`` ones are decrypted into ``<name>`` under the row's
    data key (its ``data_key_id`` or else the contact's), blind indexes and other bytes are left out."""
    a = subject.account_id
    contact_keys = {r["id"]: r["data_key_id"] for r in [subject.contact, *subject.merged]}
    rows = conn.execute("SELECT * FROM consent_events WHERE account_id = %s AND contact_id = ANY(%s) "
                        "ORDER BY occurred_at, id", (a, subject.contact_ids)).fetchall()
    history = []
    for row in rows:
        event = {}
        for name, value in row.items():
            if name == "account_id":
                continue
            if name.endswith("_enc"):
                column = name[:-4]
                event[column] = None if value is None else _decrypt_any(
                    subject.key_of(conn, row.get("data_key_id") or contact_keys[row["contact_id"]]), value,
                    field_aad("consent_events", column, a, row["id"]))
            elif not isinstance(value, bytes | memoryview):
                event[name] = value
        history.append(event)
    latest: dict[tuple, dict] = {}
    for event in history:   # oldest first, so the last one per channel and purpose is the state
        latest[(event.get("channel_kind"), event.get("purpose"))] = event
    current = [{"channel_kind": e.get("channel_kind"), "purpose": e.get("purpose"), "state": e.get("action"),
                "since": e.get("occurred_at"), "source": e.get("source"), "event_id": e.get("id")}
               for e in latest.values()]
    return {"current": current, "history": history}


def _campaigns(conn, subject: Subject) -> list[dict]:
    """Every campaign that included the contact, and what happened to them in it."""
    return [dict(r) for r in conn.execute(
        "SELECT c.id AS campaign_id, c.name, c.purpose, c.state AS campaign_state, r.contact_id, r.state, "
        "r.skip_reason, r.message_id, r.queued_at, r.replied_at FROM campaign_recipients r JOIN campaigns c "
        "ON c.account_id = r.account_id AND c.id = r.campaign_id WHERE r.account_id = %s AND r.contact_id = ANY(%s) "
        "ORDER BY c.created_at, c.id", (subject.account_id, subject.contact_ids)).fetchall()]


def _notices(conn, subject: Subject) -> list[dict]:
    a = subject.account_id
    rows = conn.execute(
        "SELECT id, channel_id, topic, data_key_id, detail_enc, contact_id, occurred_at, created_at FROM notices "
        "WHERE account_id = %s AND contact_id = ANY(%s) ORDER BY created_at, id", (a, subject.contact_ids)).fetchall()
    return [{"id": r["id"], "channel_id": r["channel_id"], "topic": r["topic"], "contact_id": r["contact_id"],
             "detail": _decrypt_any(subject.key_of(conn, r["data_key_id"]), r["detail_enc"],
                                    field_aad("notices", "detail", a, r["id"])),
             "occurred_at": r["occurred_at"], "created_at": r["created_at"]} for r in rows]


_MESSAGE_COLUMNS = (messages.MESSAGE_COLUMNS +
                    ", m.contact_id, m.channel_id, m.purpose, m.attempts, m.sent_at, m.last_error")


def _message_page(conn, subject: Subject, thread_id, after, page: int) -> list[dict]:
    a = subject.account_id
    base = (f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN contacts c ON c.account_id = m.account_id "
            "AND c.id = m.contact_id WHERE m.account_id = %s AND m.thread_id = %s ")
    if after is None:
        rows = conn.execute(base + "ORDER BY m.occurred_at, m.id LIMIT %s", (a, thread_id, page)).fetchall()
    else:
        rows = conn.execute(base + "AND (m.occurred_at, m.id) > (%s, %s) ORDER BY m.occurred_at, m.id LIMIT %s",
                            (a, thread_id, *after, page)).fetchall()
    out = []
    for r in rows:
        m = messages.decrypt_message(conn, a, r, key=subject.key_of(conn, r["data_key_id"]))
        m.update(contact_id=r["contact_id"], channel_id=r["channel_id"], purpose=r["purpose"],
                 attempts=r["attempts"], sent_at=r["sent_at"], last_error=r["last_error"])
        out.append(m)
    # Statuses and media of the whole page in two statements, ordered as the read API orders them.
    messages._attach_history(conn, a, out)
    _attach_media_sources(conn, subject, out)
    return out


def _attach_media_sources(conn, subject: Subject, page: list[dict]) -> None:
    """What the provider announced about each file (its id or URL, filename, caption), decrypted."""
    media_ids = [f["id"] for m in page for f in m["media"]]
    if not media_ids:
        return
    a = subject.account_id
    sources = {r["id"]: _decrypt_any(subject.key_of(conn, r["data_key_id"]), r["source_enc"],
                                     field_aad("media", "source", a, r["id"])) for r in conn.execute(
        "SELECT md.id, md.source_enc, c.data_key_id FROM media md "
        "JOIN contacts c ON c.account_id = md.account_id AND c.id = md.contact_id "
        "WHERE md.account_id = %s AND md.id = ANY(%s)", (a, media_ids)).fetchall()}
    for m in page:
        for f in m["media"]:
            f["source"] = sources.get(f["id"])


def begin_snapshot(conn) -> None:
    """Read the whole export from one snapshot (a long export runs while messages keep arriving); must be
    the transaction's first statement."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
