"""REST views for what a CRM keeps about customers: contact search, contact edits (typed attributes, tags, name,
language), attribute definitions, internal notes and tags on threads, and the 360° contact timeline."""
from __future__ import annotations

import re
from datetime import datetime

import phonenumbers
from flask import request

from gateway import attributes, consent, contact_search, contact_tags, contacts, notes, timeline
from gateway.accounts import audit
from gateway.api import paging
from gateway.api.views import bp
from gateway.http import api, json_object, parse_uuid
from gateway.problems import Problem, invalid

_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
_CHANNEL_KINDS = ("whatsapp", "messenger", "instagram", "twilio", "sandbox")
_SEARCH_ARGS = ("limit", "before", "phone", "region", "tag", "channel_id", "channel_kind", "active_after",
                "active_before")


def _bad_filter(detail: str) -> Problem:
    return Problem(400, "Bad Filter", detail, slug="bad-filter")


def _time_arg(name: str):
    value = request.args.get(name)
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise _bad_filter(f"{name} is an ISO 8601 time with its offset, e.g. 2026-03-01T10:15:00Z")
    return at


def _root(conn, principal, contact_id: str) -> dict:
    """The contact that answers for this id (itself, or the survivor it was merged into); 404 otherwise."""
    root = consent.survivor(conn, account_id=principal.account_id, contact_id=parse_uuid(contact_id, "contact"))
    if root is None:
        raise Problem(404, "Not Found", f"no contact with id {contact_id} in this account")
    return root


# --- contacts --------------------------------------------------------------------------------------------

@bp.get("/contacts")
@api(scope="contacts:read")
def list_contacts(conn, principal):
    """Newest first, filtered by phone (blind index), tag, attribute.<name>, channel_id, channel_kind,
    active_after/active_before; cursor pagination (gateway/contact_search.py)."""
    args = request.args
    limit = paging.limit()
    wanted = {}
    for name in args:
        if name.startswith("attribute."):
            wanted[name[len("attribute."):]] = args.get(name)
        elif name not in _SEARCH_ARGS:
            raise _bad_filter(f"unknown parameter '{name}'; filter with {', '.join(_SEARCH_ARGS[2:])} or "
                              "attribute.<name>=<value>")
    region = args.get("region") or None
    if region is not None:
        region = region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise _bad_filter(f"region '{region[:10]}' is not a country code; use ISO 3166 alpha-2, e.g. ES")
    channel_kind = args.get("channel_kind") or None
    if channel_kind is not None and channel_kind not in _CHANNEL_KINDS:
        raise _bad_filter(f"channel_kind is one of {', '.join(_CHANNEL_KINDS)}")
    channel = args.get("channel_id")
    tags = [t.strip() for t in args.getlist("tag") if t.strip()]
    values = {}
    if wanted:
        defs = attributes.filterable(conn, account_id=principal.account_id, names=list(wanted))
        for name, text in wanted.items():
            if name not in defs:
                raise _bad_filter(f"attribute '{name[:64]}' is not filterable; define it with POST "
                                  "/v1/attribute-definitions {name, type, filterable: true} (or set filterable "
                                  f"with PATCH /v1/attribute-definitions/{name[:64]})")
            try:
                values[name] = attributes.filter_value(defs[name], text or "")
            except ValueError as exc:
                raise _bad_filter(f"attribute.{name} is a {defs[name]}: {exc}") from None
    rows = contact_search.search(
        conn, account_id=principal.account_id, limit=limit, before=paging.decode("before"),
        phone=args.get("phone") or None, region=region, tags=tags, attribute_values=values,
        channel_id=parse_uuid(channel, "channel") if channel else None, channel_kind=channel_kind,
        active_after=_time_arg("active_after"), active_before=_time_arg("active_before"))
    return {"data": rows, "next": paging.encode(rows[-1]["created_at"], rows[-1]["id"]) if len(rows) == limit else None}


_PATCH_FIELDS = ("attributes", "tags_add", "tags_remove", "name", "language")


