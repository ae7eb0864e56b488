"""Threads, messages and their statuses: one thread per contact and channel, bodies under the contact's key.

Statuses only move forward (``STATUS_RANK``): a late 'delivered' after 'read'
is kept in the history but does not change the message; 'failed' is final and
keeps its error. A status for a message not recorded yet waits in
``pending_statuses`` and is applied when the message appears.
"""
from __future__ import annotations

import functools
import json
import uuid
from datetime import datetime, timedelta, timezone

from psycopg.types.json import Jsonb

from gateway import contacts, events, keystore, runtime
from gateway.crypto import field_aad
from gateway.db import uuid7
from gateway.provider_http import scrub

STATUS_RANK = {"received": 0, "queued": 0, "retry_scheduled": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4, "played": 5,
               "failed": 6}
WINDOW = timedelta(hours=24)   # WhatsApp's and Messenger's customer-service window


def provider_id_bidx(account_id, provider_message_id: str) -> bytes:
    return runtime.keyring().blind_indexer(account_id)("provider_message_id", provider_message_id)


def thread_for(conn, *, account_id, contact_id, channel_id) -> dict:
    """The contact's thread on this channel, created on first contact (race-safe: one per pair)."""
    row = conn.execute(
        "SELECT id, status FROM threads WHERE account_id = %s AND contact_id = %s AND channel_id = %s",
        (account_id, contact_id, channel_id)).fetchone()
    if row is not None:
        return row
    made = conn.execute(
        "INSERT INTO threads (account_id, id, contact_id, channel_id) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (account_id, contact_id, channel_id) DO NOTHING RETURNING id",
        (account_id, uuid7(), contact_id, channel_id)).fetchone()
    if made is not None:
        _thread_created(conn, account_id, [(made["id"], contact_id, channel_id)])
    return conn.execute(
        "SELECT id, status FROM threads WHERE account_id = %s AND contact_id = %s AND channel_id = %s",
        (account_id, contact_id, channel_id)).fetchone()


def threads_for_many(conn, *, account_id, pairs: list[tuple]) -> dict:
    """(contact id, channel id) → thread id for many pairs, creating the missing threads in one statement."""
    unique = list(dict.fromkeys(pairs))
    made = conn.execute(
        "INSERT INTO threads (account_id, id, contact_id, channel_id) SELECT %s, id, ct, ch "
        "FROM unnest(%b::uuid[], %b::uuid[], %b::uuid[]) AS q(id, ct, ch) "
        "ON CONFLICT (account_id, contact_id, channel_id) DO NOTHING RETURNING id, contact_id, channel_id",
        (account_id, [uuid7() for _ in unique], [p[0] for p in unique], [p[1] for p in unique])).fetchall()
    _thread_created(conn, account_id, [(r["id"], r["contact_id"], r["channel_id"]) for r in made])
    rows = conn.execute(
        "SELECT t.id, t.contact_id, t.channel_id FROM threads t JOIN unnest(%b::uuid[], %b::uuid[]) AS q(ct, ch) "
        "ON t.contact_id = q.ct AND t.channel_id = q.ch WHERE t.account_id = %s",
        ([p[0] for p in unique], [p[1] for p in unique], account_id)).fetchall()
    return {(r["contact_id"], r["channel_id"]): r["id"] for r in rows}


def _thread_created(conn, account_id, made: list[tuple]) -> None:
    """thread.created for threads this transaction inserted: (thread id, contact id, channel id) each."""
    events.emit_many(conn, account_id, [
        ("thread.created", {"thread_id": str(t), "contact_id": str(ct), "channel_id": str(ch)}, t)
        for t, ct, ch in made])


# message.received, written by record_message's own statement: on the inbound hot path an event per message
# costs no round trip, and it exists exactly when the message was new. Ids and facts only (gateway/events.py).
_RECEIVED = (
    ", e AS (INSERT INTO events (account_id, id, type, subject_id, data) "
    "SELECT %(a)s, %(eid)s, 'message.received', m.thread_id, jsonb_build_object('message_id', m.id, "
    "'thread_id', m.thread_id, 'contact_id', %(ct)s::uuid, 'channel_id', %(ch)s::uuid, "
    "'channel_kind', %(chk)s::text, 'kind', m.kind, 'received_at', m.occurred_at) FROM m)")


