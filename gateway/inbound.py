"""Raw inbound events: stored (encrypted, deduplicated) before the ack, then applied by a worker.

Storing goes through a per-process group committer (``store``): the request
thread encrypts its raw body, hands the row over and waits for the commit that
holds it. After that commit one job per account and batch is enqueued, carrying
event ids only. Workers apply events with ``process_events``; the sweeper
re-enqueues any event still unprocessed after a grace period.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass
from collections import defaultdict

from gateway import contacts, db, jobs, keystore, media, messages, normalise, outbound
from gateway.campaigns import store as campaign_store
from gateway.crypto import field_aad
from gateway.db import uuid7
from gateway.group_commit import GroupCommitter
from gateway.providers import IdentityChange, Notice, StatusUpdate

log = logging.getLogger("gateway.inbound")
PROCESS_JOB = "gateway.inbound.process_event"
PROCESS_BATCH_JOB = "gateway.inbound.process_events"
MAX_JOB_BATCH = 200


@dataclass(frozen=True)
class RawEvent:
    account_id: object
    channel_id: object
    provider: str
    dedupe_key: str
    event_id: object
    data_key_id: object
    raw_enc: bytes


# --- storing -----------------------------------------------------------------------------------

_account_keys: dict[str, tuple[float, object]] = {}
_account_keys_lock = threading.Lock()


def _account_key(account_id):
    """The account's data key, cached: the receiver must not query for it on every request."""
    hit = _account_keys.get(str(account_id))
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    with db.connection() as conn:
        key = keystore.account_key(conn, account_id=account_id)
    with _account_keys_lock:
        _account_keys[str(account_id)] = (time.monotonic() + 60.0, key)
    return key


def prepare(*, account_id, channel_id, provider: str, dedupe_key: str, raw: bytes, conn=None) -> RawEvent:
    key = keystore.account_key(conn, account_id=account_id) if conn is not None else _account_key(account_id)
    event_id = uuid7()
    return RawEvent(account_id, channel_id, provider, dedupe_key, event_id, key.id,
                    key.encrypt(raw, field_aad("inbound_events", "raw", account_id, event_id)))


def write_events(conn, events: list[RawEvent]) -> list[tuple[object, bool]]:
    """Insert events in one statement; (event id, created) each. A redelivery returns the first id."""
    if not events:
        return []
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(events))
    params = [p for e in events for p in (e.account_id, e.event_id, e.channel_id, e.provider, e.dedupe_key,
                                          e.data_key_id, e.raw_enc)]
    inserted = {r["id"] for r in conn.execute(
        "INSERT INTO inbound_events (account_id, id, channel_id, provider, dedupe_key, data_key_id, raw_enc) "
        f"VALUES {values} ON CONFLICT (account_id, provider, dedupe_key) DO NOTHING RETURNING id",
        params).fetchall()}
    results = []
    for e in events:
        if e.event_id in inserted:
            results.append((e.event_id, True))
            continue
        first = conn.execute(
            "SELECT id FROM inbound_events WHERE account_id = %s AND provider = %s AND dedupe_key = %s",
            (e.account_id, e.provider, e.dedupe_key)).fetchone()
        results.append((first["id"], False))
    return results


def store_event(conn, *, account_id, channel_id, provider: str, dedupe_key: str, raw: bytes):
    """Store one event in the caller's transaction; (event_id, created)."""
    event = prepare(account_id=account_id, channel_id=channel_id, provider=provider, dedupe_key=dedupe_key, raw=raw,
                    conn=conn)
    return write_events(conn, [event])[0]


_writer_conn = None   # used by the group committer's one leader at a time
_writer_pid = None


def _write_committed(events: list[RawEvent]):
    """The batch on the committer's own connection: one statement, committed by itself (autocommit),
    so a batch costs one round trip. Only one leader writes at a time, so the connection is never shared.
    A connection found broken (database restarted) is replaced once; the insert is idempotent."""
    import psycopg
    for attempt in (1, 2):
        try:
            return write_events(_writer(), events)
        except psycopg.OperationalError as exc:
            _writer().close()
            if attempt == 2:
                raise db.DatabaseUnavailable("database connection failed") from exc


