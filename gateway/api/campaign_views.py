"""REST views for campaigns: create, dry run, start / pause / resume / cancel, progress, activity over time and
per-recipient results."""
from __future__ import annotations

import csv
import io

from flask import Response, g, request

from gateway import contacts
from gateway.api.views import bp
from gateway.campaigns import activity, checks, feeder, store
from gateway.http import api, json_object, parse_uuid
from gateway.problems import Problem


def _view(conn, principal, row: dict, with_counts: bool = True) -> dict:
    out = {"id": row["id"], "name": row["name"], "purpose": row["purpose"], "channel_id": row["channel_id"],
           **{k: v for k, v in row["spec"].items()}, "state": row["state"], "state_reason": row["state_reason"],
           "waiting": row["waiting"], "start_at": row["start_at"], "created_at": row["created_at"],
           "updated_at": row["updated_at"], "started_at": row["started_at"], "finished_at": row["finished_at"]}
    if with_counts:
        channel = conn.execute("SELECT kind, settings FROM channels WHERE account_id = %s AND id = %s",
                               (principal.account_id, row["channel_id"])).fetchone()
        out["pace_per_s_effective"] = round(feeder.effective_pace(row, channel), 2)
        out["counts"] = store.counts(conn, account_id=principal.account_id, campaign_id=row["id"])
        if row["duplicates"]:
            out["counts"]["duplicates"] = row["duplicates"]
    return out


def _valid(conn, principal, doc: dict) -> dict:
    found = checks.problems(conn, account_id=principal.account_id, doc=doc)
    if found:
        raise Problem(422, "Invalid Campaign", f"{len(found)} problem(s): see errors for each one and how to fix it",
                      slug="invalid-campaign", errors=found)
    return doc


def _campaign(conn, principal, campaign_id: str) -> dict:
    row = store.get(conn, account_id=principal.account_id, campaign_id=parse_uuid(campaign_id, "campaign"))
    if row is None:
        raise Problem(404, "Not Found", f"no campaign with id {campaign_id} in this account")
    return row


@bp.post("/campaigns")
@api(scope="campaigns:write")
def create_campaign(conn, principal):
    doc = _valid(conn, principal, json_object())
    try:
        row = store.create(conn, account_id=principal.account_id, doc=doc)
    except store.NameTaken:
        raise Problem(409, "Name Taken", f"another campaign is named {doc['name']!r}; names are unique in the account",
                      slug="campaign-name-taken") from None
    return _view(conn, principal, row), 201


@bp.post("/campaigns/dry-run")
@api(scope="campaigns:write")
def dry_run_body(conn, principal):
    """The dry run of a campaign not saved yet (the same body as POST /v1/campaigns)."""
    doc = _valid(conn, principal, json_object())
    spec = {k: v for k, v in doc.items() if k not in ("name", "purpose", "channel_id", "start_at")}
    return checks.dry_run(conn, account_id=principal.account_id, campaign={
        "id": None, "purpose": doc["purpose"], "channel_id": parse_uuid(doc["channel_id"], "channel"), "spec": spec})


@bp.post("/campaigns/<campaign_id>/dry-run")
@api(scope="campaigns:write")
def dry_run_saved(conn, principal, campaign_id):
    row = _campaign(conn, principal, campaign_id)
    return checks.dry_run(conn, account_id=principal.account_id, campaign=row)


@bp.get("/campaigns")
@api(scope="messages:read")
def list_campaigns(conn, principal):
    state = request.args.get("state")
    if state is not None and state not in ("draft", "scheduled", "running", "paused", "completed", "cancelled"):
        raise Problem(400, "Bad Filter", "state is draft, scheduled, running, paused, completed or cancelled",
                      slug="bad-filter")
    counts = request.args.get("counts", "false")
    if counts not in ("true", "false"):
        raise Problem(400, "Bad Filter", "counts is true (each campaign with its counts, as GET /v1/campaigns/{id} "
                      "gives them) or false", slug="bad-filter")
    before = request.args.get("before")
    limit = min(max(request.args.get("limit", 50, type=int), 1), 200)
    rows = store.list_campaigns(conn, account_id=principal.account_id, state=state, limit=limit,
                                before=parse_uuid(before, "cursor") if before else None)
    return {"data": [_view(conn, principal, r, with_counts=counts == "true") for r in rows],
            "next": str(rows[-1]["id"]) if len(rows) == limit else None}


@bp.get("/campaigns/<campaign_id>")
@api(scope="messages:read")
def get_campaign(conn, principal, campaign_id):
    return _view(conn, principal, _campaign(conn, principal, campaign_id))


