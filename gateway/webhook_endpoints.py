"""Webhook endpoints: where an account's events are pushed, which ones, and the secret that signs them.

The secret (Standard Webhooks' ``whsec_`` + base64 of 32 random bytes) is shown once, when made or rotated,
and kept encrypted under the account's data key. A rotation keeps the previous secret signing beside the new
one for a grace period, so a CRM can switch without dropping a delivery. An endpoint subscribes only to event
types its creating key may read, and that key's scopes travel with it: payload content follows them.

An endpoint's ``format`` is ``standard`` (the gateway's event bodies, Standard Webhooks signatures) or ``meta``:
WhatsApp messages and statuses in Meta's own webhook format for an integration written against the Cloud API
(gateway/facade/webhook_format.py). A meta endpoint may keep the integration's existing Meta app secret as its
secret, carries only ``META_TYPES``, and may be narrowed to some WhatsApp channels (``channel_ids``).

A third format, ``twilio``, is made only by the Twilio-shaped facade (``link_status_callback``): Twilio's status
callbacks for the messages sent through it that named a ``StatusCallback`` (gateway/facade/twilio_format.py).
"""
from __future__ import annotations

import base64
import ipaddress
import os
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from gateway import event_types, keystore
from gateway.accounts import audit
from gateway.crypto import field_aad
from gateway.db import uuid7

SECRET_PREFIX = "whsec_"
MAX_GRACE = timedelta(days=7)
FORMATS = ("standard", "meta")                 # what the REST API makes; 'twilio' endpoints the facade makes
TWILIO_TYPES = ("message.sent", "message.status")   # what Twilio's status callbacks report
META_TYPES = ("message.received", "message.sent", "message.status")   # what Meta's `messages` field carries
SECRET_MIN, SECRET_MAX = 8, 512
_COLUMNS = ("id, url, description, format, channel_ids, event_types, scopes, include_content, enabled, "
            "disabled_reason, disabled_at, previous_secret_until, failing_since, last_success_at, created_at, "
            "updated_at")


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


def check_meta(conn, account_id, *, names, channel_ids, secret, include_content) -> list[dict]:
    """What a meta-format endpoint may hold: Meta's message types, WhatsApp channels of this account, an app
    secret of a sensible length, and content (Meta's format has no bare variant)."""
    errors = []
    if names is not None and names != ["*"]:
        errors += check_types(names)
        other = sorted(set(names) - set(META_TYPES)) if not errors else []
        if other:
            errors.append({"field": "event_types", "detail": f"a meta-format endpoint carries only "
                           f"{', '.join(META_TYPES)} (what Meta's WhatsApp webhook sends); remove {', '.join(other)}, "
                           "or leave event_types out for all three"})
    if channel_ids is not None:
        errors += check_channels(conn, account_id, channel_ids)
    if secret is not None and (not isinstance(secret, str) or not SECRET_MIN <= len(secret) <= SECRET_MAX):
        errors.append({"field": "secret", "detail": f"give the integration's Meta app secret ({SECRET_MIN} to "
                       f"{SECRET_MAX} characters), or leave secret out and a whsec_ one is made"})
    if include_content is False:
        errors.append({"field": "include_content", "detail": "a meta-format endpoint carries messages as Meta "
                       "sends them, content included; use format \"standard\" with include_content false instead"})
    return errors


def check_channels(conn, account_id, channel_ids) -> list[dict]:
    """``channel_ids`` must name WhatsApp channels of this account (null: every one, present and future)."""
    if not isinstance(channel_ids, list) or not channel_ids:
        return [{"field": "channel_ids", "detail": "list the ids of this account's WhatsApp channels to forward, or "
                                                   "leave channel_ids out (null) for every WhatsApp channel"}]
    ids = []
    for raw in channel_ids:
        try:
            ids.append(raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw)))
        except ValueError:
            return [{"field": "channel_ids", "detail": f"{raw!r} is not a channel id (a UUID)"}]
    found = {r["id"]: r["kind"] for r in conn.execute(
        "SELECT id, kind FROM channels WHERE account_id = %s AND id = ANY (%s::uuid[])", (account_id, ids)).fetchall()}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        return [{"field": "channel_ids", "detail": f"no channel {', '.join(missing)} in this account"}]
    other = [f"{i} ({found[i]})" for i in ids if found[i] != "whatsapp"]
    if other:
        return [{"field": "channel_ids", "detail": f"a meta-format endpoint forwards WhatsApp channels only; "
                                                   f"{', '.join(other)} is not one"}]
    return []


