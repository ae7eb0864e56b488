"""The consent ledger: append-only grants and withdrawals per contact × channel kind × purpose, with proof.

An event says that a contact granted or withdrew consent for one purpose
(``marketing``, ``transactional``, ``surveys``, the account's own, or ``all``
for every purpose) on one channel kind (``whatsapp``, ``twilio``…, or ``all``
for every channel), when, through what (``source``) and with what proof (the
text agreed to and its version, the message or form submission, the IP or page)
- the proof encrypted under the contact's data key, so erasing the contact
erases it. Events are never changed (a database trigger refuses UPDATE); the
current state is the latest event per channel kind and purpose, read through
the ``consent_events_current`` index.

Merged contacts: events stay on the contact they were recorded for (so an
unmerge is exact) and are read through the surviving contact; new events go to
the survivor.

How the send gate reads the state (``state_sql``): per purpose, the latest
action on the channel's kind or on ``all``. A grant older than the latest
channel-wide withdrawal (purpose ``all``: a STOP) shows as ``lapsed``: after
STOP and START, marketing needs a new grant, since "START" says nothing about
promotions.
"""
from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta, timezone

from psycopg.types.json import Jsonb

from gateway import events, keystore
from gateway.accounts import audit
from gateway.crypto import field_aad
from gateway.db import uuid7

log = logging.getLogger("gateway.consent")

PURPOSES = ("marketing", "transactional", "surveys")
ALL = "all"                      # as a purpose: every purpose; as a channel kind: every channel
ACTIONS = ("granted", "withdrawn")
# The ledger's actions as consent.changed names them (the event's contract says granted or revoked).
EVENT_ACTIONS = {"granted": "granted", "withdrawn": "revoked"}
SOURCES = ("keyword", "api", "import", "web_form", "agent", "provider")
# Purposes that need an explicit, unexpired grant before anything is sent for them.
OPT_IN = frozenset({"marketing"})
PROOF_FIELDS = ("text", "text_version", "message_id", "form_submission_id", "ip", "page")

# Provider error codes that mean the customer stopped messages, and what they stopped.
PROVIDER_OPT_OUTS = {
    "131050": "marketing",   # WhatsApp: the user stopped marketing messages from this business
    "21610": ALL,            # Twilio: the recipient replied STOP; Twilio blocks everything to them
}

_PURPOSE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")


class ContactNotFound(LookupError):
    pass


def state_sql(contact: str, kind: str, account: str = "%(a)s") -> str:
    """A scalar subquery: ``{purpose: granted | withdrawn | lapsed}`` for the contact (and the contacts merged
    into it) on the channel kind, as the send gate reads it. ``contact`` and ``kind`` are SQL expressions
    (``r.id``, ``ch.kind`` inside outbound's context query), so a whole batch is read in one round trip."""
    return (
        "SELECT coalesce(jsonb_object_agg(purpose, CASE WHEN action = 'granted' AND purpose <> 'all' "
        "AND occurred_at < cut THEN 'lapsed' ELSE action END), '{}'::jsonb) AS consent FROM "
        "(SELECT DISTINCT ON (purpose) purpose, action, occurred_at, max(occurred_at) FILTER "
        "(WHERE purpose = 'all' AND action = 'withdrawn') OVER () AS cut FROM consent_events "
        f"WHERE account_id = {account} AND contact_id IN (SELECT {contact} UNION ALL SELECT m.id FROM contacts m "
        f"WHERE m.account_id = {account} AND m.merged_into = {contact}) AND channel_kind IN ({kind}, 'all') "
        "ORDER BY purpose, occurred_at DESC, recorded_at DESC) x")


_STATE = "SELECT (" + state_sql("%(c)s::uuid", "%(k)s::text") + ") AS consent"


def gate_state(conn, *, account_id, contact_id, channel_kind: str) -> dict[str, str]:
    """What the send gate sees for this contact on this channel kind (see ``state_sql``)."""
    return conn.execute(_STATE, {"a": account_id, "c": contact_id, "k": channel_kind}).fetchone()["consent"]