@functools.lru_cache(maxsize=8)
def _record_sql(has_provider_id: bool, is_reply: bool, announce: bool) -> str:
    """The one statement record_message runs. The look-ups by provider id are left out when there is no
    id to look up: with a NULL parameter a prepared plan cannot use the partial index and scans the
    account's messages instead."""
    reply_to = ("(SELECT id FROM messages WHERE account_id = %(a)s AND channel_id = %(ch)s "
                "AND provider_id_bidx = %(rb)s::bytea)" if is_reply else "NULL::uuid")
    sql = (
        "WITH m AS (INSERT INTO messages (account_id, id, thread_id, contact_id, channel_id, direction, kind, "
        "body_enc, content_enc, provider_id_enc, provider_id_bidx, reply_to_id, reply_to_bidx, occurred_at, "
        "status, status_rank, idempotency_key, purpose, request_hash) "
        "SELECT %(a)s, %(id)s, %(th)s, %(ct)s, %(ch)s, %(dir)s, %(kind)s, "
        f"%(body)s, %(content)s, %(pid)s, %(b)s, {reply_to}, %(rb)s::bytea, %(at)s, %(st)s, %(rank)s, "
        "%(idem)s, %(purpose)s, %(rhash)s ON CONFLICT (account_id, channel_id, provider_id_bidx) "
        "WHERE provider_id_bidx IS NOT NULL "
        "DO NOTHING RETURNING id, thread_id, direction, kind, status, occurred_at, created_at, updated_at), "
        "t AS (UPDATE threads SET last_activity_at = greatest(last_activity_at, %(at)s), "
        "last_inbound_at = CASE WHEN %(in)s THEN greatest(coalesce(last_inbound_at, %(at)s), %(at)s) "
        "ELSE last_inbound_at END, "
        "last_outbound_at = CASE WHEN %(in)s THEN last_outbound_at "
        "ELSE greatest(coalesce(last_outbound_at, %(at)s), %(at)s) END, "
        # A new customer message reopens a resolved or snoozed thread, and answers a pending one (the team
        # was waiting on the customer): all three are open again. It is unread until an agent reads it.
        "unread_count = unread_count + CASE WHEN %(in)s THEN 1 ELSE 0 END, "
        "reopened_at = CASE WHEN %(in)s AND status IN ('resolved', 'snoozed') THEN now() ELSE reopened_at END, "
        "status = CASE WHEN %(in)s AND status IN ('resolved', 'snoozed', 'pending') THEN 'open' ELSE status END "
        "FROM (SELECT status AS before FROM threads WHERE account_id = %(a)s AND id = %(th)s) o "
        "WHERE account_id = %(a)s AND id = %(th)s AND EXISTS (SELECT 1 FROM m) RETURNING o.before)")
    if announce:
        sql += _RECEIVED
    if not has_provider_id:
        return sql + " SELECT m.*, false AS has_pending, (SELECT before FROM t) AS status_before FROM m"
    return sql + (
        # Replies (reactions, edits) that arrived before the message they point at now find it.
        ", r AS (UPDATE messages SET reply_to_id = (SELECT id FROM m) WHERE account_id = %(a)s "
        "AND channel_id = %(ch)s AND reply_to_bidx = %(b)s::bytea AND reply_to_id IS NULL "
        "AND EXISTS (SELECT 1 FROM m)) "
        "SELECT m.*, EXISTS (SELECT 1 FROM pending_statuses WHERE account_id = %(a)s AND channel_id = %(ch)s "
        "AND provider_id_bidx = %(b)s::bytea) AS has_pending, (SELECT before FROM t) AS status_before FROM m")


