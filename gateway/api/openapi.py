"""The OpenAPI 3.1 document (``GET /openapi.json``) and its reference page (``GET /docs``).

Built with apispec from the app itself: every route of ``app.url_map`` that has an entry in
``openapi_paths.OPERATIONS`` (the one table to edit; its docstring says how), its scope from the view's
``@api(scope=…)``, path parameters from the rule, problem types read from the view's code
(``openapi_problems``), and one webhook per event type of ``gateway.event_types``. Built once per app, on
first use: the routes do not change while it runs.
"""
from __future__ import annotations

import inspect
import json
import re
import threading

from flask import Blueprint, Flask, Response, current_app

from gateway.problems import PROBLEM_BASE

# apispec, the schemas and the source scan load on the first request for the document, not at start-up.

bp = Blueprint("openapi", __name__)
IGNORED_METHODS = {"HEAD", "OPTIONS"}   # Flask answers these for every route by itself
_RULE_PARAM = re.compile(r"<(?:([a-z_]+)(?:\(.*?\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")
_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_lock = threading.Lock()

INFO = {
    "description": "The REST API of the omnichannel messaging gateway: JSON in and out under /v1, errors as RFC "
                   "9457 problem documents (application/problem+json) whose `type` ends in the problem's slug "
                   "(listed in `x-problem-types`), cursor pagination, and signed event webhooks (`webhooks`). "
                   "Authenticate with an API key: `Authorization: Bearer <key>`.",
}


def openapi_path(rule: str) -> str:
    """``/v1/contacts/<contact_id>`` → ``/v1/contacts/{contact_id}``."""
    return _RULE_PARAM.sub(lambda m: "{" + m.group(2) + "}", rule)


