"""HTTP plumbing shared by the API and the webhook receiver: JSON, auth, request ids."""
from __future__ import annotations

import functools
import re
import uuid
from datetime import date, datetime

import psycopg
from flask import g, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import Schema, ValidationError

from gateway import audit, db
from gateway.accounts import authenticate
from gateway.problems import Problem, field_errors, invalid

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class JSONProvider(DefaultJSONProvider):
    """ISO 8601 times and plain-string UUIDs instead of Flask's HTTP-date default."""

    @staticmethod
    def default(o):
        if isinstance(o, datetime | date):
            return o.isoformat()
        if isinstance(o, uuid.UUID):
            return str(o)
        if isinstance(o, bytes | memoryview):
            raise TypeError("refusing to serialise raw bytes")
        return DefaultJSONProvider.default(o)


def assign_request_id() -> None:
    supplied = request.headers.get("X-Request-Id", "")
    g.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Problem(404, "Not Found", f"no {what} with id {value!r}") from None


def _json_payload():
    if not request.is_json:
        raise Problem(415, "Unsupported Media Type",
                      "send the body as JSON with the header Content-Type: application/json")
    data = request.get_json(silent=True)
    if data is None:
        raise Problem(400, "Malformed JSON", "the request body is not valid JSON", slug="malformed-json")
    return data


def json_object() -> dict:
    """The JSON body as an object, for views that validate it themselves (listing every problem)."""
    data = _json_payload()
    if not isinstance(data, dict):
        raise Problem(400, "Malformed JSON", "the request body is not a JSON object", slug="malformed-json")
    return data


def json_body(schema: Schema) -> dict:
    """Load and validate the JSON body; 415/400/422 problems say exactly what to fix."""
    data = _json_payload()
    try:
        return schema.load(data)
    except ValidationError as exc:
        errors = field_errors(exc.messages)
        raise invalid(errors) from None


def _principal(conn):
    # The web console calls the API in-process as its signed-in person (gateway/console/api_client.py); the
    # environ key cannot come from the network (a WSGI server turns headers into HTTP_* keys).
    console = request.environ.get("gateway.console_principal")
    if console is not None:
        return console
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "Unauthorized", "send your API key as 'Authorization: Bearer <key>'",
                      headers={"WWW-Authenticate": 'Bearer realm="gateway"'})
    principal = authenticate(conn, token.strip())
    if principal is None:
        raise Problem(401, "Unauthorized", "the API key is unknown or has been revoked; create a new one "
                      "with `gateway api-keys create`", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return principal


def _status(result) -> int:
    """The status a view's return value answers with (Flask's shapes: a body, (body, status[, headers]), a Response)."""
    if isinstance(result, tuple):
        return result[1] if len(result) > 1 and isinstance(result[1], int) else 200
    return getattr(result, "status_code", 200)


def authenticated(authenticate, run):
    """``run(conn, principal)`` in one transaction, once ``authenticate(conn)`` has named the caller (or raised
    the API's own refusal). A pooled connection found cut when first used - nothing done on it yet - is
    replaced once: the pool has been purged of cut connections meanwhile. The REST API and the vendor-shaped
    facades share this; each brings its own authentication and error shapes."""
    def attempt():
        with db.connection() as conn:
            try:
                principal = authenticate(conn)
            except psycopg.OperationalError:
                if conn.broken:   # cut before we used it: nothing done, safe to run again
                    raise db.StaleConnection() from None
                raise
            return run(conn, principal)
    try:
        return attempt()
    except db.StaleConnection:
        return attempt()


def api(scope: str | None):
    """Authenticate, check the scope, and run the view in one transaction.

    The view receives ``conn`` and ``principal``; every query it makes is
    scoped by ``principal.account_id``.
    """
    def wrap(view):
        @functools.wraps(view)
        def inner(**kwargs):
            return authenticated(_principal, lambda conn, principal: _serve(conn, principal, kwargs))

        def _serve(conn, principal, kwargs):
            g.account_id = principal.account_id
            if scope is not None and not principal.allows(scope):
                conn.commit()  # keep last_used_at
                raise Problem(403, "Forbidden", f"this API key lacks the scope '{scope}'; "
                              f"create a key that has it", slug="missing-scope")
            result = view(conn=conn, principal=principal, **kwargs)
            if request.method in ("GET", "HEAD") and not g.get("audit_recorded") and _status(result) < 400:
                # Art. 30: every read of personal data leaves a row (who, which route, which target), in
                # this transaction so a read is never served without its record. Routes decide, by resource.
                audit.record_read(conn, principal=principal, rule=request.url_rule.rule, view_args=kwargs,
                                  args=request.args)
            return result

        inner.required_scope = scope   # None: any valid key; read by the OpenAPI document (gateway/api/openapi.py)
        return inner
    return wrap
