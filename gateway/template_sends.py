"""Template sends, for the send gate: which translation, whether Meta lets it go, its parameters rendered.

On WhatsApp the catalog is the channel's WhatsApp Business Account. A send may leave the language out:
the translation is then picked among the approved ones (the contact's language, its base, the account's
default: ``templates_catalog.languages``). On channels without templates (SMS, Messenger, Instagram) the
same template is rendered to plain text from the account's catalog and goes as an ordinary message, so
a notification can reach a customer on the channel they prefer.
"""
from __future__ import annotations

import re

from gateway import contacts
from gateway.send_gate import Refused
from templates_catalog import render, store
from templates_catalog.languages import pick_language

# Messenger's quick replies: at most 13, titles of at most 20 characters (protocols C).
QUICK_REPLIES_MAX, QUICK_REPLY_TITLE_MAX = 13, 20


def check_whatsapp(conn, account_id, channel: dict, contact_id, content: dict, memo: dict | None = None) -> None:
    """The template exists in the chosen language, Meta lets it be sent (APPROVED, not PAUSED or DISABLED),
    and its parameters fit - what Meta would refuse with 132001, 132015/132016 or 132000, refused before
    anything is queued. ``content`` gets the language, the rendered Cloud API components and the text the
    customer will see (``rendered_text``). A business account never synced is not checked (raw components
    with a language pass as they are; with ``check_parameters`` beside them, they are checked first).
    ``memo`` keeps catalog reads for the rest of a batch (same transaction)."""
    waba = channel.get("group_id")
    name = content.get("name")
    check = content.pop("check_parameters", None)   # the facade's components, in the renderer's form
    memo = {} if memo is None else memo
    if not waba:
        return _unsynced(content)
    if not content.get("language"):
        if ("catalog", waba) not in memo:
            memo[("catalog", waba)] = store.has_catalog(conn, account_id=account_id, waba_id=waba)
        if not memo[("catalog", waba)]:
            return _unsynced(content)
    wanted = ("row", waba, name, content.get("language"))
    if content.get("language") and wanted in memo:
        row = memo[wanted]   # the same dict each time, so the compiled template is reused too
    else:
        row = _row(conn, account_id, waba, contact_id, content)
        if content.get("language"):
            memo[wanted] = row
    if row is None:
        return _unsynced(content)
    if row["status"] != "APPROVED":
        why = f" ({row['status_reason']})" if row["status_reason"] else ""
        raise Refused("template_not_sendable", 422, f"template {name!r} ({row['language']}) is {row['status']}"
                      f"{why} at Meta; only APPROVED templates can be sent", extra={"template_status": row["status"]})
    if content.get("parameters") is None and content.get("components"):
        if check is not None:
            # The Cloud API facade: the integration's components go as given, once the catalog agrees with
            # them (what Meta would refuse with 132000 is refused here), and the thread shows the text.
            content["rendered_text"] = _render(row, check).text
        return   # Cloud API components as given: sent as they are
    rendered = _render(row, content.pop("parameters", None))
    content["components"] = rendered.cloud_api.get("components", [])
    content["rendered_text"] = rendered.text


def as_plain(conn, account_id, channel: dict, contact_id, content: dict) -> tuple[str, dict]:
    """(kind, content) of the message a channel without templates sends for this template: its text, with
    the buttons as numbered options (SMS) or quick replies (Messenger, Instagram)."""
    row = _row(conn, account_id, None, contact_id, content)
    if row is None:
        raise Refused("template_not_found", 404, f"no template named {content.get('name')!r} in this account's "
                      "catalog; sync a WhatsApp channel's templates first (POST /v1/templates/sync)",
                      extra={"languages": {}})
    rendered = _render(row, content.get("parameters"))
    origin = {"name": row["name"], "language": row["language"]}
    if channel["kind"] in ("messenger", "instagram"):
        titles = _quick_replies(row["definition"])
        if titles and len(titles) <= QUICK_REPLIES_MAX and all(len(t) <= QUICK_REPLY_TITLE_MAX for t in titles):
            return "interactive", {"type": "button", "body": _without_options(rendered.sms_text, titles),
                                   "buttons": [{"id": t, "title": t} for t in titles], "template": origin}
    return "text", {"body": rendered.sms_text, "template": origin}