@bp.get("/campaigns/<campaign_id>/activity")
@api(scope="messages:read")
def campaign_activity(conn, principal, campaign_id):
    """Sends, deliveries, reads, replies and failures over time, for the campaign's chart: each counted in the
    time bucket it happened in (``?bucket=auto|minute|hour|day``; auto: minutes up to 3 hours of activity, hours
    up to 7 days, else days; at most 500 buckets, coarsened past that), empty buckets as zeros. Aggregates only:
    no personal data (no read audit row)."""
    bucket = request.args.get("bucket") or "auto"
    if bucket not in activity.BUCKETS:
        raise Problem(400, "Bad Filter", "bucket is auto, minute, hour or day", slug="bad-filter")
    found = activity.activity(conn, account_id=principal.account_id,
                              campaign_id=parse_uuid(campaign_id, "campaign"), bucket=bucket)
    if found is None:
        raise Problem(404, "Not Found", f"no campaign with id {campaign_id} in this account")
    g.audit_recorded = True   # counts and times only, like /v1/reports: nothing whose read needs a row
    return found


def _act(conn, principal, campaign_id: str, action: str):
    try:
        row, changed = store.transition(conn, account_id=principal.account_id,
                                        campaign_id=parse_uuid(campaign_id, "campaign"), action=action,
                                        by=principal.actor)
    except ValueError as exc:
        raise Problem(409, "Wrong State", str(exc), slug="campaign-state") from None
    if row is None:
        raise Problem(404, "Not Found", f"no campaign with id {campaign_id} in this account")
    return {**_view(conn, principal, row), "changed": changed}


@bp.post("/campaigns/<campaign_id>/start")
@api(scope="campaigns:write")
def start_campaign(conn, principal, campaign_id):
    """Start now (or at start_at). Starting again changes nothing."""
    return _act(conn, principal, campaign_id, "start")


@bp.post("/campaigns/<campaign_id>/pause")
@api(scope="campaigns:write")
def pause_campaign(conn, principal, campaign_id):
    return _act(conn, principal, campaign_id, "pause")


@bp.post("/campaigns/<campaign_id>/resume")
@api(scope="campaigns:write")
def resume_campaign(conn, principal, campaign_id):
    return _act(conn, principal, campaign_id, "resume")


@bp.post("/campaigns/<campaign_id>/cancel")
@api(scope="campaigns:write")
def cancel_campaign(conn, principal, campaign_id):
    return _act(conn, principal, campaign_id, "cancel")


_RESULT_FIELDS = ("seq", "contact_id", "address", "state", "skip_reason", "defer_until", "message_id", "status",
                  "error_code", "error_reason", "queued_at", "sent_at", "replied_at")


def _addresses(conn, account_id, contact_ids: list, channel_kind: str) -> dict:
    kind = {"messenger": "psid", "instagram": "igsid"}.get(channel_kind, "phone")
    return contacts.addresses_of(conn, account_id=account_id, contact_ids=contact_ids, kind=kind)


@bp.get("/campaigns/<campaign_id>/recipients")
@api(scope="contacts:read")
def campaign_recipients(conn, principal, campaign_id):
    """Per recipient, in feed order: JSON pages (``after`` = the last ``seq``) or the whole list as CSV
    (``format=csv``). Holds addresses: needs contacts:read, and is audited."""
    row = _campaign(conn, principal, campaign_id)
    channel = conn.execute("SELECT kind FROM channels WHERE account_id = %s AND id = %s",
                           (principal.account_id, row["channel_id"])).fetchone()
    if request.args.get("format") == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(_RESULT_FIELDS)
        after = 0
        while True:
            page = store.results(conn, account_id=principal.account_id, campaign_id=row["id"], after_seq=after,
                                 limit=5000)
            if not page:
                break
            addresses = _addresses(conn, principal.account_id, [r["contact_id"] for r in page], channel["kind"])
            for r in page:
                item = dict(r, address=addresses.get(r["contact_id"]))
                writer.writerow(["" if item.get(f) is None else item[f] for f in _RESULT_FIELDS])
            after = page[-1]["seq"]
        return Response(buf.getvalue(), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="campaign-{row["id"]}.csv"'})
    limit = min(max(request.args.get("limit", 100, type=int), 1), 1000)
    page = store.results(conn, account_id=principal.account_id, campaign_id=row["id"],
                         after_seq=request.args.get("after", 0, type=int), limit=limit)
    addresses = _addresses(conn, principal.account_id, [r["contact_id"] for r in page], channel["kind"])
    return {"data": [dict(r, address=addresses.get(r["contact_id"])) for r in page],
            "next": page[-1]["seq"] if len(page) == limit else None}