@bp.patch("/contacts/<contact_id>")
@api(scope="contacts:write")
def patch_contact(conn, principal, contact_id):
    """``{attributes?: {name: value | null}, tags_add?, tags_remove?, name?, language?}``: attributes are
    checked against the account's definitions (422 naming each attribute of the wrong type and the type
    expected; undefined ones are kept as given); a merged contact's id edits its survivor."""
    doc = json_object()
    errors: list[dict] = []
    for name in doc:
        if name not in _PATCH_FIELDS:
            errors.append({"pointer": f"/{name}",
                           "detail": f"unknown field; the fields are {', '.join(_PATCH_FIELDS)}"})
    values = doc.get("attributes") or {}
    if not isinstance(values, dict):
        errors.append({"pointer": "/attributes", "detail": "an object of attribute name → value (null removes one)"})
        values = {}
    tags = {}
    for field in ("tags_add", "tags_remove"):
        if field in doc:
            try:
                tags[field] = contact_tags.clean(doc[field])
            except contact_tags.BadTag as exc:
                errors.append({"pointer": f"/{field}", "detail": str(exc)})
    if "name" in doc and doc["name"] is not None and (not isinstance(doc["name"], str) or len(doc["name"]) > 500):
        errors.append({"pointer": "/name", "detail": "a string of at most 500 characters, or null"})
    if "language" in doc and doc["language"] is not None and (
            not isinstance(doc["language"], str) or not _LANGUAGE.match(doc["language"])):
        errors.append({"pointer": "/language", "detail": "a language code such as 'es' or 'pt_BR', or null"})
    root = _root(conn, principal, contact_id)
    account_id = principal.account_id
    defs = attributes.definitions(conn, account_id=account_id, names=list(values)) if values else {}
    typed = attributes.check(defs, values)
    errors += typed
    if errors:
        wrong = [e for e in typed if "expected_type" in e]
        if wrong:
            named = ", ".join(f"{e['attribute']} (expected {e['expected_type']})" for e in wrong)
            raise Problem(422, "Attribute Type", f"attribute value(s) of the wrong type: {named}; see errors for "
                          "what each accepts (GET /v1/attribute-definitions lists the types)", slug="attribute-type",
                          errors=errors)
        raise invalid(errors)
    if values:
        def change(profile):
            for name, value in values.items():
                if value is None:
                    profile.pop(name, None)
                else:
                    profile[name] = value
        contacts.update_profile(conn, account_id=account_id, contact_id=root["id"], change=change)
    details = {k: doc[k] for k in ("name", "language") if k in doc}
    if details:
        contacts.update_details(conn, account_id=account_id, contact_id=root["id"], **details)
    added = removed = []
    if tags.get("tags_add"):
        added = contact_tags.add(conn, account_id=account_id, contact_id=root["id"], tags=tags["tags_add"])
    if tags.get("tags_remove"):
        removed = contact_tags.remove(conn, account_id=account_id, contact_id=root["id"], tags=tags["tags_remove"])
    # Who changed what: field and attribute names and counts, never values.
    audit(conn, account_id=account_id, actor=principal.actor, action="contact.updated", target_type="contact",
          target_id=root["id"], detail={"attributes": sorted(values), "fields": sorted(details),
                                        "tags_added": len(added), "tags_removed": len(removed)})
    return contacts.get_contact(conn, account_id=account_id, contact_id=root["id"])


@bp.get("/contacts/<contact_id>/timeline")
@api(scope="contacts:read")
def contact_timeline(conn, principal, contact_id):
    """Everything that happened with the contact across channels and threads (gateway/timeline.py):
    ``?limit=&after=&order=asc|desc&kinds=message,note,…``."""
    limit = paging.limit()
    order = request.args.get("order", "asc")
    if order not in ("asc", "desc"):
        raise _bad_filter("order is asc (oldest first, the default) or desc (newest first)")
    kinds = None
    if request.args.get("kinds"):
        kinds = tuple(k for k in request.args["kinds"].split(",") if k)
        unknown = [k for k in kinds if k not in timeline.KINDS]
        if unknown:
            raise _bad_filter(f"kinds is a comma-separated list of {', '.join(timeline.KINDS)}")
    try:
        found = timeline.page(conn, account_id=principal.account_id, contact_id=parse_uuid(contact_id, "contact"),
                              limit=limit, after=request.args.get("after") or None, desc=order == "desc", kinds=kinds)
    except timeline.BadCursor:
        raise Problem(400, "Bad Cursor", "the 'after' cursor is not one this API returned; start again without it",
                      slug="bad-cursor") from None
    if found is None:
        raise Problem(404, "Not Found", f"no contact with id {contact_id} in this account")
    return found


# --- attribute definitions -------------------------------------------------------------------------------

def _definition_view(row: dict) -> dict:
    return {k: row[k] for k in ("name", "type", "label", "filterable", "created_at", "updated_at", "indexed")
            if k in row}


@bp.get("/attribute-definitions")
@api(scope="contacts:read")
def list_attribute_definitions(conn, principal):
    return {"data": [_definition_view(r) for r in attributes.list_definitions(conn, account_id=principal.account_id)],
            "types": list(attributes.TYPES)}


@bp.post("/attribute-definitions")
@api(scope="admin")
def create_attribute_definition(conn, principal):
    """``{name, type: string|number|date|boolean|list, label?, filterable?}`` → 201; a filterable one indexes
    the values contacts already have."""
    doc = json_object()
    errors = attributes.check_definition(doc)
    if errors:
        raise invalid(errors)
    try:
        row = attributes.create_definition(conn, account_id=principal.account_id, name=doc["name"], type_=doc["type"],
                                           label=doc.get("label"), filterable_=doc.get("filterable", False),
                                           actor=principal.actor)
    except attributes.DefinitionExists:
        have = attributes.get_definition(conn, account_id=principal.account_id, name=doc["name"])
        raise Problem(409, "Conflict", f"attribute '{doc['name']}' is already defined as {have['type']}; change its "
                      f"label or filterable with PATCH /v1/attribute-definitions/{doc['name']}, or DELETE it first "
                      "to define it with another type", slug="attribute-exists") from None
    return _definition_view(row), 201


