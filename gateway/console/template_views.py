"""Console pages for WhatsApp templates (supervisors): the catalog with status and quality, one template with its
components, the validator's findings and Meta's verdict in words, a preview per language (a WhatsApp bubble and
the plain text SMS, Messenger and Instagram get), and a form that submits a new template.

Data comes from the REST API as the signed-in person. The validator and the definition's parameter list are pure
functions of a definition the API returned (templates_catalog has no API for checking a stored template).
"""
from __future__ import annotations

import re

from flask import redirect, render_template, request, url_for

from gateway.console import api_client as api
from gateway.console import auth
from gateway.console.blueprint import bp, error_page, notify
from templates_catalog.definition import Template
from templates_catalog.validate import validate

STATUS_WORDS = {
    "APPROVED": ("ok", "approved", "Meta approved it: it can be sent."),
    "PENDING": ("warn", "in review", "Meta is reviewing it (usually minutes, at most 24 hours); it cannot be sent yet."),
    "IN_APPEAL": ("warn", "in appeal", "A rejection is being appealed; it cannot be sent until Meta decides."),
    "REJECTED": ("bad", "rejected", "Meta rejected it: fix what the reason says and submit it again (edit it)."),
    "PAUSED": ("bad", "paused", "Meta paused it because customers reported or blocked it; it resumes by itself "
                                "or can be edited."),
    "DISABLED": ("bad", "disabled", "Meta disabled it after repeated low quality; submit a new template."),
    "FLAGGED": ("warn", "flagged", "Its quality fell to low: Meta pauses it unless feedback improves within 7 days."),
    "PENDING_DELETION": ("warn", "being deleted", "It was deleted; Meta removes it within 30 days."),
    "LIMIT_EXCEEDED": ("bad", "limit exceeded", "The business account has too many templates; delete unused ones."),
    "LOCKED": ("bad", "locked", "Meta locked it; it cannot be edited."),
}
QUALITY_WORDS = {"GREEN": ("ok", "high quality"), "YELLOW": ("warn", "medium quality"),
                 "RED": ("bad", "low quality"), "UNKNOWN": ("", "quality not rated yet")}
REASON_WORDS = {
    "ABUSIVE_CONTENT": "it contains content Meta considers abusive or against its policies",
    "INVALID_FORMAT": "its format is invalid (parameters, examples or formatting)",
    "INCORRECT_CATEGORY": "its category does not match its content (e.g. marketing text sent as utility)",
    "TAG_CONTENT_MISMATCH": "its category does not match its content",
    "SCAM": "Meta judged it a possible scam",
    "PROMOTIONAL": "it is promotional but not in the MARKETING category",
    "LOW_QUALITY": "customers reported or blocked it too often",
}
CATEGORIES = ("UTILITY", "MARKETING", "AUTHENTICATION")
SAMPLE_MEDIA = {"IMAGE": "https://example.com/sample.jpg", "VIDEO": "https://example.com/sample.mp4",
                "DOCUMENT": "https://example.com/sample.pdf", "GIF": "https://example.com/sample.mp4"}


def status_badge(status: str | None) -> tuple[str, str, str]:
    return STATUS_WORDS.get((status or "").upper(), ("", (status or "unknown").lower().replace("_", " "), ""))


def quality_badge(quality: str | None) -> tuple[str, str]:
    return QUALITY_WORDS.get((quality or "UNKNOWN").upper(), ("", f"quality {quality}"))


def reason_words(reason: str | None) -> str | None:
    if not reason or reason.upper() == "NONE":
        return None
    return REASON_WORDS.get(reason.upper(), reason.replace("_", " ").lower())


def _catalogs():
    """(channels, None) or (None, an error response): the account's WhatsApp channels, each a catalog (its
    business account's templates)."""
    reply = api.get("/v1/channels/summary")
    if not reply.ok:
        return None, error_page(reply.status if reply.status < 500 else 502, "That did not work", reply.detail)
    return [c for c in reply.body["data"] if c["kind"] == "whatsapp"], None


def _chosen(catalogs: list[dict]) -> dict | None:
    wanted = request.values.get("channel_id")
    for row in catalogs:
        if wanted and str(row["id"]) == wanted:
            return row
    return catalogs[0] if catalogs and not wanted else None


# --- the catalog ---------------------------------------------------------------------------------------------

