"""Webhook endpoints: where an account's events are pushed, which ones, and the secret that signs them.

The secret (Standard Webhooks' ``whsec_`` + base64 of 32 random bytes) is shown once, when made or rotated,
and kept encrypted under the account's data key. A rotation keeps the previous secret signing beside the new
one for a grace period, so a CRM can switch without dropping a delivery. An endpoint subscribes only to event
types its creating key may read, and that key's scopes travel with it: payload content follows them.
"""
from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from gateway import event_types, keystore
from gateway.accounts import audit
from gateway.crypto import field_aad
from gateway.db import uuid7

SECRET_PREFIX = "whsec_"
MAX_GRACE = timedelta(days=7)
_COLUMNS = ("id, url, description, event_types, scopes, include_content, enabled, disabled_reason, disabled_at, "
            "previous_secret_until, failing_since, last_success_at, created_at, updated_at")


class EndpointError(ValueError):
    """A field that cannot be saved; ``errors`` are RFC 9457 field errors."""

    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(e["detail"] for e in errors))
        self.errors = errors


class MissingScope(PermissionError):
    pass


def http_allowed() -> bool:
    return os.environ.get("GATEWAY_WEBHOOK_ALLOW_HTTP", "").lower() in ("1", "true", "yes")


def check_url(url) -> list[dict]:
    if not isinstance(url, str) or not url.strip():
        return [{"field": "url", "detail": "give the https:// URL the events should be posted to"}]
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return [{"field": "url", "detail": f"{url!r} is not an absolute http(s) URL such as "
                                           "https://crm.example.com/hooks/gateway"}]
    if parts.username or parts.password:
        return [{"field": "url", "detail": "put no credentials in the URL: deliveries are signed with the "
                                           "endpoint's secret, verify that instead"}]
    if parts.scheme == "http" and not http_allowed():
        return [{"field": "url", "detail": "personal data leaves only over TLS: use an https:// URL (for local "
                                           "development set GATEWAY_WEBHOOK_ALLOW_HTTP=1)"}]
    if parts.fragment:
        return [{"field": "url", "detail": "remove the #fragment: it is never sent"}]
    try:
        parts.port
    except ValueError:
        return [{"field": "url", "detail": "the port is not a number between 1 and 65535"}]
    host = parts.hostname
    try:
        if ipaddress.ip_address(host).is_unspecified:
            return [{"field": "url", "detail": f"{host} is not an address one can connect to"}]
    except ValueError:
        pass
    return []


def check_types(names) -> list[dict]:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return [{"field": "event_types", "detail": "list the event types to receive, e.g. "
                                                   "[\"message.received\", \"thread.status_changed\"], or [\"*\"] for "
                                                   "every type this key may read"}]
    if names == ["*"]:
        return []
    bad = event_types.unknown(names)
    if bad:
        return [{"field": "event_types", "detail": f"unknown event type(s) {', '.join(sorted(bad))}; choose from "
                                                   f"{', '.join(event_types.TYPES)}"}]
    return []


def _resolve_types(names: list[str], scopes) -> list[str]:
    readable = event_types.readable_by(scopes)
    if names == ["*"]:
        if not readable:
            raise MissingScope("this API key may read no event type; give it messages:read, contacts:read, "
                               "templates:write or campaigns:write as well")
        return [t for t in event_types.TYPES if t in readable]
    missing = sorted({event_types.TYPES[n].scope for n in names if n not in readable})
    if missing:
        raise MissingScope(f"this API key may not receive {', '.join(n for n in names if n not in readable)}: "
                           f"it lacks the scope(s) {', '.join(missing)}; use a key that has them")
    return sorted(set(names))


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def _aad(account_id, endpoint_id, column: str) -> bytes:
    return field_aad("webhook_endpoints", column, account_id, endpoint_id)


def create(conn, *, account_id, url: str, names: list[str], scopes, actor: str, description: str | None = None,
           include_content: bool = True, enabled: bool = True) -> dict:
    """Returns the endpoint with its ``secret``: the one time it is shown."""
    errors = check_url(url) + check_types(names)
    if errors:
        raise EndpointError(errors)
    types = _resolve_types(names, scopes)
    endpoint_id, secret = uuid7(), new_secret()
    key = keystore.account_key(conn, account_id=account_id)
    row = conn.execute(
        f"INSERT INTO webhook_endpoints (account_id, id, url, description, event_types, scopes, include_content, "
        f"enabled, data_key_id, secret_enc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (account_id, endpoint_id, url.strip(), description, types, sorted(scopes), include_content, enabled,
         key.id, key.encrypt(secret, _aad(account_id, endpoint_id, "secret")))).fetchone()
    audit(conn, account_id=account_id, actor=actor, action="webhook_endpoint.created", target_type="webhook_endpoint",
          target_id=endpoint_id, detail={"event_types": types})
    return dict(row, secret=secret)


def get(conn, *, account_id, endpoint_id) -> dict | None:
    return conn.execute(f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE account_id = %s AND id = %s",
                        (account_id, endpoint_id)).fetchone()


def list_all(conn, *, account_id) -> list[dict]:
    return conn.execute(f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE account_id = %s ORDER BY created_at, id",
                        (account_id,)).fetchall()


