"""Console pages for contacts: the search list, the 360° contact page (the timeline across channels, identities,
typed attributes, tags, consent with its proof and history), and the supervisor's export and erasure.

Everything is read and written through the REST API as the signed-in person (api_client), so each read of a
contact leaves its audit row and erasure needs the API's ``contacts:erase`` scope.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from flask import Response, abort, make_response, redirect, render_template, request, url_for

from gateway.console import api_client as api
from gateway.console import auth
from gateway.console.blueprint import bp, error_page, notify

CHANNEL_KINDS = ("whatsapp", "messenger", "instagram", "twilio", "sandbox")
TIMELINE_KINDS = (("message", "Messages"), ("status", "Delivery statuses"), ("note", "Notes"),
                  ("thread_event", "Thread changes"), ("consent", "Consent"), ("survey_answer", "Survey answers"),
                  ("campaign", "Campaigns"))
CONSENT_SOURCES = ("agent", "api", "import", "web_form")
# An identity's kind → the channels it reaches the customer on.
IDENTITY_CHANNELS = {"phone": "WhatsApp · SMS", "bsuid": "WhatsApp (business-scoped id)", "psid": "Messenger",
                     "igsid": "Instagram", "email": "Email"}
PROOF_FIELDS = (("text", "Text the customer agreed to"), ("text_version", "Version of that text"),
                ("message_id", "Message id in which they agreed"), ("form_submission_id", "Form submission id"),
                ("page", "Page of the form"))
LIST_PAGE = 25
TIMELINE_PAGE = 30
ERASE_WORD = "ERASE"


def thread_url(thread_id) -> str:
    return f"/console/threads/{thread_id}"


def _refused(reply: api.Reply, what: str):
    """An API refusal as the console's error page (the API's words; 404 for anything not in the account)."""
    if reply.status in (400, 404):
        return error_page(404, "Not found", f"there is no such {what} in your account")
    titles = {403: "Not for your role", 410: "Gone", 429: "Too many requests"}
    return error_page(reply.status if reply.status < 500 else 502, titles.get(reply.status, "That did not work"),
                      reply.detail)


# --- the list ------------------------------------------------------------------------------------------------

def _day(text: str, shift: int) -> str:
    """A date from the form → the API's instant (start of that day, UTC; ``shift`` 1 for 'up to and including')."""
    day = date.fromisoformat(text)
    return datetime.combine(day + timedelta(days=shift), time(), timezone.utc).isoformat()


@bp.get("/contacts")
@auth.page("agent")
def contacts():
    form = {k: (request.args.get(k) or "").strip() for k in ("phone", "tag", "channel_kind", "active_after",
                                                             "active_before")}
    errors: dict[str, str] = {}
    query = {"phone": form["phone"], "tag": form["tag"], "limit": LIST_PAGE, "before": request.args.get("before")}
    if form["channel_kind"]:
        if form["channel_kind"] in CHANNEL_KINDS:
            query["channel_kind"] = form["channel_kind"]
        else:
            errors["channel_kind"] = "Pick a channel from the list."
    for name, shift in (("active_after", 0), ("active_before", 1)):
        if form[name]:
            try:
                query[name] = _day(form[name], shift)
            except ValueError:
                errors[name] = "Enter a date as YYYY-MM-DD."
    rows, next_cursor, problem = [], None, None
    if not errors:
        reply = api.get("/v1/contacts", **query)
        if reply.ok:
            rows, next_cursor = reply.body["data"], reply.body.get("next")
        elif reply.status == 400:
            problem = reply.detail
        else:
            return _refused(reply, "contact list")
    status = 400 if errors or problem else 200
    filters = {k: v for k, v in form.items() if v}
    return render_template("console/contacts.html", form=form, errors=errors, problem=problem,
                           rows=[_list_row(r) for r in rows], filters=filters, next_cursor=next_cursor,
                           paged=bool(request.args.get("before")), channel_kinds=CHANNEL_KINDS), status


