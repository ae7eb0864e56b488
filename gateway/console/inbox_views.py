"""Console pages: the inbox (threads with filters, updated live) and a thread (the conversation with its
statuses and notes, assignment, status, tags, and a reply box that knows the 24-hour window).

Everything is read and written through the REST API as the signed-in person (gateway/console/api_client.py),
so the send gate, tenant walls, scopes and the audit of reads are the API's own.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from urllib.parse import urlencode

from flask import Response, abort, g, redirect, render_template, request

from gateway import send_gate
from gateway.console import api_client, auth
from gateway.console.blueprint import bp, error_page, idempotency_header, notify, parse_time

STATUSES = ("open", "pending", "snoozed", "resolved")
WORKING = ("open", "pending")
MESSAGES_PER_PAGE = 50
NOTES_SHOWN = 200
# Media the page shows inline as <img>; anything else is offered as a download.
INLINE_IMAGES = ("image/jpeg", "image/png", "image/gif", "image/webp")


# --- the inbox -------------------------------------------------------------------------------------------

@bp.get("/inbox")
@auth.page()
def inbox():
    form = {name: request.args.get(name, "") for name in ("assignee", "team_id", "status", "channel_id", "window",
                                                           "sort")}
    reply = api_client.get("/v1/threads", **_thread_filters(form), before=request.args.get("before"))
    threads = reply.body["data"] if reply.ok else []
    error = None if reply.ok else reply.detail
    for t in threads:
        t["waiting_since"] = _waiting_since(t)
    chosen = {k: v for k, v in form.items() if v}
    older = newest = None
    if reply.ok and reply.body.get("next"):
        older = "/console/inbox?" + urlencode({**chosen, "before": reply.body["next"]})
    if request.args.get("before"):
        newest = "/console/inbox" + ("?" + urlencode(chosen) if chosen else "")
    channels = _channels(threads, form["channel_id"])
    return render_template(
        "console/inbox.html", live=True, threads=threads, form=form, error=error, older=older, newest=newest,
        paged=newest is not None, teams=_teams(threads, form["team_id"]), channels=channels,
        channel_labels=dict(channels), statuses=STATUSES), 200 if reply.ok else reply.status


def _thread_filters(form: dict) -> dict:
    """The inbox form's choices as GET /v1/threads parameters."""
    assignee = {"mine": str(g.console_user.agent_id), "none": "none"}.get(form["assignee"])
    return {"assignee": assignee, "team_id": form["team_id"], "status": form["status"],
            "channel_id": form["channel_id"], "window": form["window"], "sort": form["sort"]}


def _waiting_since(thread: dict):
    """When the customer's unanswered message came, for a working thread whose customer spoke last."""
    inbound, outbound = parse_time(thread.get("last_inbound_at")), parse_time(thread.get("last_outbound_at"))
    if thread.get("status") in WORKING and inbound is not None and (outbound is None or inbound > outbound):
        return inbound
    return None


def _account_teams() -> list[tuple[str, str]] | None:
    """(id, name) of the account's teams; None when the person may not list them (GET /v1/teams takes the admin
    scope), without asking the API for a refusal on every page."""
    if not api_client.allowed("/v1/teams"):
        return None
    reply = api_client.get("/v1/teams")
    return [(str(t["id"]), t["name"]) for t in reply.body["data"]] if reply.ok else None


def _teams(threads: list[dict], selected: str) -> list[tuple[str, str]]:
    """(id, name) of the account's teams; those who may not list them get the teams the threads shown belong
    to, so the filter still works for what is on screen."""
    listed = _account_teams()
    if listed is not None:
        return listed
    seen = {str(t["team"]["id"]): t["team"]["name"] for t in threads if t.get("team")}
    if selected and selected not in seen:
        seen[selected] = "the chosen team"
    return sorted(seen.items(), key=lambda item: item[1])


def _channels(threads: list[dict], selected: str = "") -> list[tuple[str, str]]:
    """(id, label) of the account's channels (their summaries: any reader may list those); without that list,
    the channels of the threads shown, named by their kind."""
    reply = api_client.get("/v1/channels/summary")
    if reply.ok:
        return [(str(c["id"]), f"{c['name']} ({_kind_label(c['kind'])})") for c in reply.body["data"]]
    seen = {str(t["channel_id"]): _kind_label(t["channel_kind"]) for t in threads}
    if selected and selected not in seen:
        seen[selected] = "the chosen channel"
    return sorted(seen.items(), key=lambda item: item[1])


