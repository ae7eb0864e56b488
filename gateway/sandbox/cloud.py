"""WhatsApp Cloud API: sends, mark-as-read, media and message templates (protocols.md B).

``POST /{version}/{phone_number_id}/messages`` validates the body the way Meta does
(code 100 for a missing or malformed field, 131009 for a value out of range), applies
the faults, answers ``{"messaging_product", "contacts", "messages": [{"id": wamid}]}``
and queues the signed status webhooks (sent → delivered → read, or failed).
"""
from __future__ import annotations

import re
import time
from typing import Any

from gateway.sandbox import errors, ids
from gateway.sandbox.callbacks import (Request, Step, meta_request, whatsapp_envelope, whatsapp_status_item,
                                      whatsapp_statuses)
from gateway.sandbox.core import Req, Response, Sandbox

TYPES = ("text", "image", "video", "audio", "document", "sticker", "template", "interactive", "location",
         "contacts", "reaction")
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
CAPTIONED = ("image", "video", "document")
INTERACTIVE_TYPES = ("button", "list", "cta_url", "product", "product_list", "flow", "location_request_message",
                     "catalog_message", "call_permission_request", "address_message", "voice_call")
TEMPLATE_COMPONENTS = ("header", "body", "button", "footer", "carousel", "limited_time_offer", "order_status")
_PHONE_CHARS = re.compile(r"[\s\-().]")
_BSUID = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?\d{6,}$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


class Invalid(Exception):
    def __init__(self, code: int, message: str, details: str):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def _required(name: str) -> Invalid:
    return Invalid(100, f"(#100) The parameter {name} is required.", f"The parameter {name} is required.")


def _param(name: str, problem: str) -> Invalid:
    return Invalid(100, f"(#100) Param {name} {problem}", f"Param {name} {problem}")


def _value(details: str) -> Invalid:
    return Invalid(131009, "(#131009) Parameter value is not valid", details)


def _text(obj: Any, key: str, where: str, *, max_len: int | None = None, required: bool = True,
          allow_empty: bool = False) -> str | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None or (value == "" and not allow_empty):
        if required:
            raise _required(f"{where}['{key}']")
        return None
    if not isinstance(value, str):
        raise _param(f"{where}['{key}']", "must be a string.")
    if max_len is not None and len(value) > max_len:
        raise _param(f"{where}['{key}']", f"must be at most {max_len} characters long.")
    return value


def recipient(to: Any) -> tuple[str, str]:
    """(kind, normalised) for ``to``: ('phone', digits) or ('bsuid', id); raises Invalid."""
    if to is None or to == "":
        raise _required("to")
    if not isinstance(to, str):
        raise _param("to", "must be a string.")
    if _BSUID.match(to):
        return "bsuid", to
    bare = _PHONE_CHARS.sub("", to)
    if bare.startswith("+"):
        bare = bare[1:]
    if not bare.isdigit() or not 7 <= len(bare) <= 15 or bare.startswith("0"):
        raise Invalid(100, "(#100) Invalid parameter",
                      f"Param to ({to!r}) is not a valid WhatsApp phone number: use E.164 digits with the "
                      "country code")
    return "phone", bare


def validate(doc: Any) -> str:
    """The message type of a valid send body ('read' for mark-as-read); raises Invalid like Meta would."""
    if not isinstance(doc, dict):
        raise Invalid(100, "(#100) Invalid parameter", "The request body must be a JSON object.")
    product = doc.get("messaging_product")
    if product is None:
        raise _required("messaging_product")
    if product != "whatsapp":
        raise _param("messaging_product", f'must be one of {{WHATSAPP}} - got "{product}".')
    if "status" in doc:
        if doc["status"] != "read":
            raise _param("status", f'must be one of {{READ}} - got "{doc["status"]}".')
        if not isinstance(doc.get("message_id"), str) or not doc["message_id"]:
            raise _required("message_id")
        return "read"
    if doc.get("recipient_type", "individual") not in ("individual", "group"):
        raise _param("recipient_type", f'must be one of {{INDIVIDUAL, GROUP}} - got "{doc["recipient_type"]}".')
    recipient(doc.get("to"))
    kind = doc.get("type", "text")
    if kind not in TYPES:
        raise _param("type", f"must be one of {{{', '.join(t.upper() for t in TYPES)}}} - got \"{kind}\".")
    obj = doc.get(kind)
    if kind == "contacts":
        if not isinstance(obj, list) or not obj:
            raise _required("contacts")
    elif not isinstance(obj, dict):
        raise _required(kind)
    context = doc.get("context")
    if context is not None and (not isinstance(context, dict) or not isinstance(context.get("message_id"), str)):
        raise _required("context['message_id']")
    tracker = doc.get("biz_opaque_callback_data")
    if tracker is not None and (not isinstance(tracker, str) or len(tracker) > 512):
        raise _param("biz_opaque_callback_data", "must be a string of at most 512 characters.")
    _CHECKS[kind](obj, kind)
    return kind