@bp.get("/templates")
@auth.page("supervisor")
def templates():
    catalogs, response = _catalogs()
    if response is not None:
        return response
    catalog = _chosen(catalogs)
    if catalog is None and request.args.get("channel_id"):
        return error_page(404, "Not found", "there is no WhatsApp channel with that id in your account")
    status = (request.args.get("status") or "").upper()
    rows, problem = [], None
    if catalog is not None:
        reply = api.get("/v1/templates", channel_id=catalog["id"], status=status, limit=200)
        if reply.ok:
            rows = reply.body["data"]
        else:
            problem = reply.detail
    return render_template("console/templates.html", catalogs=catalogs, catalog=catalog, groups=_group(rows),
                           status=status, statuses=list(STATUS_WORDS), problem=problem, status_badge=status_badge,
                           quality_badge=quality_badge)


def _group(rows: list[dict]) -> list[dict]:
    """Translations grouped by template name (the API lists one row per name and language)."""
    groups: dict[str, dict] = {}
    for row in rows:
        group = groups.setdefault(row["name"], {"name": row["name"], "category": row["category"], "languages": []})
        group["languages"].append(row)
    return list(groups.values())


@bp.post("/templates/sync")
@auth.page("supervisor")
def templates_sync():
    channel_id = request.form.get("channel_id") or ""
    reply = api.post("/v1/templates/sync", {"channel_id": channel_id})
    target = url_for("console.templates", channel_id=channel_id)
    if not reply.ok:
        return notify(redirect(target), "The catalog was not synced: " + reply.detail, "error")
    return notify(redirect(target), f"Synced with Meta: {reply.body['pulled']} template(s).")


# --- one template --------------------------------------------------------------------------------------------

@bp.get("/templates/<name>")
@auth.page("supervisor")
def template(name):
    catalogs, response = _catalogs()
    if response is not None:
        return response
    catalog = _chosen(catalogs)
    if catalog is None:
        return error_page(404, "Not found", "there is no such template in your account")
    reply = api.get("/v1/templates", channel_id=catalog["id"], name=name, limit=200)
    if not reply.ok:
        return error_page(reply.status if reply.status < 500 else 502, "That did not work", reply.detail)
    if not reply.body["data"]:
        return error_page(404, "Not found", f"there is no template named {name} in this business account; "
                                            "sync the catalog if it was created elsewhere")
    asked = request.args.get("lang")
    translations = [_translation(catalog, row, request.args if row["language"] == asked else None)
                    for row in reply.body["data"]]
    return render_template("console/template_detail.html", name=name, catalog=catalog, catalogs=catalogs,
                           translations=translations, asked=asked, status_badge=status_badge,
                           quality_badge=quality_badge)


def _translation(catalog: dict, row: dict, given) -> dict:
    """One language: its components, the validator's findings, Meta's verdict, and the preview with the
    values typed into its form (``given``) or the definition's own examples."""
    definition = row["definition"]
    fields = parameter_fields(definition, given)
    preview = api.post(f"/v1/templates/{row['name']}/preview", {
        "channel_id": str(catalog["id"]), "language": row["language"], "parameters": parameters(fields)})
    rendered, problems, field_errors = None, [], {}
    if preview.ok:
        rendered = {"bubble": bubble(definition, preview.body["text"]), "text": preview.body["text"],
                    "sms_text": preview.body["sms_text"], "sendable": preview.body["sendable"]}
    elif preview.status == 422:
        for err in (preview.body or {}).get("errors") or []:
            key = field_of(str(err.get("parameter") or ""))
            words = f"{err.get('problem') or ''}; {err.get('fix') or ''}".strip("; ") or str(err.get("detail"))
            if key and any(f["key"] == key for f in fields):
                field_errors.setdefault(key, words)
            else:
                problems.append(f"{err.get('parameter') or 'template'}: {words}")
    else:
        problems.append(preview.detail)
    return {"row": row, "components": components(definition), "issues": validate(definition),
            "reason": reason_words(row.get("status_reason")), "fields": fields, "rendered": rendered,
            "preview_problems": problems, "field_errors": field_errors}


def components(definition: dict) -> list[dict]:
    """The definition's components as the page lists them."""
    out = []
    for comp in definition.get("components") or []:
        if not isinstance(comp, dict):
            continue
        kind = str(comp.get("type") or "").upper()
        item = {"type": kind, "format": str(comp.get("format") or "").upper(), "text": comp.get("text"),
                "buttons": []}
        for button in comp.get("buttons") or []:
            if isinstance(button, dict):
                target = button.get("url") or button.get("phone_number") or button.get("otp_type") or ""
                item["buttons"].append({"type": str(button.get("type") or "").upper().replace("_", " ").lower(),
                                        "text": button.get("text") or "", "target": target})
        if kind == "CAROUSEL":
            item["text"] = f"{len(comp.get('cards') or [])} cards"
        if kind == "BODY" and comp.get("add_security_recommendation"):
            item["text"] = (item["text"] or "") + " (Meta's text, with its security recommendation)"
        out.append(item)
    return out