def _kind_label(kind: str) -> str:
    return {"whatsapp": "WhatsApp", "messenger": "Messenger", "instagram": "Instagram", "twilio": "SMS"}.get(
        kind, kind)


# --- a thread --------------------------------------------------------------------------------------------

@bp.get("/threads/<thread_id>")
@auth.page()
def thread(thread_id):
    forms = {}
    choice = request.args.get("template")
    if choice:
        forms["template"] = {"choice": choice, "values": {}, "errors": {}}
    return _thread_page(thread_id, forms)


def _thread_page(thread_id: str, forms: dict, status: int = 200):
    """The thread page; ``forms`` holds what a refused form had typed, its errors and refusal, by form name."""
    found = api_client.get(f"/v1/threads/{thread_id}")
    if found.status == 404:
        abort(404)
    if not found.ok:
        return error_page(found.status, "Cannot show this conversation", found.detail)
    t = found.body
    if t["unread_count"]:
        api_client.post(f"/v1/threads/{thread_id}/read")   # opening the thread reads it
    page = _messages_page(thread_id)
    notes = api_client.get(f"/v1/threads/{thread_id}/notes", limit=NOTES_SHOWN)
    timeline = _timeline(page, notes.body["data"] if notes.ok else [])
    mode = _reply_mode(t)
    forms.setdefault("reply", {"body": "", "reply_to": request.args.get("reply_to", ""), "errors": {}})
    if (mode["templates"] or "template" in forms) and "choices" not in forms.get("template", {}):
        _template_choices(t, forms)
    by_id = {m["id"]: m for m in page["data"]}
    reply_to = by_id.get(forms["reply"].get("reply_to"))
    return render_template(
        "console/thread.html", live=True, t=t, timeline=timeline, by_id=by_id, page=page, mode=mode, forms=forms,
        reply_to=reply_to, channel_label=_kind_label(t["channel_kind"]), statuses=STATUSES,
        teams=_account_teams(),
        notes_error=None if notes.ok else notes.detail, mine=str(g.console_user.agent_id),
        inline_images=INLINE_IMAGES), status


def _messages_page(thread_id: str) -> dict:
    """A page of the conversation: the newest by default, or older/newer ones by the API's cursors."""
    before, after = request.args.get("before"), request.args.get("after")
    query = {"after": after} if after else {"before": before or "latest"}
    reply = api_client.get(f"/v1/threads/{thread_id}/messages", limit=MESSAGES_PER_PAGE, **query)
    error = None
    if reply.status == 400:   # a stale or edited cursor: the newest page instead, saying so
        reply = api_client.get(f"/v1/threads/{thread_id}/messages", limit=MESSAGES_PER_PAGE, before="latest")
        before = after = None
        error = "That page of the conversation is no longer there; showing the newest messages."
    if not reply.ok:
        abort(404 if reply.status == 404 else reply.status, reply.detail)
    page = dict(reply.body, data=[m for m in reply.body["data"] if m["kind"] != "read"], paged=bool(before or after),
                error=error, until=None)
    if page["next"]:   # where the next page starts: the notes written before then belong to this one
        following = api_client.get(f"/v1/threads/{thread_id}/messages", limit=1, after=page["next"])
        if following.ok and following.body["data"]:
            page["until"] = parse_time(following.body["data"][0]["occurred_at"])
    return page


def _timeline(page: dict, notes: list[dict]) -> list[tuple[str, dict]]:
    """Messages and the internal notes written while they were exchanged, in time order: ("message", m) or
    ("note", n). A page with older messages before it starts at its first message; one with newer messages
    after it ends where the next page starts."""
    messages = page["data"]
    start = parse_time(messages[0]["occurred_at"]) if messages and page.get("previous") else None
    end = page["until"]
    items = [(parse_time(m["occurred_at"]), 0, "message", m) for m in messages]
    for n in notes:
        at = parse_time(n["created_at"])
        if (start is None or at >= start) and (end is None or at < end):
            items.append((at, 1, "note", n))
    items.sort(key=lambda item: (item[0], item[1]))
    return [(kind, item) for _, _, kind, item in items]