def _check_text(obj: dict, kind: str) -> None:
    _text(obj, "body", "text", max_len=4096)
    if "preview_url" in obj and not isinstance(obj["preview_url"], bool):
        raise _param("text['preview_url']", "must be a boolean.")


def _check_media(obj: dict, kind: str) -> None:
    has_id, has_link = obj.get("id") not in (None, ""), obj.get("link") not in (None, "")
    if has_id == has_link:
        raise Invalid(100, "(#100) Invalid parameter",
                      f"Param {kind} must contain exactly one of 'id' (an uploaded media id) or 'link'.")
    if has_link and (not isinstance(obj["link"], str) or not obj["link"].startswith(("http://", "https://"))):
        raise _param(f"{kind}['link']", "must be a valid http(s) URL.")
    if has_id and not isinstance(obj["id"], str):
        raise _param(f"{kind}['id']", "must be a string.")
    if "caption" in obj:
        if kind not in CAPTIONED:
            raise _param(f"{kind}['caption']", "is not allowed for this media type.")
        _text(obj, "caption", kind, max_len=1024, required=False)
    if "filename" in obj:
        if kind != "document":
            raise _param(f"{kind}['filename']", "is only allowed for documents.")
        _text(obj, "filename", kind, max_len=240, required=False)


def _check_template(obj: dict, kind: str) -> None:
    _text(obj, "name", "template", max_len=512)
    language = obj.get("language")
    if not isinstance(language, dict):
        raise _required("template['language']")
    _text(language, "code", "template['language']")
    components = obj.get("components", [])
    if not isinstance(components, list):
        raise _param("template['components']", "must be an array.")
    for n, comp in enumerate(components):
        where = f"template['components'][{n}]"
        if not isinstance(comp, dict):
            raise _param(where, "must be an object.")
        ctype = comp.get("type")
        if not isinstance(ctype, str) or ctype.lower() not in TEMPLATE_COMPONENTS:
            raise _param(f"{where}['type']", f"must be one of {{{', '.join(c.upper() for c in TEMPLATE_COMPONENTS)}}}"
                                             f" - got \"{ctype}\".")
        if ctype.lower() == "button":
            if not isinstance(comp.get("sub_type"), str):
                raise _required(f"{where}['sub_type']")
            if comp.get("index") is None:
                raise _required(f"{where}['index']")
        params = comp.get("parameters", [])
        if not isinstance(params, list) or any(not isinstance(p, dict) or not isinstance(p.get("type"), str)
                                                for p in params):
            raise _param(f"{where}['parameters']", "must be an array of objects with a type.")