def _list_row(contact: dict) -> dict:
    threads = contact.get("threads") or []
    return {"id": contact["id"], "name": contact.get("name"),
            "addresses": [i["address"] for i in contact.get("identities") or []],
            "channels": sorted({t["channel_kind"] for t in threads}),
            "tags": contact.get("tags") or [],
            "last_activity_at": max((t["last_activity_at"] for t in threads if t.get("last_activity_at")),
                                    default=None),
            "created_at": contact.get("created_at")}


# --- the contact page ------------------------------------------------------------------------------------------

def _load(contact_id: str) -> dict:
    """The contact; otherwise the page ends here (abort with a response): the API's refusal as an error page, or
    a redirect from a merged contact's id to its survivor."""
    reply = api.get(f"/v1/contacts/{contact_id}")
    if not reply.ok:
        abort(make_response(_refused(reply, "contact")))
    contact = reply.body
    if contact.get("merged_into"):
        target = url_for(request.endpoint, contact_id=contact["merged_into"])
        abort(notify(redirect(target), "That contact was merged into this one: this is the contact that answers "
                                       "for it now.", "info"))
    return contact


@bp.get("/contacts/<contact_id>")
@auth.page("agent")
def contact(contact_id):
    return _contact_page(contact_id)


def _contact_page(contact_id: str, *, status: int = 200, forms: dict | None = None, errors: dict | None = None,
                  problem: str | None = None):
    """The 360° page. ``forms``/``errors``/``problem`` redraw a refused form with what was typed and why."""
    found = _load(contact_id)
    cid = found["id"]
    kinds = [k for k in request.args.getlist("kinds") if k in dict(TIMELINE_KINDS)]
    timeline = api.get(f"/v1/contacts/{cid}/timeline", order="desc", limit=TIMELINE_PAGE,
                       after=request.args.get("after"), kinds=",".join(kinds))
    timeline_problem = None
    if timeline.status == 400:
        timeline_problem = "That page of the timeline is no longer there; start again from the newest."
    elif not timeline.ok:
        return _refused(timeline, "contact")
    definitions = api.get("/v1/attribute-definitions")
    consents = api.get(f"/v1/contacts/{cid}/consents")
    threads = api.get("/v1/threads", contact_id=cid, limit=50)
    for reply in (definitions, consents, threads):
        if not reply.ok:
            return _refused(reply, "contact")
    items = timeline.body["data"] if timeline.ok else []
    return render_template(
        "console/contact.html", contact=found, items=[_describe(i) for i in items],
        timeline_next=timeline.body.get("next") if timeline.ok else None, timeline_problem=timeline_problem,
        timeline_kinds=TIMELINE_KINDS, kinds=kinds, paged=bool(request.args.get("after")),
        attributes=_attribute_rows(found.get("profile") or {}, definitions.body["data"], (forms or {}).get("attrs")),
        consents=consents.body, consent_form=_consent_choices(consents.body), consent_sources=CONSENT_SOURCES,
        proof_fields=PROOF_FIELDS, threads=threads.body["data"], forms=forms or {}, errors=errors or {},
        problem=problem, thread_url=thread_url, identity_channels=IDENTITY_CHANNELS,
        can_supervise=auth.load_user().at_least("supervisor"), live=True), status


