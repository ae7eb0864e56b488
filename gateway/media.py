"""Inbound media: announced with its message, downloaded by a worker, stored under the contact's key.

A download is claimed by pushing ``next_attempt_at`` forward (a lease), so a
job and the sweeper never fetch the same file at once, and the network call
runs outside any transaction. Failures that can pass (timeouts, 429, 5xx) are
retried with backoff; the rest fail at once with a reason that names the fix.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os

from gateway import channels, db, jobs, keystore
from gateway.crypto import field_aad
from gateway.db import uuid7
from gateway.providers import Media, MediaError

log = logging.getLogger("gateway.media")
DOWNLOAD_JOB = "gateway.media.download"
MAX_ATTEMPTS = 8
LEASE_S = 300
MAX_BYTES = int(os.environ.get("GATEWAY_MAX_MEDIA_BYTES", str(100 * 1024 * 1024)))


def announce(conn, *, account_id, message_id, contact_id, channel_id, position: int, item: Media):
    """Record an attachment to download; returns its id (enqueue the download after commit)."""
    media_id = uuid7()
    key = _contact_key(conn, account_id, contact_id)
    source = {k: v for k, v in dataclasses.asdict(item).items() if v is not None}
    conn.execute(
        "INSERT INTO media (account_id, id, message_id, contact_id, channel_id, position, kind, mime_type, "
        "source_enc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (account_id, media_id, message_id, contact_id, channel_id, position, item.kind, item.mime_type,
         key.encrypt(json.dumps(source), field_aad("media", "source", account_id, media_id))))
    return media_id


def _contact_key(conn, account_id, contact_id):
    row = conn.execute("SELECT data_key_id FROM contacts WHERE account_id = %s AND id = %s",
                       (account_id, contact_id)).fetchone()
    return keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])


def enqueue_downloads(account_id, media_ids) -> None:
    for media_id in media_ids:
        jobs.enqueue("default", DOWNLOAD_JOB, account_id, media_id, kind="media")


def _backoff_s(attempts: int) -> int:
    return min(3600, 30 * 2 ** max(0, attempts - 1))


def download(account_id: str, media_id: str) -> str:
    """RQ job: fetch one attachment through its channel's provider and store it encrypted."""
    from webhooks import registry

    with db.connection() as conn:
        row = conn.execute(
            "UPDATE media SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => %s) "
            "WHERE account_id = %s AND id = %s AND state = 'pending' AND next_attempt_at <= now() "
            "RETURNING id, contact_id, channel_id, source_enc, attempts, mime_type",
            (LEASE_S, account_id, media_id)).fetchone()
        if row is None:
            return "skipped"
        key = _contact_key(conn, account_id, row["contact_id"])
        source = json.loads(key.decrypt_text(row["source_enc"], field_aad("media", "source", account_id, media_id)))
        channel = conn.execute("SELECT id, kind, external_id, settings FROM channels "
                               "WHERE account_id = %s AND id = %s", (account_id, row["channel_id"])).fetchone()
        creds = channels.load_credentials(conn, account_id=account_id, channel_id=row["channel_id"])
    provider = registry.get(channel["kind"])
    try:
        if provider is None or not hasattr(provider, "download"):
            raise MediaError(f"no installed provider downloads media for {channel['kind']} channels",
                             retryable=False)
        data, mime = provider.download(Media(**source), dict(channel), creds)
        if len(data) > MAX_BYTES:
            raise MediaError(f"the file is {len(data)} bytes, over GATEWAY_MAX_MEDIA_BYTES ({MAX_BYTES})",
                             retryable=False)
    except MediaError as exc:
        return _failed(account_id, media_id, row["attempts"], str(exc), exc.retryable)
    except Exception as exc:   # a provider bug must not lose the attachment: retry, and say what happened
        log.warning("media download raised", extra={"error": type(exc).__name__})
        return _failed(account_id, media_id, row["attempts"], f"unexpected {type(exc).__name__}", True)
    with db.connection() as conn:
        stored = conn.execute(
            "UPDATE media SET state = 'stored', content_enc = %s, size_bytes = %s, sha256 = %s, "
            "mime_type = coalesce(%s, mime_type), stored_at = now(), last_error = NULL "
            "WHERE account_id = %s AND id = %s AND state = 'pending' RETURNING id",
            (key.encrypt(data, field_aad("media", "content", account_id, media_id)), len(data),
             hashlib.sha256(data).hexdigest(), mime, account_id, media_id)).fetchone()
    return "stored" if stored else "skipped"


def _failed(account_id, media_id, attempts: int, reason: str, retryable: bool) -> str:
    final = not retryable or attempts >= MAX_ATTEMPTS
    with db.connection() as conn:
        conn.execute(
            "UPDATE media SET state = %s, last_error = %s, next_attempt_at = now() + make_interval(secs => %s) "
            "WHERE account_id = %s AND id = %s AND state = 'pending'",
            ("failed" if final else "pending", reason[:500], _backoff_s(attempts), account_id, media_id))
    return "failed" if final else "retry"


def retry(conn, *, account_id, media_id) -> dict | None:
    """Put a failed download back in line (after fixing the channel's credentials, say)."""
    return conn.execute(
        "UPDATE media SET state = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL "
        "WHERE account_id = %s AND id = %s AND state = 'failed' RETURNING id", (account_id, media_id)).fetchone()


def content(conn, *, account_id, media_id) -> dict | None:
    """The stored file and what is known about it, or its state when it is not stored (yet)."""
    row = conn.execute(
        "SELECT m.id, m.kind, m.mime_type, m.state, m.attempts, m.last_error, m.source_enc, m.content_enc, "
        "m.size_bytes, c.data_key_id FROM media m JOIN contacts c ON c.account_id = m.account_id "
        "AND c.id = m.contact_id WHERE m.account_id = %s AND m.id = %s", (account_id, media_id)).fetchone()
    if row is None:
        return None
    out = {k: row[k] for k in ("id", "kind", "mime_type", "state", "attempts", "last_error", "size_bytes")}
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    source = json.loads(key.decrypt_text(row["source_enc"], field_aad("media", "source", account_id, media_id)))
    out["filename"] = source.get("filename")
    out["data"] = (key.decrypt(bytes(row["content_enc"]), field_aad("media", "content", account_id, media_id))
                   if row["content_enc"] is not None else None)
    return out


# --- deletion (erasure, retention) ---------------------------------------------------------------------
# Files live only in PostgreSQL (``content_enc``, under the contact's key), so deleting the row deletes the
# bytes; there is no file store to clean. A download in flight for a deleted row finds nothing to update.

def delete_for_threads(conn, *, account_id, thread_ids: list) -> int:
    """Every attachment of these threads' messages (an erased contact's); returns how many."""
    if not thread_ids:
        return 0
    return conn.execute(
        "DELETE FROM media WHERE account_id = %(a)s AND message_id IN "
        "(SELECT id FROM messages WHERE account_id = %(a)s AND thread_id = ANY(%(t)s))",
        {"a": account_id, "t": thread_ids}).rowcount


def delete_for_messages(conn, *, account_id, message_ids: list) -> int:
    """The attachments of these messages (their content expired); returns how many."""
    if not message_ids:
        return 0
    return conn.execute("DELETE FROM media WHERE account_id = %s AND message_id = ANY(%s)",
                        (account_id, message_ids)).rowcount