def record_message(conn, *, account_id, contact_id, channel_id, direction: str, body: str | None,
                   kind: str = "text", status: str | None = None,
                   provider_message_id: str | None = None, idempotency_key: str | None = None,
                   content: dict | None = None, reply_to_provider_id: str | None = None,
                   occurred_at: datetime | None = None, thread_id=None, key=None, purpose: str | None = None,
                   request_hash: bytes | None = None, announce: str | None = None) -> dict | None:
    """Insert one message into the contact's thread; None when this provider id is already recorded.

    One statement does the insert, the thread's times and reopening, and links replies that arrived
    before this message; ``thread_id`` and ``key`` save their look-ups when the caller has them.
    ``announce``: the channel's kind, for a customer's message that goes out as message.received.
    """
    if thread_id is None:
        thread_id = thread_for(conn, account_id=account_id, contact_id=contact_id, channel_id=channel_id)["id"]
    if key is None:
        key = contacts.contact_key(conn, account_id=account_id, contact_id=contact_id)
    message_id = uuid7()
    status = status or ("received" if direction == "inbound" else "queued")
    now = datetime.now(timezone.utc)
    # A provider clock ahead of ours must not open the window into the future.
    occurred = min(occurred_at, now) if occurred_at is not None else now
    bidx = None if provider_message_id is None else provider_id_bidx(account_id, provider_message_id)
    reply_bidx = None if not reply_to_provider_id else provider_id_bidx(account_id, reply_to_provider_id)
    stored = dict(content or {})
    if reply_to_provider_id:
        stored["reply_to_provider_id"] = reply_to_provider_id

    def enc(column, value):
        return None if value is None else key.encrypt(value, field_aad("messages", column, account_id, message_id))

    announce = announce if direction == "inbound" else None
    row = conn.execute(_record_sql(bidx is not None, reply_bidx is not None, announce is not None), {
        "a": account_id, "id": message_id, "th": thread_id, "ct": contact_id, "ch": channel_id, "dir": direction,
        "kind": kind, "body": enc("body", body), "content": enc("content", json.dumps(stored)) if stored else None,
        "pid": enc("provider_id", provider_message_id), "b": bidx, "rb": reply_bidx, "at": occurred,
        "st": status, "rank": STATUS_RANK[status], "idem": idempotency_key,
        "in": direction == "inbound", "purpose": purpose, "rhash": request_hash, "chk": announce,
        "eid": uuid7() if announce else None}).fetchone()
    if row is None:
        return None
    if row.pop("has_pending"):
        _apply_pending(conn, account_id, channel_id, bidx, row["id"])
    return dict(row, body=body)


def record_outbound_many(conn, *, account_id, rows: list[dict], occurred_at: datetime) -> list[dict | None]:
    """Insert queued outbound messages (already past the send gate) and move their threads' times, in one
    statement whatever their number. Each row: contact_id, channel_id, thread_id, kind, body, stored (the
    content), key (the contact's data key), reply_to_id, reply_to_bidx, idempotency_key, request_hash,
    purpose. Returns, in order, each new message, or None where its Idempotency-Key was taken meanwhile."""
    if not rows:
        return []
    ids = [uuid7() for _ in rows]

    def enc(row, message_id, column, value):
        return row["key"].encrypt(value, field_aad("messages", column, account_id, message_id))

    made = {r["id"]: r for r in conn.execute(
        # The arrays that never hold NULL go in binary (%b): psycopg writes long uuid and bytea arrays as text
        # several times slower, and a campaign's batch has hundreds of each.
        "WITH v AS (SELECT * FROM unnest(%(id)b::uuid[], %(th)b::uuid[], %(ct)b::uuid[], %(ch)b::uuid[], "
        "%(kind)s::text[], %(body)b::bytea[], %(content)b::bytea[], %(rid)s::uuid[], %(rb)s::bytea[], "
        "%(idem)s::text[], %(purpose)s::text[], %(rhash)s::bytea[]) AS v(id, thread_id, contact_id, channel_id, "
        "kind, body_enc, content_enc, reply_to_id, reply_to_bidx, idempotency_key, purpose, request_hash)), "
        "m AS (INSERT INTO messages (account_id, id, thread_id, contact_id, channel_id, direction, kind, body_enc, "
        "content_enc, reply_to_id, reply_to_bidx, occurred_at, status, status_rank, idempotency_key, purpose, "
        "request_hash) SELECT %(a)s, id, thread_id, contact_id, channel_id, 'outbound', kind, body_enc, "
        "content_enc, reply_to_id, reply_to_bidx, %(at)s, 'queued', %(rank)s, idempotency_key, purpose, "
        "request_hash FROM v ON CONFLICT (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL "
        "DO NOTHING RETURNING id, thread_id, direction, kind, status, occurred_at, created_at, updated_at), "
        "t AS (UPDATE threads SET last_activity_at = greatest(last_activity_at, %(at)s), "
        "last_outbound_at = greatest(coalesce(last_outbound_at, %(at)s), %(at)s) "
        "WHERE account_id = %(a)s AND id IN (SELECT thread_id FROM m)) "
        "SELECT * FROM m",
        {"a": account_id, "id": ids, "th": [r["thread_id"] for r in rows], "ct": [r["contact_id"] for r in rows],
         "ch": [r["channel_id"] for r in rows], "kind": [r["kind"] for r in rows],
         "body": [enc(r, i, "body", r["body"]) for r, i in zip(rows, ids)],
         "content": [enc(r, i, "content", json.dumps(r["stored"])) for r, i in zip(rows, ids)],
         "rid": [r["reply_to_id"] for r in rows], "rb": [r["reply_to_bidx"] for r in rows],
         "idem": [r["idempotency_key"] for r in rows], "purpose": [r["purpose"] for r in rows],
         "rhash": [r["request_hash"] for r in rows], "at": occurred_at, "rank": STATUS_RANK["queued"]}).fetchall()}
    return [made.get(i) for i in ids]