def _check_interactive(obj: dict, kind: str) -> None:
    itype = obj.get("type")
    if itype is None:
        raise _required("interactive['type']")
    if itype not in INTERACTIVE_TYPES:
        raise _param("interactive['type']", f"must be one of {{{', '.join(t.upper() for t in INTERACTIVE_TYPES)}}}"
                                            f" - got \"{itype}\".")
    action = obj.get("action")
    if itype in ("button", "list", "cta_url", "flow", "product", "product_list") and not isinstance(action, dict):
        raise _required("interactive['action']")
    if itype in ("button", "list", "cta_url", "flow"):
        body = obj.get("body")
        if not isinstance(body, dict):
            raise _required("interactive['body']")
        _text(body, "text", "interactive['body']")
        if len(body["text"]) > 1024:
            raise _value("Body text length invalid. Min length: 1, Max length: 1024")
    footer = obj.get("footer")
    if footer is not None:
        text = _text(footer, "text", "interactive['footer']")
        if len(text) > 60:
            raise _value("Footer text length invalid. Min length: 1, Max length: 60")
    if itype == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not buttons:
            raise _required("interactive['action']['buttons']")
        if len(buttons) > 3:
            raise _value(f"buttons: Too many elements ({len(buttons)}); an interactive message has at most 3 "
                         "reply buttons")
        seen_ids, seen_titles = set(), set()
        for n, button in enumerate(buttons):
            where = f"interactive['action']['buttons'][{n}]"
            if not isinstance(button, dict) or button.get("type") != "reply" or not isinstance(button.get("reply"),
                                                                                               dict):
                raise _param(where, "must be {\"type\": \"reply\", \"reply\": {\"id\", \"title\"}}.")
            reply = button["reply"]
            bid = _text(reply, "id", f"{where}['reply']")
            title = _text(reply, "title", f"{where}['reply']")
            if len(bid) > 256:
                raise _value("Button id length invalid. Min length: 1, Max length: 256")
            if len(title) > 20:
                raise _value("Button title length invalid. Min length: 1, Max length: 20")
            if bid in seen_ids or title in seen_titles:
                raise _value("Button titles and ids must be unique")
            seen_ids.add(bid)
            seen_titles.add(title)
    elif itype == "list":
        label = _text(action, "button", "interactive['action']")
        if len(label) > 20:
            raise _value("Button text length invalid. Min length: 1, Max length: 20")
        sections = action.get("sections")
        if not isinstance(sections, list) or not sections:
            raise _required("interactive['action']['sections']")
        if len(sections) > 10:
            raise _value("sections: Too many elements; at most 10 sections")
        rows_total = 0
        for n, section in enumerate(sections):
            where = f"interactive['action']['sections'][{n}]"
            if not isinstance(section, dict) or not isinstance(section.get("rows"), list) or not section["rows"]:
                raise _required(f"{where}['rows']")
            if len(sections) > 1 and not section.get("title"):
                raise _value("Section title is required when there is more than one section")
            if isinstance(section.get("title"), str) and len(section["title"]) > 24:
                raise _value("Section title length invalid. Min length: 1, Max length: 24")
            for m, row in enumerate(section["rows"]):
                rwhere = f"{where}['rows'][{m}]"
                rid = _text(row, "id", rwhere)
                title = _text(row, "title", rwhere)
                desc = _text(row, "description", rwhere, required=False)
                if len(rid) > 200:
                    raise _value("Row id length invalid. Min length: 1, Max length: 200")
                if len(title) > 24:
                    raise _value("Row title length invalid. Min length: 1, Max length: 24")
                if desc is not None and len(desc) > 72:
                    raise _value("Row description length invalid. Min length: 1, Max length: 72")
            rows_total += len(section["rows"])
        if rows_total > 10:
            raise _value(f"rows: Too many elements ({rows_total}); a list message has at most 10 rows")
    elif itype == "cta_url":
        params = action.get("parameters")
        if action.get("name") != "cta_url" or not isinstance(params, dict):
            raise _required("interactive['action']['parameters']")
        _text(params, "display_text", "interactive['action']['parameters']", max_len=20)
        _text(params, "url", "interactive['action']['parameters']")


def _coordinate(obj: dict, key: str, limit: float) -> None:
    value = obj.get(key)
    if value is None:
        raise _required(f"location['{key}']")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _param(f"location['{key}']", "must be a number.") from None
    if isinstance(value, bool) or not -limit <= number <= limit:
        raise _param(f"location['{key}']", f"must be between -{limit:g} and {limit:g}.")


def _check_location(obj: dict, kind: str) -> None:
    _coordinate(obj, "latitude", 90)
    _coordinate(obj, "longitude", 180)


def _check_contacts(obj: list, kind: str) -> None:
    for n, card in enumerate(obj):
        name = card.get("name") if isinstance(card, dict) else None
        if not isinstance(name, dict):
            raise _required(f"contacts[{n}]['name']")
        _text(name, "formatted_name", f"contacts[{n}]['name']")


def _check_reaction(obj: dict, kind: str) -> None:
    _text(obj, "message_id", "reaction")
    if not isinstance(obj.get("emoji"), str):
        raise _required("reaction['emoji']")


_CHECKS = {"text": _check_text, "template": _check_template, "interactive": _check_interactive,
           "location": _check_location, "contacts": _check_contacts, "reaction": _check_reaction,
           **{k: _check_media for k in MEDIA_TYPES}}


