"""REST views for event webhooks: endpoints (the secret shown once), secret rotation, the delivery log, replays."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import request
from marshmallow import ValidationError, fields, validate, validates_schema

from gateway import webhook_endpoints, webhook_log
from gateway.api.schemas import StrictSchema
from gateway.api.views import bp
from gateway.http import api, json_body, parse_uuid
from gateway.problems import Problem, invalid

SCOPE = "webhooks:write"


class EndpointCreate(StrictSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000),
                        metadata={"description": "https:// URL the events are posted to"})
    event_types = fields.List(fields.String(), load_default=None, metadata={
        "description": "event types to receive, or [\"*\"] for all this key may read; required for format "
                       "standard, for format meta a subset of message.received, message.sent and message.status "
                       "(the default)"})
    description = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    include_content = fields.Boolean(load_default=True, metadata={
        "description": "add message content (text, media, buttons) to message.received and message.sent"})
    enabled = fields.Boolean(load_default=True)
    format = fields.String(load_default="standard", validate=validate.OneOf(webhook_endpoints.FORMATS), metadata={
        "description": "standard: the gateway's events, signed as Standard Webhooks say; meta: WhatsApp messages "
                       "and statuses in Meta's own webhook format, signed with X-Hub-Signature-256 (for an "
                       "integration written against the Cloud API, through the /graph facade)"})
    channel_ids = fields.List(fields.UUID(), load_default=None, allow_none=True, metadata={
        "description": "format meta: only these WhatsApp channels of the account (null: every one)"})
    secret = fields.String(load_default=None, validate=validate.Length(
        min=webhook_endpoints.SECRET_MIN, max=webhook_endpoints.SECRET_MAX), metadata={
        "description": "format meta: the integration's existing Meta app secret, to sign with (else a whsec_ "
                       "secret is made and shown once)"})
    verify_token = fields.String(load_default=None, validate=validate.Length(min=1, max=500), metadata={
        "description": "format meta: run Meta's subscription handshake first (GET url?hub.mode=subscribe&"
                       "hub.challenge=…&hub.verify_token=…, which must echo the challenge); not stored"})


class EndpointUpdate(StrictSchema):
    url = fields.String(validate=validate.Length(min=1, max=2000))
    event_types = fields.List(fields.String())
    description = fields.String(allow_none=True, validate=validate.Length(max=500))
    include_content = fields.Boolean()
    enabled = fields.Boolean(metadata={"description": "true re-enables an endpoint the gateway disabled; its held "
                                                      "deliveries go"})
    channel_ids = fields.List(fields.UUID(), allow_none=True, metadata={
        "description": "format meta: only these WhatsApp channels of the account (null: every one)"})

    @validates_schema
    def _some(self, data, **kwargs):
        if not data:
            raise ValidationError("give any of url, event_types, description, include_content, enabled, "
                                  "channel_ids")


class SecretRotation(StrictSchema):
    grace_period_s = fields.Integer(load_default=86400, strict=True, validate=validate.Range(
        min=0, max=int(webhook_endpoints.MAX_GRACE.total_seconds()),
        error="seconds the previous secret keeps signing, from 0 to 604800 (7 days)"))


class Replay(StrictSchema):
    since = fields.AwareDateTime(required=True, metadata={"description": "replay events from this time"})
    until = fields.AwareDateTime(load_default=None, allow_none=True)
    only_failed = fields.Boolean(load_default=False, metadata={
        "description": "only events whose deliveries to this endpoint ended as dead letters"})


def _endpoint_view(row: dict) -> dict:
    out = {k: row[k] for k in ("id", "url", "description", "format", "channel_ids", "event_types", "include_content",
                               "enabled",
                               "disabled_reason", "disabled_at", "failing_since", "last_success_at", "created_at",
                               "updated_at")}
    out["previous_secret_valid_until"] = row["previous_secret_until"]
    if "secret" in row:
        out["secret"] = row["secret"]
    return out


def _missing_scope(exc) -> Problem:
    return Problem(403, "Forbidden", str(exc), slug="missing-scope")


def _endpoint(conn, principal, endpoint_id: str) -> dict:
    row = webhook_endpoints.get(conn, account_id=principal.account_id,
                                endpoint_id=parse_uuid(endpoint_id, "webhook endpoint"))
    if row is None:
        raise Problem(404, "Not Found", f"no webhook endpoint with id {endpoint_id} in this account",
                      slug="webhook-endpoint-not-found")
    return row


@bp.get("/webhook-endpoints")
@api(scope=SCOPE)
def list_webhook_endpoints(conn, principal):
    return {"data": [_endpoint_view(r) for r in webhook_endpoints.list_all(conn, account_id=principal.account_id)]}


@bp.post("/webhook-endpoints")
@api(scope=SCOPE)
def create_webhook_endpoint(conn, principal):
    """201 with ``secret``: the only time it is shown; keep it to verify the ``webhook-signature`` header (format
    meta: the ``X-Hub-Signature-256`` header, as the integration verifies Meta's)."""
    doc = json_body(EndpointCreate())
    try:
        row = webhook_endpoints.create(conn, account_id=principal.account_id, url=doc["url"],
                                       names=doc["event_types"], scopes=principal.scopes, actor=principal.actor,
                                       description=doc["description"], include_content=doc["include_content"],
                                       enabled=doc["enabled"], format=doc["format"], channel_ids=doc["channel_ids"],
                                       secret=doc["secret"], verify_token=doc["verify_token"])
    except webhook_endpoints.EndpointError as exc:
        raise invalid(exc.errors) from None
    except webhook_endpoints.MissingScope as exc:
        raise _missing_scope(exc) from None
    return _endpoint_view(row), 201, {"Location": f"/v1/webhook-endpoints/{row['id']}"}


@bp.get("/webhook-endpoints/<endpoint_id>")
@api(scope=SCOPE)
def get_webhook_endpoint(conn, principal, endpoint_id):
    return _endpoint_view(_endpoint(conn, principal, endpoint_id))


@bp.patch("/webhook-endpoints/<endpoint_id>")
@api(scope=SCOPE)
def update_webhook_endpoint(conn, principal, endpoint_id):
    current = _endpoint(conn, principal, endpoint_id)
    doc = json_body(EndpointUpdate())
    try:
        row = webhook_endpoints.update(conn, account_id=principal.account_id, endpoint_id=current["id"],
                                       changes=doc, scopes=principal.scopes, actor=principal.actor)
    except webhook_endpoints.EndpointError as exc:
        raise invalid(exc.errors) from None
    except webhook_endpoints.MissingScope as exc:
        raise _missing_scope(exc) from None
    return _endpoint_view(row)


@bp.delete("/webhook-endpoints/<endpoint_id>")
@api(scope=SCOPE)
def delete_webhook_endpoint(conn, principal, endpoint_id):
    """204; its pending deliveries and delivery log go with it."""
    row = _endpoint(conn, principal, endpoint_id)
    webhook_endpoints.delete(conn, account_id=principal.account_id, endpoint_id=row["id"], actor=principal.actor)
    return "", 204


@bp.post("/webhook-endpoints/<endpoint_id>/rotate-secret")
@api(scope=SCOPE)
def rotate_webhook_secret(conn, principal, endpoint_id):
    """A new secret, shown once; the previous one also signs for ``grace_period_s`` (default a day)."""
    row = _endpoint(conn, principal, endpoint_id)
    doc = json_body(SecretRotation()) if request.content_length else SecretRotation().load({})
    rotated = webhook_endpoints.rotate_secret(conn, account_id=principal.account_id, endpoint_id=row["id"],
                                              grace=timedelta(seconds=doc["grace_period_s"]), actor=principal.actor)
    return {"id": row["id"], "secret": rotated["secret"],
            "previous_secret_valid_until": rotated["previous_secret_valid_until"]}


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise Problem(400, "Bad Filter", f"{name} is a whole number from {low} to {high}", slug="bad-filter")
    return value


@bp.get("/webhook-endpoints/<endpoint_id>/deliveries")
@api(scope=SCOPE)
def list_webhook_deliveries(conn, principal, endpoint_id):
    """Newest first with every attempt; ``state`` (pending, delivering, delivered, dead), ``event_type``,
    ``limit``, ``before`` (the ``next`` of the previous page)."""
    row = _endpoint(conn, principal, endpoint_id)
    state = request.args.get("state") or None
    if state is not None and state not in webhook_log.STATES:
        raise Problem(400, "Bad Filter", f"state is one of {', '.join(webhook_log.STATES)}", slug="bad-filter")
    limit = _int_arg("limit", 50, 1, 500)
    before = _int_arg("before", None, 1, 2 ** 62)
    rows = webhook_log.list_deliveries(conn, account_id=principal.account_id, endpoint_id=row["id"], state=state,
                                       event_type=request.args.get("event_type") or None, before=before, limit=limit)
    nxt = str(rows[-1]["seq"]) if len(rows) == limit else None
    return {"data": [_delivery_view(r) for r in rows], "next": nxt}


def _delivery_view(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "seq"}


def _on_delivery(conn, principal, endpoint_id: str, delivery_id: str, action) -> dict:
    """``action`` (get_delivery or replay_one) on a delivery of this endpoint and account; 404 for any other."""
    row = _endpoint(conn, principal, endpoint_id)
    found = action(conn, account_id=principal.account_id, endpoint_id=row["id"],
                   delivery_id=parse_uuid(delivery_id, "delivery"))
    if found is None:
        raise Problem(404, "Not Found", f"no delivery {delivery_id} of this endpoint in this account",
                      slug="delivery-not-found")
    return _delivery_view(found)


@bp.get("/webhook-endpoints/<endpoint_id>/deliveries/<delivery_id>")
@api(scope=SCOPE)
def get_webhook_delivery(conn, principal, endpoint_id, delivery_id):
    return _on_delivery(conn, principal, endpoint_id, delivery_id, webhook_log.get_delivery)


@bp.post("/webhook-endpoints/<endpoint_id>/deliveries/<delivery_id>/replay")
@api(scope=SCOPE)
def replay_webhook_delivery(conn, principal, endpoint_id, delivery_id):
    """202 with the new delivery: the same event (same ``webhook-id``) sent again."""
    return _on_delivery(conn, principal, endpoint_id, delivery_id, webhook_log.replay_one), 202


@bp.post("/webhook-endpoints/<endpoint_id>/replay")
@api(scope=SCOPE)
def replay_webhook_events(conn, principal, endpoint_id):
    """202: every kept event of the endpoint's types since a time delivered again, in order (at most 100,000 a
    call; ``more`` and ``next_since`` say where to go on)."""
    row = _endpoint(conn, principal, endpoint_id)
    doc = json_body(Replay())
    if doc["until"] is not None and doc["until"] <= doc["since"]:
        raise invalid([{"field": "until", "detail": "until must be later than since"}])
    if doc["since"] > datetime.now(doc["since"].tzinfo):
        raise invalid([{"field": "since", "detail": "since is in the future: nothing to replay yet"}])
    return webhook_log.replay_since(conn, account_id=principal.account_id, endpoint_id=row["id"], since=doc["since"],
                                    until=doc["until"], only_failed=doc["only_failed"]), 202