def _reply_mode(t: dict) -> dict:
    """What the reply box offers: free text while the customer-service window is open (or on channels without
    one), else templates where the channel sends them, else an explanation of why nothing can be sent."""
    caps = send_gate.capabilities(t["channel_kind"])
    kinds = caps.get("kinds") or ()
    window = t["window"]
    closes = parse_time(window.get("closes_at"))
    applies = bool(caps.get("window"))
    is_open = window["open"] or not applies
    return {"window_applies": applies, "open": is_open, "closes_at": closes, "remaining": _remaining(closes),
            "text": is_open, "templates": not is_open and "template" in kinds,
            "human_agent": not is_open and "HUMAN_AGENT" in (caps.get("tags") or ())}


def _remaining(at: datetime | None) -> str:
    if at is None:
        return ""
    seconds = int((at - datetime.now(timezone.utc)).total_seconds())
    if seconds <= 0:
        return ""
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


@bp.get("/threads/<thread_id>/<any(reply, template, notes, assign, status, tags):action>")
@auth.page()
def back_to_thread(thread_id, action):
    """A form's address opened or re-read with GET (a page shown after a refused form polls its own address
    for live updates): the thread itself."""
    return redirect(f"/console/threads/{thread_id}")


# --- reply: free text ------------------------------------------------------------------------------------

@bp.post("/threads/<thread_id>/reply")
@auth.page()
def reply(thread_id):
    body = request.form.get("body", "")
    reply_to = request.form.get("reply_to", "")
    tag = request.form.get("tag", "")
    form = {"body": body, "reply_to": reply_to, "tag": tag, "errors": {}}
    if not body.strip():
        form["errors"]["body"] = "Type the message to send."
        return _thread_page(thread_id, {"reply": form}, 400)
    found = _thread_or_404(thread_id)
    doc = {"channel_id": str(found["channel_id"]), "contact_id": str(found["contact_id"]), "type": "text",
           "text": {"body": body}}
    if reply_to:
        doc["reply_to"] = reply_to
    if tag == "HUMAN_AGENT":
        doc["tag"] = tag
    sent = api_client.post("/v1/messages", doc, headers=idempotency_header())
    if sent.ok:
        return notify(redirect(f"/console/threads/{thread_id}#reply"), "Message queued: its status shows below.")
    errors = sent.field_errors()
    if "text.body" in errors:
        form["errors"]["body"] = errors["text.body"]
    else:
        form["refusal"] = refusal_text(sent)
    return _thread_page(thread_id, {"reply": form}, sent.status if sent.status >= 400 else 422)


def refusal_text(reply: api_client.Reply) -> str:
    """A refused send in words, saying what to do: the gate's rule and detail, with its extension members."""
    body = reply.body if isinstance(reply.body, dict) else {}
    rule = str(body.get("type") or "").rsplit("/", 1)[-1]
    detail = reply.detail
    if rule == "outside_customer_service_window":
        hint = detail.split(";", 1)[1].strip() if ";" in detail else "send an approved template instead"
        closed = parse_time(body.get("window_closed_at"))
        if closed is None:
            return (f"Not sent: the customer has not written on this channel, so there is no 24-hour window "
                    f"open — {hint}.")
        return f"Not sent: the 24-hour window closed at {closed.strftime('%Y-%m-%d %H:%M')} UTC — {hint}."
    return f"Not sent: {detail[:1].upper()}{detail[1:]}" + ("" if detail.endswith(".") else ".")


def _thread_or_404(thread_id: str) -> dict:
    found = api_client.get(f"/v1/threads/{thread_id}")
    if not found.ok:
        abort(404 if found.status == 404 else found.status, found.detail)
    return found.body


# --- reply: a template -----------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
# Buttons whose sending needs no value, or only a URL's suffix (which the form asks for).
_PLAIN_BUTTONS = ("QUICK_REPLY", "PHONE_NUMBER", "URL")


class Unsupported(Exception):
    """A template needs values the console's form cannot give (a media header, a carousel, a coupon code...)."""