def format_filter(w: str, account_id: str, channel_id: str, message_id: str = "NULL") -> str:
    """SQL: endpoint ``w`` takes an event of this account whose data names ``channel_id`` and ``message_id`` (text
    expressions): a standard endpoint every one; a twilio endpoint only the events of messages linked to it in
    message_callbacks (a primary-key probe); a meta endpoint only a WhatsApp channel's, of its ``channel_ids``
    when set (they were checked to be WhatsApp channels), else of any WhatsApp channel (a primary-key probe).
    The relay and replays share it."""
    return (f"({w}.format = 'standard' OR CASE WHEN {w}.format = 'twilio' "
            f"THEN EXISTS (SELECT 1 FROM message_callbacks mc WHERE mc.account_id = {account_id} "
            f"AND mc.message_id = {message_id}::uuid AND mc.endpoint_id = {w}.id) "
            f"WHEN {w}.channel_ids IS NOT NULL "
            f"THEN {channel_id}::uuid = ANY ({w}.channel_ids) "
            f"ELSE EXISTS (SELECT 1 FROM channels ch WHERE ch.account_id = {account_id} "
            f"AND ch.id = {channel_id}::uuid AND ch.kind = 'whatsapp') END)")


def link_status_callback(conn, *, account_id, message_id, api_key_id, api_key: str, url: str, scopes) -> dict:
    """Send ``message_id``'s statuses to this StatusCallback URL: through the account's twilio-format endpoint
    for the URL and this API key, made on first use, and linked to the message in this transaction.

    The endpoint's secret is the API key's own text, kept encrypted like every endpoint secret: it is what the
    integration knows as its Twilio "auth token" (it logs in with AccountSid:<key>), so
    ``RequestValidator(auth_token)`` checks the callbacks' X-Twilio-Signature with it unchanged. Safe under
    concurrent first sends (the unique index on account, key and URL)."""
    url = url.strip()
    endpoint = _twilio_by_url(conn, account_id, api_key_id, url)
    if endpoint is None:
        endpoint_id = uuid7()
        key = keystore.account_key(conn, account_id=account_id)
        endpoint = conn.execute(
            "INSERT INTO webhook_endpoints (account_id, id, url, description, format, event_types, scopes, "
            "include_content, enabled, data_key_id, secret_enc, api_key_id) "
            "VALUES (%s, %s, %s, %s, 'twilio', %s, %s, true, true, %s, %s, %s) "
            "ON CONFLICT (account_id, api_key_id, url) WHERE format = 'twilio' DO NOTHING RETURNING id, url",
            (account_id, endpoint_id, url, "Twilio status callbacks (made by the /twilio facade)",
             list(TWILIO_TYPES), sorted(scopes), key.id, key.encrypt(api_key, _aad(account_id, endpoint_id, "secret")),
             api_key_id)).fetchone()
        if endpoint is None:   # another request made it meanwhile
            endpoint = _twilio_by_url(conn, account_id, api_key_id, url)
        else:
            audit(conn, account_id=account_id, actor=f"api_key:{api_key_id}", action="webhook_endpoint.created",
                  target_type="webhook_endpoint", target_id=endpoint_id,
                  detail={"event_types": list(TWILIO_TYPES), "format": "twilio"})
    conn.execute("INSERT INTO message_callbacks (account_id, message_id, endpoint_id) VALUES (%s, %s, %s) "
                 "ON CONFLICT DO NOTHING", (account_id, message_id, endpoint["id"]))
    return endpoint


def _twilio_by_url(conn, account_id, api_key_id, url: str) -> dict | None:
    return conn.execute("SELECT id, url FROM webhook_endpoints WHERE account_id = %s AND format = 'twilio' "
                        "AND api_key_id = %s AND url = %s", (account_id, api_key_id, url)).fetchone()


def _meta_only(changes: dict, names) -> list[dict]:
    return [{"field": name, "detail": f"{name} applies to format \"meta\" endpoints only"}
            for name in names if changes.get(name) is not None]


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