def _describe(item: dict) -> dict:
    """A timeline item as the page shows it: a css class, a heading and the text (the API's words)."""
    kind = item["kind"]
    out = {"kind": kind, "at": item["at"], "channel": item.get("channel_kind"), "thread_id": item.get("thread_id"),
           "merged": item.get("via_merged_contact"), "cls": "event", "title": "", "text": "", "facts": []}
    if kind == "message":
        m = item["message"]
        out["cls"] = "bubble " + ("in" if m["direction"] == "inbound" else "out")
        who = "Customer" if m["direction"] == "inbound" else ("Automated reply" if m.get("automated") else "Business")
        out["title"] = who + ("" if m["kind"] == "text" else f" · {m['kind']}")
        content = m.get("content") or {}
        if m["kind"] == "template" and content.get("name"):
            out["facts"].append(f"template {content['name']}")
        if content.get("filename"):
            out["facts"].append(content["filename"])
        out["text"] = "(content erased under the retention policy)" if m.get("content_erased") else m.get("text") or ""
        if m["direction"] != "inbound" and m.get("status"):
            out["facts"].append(m["status"])
        if m.get("error"):
            out["facts"].append("failed: " + " ".join(str(v) for v in (m["error"].get("code"),
                                                                       m["error"].get("reason")) if v))
    elif kind == "status":
        s = item["status"]
        out["title"] = f"{'Outgoing' if s.get('direction') == 'outbound' else 'Incoming'} message {s['status']}"
        if s.get("error"):
            out["text"] = " ".join(str(v) for v in (s["error"].get("code"), s["error"].get("reason")) if v)
    elif kind == "note":
        n = item["note"]
        out["cls"] = "bubble note"
        # The author a CRM named; without one the API records the writer as the actor (an id, not a name).
        author = n.get("author") if n.get("author") and n.get("author") != n.get("actor") else None
        out["title"] = "Internal note" + (f" by {author}" if author else "")
        out["text"] = n.get("body") or ""
    elif kind == "thread_event":
        e = item["thread_event"]
        detail = e.get("detail") or {}
        out["title"] = "Thread " + e["kind"].replace("_", " ")
        if "from" in detail or "to" in detail:
            out["text"] = f"{detail.get('from') or '—'} → {detail.get('to') or '—'}"
        else:
            out["text"] = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in detail.items() if v not in (None, ""))
        out["facts"].append(f"by {e['actor']}")
    elif kind == "consent":
        c = item["consent"]
        out["cls"] = "event consent"
        out["title"] = f"Consent {c['action']}"
        out["text"] = f"{c['purpose']} on {c['channel_kind']} (source: {c['source']})"
    elif kind == "survey_answer":
        s = item["survey_answer"]
        out["title"] = f"{s['kind'].upper()} answer: {s['score']}"
        out["text"] = s.get("comment") or ""
    elif kind == "campaign":
        c = item["campaign"]
        out["title"] = f"Campaign {c['name']}"
        out["text"] = c["state"] + (f" — skipped: {c['skip_reason']}" if c.get("skip_reason") else "")
    return out


# --- attributes and tags ---------------------------------------------------------------------------------------

def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


_INT = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")   # 3.5 or 3,5 (a Spanish keyboard's comma)


def _typed(kind: str, text: str):
    """What the form's text means for an attribute of type ``kind``; text the type cannot read goes to the API
    as it is, so the API's own check names the problem."""
    text = text.strip()
    if text == "":
        return None
    if kind == "number":
        if _INT.match(text):
            return int(text)
        return float(text.replace(",", ".")) if _DECIMAL.match(text) else text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    if kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _attribute_rows(profile: dict, definitions: list[dict], typed: dict | None) -> dict:
    """Defined attributes (editable, with what was typed when a save was refused) and the undefined ones."""
    defined = []
    for d in definitions:
        value = profile.get(d["name"])
        shown = typed.get(d["name"], _as_text(value)) if typed else _as_text(value)
        defined.append({"name": d["name"], "label": d.get("label") or d["name"], "type": d["type"], "value": value,
                        "input": shown})
    names = {d["name"] for d in definitions}
    return {"defined": defined, "other": [(k, v) for k, v in sorted(profile.items()) if k not in names]}