def template_layout(definition: dict) -> dict:
    """The template as the picker shows it: ``parts`` ({kind: text|button, segments: text and slots}, in the
    order the customer sees them) and ``slots`` (slot, label, example...): one form field per parameter.
    Raises Unsupported."""
    slots: list[dict] = []
    parts: list[dict] = []
    for comp in definition.get("components") or []:
        kind = str(comp.get("type") or "").upper()
        example = comp.get("example") or {}
        if kind == "HEADER":
            if str(comp.get("format") or "TEXT").upper() != "TEXT":
                raise Unsupported(f"a {str(comp.get('format')).lower()} header")
            found = (example.get("header_text") or [])
            named = {p.get("param_name"): p.get("example") for p in example.get("header_text_named_params") or []}
            parts.append({"kind": "text", "segments": _segments(str(comp.get("text") or ""), "header", "Header",
                                                                   slots, found, named)})
        elif kind == "BODY":
            found = (example.get("body_text") or [[]])[0]
            named = {p.get("param_name"): p.get("example") for p in example.get("body_text_named_params") or []}
            parts.append({"kind": "text", "segments": _segments(str(comp.get("text") or ""), "body", "Body",
                                                                   slots, found, named)})
        elif kind == "FOOTER":
            parts.append({"kind": "text", "segments": [str(comp.get("text") or "")]})
        elif kind == "BUTTONS":
            for index, button in enumerate(comp.get("buttons") or []):
                btype = str(button.get("type") or "").upper()
                if btype not in _PLAIN_BUTTONS:
                    raise Unsupported(f"a {btype.lower().replace('_', ' ')} button")
                line = [f"[{button.get('text') or ''}]"]
                if btype == "URL":
                    url = str(button.get("url") or "")
                    line.append(" ")
                    if _PLACEHOLDER.search(url):
                        label = f"Link ending of button “{button.get('text')}”"
                        line += _segments(url, f"button.{index}", label, slots, button.get("example") or [], {},
                                          whole=True)
                    else:
                        line.append(url)
                parts.append({"kind": "button", "segments": line})
        else:
            raise Unsupported(f"a {kind.lower().replace('_', ' ')} part")
    return {"parts": parts, "slots": slots}


def _segments(text: str, prefix: str, label: str, slots: list, examples: list, named: dict,
              whole: bool = False) -> list:
    """``text`` split into plain strings and slots ({slot, placeholder}); each new slot joins ``slots``.
    ``whole``: the slot is ``prefix`` itself (a URL button takes one value, its suffix)."""
    out: list = []
    last = 0
    for n, match in enumerate(_PLACEHOLDER.finditer(text)):
        out.append(text[last:match.start()])
        name = match.group(1)
        slot = prefix if whole else f"{prefix}.{name}"
        if not any(s["slot"] == slot for s in slots):
            example = named.get(name) if name in named else (examples[n] if n < len(examples) else "")
            if whole and isinstance(example, str) and "/" in example:
                example = ""   # a URL button's example is the whole URL, not the part typed here
            slots.append({"slot": slot, "label": f"{label} {{{{{name}}}}}" if not whole else label,
                          "example": str(example or ""), "name": name, "part": prefix.split(".")[0]})
        out.append({"slot": slot, "placeholder": match.group(0)})
        last = match.end()
    out.append(text[last:])
    return [s for s in out if s != ""]


def template_parameters(layout: dict, values: dict) -> dict:
    """The form's values as the API's ``parameters``: {header, body (a list, or a map for named ones), buttons}."""
    params: dict = {}
    body = [s for s in layout["slots"] if s["part"] == "body"]
    header = [s for s in layout["slots"] if s["part"] == "header"]
    buttons = [s for s in layout["slots"] if s["part"] == "button"]
    if header:
        params["header"] = values.get(header[0]["slot"], "")
    if body:
        if all(s["name"].isdigit() for s in body):
            params["body"] = [values.get(s["slot"], "") for s in sorted(body, key=lambda s: int(s["name"]))]
        else:
            params["body"] = {s["name"]: values.get(s["slot"], "") for s in body}
    if buttons:
        params["buttons"] = {s["slot"].split(".")[1]: values.get(s["slot"], "") for s in buttons}
    return params


def _slot_of(parameter: str) -> str | None:
    """The form field a renderer issue names: 'body {{2}}' → body.2, 'button 0 url suffix' → button.0."""
    found = re.fullmatch(r"(header|body) \{\{(\w+)\}\}", parameter)
    if found:
        return f"{found.group(1)}.{found.group(2)}"
    found = re.match(r"button (\d+)", parameter)
    return f"button.{found.group(1)}" if found else None


