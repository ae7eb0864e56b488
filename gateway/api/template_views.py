"""REST views for the WhatsApp templates catalog: sync with Meta, submit, edit, delete, list, read, preview."""
from __future__ import annotations

from flask import request

from gateway import channels
from gateway.api import paging
from gateway.api.views import bp
from gateway.http import api, json_object, parse_uuid
from gateway.problems import Problem
from templates_catalog import render as renderer
from templates_catalog import push, store, sync


def _view(row: dict) -> dict:
    return {"id": row["id"], "waba_id": row["waba_id"], "name": row["name"], "language": row["language"],
            "category": row["category"], "status": row["status"], "status_reason": row["status_reason"],
            "quality_score": row["quality_score"], "meta_id": row["meta_id"], "definition": row["definition"],
            "sendable": row["status"] == "APPROVED", "synced_at": row["synced_at"], "updated_at": row["updated_at"]}


def _waba(conn, principal, channel_id: str | None) -> str:
    if not channel_id:
        raise Problem(400, "Bad Filter", "give channel_id: templates belong to a WhatsApp channel's business "
                      "account", slug="bad-filter")
    channel = channels.get_channel(conn, account_id=principal.account_id,
                                   channel_id=parse_uuid(channel_id, "channel"))
    if channel is None:
        raise Problem(404, "Not Found", f"no channel with id {channel_id} in this account")
    if not channel.get("group_id"):
        raise Problem(422, "No Business Account", "the channel has no WhatsApp Business Account id: set group_id "
                      "on the channel (PATCH /v1/channels/{id})", slug="no-waba")
    return channel["group_id"]



@bp.post("/templates/sync")
@api(scope="templates:write")
def sync_templates(conn, principal):
    """Pull every template of the channel's WABA from Meta, with status and quality."""
    doc = json_object()
    channel_id = doc.get("channel_id")
    if not isinstance(channel_id, str):
        raise Problem(422, "Validation Failed", "give the WhatsApp channel_id to sync", slug="validation-failed",
                      errors=[{"pointer": "/channel_id", "detail": "required"}])
    try:
        result = sync.pull(conn, account_id=principal.account_id, channel_id=parse_uuid(channel_id, "channel"))
    except sync.SyncError as exc:
        raise Problem(exc.status, "Sync Failed" if exc.status == 502 else "Cannot Sync", str(exc),
                      slug="template-sync-failed" if exc.status == 502 else (exc.code or "cannot-sync"),
                      extra={"provider_code": exc.code} if exc.status == 502 else None) from None
    return result


@bp.get("/templates")
@api(scope="messages:read")
def list_templates(conn, principal):
    waba = _waba(conn, principal, request.args.get("channel_id"))
    rows = store.list_templates(conn, account_id=principal.account_id, waba_id=waba,
                                name=request.args.get("name"), status=(request.args.get("status") or "").upper()
                                or None, limit=paging.limit())
    return {"data": [_view(r) for r in rows]}


def _one(conn, principal, name: str) -> dict:
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    channel_id = request.args.get("channel_id") or body.get("channel_id")
    language = request.args.get("language") or body.get("language")
    wrong = [k for k, v in (("channel_id", channel_id), ("language", language))
             if v is not None and not isinstance(v, str)]
    if wrong:   # from a JSON body they may be anything
        raise Problem(422, "Validation Failed", f"{', '.join(wrong)} must be text", slug="validation-failed",
                      errors=[{"pointer": f"/{k}", "detail": "a string"} for k in wrong])
    waba = _waba(conn, principal, channel_id)
    have = store.languages(conn, account_id=principal.account_id, waba_id=waba, name=name)
    if not have:
        raise Problem(404, "Not Found", f"no template named {name!r} in this business account; sync the catalog "
                      "(POST /v1/templates/sync) or check the name", slug="template-not-found")
    if not language:
        raise Problem(400, "Bad Filter", f"give language: {name!r} exists in {', '.join(have)}", slug="bad-filter",
                      extra={"languages": have})
    row = store.get(conn, account_id=principal.account_id, waba_id=waba, name=name, language=language)
    if row is None:
        raise Problem(404, "Not Found", f"{name!r} has no {language} translation; it exists in "
                      f"{', '.join(have)}", slug="template-language-not-found", extra={"languages": have})
    return row


