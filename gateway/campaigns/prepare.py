"""Each recipient's message, before the send gate: the template's parameters (or the text) filled from the
contact, and the recipient's quiet hours. Used by the feeder and by the dry run alike."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway import contacts, keystore, outbound, send_gate
from gateway.campaigns import spec as campaign_spec
from gateway.crypto import field_aad


def idempotency_key(campaign_id, contact_id) -> str:
    return f"campaign:{campaign_id}:{contact_id}"


def _contacts(conn, account_id, ids: list, need: set) -> dict:
    """contact id → {"profile", "contact": {name, language}, "phone"} for what the message needs."""
    out = {i: {"profile": {}, "contact": {}, "phone": None} for i in ids}
    if not need & {"profile", "contact", "phone"}:
        return out
    rows = conn.execute("SELECT id, data_key_id, name_enc, profile_enc, language FROM contacts "
                        "WHERE account_id = %s AND id = ANY(%s)", (account_id, ids)).fetchall()
    by_key = keystore.load_keys(conn, account_id=account_id, key_ids=[r["data_key_id"] for r in rows])
    for r in rows:
        key = by_key.get(r["data_key_id"]) or keystore.load_key(conn, account_id=account_id, key_id=r["data_key_id"])
        item = out[r["id"]]
        if "profile" in need and r["profile_enc"]:
            item["profile"] = json.loads(key.decrypt_text(r["profile_enc"], field_aad("contacts", "profile", account_id,
                                                                                      r["id"])))
        if "contact" in need:
            name = key.decrypt_text(r["name_enc"], field_aad("contacts", "name", account_id, r["id"])) \
                if r["name_enc"] else None
            item["contact"] = {"name": name, "language": r["language"]}
    if "phone" in need:
        for contact_id, phone in contacts.addresses_of(conn, account_id=account_id, contact_ids=ids,
                                                       kind="phone").items():
            out[contact_id]["phone"] = phone
    return out


def drafts(conn, campaign: dict, account_id, ids: list, *, now: datetime | None = None,
           account_tz: str = "UTC") -> list[tuple]:
    """For each contact id: (contact id, Draft, None), (contact id, None, skip reason) or (contact id, None,
    ("defer", until)) when the recipient is in quiet hours."""
    spec, message = campaign["spec"], campaign["spec"]["message"]
    need = campaign_spec.needs(spec)
    quiet = spec.get("quiet_hours")
    if quiet:
        need |= {"profile", "phone"}
    info = _contacts(conn, account_id, ids, need)
    columns = {}
    if "columns" in need and "import_id" in spec["audience"]:
        from gateway import contact_import
        columns = contact_import.column_values(conn, account_id=account_id, import_id=spec["audience"]["import_id"],
                                               contact_ids=ids)
    purpose = campaign_spec.GATE_PURPOSE[campaign["purpose"]]
    now = now or datetime.now(timezone.utc)
    out = []
    for cid in ids:
        item = info[cid]
        if quiet:
            until = defer_until(now, quiet, recipient_zone(item["profile"], item["phone"], quiet.get("timezone")
                                                           or account_tz))
            if until is not None:
                out.append((cid, None, ("defer", until)))
                continue
        try:
            if "text" in message:
                kind, content = "text", {"body": campaign_spec.fill_text(message["text"], profile=item["profile"],
                                                                          contact=item["contact"])}
            else:
                t = message["template"]
                kind, content = "template", {"name": t["name"]}
                if t.get("language"):
                    content["language"] = t["language"]
                if t.get("parameters") is not None:
                    content["parameters"] = campaign_spec.resolve(
                        t["parameters"], profile=item["profile"], columns=columns.get(cid) or {},
                        contact=item["contact"])
        except campaign_spec.Missing:
            out.append((cid, None, "parameters_missing"))
            continue
        out.append((cid, outbound.Draft(channel_id=campaign["channel_id"], kind=kind, content=content, contact_id=cid,
                                        purpose=purpose, idempotency_key=idempotency_key(campaign["id"], cid)), None))
    return out


def skip_reason(exc: Exception) -> str:
    if isinstance(exc, send_gate.Refused):
        return exc.rule
    if isinstance(exc, outbound.NotFound):
        return exc.slug.replace("-", "_")
    if isinstance(exc, outbound.InvalidRecipient):
        return "invalid_address"
    if isinstance(exc, outbound.IdempotencyConflict):
        return "already_sent"
    return type(exc).__name__


# --- quiet hours -----------------------------------------------------------------------------------------

def recipient_zone(profile: dict, phone: str | None, fallback: str) -> ZoneInfo:
    """The recipient's time zone: a ``timezone`` attribute, else the phone number's (when the number names
    one, or several and the fallback is among them), else the fallback."""
    for candidate in (profile.get("timezone"),):
        if isinstance(candidate, str):
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                pass
    if phone:
        import phonenumbers
        from phonenumbers import timezone as number_zones
        try:
            zones = number_zones.time_zones_for_number(phonenumbers.parse(phone))
        except phonenumbers.NumberParseException:
            zones = ()
        zones = [z for z in zones if z != "Etc/Unknown"]
        if zones:
            return ZoneInfo(fallback if fallback in zones else zones[0])
    return ZoneInfo(fallback)


def defer_until(now: datetime, quiet: dict, tz: ZoneInfo) -> datetime | None:
    """When quiet hours (``from``–``to``, wall clock, possibly across midnight) end for this recipient, or
    None when it is not quiet there now."""
    local = now.astimezone(tz)
    start, end, t = campaign_spec.hhmm(quiet["from"]), campaign_spec.hhmm(quiet["to"]), local.time()
    if start < end:
        if not start <= t < end:
            return None
        day: date = local.date()
    else:
        if not (t >= start or t < end):
            return None
        day = local.date() + timedelta(days=1) if t >= start else local.date()
    return datetime.combine(day, end, tzinfo=tz).astimezone(timezone.utc)