def _template_choices(t: dict, forms: dict) -> None:
    """The channel's approved templates for the picker, and the chosen one laid out as a form."""
    listed = api_client.get("/v1/templates", channel_id=str(t["channel_id"]), status="APPROVED", limit=200)
    choices = []
    for row in listed.body["data"] if listed.ok else []:
        try:
            layout = template_layout(row["definition"])
            why = None
        except Unsupported as exc:
            layout, why = None, str(exc)
        choices.append({"value": f"{row['name']}|{row['language']}", "name": row["name"],
                        "language": row["language"], "layout": layout, "unsupported": why})
    form = forms.setdefault("template", {"choice": "", "values": {}, "errors": {}})
    form["choices"] = choices
    form["list_error"] = None if listed.ok else listed.detail
    form["chosen"] = next((c for c in choices if c["value"] == form["choice"] and c["layout"]), None)
    if form["chosen"] is None and len([c for c in choices if c["layout"]]) == 1 and not form["choice"]:
        form["chosen"] = next(c for c in choices if c["layout"])   # the only one there is: no need to pick
        form["choice"] = form["chosen"]["value"]


@bp.post("/threads/<thread_id>/template")
@auth.page()
def send_template(thread_id):
    choice = request.form.get("template", "")
    action = request.form.get("action", "preview")
    values = {k[2:]: v for k, v in request.form.items() if k.startswith("p.")}
    form = {"choice": choice, "values": values, "errors": {}}
    forms = {"template": form}
    found = _thread_or_404(thread_id)
    _template_choices(found, forms)
    chosen = form["chosen"]
    if chosen is None:
        form["errors"]["template"] = "Choose one of the approved templates."
        return _thread_page(thread_id, forms, 400)
    name, language = chosen["name"], chosen["language"]
    parameters = template_parameters(chosen["layout"], values)
    if action != "send":
        shown = api_client.post(f"/v1/templates/{name}/preview", {"channel_id": str(found["channel_id"]),
                                                                  "language": language, "parameters": parameters})
        if shown.ok:
            form["preview_text"] = shown.body["text"]
            return _thread_page(thread_id, forms)
        _template_errors(shown, form)
        return _thread_page(thread_id, forms, shown.status)
    sent = api_client.post("/v1/messages", {
        "channel_id": str(found["channel_id"]), "contact_id": str(found["contact_id"]), "type": "template",
        "template": {"name": name, "language": language, "parameters": parameters}}, headers=idempotency_header())
    if sent.ok:
        return notify(redirect(f"/console/threads/{thread_id}#reply"), f"Template “{name}” queued.")
    _template_errors(sent, form)
    return _thread_page(thread_id, forms, sent.status if sent.status >= 400 else 422)


def _template_errors(reply: api_client.Reply, form: dict) -> None:
    """A preview's or a send's refusal on the template form: each parameter's problem next to its field."""
    body = reply.body if isinstance(reply.body, dict) else {}
    for issue in body.get("errors") or []:
        slot = _slot_of(str(issue.get("parameter") or ""))
        if slot is not None and issue.get("problem"):
            form["errors"].setdefault(slot, f"This value {issue['problem']}: {issue.get('fix') or 'fix it'}.")
    if not form["errors"] or not str(body.get("type") or "").endswith(("template-parameters", "template_parameters")):
        form["refusal"] = refusal_text(reply)


# --- notes, assignment, status, tags ---------------------------------------------------------------------

@bp.post("/threads/<thread_id>/notes")
@auth.page()
def add_note(thread_id):
    body = request.form.get("body", "")
    form = {"body": body, "errors": {}}
    if not body.strip():
        form["errors"]["body"] = "Write the note."
        return _thread_page(thread_id, {"note": form}, 400)
    # The author as colleagues know them (the API would name the session's actor, user:<id>).
    made = api_client.post(f"/v1/threads/{thread_id}/notes", {"body": body, "author": g.console_user.name[:200]})
    if made.status == 404:
        abort(404)
    if not made.ok:
        form["errors"]["body"] = made.field_errors().get("body") or made.detail
        return _thread_page(thread_id, {"note": form}, made.status)
    return notify(redirect(f"/console/threads/{thread_id}"), "Note added (only your team sees it).")


