"""Console pages: campaigns. The list, the form that creates one (with a dry run that saves nothing), the
dashboard (live progress, actions, activity chart, per-recipient results) and the recipients as CSV.

Everything goes through the REST API as the signed-in supervisor (gateway/console/api_client.py): the API
validates the campaign, so its problem pointers are mapped back onto the form's fields here.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, abort, g, redirect, render_template, request, stream_with_context

from gateway.console import api_client, auth
from gateway.console.blueprint import bp, error_page, notify, parse_time
from gateway.console.charts import line_chart, progress_bar

log = logging.getLogger("gateway.console")

STATES = ("draft", "scheduled", "running", "paused", "completed", "cancelled")
LIST_PAGE = 20
RECIPIENTS_PAGE = 50
CSV_PAGE = 1000
PARAM_ROWS = 6
# Which buttons each state offers (the API says the same in its 409s; this only hides what would be refused).
ACTIONS = {"draft": ("start", "cancel"), "scheduled": ("pause", "cancel"), "running": ("pause", "cancel"),
           "paused": ("resume", "cancel"), "completed": (), "cancelled": ()}
ACTION_DONE = {"start": "started", "pause": "paused", "resume": "resumed", "cancel": "cancelled"}
STATE_BADGE = {"draft": "", "scheduled": "warn", "running": "ok", "paused": "warn", "completed": "ok",
               "cancelled": "bad"}
# Skip reasons (the send gate's rules and the feeder's own) in words.
REASONS = {
    "no_marketing_consent": "no marketing opt-in recorded",
    "opted_out": "opted out",
    "parameters_missing": "a mapped parameter has no value and no default",
    "no_address_for_channel": "no address on this channel",
    "invalid_address": "the address is not valid",
    "already_sent": "already sent by this campaign",
    "already_in_campaign": "already in this campaign",
    "outside_customer_service_window": "outside the 24-hour window",
    "channel_paused": "the channel is paused",
    "channel_disabled": "the channel is disabled",
    "channel_not_configured": "the channel is not configured",
    "unsupported_message_type": "the channel cannot send this message",
    "text_too_long": "the text is too long",
}
ACTIVITY_KEYS = ("sent", "delivered", "read", "replied", "failed")
CSV_FIELDS = ("seq", "contact_id", "address", "state", "skip_reason", "defer_until", "message_id", "status",
              "error_code", "error_reason", "queued_at", "sent_at", "replied_at")

# API problem pointers (as dotted names) → the form field that shows them; the first prefix that matches wins.
FIELD_OF = (
    ("name", "name"), ("purpose", "purpose"), ("channel_id", "channel_id"),
    ("message.template.name", "template_name"), ("message.template.language", "language"),
    ("message.template.parameters", "parameters"), ("message.template", "template_name"),
    ("message.text", "sms_text"), ("message", "template_name"),
    ("audience.segment.tags", "tags"), ("audience.segment.attributes", "attributes"),
    ("audience.segment.consent", "consent"), ("audience.segment", "audience"),
    ("audience.contact_ids", "contact_ids"), ("audience.import_id", "import_id"), ("audience", "audience"),
    ("start_at", "start_at"), ("quiet_hours.from", "quiet_from"), ("quiet_hours.to", "quiet_to"),
    ("quiet_hours.timezone", "quiet_tz"), ("quiet_hours", "quiet_from"),
    ("pace_per_s", "pace_per_s"), ("canary", "canary_size"),
)


# Each form field's label and the input an error summary links to.
FIELD_LABELS = {
    "name": ("Name", "name"), "purpose": ("Purpose", "purpose"), "channel_id": ("Channel", "channel_id"),
    "template_name": ("Template", "template_name"), "language": ("Language", "language"),
    "parameters": ("Parameters", "p1_source"), "parameters_json": ("Parameters JSON", "parameters_json"),
    "sms_text": ("SMS text", "sms_text"), "audience": ("Audience", "audience-segment"), "tags": ("Tags", "tags"),
    "attributes": ("Attributes", "attributes"), "consent": ("Consent granted for", "consent"),
    "contact_ids": ("Contact ids", "contact_ids"), "import_id": ("Import id", "import_id"),
    "start_at": ("Start at", "start_at"), "pace_per_s": ("Pace", "pace_per_s"),
    "quiet_from": ("Quiet hours from", "quiet_from"), "quiet_to": ("Quiet hours to", "quiet_to"),
    "quiet_tz": ("Quiet hours time zone", "quiet_tz"), "canary_size": ("Canary size", "canary_size"),
}


def _reason(code: str) -> str:
    return REASONS.get(code, str(code).replace("_", " "))


def _campaign_path(campaign_id: str) -> str:
    # Only an id goes into the API path: anything else is simply not a campaign of this account.
    try:
        return f"/v1/campaigns/{uuid.UUID(campaign_id)}"
    except ValueError:
        abort(404)


def _refused(reply):
    """An API refusal as the console's error page (404 for another account's campaign, as for none)."""
    titles = {403: "Not for your role", 404: "Not found"}
    return error_page(reply.status, titles.get(reply.status, "That did not work"), reply.detail)


def _channels() -> list[dict]:
    reply = api_client.get("/v1/channels/summary")
    return reply.body["data"] if reply.ok else []


def _channel_names() -> dict[str, str]:
    return {c["id"]: f"{c['name']} ({c['kind']})" for c in _channels()}


def _template_name(campaign: dict) -> str:
    message = campaign.get("message") or {}
    if "template" in message:
        t = message["template"] or {}
        return t.get("name", "") + (f" ({t['language']})" if t.get("language") else "")
    return "SMS text" if "text" in message else ""


# --- the list --------------------------------------------------------------------------------------------

@bp.get("/campaigns")
@auth.page("supervisor")
def campaigns():
    state = request.args.get("state") or None
    if state not in (None, *STATES):
        state = None
    reply = api_client.get("/v1/campaigns", state=state, before=request.args.get("before"), limit=LIST_PAGE,
                           counts="true")
    if not reply.ok:
        return _refused(reply)
    return render_template("console/campaigns.html", rows=reply.body["data"], state=state, states=STATES,
                           next_cursor=reply.body.get("next"), channels=_channel_names(),
                           template_name=_template_name, badge=STATE_BADGE)


# --- the form ------------------------------------------------------------------------------------------

def _split(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,;]+", text or "") if part]


def _number(text: str, kind=float):
    """A number typed in a field; what is not one goes to the API as typed, so its message names the rule."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text     # NaN and infinity are not JSON