@bp.get("/templates/<name>")
@api(scope="messages:read")
def get_template(conn, principal, name):
    return _view(_one(conn, principal, name))


@bp.post("/templates/<name>/preview")
@api(scope="messages:read")
def preview_template(conn, principal, name):
    """Parameters → the Cloud API object, the text the customer sees and its plain-text form; or every
    problem with the parameters (422), exactly as a send would be refused."""
    doc = json_object()
    row = _one(conn, principal, name)
    try:
        rendered = renderer.render(row["definition"], doc.get("parameters"))
    except renderer.RenderError as exc:
        raise Problem(422, "Parameters Do Not Fit", f"{len(exc.issues)} problem(s) with the parameters: see "
                      "errors", slug="template-parameters", errors=[
                          {"pointer": "/parameters", "detail": str(issue), **issue.as_dict()}
                          for issue in exc.issues]) from None
    return {"template": _view(row), "cloud_api": rendered.cloud_api, "text": rendered.text,
            "sms_text": rendered.sms_text, "sendable": row["status"] == "APPROVED"}


_OUTCOME_STATUS = {"created": 201, "updated": 200, "unchanged": 200}


def _submit(conn, principal, doc: dict, *, edit: bool):
    channel_id = doc.pop("channel_id", None)
    if not isinstance(channel_id, str):
        raise Problem(422, "Validation Failed", "give the WhatsApp channel_id whose business account gets the "
                      "template", slug="validation-failed", errors=[{"pointer": "/channel_id", "detail": "required"}])
    try:
        outcome = push.submit(conn, account_id=principal.account_id,
                              channel_id=parse_uuid(channel_id, "channel"), definition=doc, edit=edit)
    except push.PushError as exc:
        raise Problem(exc.status, "Cannot Submit", str(exc), slug=exc.code or "cannot-submit") from None
    if outcome.result == "invalid":
        raise Problem(422, "Invalid Template", f"{len(outcome.problems)} problem(s) with the definition: see "
                      "errors; Meta would reject it", slug="invalid-template", errors=[
                          {"pointer": i.pointer, "detail": i.message, "rule": i.rule} for i in outcome.problems])
    if outcome.result == "refused":
        raise Problem(409, "Cannot Change Template", outcome.detail, slug="template-change-refused")
    if outcome.result == "failed":
        raise Problem(502, "Meta Refused", outcome.detail, slug="template-submit-failed",
                      extra={"provider_code": outcome.code})
    return {"result": outcome.result, "detail": outcome.detail, "template": _view(outcome.template)}, \
        _OUTCOME_STATUS[outcome.result]


@bp.post("/templates")
@api(scope="templates:write")
def create_template(conn, principal):
    """Validate a definition (Meta's create body plus channel_id) and submit it for review; 422 lists every
    problem, 409 when that name and language already exist with other content (edit it with PUT)."""
    return _submit(conn, principal, json_object(), edit=False)


@bp.put("/templates/<name>")
@api(scope="templates:write")
def edit_template(conn, principal, name):
    """Edit a template (Meta's whole definition, same name and language): Meta reviews it again."""
    doc = json_object()
    if doc.get("name", name) != name:
        raise Problem(422, "Validation Failed", "a template's name cannot change; submit a new template instead",
                      slug="validation-failed", errors=[{"pointer": "/name", "detail": f"must be {name!r}"}])
    doc["name"] = name
    return _submit(conn, principal, doc, edit=True)


@bp.delete("/templates/<name>")
@api(scope="templates:write")
def delete_template(conn, principal, name):
    """Delete a template at Meta and from the catalog: every language, or one with ?language=."""
    channel_id = request.args.get("channel_id")
    _waba(conn, principal, channel_id)
    try:
        removed = push.remove(conn, account_id=principal.account_id, channel_id=parse_uuid(channel_id, "channel"),
                              name=name, language=request.args.get("language") or None)
    except push.PushError as exc:
        raise Problem(exc.status, "Not Found" if exc.status == 404 else "Cannot Delete", str(exc),
                      slug=exc.code or "cannot-delete") from None
    return {"name": name, "language": request.args.get("language"), "deleted": removed}