@bp.post("/threads/<thread_id>/assign")
@auth.page()
def assign(thread_id):
    to = request.form.get("to", "")
    doc: dict
    if to == "me":
        doc = {"agent_id": str(g.console_user.agent_id)}
        if request.form.get("force"):
            doc["force"] = True
        said = "Assigned to you."
    elif to == "team":
        team = request.form.get("team_id", "")
        if not team:
            return _thread_page(thread_id, {"assign": {"errors": {"team_id": "Choose a team."}}}, 400)
        doc, said = {"team_id": team}, "Given to the team."
    elif to == "nobody":
        doc, said = {"agent_id": None}, "Unassigned: the thread waits in its team's queue."
    else:
        abort(400, "choose who takes the thread: you, a team, or nobody")
    done = api_client.post(f"/v1/threads/{thread_id}/assign", doc)
    if done.status == 404 and "thread" in done.detail:
        abort(404)
    if not done.ok:
        return notify(redirect(f"/console/threads/{thread_id}"), f"Not assigned: {done.detail}", "error")
    return notify(redirect(f"/console/threads/{thread_id}"), said)


@bp.post("/threads/<thread_id>/status")
@auth.page()
def set_status(thread_id):
    status = request.form.get("status", "")
    until = request.form.get("snooze_until", "")
    form = {"status": status, "snooze_until": until, "errors": {}}
    if status not in STATUSES:
        form["errors"]["status"] = "Choose open, pending, snoozed or resolved."
    doc = {"status": status}
    if status == "snoozed":
        at = parse_time(until)
        if at is None:
            form["errors"]["snooze_until"] = "Give the date and time (UTC) when the thread opens again."
        else:
            doc["snooze_until"] = at.isoformat()
    if form["errors"]:
        return _thread_page(thread_id, {"status": form}, 400)
    done = api_client.post(f"/v1/threads/{thread_id}/status", doc)
    if done.status == 404:
        abort(404)
    if done.status == 422:
        for name, message in done.field_errors().items():
            form["errors"][name if name in ("status", "snooze_until") else "status"] = message
        return _thread_page(thread_id, {"status": form}, 422)
    if not done.ok:
        return notify(redirect(f"/console/threads/{thread_id}"), f"Status not changed: {done.detail}", "error")
    said = f"Status: {done.body['status']}."
    survey = done.body.get("survey")
    if survey:
        said += (" The satisfaction survey was sent." if survey["state"] == "sent"
                 else f" No survey was sent: {survey.get('skip_reason') or survey['state']}.")
    return notify(redirect(f"/console/threads/{thread_id}"), said)


@bp.post("/threads/<thread_id>/tags")
@auth.page()
def change_tags(thread_id):
    added = [t.strip() for t in request.form.get("add", "").split(",") if t.strip()]
    removed = [t for t in request.form.getlist("remove") if t]
    form = {"add": request.form.get("add", ""), "errors": {}}
    if not added and not removed:
        form["errors"]["add"] = "Type one or more tags, separated by commas."
        return _thread_page(thread_id, {"tags": form}, 400)
    done = api_client.post(f"/v1/threads/{thread_id}/tags", {"add": added, "remove": removed})
    if done.status == 404:
        abort(404)
    if not done.ok:
        errors = done.field_errors()
        form["errors"]["add"] = errors.get("add") or errors.get("remove") or done.detail
        return _thread_page(thread_id, {"tags": form}, done.status)
    return notify(redirect(f"/console/threads/{thread_id}"), "Tags saved.")


# --- media -----------------------------------------------------------------------------------------------

@bp.get("/media/<media_id>")
@auth.page()
def media(media_id):
    """A message's file, from GET /v1/media/{id}: common images inline (the thread's previews), anything else
    as a download, never rendered as a page of this site."""
    got = api_client.get(f"/v1/media/{media_id}")
    if got.status == 404:
        abort(404)
    if not got.ok:
        return error_page(got.status, "This file is not available", got.detail)
    mime = (got.headers.get("Content-Type") or "application/octet-stream").split(";")[0].strip().lower()
    response = Response(got.raw, 200, mimetype=mime)
    # An attachment is saved, not opened here: a customer's HTML or SVG never runs as a page of the console.
    response.headers["Content-Disposition"] = "inline" if mime in INLINE_IMAGES else (
        got.headers.get("Content-Disposition") or "attachment")
    return response