def survivor(conn, *, account_id, contact_id) -> dict | None:
    """The contact that answers for ``contact_id`` (itself, or the one it is merged into), with its data key id."""
    return conn.execute(
        "SELECT r.id, r.data_key_id, r.language FROM contacts c JOIN contacts r ON r.account_id = c.account_id "
        "AND r.id = coalesce(c.merged_into, c.id) WHERE c.account_id = %s AND c.id = %s",
        (account_id, contact_id)).fetchone()


def record(conn, *, account_id, contact_id, channel_kind: str, purpose: str, action: str, source: str,
           proof: dict | None = None, occurred_at: datetime | None = None, actor: str, key=None) -> dict:
    """Append one event for the surviving contact, in the caller's transaction, and audit it (no personal
    data in the audit row). Validation of what an API caller may send is the API's job; this checks only
    what would corrupt the ledger. Raises ContactNotFound."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}")
    root = survivor(conn, account_id=account_id, contact_id=contact_id)
    if root is None:
        raise ContactNotFound(f"no contact with id {contact_id} in this account")
    if key is None or key.id != root["data_key_id"]:
        key = keystore.load_key(conn, account_id=account_id, key_id=root["data_key_id"])
    event_id = uuid7()
    now = datetime.now(timezone.utc)
    occurred = occurred_at or now
    proof_enc = None
    if proof:
        proof_enc = key.encrypt(json.dumps(proof, sort_keys=True, default=str),
                                field_aad("consent_events", "proof", account_id, event_id))
    row = conn.execute(
        "INSERT INTO consent_events (account_id, id, contact_id, channel_kind, purpose, action, source, proof_enc, "
        "occurred_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "RETURNING id, contact_id, channel_kind, purpose, action, source, occurred_at, recorded_at",
        (account_id, event_id, root["id"], channel_kind, purpose, action, source, proof_enc, occurred)).fetchone()
    audit(conn, account_id=account_id, actor=actor, action=f"consent.{action}", target_type="contact",
          target_id=root["id"], detail={"event_id": str(event_id), "channel_kind": channel_kind,
                                        "purpose": purpose, "source": source})
    events.emit(conn, account_id, "consent.changed", changed_data(root["id"], channel_kind, purpose, action, source),
                subject_id=root["id"])
    return dict(row, proof=proof or None)


def changed_data(contact_id, channel_kind: str, purpose: str, action: str, source: str) -> dict:
    """consent.changed's data for one ledger event (every grant and withdrawal recorded, not only those that
    change what the send gate sees: the ledger is what an integrator mirrors)."""
    return {"contact_id": str(contact_id), "channel_kind": channel_kind, "purpose": purpose,
            "action": EVENT_ACTIONS[action], "source": source}


def _contact_ids(conn, account_id, root_id) -> list:
    return [root_id] + [r["id"] for r in conn.execute(
        "SELECT id FROM contacts WHERE account_id = %s AND merged_into = %s", (account_id, root_id)).fetchall()]


def history(conn, *, account_id, contact_id) -> list[dict]:
    """Every event of the contact and of the contacts merged into it, newest first, proof decrypted."""
    root = survivor(conn, account_id=account_id, contact_id=contact_id)
    if root is None:
        raise ContactNotFound(f"no contact with id {contact_id} in this account")
    rows = conn.execute(
        "SELECT e.id, e.contact_id, e.channel_kind, e.purpose, e.action, e.source, e.proof_enc, e.occurred_at, "
        "e.recorded_at, c.data_key_id FROM consent_events e JOIN contacts c ON c.account_id = e.account_id "
        "AND c.id = e.contact_id WHERE e.account_id = %s AND e.contact_id = ANY(%s) "
        "ORDER BY e.occurred_at DESC, e.recorded_at DESC, e.id DESC",
        (account_id, _contact_ids(conn, account_id, root["id"]))).fetchall()
    keys: dict = {}
    out = []
    for r in rows:
        proof = None
        if r["proof_enc"] is not None:
            key = keys.get(r["data_key_id"])
            if key is None:
                key = keys[r["data_key_id"]] = keystore.load_key(conn, account_id=account_id, key_id=r["data_key_id"])
            proof = json.loads(key.decrypt_text(r["proof_enc"], field_aad("consent_events", "proof", account_id,
                                                                          r["id"])))
        event = {k: r[k] for k in ("id", "channel_kind", "purpose", "action", "source", "occurred_at",
                                   "recorded_at")}
        event["proof"] = proof
        if r["contact_id"] != root["id"]:
            event["via_merged_contact"] = r["contact_id"]
        out.append(event)
    return out


def current(events: list[dict]) -> list[dict]:
    """The latest event per channel kind × purpose, from ``history`` (newest first)."""
    seen: dict[tuple, dict] = {}
    for e in events:
        seen.setdefault((e["channel_kind"], e["purpose"]), {
            "channel_kind": e["channel_kind"], "purpose": e["purpose"], "action": e["action"],
            "source": e["source"], "occurred_at": e["occurred_at"], "event_id": e["id"]})
    return sorted(seen.values(), key=lambda s: (s["channel_kind"], s["purpose"]))


def state_for(events: list[dict], channel_kind: str) -> dict[str, str]:
    """``state_sql`` in Python, over ``history``'s events: what the gate sees on ``channel_kind``."""
    mine = [e for e in events if e["channel_kind"] in (channel_kind, ALL)]
    cut = max((e["occurred_at"] for e in mine if e["purpose"] == ALL and e["action"] == "withdrawn"), default=None)
    state: dict[str, str] = {}
    for e in mine:   # newest first: the first per purpose wins
        if e["purpose"] in state:
            continue
        lapsed = (e["action"] == "granted" and e["purpose"] != ALL and cut is not None and e["occurred_at"] < cut)
        state[e["purpose"]] = "lapsed" if lapsed else e["action"]
    return state