def _writer():
    global _writer_conn, _writer_pid
    if _writer_conn is None or _writer_conn.closed or _writer_pid != os.getpid():
        _writer_conn = db.dedicated()   # a forked child never reuses its parent's socket
        _writer_conn.autocommit = True
        _writer_pid = os.getpid()
    return _writer_conn


def _enqueue_created(events: list[RawEvent], results) -> None:
    by_account = defaultdict(list)
    for event, (event_id, created) in zip(events, results):
        if created:
            by_account[event.account_id].append(event_id)
    for account_id, ids in by_account.items():
        enqueue_batch(account_id, ids)


_committer = GroupCommitter(_write_committed, _enqueue_created)
# A gracefully stopping web process hands its last jobs to Redis; a killed one leaves them to the sweeper.
atexit.register(_committer.flush, 2.0)


def store(event: RawEvent, timeout: float = 10.0) -> tuple[object, bool]:
    """Store through the group committer; returns once the row is committed."""
    return _committer.submit(event, timeout=timeout)


def flush_enqueues(timeout: float = 10.0) -> bool:
    """Wait until the jobs for every stored event are enqueued (tests, graceful shutdown)."""
    return _committer.flush(timeout)


def committer_stats() -> dict:
    return {"batches": _committer.batches, "events": _committer.items}


def enqueue_processing(account_id, event_id) -> bool:
    return jobs.enqueue("inbound", PROCESS_JOB, account_id, event_id, kind="inbound")


def enqueue_batch(account_id, event_ids: list) -> bool:
    ok = True
    for start in range(0, len(event_ids), MAX_JOB_BATCH):
        chunk = [str(i) for i in event_ids[start:start + MAX_JOB_BATCH]]
        ok = jobs.enqueue_many("inbound", PROCESS_BATCH_JOB, account_id, chunk, kind="inbound") and ok
    return ok


# --- applying ----------------------------------------------------------------------------------

def process_event(account_id: str, event_id: str) -> str:
    """RQ job: apply one stored event (the sweeper's unit). Safe to run twice."""
    return _process(account_id, [event_id]).get(str(event_id), "skipped")


def process_events(account_id: str, event_ids: list[str]) -> int:
    """RQ job: apply stored events in arrival order, each in its own savepoint; returns how many were applied.

    Rows are claimed with SKIP LOCKED, so a duplicate job (the sweeper's) and
    this one never apply the same event twice; a processed event is skipped.
    """
    return sum(1 for outcome in _process(account_id, event_ids).values() if outcome == "processed")


_CLAIM = ("SELECT e.id, e.provider, e.data_key_id, e.raw_enc, e.channel_id, c.kind, c.external_id, c.group_id, "
          "c.settings FROM inbound_events e JOIN channels c ON c.account_id = e.account_id AND c.id = e.channel_id "
          "WHERE e.account_id = %s AND e.id = ANY(%s) AND e.processed_at IS NULL "
          "ORDER BY e.received_at, e.id FOR UPDATE OF e SKIP LOCKED")


def _process(account_id: str, event_ids: list[str]) -> dict[str, str]:
    """Apply a batch in one transaction. Optimistic: no savepoint per event; if any event fails, the batch
    is rolled back and applied again with a savepoint per event, so one bad event costs only itself."""
    ids = list(event_ids)
    with db.connection() as conn:
        try:
            done = _apply_rows(conn, account_id, conn.execute(_CLAIM, (account_id, ids)).fetchall(), isolate=False)
        except Exception:
            conn.rollback()
            done = _apply_rows(conn, account_id, conn.execute(_CLAIM, (account_id, ids)).fetchall(), isolate=True)
        outcomes, finished, downloads, subjects, sends, replies = done
        _finish(conn, account_id, finished)
        _link_contacts(conn, account_id, subjects)
        if replies and campaign_store.awaiting_replies(conn, account_id):
            campaign_store.note_replies(conn, account_id=account_id, replies=replies)
    media.enqueue_downloads(account_id, downloads)
    if sends:
        # Keyword replies (gateway/keywords.py), queued in the transaction that just committed. Flushed
        # here: a forking worker's job process exits right after this; the sweeper covers a crash.
        for message_id in sends:
            outbound.enqueue(account_id, message_id)
        outbound.flush_enqueues(timeout=5.0)
    return outcomes