def _account_zone() -> ZoneInfo:
    reply = api_client.get("/v1/account")
    try:
        return ZoneInfo((reply.body or {}).get("timezone") or "UTC") if reply.ok else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _parameters(form, errors: dict):
    raw = (form.get("parameters_json") or "").strip()
    if raw:
        try:
            return json.loads(raw)
        except ValueError as exc:
            errors["parameters_json"] = f"not valid JSON ({exc.msg} at line {exc.lineno}); or clear it and use " \
                                        "the rows above"
            return None
    rows = []
    for i in range(1, PARAM_ROWS + 1):
        source = form.get(f"p{i}_source") or ""
        value = (form.get(f"p{i}_value") or "").strip()
        default = form.get(f"p{i}_default") or ""
        if source == "contact":
            item = {"contact": "name"}
        elif source in ("attribute", "constant"):
            item = {source: value}
        else:
            item = None
        if item is not None and default and source != "constant":
            item["default"] = default
        rows.append(item)
    while rows and rows[-1] is None:
        rows.pop()
    gaps = [i + 1 for i, item in enumerate(rows) if item is None]
    if gaps:
        errors["parameters"] = f"parameter {{{{{gaps[0]}}}}} is empty: give every parameter up to the last one"
    return rows or None


def _audience(form, errors: dict) -> dict:
    kind = form.get("audience_kind") or "segment"
    if kind == "contacts":
        return {"contact_ids": _split(form.get("contact_ids"))}
    if kind == "import":
        return {"import_id": (form.get("import_id") or "").strip()}
    segment: dict = {}
    tags = [t.strip() for t in (form.get("tags") or "").split(",") if t.strip()]
    if tags:
        segment["tags"] = tags
    attributes = {}
    for n, line in enumerate((form.get("attributes") or "").splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            errors["attributes"] = f"line {n}: write one attribute per line as name=value, e.g. plan=Plus"
            continue
        attributes[name.strip()] = value.strip()
    if attributes:
        segment["attributes"] = attributes
    if form.get("consent"):
        segment["consent"] = form["consent"]
    return {"segment": segment}


def campaign_body(form, zone: ZoneInfo) -> tuple[dict, dict]:
    """The POST /v1/campaigns body from the form, and the problems only the form can see (by field)."""
    errors: dict[str, str] = {}
    template = (form.get("template_name") or "").strip()
    sms = (form.get("sms_text") or "").strip()
    if sms and not template:
        message = {"text": sms}
    else:
        message = {"template": {"name": template}}
        if (form.get("language") or "").strip():
            message["template"]["language"] = form["language"].strip()
        parameters = _parameters(form, errors)
        if parameters is not None:
            message["template"]["parameters"] = parameters
        if sms:
            errors["sms_text"] = "give a template or an SMS text, not both"
    body = {"name": (form.get("name") or "").strip(), "purpose": form.get("purpose") or "",
            "channel_id": form.get("channel_id") or "", "message": message, "audience": _audience(form, errors)}
    start = (form.get("start_at") or "").strip()
    if start:
        try:
            body["start_at"] = datetime.fromisoformat(start).replace(tzinfo=zone).isoformat()
        except ValueError:
            body["start_at"] = start
    quiet = {k: form.get(f, "").strip() for k, f in (("from", "quiet_from"), ("to", "quiet_to"),
                                                     ("timezone", "quiet_tz"))}
    if any(quiet.values()):
        body["quiet_hours"] = {k: v for k, v in quiet.items() if v or k != "timezone"}
    pace = _number(form.get("pace_per_s"))
    if pace is not None:
        body["pace_per_s"] = pace
    canary = _number(form.get("canary_size"), int)
    if canary is not None:
        body["canary"] = {"size": canary}
    return body, errors


def field_errors(reply, uses_json: bool) -> dict[str, str]:
    """The API's problem ``errors`` by form field; several about one field are joined."""
    out: dict[str, list[str]] = {}
    for err in (reply.body or {}).get("errors") or []:
        name = str(err.get("pointer") or "").strip("/").replace("/", ".")
        detail = str(err.get("detail") or "invalid")
        field = next((f for prefix, f in FIELD_OF if name == prefix or name.startswith(prefix + ".")), "_form")
        if field == "parameters":
            index = name.split(".")[3:4]
            if index and index[0].isdigit() and not uses_json:
                detail = f"parameter {{{{{int(index[0]) + 1}}}}}: {detail}"
            if uses_json:
                field = "parameters_json"
        out.setdefault(field, [])
        if detail not in out[field]:
            out[field].append(detail)
    if not out and not reply.ok:
        out["_form"] = [reply.detail]
    return {k: " ".join(v) for k, v in out.items()}


def _templates(channels: list[dict]) -> list[dict]:
    """The approved templates of the account's WhatsApp channels, for the picker and as a reference."""
    seen, out = set(), []
    for channel in channels:
        if channel["kind"] != "whatsapp":
            continue
        reply = api_client.get("/v1/templates", channel_id=channel["id"], status="APPROVED", limit=200)
        for t in reply.body["data"] if reply.ok else []:
            if (t["name"], t["language"]) in seen:
                continue
            seen.add((t["name"], t["language"]))
            body = next((c.get("text", "") for c in (t.get("definition") or {}).get("components") or []
                         if c.get("type") == "BODY"), "")
            out.append({"name": t["name"], "language": t["language"], "body": body, "channel": channel["name"]})
    return sorted(out, key=lambda t: (t["name"], t["language"]))


def _form(status: int = 200, form=None, errors=None, dry_run=None):
    channels = _channels()
    return render_template("console/campaign_new.html", form=form or {}, errors=errors or {}, dry_run=dry_run,
                           channels=channels, templates=_templates(channels), param_rows=PARAM_ROWS,
                           zone=_account_zone().key, reason=_reason, labels=FIELD_LABELS), status


@bp.get("/campaigns/new")
@auth.page("supervisor")
def new_campaign():
    return _form(form={"purpose": "marketing", "audience_kind": "segment"})


@bp.post("/campaigns/new")
@auth.page("supervisor")
def create_campaign():
    form = request.form
    body, errors = campaign_body(form, _account_zone())
    if errors:
        return _form(422, form, errors)
    uses_json = bool((form.get("parameters_json") or "").strip())
    if form.get("action") == "dry-run":
        # A dry run needs no name yet: the API asks for one, so an unnamed draft is checked under a stand-in.
        reply = api_client.post("/v1/campaigns/dry-run", dict(body, name=body["name"] or "dry run"))
        if not reply.ok:
            return _form(422 if reply.status in (400, 409, 422) else reply.status, form,
                         field_errors(reply, uses_json))
        return _form(200, form, dry_run=reply.body)
    reply = api_client.post("/v1/campaigns", body)
    if reply.status == 409:
        return _form(422, form, {"name": reply.detail})
    if not reply.ok:
        return _form(422 if reply.status in (400, 422) else reply.status, form, field_errors(reply, uses_json))
    return notify(redirect(f"/console/campaigns/{reply.body['id']}"),
                  f"Campaign “{reply.body['name']}” created as a draft: check it and press Start.")


# --- the dashboard ---------------------------------------------------------------------------------------

def progress_parts(counts: dict) -> list[tuple[str, int]]:
    """The recipients split into states that do not overlap (the API counts sent/delivered/read cumulatively:
    a read message was also delivered and sent), so the stacked bar adds up to the recipients."""
    return [("pending", counts["pending"]), ("queued", counts["queued"]), ("skipped", counts["skipped_total"]),
            ("awaiting delivery", counts["sent"] - counts["delivered"]),
            ("delivered, unread", counts["delivered"] - counts["read"]),
            ("read", counts["read"]), ("failed", counts["failed_total"])]


def _bucket_label(at: str, bucket: str) -> str:
    moment = parse_time(at)
    return moment.strftime("%Y-%m-%d" if bucket == "day" else "%H:%M") if moment else at


def _with_lead_in(activity: dict) -> list[dict]:
    """The series with the empty bucket before the first one: nothing happened then (the first bucket holds
    the first event), and a campaign that fits one bucket still draws a line rather than a lone point."""
    points = activity["series"]
    if not points:
        return []
    first = parse_time(points[0]["at"])
    before = (first - timedelta(seconds=activity.get("bucket_seconds") or 60)).isoformat()
    return [{"at": before, **{k: 0 for k in ACTIVITY_KEYS}}, *points]


def _activity_chart(activity: dict | None):
    if not activity:
        return None, []
    points = _with_lead_in(activity)
    labels = [_bucket_label(p["at"], activity["bucket"]) for p in points]
    series = [(key, [p[key] for p in points]) for key in ACTIVITY_KEYS if key != "failed"]
    chart = line_chart(title=f"Sends, deliveries, reads and replies per {activity['bucket']} (UTC)",
                       labels=labels, series=series, y_label="messages")
    return chart, list(zip(labels, points))


def _audience_words(audience: dict) -> str:
    if "contact_ids" in audience:
        return f"{len(audience['contact_ids'])} chosen contact(s)"
    if "import_id" in audience:
        return f"contact import {audience['import_id']}"
    seg = audience.get("segment") or {}
    parts = []
    if seg.get("tags"):
        parts.append("tags " + ", ".join(seg["tags"]))
    if seg.get("attributes"):
        parts.append(", ".join(f"{k} = {v}" for k, v in seg["attributes"].items()))
    if seg.get("consent"):
        parts.append(f"{seg['consent']} consent granted")
    for key, word in (("channel_kind", "wrote on"), ("last_inbound_after", "last wrote after"),
                      ("last_inbound_before", "last wrote before")):
        if seg.get(key):
            parts.append(f"{word} {seg[key]}")
    return "contacts with " + "; ".join(parts) if parts else "every contact of the account"


@bp.get("/campaigns/<campaign_id>")
@auth.page("supervisor")
def campaign(campaign_id):
    path = _campaign_path(campaign_id)
    reply = api_client.get(path)
    if not reply.ok:
        return _refused(reply)
    found = reply.body
    activity = api_client.get(f"{path}/activity")
    chart, buckets = _activity_chart(activity.body if activity.ok else None)
    # The per-recipient table holds addresses, and each read of it is audited: it is read when the person
    # opens or pages the dashboard, not on every live refresh (which swaps only progress, state and chart).
    recipients = None
    if request.headers.get("X-Console-Live") != "1":
        recipients = api_client.get(f"{path}/recipients", after=request.args.get("after", type=int),
                                    limit=RECIPIENTS_PAGE)
    counts = found["counts"]
    return render_template(
        "console/campaign.html", live=True, c=found, counts=counts,
        progress=progress_bar(title="Recipients by state", parts=progress_parts(counts)),
        parts=progress_parts(counts), chart=chart, buckets=buckets,
        activity=activity.body if activity.ok else None,
        activity_error=None if activity.ok else activity.detail,
        recipients=recipients.body if recipients is not None and recipients.ok else None,
        recipients_error=recipients.detail if recipients is not None and not recipients.ok else None,
        after=request.args.get("after", type=int), actions=ACTIONS.get(found["state"], ()),
        channel=_channel_names().get(found["channel_id"], found["channel_id"]),
        template_name=_template_name(found), audience=_audience_words(found.get("audience") or {}),
        badge=STATE_BADGE, reason=_reason)


@bp.post("/campaigns/<campaign_id>/<any(start, pause, resume, cancel):action>")
@auth.page("supervisor")
def campaign_action(campaign_id, action):
    path = _campaign_path(campaign_id)
    reply = api_client.post(f"{path}/{action}")
    if reply.status == 404:
        return _refused(reply)
    back = redirect(f"/console/campaigns/{campaign_id}")
    if not reply.ok:
        return notify(back, reply.detail, "error")
    if not reply.body.get("changed"):
        return notify(back, f"Nothing changed: the campaign is {reply.body['state']} already.", "info")
    return notify(back, f"Campaign {ACTION_DONE[action]}.")


@bp.get("/campaigns/<campaign_id>/recipients.csv")
@auth.page("supervisor")
def campaign_csv(campaign_id):
    """Every recipient as CSV, read page by page from the API (each page an audited read) and streamed."""
    path = f"{_campaign_path(campaign_id)}/recipients"
    first = api_client.get(path, limit=CSV_PAGE)
    if not first.ok:
        return _refused(first)
    user = g.console_user

    def lines():
        # A streamed body runs after the view returned, in a fresh app context: the principal is set again.
        g.console_user = user
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        reply = first
        while True:
            for row in reply.body["data"]:
                writer.writerow(["" if row.get(f) is None else row[f] for f in CSV_FIELDS])
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            after = reply.body.get("next")
            if after is None:
                return
            reply = api_client.get(path, after=after, limit=CSV_PAGE)
            if not reply.ok:
                # Headers are gone already: end the download broken rather than short and looking complete.
                log.warning("campaign CSV stopped", extra={"campaign_id": campaign_id, "status": reply.status})
                raise RuntimeError("the recipients could not be read to the end")

    return Response(stream_with_context(lines()), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="campaign-{uuid.UUID(campaign_id)}-recipients.csv"'})
