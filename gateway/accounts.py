"""Accounts (tenants), their API keys, and the audit log.

An API key reads ``gwk_<prefix>_<secret>``. Only the prefix (to find the row)
and a SHA-256 of the secret are stored: the secret has 256 bits of entropy, so
a slow password hash would add latency to every request and no safety.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from psycopg.types.json import Jsonb

from gateway.db import uuid7

SCOPES = (
    "messages:read", "messages:send", "contacts:read", "contacts:write", "contacts:erase",
    "templates:write", "campaigns:write", "webhooks:write", "admin",
)
KEY_PREFIX = "gwk_"
# last_used_at is a hint for operators; writing it on every request would turn
# each read into a write, so it is refreshed at most this often.
_LAST_USED_EVERY = timedelta(minutes=1)


class UnknownScope(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account, the key and what it may do."""
    account_id: object
    key_id: object
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def actor(self) -> str:
        return f"api_key:{self.key_id}"


def audit(conn, *, account_id, actor: str, action: str, target_type: str | None = None,
          target_id=None, detail: dict | None = None) -> None:
    conn.execute(
        "INSERT INTO audit_log (account_id, id, actor, action, target_type, target_id, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (account_id, uuid7(), actor, action, target_type,
         None if target_id is None else str(target_id), Jsonb(detail or {})))


_ACCOUNT = ("id, name, timezone, default_language, retention_message_days, retention_raw_event_days, "
            "report_fcr_days, report_sla_seconds, created_at")


def create_account(conn, *, name: str, timezone_name: str = "UTC", default_language: str | None = None,
                   actor: str = "cli") -> dict:
    account_id = uuid7()
    row = conn.execute(
        f"INSERT INTO accounts (id, name, timezone, default_language) VALUES (%s, %s, %s, %s) RETURNING {_ACCOUNT}",
        (account_id, name, timezone_name, default_language)).fetchone()
    audit(conn, account_id=account_id, actor=actor, action="account.created",
          target_type="account", target_id=account_id)
    return row


def get_account(conn, *, account_id) -> dict | None:
    return conn.execute(f"SELECT {_ACCOUNT} FROM accounts WHERE id = %s", (account_id,)).fetchone()


UPDATABLE = ("timezone", "default_language", "retention_message_days", "retention_raw_event_days",
             "report_fcr_days", "report_sla_seconds")


def update_account(conn, *, account_id, changes: dict, actor: str) -> dict:
    """Set the account's time zone, default language and/or retention periods (only the keys given)."""
    allowed = {k: v for k, v in changes.items() if k in UPDATABLE}
    if allowed:
        sets = ", ".join(f"{k} = %({k})s" for k in allowed)
        conn.execute(f"UPDATE accounts SET {sets} WHERE id = %(id)s", {**allowed, "id": account_id})
        audit(conn, account_id=account_id, actor=actor, action="account.updated", target_type="account",
              target_id=account_id, detail={"fields": sorted(allowed)})
    return get_account(conn, account_id=account_id)


def list_accounts(conn) -> list[dict]:
    return conn.execute(f"SELECT {_ACCOUNT} FROM accounts ORDER BY created_at").fetchall()


def find_account_by_name(conn, *, name: str) -> dict | None:
    return conn.execute(f"SELECT {_ACCOUNT} FROM accounts WHERE name = %s "
                        "ORDER BY created_at LIMIT 1", (name,)).fetchone()


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def create_api_key(conn, *, account_id, name: str, scopes, actor: str) -> tuple[dict, str]:
    """Create a key; returns (row without secret, the full key to show once)."""
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise UnknownScope(f"unknown scope(s) {', '.join(unknown) or '(none given)'}; "
                           f"choose from {', '.join(SCOPES)}")
    key_id = uuid7()
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = conn.execute(
        "INSERT INTO api_keys (account_id, id, prefix, secret_hash, name, scopes) "
        "VALUES (%s, %s, %s, %s, %s, %s) "
        "RETURNING id, name, prefix, scopes, created_at, last_used_at, revoked_at",
        (account_id, key_id, prefix, _hash(secret), name, scopes)).fetchone()
    audit(conn, account_id=account_id, actor=actor, action="api_key.created",
          target_type="api_key", target_id=key_id, detail={"scopes": scopes})
    return row, f"{KEY_PREFIX}{prefix}_{secret}"


def list_api_keys(conn, *, account_id) -> list[dict]:
    return conn.execute(
        "SELECT id, name, prefix, scopes, created_at, last_used_at, revoked_at FROM api_keys "
        "WHERE account_id = %s ORDER BY created_at", (account_id,)).fetchall()


def revoke_api_key(conn, *, account_id, key_id, actor: str) -> dict | None:
    row = conn.execute(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
        "WHERE account_id = %s AND id = %s "
        "RETURNING id, name, prefix, scopes, created_at, last_used_at, revoked_at",
        (account_id, key_id)).fetchone()
    if row is not None:
        audit(conn, account_id=account_id, actor=actor, action="api_key.revoked",
              target_type="api_key", target_id=key_id)
    return row


def authenticate(conn, presented: str) -> Principal | None:
    """The principal for a presented key, or None if unknown, malformed or revoked."""
    if not presented.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = presented[len(KEY_PREFIX):].partition("_")
    if not sep or len(prefix) != 12 or not secret:
        return None
    row = conn.execute(
        "SELECT account_id, id, secret_hash, scopes, revoked_at, last_used_at FROM api_keys WHERE prefix = %s",
        (prefix,)).fetchone()
    if row is None:
        # Hash anyway so a missing prefix and a wrong secret take the same time.
        hmac.compare_digest(_hash(secret), b"\0" * 32)
        return None
    if not hmac.compare_digest(_hash(secret), bytes(row["secret_hash"])) or row["revoked_at"] is not None:
        return None
    now = datetime.now(timezone.utc)
    if row["last_used_at"] is None or now - row["last_used_at"] > _LAST_USED_EVERY:
        conn.execute("UPDATE api_keys SET last_used_at = %s WHERE account_id = %s AND id = %s",
                     (now, row["account_id"], row["id"]))
    return Principal(row["account_id"], row["id"], frozenset(row["scopes"]))