def _apply_rows(conn, account_id, rows, *, isolate: bool):
    from webhooks import registry  # imported here: providers import the core, not the reverse

    outcomes: dict[str, str] = {}
    finished: list[tuple] = []     # (event id, error, review reasons)
    downloads: list = []
    sends: list = []               # keyword replies queued by normalise, enqueued after commit
    subjects: list[tuple] = []     # whom each applied event named: see _link_contacts
    replies: list[tuple] = []      # customers who wrote: credited to the campaign messages they got
    for row in rows:
        provider = registry.get(row["provider"])
        if provider is None:
            # Kept, not dropped: a provider installed later can reprocess it.
            finished.append((row["id"], f"no provider '{row['provider']}' is installed", ["no-provider"]))
            outcomes[str(row["id"])] = "unsupported"
            continue
        if not isolate:
            outcome, named, raw = _apply_one(conn, account_id, row, provider)
        else:
            try:
                with conn.transaction():
                    outcome, named, raw = _apply_one(conn, account_id, row, provider)
            except Exception as exc:
                # The savepoint rolled back; count the attempt so the sweeper stops after MAX_ATTEMPTS.
                log.warning("inbound event failed", extra={"error": type(exc).__name__}, exc_info=True)
                conn.execute("UPDATE inbound_events SET attempts = attempts + 1, last_error = %s "
                             "WHERE account_id = %s AND id = %s", (type(exc).__name__, account_id, row["id"]))
                outcomes[str(row["id"])] = "failed"
                continue
        finished.append((row["id"], None, outcome.review))
        downloads += outcome.media_ids
        sends += outcome.send_ids
        replies += outcome.replies
        subjects += [(row["id"], row["channel_id"], kind, address, message_id, raw)
                     for kind, address, message_id in named]
        subjects += [(row["id"], row["channel_id"], "contact_id", contact_id, None, raw)
                     for contact_id in outcome.contact_ids]
        outcomes[str(row["id"])] = "processed"
    return outcomes, finished, downloads, subjects, sends, replies


def _apply_one(conn, account_id, row, provider):
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    raw = key.decrypt(bytes(row["raw_enc"]), field_aad("inbound_events", "raw", account_id, row["id"]))
    channel = {"id": row["channel_id"], "kind": row["kind"], "external_id": row["external_id"],
               "group_id": row["group_id"], "settings": row["settings"]}
    parsed = provider.parse(raw, {})
    return normalise.apply_all(conn, account_id, channel, parsed), _subjects(parsed), raw


def _subjects(parsed: list) -> list[tuple[str, str, str | None]]:
    """(identity kind, address, status's provider message id) of every customer the events name beside their
    messages (normalise reports those contacts itself); a status that names nobody counts by its message id
    (kind 'provider_message_id')."""
    out: list[tuple[str, str, str | None]] = []
    for ev in parsed:
        if isinstance(ev, StatusUpdate):
            if ev.recipient and ev.recipient_kind:
                out.append((ev.recipient_kind, ev.recipient, ev.provider_message_id))
            elif ev.provider_message_id:
                out.append(("provider_message_id", ev.provider_message_id, ev.provider_message_id))
        elif isinstance(ev, Notice) and ev.subject is not None:
            out.append((*ev.subject, None))
        elif isinstance(ev, IdentityChange):
            out.append((ev.kind, ev.new, None))   # applied: the identity now answers to the new address
    return out