def check_template_against_store(sb: Sandbox, cfg: dict, obj: dict) -> int | None:
    """strict_templates: the Cloud API's own checks of a template send (132001, 132015/6, 132000)."""
    name, language = obj["name"], obj["language"]["code"]
    tpl = sb.store.find_template(name, language, cfg["waba_id"]) or sb.store.find_template(name, language)
    if tpl is None or tpl["status"] in ("PENDING", "REJECTED", "IN_APPEAL"):
        return 132001
    if tpl["status"] == "PAUSED":
        return 132015
    if tpl["status"] == "DISABLED":
        return 132016
    sent = {str(c.get("type", "")).lower(): c.get("parameters", []) for c in obj.get("components", [])}
    for comp in tpl.get("components", []):
        ctype = str(comp.get("type", "")).lower()
        if ctype in ("header", "body") and isinstance(comp.get("text"), str):
            expected = len(set(_PLACEHOLDER.findall(comp["text"])))
            if expected != len(sent.get(ctype, [])):
                return 132000
    return None


def token_error(sb: Sandbox, req: Req, scope: str) -> Response | None:
    token = req.bearer() or req.arg("access_token")
    if not token:
        status, body = errors.graph_error(401, "An access token is required to request this resource.", 190)
        return status, body, {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'}
    expected = sb.faults.effective((scope,))["access_token"]
    if expected is not None and token != expected:
        status, body = errors.graph_error(401, "Invalid OAuth access token - Cannot parse access token", 190)
        return status, body, {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'}
    return None


def infrastructure_fault(sb: Sandbox, cfg: dict, kind: str | None) -> Response | None:
    """429 / 5xx in Graph's envelope (timeouts are slept through by the caller)."""
    if kind == "429":
        status, body = errors.graph_error(429, "(#4) Application request limit reached", 4, transient=True)
        return status, body, {"Retry-After": errors.retry_after(cfg["retry_after_s"])}
    if kind == "5xx":
        code = cfg["status_5xx_code"]
        if code == 503:
            status, body = errors.graph_error(503, "(#2) Service temporarily unavailable", 2, transient=True)
        else:
            status, body = errors.graph_error(code, "An unknown error has occurred.", 1, transient=True)
        return status, body, None
    return None


def send(sb: Sandbox, req: Req, version: str, phone_number_id: str, doc: Any) -> Response:
    denied = token_error(sb, req, phone_number_id)
    rec = {"provider": "whatsapp", "method": req.method, "path": req.path, "channel_id": phone_number_id,
           "recipient": None, "type": None, "body": doc, "provider_message_id": None,
           "received_at": req.received_at, "http_status": 0, "error_code": None, "fault": None}
    if denied:
        return _finish(sb, rec, denied, error_code=190)
    to_digits = None
    if isinstance(doc, dict) and isinstance(doc.get("to"), str):
        to_digits = ids.digits(doc["to"]) if not _BSUID.match(doc["to"]) else doc["to"]
        rec["recipient"] = to_digits
    cfg = sb.faults.effective((phone_number_id, f"to:{to_digits}") if to_digits else (phone_number_id,))
    sb.sleep(sb.faults.latency_s(cfg))
    fault = sb.faults.infrastructure(cfg)
    if fault == "timeout":
        rec["fault"] = "timeout"
        sb.sleep(cfg["timeout_s"])
    else:
        answer = infrastructure_fault(sb, cfg, fault)
        if answer is not None:
            rec["fault"] = fault
            return _finish(sb, rec, answer, error_code=answer[1]["error"]["code"])
    try:
        kind = validate(doc)
    except Invalid as bad:
        status, body = errors.whatsapp_error(bad.code, bad.details, message=bad.message)
        return _finish(sb, rec, (status, body, None), error_code=bad.code)
    rec["type"] = kind
    if kind == "read":
        return _finish(sb, rec, (200, {"success": True}, None))
    code = None
    if kind == "template" and cfg["strict_templates"]:
        code = check_template_against_store(sb, cfg, doc["template"])
    if code is None:
        code = sb.faults.provider_error(cfg, "whatsapp_error_code")
        if code == 131047 and kind == "template":
            code = None      # outside the 24 h window a template is exactly what Meta accepts
        if code is not None and cfg["async_failure"]:
            rec["fault"] = f"async:{code}"
            return _accept(sb, req, cfg, rec, doc, phone_number_id, kind, failure=code)
    if code is not None:
        rec["fault"] = rec["fault"] or f"error:{code}"
        status, body = errors.whatsapp_error(code, cfg["error_details"])
        return _finish(sb, rec, (status, body, None), error_code=code)
    return _accept(sb, req, cfg, rec, doc, phone_number_id, kind)


def _finish(sb: Sandbox, rec: dict, answer: Response, *, error_code: int | None = None) -> Response:
    rec["http_status"] = answer[0]
    rec["error_code"] = error_code
    sb.store.record(rec)
    sb.store.count("requests", f"whatsapp:{answer[0]}")
    return answer


def _accept(sb: Sandbox, req: Req, cfg: dict, rec: dict, doc: dict, phone_number_id: str, kind: str, *,
            failure: int | None = None) -> Response:
    rkind, normalised = recipient(doc["to"])
    wamid = ids.wamid(normalised if rkind == "phone" else "")
    rec["provider_message_id"] = wamid
    contact = {"input": doc["to"], "wa_id": normalised} if rkind == "phone" else {"input": doc["to"],
                                                                                  "user_id": normalised}
    body = {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": wamid}]}
    if kind == "template":
        body["messages"][0]["message_status"] = "accepted"
    answer = _finish(sb, rec, (200, body, None))
    schedule_statuses(sb, cfg, rec, doc, phone_number_id, wamid, normalised, kind, failure=failure)
    return answer


def _pricing(sb: Sandbox, doc: dict, kind: str) -> dict:
    if kind == "template":
        tpl = sb.store.find_template(doc["template"]["name"], doc["template"]["language"]["code"])
        category = (tpl or {}).get("category", "UTILITY").lower()
        return {"billable": True, "pricing_model": "PMP", "category": category, "type": "regular"}
    return {"billable": False, "pricing_model": "PMP", "category": "service", "type": "free_customer_service"}


def schedule_statuses(sb: Sandbox, cfg: dict, rec: dict, doc: dict, phone_number_id: str, wamid: str,
                      recipient_id: str, kind: str, *, failure: int | None = None) -> None:
    if not cfg["callbacks"] or not cfg["gateway_url"]:
        return
    secret = cfg["app_secret"]
    if not secret:
        sb.store.count("callbacks_skipped_no_app_secret")
        return
    url = cfg["gateway_url"].rstrip("/") + "/webhooks/whatsapp"
    delay = cfg["status_delay_ms"] / 1000.0
    window = cfg["batch_window_ms"] / 1000.0
    where = {"phone_number_id": phone_number_id, "display_phone_number": cfg["display_phone_number"],
             "waba_id": cfg["waba_id"]}
    details = cfg["error_details"]
    pricing = _pricing(sb, doc, kind)
    tracker = doc.get("biz_opaque_callback_data")
    key = ("whatsapp", url, secret, phone_number_id, cfg["waba_id"], cfg["display_phone_number"])

    def wrap(items: list) -> Any:
        return meta_request(url, whatsapp_statuses(items=items, **where), secret)

    def step(status: str) -> Step:
        def item():
            errs = [errors.whatsapp_webhook_error(failure, details)] if status == "failed" else None
            return whatsapp_status_item(wamid=wamid, status=status, recipient_id=recipient_id,
                                        biz_opaque_callback_data=tracker, errors=errs, pricing=pricing)

        def sent(http_status):
            rec["callback_status"] = status
            rec["callback_http_status"] = http_status
        return Step(f"whatsapp:{status}", delay, None, wamid, sent, batch_key=key, item=item, wrap=wrap,
                    window_s=window)

    words = ["failed"] if failure is not None else list(cfg["statuses"])
    sb.dispatcher.submit([step(word) for word in words])


# -- media ---------------------------------------------------------------------------------------------------
def upload_media(sb: Sandbox, phone_number_id: str, denied: Response | None, form: dict, files: dict
                 ) -> Response:
    if denied:
        return denied
    if form.get("messaging_product") != "whatsapp":
        status, body = errors.whatsapp_error(100, "Param messaging_product must be 'whatsapp'",
                                             message="(#100) The parameter messaging_product is required.")
        return status, body, None
    upload = files.get("file")
    if upload is None:
        status, body = errors.whatsapp_error(100, "The parameter file is required.",
                                             message="(#100) The parameter file is required.")
        return status, body, None
    data = upload.read()
    mime = form.get("type") or upload.mimetype or "application/octet-stream"
    item = sb.store.put_media(data, mime, owner=phone_number_id, filename=upload.filename)
    sb.store.count("media_uploads")
    return 200, {"id": item["id"]}, None


def unknown_object(object_id: str) -> Response:
    status, body = errors.graph_error(
        400, f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
             "missing permissions, or does not support this operation. Please read the Graph API documentation "
             "at https://developers.facebook.com/docs/graph-api", 100, subcode=33, error_type="GraphMethodException")
    return status, body, None


def media_info(sb: Sandbox, req: Req, media_id: str) -> Response:
    denied = token_error(sb, req, "*")
    if denied:
        return denied
    item = sb.store.get_media(media_id)
    if item is None:
        return unknown_object(media_id)
    return 200, {"messaging_product": "whatsapp", "url": f"{req.host_url}/media-files/{media_id}",
                 "mime_type": item["mime_type"], "sha256": item["sha256"], "file_size": item["file_size"],
                 "id": media_id}, None


def media_delete(sb: Sandbox, req: Req, media_id: str) -> Response:
    denied = token_error(sb, req, "*")
    if denied:
        return denied
    if not sb.store.delete_media(media_id):
        return unknown_object(media_id)
    return 200, {"success": True}, None


def media_bytes(sb: Sandbox, req: Req, media_id: str) -> Response:
    if not req.bearer():
        # lookaside.fbsbx.com answers an anonymous fetch with an HTML page, not the file.
        return 404, b"<html><body>Sorry, this content isn't available right now</body></html>", {
            "Content-Type": "text/html; charset=utf-8"}
    item = sb.store.get_media(media_id)
    if item is None:
        return 404, b"<html><body>Sorry, this content isn't available right now</body></html>", {
            "Content-Type": "text/html; charset=utf-8"}
    headers = {"Content-Type": item["mime_type"]}
    if item.get("filename"):
        headers["Content-Disposition"] = f'attachment; filename="{item["filename"]}"'
    return 200, item["data"], headers


# -- templates -----------------------------------------------------------------------------------------------
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")


def public_template(tpl: dict) -> dict:
    return {k: v for k, v in tpl.items() if not k.startswith("_")}


def create_template(sb: Sandbox, req: Req, waba_id: str, doc: Any) -> Response:
    denied = token_error(sb, req, waba_id)
    if denied:
        return denied
    try:
        if not isinstance(doc, dict):
            raise Invalid(100, "(#100) Invalid parameter", "The request body must be a JSON object.")
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            raise _required("name")
        if not _TEMPLATE_NAME.match(name):
            raise _param("name", "must contain only lowercase letters, digits and underscores.")
        language = doc.get("language")
        if not isinstance(language, str) or not language:
            raise _required("language")
        category = doc.get("category")
        if not isinstance(category, str) or category.upper() not in CATEGORIES:
            raise _param("category", f"must be one of {{{', '.join(CATEGORIES)}}} - got \"{category}\".")
        components = doc.get("components")
        if not isinstance(components, list) or not components:
            raise _required("components")
        if not any(isinstance(c, dict) and str(c.get("type", "")).upper() == "BODY" for c in components):
            raise _value("A template needs a BODY component")
    except Invalid as bad:
        status, body = errors.whatsapp_error(bad.code, bad.details, message=bad.message)
        return status, body, None
    cfg = sb.faults.effective((waba_id,))
    tpl = {"id": ids.graph_id(), "name": name, "language": language, "status": cfg["template_status"],
           "category": category.upper(), "components": components, "_waba_id": waba_id}
    if doc.get("parameter_format"):
        tpl["parameter_format"] = doc["parameter_format"]
    if sb.store.add_template(tpl) is None:
        status, body = errors.graph_error(
            400, "Invalid parameter", 100, subcode=2388024)
        body["error"]["error_user_title"] = "Content in this language already exists"
        body["error"]["error_user_msg"] = (f"{language} already has content for {name}; edit the existing "
                                           "template or use another name.")
        return status, body, None
    sb.store.count("templates_created")
    return 200, {"id": tpl["id"], "status": tpl["status"], "category": tpl["category"]}, None


def list_templates(sb: Sandbox, req: Req, waba_id: str) -> Response:
    denied = token_error(sb, req, waba_id)
    if denied:
        return denied
    items = [public_template(t) for t in sb.store.list_templates(waba_id)]
    for key in ("name", "status", "language", "category"):
        wanted = req.arg(key)
        if wanted:
            items = [t for t in items if str(t.get(key, "")).lower() == wanted.lower()]
    limit = req.arg("limit")
    if limit and limit.isdigit():
        items = items[:int(limit)]
    paging = {"cursors": {"before": "QVFIUk", "after": "QVFIUk"}} if items else {"cursors": {}}
    return 200, {"data": items, "paging": paging}, None


def set_template_status(sb: Sandbox, template_id: str, status: str, reason: str | None) -> dict | None:
    """Moves a template to ``status`` and tells the gateway (message_template_status_update)."""
    tpl = sb.store.get_template(template_id)
    if tpl is None:
        return None
    tpl["status"] = status
    event = _status_event(sb, tpl, status, reason)
    if event is not None:
        sb.dispatcher.submit([Step(f"whatsapp:template:{status}", 0.0, lambda: event, tpl["id"])])
    return public_template(tpl)


def _status_event(sb: Sandbox, tpl: dict, status: str, reason: str | None) -> Request | None:
    """The signed message_template_status_update for ``tpl`` (None when no webhook is configured)."""
    cfg = sb.faults.effective((tpl["_waba_id"],))
    if not (cfg["callbacks"] and cfg["gateway_url"] and cfg["app_secret"]):
        return None
    url = cfg["gateway_url"].rstrip("/") + "/webhooks/whatsapp"
    value = {"event": status, "message_template_id": int(tpl["id"]), "message_template_name": tpl["name"],
             "message_template_language": tpl["language"], "reason": reason or "NONE",
             "message_template_category": tpl["category"]}
    return meta_request(url, whatsapp_envelope(tpl["_waba_id"], value, "message_template_status_update"),
                        cfg["app_secret"])


def _template_error(title: str, message: str) -> Response:
    """Meta's Business Management answer to a template request it refuses: code 100 with a user title and message.

    No subcode: Meta documents only codes 100 and 200 for template edits and deletes, and no source we have
    gives the subcodes it adds (2388xxx), so the sandbox does not invent them."""
    status, body = errors.graph_error(400, "Invalid parameter", 100)
    body["error"]["error_user_title"] = title
    body["error"]["error_user_msg"] = message
    return status, body, None


def delete_templates(sb: Sandbox, req: Req, waba_id: str) -> Response:
    """``DELETE /{waba_id}/message_templates?name=…[&hsm_id=…]``: every language of the name, or the one template."""
    denied = token_error(sb, req, waba_id)
    if denied:
        return denied
    name, hsm_id = req.arg("name"), req.arg("hsm_id")
    if not name:
        status, body = errors.graph_error(400, "(#100) The parameter name is required", 100)
        return status, body, None
    if hsm_id is not None:
        tpl = sb.store.get_template(hsm_id)
        if tpl is None or tpl["_waba_id"] != waba_id:
            return _template_error("Message template not found",
                                   f"There is no message template with id {hsm_id} in this WhatsApp Business "
                                   "Account.")
        if tpl["name"] != name:
            return _template_error("Template name does not match",
                                   f"Message template {hsm_id} is named {tpl['name']!r}, not {name!r}.")
    if not sb.store.delete_templates(waba_id, name, hsm_id):
        return _template_error("Message template not found",
                               f"There is no message template named {name!r} in this WhatsApp Business Account.")
    sb.store.count("templates_deleted")
    return 200, {"success": True}, None


EDITABLE = ("APPROVED", "REJECTED", "PAUSED")
DAY_S = 24 * 3600
EDITS_PER_30_DAYS = 10


def _edit_doc(doc: Any) -> dict:
    """The fields of an edit body Meta takes (components, category, message_send_ttl_seconds); raises Invalid."""
    if not isinstance(doc, dict):
        raise Invalid(100, "(#100) Invalid parameter", "The request body must be a JSON object.")
    for fixed in ("name", "language"):
        if fixed in doc:
            raise _param(fixed, "can't be changed by an edit: create a new template instead.")
    out: dict[str, Any] = {}
    if "components" in doc:
        components = doc["components"]
        if not isinstance(components, list) or not components:
            raise _param("components", "must be a non-empty array.")
        if not any(isinstance(c, dict) and str(c.get("type", "")).upper() == "BODY" for c in components):
            raise _value("A template needs a BODY component")
        out["components"] = components
    if "category" in doc:
        category = doc["category"]
        if not isinstance(category, str) or category.upper() not in CATEGORIES:
            raise _param("category", f"must be one of {{{', '.join(CATEGORIES)}}} - got \"{category}\".")
        out["category"] = category.upper()
    if "message_send_ttl_seconds" in doc:
        ttl = doc["message_send_ttl_seconds"]
        if isinstance(ttl, bool) or not isinstance(ttl, int):
            raise _param("message_send_ttl_seconds", "must be an integer.")
        out["message_send_ttl_seconds"] = ttl
    if not out:
        raise _required("components")
    return out


def _apply_edit(tpl: dict, changes: dict, now: float) -> Response | None:
    """Meta's edit rules, then the edit itself; runs under the store's lock. An answer when refused."""
    status = tpl["status"]
    if status not in EDITABLE:
        return _template_error("Template can't be edited",
                               f"This template's status is {status}, which does not allow edits: only APPROVED, "
                               "REJECTED or PAUSED templates can be edited.")
    edits = tpl.setdefault("_edits", [])
    if status == "APPROVED":
        if changes.get("category", tpl["category"]) != tpl["category"]:
            return _template_error("Category can't be changed",
                                   f"The category of an approved template can't be edited (it is "
                                   f"{tpl['category']}); create a new template instead.")
        # Only edits of an approved template count: rejected or paused ones may be edited without limit.
        if any(now - at < DAY_S for at in edits):
            return _template_error("Edit limit reached",
                                   "An approved template can be edited once in 24 hours; try again later.")
        if sum(1 for at in edits if now - at < 30 * DAY_S) >= EDITS_PER_30_DAYS:
            return _template_error("Edit limit reached",
                                   f"An approved template can be edited {EDITS_PER_30_DAYS} times in 30 days; "
                                   "try again later.")
        edits.append(now)
    tpl.update(changes)
    tpl["status"] = "PENDING"
    tpl["_revision"] = tpl.get("_revision", 0) + 1
    return None


def edit_template(sb: Sandbox, req: Req, template_id: str, doc: Any) -> Response:
    """``POST /{template_id}``: new components (and category), back to PENDING, then reviewed like a new one."""
    tpl = sb.store.get_template(template_id) if template_id.isdigit() else None
    denied = token_error(sb, req, tpl["_waba_id"] if tpl else "*")
    if denied:
        return denied
    if tpl is None:
        return unknown_object(template_id)
    try:
        changes = _edit_doc(doc)
    except Invalid as bad:
        status, body = errors.whatsapp_error(bad.code, bad.details, message=bad.message)
        return status, body, None
    refused = sb.store.update_template(template_id, lambda t: _apply_edit(t, changes, time.time()))
    if refused is not None:
        return refused
    sb.store.count("templates_edited")
    _schedule_review(sb, tpl)
    return 200, {"success": True}, None


def _schedule_review(sb: Sandbox, tpl: dict) -> None:
    """The review of an edit: ``template_review_ms`` later the template takes ``template_status``, the same
    outcome a new template gets, with its status webhook. With template_status PENDING it stays pending
    (move it with POST /_sandbox/templates/{id}/status)."""
    cfg = sb.faults.effective((tpl["_waba_id"],))
    outcome = cfg["template_status"]
    if outcome == "PENDING":
        return
    revision = tpl["_revision"]

    def decide(current: dict) -> bool:
        # A later edit, a manual status change or a delete since this edit makes this review stale.
        if current.get("_revision") != revision or current["status"] != "PENDING":
            return False
        current["status"] = outcome
        return True

    def review() -> Request | None:
        return _status_event(sb, tpl, outcome, None) if sb.store.update_template(tpl["id"], decide) else None
    sb.dispatcher.submit([Step(f"whatsapp:template:{outcome}", cfg["template_review_ms"] / 1000.0, review,
                               tpl["id"])])