@bp.patch("/attribute-definitions/<name>")
@api(scope="admin")
def update_attribute_definition(conn, principal, name):
    """``{label?, filterable?}``; name and type do not change."""
    doc = json_object()
    errors = attributes.check_definition(doc, partial=True)
    if errors:
        raise invalid(errors)
    row = attributes.update_definition(conn, account_id=principal.account_id, name=name, changes=doc,
                                       actor=principal.actor)
    if row is None:
        raise Problem(404, "Not Found", f"no attribute definition named {name[:64]!r}; create it with POST "
                      "/v1/attribute-definitions")
    return _definition_view(row)


@bp.delete("/attribute-definitions/<name>")
@api(scope="admin")
def delete_attribute_definition(conn, principal, name):
    """The values stay in the contacts' profiles, no longer typed nor filterable."""
    if not attributes.delete_definition(conn, account_id=principal.account_id, name=name, actor=principal.actor):
        raise Problem(404, "Not Found", f"no attribute definition named {name[:64]!r}")
    return "", 204


# --- threads: notes and tags -----------------------------------------------------------------------------

@bp.post("/threads/<thread_id>/notes")
@api(scope="messages:send")
def add_note(conn, principal, thread_id):
    """``{body, author?}``: an internal note, encrypted, never sent to the customer → 201."""
    doc = json_object()
    errors = []
    for name in doc:
        if name not in ("body", "author"):
            errors.append({"pointer": f"/{name}", "detail": "unknown field; the fields are body, author"})
    body = doc.get("body")
    if not isinstance(body, str) or not body.strip() or len(body) > notes.MAX_BODY:
        errors.append({"pointer": "/body", "detail": f"required: the note's text, 1 to {notes.MAX_BODY:,} characters"})
    author = doc.get("author")
    if author is not None and (not isinstance(author, str) or not author.strip() or len(author) > notes.MAX_AUTHOR):
        errors.append({"pointer": "/author", "detail": "who wrote it in your CRM (an agent's external id), 1 to "
                                                       f"{notes.MAX_AUTHOR} characters; leave it out for this API key"})
    if errors:
        raise invalid(errors)
    try:
        note = notes.add(conn, account_id=principal.account_id, thread_id=parse_uuid(thread_id, "thread"),
                         body=body, author=author.strip() if author else None, actor=principal.actor)
    except notes.ThreadNotFound:
        raise Problem(404, "Not Found", f"no thread with id {thread_id} in this account") from None
    return note, 201


@bp.get("/threads/<thread_id>/notes")
@api(scope="messages:read")
def list_notes(conn, principal, thread_id):
    """Oldest first; ``next`` pages on with ``after``."""
    limit = paging.limit()
    rows = notes.list_for(conn, account_id=principal.account_id, thread_id=parse_uuid(thread_id, "thread"),
                          limit=limit, after=paging.decode("after"))
    if rows is None:
        raise Problem(404, "Not Found", f"no thread with id {thread_id} in this account")
    return {"data": rows, "next": paging.encode(rows[-1]["created_at"], rows[-1]["id"]) if len(rows) == limit else None}


@bp.get("/threads/<thread_id>/tags")
@api(scope="messages:read")
def thread_tags(conn, principal, thread_id):
    tid = parse_uuid(thread_id, "thread")
    if not contact_tags.thread_exists(conn, account_id=principal.account_id, thread_id=tid):
        raise Problem(404, "Not Found", f"no thread with id {thread_id} in this account")
    return {"thread_id": tid, "tags": contact_tags.thread_tags_of(conn, account_id=principal.account_id, thread_id=tid)}


@bp.post("/threads/<thread_id>/tags")
@api(scope="messages:send")
def change_thread_tags(conn, principal, thread_id):
    """``{add?: [tag], remove?: [tag]}`` → the thread's tags."""
    doc = json_object()
    errors, lists = [], {}
    for name in doc:
        if name not in ("add", "remove"):
            errors.append({"pointer": f"/{name}", "detail": "unknown field; the fields are add, remove"})
    for name in ("add", "remove"):
        try:
            lists[name] = contact_tags.clean(doc.get(name) or [])
        except contact_tags.BadTag as exc:
            errors.append({"pointer": f"/{name}", "detail": str(exc)})
    if errors:
        raise invalid(errors)
    out = contact_tags.change_thread(conn, account_id=principal.account_id, thread_id=parse_uuid(thread_id, "thread"),
                                     add=lists["add"], remove=lists["remove"])
    if out is None:
        raise Problem(404, "Not Found", f"no thread with id {thread_id} in this account")
    return out
