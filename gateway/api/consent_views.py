"""REST views for the consent ledger and the account's consent settings (keywords, replies, purposes)."""
from __future__ import annotations

from datetime import datetime, timezone


from gateway import consent, keywords, send_gate
from gateway.api.views import bp
from gateway.http import api, json_object, parse_uuid
from gateway.problems import Problem, invalid

_API_SOURCES = ("api", "import", "web_form", "agent")   # keyword and provider events are the gateway's own
_MAX_PROOF_TEXT = 10_000



def _contact(conn, principal, contact_id: str) -> dict:
    root = consent.survivor(conn, account_id=principal.account_id, contact_id=parse_uuid(contact_id, "contact"))
    if root is None:
        raise Problem(404, "Not Found", f"no contact with id {contact_id} in this account")
    return root


def _channel_kinds(conn, account_id, events: list[dict]) -> list[str]:
    kinds = {r["kind"] for r in conn.execute("SELECT DISTINCT kind FROM channels WHERE account_id = %s",
                                             (account_id,)).fetchall()}
    kinds |= {e["channel_kind"] for e in events if e["channel_kind"] != consent.ALL}
    return sorted(kinds)


@bp.get("/contacts/<contact_id>/consents")
@api(scope="contacts:read")
def list_consents(conn, principal, contact_id):
    """Current state per channel kind × purpose, what the send gate would do per channel kind, and the whole
    history newest first with its proof."""
    root = _contact(conn, principal, contact_id)
    events = consent.history(conn, account_id=principal.account_id, contact_id=root["id"])
    purposes = consent.purposes_of(conn, account_id=principal.account_id)
    gate = {}
    for kind in _channel_kinds(conn, principal.account_id, events):
        state = consent.state_for(events, kind)
        gate[kind] = {}
        for purpose in purposes:
            refusal = send_gate.consent_refusal(state, purpose, kind)
            gate[kind][purpose] = "allowed" if refusal is None else refusal.rule
    return {"contact_id": root["id"], "purposes": purposes, "current": consent.current(events), "send_gate": gate,
            "history": events}


def _check_record(doc: dict, purposes: list[str]) -> tuple[list[dict], dict]:
    """Every problem in a POST body at once, and the cleaned values."""
    errors: list[dict] = []

    def err(pointer, detail):
        errors.append({"pointer": pointer, "detail": detail})

    allowed = {"channel_kind", "purpose", "action", "source", "occurred_at", "proof"}
    for name in doc:
        if name not in allowed:
            err(f"/{name}", f"unknown field; the fields are {', '.join(sorted(allowed))}")
    from webhooks import registry
    kinds = sorted(registry.PROVIDERS) + [consent.ALL]
    channel_kind = doc.get("channel_kind")
    if channel_kind not in kinds:
        err("/channel_kind", f"required: one of {', '.join(kinds)} ('all' for every channel)")
    action = doc.get("action")
    if action not in consent.ACTIONS:
        err("/action", "required: granted or withdrawn")
    source = doc.get("source", "api")
    if source not in _API_SOURCES:
        err("/source", f"one of {', '.join(_API_SOURCES)} (keyword and provider events are recorded by the gateway)")
    occurred_at = None
    if doc.get("occurred_at") is not None:
        try:
            occurred_at = datetime.fromisoformat(str(doc["occurred_at"]).replace("Z", "+00:00"))
            if occurred_at.tzinfo is None:
                raise ValueError
            if not consent.not_in_future(occurred_at):
                err("/occurred_at", "is in the future; give when the customer actually consented or withdrew")
        except ValueError:
            err("/occurred_at", "an ISO 8601 time with its offset, e.g. 2026-03-01T10:15:00Z")
    proof = doc.get("proof", {})
    if proof is None:
        proof = {}
    if not isinstance(proof, dict):
        err("/proof", "an object: {text, text_version, message_id?, form_submission_id?, ip?, page?}")
        proof = {}
    for name, value in proof.items():
        if name not in consent.PROOF_FIELDS:
            err(f"/proof/{name}", f"unknown proof field; they are {', '.join(consent.PROOF_FIELDS)}")
        elif not isinstance(value, str) or not value.strip() or len(value) > _MAX_PROOF_TEXT:
            err(f"/proof/{name}", f"a non-empty string of at most {_MAX_PROOF_TEXT} characters")
    if action == "granted" and not proof.get("message_id"):
        # A grant must be provable: the words the customer agreed to (and which version of them), or the
        # message in which they agreed. A withdrawal is honoured whatever its proof.
        for name, what in (("text", "exact text the customer agreed to"), ("text_version", "version of that text")):
            if not proof.get(name):
                err(f"/proof/{name}", f"a grant needs proof: the {what} (or proof.message_id of the message in "
                    "which they agreed)")
    purpose = doc.get("purpose")
    valid_purposes = purposes + [consent.ALL]
    if purpose not in valid_purposes:
        err("/purpose", f"required: one of this account's purposes: {', '.join(valid_purposes)} ('all' for "
            "every purpose; add purposes with PUT /v1/consent-settings)")
    return errors, {"channel_kind": channel_kind, "purpose": purpose, "action": action, "source": source,
                    "occurred_at": occurred_at, "proof": {k: v.strip() for k, v in proof.items()
                                                          if isinstance(v, str)} or None}


@bp.post("/contacts/<contact_id>/consents")
@api(scope="contacts:write")
def record_consent(conn, principal, contact_id):
    """Record one grant or withdrawal with its proof; 201 with the event as stored."""
    root = _contact(conn, principal, contact_id)
    doc = json_object()
    errors, values = _check_record(doc, consent.purposes_of(conn, account_id=principal.account_id))
    if errors:
        raise invalid(errors)
    event = consent.record(conn, account_id=principal.account_id, contact_id=root["id"], actor=principal.actor,
                           occurred_at=values.pop("occurred_at") or datetime.now(timezone.utc), **values)
    return event, 201


def _settings_view(stored: dict) -> dict:
    return {"overrides": stored, "effective": consent.effective_settings(stored),
            "families": list(keywords.FAMILIES)}


@bp.get("/consent-settings")
@api(scope="admin")
def get_consent_settings(conn, principal):
    return _settings_view(consent.stored_settings(conn, account_id=principal.account_id))


@bp.put("/consent-settings")
@api(scope="admin")
def put_consent_settings(conn, principal):
    """Replace the account's overrides: {purposes?, keywords?: {family: {lang: [words]}}, replies?: {family:
    {lang: text}}}. What is left out falls back to the defaults."""
    doc = json_object()
    errors = consent.validate_settings(doc)
    if errors:
        raise Problem(422, "Validation Failed", f"{len(errors)} setting(s) are invalid: see errors for each and "
                      "how to fix it", slug="validation-failed", errors=errors)
    return _settings_view(consent.save_settings(conn, account_id=principal.account_id, doc=doc,
                                                actor=principal.actor))