# --- preview parameters ----------------------------------------------------------------------------------------

def _examples(comp: dict | None, key: str) -> dict[str, str]:
    """Parameter name → the definition's example value for a header (``header_text``) or body (``body_text``)."""
    example = (comp or {}).get("example") or {}
    out = {}
    positional = example.get(key)
    if positional:
        values = positional[0] if isinstance(positional[0], list) else positional
        out.update({str(i + 1): str(v) for i, v in enumerate(values)})
    for named in example.get(f"{key}_named_params") or []:
        if isinstance(named, dict) and named.get("param_name"):
            out[str(named["param_name"])] = str(named.get("example") or "")
    return out


def _component(definition: dict, kind: str) -> dict | None:
    return next((c for c in definition.get("components") or []
                 if isinstance(c, dict) and str(c.get("type") or "").upper() == kind), None)


def parameter_fields(definition: dict, given=None) -> list[dict]:
    """The values a send of this template needs, as form fields (key, label, value), filled from ``given`` (the
    query string of this language's form) or else from the definition's examples."""
    fields = []
    needed = Template.from_meta(definition).parameters()
    header = _component(definition, "HEADER")
    header_format = str((header or {}).get("format") or "").upper()
    if header_format in SAMPLE_MEDIA:
        fields.append({"key": "header", "label": f"Header {header_format.lower()} (link)",
                       "sample": SAMPLE_MEDIA[header_format], "media": header_format.lower()})
    for name in needed.get("header", ()):
        fields.append({"key": "header", "label": "Header {{%s}}" % name,
                       "sample": _examples(header, "header_text").get(name, "")})
    body_examples = _examples(_component(definition, "BODY"), "body_text")
    for name in needed.get("body", ()):
        sample = "123456" if str(definition.get("category") or "").upper() == "AUTHENTICATION" else ""
        fields.append({"key": f"body.{name}", "label": "Body {{%s}}" % name, "name": name,
                       "sample": body_examples.get(name, sample)})
    buttons = (_component(definition, "BUTTONS") or {}).get("buttons") or []
    for place in needed:
        if place.startswith("button:"):
            index = int(place.split(":")[1])
            button = buttons[index] if index < len(buttons) and isinstance(buttons[index], dict) else {}
            if str(button.get("type") or "").upper() != "URL":
                continue   # an authentication template's code button repeats the body's code
            fields.append({"key": f"button.{index}", "label": f"Button “{button.get('text') or index}” URL ending",
                           "index": index, "sample": _url_suffix(button)})
    for field in fields:
        field["value"] = given.get(field["key"], "") if given is not None else field["sample"]
    return fields


def _url_suffix(button: dict) -> str:
    url, example = str(button.get("url") or ""), button.get("example")
    example = str(example[0] if isinstance(example, list) and example else example or "")
    prefix = url.split("{{")[0]
    return example[len(prefix):] if prefix and example.startswith(prefix) else example


def parameters(fields: list[dict]) -> dict:
    """Form fields → the preview API's ``parameters``."""
    out: dict = {}
    body: dict[str, str] = {}
    for field in fields:
        value = field["value"]
        if field["key"] == "header":
            out["header"] = ({"type": field["media"], field["media"]: {"link": value}}
                             if field.get("media") and value else value)
        elif field["key"].startswith("body."):
            body[field["name"]] = value
        elif field["key"].startswith("button."):
            out.setdefault("buttons", []).append({"index": field["index"], "sub_type": "url", "parameters": [value]})
    if body:
        out["body"] = [body[k] for k in sorted(body, key=int)] if all(k.isdigit() for k in body) else body
    return out


