"""Channels: one business number or page per row, with encrypted credentials.

The receiver resolves a webhook to its channel on every request, so routing
reads a short-lived in-process cache (credentials included, decrypted once)
instead of the database; a change made through this module clears it, and
other processes see it within ``ROUTE_TTL_S``.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass

from psycopg.types.json import Jsonb

from gateway import events, keystore
from gateway.accounts import audit
from gateway.crypto import field_aad
from gateway.db import uuid7

KINDS = ("whatsapp", "messenger", "instagram", "twilio", "sandbox")
ROUTE_TTL_S = 5.0
_COLUMNS = ("id, kind, name, external_id, group_id, settings, status, paused_reason, health, rejected_signatures, "
            "last_rejected_at, created_at, updated_at, (credentials_enc IS NOT NULL) AS has_credentials")


class ChannelError(ValueError):
    pass


@dataclass(frozen=True)
class Route:
    account_id: object
    channel_id: object
    kind: str
    external_id: str
    settings: dict
    credentials: dict


def token_hash(token: str) -> bytes:
    # Verify tokens are random strings the user chose; a plain hash is enough to
    # find the channel without keeping the token itself searchable.
    return hashlib.sha256(b"gateway-verify-token|" + token.encode("utf-8")).digest()


def _provider(kind: str):
    from webhooks import registry  # providers import the core, not the reverse
    return registry.get(kind)


def check_credentials(kind: str, credentials: dict) -> None:
    """Refuse a channel whose credentials its provider cannot work with; the message names what is missing."""
    provider = _provider(kind)
    if provider is None or not hasattr(provider, "required_credentials"):
        return
    required = tuple(getattr(provider, "required_credentials", ()))
    allowed = set(required) | set(getattr(provider, "optional_credentials", ()))
    missing = [name for name in required if not str(credentials.get(name) or "").strip()]
    unknown = sorted(set(credentials) - allowed)
    problems = []
    if missing:
        problems.append(f"missing credential(s) for a {kind} channel: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown credential(s) {', '.join(unknown)}; a {kind} channel takes "
                        f"{', '.join(sorted(allowed)) or 'none'}")
    if problems:
        raise ChannelError("; ".join(problems))


def _encrypt_credentials(key, account_id, channel_id, credentials: dict | None):
    if not credentials:
        return None
    return key.encrypt(json.dumps(credentials), field_aad("channels", "credentials", account_id, channel_id))


def create_channel(conn, *, account_id, kind: str, name: str, external_id: str,
                   credentials: dict | None = None, settings: dict | None = None,
                   group_id: str | None = None, actor: str) -> dict:
    if kind not in KINDS:
        raise ChannelError(f"unknown channel kind {kind!r}; choose from {', '.join(KINDS)}")
    credentials = {k: v for k, v in (credentials or {}).items() if v not in (None, "")}
    check_credentials(kind, credentials)
    provider = _provider(kind)
    if group_id is None and hasattr(provider, "group_id"):
        group_id = provider.group_id(credentials)
    key = keystore.account_key(conn, account_id=account_id)
    channel_id = uuid7()
    verify = credentials.get("verify_token")
    row = conn.execute(
        "INSERT INTO channels (account_id, id, kind, name, external_id, group_id, data_key_id, credentials_enc, "
        "settings, verify_token_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        f"RETURNING {_COLUMNS}",
        (account_id, channel_id, kind, name, external_id, group_id, key.id,
         _encrypt_credentials(key, account_id, channel_id, credentials), Jsonb(settings or {}),
         token_hash(verify) if verify else None)).fetchone()
    audit(conn, account_id=account_id, actor=actor, action="channel.created",
          target_type="channel", target_id=channel_id, detail={"kind": kind})
    forget_routes()
    return _view(row, credentials)


def update_channel(conn, *, account_id, channel_id, actor: str, name: str | None = None,
                   status: str | None = None, credentials: dict | None = None,
                   settings: dict | None = None, group_id: str | None = None) -> dict | None:
    """Change a channel. Credentials given are merged into the stored ones (a null value removes one)."""
    row = conn.execute("SELECT kind, data_key_id, status FROM channels WHERE account_id = %s AND id = %s FOR UPDATE",
                       (account_id, channel_id)).fetchone()
    if row is None:
        return None
    sets, params = ["updated_at = now()"], []
    changed = []
    if name is not None:
        sets.append("name = %s"), params.append(name), changed.append("name")
    if status is not None:
        sets.append("status = %s"), params.append(status), changed.append("status")
        sets.append("paused_reason = NULL")
    if group_id is not None:
        sets.append("group_id = %s"), params.append(group_id or None), changed.append("group_id")
    if settings is not None:
        sets.append("settings = settings || %s"), params.append(Jsonb(settings)), changed.append("settings")
    if credentials is not None:
        merged = dict(load_credentials(conn, account_id=account_id, channel_id=channel_id))
        for k, v in credentials.items():
            if v in (None, ""):
                merged.pop(k, None)
            else:
                merged[k] = v
        check_credentials(row["kind"], merged)
        key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
        verify = merged.get("verify_token")
        sets += ["credentials_enc = %s", "verify_token_hash = %s"]
        params += [_encrypt_credentials(key, account_id, channel_id, merged), token_hash(verify) if verify else None]
        changed.append("credentials")
    updated = conn.execute(f"UPDATE channels SET {', '.join(sets)} WHERE account_id = %s AND id = %s "
                           f"RETURNING {_COLUMNS}", (*params, account_id, channel_id)).fetchone()
    audit(conn, account_id=account_id, actor=actor, action="channel.updated",
          target_type="channel", target_id=channel_id, detail={"changed": changed})
    if status is not None and status != row["status"]:
        emit_status_changed(conn, account_id=account_id, channel_id=channel_id, kind=row["kind"], status=status,
                            previous=row["status"], reason=None, by=actor)
    forget_routes()
    return _view(updated, load_credentials(conn, account_id=account_id, channel_id=channel_id))


def _view(row: dict, credentials: dict) -> dict:
    """The channel as the API shows it: which credentials are set, never their values."""
    out = {k: row[k] for k in ("id", "kind", "name", "external_id", "group_id", "settings", "status",
                               "paused_reason", "health",
                               "rejected_signatures", "last_rejected_at", "created_at", "updated_at")}
    out["credentials_set"] = sorted(credentials)
    out["webhook_path"] = f"/webhooks/{row['kind']}"
    return out


def get_channel(conn, *, account_id, channel_id) -> dict | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM channels WHERE account_id = %s AND id = %s",
                       (account_id, channel_id)).fetchone()
    if row is None:
        return None
    return _view(row, load_credentials(conn, account_id=account_id, channel_id=channel_id))


def list_channels(conn, *, account_id) -> list[dict]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM channels WHERE account_id = %s ORDER BY created_at, id",
                        (account_id,)).fetchall()
    return [_view(r, load_credentials(conn, account_id=account_id, channel_id=r["id"])) for r in rows]


def summaries(conn, *, account_id) -> list[dict]:
    """Every channel by id, kind, name and status: enough to pick one, nothing of its configuration."""
    return conn.execute("SELECT id, kind, name, status FROM channels WHERE account_id = %s ORDER BY created_at, id",
                        (account_id,)).fetchall()


def load_credentials(conn, *, account_id, channel_id) -> dict:
    row = conn.execute("SELECT data_key_id, credentials_enc FROM channels WHERE account_id = %s AND id = %s",
                       (account_id, channel_id)).fetchone()
    if row is None or row["credentials_enc"] is None:
        return {}
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    return json.loads(key.decrypt_text(row["credentials_enc"],
                                       field_aad("channels", "credentials", account_id, channel_id)))


credentials = load_credentials   # the name the inbound worker and tests use


# --- webhook routing ---------------------------------------------------------------------------

_routes: dict[tuple[str, str], tuple[float, Route | None]] = {}
_routes_lock = threading.Lock()


def forget_routes() -> None:
    with _routes_lock:
        _routes.clear()


def route(conn_factory, kind: str, candidates: list[str]) -> Route | None:
    """The active channel of this kind matching the first candidate id (its external id, else its group id)."""
    now = time.monotonic()
    for external_id in candidates:
        hit = _routes.get((kind, external_id))
        if hit is not None and hit[0] > now:
            if hit[1] is not None:
                return hit[1]
            continue
        found = _lookup(conn_factory, kind, external_id)
        with _routes_lock:
            if len(_routes) > 10_000:
                _routes.clear()
            _routes[(kind, external_id)] = (now + ROUTE_TTL_S, found)
        if found is not None:
            return found
    return None


def _lookup(conn_factory, kind: str, external_id: str) -> Route | None:
    with conn_factory() as conn:
        row = conn.execute(
            "SELECT account_id, id, kind, external_id, settings FROM channels "
            "WHERE kind = %s AND status = 'active' AND (external_id = %s OR group_id = %s) "
            "ORDER BY (external_id = %s) DESC, created_at LIMIT 1",
            (kind, external_id, external_id, external_id)).fetchone()
        if row is None:
            return None
        creds = load_credentials(conn, account_id=row["account_id"], channel_id=row["id"])
    return Route(row["account_id"], row["id"], row["kind"], row["external_id"], row["settings"] or {}, creds)


def sibling(conn, *, account_id, kind: str, external_id: str) -> dict | None:
    """Another channel of the same account and kind, by its external (or group) id."""
    return conn.execute(
        "SELECT id, kind, external_id, group_id, settings FROM channels WHERE account_id = %s AND kind = %s "
        "AND (external_id = %s OR group_id = %s) ORDER BY (external_id = %s) DESC LIMIT 1",
        (account_id, kind, external_id, external_id, external_id)).fetchone()


def by_verify_token(conn, kind: str, token: str) -> dict | None:
    """The active channel whose verify token this is (GET handshake), compared in constant time."""
    digest = token_hash(token)
    row = conn.execute("SELECT account_id, id, verify_token_hash FROM channels "
                       "WHERE kind = %s AND status = 'active' AND verify_token_hash = %s LIMIT 1",
                       (kind, digest)).fetchone()
    if row is None or not hmac.compare_digest(bytes(row["verify_token_hash"]), digest):
        return None
    return row


def record_rejection(conn, *, account_id, channel_id) -> None:
    """Count a request whose signature did not match: shown on the channel so a wrong secret is visible."""
    conn.execute("UPDATE channels SET rejected_signatures = rejected_signatures + 1, last_rejected_at = now() "
                 "WHERE account_id = %s AND id = %s", (account_id, channel_id))


def emit_status_changed(conn, *, account_id, channel_id, kind: str, status: str, previous: str | None,
                        reason: str | None, **extra) -> None:
    """channel.status_changed: ``status`` is active, paused or disabled, or a health topic (record_health)."""
    events.emit(conn, account_id, "channel.status_changed", {
        "channel_id": str(channel_id), "channel_kind": kind, "status": status, "previous_status": previous,
        "reason": reason, **extra}, subject_id=channel_id)


# The words of a health notice that say what state the provider reports (quality FLAGGED, account
# DISABLED_UPDATE, name APPROVED, an alert ACTIVE): Meta's own vocabulary, never a name or a number.
_HEALTH_WORDS = ("event", "decision", "alert_status")


def _health_word(detail) -> str | None:
    for name in _HEALTH_WORDS:
        value = detail.get(name) if isinstance(detail, dict) else None
        if isinstance(value, str) and value:
            return "".join(c if c.isalnum() or c in "-_" else "_" for c in value)[:60]
    return None


def record_health(conn, *, account_id, channel_id, topic: str, detail: dict) -> None:
    """Keep the latest account / quality / name update on the channel, by topic. When the state it reports
    changed, channel.status_changed says so: ``status`` the topic, ``reason`` the provider's word (a repeated
    notice, or one that only restates other figures, says nothing new)."""
    before = conn.execute("SELECT kind, health -> %s AS detail FROM channels WHERE account_id = %s AND id = %s "
                          "FOR UPDATE", (topic, account_id, channel_id)).fetchone()
    conn.execute("UPDATE channels SET health = health || jsonb_build_object(%s::text, %s::jsonb) "
                 "WHERE account_id = %s AND id = %s", (topic, Jsonb(detail), account_id, channel_id))
    word, previous = _health_word(detail), _health_word(before["detail"]) if before else None
    if before is not None and word is not None and word != previous:
        emit_status_changed(conn, account_id=account_id, channel_id=channel_id, kind=before["kind"], status=topic,
                            previous=None, reason=word, previous_reason=previous)