# --- the provider's acceptance (message.sent) --------------------------------------------------------

_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def campaign_join(m: str, account: str) -> str:
    """SQL: ``cr.campaign_id`` of the campaign that sent message ``m`` (a row with id, idempotency_key), or NULL.
    A campaign's key is ``campaign:{campaign}:{contact}`` (campaigns/prepare.py), which makes the look-up one
    primary-key probe; the recipient's row must point at this very message, so a caller's own key shaped
    alike names no campaign. CASE keeps the casts from ever seeing another key."""
    shaped = f"{m}.idempotency_key ~ '^campaign:{_UUID}:{_UUID}$'"
    return (f"LEFT JOIN campaign_recipients cr ON cr.account_id = {account} "
            f"AND cr.campaign_id = CASE WHEN {shaped} THEN split_part({m}.idempotency_key, ':', 2)::uuid END "
            f"AND cr.contact_id = CASE WHEN {shaped} THEN split_part({m}.idempotency_key, ':', 3)::uuid END "
            f"AND cr.message_id = {m}.id")


def emit_sent(conn, *, account_id, rows: list[dict]) -> None:
    """message.sent, in one statement, for messages whose acceptance by the provider this transaction recorded:
    rows with id, thread_id, contact_id, channel_id, channel_kind, kind, automated and campaign_id. Without
    the provider's message id: a WhatsApp id encodes the recipient's phone number, and events outlive an
    erasure."""
    events.emit_many(conn, account_id, [("message.sent", {
        "message_id": str(m["id"]), "thread_id": str(m["thread_id"]), "contact_id": str(m["contact_id"]),
        "channel_id": str(m["channel_id"]), "channel_kind": m["channel_kind"], "kind": m["kind"],
        "automated": bool(m["automated"]),
        "campaign_id": None if m["campaign_id"] is None else str(m["campaign_id"])}, m["thread_id"]) for m in rows])


def emit_sent_by_id(conn, *, account_id, message_ids: list) -> None:
    """``emit_sent``, reading the rows back by id (the paths that learn of one acceptance at a time: a status
    webhook that proves the send, a reconciliation)."""
    emit_sent(conn, account_id=account_id, rows=conn.execute(
        "SELECT m.id, m.thread_id, m.contact_id, m.channel_id, ch.kind AS channel_kind, m.kind, m.automated, "
        "cr.campaign_id FROM messages m JOIN channels ch ON ch.account_id = m.account_id AND ch.id = m.channel_id "
        f"{campaign_join('m', 'm.account_id')} WHERE m.account_id = %s AND m.id = ANY(%s) ORDER BY m.id",
        (account_id, list(message_ids))).fetchall())


# --- statuses ----------------------------------------------------------------------------------

