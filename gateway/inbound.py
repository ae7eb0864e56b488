"""Raw inbound events: stored (encrypted, deduplicated) before the ack, then applied by a worker."""
from __future__ import annotations

from gateway import contacts, db, jobs, keystore, messages
from gateway.crypto import field_aad
from gateway.db import uuid7
from gateway.providers import InboundMessage, StatusUpdate

PROCESS_JOB = "gateway.inbound.process_event"


def store_event(conn, *, account_id, channel_id, provider: str, dedupe_key: str, raw: bytes):
    """Insert the raw event once; returns (event_id, created). Redeliveries return the first id."""
    key = keystore.account_key(conn, account_id=account_id)
    event_id = uuid7()
    row = conn.execute(
        "INSERT INTO inbound_events (account_id, id, channel_id, provider, dedupe_key, data_key_id, raw_enc) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (account_id, provider, dedupe_key) DO NOTHING RETURNING id",
        (account_id, event_id, channel_id, provider, dedupe_key, key.id,
         key.encrypt(raw, field_aad("inbound_events", "raw", account_id, event_id)))).fetchone()
    if row is not None:
        return event_id, True
    existing = conn.execute(
        "SELECT id FROM inbound_events WHERE account_id = %s AND provider = %s AND dedupe_key = %s",
        (account_id, provider, dedupe_key)).fetchone()
    return existing["id"], False


def enqueue_processing(account_id, event_id) -> bool:
    return jobs.enqueue("inbound", PROCESS_JOB, account_id, event_id, kind="inbound")


def _apply_message(conn, account_id, channel, ev: InboundMessage) -> None:
    contact = contacts.find_by_identity(conn, account_id=account_id, kind=ev.sender_kind, address=ev.sender)
    if contact is None:
        contact = contacts.create_contact(conn, account_id=account_id, name=ev.sender_name,
                                          identities=[(ev.sender_kind, ev.sender)], actor="inbound")
    bidx = messages.provider_id_bidx(account_id, ev.provider_message_id)
    seen = conn.execute("SELECT 1 FROM messages WHERE account_id = %s AND channel_id = %s AND provider_id_bidx = %s",
                        (account_id, channel["id"], bidx)).fetchone()
    if seen is None:
        messages.record_message(conn, account_id=account_id, contact_id=contact["id"], channel_id=channel["id"],
                                direction="inbound", body=ev.text, kind=ev.kind,
                                provider_message_id=ev.provider_message_id)


def _apply_status(conn, account_id, channel, ev: StatusUpdate) -> None:
    bidx = messages.provider_id_bidx(account_id, ev.provider_message_id)
    rank = messages.STATUS_RANK[ev.status]
    conn.execute(
        "UPDATE messages SET status = %s, status_rank = %s, error_code = %s, error_reason = %s, updated_at = now() "
        "WHERE account_id = %s AND channel_id = %s AND provider_id_bidx = %s AND status_rank < %s",
        (ev.status, rank, ev.error_code, ev.error_reason, account_id, channel["id"], bidx, rank))


def process_event(account_id: str, event_id: str) -> str:
    """RQ job: apply one stored event. Safe to run twice: a processed event is skipped."""
    try:
        return _process(account_id, event_id)
    except Exception as exc:
        # The failed transaction rolled back; count the attempt on its own so the
        # sweeper can stop retrying an event that can never be applied.
        with db.connection() as conn:
            conn.execute("UPDATE inbound_events SET attempts = attempts + 1, last_error = %s "
                         "WHERE account_id = %s AND id = %s", (type(exc).__name__, account_id, event_id))
        raise


def _process(account_id: str, event_id: str) -> str:
    from webhooks import registry  # imported here: providers import the core, not the reverse

    with db.connection() as conn:
        row = conn.execute(
            "SELECT e.id, e.provider, e.data_key_id, e.raw_enc, e.channel_id, c.kind, c.external_id "
            "FROM inbound_events e JOIN channels c ON c.account_id = e.account_id AND c.id = e.channel_id "
            "WHERE e.account_id = %s AND e.id = %s AND e.processed_at IS NULL FOR UPDATE OF e SKIP LOCKED",
            (account_id, event_id)).fetchone()
        if row is None:
            return "skipped"
        provider = registry.get(row["provider"])
        if provider is None:
            # Kept, not dropped: a provider installed later can reprocess it.
            conn.execute("UPDATE inbound_events SET processed_at = now(), attempts = attempts + 1, last_error = %s "
                         "WHERE account_id = %s AND id = %s",
                         (f"no provider '{row['provider']}' is installed", account_id, event_id))
            return "unsupported"
        key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
        raw = key.decrypt(bytes(row["raw_enc"]), field_aad("inbound_events", "raw", account_id, row["id"]))
        channel = {"id": row["channel_id"], "kind": row["kind"], "external_id": row["external_id"]}
        for ev in provider.parse(raw, {}):
            if isinstance(ev, InboundMessage):
                _apply_message(conn, account_id, channel, ev)
            elif isinstance(ev, StatusUpdate):
                _apply_status(conn, account_id, channel, ev)
        conn.execute("UPDATE inbound_events SET processed_at = now(), attempts = attempts + 1, last_error = NULL "
                     "WHERE account_id = %s AND id = %s", (account_id, event_id))
    return "processed"