def start_restores(state: dict[str, str]) -> list[str]:
    """What a START keyword gives back: the channel-wide opt-out a STOP (or the provider) recorded, and
    nothing else. A purpose withdrawn on its own (surveys through an agent, marketing through a button)
    stays withdrawn: START answers STOP, and marketing needs a grant with its own proof anyway."""
    return [ALL] if state.get(ALL) == "withdrawn" else []


def record_provider_opt_out(conn, *, account_id, contact_id, channel_kind: str, code) -> dict | None:
    """The provider refused a send because the customer stopped messages: record it in the ledger.

    WhatsApp 131050 withdraws marketing; Twilio 21610 withdraws every purpose on that channel kind. Source
    ``provider``, proof the provider's code. Returns the event, or None when the code is not an opt-out, the
    contact is gone (erased meanwhile), or the same withdrawal already stands (a campaign meeting the same
    refusal a hundred times writes one event)."""
    purpose = PROVIDER_OPT_OUTS.get(str(code))
    if purpose is None:
        return None
    root = survivor(conn, account_id=account_id, contact_id=contact_id)
    if root is None:
        return None
    standing = conn.execute(
        "SELECT action, source FROM consent_events WHERE account_id = %s AND contact_id = ANY(%s) "
        "AND channel_kind = %s AND purpose = %s ORDER BY occurred_at DESC, recorded_at DESC LIMIT 1",
        (account_id, _contact_ids(conn, account_id, root["id"]), channel_kind, purpose)).fetchone()
    if standing is not None and standing["action"] == "withdrawn" and standing["source"] == "provider":
        return None
    return record(conn, account_id=account_id, contact_id=root["id"], channel_kind=channel_kind, purpose=purpose,
                  action="withdrawn", source="provider", actor="provider",
                  proof={"provider_code": str(code), "text": f"the provider refused a send with error {code}"})


# --- per-account settings --------------------------------------------------------------------------

SETTINGS_KEYS = ("purposes", "keywords", "replies")


def stored_settings(conn, *, account_id) -> dict:
    row = conn.execute("SELECT consent_settings FROM accounts WHERE id = %s", (account_id,)).fetchone()
    return dict(row["consent_settings"] or {}) if row else {}