def apply_status(conn, *, account_id, channel_id, provider_message_id: str, status: str,
                 error_code: str | None = None, error_reason: str | None = None, detail: dict | None = None,
                 provider_ts: str | None = None, occurred_at: datetime | None = None) -> str:
    """Apply a provider status; 'applied', 'kept' (history only) or 'pending' (message not known yet)."""
    bidx = provider_id_bidx(account_id, provider_message_id)
    row = conn.execute("SELECT id FROM messages WHERE account_id = %s AND channel_id = %s AND provider_id_bidx = %s",
                       (account_id, channel_id, bidx)).fetchone()
    if row is None and (detail or {}).get("callback_data"):
        row = _adopt(conn, account_id, channel_id, detail["callback_data"], provider_message_id, bidx)
    if row is None:
        conn.execute(
            "INSERT INTO pending_statuses (account_id, id, channel_id, provider_id_bidx, status, error_code, "
            "error_reason, detail, provider_ts, occurred_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (account_id, uuid7(), channel_id, bidx, status, error_code, error_reason, Jsonb(_kept(detail)),
             provider_ts, occurred_at))
        return "pending"
    return _apply_to(conn, account_id, row["id"], status, error_code, error_reason, detail, provider_ts, occurred_at)


def _kept(detail: dict | None) -> dict:
    """A status's detail as stored in clear: without the customer's ids (phone, BSUID, username) that
    providers repeat in every status; the contact's identities hold them, encrypted."""
    return {k: v for k, v in (detail or {}).items() if not k.startswith("recipient_") or k == "recipient_type"}


def _adopt(conn, account_id, channel_id, callback_data: str, provider_message_id: str, bidx: bytes) -> dict | None:
    """A status that names our message id (WhatsApp's biz_opaque_callback_data, a Messenger echo's metadata)
    for a message that has no provider id yet - its send timed out, or the worker died mid-call: that is
    proof it reached the provider. The message takes the provider's id and counts as sent, at once, without
    waiting for the reconcile sweep and without a resend."""
    try:
        message_id = uuid.UUID(str(callback_data))
    except ValueError:
        return None
    found = conn.execute(
        "SELECT m.id, m.sent_at, c.data_key_id FROM messages m JOIN contacts c ON c.account_id = m.account_id "
        "AND c.id = m.contact_id WHERE m.account_id = %s AND m.id = %s AND m.channel_id = %s "
        "AND m.direction = 'outbound' AND m.provider_id_bidx IS NULL FOR UPDATE OF m",
        (account_id, message_id, channel_id)).fetchone()
    if found is None:
        return None
    key = keystore.load_key(conn, account_id=account_id, key_id=found["data_key_id"])
    conn.execute(
        "UPDATE messages SET provider_id_bidx = %s, provider_id_enc = %s, "
        "status = CASE WHEN status_rank >= 2 THEN status ELSE 'sent' END, status_rank = greatest(status_rank, 2), "
        "sent_at = coalesce(sent_at, now()), last_error = NULL, updated_at = now() "
        "WHERE account_id = %s AND id = %s",
        (bidx, key.encrypt(provider_message_id, field_aad("messages", "provider_id", account_id, message_id)),
         account_id, message_id))
    if found["sent_at"] is None:   # else the worker recorded the acceptance (and its event) already
        emit_sent_by_id(conn, account_id=account_id, message_ids=[message_id])
    return {"id": message_id}


def _apply_to(conn, account_id, message_id, status, error_code, error_reason, detail, provider_ts,
              occurred_at) -> str:
    event_detail = _kept(detail)
    if error_code or error_reason:
        event_detail.update(error_code=error_code, error_reason=error_reason)
    conn.execute(
        "INSERT INTO message_events (account_id, id, message_id, status, detail, provider_ts, occurred_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (account_id, message_id, status, (coalesce(provider_ts, ''))) DO NOTHING",
        (account_id, uuid7(), message_id, status, Jsonb(event_detail), provider_ts, occurred_at))
    rank = STATUS_RANK[status]
    moved = conn.execute(
        "UPDATE messages SET status = %s, status_rank = %s, updated_at = now(), "
        "error_code = CASE WHEN %s = 'failed' THEN %s ELSE error_code END, "
        "error_reason = CASE WHEN %s = 'failed' THEN %s ELSE error_reason END "
        "WHERE account_id = %s AND id = %s AND status_rank < %s RETURNING id, thread_id, contact_id, channel_id",
        (status, rank, status, error_code, status, error_reason, account_id, message_id, rank)).fetchone()
    if moved is None:
        return "kept"
    if status in REPORTED:
        failed = status == "failed"
        emit_status(conn, account_id=account_id, message=moved, status=status,
                    error_code=error_code if failed else None, reason=error_reason if failed else None, at=occurred_at)
    return "applied"