_BODY = re.compile(r"^body \{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_BUTTON = re.compile(r"^button (\d+)")


def field_of(parameter: str) -> str | None:
    """The renderer's name for a value (``body {{2}}``, ``header``, ``button 0 url suffix``) → our field key."""
    if parameter.startswith("header"):
        return "header"
    found = _BODY.match(parameter)
    if found:
        return f"body.{found.group(1)}"
    found = _BUTTON.match(parameter)
    return f"button.{found.group(1)}" if found else None


def bubble(definition: dict, text: str) -> dict:
    """The API's rendered text, cut back into the parts a WhatsApp bubble shows. The text joins the header, body,
    footer and buttons with blank lines, and header, footer and button labels hold no blank line, so each part is
    peeled off its end; a template of another shape (offer, carousel) shows its text as the body."""
    parts = text.split("\n\n")
    shape = {str(c.get("type") or "").upper() for c in definition.get("components") or [] if isinstance(c, dict)}
    out = {"header": None, "media": None, "body": text, "footer": None, "buttons": []}
    if shape & {"LIMITED_TIME_OFFER", "CAROUSEL"}:
        return out
    header = _component(definition, "HEADER")
    if header is not None and len(parts) > 1:
        first = parts.pop(0)
        fmt = str(header.get("format") or "TEXT").upper()
        out["header" if fmt == "TEXT" else "media"] = first if fmt == "TEXT" else fmt.lower()
    if "BUTTONS" in shape and len(parts) > 1:
        out["buttons"] = [re.sub(r"^\[([^\]]*)\].*$", r"\1", line) for line in parts.pop().split("\n")]
    if "FOOTER" in shape and len(parts) > 1:
        out["footer"] = parts.pop()
    out["body"] = "\n\n".join(parts)
    return out


# --- a new template ------------------------------------------------------------------------------------------------

FORM_FIELDS = ("channel_id", "name", "language", "category", "header", "body", "examples", "footer", "quick_replies")


def _definition(form: dict) -> tuple[dict, dict[int, str]]:
    """The form → Meta's create body, and which form field each component index came from (for the errors)."""
    components, origin = [], {}
    if form["header"]:
        header = {"type": "HEADER", "format": "TEXT", "text": form["header"]}
        components.append(header)
        origin[len(components) - 1] = "header"
    examples = [line.strip() for line in form["examples"].splitlines() if line.strip()]
    body = {"type": "BODY", "text": form["body"]}
    if examples:
        body["example"] = {"body_text": [examples]}
    components.append(body)
    origin[len(components) - 1] = "body"
    if form["footer"]:
        components.append({"type": "FOOTER", "text": form["footer"]})
        origin[len(components) - 1] = "footer"
    replies = [line.strip() for line in form["quick_replies"].splitlines() if line.strip()]
    if replies:
        components.append({"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": r} for r in replies]})
        origin[len(components) - 1] = "quick_replies"
    return {"name": form["name"], "language": form["language"], "category": form["category"],
            "components": components}, origin


def _form_errors(reply: api.Reply, origin: dict[int, str]) -> tuple[dict[str, list[str]], list[str]]:
    """The validator's problems by form field (a body example's problem goes to the examples field)."""
    by_field: dict[str, list[str]] = {}
    other = []
    for err in (reply.body or {}).get("errors") or []:
        pointer = str(err.get("pointer") or "")
        words = str(err.get("detail") or "invalid")
        field = None
        top = re.match(r"^/(name|language|category|channel_id)\b", pointer)
        comp = re.match(r"^/components/(\d+)(/.*)?$", pointer)
        if top:
            field = top.group(1)
        elif comp and int(comp.group(1)) in origin:
            field = origin[int(comp.group(1))]
            if field == "body" and "/example" in (comp.group(2) or ""):
                field = "examples"
        if field:
            by_field.setdefault(field, []).append(words)
        else:
            other.append(f"{pointer or 'template'}: {words}")
    return by_field, other


def _new_form(catalogs, form, status=200, errors=None, problems=None, problem=None):
    return render_template("console/template_new.html", catalogs=catalogs, form=form, categories=CATEGORIES,
                           errors=errors or {}, problems=problems or [], problem=problem), status


@bp.get("/templates/new-template")
@auth.page("supervisor")
def template_new():
    catalogs, response = _catalogs()
    if response is not None:
        return response
    form = dict.fromkeys(FORM_FIELDS, "")
    form.update(language="en_US", category="UTILITY",
                channel_id=request.args.get("channel_id") or (str(catalogs[0]["id"]) if catalogs else ""))
    return _new_form(catalogs, form)


@bp.post("/templates/new-template")
@auth.page("supervisor")
def template_create():
    catalogs, response = _catalogs()
    if response is not None:
        return response
    form = {k: (request.form.get(k) or "").strip() for k in FORM_FIELDS}
    definition, origin = _definition(form)
    reply = api.post("/v1/templates", {"channel_id": form["channel_id"], **definition})
    if reply.status == 422:
        errors, problems = _form_errors(reply, origin)
        return _new_form(catalogs, form, 422, errors, problems,
                         "Not submitted: " + reply.detail.replace("; Meta would reject it", ""))
    if not reply.ok:
        return _new_form(catalogs, form, reply.status if reply.status < 500 else 502, problem=reply.detail)
    saved = reply.body["template"]
    return notify(redirect(url_for("console.template", name=saved["name"], channel_id=form["channel_id"])),
                  f"Submitted to Meta: {saved['name']} ({saved['language']}) is {status_badge(saved['status'])[1]}.")