def _row(conn, account_id, waba: str | None, contact_id, content: dict) -> dict | None:
    """The catalog row to send: the language given, else the best approved translation for the contact.
    Refused (404, listing the languages there are) when the template or that language does not exist."""
    name, language = content.get("name"), content.get("language")
    if language and waba:
        row = store.get(conn, account_id=account_id, waba_id=waba, name=name, language=language)
        if row is not None:
            return row
    rows = store.translations(conn, account_id=account_id, name=name, waba_id=waba)
    have = {r["language"]: r["status"] for r in rows}
    if language:
        found = next((r for r in rows if r["language"] == language), None)
        if found is not None:
            return found
        if not rows and waba is not None and not store.has_catalog(conn, account_id=account_id, waba_id=waba):
            return None
        detail = (f"template {name!r} has no {language} translation; it exists in {', '.join(have)}" if have
                  else f"no template named {name!r} in this business account; check the name or sync the "
                  "catalog (POST /v1/templates/sync)")
        raise Refused("template_not_found", 404, detail, extra={"languages": have})
    if not rows:
        raise Refused("template_not_found", 404, f"no template named {name!r} in the catalog; check the name or "
                      "sync the catalog (POST /v1/templates/sync)", extra={"languages": {}})
    contact_language, default = contacts.languages(conn, account_id=account_id, contact_id=contact_id)
    sendable = [r["language"] for r in rows if r["status"] == "APPROVED"] if waba else list(have)
    picked = pick_language(sendable, contact_language, default)
    if picked is None:
        raise Refused("template_language_unavailable", 422,
                      f"template {name!r} has no {'approved ' if waba else ''}translation in the contact's "
                      f"language ({contact_language or 'not known'}) or the account's default "
                      f"({default or 'not set'}); give template.language, or set the account's default_language "
                      "(PATCH /v1/account)", extra={"languages": have})
    content["language"] = picked
    return next(r for r in rows if r["language"] == picked)


def _render(row: dict, parameters) -> render.Rendered:
    try:
        return render.render(row["definition"], parameters, language=row["language"])
    except render.RenderError as exc:
        raise Refused("template_parameters", 422, f"{len(exc.issues)} problem(s) with the template's "
                      "parameters: see errors", extra={"errors": [
                          {"pointer": "/template/parameters", "detail": str(issue), **issue.as_dict()}
                          for issue in exc.issues]}) from None


def _unsynced(content: dict) -> None:
    if content.get("parameters") is not None:
        raise Refused("template_catalog_not_synced", 409, "parameters are rendered from the template catalog, "
                      "which this channel's business account does not have yet: sync it (POST /v1/templates/sync) "
                      "or send Cloud API components")
    if not content.get("language"):
        raise Refused("template_language_unavailable", 422, "give template.language: the catalog that would "
                      "pick one is not synced for this channel (POST /v1/templates/sync)")


def _quick_replies(definition: dict) -> list[str]:
    for comp in definition.get("components") or []:
        if isinstance(comp, dict) and str(comp.get("type") or "").upper() == "BUTTONS":
            return [str(b.get("text") or "") for b in comp.get("buttons") or []
                    if isinstance(b, dict) and str(b.get("type") or "").upper() == "QUICK_REPLY"]
    return []


def _without_options(text: str, titles: list[str]) -> str:
    """The plain text less its numbered quick-reply lines, which become real quick replies instead."""
    numbered = {f"{n}. {t}" for n, t in enumerate(titles, start=1)}
    kept = [line for line in text.split("\n") if line not in numbered]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