@bp.post("/contacts/<contact_id>/attributes")
@auth.page("agent")
def contact_attributes(contact_id):
    found = _load(contact_id)
    definitions = api.get("/v1/attribute-definitions")
    if not definitions.ok:
        return _refused(definitions, "contact")
    profile = found.get("profile") or {}
    changes, typed = {}, {}
    for d in definitions.body["data"]:
        text = request.form.get(f"attr.{d['name']}")
        if text is None:
            continue
        typed[d["name"]] = text
        if text.strip() != _as_text(profile.get(d["name"])):
            changes[d["name"]] = _typed(d["type"], text)
    doc: dict = {"attributes": changes} if changes else {}
    for field in ("name", "language"):
        text = request.form.get(field)
        if text is not None and text.strip() != (found.get(field) or ""):
            doc[field] = text.strip() or None
    forms = {"attrs": typed, "details": {k: request.form.get(k, "") for k in ("name", "language")}}
    if not doc:
        return notify(redirect(url_for("console.contact", contact_id=found["id"]) + "#attributes"),
                      "Nothing to save: the values are as they were.", "info")
    reply = api.patch(f"/v1/contacts/{found['id']}", doc)
    if reply.status in (400, 422):
        return _contact_page(found["id"], status=422, forms=forms, errors=reply.field_errors(),
                             problem="Nothing was saved: " + reply.detail)
    if not reply.ok:
        return _refused(reply, "contact")
    saved = sorted(changes) + [k for k in ("name", "language") if k in doc]
    return notify(redirect(url_for("console.contact", contact_id=found["id"]) + "#attributes"),
                  f"Saved: {', '.join(saved)}.")


@bp.post("/contacts/<contact_id>/tags")
@auth.page("agent")
def contact_tags(contact_id):
    found = _load(contact_id)
    remove = (request.form.get("remove") or "").strip()
    add = [t.strip() for t in (request.form.get("add") or "").split(",") if t.strip()]
    if not remove and not add:
        return _contact_page(found["id"], status=400, forms={"tag": ""},
                             errors={"tags_add": "Type a tag to add (several: separate them with commas)."})
    reply = api.patch(f"/v1/contacts/{found['id']}", {"tags_remove": [remove]} if remove else {"tags_add": add})
    if reply.status in (400, 422):
        return _contact_page(found["id"], status=422, forms={"tag": request.form.get("add", "")},
                             errors=reply.field_errors())
    if not reply.ok:
        return _refused(reply, "contact")
    said = f"Removed the tag {remove}." if remove else f"Added {', '.join(add)}."
    return notify(redirect(url_for("console.contact", contact_id=found["id"]) + "#tags"), said)


# --- consent ---------------------------------------------------------------------------------------------------

def _consent_choices(ledger: dict) -> dict:
    return {"channel_kinds": ["all", *sorted(ledger.get("send_gate") or {})],
            "purposes": ["all", *ledger.get("purposes", [])]}


@bp.post("/contacts/<contact_id>/consents")
@auth.page("supervisor")
def contact_consent(contact_id):
    found = _load(contact_id)
    form = request.form
    doc = {k: form.get(k) or None for k in ("channel_kind", "purpose", "action", "source")}
    doc = {k: v for k, v in doc.items() if v is not None}
    errors = {}
    when = (form.get("occurred_at") or "").strip()
    if when:
        try:
            # datetime-local has no zone: the page says times are UTC.
            at = datetime.fromisoformat(when)
            doc["occurred_at"] = (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).isoformat()
        except ValueError:
            errors["occurred_at"] = "Enter a date and time, e.g. 2026-03-01T10:15."
    proof = {name: form.get(f"proof.{name}", "").strip() for name, _ in PROOF_FIELDS}
    doc["proof"] = {k: v for k, v in proof.items() if v}
    forms = {"consent": {k: form.get(k, "") for k in form if k != "csrf_token"}}
    if errors:
        return _contact_page(found["id"], status=400, forms=forms, errors=errors,
                             problem="Nothing was recorded: fix the fields marked below.")
    reply = api.post(f"/v1/contacts/{found['id']}/consents", doc)
    if reply.status in (400, 422):
        return _contact_page(found["id"], status=422, forms=forms, errors=reply.field_errors(),
                             problem="Nothing was recorded: " + reply.detail)
    if not reply.ok:
        return _refused(reply, "contact")
    event = reply.body
    return notify(redirect(url_for("console.contact", contact_id=found["id"]) + "#consent"),
                  f"Recorded: {event['purpose']} consent {event['action']} on {event['channel_kind']}.")


