"""Channels: one business number or page per row, with encrypted credentials."""
from __future__ import annotations

import json

from psycopg.types.json import Jsonb

from gateway import keystore
from gateway.accounts import audit
from gateway.crypto import field_aad
from gateway.db import uuid7

KINDS = ("whatsapp", "messenger", "instagram", "twilio", "sandbox")


def create_channel(conn, *, account_id, kind: str, name: str, external_id: str,
                   credentials: dict | None = None, settings: dict | None = None, actor: str) -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown channel kind {kind!r}; choose from {', '.join(KINDS)}")
    key = keystore.account_key(conn, account_id=account_id)
    channel_id = uuid7()
    creds = None
    if credentials:
        creds = key.encrypt(json.dumps(credentials), field_aad("channels", "credentials", account_id, channel_id))
    row = conn.execute(
        "INSERT INTO channels (account_id, id, kind, name, external_id, data_key_id, credentials_enc, settings) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "RETURNING id, kind, name, external_id, settings, status, created_at",
        (account_id, channel_id, kind, name, external_id, key.id, creds, Jsonb(settings or {}))).fetchone()
    audit(conn, account_id=account_id, actor=actor, action="channel.created",
          target_type="channel", target_id=channel_id, detail={"kind": kind})
    return row


def get_channel(conn, *, account_id, channel_id) -> dict | None:
    return conn.execute(
        "SELECT id, kind, name, external_id, settings, status, created_at FROM channels "
        "WHERE account_id = %s AND id = %s", (account_id, channel_id)).fetchone()


def credentials(conn, *, account_id, channel_id) -> dict:
    row = conn.execute("SELECT data_key_id, credentials_enc FROM channels WHERE account_id = %s AND id = %s",
                       (account_id, channel_id)).fetchone()
    if row is None or row["credentials_enc"] is None:
        return {}
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    return json.loads(key.decrypt_text(row["credentials_enc"],
                                       field_aad("channels", "credentials", account_id, channel_id)))