def update(conn, *, account_id, endpoint_id, changes: dict, scopes, actor: str) -> dict | None:
    """``changes`` may hold url, event_types, description, include_content, enabled. Enabling an endpoint the
    gateway disabled clears the reason and lets its held deliveries go."""
    current = conn.execute("SELECT enabled FROM webhook_endpoints WHERE account_id = %s AND id = %s FOR UPDATE",
                           (account_id, endpoint_id)).fetchone()
    if current is None:
        return None
    errors = []
    if "url" in changes:
        errors += check_url(changes["url"])
    if "event_types" in changes:
        errors += check_types(changes["event_types"])
    if errors:
        raise EndpointError(errors)
    sets, params = ["updated_at = now()"], []
    if "url" in changes:
        sets.append("url = %s"), params.append(changes["url"].strip())
    if "event_types" in changes:
        sets.append("event_types = %s"), params.append(_resolve_types(changes["event_types"], scopes))
    for name in ("description", "include_content"):
        if name in changes:
            sets.append(f"{name} = %s"), params.append(changes[name])
    if "enabled" in changes and changes["enabled"] != current["enabled"]:
        if changes["enabled"]:
            sets += ["enabled = true", "disabled_reason = NULL", "disabled_at = NULL", "failing_since = NULL"]
        else:
            sets += ["enabled = false", "disabled_reason = 'disabled by the API'", "disabled_at = now()"]
    row = conn.execute(f"UPDATE webhook_endpoints SET {', '.join(sets)} WHERE account_id = %s AND id = %s "
                       f"RETURNING {_COLUMNS}", (*params, account_id, endpoint_id)).fetchone()
    if "enabled" in changes and changes["enabled"] != current["enabled"]:
        hold(conn, account_id=account_id, endpoint_id=endpoint_id, held=not changes["enabled"])
    audit(conn, account_id=account_id, actor=actor, action="webhook_endpoint.updated", target_type="webhook_endpoint",
          target_id=endpoint_id, detail={"changed": sorted(changes)})
    return row


def hold(conn, *, account_id, endpoint_id, held: bool) -> None:
    """A disabled endpoint's pending deliveries wait, out of every claim's sight, until it is enabled again."""
    conn.execute("UPDATE webhook_deliveries SET next_attempt_at = CASE WHEN %s THEN 'infinity'::timestamptz "
                 "ELSE now() END WHERE account_id = %s AND endpoint_id = %s AND state = 'pending'",
                 (held, account_id, endpoint_id))


def disable(conn, *, account_id, endpoint_id, reason: str) -> None:
    """The gateway's own decision (410 Gone, failing for too long); said in ``disabled_reason``."""
    done = conn.execute("UPDATE webhook_endpoints SET enabled = false, disabled_reason = %s, disabled_at = now(), "
                        "updated_at = now() WHERE account_id = %s AND id = %s AND enabled",
                        (reason, account_id, endpoint_id)).rowcount
    if done:
        hold(conn, account_id=account_id, endpoint_id=endpoint_id, held=True)
        audit(conn, account_id=account_id, actor="gateway", action="webhook_endpoint.disabled",
              target_type="webhook_endpoint", target_id=endpoint_id, detail={"reason": reason})


def delete(conn, *, account_id, endpoint_id, actor: str) -> bool:
    gone = conn.execute("DELETE FROM webhook_endpoints WHERE account_id = %s AND id = %s",
                        (account_id, endpoint_id)).rowcount
    if gone:
        audit(conn, account_id=account_id, actor=actor, action="webhook_endpoint.deleted",
              target_type="webhook_endpoint", target_id=endpoint_id)
    return bool(gone)


def rotate_secret(conn, *, account_id, endpoint_id, grace: timedelta, actor: str) -> dict | None:
    """A new secret signs from now on; the previous one signs too until the grace period ends."""
    row = conn.execute("SELECT data_key_id, secret_enc FROM webhook_endpoints WHERE account_id = %s AND id = %s "
                       "FOR UPDATE", (account_id, endpoint_id)).fetchone()
    if row is None:
        return None
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    old = key.decrypt_text(row["secret_enc"], _aad(account_id, endpoint_id, "secret"))
    secret = new_secret()
    until = datetime.now(timezone.utc) + min(grace, MAX_GRACE) if grace > timedelta(0) else None
    conn.execute("UPDATE webhook_endpoints SET secret_enc = %s, previous_secret_enc = %s, previous_secret_until = %s, "
                 "updated_at = now() WHERE account_id = %s AND id = %s",
                 (key.encrypt(secret, _aad(account_id, endpoint_id, "secret")),
                  key.encrypt(old, _aad(account_id, endpoint_id, "previous_secret")) if until else None, until,
                  account_id, endpoint_id))
    audit(conn, account_id=account_id, actor=actor, action="webhook_endpoint.secret_rotated",
          target_type="webhook_endpoint", target_id=endpoint_id,
          detail={"previous_valid_until": until.isoformat() if until else None})
    return {"secret": secret, "previous_secret_valid_until": until}


def signing_secrets(conn, *, account_id, endpoint_id) -> list[bytes]:
    """The secrets that sign a delivery now: the current one, and the previous one within its grace period."""
    row = conn.execute("SELECT data_key_id, secret_enc, previous_secret_enc, previous_secret_until > now() AS grace "
                       "FROM webhook_endpoints WHERE account_id = %s AND id = %s",
                       (account_id, endpoint_id)).fetchone()
    if row is None:
        return []
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    out = [secret_bytes(key.decrypt_text(row["secret_enc"], _aad(account_id, endpoint_id, "secret")))]
    if row["grace"] and row["previous_secret_enc"] is not None:
        out.append(secret_bytes(key.decrypt_text(row["previous_secret_enc"],
                                                 _aad(account_id, endpoint_id, "previous_secret"))))
    return out
