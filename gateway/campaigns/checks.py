"""A campaign checked against the account (channel, template, parameter mapping, audience) and its dry run."""
from __future__ import annotations

import math
from datetime import datetime, timezone

from gateway import outbound, send_gate
from gateway.campaigns import audience, feeder, prepare
from gateway.campaigns import spec as campaign_spec
from templates_catalog import render, store as template_store

DRY_RUN_BATCH = 500


def problems(conn, *, account_id, doc: dict) -> list[dict]:
    """Every problem of a campaign body, the shape first, then against the account."""
    found = campaign_spec.problems(doc)
    if found:
        return found
    out: list[dict] = []

    def bad(pointer, detail):
        out.append({"pointer": pointer, "detail": detail})

    channel = conn.execute("SELECT id, kind, group_id, settings, status FROM channels WHERE account_id = %s AND id = %s",
                           (account_id, doc["channel_id"])).fetchone()
    if channel is None:
        bad("/channel_id", f"no channel with id {doc['channel_id']} in this account")
        return out
    message = doc["message"]
    if "text" in message and send_gate.capabilities(channel["kind"]).get("window"):
        bad("/message/text", f"a {channel['kind']} channel sends free text only within 24 hours of the customer's "
                             "last message; a campaign there sends an approved template")
    if "template" in message:
        _template(conn, account_id, channel, message["template"], bad)
    aud = doc["audience"]
    if "import_id" in aud:
        found = conn.execute("SELECT status FROM contact_imports WHERE account_id = %s AND id = %s",
                             (account_id, aud["import_id"])).fetchone()
        if found is None:
            bad("/audience/import_id", f"no contact import with id {aud['import_id']} in this account")
            return out
        if found["status"] != "completed":
            bad("/audience/import_id", f"the import is {found['status']}: wait for it to complete, or import the "
                                       "same file again (it completes without duplicates)")
    uses_columns = any("column" in m for m in campaign_spec.mappings((message.get("template") or {}).get("parameters")))
    if uses_columns and "import_id" not in aud:
        bad("/message/template/parameters", "a {\"column\": …} mapping reads the CSV of an import: use an "
                                            "audience {\"import_id\": …}, or map from attributes")
    if not any(audience.contact_ids(conn, account_id=account_id, audience=aud, channel_kind=channel["kind"], limit=1)):
        bad("/audience", "the audience is empty: no contact of this account matches it")
    return out


def _template(conn, account_id, channel: dict, t: dict, bad) -> None:
    waba = channel["group_id"] if channel["kind"] == "whatsapp" else None
    rows = template_store.translations(conn, account_id=account_id, name=t["name"], waba_id=waba)
    if not rows:
        bad("/message/template/name", f"no template {t['name']!r} in the catalog"
                                      + (" of this channel's business account" if waba else "")
                                      + "; sync it (POST /v1/templates/sync) or check the name")
        return
    if t.get("language"):
        rows = [r for r in rows if r["language"] == t["language"]]
        if not rows:
            bad("/message/template/language", f"template {t['name']!r} has no {t['language']!r} translation")
            return
    approved = [r for r in rows if r["status"] == "APPROVED"] if waba else rows
    if not approved:
        statuses = ", ".join(sorted({r["status"] for r in rows}))
        bad("/message/template/name", f"template {t['name']!r} is {statuses}; a campaign needs an APPROVED one")
        return
    values = campaign_spec.sample(t.get("parameters"))
    for row in approved:
        try:
            render.render(row["definition"], values, language=row["language"])
        except render.RenderError as exc:
            for issue in exc.issues:
                bad("/message/template/parameters", f"{row['language']}: {issue} (the mapping must give every "
                                                    "parameter of the template, and only those)")


def dry_run(conn, *, account_id, campaign: dict, now: datetime | None = None) -> dict:
    """How many recipients would be sent, skipped (by reason) or held by quiet hours, and how long it would
    take at the campaign's pace; nothing is recorded."""
    now = now or datetime.now(timezone.utc)
    channel = conn.execute("SELECT id, kind, group_id, settings, status FROM channels WHERE account_id = %s AND id = %s",
                           (account_id, campaign["channel_id"])).fetchone()
    tz = conn.execute("SELECT timezone FROM accounts WHERE id = %s", (account_id,)).fetchone()["timezone"] or "UTC"
    already = set()
    if campaign.get("id") is not None:
        already = {r["contact_id"] for r in conn.execute(
            "SELECT contact_id FROM campaign_recipients WHERE account_id = %s AND campaign_id = %s AND state <> 'pending'",
            (account_id, campaign["id"])).fetchall()}
    total, sendable, deferred, skipped = 0, 0, 0, {}
    for page in audience.contact_ids(conn, account_id=account_id, audience=campaign["spec"]["audience"],
                                     channel_kind=channel["kind"]):
        for i in range(0, len(page), DRY_RUN_BATCH):
            ids = page[i:i + DRY_RUN_BATCH]
            total += len(ids)
            todo = [c for c in ids if c not in already]
            for c in ids:
                if c in already:
                    skipped["already_in_campaign"] = skipped.get("already_in_campaign", 0) + 1
            planned = prepare.drafts(conn, dict(campaign, id=campaign.get("id") or "dry-run"), account_id, todo,
                                     now=now, account_tz=tz)
            drafts = [d for _, d, _ in planned if d is not None]
            for _, d, why in planned:
                if d is None and isinstance(why, tuple):
                    deferred += 1
                elif d is None:
                    skipped[why] = skipped.get(why, 0) + 1
            for refusal in outbound.check_many(conn, account_id, drafts):
                if refusal is None:
                    sendable += 1
                else:
                    reason = prepare.skip_reason(refusal)
                    skipped[reason] = skipped.get(reason, 0) + 1
    pace = feeder.effective_pace(campaign, channel)
    limit = feeder.messaging_limit(channel)
    going = sendable + deferred
    report = {"recipients": total, "would_send": sendable, "deferred_by_quiet_hours": deferred,
              "skipped": skipped, "skipped_total": sum(skipped.values()), "pace_per_s": round(pace, 2),
              "estimated_duration_s": math.ceil(going / pace) if going else 0}
    if limit is not None and "template" in campaign["spec"]["message"] and channel["kind"] == "whatsapp":
        used = feeder._reached_24h(conn, account_id, channel, now)
        report["messaging_limit"] = {"limit": limit, "used_24h": used, "remaining": max(0, limit - used)}
        if going > limit - used:
            report["messaging_limit"]["note"] = (
                f"{going - max(0, limit - used)} recipient(s) are over the remaining limit: the campaign waits "
                "for older sends to leave the 24-hour window (about a day per limit's worth)")
            report["estimated_duration_s"] = max(report["estimated_duration_s"],
                                                 86400 * math.ceil((going - max(0, limit - used)) / limit))
    return report
