"""``/graph/v{N}/{waba-id}/message_templates``: Meta's template edge, served from the gateway's template catalog.

List, create and delete call what ``/v1/templates`` calls (``templates_catalog.store``, ``push.submit``,
``push.remove``): one path to the data, the same validation before anything reaches Meta, the same catalog
rows afterwards. The WABA id is the ``group_id`` of one of the API key's account's WhatsApp channels; any
other is Meta's "object does not exist". Lists read the catalog as it stands - kept in step by Meta's status
webhooks and by ``POST /v1/templates/sync`` (or ``gateway templates``), which the send gate needs too - and
never call Meta on a read.
"""
from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import urlencode

from flask import request

from gateway import runtime
from gateway.facade.auth import graph
from gateway.facade.errors import GraphError, invalid_parameter, no_such_object
from gateway.facade.views import bp
from templates_catalog import push, store

DEFAULT_LIMIT = 25        # Graph's default page size
MAX_LIMIT = 1000
# The catalog of one WABA is read whole, then filtered and paged: Meta allows at most 6,000 templates per
# business (translations included), so this bound is never reached by a real catalog.
CATALOG_MAX = 10_000
# The fields Meta returns when ``fields`` is not given (its list sample, plus parameter_format).
DEFAULT_FIELDS = ("name", "parameter_format", "components", "language", "status", "category", "sub_category", "id")
# Meta codes a template refusal may carry that mean the same to the integration as to Meta's own callers:
# fix the request (100, 131009, 192, 368, 139000, 200002) or retry later (1, 2, 4, 80007, 80008, 131016).
_PASSED_ON = frozenset({1, 2, 4, 100, 131009, 192, 368, 139000, 200002, 80007, 80008, 131016})


