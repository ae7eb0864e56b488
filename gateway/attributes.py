"""Typed custom attributes on contacts: per-account definitions, value typing, and the blind index that lets
lists filter on them.

Values live in the contact's encrypted profile (``contacts.profile_enc``), whoever writes them. A definition
(``attribute_definitions``: name, type, label, filterable) says what type a value must have when the API
writes it (``PATCH /v1/contacts/{id}``, ``POST /v1/contacts``): a value of the wrong type is refused with a
422 naming the attribute and the type expected. Attributes without a definition are accepted as they come
(JSON values): CRMs push fields the account never declared, and imports and automations write text.

Types and what the API accepts:

- ``string``: a JSON string (up to 2,000 characters).
- ``number``: a JSON number (not a boolean, finite).
- ``date``: a calendar date as ``YYYY-MM-DD``.
- ``boolean``: ``true`` or ``false``.
- ``list``: a JSON array of strings or numbers (up to 100 items); a filter matches any item.

``null`` removes the attribute.

Filtering: for an attribute marked ``filterable`` each contact's value is kept, normalised, as a keyed blind
index (HMAC, the account's blind-index key, as for phone numbers) in ``contact_attribute_index``, one row
per list item. ``GET /v1/contacts?attribute.<name>=<value>`` normalises the asked value the same way and
looks the digest up: an index probe, never a decryption scan. Normalisation makes text from a CSV import
and typed values meet: strings compare case- and space-insensitively, numbers by value ("3.50" is 3.5),
booleans from true/false/yes/no/1/0, dates by their calendar day. Every writer of the profile keeps the
index: ``contacts.update_profile`` and ``contacts.create_contact`` call ``reindex``, the CSV import writes
its rows in the same batch, and marking an attribute filterable indexes the values already stored.
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation

from gateway import keystore, runtime
from gateway.accounts import audit
from gateway.crypto import field_aad

TYPES = ("string", "number", "date", "boolean", "list")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")   # the automation rules' attribute names
RESERVED = frozenset({"tags"})                         # tags have their own table and API
MAX_STRING = 2000
MAX_LIST = 100
MAX_LABEL = 200
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE = frozenset({"true", "yes", "y", "1", "si", "sí", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})

EXPECTED = {
    "string": "a string",
    "number": "a number (e.g. 42 or 3.5)",
    "date": "a date as YYYY-MM-DD (e.g. 1990-05-17)",
    "boolean": "true or false",
    "list": f"a list of strings or numbers (at most {MAX_LIST}), e.g. [\"golf\", \"tenis\"]",
}


class DefinitionExists(ValueError):
    pass


# --- typing ------------------------------------------------------------------------------------------------

def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def type_error(type_: str, value) -> str | None:
    """Why ``value`` is not of ``type_`` (a sentence naming what is expected), or None when it is."""
    ok = True
    if type_ == "string":
        ok = isinstance(value, str) and len(value) <= MAX_STRING
        if isinstance(value, str) and not ok:
            return f"expected a string of at most {MAX_STRING} characters"
    elif type_ == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    elif type_ == "boolean":
        ok = isinstance(value, bool)
    elif type_ == "date":
        ok = isinstance(value, str) and _DATE.match(value) is not None and _is_date(value)
    elif type_ == "list":
        ok = (isinstance(value, list) and len(value) <= MAX_LIST and all(
            (isinstance(v, str) and len(v) <= MAX_STRING) or (isinstance(v, int | float) and not isinstance(v, bool))
            for v in value))
    if ok:
        return None
    return f"expected {EXPECTED[type_]}, got {_json_type(value)}"


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
        return True
    except ValueError:
        return False


def check(definitions: dict, values: dict, pointer: str = "/attributes") -> list[dict]:
    """Every problem with attribute values about to be written, as ``{pointer, detail, attribute,
    expected_type?}``: a bad name, a reserved name, a defined attribute whose value has the wrong type
    (``null`` is always fine: it removes the attribute)."""
    errors = []
    for name, value in values.items():
        where = f"{pointer}/{name}"
        if not isinstance(name, str) or not NAME.fullmatch(name):
            errors.append({"pointer": where, "attribute": name,
                           "detail": "an attribute name starts with a letter or _ and has letters, digits, _ . - "
                                     "(at most 64)"})
        elif name in RESERVED:
            errors.append({"pointer": where, "attribute": name,
                           "detail": "'tags' is not an attribute: use tags_add and tags_remove"})
        elif value is not None and name in definitions:
            why = type_error(definitions[name]["type"], value)
            if why:
                errors.append({"pointer": where, "attribute": name, "expected_type": definitions[name]["type"],
                               "detail": f"attribute '{name}' is defined as {definitions[name]['type']}: {why}"})
    return errors


# --- normalising for the index ----------------------------------------------------------------------------

def _text(value) -> str:
    return " ".join(unicodedata.normalize("NFKC", str(value)).casefold().split())


def _number(value) -> str | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip().replace(",", ".") if isinstance(value, str) else repr(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite():
        return None
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _boolean(value) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = _text(value)
    return "true" if text in _TRUE else "false" if text in _FALSE else None


def _date(value) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()[:10]
    return text if _DATE.match(text) and _is_date(text) else None


def index_values(type_: str, value) -> list[str]:
    """The normalised forms of a stored value for the index (none when it cannot be read as its type)."""
    if value is None:
        return []
    if type_ == "list":
        items = value if isinstance(value, list) else re.split(r"[|;]", value) if isinstance(value, str) else [value]
        return sorted({_text(v) for v in items if not isinstance(v, dict | list) and _text(v)})
    if isinstance(value, dict | list):
        return []
    one = {"string": _text, "number": _number, "boolean": _boolean, "date": _date}[type_](value)
    return [one] if one else []


def filter_value(type_: str, text: str) -> str:
    """A filter's value (query-string text) normalised as ``index_values`` does; ValueError saying what a
    value of this type looks like."""
    if type_ in ("string", "list"):
        found = _text(text)
    else:
        found = {"number": _number, "boolean": _boolean, "date": _date}[type_](text)
    if not found:
        raise ValueError(f"expected {EXPECTED['string' if type_ == 'list' else type_]}")
    return found


def digest(account_id, name: str, normalised: str) -> bytes:
    return runtime.keyring().blind_indexer(account_id)(f"attribute:{name}", normalised)


# --- definitions -----------------------------------------------------------------------------------------

_COLUMNS = "name, type, label, filterable, created_at, updated_at"


def list_definitions(conn, *, account_id) -> list[dict]:
    return conn.execute(f"SELECT {_COLUMNS} FROM attribute_definitions WHERE account_id = %s ORDER BY name",
                        (account_id,)).fetchall()


def definitions(conn, *, account_id, names=None) -> dict:
    """name → definition, for the names given (all when None)."""
    if names is None:
        rows = list_definitions(conn, account_id=account_id)
    else:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM attribute_definitions WHERE account_id = %s AND name = ANY(%s)",
                            (account_id, list(names))).fetchall()
    return {r["name"]: r for r in rows}


def filterable(conn, *, account_id, names=None) -> dict:
    """name → type of the filterable attributes (of those named, when names are given)."""
    if names is not None and not names:
        return {}
    sql = "SELECT name, type FROM attribute_definitions WHERE account_id = %s AND filterable"
    params: tuple = (account_id,)
    if names is not None:
        sql += " AND name = ANY(%s)"
        params += (list(names),)
    return {r["name"]: r["type"] for r in conn.execute(sql, params).fetchall()}


def get_definition(conn, *, account_id, name: str) -> dict | None:
    return conn.execute(f"SELECT {_COLUMNS} FROM attribute_definitions WHERE account_id = %s AND name = %s",
                        (account_id, name)).fetchone()


def check_definition(doc: dict, *, partial: bool = False) -> list[dict]:
    """Every problem in a definition body (``partial``: a PATCH, where name and type cannot change)."""
    errors = []

    def err(pointer, detail):
        errors.append({"pointer": pointer, "detail": detail})

    allowed = {"label", "filterable"} if partial else {"name", "type", "label", "filterable"}
    for key in doc:
        if key not in allowed:
            err(f"/{key}", ("the name and type of a definition do not change: delete it and define it again"
                            if partial and key in ("name", "type") else
                            f"unknown field; the fields are {', '.join(sorted(allowed))}"))
    if not partial:
        name = doc.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            err("/name", "required: starts with a letter or _, then letters, digits, _ . - (at most 64), e.g. "
                         "'birthday' or 'loyalty.tier'")
        elif name in RESERVED:
            err("/name", "'tags' is reserved: contacts have tags of their own (tags_add, tags_remove)")
        if doc.get("type") not in TYPES:
            err("/type", f"required: one of {', '.join(TYPES)}")
    if "label" in doc and doc["label"] is not None and (not isinstance(doc["label"], str)
                                                        or len(doc["label"]) > MAX_LABEL):
        err("/label", f"a string of at most {MAX_LABEL} characters, or null")
    if "filterable" in doc and not isinstance(doc["filterable"], bool):
        err("/filterable", "true or false")
    return errors


def create_definition(conn, *, account_id, name: str, type_: str, label: str | None = None,
                      filterable_: bool = False, actor: str) -> dict:
    """Define an attribute; raises DefinitionExists. A filterable one indexes the values already stored."""
    row = conn.execute(
        "INSERT INTO attribute_definitions (account_id, name, type, label, filterable) VALUES (%s, %s, %s, %s, %s) "
        f"ON CONFLICT (account_id, name) DO NOTHING RETURNING {_COLUMNS}",
        (account_id, name, type_, label, filterable_)).fetchone()
    if row is None:
        raise DefinitionExists(name)
    indexed = backfill(conn, account_id=account_id, name=name, type_=type_) if filterable_ else 0
    audit(conn, account_id=account_id, actor=actor, action="attribute.defined", target_type="attribute",
          target_id=name, detail={"type": type_, "filterable": filterable_, "indexed": indexed})
    return dict(row, indexed=indexed)


def update_definition(conn, *, account_id, name: str, changes: dict, actor: str) -> dict | None:
    """Change a definition's label or filterable flag; None when it is not defined. Turning filtering on
    indexes the stored values; turning it off drops the index."""
    before = get_definition(conn, account_id=account_id, name=name)
    if before is None:
        return None
    label = changes.get("label", before["label"])
    flag = changes.get("filterable", before["filterable"])
    row = conn.execute(
        "UPDATE attribute_definitions SET label = %s, filterable = %s, updated_at = now() "
        f"WHERE account_id = %s AND name = %s RETURNING {_COLUMNS}", (label, flag, account_id, name)).fetchone()
    indexed = 0
    if flag and not before["filterable"]:
        indexed = backfill(conn, account_id=account_id, name=name, type_=before["type"])
    elif before["filterable"] and not flag:
        conn.execute("DELETE FROM contact_attribute_index WHERE account_id = %s AND name = %s", (account_id, name))
    audit(conn, account_id=account_id, actor=actor, action="attribute.updated", target_type="attribute",
          target_id=name, detail={"changed": sorted(changes), "indexed": indexed})
    return dict(row, indexed=indexed)


def delete_definition(conn, *, account_id, name: str, actor: str) -> bool:
    """Forget a definition (its index goes by cascade); the values stay in the profiles, untyped."""
    gone = conn.execute("DELETE FROM attribute_definitions WHERE account_id = %s AND name = %s",
                        (account_id, name)).rowcount
    if gone:
        audit(conn, account_id=account_id, actor=actor, action="attribute.deleted", target_type="attribute",
              target_id=name)
    return bool(gone)


# --- the index -------------------------------------------------------------------------------------------

def index_rows(account_id, types: dict, contact_id, profile: dict) -> list[tuple]:
    """(contact id, name, digest) rows for the filterable attributes (name → type) present in a profile."""
    rows = []
    for name, type_ in types.items():
        for value in index_values(type_, profile.get(name)):
            rows.append((contact_id, name, digest(account_id, name, value)))
    return rows


def write_index(conn, *, account_id, rows: list[tuple], clear: list[tuple] = ()) -> None:
    """Replace index rows: ``clear`` is (contact id, name) pairs whose rows go first; ``rows`` as from
    ``index_rows``."""
    if clear:
        conn.execute(
            "DELETE FROM contact_attribute_index x USING unnest(%s::uuid[], %s::text[]) AS q(c, n) "
            "WHERE x.account_id = %s AND x.contact_id = q.c AND x.name = q.n",
            ([c for c, _ in clear], [n for _, n in clear], account_id))
    if rows:
        conn.execute(
            "INSERT INTO contact_attribute_index (account_id, contact_id, name, value_bidx) "
            "SELECT %s, c, n, b FROM unnest(%s::uuid[], %s::text[], %s::bytea[]) AS q(c, n, b) ON CONFLICT DO NOTHING",
            (account_id, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]))


def reindex(conn, *, account_id, contact_id, profile: dict, names=None) -> None:
    """Bring the contact's index up to date for the filterable attributes among ``names`` (every
    filterable one when None): what ``contacts.update_profile`` calls with the names that changed."""
    types = filterable(conn, account_id=account_id, names=None if names is None else list(names))
    if not types:
        return
    write_index(conn, account_id=account_id, rows=index_rows(account_id, types, contact_id, profile),
                clear=[(contact_id, n) for n in types])


def backfill(conn, *, account_id, name: str, type_: str, batch: int = 1000) -> int:
    """Index one attribute for every contact of the account that has it (done when it becomes filterable):
    profiles are decrypted a batch at a time; returns how many contacts have a value indexed."""
    conn.execute("DELETE FROM contact_attribute_index WHERE account_id = %s AND name = %s", (account_id, name))
    after, found = None, 0
    while True:
        rows = conn.execute(
            "SELECT id, data_key_id, profile_enc FROM contacts WHERE account_id = %s AND profile_enc IS NOT NULL "
            "AND (%s::uuid IS NULL OR id > %s) ORDER BY id LIMIT %s", (account_id, after, after, batch)).fetchall()
        if not rows:
            return found
        after = rows[-1]["id"]
        keys = keystore.load_keys(conn, account_id=account_id, key_ids=[r["data_key_id"] for r in rows])
        out = []
        for r in rows:
            key = keys.get(r["data_key_id"])
            if key is None:
                continue   # shredded: the contact is being erased
            profile = json.loads(key.decrypt_text(r["profile_enc"], field_aad("contacts", "profile", account_id,
                                                                              r["id"])))
            made = index_rows(account_id, {name: type_}, r["id"], profile)
            found += bool(made)
            out += made
        write_index(conn, account_id=account_id, rows=out)


def filter_sql(contact: str, name_param: str, digest_param: str) -> str:
    """A condition: the contact (a SQL expression) has the attribute value whose digest is in the named
    parameter. Served by contact_attribute_index_lookup."""
    return (f"{contact} IN (SELECT x.contact_id FROM contact_attribute_index x WHERE x.account_id = %(a)s "
            f"AND x.name = %({name_param})s AND x.value_bidx = %({digest_param})s)")