# The statuses message.status reports; 'sent' is message.sent's own event (the provider's acceptance).
REPORTED = frozenset({"delivered", "read", "played", "failed"})


def _status_data(message: dict, status: str, error_code, reason, at: datetime | None) -> dict:
    return {"message_id": str(message["id"]), "thread_id": str(message["thread_id"]),
            "contact_id": str(message["contact_id"]), "channel_id": str(message["channel_id"]), "status": status,
            "error_code": None if error_code is None else str(error_code),
            # A provider's words may quote the recipient's number (Twilio's ErrorMessage is passed on as given).
            "reason": None if reason is None else scrub(reason),
            "at": (at or datetime.now(timezone.utc)).isoformat()}


def emit_status(conn, *, account_id, message: dict, status: str, error_code=None, reason: str | None = None,
                at: datetime | None = None) -> None:
    """message.status for a status this transaction moved the message to (``message``: id, thread_id,
    contact_id, channel_id)."""
    events.emit(conn, account_id, "message.status", _status_data(message, status, error_code, reason, at),
                subject_id=message["thread_id"])


def _apply_pending(conn, account_id, channel_id, bidx: bytes, message_id) -> None:
    waiting = conn.execute(
        "DELETE FROM pending_statuses WHERE account_id = %s AND channel_id = %s AND provider_id_bidx = %s "
        "RETURNING status, error_code, error_reason, detail, provider_ts, occurred_at",
        (account_id, channel_id, bidx)).fetchall()
    for p in sorted(waiting, key=lambda p: STATUS_RANK[p["status"]]):
        _apply_to(conn, account_id, message_id, p["status"], p["error_code"], p["error_reason"], p["detail"],
                  p["provider_ts"], p["occurred_at"])


def apply_watermark(conn, *, account_id, channel_id, contact_id, status: str, watermark: datetime,
                    provider_ts: str | None = None) -> int:
    """Messenger's delivery/read watermark: every outbound message to the contact up to it moves on."""
    rank = STATUS_RANK[status]
    moved = conn.execute(
        "UPDATE messages SET status = %s, status_rank = %s, updated_at = now() "
        "WHERE account_id = %s AND channel_id = %s AND direction = 'outbound' "
        "AND contact_id = %s AND occurred_at <= %s AND status_rank < %s "
        "RETURNING id, thread_id, contact_id, channel_id",
        (status, rank, account_id, channel_id, contact_id, watermark, rank)).fetchall()
    if status in REPORTED:
        events.emit_many(conn, account_id, [("message.status", _status_data(m, status, None, None, watermark),
                                             m["thread_id"]) for m in moved])
    for m in moved:
        conn.execute(
            "INSERT INTO message_events (account_id, id, message_id, status, detail, provider_ts, occurred_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (account_id, message_id, status, (coalesce(provider_ts, ''))) DO NOTHING",
            (account_id, uuid7(), m["id"], status, Jsonb({"watermark": watermark.isoformat()}), provider_ts,
             watermark))
    return len(moved)


def mark_related(conn, *, account_id, channel_id, provider_message_id: str, event: str, by_message_id) -> None:
    """Note on a message that it was reacted to, edited or deleted (by a later message)."""
    row = conn.execute("SELECT id FROM messages WHERE account_id = %s AND channel_id = %s AND provider_id_bidx = %s",
                       (account_id, channel_id, provider_id_bidx(account_id, provider_message_id))).fetchone()
    if row is None:
        return
    conn.execute(
        "INSERT INTO message_events (account_id, id, message_id, status, detail, provider_ts) "
        "VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (account_id, message_id, status, (coalesce(provider_ts, ''))) DO NOTHING",
        (account_id, uuid7(), row["id"], event, Jsonb({"by_message_id": str(by_message_id)}), str(by_message_id)))


# --- reading -----------------------------------------------------------------------------------

def window(last_inbound_at: datetime | None, now: datetime | None = None) -> dict:
    """The 24-hour customer-service window as the API shows it."""
    if last_inbound_at is None:
        return {"open": False, "closes_at": None}
    closes = last_inbound_at + WINDOW
    return {"open": closes > (now or datetime.now(timezone.utc)), "closes_at": closes}