class MetaError(GraphError):
    """A GraphError with Meta's top-level extras (``error_user_title``, ``error_user_msg``, ``is_transient``)."""

    def __init__(self, *args, top: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.top = top or {}

    def body(self) -> dict:
        out = super().body()
        out["error"].update(self.top)
        return out


def gateway_base() -> str:
    """The gateway's base URL as clients reach it: GATEWAY_PUBLIC_URL when set, else the request's host."""
    public = runtime.settings().public_url
    return (public or request.host_url).rstrip("/")


def waba_channel(conn, account_id, waba_id: str, method: str) -> dict:
    """One of the account's WhatsApp channels in this business account (an active one first)."""
    row = conn.execute(
        "SELECT id, kind, external_id, group_id, status, settings FROM channels WHERE account_id = %s "
        "AND kind = 'whatsapp' AND group_id = %s ORDER BY (status = 'active') DESC, created_at, id LIMIT 1",
        (account_id, waba_id)).fetchone()
    if row is None:
        raise no_such_object(waba_id, method)
    return row


def _fields() -> tuple[str, ...]:
    raw = request.args.get("fields")
    if not raw:
        return DEFAULT_FIELDS
    # Graph's field expansion (components{type,text}) is answered with the whole field.
    depth, names, current = 0, [], ""
    for ch in raw:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            names.append(current)
            current = ""
        elif depth == 0:
            current += ch
    names.append(current)
    return tuple(n.strip() for n in names if n.strip())


def template_object(row: dict, fields: tuple[str, ...] = DEFAULT_FIELDS) -> dict:
    """A catalog row as Meta's WhatsAppMessageTemplate node: the fields asked for that the catalog knows, and
    ``id`` always (Graph answers it whatever was asked)."""
    definition = row["definition"] or {}
    known = {
        "name": row["name"], "language": row["language"], "status": row["status"], "category": row["category"],
        "components": definition.get("components") or [],
        "parameter_format": str(definition.get("parameter_format") or "POSITIONAL").upper(),
        "quality_score": {"score": row["quality_score"] or "UNKNOWN"},
        "rejected_reason": row["status_reason"] or "NONE",
    }
    for name in ("sub_category", "message_send_ttl_seconds", "library_template_name", "previous_category"):
        if definition.get(name) is not None:
            known[name] = definition[name]
    out = {name: known[name] for name in fields if name in known}
    out["id"] = str(row["meta_id"] or row["id"])
    return out


def _many(name: str) -> set[str] | None:
    """A Graph array parameter: ``A,B`` or ``["A","B"]``, upper-cased; None when not given."""
    raw = request.args.get(name)
    if raw is None or not raw.strip():
        return None
    values = None
    if raw.strip().startswith("["):
        try:
            values = json.loads(raw)
        except ValueError:
            values = None
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise invalid_parameter(f"{name} must be a list of strings, e.g. {name}=A,B or {name}=[\"A\",\"B\"]",
                                    field=name)
    else:
        values = raw.split(",")
    return {v.strip().upper() for v in values if v.strip()}


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid_parameter(f"limit must be a whole number from 1 to {MAX_LIMIT}", field="limit")
    return int(raw)


def _cursor(row: dict) -> str:
    raw = json.dumps([row["name"], row["language"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _position(name: str) -> tuple[str, str] | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        value = None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise invalid_parameter(f"the {name} cursor is not one this endpoint made; use paging.cursors from a "
                                "previous answer", field=name)
    return value[0], value[1]


def _page_url(**cursor) -> str:
    args = {k: v for k, v in request.args.items() if k not in ("after", "before")}
    args.update(cursor)
    return f"{gateway_base()}{request.path}?{urlencode(args)}"


@bp.get("/<version>/<waba_id>/message_templates")
@graph(scope="messages:read")
def list_templates(conn, principal, waba_id):
    """The business account's templates from the catalog, with Meta's filters, fields and cursor paging."""
    waba_channel(conn, principal.account_id, waba_id, "get")
    fields, limit = _fields(), _limit()
    after, before = _position("after"), _position("before")
    if after and before:
        raise invalid_parameter("give either after or before, not both", field="after")
    statuses = _many("status")
    rows = store.list_templates(conn, account_id=principal.account_id, waba_id=waba_id,
                                name=request.args.get("name") or None,
                                status=next(iter(statuses)) if statuses and len(statuses) == 1 else None,
                                limit=CATALOG_MAX)
    wanted = {"status": statuses, "category": _many("category"), "language": _many("language"),
              "quality_score": _many("quality_score")}
    for column, values in wanted.items():
        if values is not None:
            rows = [r for r in rows if str(r[column] or ("UNKNOWN" if column == "quality_score" else "")).upper()
                    in values]
    total = len(rows)
    key = lambda r: (r["name"], r["language"])   # noqa: E731
    rows.sort(key=key)   # code-point order, whatever the database's collation: the cursors compare the same way
    if before is not None:
        earlier = [r for r in rows if key(r) < before]
        page, more_before, more_after = earlier[-limit:], len(earlier) > limit, True
    else:
        later = [r for r in rows if after is None or key(r) > after]
        page, more_before, more_after = later[:limit], after is not None, len(later) > limit
    out: dict = {"data": [template_object(r, fields) for r in page]}
    if page:
        out["paging"] = {"cursors": {"before": _cursor(page[0]), "after": _cursor(page[-1])}}
        if more_after:
            out["paging"]["next"] = _page_url(after=_cursor(page[-1]))
        if more_before:
            out["paging"]["previous"] = _page_url(before=_cursor(page[0]))
    else:
        out["paging"] = {"cursors": {}}
    if "total_count" in (request.args.get("summary") or "").split(","):
        out["summary"] = {"total_count": total}
    return out


def _refusal(title: str, message: str, *, subcode: int | None = None) -> MetaError:
    """Meta's answer to a template request it refuses: code 100 with a user title and message."""
    return MetaError(100, "Invalid parameter", message, subcode=subcode,
                     top={"error_user_title": title, "error_user_msg": message})


def _push_error(exc: push.PushError) -> GraphError:
    """The channel cannot reach Meta's template API (no credentials, Meta unreachable): not the caller's fault."""
    if exc.status == 502:
        return MetaError(2, "Service temporarily unavailable", f"{exc}; retry later", status=503,
                         top={"is_transient": True}, headers={"Retry-After": "30"})
    return GraphError(3, "Capability or permissions issue", f"the gateway's WhatsApp channel for this business "
                      f"account cannot manage templates: {exc}")


def _meta_failed(detail: str, code: str | None) -> GraphError:
    """Meta refused a create or delete the catalog passed on: its code when it means the same to the caller; a
    refusal of the gateway's own channel credentials (190, 10, 200…) is the operator's to fix, not the caller's."""
    number = int(code) if code and code.isdigit() else None
    if code == "network":
        return MetaError(2, "Service temporarily unavailable", f"{detail}; retry later", status=503,
                         top={"is_transient": True}, headers={"Retry-After": "30"})
    if number in _PASSED_ON:
        transient = number in (1, 2, 4, 80007, 80008, 131016)
        return MetaError(number, "Invalid parameter" if number == 100 else "Meta refused the request", detail,
                         status=503 if number in (1, 2, 131016) else 400,
                         top={"is_transient": True} if transient else None)
    if code in ("config", "190", "10", "200", "3", "401", "403"):
        return GraphError(3, "Capability or permissions issue", f"{detail} (the gateway's channel credentials "
                          "for this business account: the operator updates them with PATCH /v1/channels/{id})")
    return GraphError(1, "An unknown error occurred", detail, status=502)


@bp.post("/<version>/<waba_id>/message_templates")
@graph(scope="templates:write")
def create_template(conn, principal, waba_id):
    """Validate Meta's creation body with the catalog's validator and submit it as POST /v1/templates does."""
    channel = waba_channel(conn, principal.account_id, waba_id, "post")
    body = request.get_json(silent=True) if request.mimetype == "application/json" else None
    if not isinstance(body, dict):
        raise invalid_parameter("send the template as a JSON object with Content-Type: application/json: name, "
                                "language, category, components (parameter_format, allow_category_change, "
                                "message_send_ttl_seconds optional)")
    for param in ("name", "language", "category", "components"):
        if body.get(param) in (None, "", []):
            raise GraphError(100, f"The parameter {param} is required.", f"add '{param}' to the template "
                             "(https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account/"
                             "message_templates/#Creating)")
    try:
        outcome = push.submit(conn, account_id=principal.account_id, channel_id=channel["id"], definition=body,
                              edit=False)
    except push.PushError as exc:
        raise _push_error(exc) from None
    if outcome.result == "invalid":
        problems = [{"pointer": i.pointer, "rule": i.rule, "detail": i.message} for i in outcome.problems]
        raise MetaError(100, "Invalid parameter", "; ".join(str(i) for i in outcome.problems),
                        extra={"problems": problems},
                        top={"error_user_title": "Template is not valid",
                             "error_user_msg": f"{len(problems)} problem(s) Meta would reject the template for: "
                                               + "; ".join(p["detail"] for p in problems)})
    if outcome.result == "refused":
        raise _refusal("Content in this language already exists", f"{outcome.name} ({outcome.language}) already "
                       "exists in this business account with different content; use another name, or edit it with "
                       f"PUT /v1/templates/{outcome.name}", subcode=2388024)
    if outcome.result == "failed":
        raise _meta_failed(outcome.detail, outcome.code)
    # created, or unchanged (the same template again: a retried create answers as the first one did)
    row = outcome.template
    return {"id": str(row["meta_id"] or row["id"]), "status": row["status"], "category": row["category"]}


@bp.delete("/<version>/<waba_id>/message_templates")
@graph(scope="templates:write")
def delete_template(conn, principal, waba_id):
    """Delete every language of ``name``, or with ``hsm_id`` the one template, at Meta and from the catalog."""
    channel = waba_channel(conn, principal.account_id, waba_id, "delete")
    name, hsm_id = request.args.get("name"), request.args.get("hsm_id")
    if not name:
        raise GraphError(100, "The parameter name is required", "give the template's name: "
                         "?name=<name> (and &hsm_id=<template id> to delete one language only)")
    language = None
    if hsm_id:
        row = store.get_by_meta_id(conn, account_id=principal.account_id, meta_id=hsm_id)
        if row is None or row["waba_id"] != waba_id:
            raise _refusal("Message template not found", f"There is no message template with id {hsm_id} in "
                           "this WhatsApp Business Account.")
        if row["name"] != name:
            raise _refusal("Template name does not match", f"Message template {hsm_id} is named "
                           f"{row['name']!r}, not {name!r}.")
        language = row["language"]
    try:
        push.remove(conn, account_id=principal.account_id, channel_id=channel["id"], name=name, language=language)
    except push.PushError as exc:
        if exc.status == 404:
            raise _refusal("Message template not found", f"There is no message template named {name!r} in this "
                           "WhatsApp Business Account.") from None
        if exc.status == 502:   # Meta refused or could not be reached
            raise _meta_failed(str(exc), exc.code) from None
        raise _push_error(exc) from None
    return {"success": True}