def effective_settings(stored: dict) -> dict:
    """The defaults (gateway/keywords.py) with the account's overrides: a language's keyword list or reply
    replaces the default one for that language; other languages keep theirs."""
    from gateway import keywords
    merged_kw = {family: {lang: list(words) for lang, words in by_lang.items()}
                 for family, by_lang in keywords.DEFAULT_KEYWORDS.items()}
    for family, by_lang in (stored.get("keywords") or {}).items():
        merged_kw.setdefault(family, {}).update({lang: list(words) for lang, words in by_lang.items()})
    merged_replies = {family: dict(by_lang) for family, by_lang in keywords.DEFAULT_REPLIES.items()}
    for family, by_lang in (stored.get("replies") or {}).items():
        merged_replies.setdefault(family, {}).update(by_lang)
    return {"purposes": list(PURPOSES) + list(stored.get("purposes") or []),
            "keywords": merged_kw, "replies": merged_replies}


def purposes_of(conn, *, account_id) -> list[str]:
    return list(PURPOSES) + list(stored_settings(conn, account_id=account_id).get("purposes") or [])


def validate_settings(doc) -> list[dict]:
    """Every problem in a settings document, as [{pointer, detail}] (empty when it is fine)."""
    from gateway import keywords
    errors: list[dict] = []

    def err(pointer, detail):
        errors.append({"pointer": pointer, "detail": detail})

    if not isinstance(doc, dict):
        return [{"pointer": "/", "detail": "send a JSON object with purposes, keywords and/or replies"}]
    for name in doc:
        if name not in SETTINGS_KEYS:
            err(f"/{name}", f"unknown setting; the settings are {', '.join(SETTINGS_KEYS)}")
    purposes = doc.get("purposes", [])
    if not isinstance(purposes, list):
        err("/purposes", "a list of purpose names, e.g. [\"loyalty\"]")
    else:
        for i, p in enumerate(purposes):
            if not isinstance(p, str) or not _PURPOSE_NAME.match(p):
                err(f"/purposes/{i}", "a purpose name is 2-40 lowercase letters, digits or _, starting with a letter")
            elif p in PURPOSES or p in (ALL, "opt_out_confirmation"):
                err(f"/purposes/{i}", f"'{p}' is built in; list only the account's extra purposes")
        names = [p for p in purposes if isinstance(p, str)]
        if len(set(names)) != len(names):
            err("/purposes", "a purpose is listed twice")
    for section, limit in (("keywords", None), ("replies", 1000)):
        value = doc.get(section, {})
        if not isinstance(value, dict):
            err(f"/{section}", f"an object by family ({', '.join(keywords.FAMILIES)}), then by language")
            continue
        for family, by_lang in value.items():
            where = f"/{section}/{family}"
            if family not in keywords.FAMILIES:
                err(where, f"unknown family; use one of {', '.join(keywords.FAMILIES)}")
                continue
            if not isinstance(by_lang, dict):
                err(where, "an object by language code, e.g. {\"es\": …}")
                continue
            for lang, item in by_lang.items():
                at = f"{where}/{lang}"
                if not _LANGUAGE.match(lang):
                    err(at, "the key must be a language code such as es, pt or pt_BR")
                elif section == "replies":
                    if not isinstance(item, str) or not item.strip() or len(item) > limit:
                        err(at, f"the reply is a non-empty text of at most {limit} characters")
                elif not isinstance(item, list) or not all(isinstance(w, str) for w in item):
                    err(at, "a list of keywords (an empty list turns the language's defaults off)")
                else:
                    for i, word in enumerate(item):
                        norm = keywords.normalise(word)
                        if not norm or len(norm) > keywords.MAX_KEYWORD:
                            err(f"{at}/{i}", f"a keyword is 1-{keywords.MAX_KEYWORD} characters of text")
    if not errors:
        clashes = keywords.clashes(effective_settings(doc)["keywords"])
        for word, families in clashes.items():
            err("/keywords", f"'{word}' would belong to {' and '.join(families)}; a keyword means one thing")
    return errors


def save_settings(conn, *, account_id, doc: dict, actor: str) -> dict:
    conn.execute("UPDATE accounts SET consent_settings = %s WHERE id = %s", (Jsonb(doc), account_id))
    audit(conn, account_id=account_id, actor=actor, action="consent.settings_updated", target_type="account",
          target_id=account_id, detail={"sections": sorted(doc)})
    from gateway import keywords
    keywords.forget_settings(account_id)
    return doc


def not_in_future(occurred_at: datetime) -> bool:
    return occurred_at <= datetime.now(timezone.utc) + timedelta(minutes=5)