# --- export and erasure (supervisors) ----------------------------------------------------------------------------

@bp.get("/contacts/<contact_id>/export")
@auth.page("supervisor")
def contact_export(contact_id):
    """The API's export document, handed to the browser as the download it is."""
    found = _load(contact_id)
    reply = api.get(f"/v1/contacts/{found['id']}/export")
    if not reply.ok:
        return _refused(reply, "contact")
    disposition = reply.headers.get("Content-Disposition") or f'attachment; filename="contact-{found["id"]}.json"'
    return Response(reply.raw, 200, mimetype="application/json", headers={"Content-Disposition": disposition})


def _count_pages(path: str) -> int:
    """How many items a cursor-paged list holds, page by page through the API."""
    total, cursor = 0, None
    while True:
        reply = api.get(path, limit=200, after=cursor)
        if not reply.ok:
            return total
        total += len(reply.body["data"])
        cursor = reply.body.get("next")
        if not cursor:
            return total


def inventory(contact: dict) -> list[tuple[str, int]]:
    """What erasing ``contact`` destroys, counted from what the API shows of it (merged contacts included)."""
    threads = contact.get("threads") or []
    messages = notes = 0
    for thread in threads:
        one = api.get(f"/v1/threads/{thread['id']}")
        if one.ok:
            messages += one.body.get("message_count") or 0
        notes += _count_pages(f"/v1/threads/{thread['id']}/notes")
    ledger = api.get(f"/v1/contacts/{contact['id']}/consents")
    consents = len(ledger.body.get("history") or []) if ledger.ok else 0
    return [("messages (with their delivery statuses and media files)", messages),
            ("conversation threads", len(threads)), ("internal notes", notes),
            ("identities (phone numbers and channel addresses)", len(contact.get("identities") or [])),
            ("consent events with their proof", consents),
            ("attributes", len(contact.get("profile") or {})), ("tags", len(contact.get("tags") or [])),
            ("contacts merged into this one", len(contact.get("merged_contacts") or []))]


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def confirmed(contact: dict, typed: str) -> bool:
    """The person typed ERASE, the contact's name, or one of its phone numbers (spacing and + aside)."""
    typed = " ".join(typed.split())
    if not typed:
        return False
    if typed == ERASE_WORD or (contact.get("name") and typed.casefold() == " ".join(contact["name"].split()).casefold()):
        return True
    digits = _digits(typed)
    return len(digits) >= 6 and any(_digits(i["address"]) == digits for i in contact.get("identities") or []
                                    if i.get("kind") == "phone")


def _erase_form(contact: dict, *, status: int = 200, error: str | None = None, typed: str = ""):
    phones = [i["address"] for i in contact.get("identities") or [] if i.get("kind") == "phone"]
    return render_template("console/contact_erase.html", contact=contact, counts=inventory(contact), phones=phones,
                           error=error, typed=typed, word=ERASE_WORD), status


@bp.get("/contacts/<contact_id>/erase")
@auth.page("supervisor")
def contact_erase(contact_id):
    found = _load(contact_id)
    return _erase_form(found)


@bp.post("/contacts/<contact_id>/erase")
@auth.page("supervisor")
def contact_erase_post(contact_id):
    found = _load(contact_id)
    typed = request.form.get("confirm") or ""
    if not confirmed(found, typed):
        return _erase_form(found, status=400, typed=typed,
                           error=f"That does not match. Type the contact's name, one of its phone numbers, or "
                                 f"{ERASE_WORD} in capitals. Nothing was erased.")
    counts = inventory(found)   # counted just before: the API's erasure answers 204 with no body
    reply = api.delete(f"/v1/contacts/{found['id']}")
    if reply.status == 410:
        return error_page(410, "Already erased", reply.detail)
    if not reply.ok:
        return _refused(reply, "contact")
    return render_template("console/contact_erased.html", contact_id=found["id"], counts=counts)