def create(conn, *, account_id, url: str, names: list[str] | None, scopes, actor: str,
           description: str | None = None, include_content: bool = True, enabled: bool = True,
           format: str = "standard", channel_ids: list | None = None, secret: str | None = None,
           verify_token: str | None = None) -> dict:
    """Returns the endpoint with its ``secret``: the one time it is shown. A meta-format endpoint takes ``names``
    None for Meta's three types, may keep the integration's own ``secret`` (its Meta app secret), and with a
    ``verify_token`` must first pass Meta's subscription handshake (the token is not kept)."""
    errors = check_url(url)
    if format not in FORMATS:
        errors.append({"field": "format", "detail": "format is \"standard\" (the gateway's events, Standard "
                                                    "Webhooks) or \"meta\" (WhatsApp in Meta's webhook format)"})
    elif format == "meta":
        errors += check_meta(conn, account_id, names=names, channel_ids=channel_ids, secret=secret,
                             include_content=include_content)
    else:
        errors += check_types(names) + _meta_only({"channel_ids": channel_ids, "secret": secret,
                                                   "verify_token": verify_token},
                                                  ("channel_ids", "secret", "verify_token"))
    if errors:
        raise EndpointError(errors)
    types = _resolve_types(list(META_TYPES) if format == "meta" and names in (None, ["*"]) else names, scopes)
    if verify_token is not None:
        from gateway.facade import webhook_format
        failed = webhook_format.verify_subscription(url.strip(), verify_token)
        if failed:
            raise EndpointError([{"field": "url", "detail": failed}])
    endpoint_id, secret = uuid7(), secret or new_secret()
    key = keystore.account_key(conn, account_id=account_id)
    row = conn.execute(
        f"INSERT INTO webhook_endpoints (account_id, id, url, description, format, channel_ids, event_types, scopes, "
        f"include_content, enabled, data_key_id, secret_enc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        f"RETURNING {_COLUMNS}",
        (account_id, endpoint_id, url.strip(), description, format, _uuids(channel_ids), types, sorted(scopes),
         include_content, enabled, key.id, key.encrypt(secret, _aad(account_id, endpoint_id, "secret")))).fetchone()
    audit(conn, account_id=account_id, actor=actor, action="webhook_endpoint.created", target_type="webhook_endpoint",
          target_id=endpoint_id, detail={"event_types": types, "format": format})
    return dict(row, secret=secret)


def _uuids(ids) -> list | None:
    return None if ids is None else [i if isinstance(i, uuid.UUID) else uuid.UUID(str(i)) for i in ids]


def get(conn, *, account_id, endpoint_id) -> dict | None:
    return conn.execute(f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE account_id = %s AND id = %s",
                        (account_id, endpoint_id)).fetchone()


def list_all(conn, *, account_id) -> list[dict]:
    return conn.execute(f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE account_id = %s ORDER BY created_at, id",
                        (account_id,)).fetchall()


def update(conn, *, account_id, endpoint_id, changes: dict, scopes, actor: str) -> dict | None:
    """``changes`` may hold url, event_types, description, include_content, enabled, and for a meta-format
    endpoint channel_ids (None: every WhatsApp channel). Enabling an endpoint the gateway disabled clears the
    reason and lets its held deliveries go."""
    current = conn.execute("SELECT enabled, format FROM webhook_endpoints WHERE account_id = %s AND id = %s "
                           "FOR UPDATE", (account_id, endpoint_id)).fetchone()
    if current is None:
        return None
    meta = current["format"] == "meta"
    errors = []
    if "url" in changes:
        errors += check_url(changes["url"])
    if meta:
        errors += check_meta(conn, account_id, names=changes.get("event_types"), channel_ids=changes.get("channel_ids"),
                             secret=None, include_content=changes.get("include_content"))
    else:
        if "event_types" in changes:
            errors += check_types(changes["event_types"])
            if current["format"] == "twilio" and not errors and not set(changes["event_types"]) <= set(TWILIO_TYPES):
                errors.append({"field": "event_types", "detail": "a twilio-format endpoint carries only "
                               f"{', '.join(TWILIO_TYPES)} (Twilio's status callbacks)"})
        errors += _meta_only(changes, ("channel_ids",))
    if errors:
        raise EndpointError(errors)
    sets, params = ["updated_at = now()"], []
    if "url" in changes:
        sets.append("url = %s"), params.append(changes["url"].strip())
    if "event_types" in changes:
        names = changes["event_types"]
        sets.append("event_types = %s"), params.append(
            _resolve_types(list(META_TYPES) if meta and names == ["*"] else names, scopes))
    if meta and "channel_ids" in changes:
        sets.append("channel_ids = %s"), params.append(_uuids(changes["channel_ids"]))
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
    """The secrets that sign a delivery now: the current one, and the previous one within its grace period.
    A meta-format endpoint's is the secret string's UTF-8 bytes (Meta's HMAC key is the app secret as written;
    a twilio one's likewise, the API key as written is the auth token),
    and only the newest: X-Hub-Signature-256 holds one signature, so during a rotation's grace period the
    integration must already hold the new secret."""
    row = conn.execute("SELECT data_key_id, format, secret_enc, previous_secret_enc, "
                       "previous_secret_until > now() AS grace FROM webhook_endpoints WHERE account_id = %s AND id = %s",
                       (account_id, endpoint_id)).fetchone()
    if row is None:
        return []
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    current = key.decrypt_text(row["secret_enc"], _aad(account_id, endpoint_id, "secret"))
    if row["format"] in ("meta", "twilio"):
        return [current.encode("utf-8")]
    out = [secret_bytes(current)]
    if row["grace"] and row["previous_secret_enc"] is not None:
        out.append(secret_bytes(key.decrypt_text(row["previous_secret_enc"],
                                                 _aad(account_id, endpoint_id, "previous_secret"))))
    return out