# Blueprints that speak another vendor's API (the Cloud API facade under /graph, the Twilio one under /twilio):
# Meta and Twilio document them, in their own error shapes; the README says what the gateway adds. The web
# console's pages (/console) are HTML for people, not an API.
FOREIGN_APIS = ("graph.", "twilio_api.", "console.")


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """(method, Flask rule, endpoint) of every route of the gateway's own API a client calls (Flask's static
    files and the vendor-shaped facades aside)."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith(FOREIGN_APIS):
            continue
        out += [(m, rule.rule, rule.endpoint) for m in sorted(rule.methods - IGNORED_METHODS)]
    return sorted(out)


def document(app: Flask | None = None) -> dict:
    """The document of this app, built on first use."""
    app = app or current_app._get_current_object()
    cached = app.extensions.get("openapi")
    if cached is None:
        with _lock:
            cached = app.extensions.get("openapi")
            if cached is None:
                cached = app.extensions["openapi"] = _build(app)
    return cached


def _build(app: Flask) -> dict:
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    from gateway.api import openapi_paths, openapi_problems
    from gateway.api.openapi_schemas import ProblemSchema
    spec = APISpec(title="Omnichannel messaging gateway", version="1", openapi_version="3.1.0",
                   plugins=[MarshmallowPlugin()], info=INFO)
    spec.components.security_scheme("bearer", {
        "type": "http", "scheme": "bearer",
        "description": "An API key (`gwk_…`), made with `gateway api-keys create` or `POST /v1/api-keys`. Each "
                       "operation names the scope it needs (`x-scope`, and the role in its security requirement); "
                       "a key with `admin` has every scope."})
    spec.components.schema("Problem", schema=ProblemSchema)
    found = {}
    for method, rule, endpoint in routes(app):
        entry = openapi_paths.OPERATIONS.get((method, rule))
        if entry is not None:
            found[(method, rule)] = (entry, app.view_functions[endpoint])
    # Entries for paths answered in front of Flask (the webhook receiver's POST) have no view of their own.
    for key, entry in openapi_paths.OPERATIONS.items():
        if entry.handler and key not in found:
            found[key] = (entry, None)
    ids: set[str] = set()
    for (method, rule), (entry, view) in sorted(found.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        spec.path(path=openapi_path(rule), operations={method.lower(): _operation(method, rule, entry, view, ids)})
    webhooks = _webhooks(spec)
    doc = spec.to_dict()
    doc["webhooks"] = webhooks
    doc["x-problem-types"] = [
        {"slug": slug, "type": PROBLEM_BASE + slug, "status": sorted({v.status for v in variants if v.status}),
         "title": sorted({v.title for v in variants if v.title})}
        for slug, variants in openapi_problems.catalog().items()]
    return doc


def _scope(view) -> tuple[bool, str | None]:
    """(authenticated, scope): what ``@api(scope=…)`` recorded on the view."""
    if view is None or not hasattr(view, "required_scope"):
        return False, None
    return True, view.required_scope


def _operation(method: str, rule: str, entry, view, ids: set[str]) -> dict:
    from gateway.api import openapi_problems
    authenticated, scope = _scope(view)
    op_id = entry.operation_id or inspect.unwrap(view).__name__
    if op_id in ids:   # two blueprints may name views alike
        op_id = f"{op_id}_{method.lower()}_{len(ids)}"
    ids.add(op_id)
    op: dict = {"tags": [entry.tag], "summary": entry.summary, "operationId": op_id}
    description = entry.description or (inspect.getdoc(inspect.unwrap(view)) if view is not None else None)
    if description:
        op["description"] = description
    params = [_path_param(name, converter, entry) for converter, name in _RULE_PARAM.findall(rule)]
    params += [dict(p) for p in (*entry.query, *entry.headers)]
    if params:
        op["parameters"] = params
    if entry.body is not None:
        op["requestBody"] = {"required": entry.body_required, "content": _content(entry.body)}
    op["responses"] = {str(status): _success(status, body) for status, body in entry.success().items()}
    problems = _problems(view, entry)
    if authenticated:
        op["security"] = [{"bearer": [scope] if scope else []}]
        op["x-scope"] = scope or "any"
        problems.add(openapi_problems.ProblemType("unauthorized", 401, "Unauthorized"))
        if scope:
            problems.add(openapi_problems.ProblemType("missing-scope", 403, "Forbidden"))
    else:
        op["security"] = []
    by_status: dict[int, set[str]] = {}
    for p in problems:
        if p.status and p.status >= 400:
            by_status.setdefault(p.status, set()).add(p.slug)
    for status, slugs in sorted(by_status.items()):
        op["responses"].setdefault(str(status), {
            "description": f"{_reason(status)}: {', '.join(sorted(slugs))}",
            "content": {"application/problem+json": {"schema": _PROBLEM}}})
    op["responses"]["default"] = {
        "description": "Any other error, as a problem document (e.g. 413 payload-too-large, 503 "
                       "database-unavailable or queue-unavailable with Retry-After, 500 internal-error)",
        "content": {"application/problem+json": {"schema": _PROBLEM}}}
    op["x-problem-types"] = sorted({p.slug for p in problems})
    return op


def _problems(view, entry) -> set:
    from gateway.api import openapi_problems
    if view is not None:
        found = openapi_problems.of_view(view)
    else:
        module, _, qualname = entry.handler.partition(":")
        found = openapi_problems.of_function(module, qualname)
    for module in entry.raises:
        found |= openapi_problems.of_module(module)
    return found


def _path_param(name: str, converter: str, entry) -> dict:
    schema = entry.path_types.get(name) or (
        {"type": "string", "format": "uuid"} if name.endswith("_id") or converter == "uuid" else {"type": "string"})
    return {"in": "path", "name": name, "required": True, "schema": dict(schema)}


def _content(body) -> dict:
    """A schema (class, instance or JSON Schema dict) as JSON, or {media type: schema} as given."""
    if isinstance(body, dict) and all("/" in k for k in body):
        return {media: {"schema": schema} if schema is not None else {} for media, schema in body.items()}
    return {"application/json": {"schema": body}}


def _success(status: int, body) -> dict:
    out = {"description": _reason(status)}
    if body is not None:
        out["content"] = _content(body)
    return out


def _reason(status: int) -> str:
    from http import HTTPStatus
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return str(status)


# --- webhooks (the events the gateway posts to webhook endpoints) -------------------------------------------

WEBHOOK_HEADERS = (
    ("webhook-id", "The event's id: the same on every retry of one delivery, so a receiver can deduplicate."),
    ("webhook-timestamp", "Unix seconds when this attempt was signed; refuse ones far from your clock."),
    ("webhook-signature", "Space-separated `v1,<base64 HMAC-SHA256>` signatures (Standard Webhooks) of "
                          "`{webhook-id}.{webhook-timestamp}.{body}` with the endpoint's secret; during a secret "
                          "rotation there is one per valid secret."),
)


def _webhooks(spec) -> dict:
    """One webhook per event type; registers each type's data schema as a component."""
    from gateway import event_types
    out = {}
    for name, kind in event_types.TYPES.items():
        schema_name = kind.schema.__name__ + "Data"
        if schema_name not in spec.components.schemas:
            spec.components.schema(schema_name, schema=kind.schema)
        envelope = {
            "type": "object", "required": ["id", "type", "timestamp", "account_id", "data"],
            "properties": {
                "id": {"type": "string", "description": "The event's id (also the webhook-id header)."},
                "type": {"type": "string", "const": name},
                "timestamp": {"type": "string", "format": "date-time", "description": "When it happened (UTC)."},
                "account_id": {"type": "string", "format": "uuid"},
                "data": {"$ref": f"#/components/schemas/{schema_name}"},
            },
        }
        if name.startswith("message."):
            envelope["properties"]["content"] = {
                "type": "object", "description": "The message's content (text, media, buttons), read from the live "
                "record when the delivery is made; only for endpoints with include_content whose key may read it."}
        out[name] = {"post": {
            "summary": kind.description, "tags": ["Events"], "operationId": "event_" + name.replace(".", "_"),
            "description": f"Sent to webhook endpoints subscribed to `{name}` (or `*`) whose key has the scope "
                           f"`{kind.scope}`.",
            "x-scope": kind.scope,
            "parameters": [{"in": "header", "name": h, "required": True, "schema": {"type": "string"},
                            "description": d} for h, d in WEBHOOK_HEADERS],
            "requestBody": {"required": True, "content": {"application/json": {"schema": envelope}}},
            "responses": {"2XX": {"description": "Received. Any other answer, or none in time, is retried with "
                                                 "backoff and the delivery log shows why."}},
        }}
    return out


# --- routes --------------------------------------------------------------------------------------------------

@bp.get("/openapi.json")
def openapi_json():
    body = current_app.extensions.get("openapi_json")
    if body is None:   # half a megabyte: serialised once too
        body = current_app.extensions["openapi_json"] = json.dumps(document())
    return Response(body, 200, mimetype="application/json")


@bp.get("/docs")
def reference_page():
    from gateway.api.openapi_docs import render
    html = current_app.extensions.get("openapi_html")
    if html is None:
        html = current_app.extensions["openapi_html"] = render(document())
    return Response(html, 200, mimetype="text/html")
