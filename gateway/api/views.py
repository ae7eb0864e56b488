"""REST views. They hold no SQL: each calls a domain function scoped to the caller's account."""
from __future__ import annotations

import uuid

import psycopg.errors
from flask import Blueprint

from gateway import accounts, attributes, contact_tags, contacts
from gateway.api.schemas import AccountUpdate, ApiKeyCreate, ContactCreate
from gateway.http import api, json_body, parse_uuid
from gateway.problems import Problem

bp = Blueprint("api", __name__, url_prefix="/v1")


def _key_view(row: dict) -> dict:
    return {k: row[k] for k in ("id", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")}


def _account_view(account: dict, principal) -> dict:
    return {"id": account["id"], "name": account["name"], "timezone": account["timezone"],
            "default_language": account["default_language"],
            "retention_message_days": account["retention_message_days"],
            "retention_raw_event_days": account["retention_raw_event_days"],
            "report_fcr_days": account["report_fcr_days"], "report_sla_seconds": account["report_sla_seconds"],
            "api_key": {"id": principal.key_id, "scopes": sorted(principal.scopes)},
            "twilio_account_sid": "AC" + uuid.UUID(str(account["id"])).hex}   # the /twilio facade's AccountSid


@bp.get("/account")
@api(scope=None)
def whoami(conn, principal):
    return _account_view(accounts.get_account(conn, account_id=principal.account_id), principal)


@bp.patch("/account")
@api(scope="admin")
def update_account(conn, principal):
    """The account's time zone and default language (the last resort when picking a template translation)."""
    body = json_body(AccountUpdate())
    return _account_view(accounts.update_account(conn, account_id=principal.account_id, changes=body,
                                                 actor=principal.actor), principal)


@bp.get("/api-keys")
@api(scope="admin")
def list_keys(conn, principal):
    return {"data": [_key_view(r) for r in accounts.list_api_keys(conn, account_id=principal.account_id)]}


@bp.post("/api-keys")
@api(scope="admin")
def create_key(conn, principal):
    body = json_body(ApiKeyCreate())
    row, secret = accounts.create_api_key(conn, account_id=principal.account_id, name=body["name"],
                                          scopes=body["scopes"], actor=principal.actor)
    return dict(_key_view(row), key=secret, note="store this key now: it is not shown again"), 201


@bp.delete("/api-keys/<key_id>")
@api(scope="admin")
def revoke_key(conn, principal, key_id):
    row = accounts.revoke_api_key(conn, account_id=principal.account_id, key_id=parse_uuid(key_id, "API key"),
                                  actor=principal.actor)
    if row is None:
        raise Problem(404, "Not Found", f"no API key with id {key_id} in this account")
    return _key_view(row)


@bp.post("/contacts")
@api(scope="contacts:write")
def create_contact(conn, principal):
    body = json_body(ContactCreate())
    idents = [(i["kind"], i["address"]) for i in body["identities"]]
    profile = body.get("profile")
    if profile:   # values of defined attributes must have their type (gateway/attributes.py)
        wrong = attributes.check(attributes.definitions(conn, account_id=principal.account_id, names=list(profile)),
                                 {k: v for k, v in profile.items() if k != "tags"}, pointer="/profile")
        if wrong:
            raise Problem(422, "Attribute Type", "attribute value(s) of the wrong type: " + ", ".join(
                f"{e['attribute']} (expected {e['expected_type']})" if "expected_type" in e else str(e["attribute"])
                for e in wrong) + "; see errors", slug="attribute-type", errors=wrong)
    if body.get("tags"):
        # create_contact keeps tags in contact_tags, also those given the old way, in profile["tags"]
        profile = {**(profile or {}), "tags": [*body["tags"], *contact_tags.legacy(profile or {})]}
    try:
        contact = contacts.create_contact(conn, account_id=principal.account_id, name=body.get("name"),
                                          language=body.get("language"), profile=profile,
                                          identities=idents, actor=principal.actor)
    except psycopg.errors.UniqueViolation:
        # The (account, kind, blind index) unique key decides, race-free.
        raise Problem(409, "Conflict", "a contact with one of these identities already exists in the account "
                      "(or one is listed twice); look it up instead of creating it again",
                      slug="contact-exists") from None
    return contact, 201


# GET /v1/contacts (the list, with its search filters) is in crm_views.py.


@bp.get("/contacts/<contact_id>")
@api(scope="contacts:read")
def get_contact(conn, principal, contact_id):
    contact = contacts.get_contact(conn, account_id=principal.account_id,
                                   contact_id=parse_uuid(contact_id, "contact"))
    if contact is None:
        raise Problem(404, "Not Found", f"no contact with id {contact_id} in this account")
    return contact


@bp.delete("/contacts/<contact_id>")
@api(scope="contacts:erase")
def erase_contact(conn, principal, contact_id):
    """Erasure (GDPR Art. 17): irreversible, hence its own scope, ``contacts:erase``, which no other scope but
    admin implies (the console gives it to supervisors)."""
    try:
        erased = contacts.erase_contact(conn, account_id=principal.account_id,
                                        contact_id=parse_uuid(contact_id, "contact"), actor=principal.actor)
    except contacts.AlreadyErased as exc:
        raise Problem(410, "Gone", f"contact {contact_id} was erased at {exc.erased_at.isoformat()}; "
                      "nothing of it is left to erase", slug="contact-erased",
                      extra={"erased_at": exc.erased_at.isoformat()}) from None
    if not erased:
        raise Problem(404, "Not Found", f"no contact with id {contact_id} in this account")
    return "", 204