def _link_contacts(conn, account_id, subjects: list[tuple]) -> None:
    """Tie each applied raw event to the contacts it named, so that erasing a contact reaches its raw
    webhooks, which were stored under the account's key before anyone knew whose they were. An event that
    concerns one contact (nearly all) is re-encrypted under that contact's key, so destroying the key makes
    every copy of it unreadable too; one naming several stays under the account's key and erasure wipes
    its body (``contacts.wipe_raw_events``). A status still waiting for its message (``pending_statuses``)
    is tied to the contact too, so erasure finds it. Subjects: (event id, channel id, identity kind,
    address, the status's provider message id or None, raw body); kind 'contact_id' carries a contact
    normalise resolved already. A few statements per batch; an address nobody owns links nothing."""
    if not subjects:
        return
    event_ids, channel_ids, kinds, bidxs, known_ids, raws = [], [], [], [], [], {}
    statuses = []   # (event id, channel id, provider message id)
    for event_id, channel_id, kind, address, message_id, raw in subjects:
        if message_id is not None:
            statuses.append((event_id, channel_id, message_id))
        if kind == "contact_id":     # normalise resolved it already: nothing to look up
            bidx, known = None, address
        elif kind == "provider_message_id":
            bidx, known = messages.provider_id_bidx(account_id, address), None
        else:
            known = None
            bidx = contacts._bidx(account_id, kind, contacts.lookup_address(kind, address))
        event_ids.append(event_id)
        known_ids.append(known)
        channel_ids.append(channel_id)
        kinds.append(kind)
        bidxs.append(bidx)
        raws[event_id] = raw
    linked = conn.execute(
        "WITH l AS (INSERT INTO inbound_event_contacts (account_id, contact_id, event_id) "
        "SELECT DISTINCT %(a)s::uuid, x.contact_id, v.event_id "
        "FROM unnest(%(e)s::uuid[], %(ch)s::uuid[], %(k)s::text[], %(b)s::bytea[], %(c)s::uuid[]) "
        "AS v(event_id, channel_id, kind, bidx, contact_id) "
        "CROSS JOIN LATERAL (SELECT v.contact_id WHERE v.kind = 'contact_id' "
        "UNION ALL SELECT i.contact_id FROM contact_identities i WHERE i.account_id = %(a)s "
        "AND i.kind = v.kind AND i.address_bidx = v.bidx "
        "UNION ALL SELECT m.contact_id FROM messages m WHERE v.kind = 'provider_message_id' "
        "AND m.account_id = %(a)s AND m.channel_id = v.channel_id AND m.provider_id_bidx = v.bidx) x "
        "ON CONFLICT DO NOTHING RETURNING contact_id, event_id) "
        "SELECT l.event_id, l.contact_id, c.data_key_id FROM l "
        "JOIN contacts c ON c.account_id = %(a)s AND c.id = l.contact_id",
        {"a": account_id, "e": event_ids, "ch": channel_ids, "k": kinds, "b": bidxs, "c": known_ids}).fetchall()
    by_event: dict = {}
    for r in linked:
        by_event.setdefault(r["event_id"], []).append(r)
    ids, keys, encs = [], [], []
    for event_id, found in by_event.items():
        if len(found) != 1:
            continue
        key = keystore.load_key(conn, account_id=account_id, key_id=found[0]["data_key_id"])
        ids.append(event_id)
        keys.append(key.id)
        encs.append(key.encrypt(raws[event_id], field_aad("inbound_events", "raw", account_id, event_id)))
    if ids:
        conn.execute(
            "UPDATE inbound_events e SET data_key_id = v.key_id, raw_enc = v.raw_enc "
            "FROM unnest(%s::uuid[], %s::uuid[], %s::bytea[]) AS v(id, key_id, raw_enc) "
            "WHERE e.account_id = %s AND e.id = v.id", (ids, keys, encs, account_id))
    waiting = [(channel_id, messages.provider_id_bidx(account_id, message_id), by_event[event_id][0]["contact_id"])
               for event_id, channel_id, message_id in statuses if len(by_event.get(event_id, ())) == 1]
    if waiting:
        channels_, pids, owners = zip(*waiting)
        conn.execute(
            "UPDATE pending_statuses p SET contact_id = v.contact_id "
            "FROM unnest(%s::uuid[], %s::bytea[], %s::uuid[]) AS v(channel_id, bidx, contact_id) "
            "WHERE p.account_id = %s AND p.channel_id = v.channel_id AND p.provider_id_bidx = v.bidx "
            "AND p.contact_id IS NULL", (list(channels_), list(pids), list(owners), account_id))

def _finish(conn, account_id, finished: list[tuple]) -> None:
    """Mark applied events processed in one statement (review reasons travel newline-joined)."""
    if not finished:
        return
    ids, errors, reviews = zip(*finished)
    conn.execute(
        "UPDATE inbound_events e SET processed_at = now(), attempts = e.attempts + 1, last_error = v.error, "
        "review_reasons = CASE WHEN v.review = '' THEN NULL ELSE string_to_array(v.review, E'\\n') END "
        "FROM unnest(%s::uuid[], %s::text[], %s::text[]) AS v(id, error, review) "
        "WHERE e.account_id = %s AND e.id = v.id",
        (list(ids), list(errors), ["\n".join(sorted(set(r or []))) for r in reviews], account_id))