def decrypt_message(conn, account_id, row: dict, key=None) -> dict:
    if key is None:
        key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])

    def dec(column):
        return key.decrypt_text(row[f"{column}_enc"], field_aad("messages", column, account_id, row["id"]))

    content = dec("content")
    return {
        "id": row["id"], "thread_id": row["thread_id"], "direction": row["direction"], "kind": row["kind"],
        "text": dec("body"), "content": json.loads(content) if content else {},
        "provider_message_id": dec("provider_id"), "reply_to_id": row["reply_to_id"],
        "automated": row.get("automated", False),
        "status": row["status"], "error": ({"code": row["error_code"], "reason": row["error_reason"]}
                                           if row["error_code"] or row["error_reason"] else None),
        "occurred_at": row["occurred_at"], "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


MESSAGE_COLUMNS = ("m.id, m.thread_id, m.direction, m.kind, m.body_enc, m.content_enc, m.provider_id_enc, "
                   "m.reply_to_id, m.status, m.error_code, m.error_reason, m.occurred_at, m.created_at, "
                   "m.updated_at, m.automated, c.data_key_id")


def list_thread_messages(conn, *, account_id, thread_id, limit: int = 100, before=None, after=None,
                         latest: bool = False) -> list[dict]:
    """Messages in conversation order. ``before``/``after`` are (occurred_at, id) cursors:
    ``before`` (or ``latest``) pages back toward older messages, ``after`` forward toward newer ones."""
    base = (f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN contacts c "
            "ON c.account_id = m.account_id AND c.id = m.contact_id WHERE m.account_id = %s AND m.thread_id = %s ")
    if after is not None:
        rows = conn.execute(base + "AND (m.occurred_at, m.id) > (%s, %s) ORDER BY m.occurred_at, m.id LIMIT %s",
                            (account_id, thread_id, *after, limit)).fetchall()
    elif before is not None:
        rows = conn.execute(base + "AND (m.occurred_at, m.id) < (%s, %s) "
                            "ORDER BY m.occurred_at DESC, m.id DESC LIMIT %s",
                            (account_id, thread_id, *before, limit)).fetchall()[::-1]
    elif latest:
        rows = conn.execute(base + "ORDER BY m.occurred_at DESC, m.id DESC LIMIT %s",
                            (account_id, thread_id, limit)).fetchall()[::-1]
    else:
        rows = conn.execute(base + "ORDER BY m.occurred_at, m.id LIMIT %s", (account_id, thread_id, limit)).fetchall()
    out = [decrypt_message(conn, account_id, r) for r in rows]
    _attach_history(conn, account_id, out)
    return out


def _attach_history(conn, account_id, messages: list[dict]) -> None:
    if not messages:
        return
    ids = [m["id"] for m in messages]
    events = conn.execute(
        "SELECT message_id, status, detail, provider_ts, occurred_at, created_at FROM message_events "
        "WHERE account_id = %s AND message_id = ANY(%s) ORDER BY created_at, id", (account_id, ids)).fetchall()
    media = conn.execute(
        "SELECT id, message_id, kind, mime_type, state, attempts, last_error, size_bytes, sha256, stored_at "
        "FROM media WHERE account_id = %s AND message_id = ANY(%s) ORDER BY position", (account_id, ids)).fetchall()
    by_id = {m["id"]: m for m in messages}
    for m in messages:
        m["statuses"], m["media"] = [], []
    # Providers do not promise order (a 'read' can arrive before its 'delivered'): history reads in the
    # provider's time. Their clocks tell whole seconds, so within one second a status sorts by how far it got.
    events = sorted(events, key=lambda e: ((e["occurred_at"] or e["created_at"]).replace(microsecond=0),
                                           STATUS_RANK.get(e["status"], 0), e["created_at"]))
    for e in events:
        by_id[e["message_id"]]["statuses"].append(
            {"status": e["status"], "at": e["occurred_at"] or e["created_at"], "provider_ts": e["provider_ts"],
             "detail": e["detail"] or {}})
    for a in media:
        by_id[a["message_id"]]["media"].append(
            {"id": a["id"], "kind": a["kind"], "mime_type": a["mime_type"], "state": a["state"],
             "attempts": a["attempts"], "last_error": a["last_error"], "size_bytes": a["size_bytes"],
             "sha256": a["sha256"], "stored_at": a["stored_at"], "url": f"/v1/media/{a['id']}"})
