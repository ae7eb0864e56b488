"""Contact import from CSV: ``POST /v1/contacts/import`` and ``gateway contacts import FILE``.

The file is UTF-8 (a BOM is fine), comma- or semicolon-separated (told apart by the header line; tabs
too), and its first line names the columns. Reserved columns, matched case-insensitively:

- ``phone`` (required): normalised to E.164 with phonenumbers; a number without ``+`` (or ``00``) needs
  a default region.
- ``name``, ``language`` (``es``, ``pt_BR``; ``pt-br`` is read as ``pt_BR``), ``tags`` (separated by ``|``
  or ``;``; added to the contact's tags in ``contact_tags``, never removed; 64 characters at most).
- ``consent_marketing`` (yes/true/1/granted or no/false/0/withdrawn; empty records nothing) and its optional
  proof: ``consent_source_text`` (the text agreed to), ``consent_text_version``, ``consent_at`` (when, ISO
  8601; a time without an offset is UTC; not in the future), ``consent_form_id``, ``consent_ip``,
  ``consent_page``. It becomes one event in the consent ledger: channel kind ``all``, purpose
  ``marketing``, source ``import``, the proof encrypted under the contact's key.

Every other column is a contact attribute in the encrypted profile (an empty cell leaves the stored value
alone), kept as the file's text; an attribute the account marked filterable is indexed with the same batch
(gateway/attributes.py normalises the text by the attribute's type, so "3.50" is found as 3.5). The same
values are also kept for the import itself (``contact_import_rows.values_enc``, under the contact's data
key), so a campaign can fill template parameters "from CSV columns" (``column_values``).

Bad lines do not stop the import: a line that is not UTF-8, has more cells than the header, or whose phone,
language, consent or date cannot be read is reported with its number and the reason, and skipped. Only a
file-level problem (no header, no ``phone`` column, a column named twice, too big) rejects the whole file,
as does a file without a single good line; then nothing is written. The same phone twice in the file is
one contact (the later line's non-empty values win), counted as a duplicate, not an error. A phone the
account already knows (its blind index) updates that contact, resolved through merges to the survivor.

Transactions: the good rows are written in batches of ``BATCH``, each committed on its own, so a
million-row file holds no lock for long (an inbound message for an imported phone waits one batch at
most) and needs memory for a batch or two only. The import's row is written with the first batch and says
``running`` until the last batch commits, then ``completed`` with its counts; an import that fails midway is
marked ``failed`` and keeps the batches already committed. Running the same file again is safe: phones are
matched by blind index, so it updates the contacts the first run made instead of making them again, and a
consent event that repeats the standing one is not recorded twice.

Speed (the aim is 20,000 rows/s on two cores, where the database's own work - indexes and foreign-key
checks of five tables - is most of the cost): no round trip per row. Per batch, one query finds the
existing contacts with their keys, profiles and whether this import already has them; the new contacts
are copied (COPY) into a temporary staging table, from which one multi-statement query inserts the data
keys, contacts, identities, import rows and consent events; existing contacts change with one ``UPDATE …
FROM unnest``. That query runs on a helper thread while this one parses the next batch and prepares its
keys and ciphertexts, so the database and Python work at the same time. A phone that another transaction
made known meanwhile fails the batch on the identities' unique key: it is rolled back and written again,
finding that contact.

Personal data: only in ciphertexts. The import's error list quotes bad cells, so it is encrypted under the
account's key; the one audit row of an import holds counts; nothing here logs, and no exception raised
here carries a cell's value.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import phonenumbers
import psycopg.errors

from gateway import attributes, consent, contact_tags, events, keystore, runtime
from gateway.accounts import audit
from gateway.contacts import InvalidAddress, normalise_phone
from gateway.crypto import DataKey, data_key_aad, field_aad
from gateway.db import uuid7

BATCH = 5000
MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 1_000_000
MAX_ERRORS = 1000            # errors (and duplicate lines) listed; the counts say how many there were
MAX_COLUMNS = 250
MAX_CELL = 10_000
MAX_NAME = 500

PROOF_COLUMNS = {"consent_source_text": "text", "consent_text_version": "text_version",
                 "consent_form_id": "form_submission_id", "consent_ip": "ip", "consent_page": "page"}
RESERVED = ("phone", "name", "language", "tags", "consent_marketing", "consent_at", *PROOF_COLUMNS)
_GRANT = frozenset({"yes", "y", "true", "1", "granted", "si", "sí", "opt-in", "opt_in", "optin"})
_WITHDRAW = frozenset({"no", "n", "false", "0", "withdrawn", "opt-out", "opt_out", "optout"})
_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
# Digits and the separators people type; never letters (phonenumbers would read them as a phone keypad's).
_PHONE_CHARS = re.compile(r"^\+?[0-9 ()./\-\u00a0]+$")
_TAG_SPLIT = re.compile(r"[|;]")
_CONSENT_CHANNEL, _CONSENT_PURPOSE = consent.ALL, "marketing"
_json = json.JSONEncoder().encode


class ImportRejected(ValueError):
    """The file as a whole cannot be imported (nothing was written); ``errors`` are [{line, reason}]."""

    def __init__(self, detail: str, errors: list[dict] | None = None, *, status: int = 422,
                 counts: dict | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.status = status
        self.counts = counts or {}


# --- parsing (no database) ---------------------------------------------------------------------------

class Row:
    """One good line, normalised. ``attrs`` are the non-reserved columns' non-empty values: the profile
    attributes and the import's column values at once. The rest is filled in while writing."""
    __slots__ = ("line", "phone", "name", "language", "tags", "attrs", "consent", "bidx", "staged")

    def __init__(self, line, phone, name, language, tags, attrs, consent_):
        self.line, self.phone, self.name, self.language = line, phone, name, language
        self.tags, self.attrs, self.consent = tags, attrs, consent_
        self.bidx = self.staged = None

    def absorb(self, later: "Row") -> None:
        """A later line for the same contact: its non-empty values win; tags add up; the first line stays."""
        if later.name:
            self.name = later.name
        if later.language:
            self.language = later.language
        if later.tags:
            self.tags = sorted(set(self.tags or ()) | set(later.tags))
        self.attrs.update(later.attrs)
        if later.consent is not None:
            self.consent = later.consent
        self.staged = None


class Header:
    def __init__(self, delimiter: str, columns: list[str], index: dict[str, int], extra: list[tuple[int, str]]):
        self.delimiter = delimiter
        self.columns = columns          # as written, stripped
        self.index = index              # reserved name → position
        self.extra = extra              # (position, name) of the attribute columns, in file order
        self.width = len(columns)
        self.proof = [(index[c], field) for c, field in PROOF_COLUMNS.items() if c in index]


def detect_delimiter(line: str) -> str:
    """Comma, semicolon (Excel in Spain and much of Europe) or tab: whichever the header line uses most."""
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def parse_header(cells: list[str], delimiter: str = ",") -> Header:
    names = [c.strip() for c in cells]
    if len(names) > MAX_COLUMNS:
        raise ImportRejected(f"the header has {len(names)} columns; at most {MAX_COLUMNS} are read",
                             [{"line": 1, "reason": f"more than {MAX_COLUMNS} columns"}])
    problems, seen, index, extra = [], {}, {}, []
    for pos, name in enumerate(names):
        if not name:
            continue   # an unnamed column (a trailing delimiter, as Excel leaves): its cells are ignored
        key = name.lower()
        if key in seen:
            problems.append(f"column '{name}' appears twice (columns {seen[key] + 1} and {pos + 1}); rename one")
            continue
        seen[key] = pos
        if key in RESERVED:
            index[key] = pos
        else:
            extra.append((pos, name))
    if "phone" not in index:
        found = ", ".join(n for n in names if n) or "nothing"
        problems.insert(0, f"the header has no 'phone' column (found: {found[:200]}); the first line must name "
                           "the columns, e.g. phone,name,language")
    if problems:
        raise ImportRejected(problems[0], [{"line": 1, "reason": p} for p in problems])
    return Header(delimiter, names, index, extra)


_EXAMPLES: dict[str | None, str] = {None: "+34 612 345 678"}


def _example(region: str | None) -> str:
    if region not in _EXAMPLES:
        number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        _EXAMPLES[region] = (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
                             if number else _EXAMPLES[None])
    return _EXAMPLES[region]


def valid_region(region: str | None) -> str | None:
    """The region code upper-cased, or ValueError naming what is accepted."""
    if region is None or region == "":
        return None
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"'{region[:10]}' is not a region code; use a two-letter country code such as ES, MX or BR")
    return code


_SEPARATORS = str.maketrans("", "", " ()./-\u00a0")
_PREFIXES: dict[int, object] = {}          # country code → its national-prefix pattern, or None
_POSSIBLE: dict[tuple[int, int], bool] = {}


def _quick_e164(text: str) -> str | None:
    """E.164 for "+<country code><number>" without phonenumbers' full parse (a tenth of its time), in the
    case where that parse is known to keep the digits as they are: a known country code, a national number
    of 2-17 digits not starting with 0 (no Italian leading zero) and not starting with what the country's
    metadata strips as a national prefix. Whether the length is possible depends on the country and the
    length only, so it is asked of phonenumbers once per pair. None: let phonenumbers decide (and explain)."""
    digits = text[1:].translate(_SEPARATORS)
    if not (digits.isascii() and digits.isdigit()) or digits[0] == "0":
        return None
    for size in (1, 2, 3):
        cc = int(digits[:size])
        if cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    nsn = digits[size:]
    if not 2 <= len(nsn) <= 17 or nsn[0] == "0":
        return None
    if cc not in _PREFIXES:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
            cc, phonenumbers.region_code_for_country_code(cc))
        pattern = metadata.national_prefix_for_parsing if metadata is not None else None
        _PREFIXES[cc] = False if metadata is None else (re.compile(pattern) if pattern else None)
    prefix = _PREFIXES[cc]
    if prefix is False or (prefix is not None and prefix.match(nsn)):
        return None
    possible = _POSSIBLE.get((cc, len(nsn)))
    if possible is None:
        possible = _POSSIBLE[(cc, len(nsn))] = phonenumbers.is_possible_number(
            phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn)))
    return f"+{cc}{nsn}" if possible else None


def import_phone(raw: str, region: str | None) -> str:
    """E.164 for one phone cell (what ``contacts.normalise_phone`` gives), or InvalidAddress with the reason
    to show, which quotes the cell."""
    shown = raw if len(raw) <= 40 else raw[:37] + "..."
    where = f" for region {region}" if region else ""
    if not _PHONE_CHARS.match(raw):
        raise InvalidAddress(f"phone '{shown}' is not a valid phone number{where}; write it in international "
                             f"form, e.g. {_example(region)}")
    text = raw
    if text.startswith("00") and region is None:
        text = "+" + text[2:]
    if text.startswith("+"):
        quick = _quick_e164(text)
        if quick is not None:
            return quick
    elif region is None:
        raise InvalidAddress(f"phone '{shown}' has no country code; write it in international form, e.g. "
                             f"{_example(None)}, or give a default region (default_region=ES, --region ES)")
    try:
        return normalise_phone(text, region)
    except InvalidAddress:
        raise InvalidAddress(f"phone '{shown}' is not a valid phone number{where}; write it in international "
                             f"form, e.g. {_example(region)}") from None


def _language(text: str) -> str:
    base, sep, rest = text.replace("-", "_").partition("_")
    code = base.lower() + (sep + rest.upper() if sep else "")
    if not _LANGUAGE.match(code):
        raise ValueError(f"language '{text[:20]}' is not a language code such as es or pt_BR")
    return code


def _consent_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"consent_at '{text[:40]}' is not a date-time; use ISO 8601, e.g. 2026-01-10T09:30:00Z") \
            from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    if not consent.not_in_future(when):
        raise ValueError(f"consent_at '{text[:40]}' is in the future; give when the person consented")
    return when


def parse_row(header: Header, cells: list[str], line: int, region: str | None) -> Row:
    """A good line as a Row, or ValueError (InvalidAddress for the phone) with the reason to report."""
    width = header.width
    if len(cells) > width:
        if any(c.strip() for c in cells[width:]):
            raise ValueError(f"has {len(cells)} cells but the header has {width} columns; quote cells that "
                             f"contain '{header.delimiter}'")
    elif len(cells) < width:
        cells = cells + [""] * (width - len(cells))   # a short line: the missing cells are empty
    if max(map(len, cells)) > MAX_CELL:
        raise ValueError(f"a cell is longer than {MAX_CELL:,} characters")
    idx = header.index
    raw_phone = cells[idx["phone"]].strip()
    if not raw_phone:
        raise ValueError("phone is empty")
    phone = import_phone(raw_phone, region)
    pos = idx.get("name")
    name = cells[pos].strip() or None if pos is not None else None
    if name and len(name) > MAX_NAME:
        raise ValueError(f"name is longer than {MAX_NAME} characters")
    pos = idx.get("language")
    language = cells[pos].strip() if pos is not None else ""
    language = _language(language) if language else None
    pos = idx.get("tags")
    tags = cells[pos].strip() if pos is not None else ""
    tags = sorted({t.strip() for t in _TAG_SPLIT.split(tags) if t.strip()}) if tags else None
    if tags and max(map(len, tags)) > contact_tags.MAX_LENGTH:
        raise ValueError(f"a tag is longer than {contact_tags.MAX_LENGTH} characters")
    attrs = {}
    for pos, col in header.extra:
        value = cells[pos].strip()
        if value:
            attrs[col] = value
    given = None
    pos = idx.get("consent_marketing")
    answer = cells[pos].strip() if pos is not None else ""
    if answer:
        low = answer.lower()
        if low in _GRANT:
            action = "granted"
        elif low in _WITHDRAW:
            action = "withdrawn"
        else:
            raise ValueError(f"consent_marketing '{answer[:20]}' is not understood; use yes or no (also "
                             "granted/withdrawn, true/false, 1/0)")
        pos = idx.get("consent_at")
        when = cells[pos].strip() if pos is not None else ""
        proof = {field: value for pos, field in header.proof if (value := cells[pos].strip())}
        given = (action, _consent_time(when) if when else None, proof or None)
    return Row(line, phone, name, language, tags, attrs, given)


class _Lines:
    """The file's lines decoded one by one: a line that is not UTF-8 is set aside with its number (and the
    others still read), instead of failing the whole file. ``start`` is the first line of the record the
    CSV reader is reading."""

    def __init__(self, data: bytes):
        self._it = iter(io.BytesIO(data))   # splits after b"\n"; the CSV reader handles "\r\n"
        self.lineno = 0
        self.start = None
        self.bad: list[tuple[int, str]] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        for raw in self._it:
            self.lineno += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.bad.append((self.lineno, f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at position "
                                              f"{exc.start + 1}); save the file as CSV UTF-8"))
                continue
            if self.lineno == 1 and text.startswith("\ufeff"):
                text = text[1:]
            if self.start is None:
                self.start = self.lineno
            return text
        raise StopIteration


class Parsed:
    """A file's header and its lines, read lazily: ``items()`` yields (line, Row) or (line, reason)."""

    def __init__(self, data: bytes, default_region: str | None = None):
        if b"\n" not in data[:65536] and b"\r" in data[:65536]:
            data = data.replace(b"\r", b"\n")   # classic Mac line ends
        self.region = default_region
        self.total = max(data.count(b"\n") + (not data.endswith(b"\n")) - 1, 0)   # rows, roughly (for progress)
        if self.total > MAX_ROWS:
            raise ImportRejected(f"the file has more than {MAX_ROWS:,} rows; split it and import each part",
                                 status=413)
        self._lines = _Lines(data)
        first = None
        for text in self._lines:
            if text.strip():
                first = text
                break
            self._lines.start = None
        if self._lines.bad and (first is None or self._lines.bad[0][0] < self._lines.start):
            line, reason = self._lines.bad[0]
            raise ImportRejected(f"the header (line {line}) {reason}", [{"line": line, "reason": reason}])
        if first is None:
            raise ImportRejected("the file is empty; the first line must name the columns, e.g. phone,name,language",
                                 [{"line": 1, "reason": "empty file"}])
        delimiter = detect_delimiter(first)
        self._reader = csv.reader(itertools.chain([first], self._lines), delimiter=delimiter)
        self.header = parse_header(next(self._reader), delimiter)
        self._lines.start = None
        self.rows_read = 0

    def items(self):
        lines, reader, header, region = self._lines, self._reader, self.header, self.region
        phone_at = header.index["phone"]
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                line = lines.start or lines.lineno
                lines.start = None
                self.rows_read += 1
                yield line, f"cannot be read as CSV ({str(exc)[:100]})"
                continue
            line = lines.start
            lines.start = None
            while lines.bad:
                self.rows_read += 1
                yield lines.bad.pop(0)
            if not any(cells) or ((len(cells) <= phone_at or not cells[phone_at].strip())
                                  and not any(c.strip() for c in cells)):
                continue   # blank lines, and Excel's rows of empty cells
            self.rows_read += 1
            if self.rows_read > MAX_ROWS:
                yield line, f"beyond the first {MAX_ROWS:,} rows; import the rest in another file"
                continue
            try:
                yield line, parse_row(header, cells, line, region)
            except ValueError as exc:   # InvalidAddress is one
                yield line, str(exc)
        while lines.bad:
            self.rows_read += 1
            yield lines.bad.pop(0)


def parse(data: bytes, default_region: str | None = None) -> Parsed:
    return Parsed(data, default_region)


# --- writing ----------------------------------------------------------------------------------------

_new, _set, _SAFE_UNKNOWN = object.__new__, object.__setattr__, uuid.SafeUUID.unknown


def _ids(n: int) -> list[uuid.UUID]:
    """n time-ordered ids at once: one uuid7 and the n that follow it (its random low bits counted up, the
    top one cleared so they cannot carry into the variant). Ids made later in this process sort after. The
    UUIDs are built without ``UUID(int=)``'s range check (a third of its cost; these ints are in range)."""
    start = uuid7().int & ~(1 << 61)
    out = []
    for value in range(start, start + n):
        made = _new(uuid.UUID)
        _set(made, "int", value)
        _set(made, "is_safe", _SAFE_UNKNOWN)
        out.append(made)
    return out


def _unwrap(conn, account_id, key_id, master_kid, wrapped) -> DataKey:
    if wrapped is None:   # shredded: the key store raises what it always raises
        return keystore.load_key(conn, account_id=account_id, key_id=key_id)
    return DataKey(key_id, runtime.keyring().unwrap(master_kid, bytes(wrapped), data_key_aad(account_id, key_id)))


def _values_aad(account_id, import_id, contact_id) -> bytes:
    # Bound to the account, the contact and the import: a row's values copied to another import do not decrypt.
    return field_aad("contact_import_rows", "values", account_id, contact_id) + import_id.bytes


# Per phone of the batch, its contact (through merges), key and row of this import, found from the identity's
# unique (account, kind, blind index) key and locked. Each phone is its own LATERAL subquery (LIMIT 1 keeps the
# planner from flattening it; the key is unique anyway), so the plan stays a handful of index probes per phone
# even while the statistics still think the account small (right after a big import), when a join would
# rather read all of the account's contacts for every batch.
_FIND = (
    "SELECT q.bidx, f.* FROM unnest(%b::bytea[]) AS q(bidx) CROSS JOIN LATERAL ("
    "SELECT r.id, r.data_key_id, k.master_kid, k.wrapped, r.profile_enc, x.line AS import_line, x.values_enc "
    "FROM contact_identities i JOIN contacts c ON c.account_id = i.account_id AND c.id = i.contact_id "
    "JOIN contacts r ON r.account_id = c.account_id AND r.id = coalesce(c.merged_into, c.id) "
    "JOIN data_keys k ON k.account_id = r.account_id AND k.id = r.data_key_id "
    "LEFT JOIN contact_import_rows x ON x.account_id = r.account_id AND x.import_id = %s AND x.contact_id = r.id "
    "WHERE i.account_id = %s AND i.kind = 'phone' AND i.address_bidx = q.bidx LIMIT 1 FOR UPDATE OF r) f")

# The standing marketing consent (channel kind 'all') of each contact, the events of contacts merged into it
# included: per contact, the latest of its own (the consent_events_current index) and the latest of its merged
# contacts' (usually none), each a LATERAL probe for the same reason.
_LATEST = ("SELECT e.action, e.occurred_at, e.recorded_at, e.id FROM consent_events e WHERE e.account_id = %(a)s "
           "AND e.contact_id = {contact} AND e.channel_kind = %(k)s AND e.purpose = %(p)s "
           "ORDER BY e.occurred_at DESC, e.recorded_at DESC, e.id DESC LIMIT 1")
_STANDING = (
    "SELECT q.id, s.action, s.occurred_at FROM unnest(%(ids)s::uuid[]) AS q(id) CROSS JOIN LATERAL ("
    f"SELECT * FROM (({_LATEST.format(contact='q.id')}) UNION ALL (SELECT l.* FROM contacts m CROSS JOIN LATERAL "
    f"({_LATEST.format(contact='m.id')}) l WHERE m.account_id = %(a)s AND m.merged_into = q.id)) u "
    "ORDER BY u.occurred_at DESC, u.recorded_at DESC, u.id DESC LIMIT 1) s")

_UPDATE = (
    "UPDATE contacts c SET name_enc = coalesce(v.name_enc, c.name_enc), profile_enc = coalesce(v.profile_enc, "
    "c.profile_enc), language = coalesce(v.language, c.language), updated_at = now() "
    "FROM unnest(%b::uuid[], %b::bytea[], %b::bytea[], %b::text[]) AS v(id, name_enc, profile_enc, language) "
    "WHERE c.account_id = %s AND c.id = v.id")

_UPSERT_ROWS = (
    "INSERT INTO contact_import_rows (account_id, import_id, contact_id, line, values_enc) "
    "SELECT %s, %s, v.contact_id, v.line, v.values_enc "
    "FROM unnest(%b::uuid[], %b::int4[], %b::bytea[]) AS v(contact_id, line, values_enc) "
    "ON CONFLICT (account_id, import_id, contact_id) DO UPDATE SET values_enc = EXCLUDED.values_enc")

# One row per new contact of a batch, emptied at each commit; temporary, so neither logged nor shared.
_STAGE = [("key_id", "uuid"), ("master_kid", "text"), ("wrapped", "bytea"), ("contact_id", "uuid"),
          ("name_enc", "bytea"), ("profile_enc", "bytea"), ("language", "text"), ("identity_id", "uuid"),
          ("bidx", "bytea"), ("address_enc", "bytea"), ("line", "int4"), ("values_enc", "bytea"),
          ("event_id", "uuid"), ("action", "text"), ("proof_enc", "bytea"), ("occurred_at", "timestamptz"),
          ("created_event_id", "uuid"), ("consent_changed_id", "uuid")]
_STAGE_TABLE = ("CREATE TEMP TABLE IF NOT EXISTS contact_import_stage ("
                + ", ".join(f"{name} {kind}" for name, kind in _STAGE) + ") ON COMMIT DELETE ROWS")
_STAGE_COPY = f"COPY contact_import_stage ({', '.join(n for n, _ in _STAGE)}) FROM STDIN (FORMAT BINARY)"


# The ledger's action as consent.changed names it (consent.EVENT_ACTIONS), in SQL.
_EVENT_ACTION = ("CASE action " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in consent.EVENT_ACTIONS.items())
                 + " END")


def _insert_staged(account_id: uuid.UUID, import_id: uuid.UUID) -> str:
    """The statements that move a staged batch into place, as one simple query (one round trip). The two
    ids are UUID objects, so their text is safe to inline."""
    a, i = f"'{account_id}'::uuid", f"'{import_id}'::uuid"
    return "; ".join([
        "INSERT INTO data_keys (account_id, id, purpose, master_kid, wrapped) "
        f"SELECT {a}, key_id, 'contact', master_kid, wrapped FROM contact_import_stage",
        "INSERT INTO contacts (account_id, id, data_key_id, name_enc, profile_enc, language) "
        f"SELECT {a}, contact_id, key_id, name_enc, profile_enc, language FROM contact_import_stage",
        # In blind-index order, like the look-up: two imports sharing phones take their locks in one order.
        "INSERT INTO contact_identities (account_id, id, contact_id, kind, address_bidx, address_enc) "
        f"SELECT {a}, identity_id, contact_id, 'phone', bidx, address_enc FROM contact_import_stage ORDER BY bidx",
        "INSERT INTO contact_import_rows (account_id, import_id, contact_id, line, values_enc) "
        f"SELECT {a}, {i}, contact_id, line, values_enc FROM contact_import_stage",
        "INSERT INTO consent_events (account_id, id, contact_id, channel_kind, purpose, action, source, proof_enc, "
        f"occurred_at) SELECT {a}, event_id, contact_id, '{_CONSENT_CHANNEL}', '{_CONSENT_PURPOSE}', action, "
        "'import', proof_enc, occurred_at FROM contact_import_stage WHERE event_id IS NOT NULL",
        # Their events (gateway/event_types.py), built here from the staged rows: a batch of thousands costs no
        # parameters and no JSON made in Python. The same data as consent.changed_data and create_contact's.
        "INSERT INTO events (account_id, id, type, subject_id, data) "
        f"SELECT {a}, created_event_id, 'contact.created', contact_id, jsonb_build_object('contact_id', contact_id, "
        "'source', 'import', 'channel_kind', NULL) FROM contact_import_stage ORDER BY line",
        "INSERT INTO events (account_id, id, type, subject_id, data) "
        f"SELECT {a}, consent_changed_id, 'consent.changed', contact_id, jsonb_build_object('contact_id', "
        f"contact_id, 'channel_kind', '{_CONSENT_CHANNEL}', 'purpose', '{_CONSENT_PURPOSE}', 'action', "
        f"{_EVENT_ACTION}, 'source', 'import') FROM contact_import_stage WHERE event_id IS NOT NULL ORDER BY line"])


class _Batch:
    """A batch on its way: staged and sent, its counts applied once it commits."""

    def __init__(self, rows: list[Row], rows_read: int):
        self.rows, self.rows_read = rows, rows_read
        self.future = None
        self.new = 0
        self.counts = {"created": 0, "updated": 0, "duplicates": 0}
        self.consents = {"granted": 0, "withdrawn": 0}
        self.duplicate_lines: list[dict] = []
        self.tag_pairs: list[tuple] = []      # (contact id, tag), written after the batch's contacts
        self.index_rows: list[tuple] = []     # filterable attributes' blind indexes (gateway/attributes.py)
        self.index_clear: list[tuple] = []    # (contact id, name) whose old index rows go first
        self.events: list[tuple] = []         # consent.changed of existing contacts, written with the batch

    def duplicate(self, line: int, same_as: int) -> None:
        self.counts["duplicates"] += 1
        self.duplicate_lines.append({"line": line, "same_as_line": same_as})


class _Import:
    """One run: counts, the reported lines, and the batches written so far."""

    def __init__(self, conn, *, account_id, parsed: Parsed, filename, actor: str):
        self.conn, self.parsed, self.filename, self.actor = conn, parsed, filename, actor
        self.account_id = account_id if isinstance(account_id, uuid.UUID) else uuid.UUID(str(account_id))
        self.id = uuid7()
        self.started = False   # the contact_imports row is committed
        self.ring = runtime.keyring()
        self.index = self.ring.blind_indexer(self.account_id)
        self.counts = {"rows": 0, "imported": 0, "created": 0, "updated": 0, "duplicates": 0, "skipped": 0}
        self.consents = {"granted": 0, "withdrawn": 0}
        self.errors: list[dict] = []
        self.duplicate_lines: list[dict] = []
        self.insert_staged = _insert_staged(self.account_id, self.id)
        # Filterable attributes (name → type): their values are indexed as the batches are written.
        self.filterable = attributes.filterable(conn, account_id=self.account_id)

    # -- reading
    def batches(self, size: int):
        """Lists of Rows, one per distinct phone within the batch (a later line folds into the first)."""
        pending: dict[str, Row] = {}
        for line, item in self.parsed.items():
            if isinstance(item, str):
                self.counts["skipped"] += 1
                if len(self.errors) < MAX_ERRORS:
                    self.errors.append({"line": line, "reason": item})
                continue
            self.counts["imported"] += 1
            first = pending.get(item.phone)
            if first is not None:
                first.absorb(item)
                self._duplicate(line, first.line)
                continue
            pending[item.phone] = item
            if len(pending) >= size:
                yield list(pending.values())
                pending = {}
        if pending:
            yield list(pending.values())

    def _duplicate(self, line: int, same_as: int) -> None:
        self.counts["duplicates"] += 1
        if len(self.duplicate_lines) < MAX_ERRORS:
            self.duplicate_lines.append({"line": line, "same_as_line": same_as})

    # -- preparing (no database: runs while the previous batch is being written)
    def prepare(self, rows: list[Row]) -> None:
        """Each row as a new contact: its data key, ids, ciphertexts and consent event, ready to stage."""
        account_id, import_id, ring, index = self.account_id, self.id, self.ring, self.index
        todo = [r for r in rows if r.staged is None]
        n = len(todo)
        ids = iter(_ids(4 * n + 2 * sum(1 for r in todo if r.consent is not None)))
        material = os.urandom(32 * n)
        now = datetime.now(timezone.utc)
        for i, row in enumerate(todo):
            key_id, cid, iid = next(ids), next(ids), next(ids)
            secret = material[32 * i:32 * i + 32]
            kid, wrapped = ring.wrap(secret, data_key_aad(account_id, key_id))
            key = DataKey(key_id, secret)
            if row.bidx is None:
                row.bidx = index("phone", row.phone)
            values = _json(row.attrs) if row.attrs else None
            profile = values   # tags go to contact_tags (written with the batch), not into the profile
            event_id = action = proof_enc = occurred_at = changed_id = None
            if row.consent is not None:
                action, occurred_at, proof = row.consent
                event_id, changed_id, occurred_at = next(ids), next(ids), occurred_at or now
                if proof:
                    proof_enc = key.encrypt(json.dumps(proof, sort_keys=True),
                                            field_aad("consent_events", "proof", account_id, event_id))
            row.staged = (
                key_id, kid, wrapped, cid,
                key.encrypt(row.name, field_aad("contacts", "name", account_id, cid)) if row.name else None,
                key.encrypt(profile, field_aad("contacts", "profile", account_id, cid)) if profile else None,
                row.language, iid, row.bidx,
                key.encrypt(row.phone, field_aad("contact_identities", "address", account_id, iid)),
                row.line,
                key.encrypt(values, _values_aad(account_id, import_id, cid)) if values else None,
                event_id, action, proof_enc, occurred_at, next(ids), changed_id)

    # -- writing
    def stage(self, batch: _Batch) -> None:
        """In the batch's transaction: find the existing contacts (and update them), stage the new ones."""
        conn, account_id = self.conn, self.account_id
        # In the batch's own transaction (a pooler may hand each transaction another server connection).
        conn.execute(_STAGE_TABLE)
        if not self.started:
            conn.execute(
                "INSERT INTO contact_imports (account_id, id, filename_enc, default_region, columns, actor) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (account_id, self.id, self._encrypt_for_account(self.filename, "filename"), self.parsed.region,
                 [name for _, name in self.parsed.header.extra], self.actor))
        index = self.index
        for row in batch.rows:
            if row.bidx is None:
                row.bidx = index("phone", row.phone)
        # Sorted, so that two imports touching the same contacts lock them in the same order.
        found = conn.execute(_FIND, (sorted(r.bidx for r in batch.rows), self.id, account_id)).fetchall()
        by_bidx = {f["bidx"]: f for f in found}
        new, existing = [], {}
        for row in batch.rows:
            hit = by_bidx.get(row.bidx)
            if hit is None:
                new.append(row)
            else:
                existing.setdefault(hit["id"], (hit, []))[1].append(row)
        if existing:
            self._update(batch, existing)
        batch.new = len(new)
        if new:
            self.prepare(new)   # a no-op for the rows prepared ahead
            with conn.cursor().copy(_STAGE_COPY) as cp:
                cp.set_types([kind for _, kind in _STAGE])
                for row in new:
                    cp.write_row(row.staged)
            batch.counts["created"] = len(new)
            for row in new:
                if row.consent is not None:
                    batch.consents[row.consent[0]] += 1
                cid = row.staged[3]
                if row.tags:
                    batch.tag_pairs += [(cid, t) for t in row.tags]
                if self.filterable and row.attrs:
                    batch.index_rows += attributes.index_rows(account_id, self.filterable, cid, row.attrs)

    def insert(self, batch: _Batch) -> None:
        """The heavy part, on the helper thread: move the staged rows into place and commit."""
        if batch.new:
            self.conn.execute(self.insert_staged)
        events.emit_many(self.conn, self.account_id, batch.events)
        contact_tags.add_many(self.conn, account_id=self.account_id, pairs=batch.tag_pairs)
        attributes.write_index(self.conn, account_id=self.account_id, rows=batch.index_rows,
                               clear=batch.index_clear)
        self.conn.commit()

    def _update(self, batch: _Batch, existing: dict) -> None:
        conn, account_id, import_id = self.conn, self.account_id, self.id
        ids, names, profiles, languages = [], [], [], []
        row_ids, row_lines, row_values = [], [], []
        consents = []
        for cid, (hit, rows) in existing.items():
            row = rows[0]
            for later in rows[1:]:   # two phones of one contact (merged contacts)
                row.absorb(later)
                batch.duplicate(later.line, hit["import_line"] or row.line)
            if hit["import_line"] is not None:
                batch.duplicate(row.line, hit["import_line"])   # an earlier batch of this file had it
            else:
                batch.counts["updated"] += 1
            key = _unwrap(conn, account_id, hit["data_key_id"], hit["master_kid"], hit["wrapped"])
            profile_enc = None
            if row.tags:
                batch.tag_pairs += [(cid, t) for t in row.tags]
            if row.attrs:
                aad = field_aad("contacts", "profile", account_id, cid)
                profile = json.loads(key.decrypt_text(hit["profile_enc"], aad)) if hit["profile_enc"] else {}
                before = json.dumps(profile, sort_keys=True)
                profile.update(row.attrs)
                # Tags a profile kept from before migration 0019 move to contact_tags with this rewrite.
                batch.tag_pairs += [(cid, t) for t in contact_tags.legacy(profile)]
                profile.pop("tags", None)
                if json.dumps(profile, sort_keys=True) != before:
                    profile_enc = key.encrypt(json.dumps(profile), aad)
                indexed = {n: t for n, t in self.filterable.items() if n in row.attrs}
                if indexed:
                    batch.index_clear += [(cid, n) for n in indexed]
                    batch.index_rows += attributes.index_rows(account_id, indexed, cid, row.attrs)
            if row.name or row.language or profile_enc is not None:
                ids.append(cid)
                names.append(key.encrypt(row.name, field_aad("contacts", "name", account_id, cid))
                             if row.name else None)
                profiles.append(profile_enc)
                languages.append(row.language)
            values = dict(row.attrs)
            if hit["values_enc"] is not None:
                values = {**json.loads(key.decrypt_text(hit["values_enc"], _values_aad(account_id, import_id, cid))),
                          **values}
            row_ids.append(cid)
            row_lines.append(hit["import_line"] or row.line)
            row_values.append(key.encrypt(json.dumps(values), _values_aad(account_id, import_id, cid))
                              if values else None)
            if row.consent is not None:
                consents.append((cid, key, row.consent))
        if ids:
            conn.execute(_UPDATE, (ids, names, profiles, languages, account_id))
        conn.execute(_UPSERT_ROWS, (account_id, import_id, row_ids, row_lines, row_values))
        if consents:
            self._record_consents(batch, consents)

    def _record_consents(self, batch: _Batch, consents: list) -> None:
        """For existing contacts: one event per line that says so, unless it repeats what stands (a re-import)."""
        conn, account_id = self.conn, self.account_id
        known = [cid for cid, _, _ in consents]
        standing = {r["id"]: r for r in conn.execute(
            _STANDING, {"ids": known, "a": account_id, "k": _CONSENT_CHANNEL, "p": _CONSENT_PURPOSE}).fetchall()}
        now = datetime.now(timezone.utc)
        recorded = []
        for cid, key, (action, occurred_at, proof) in consents:
            stands = standing.get(cid)
            if stands is not None and stands["action"] == action and occurred_at in (None, stands["occurred_at"]):
                continue
            event_id = uuid7()
            proof_enc = None
            if proof:
                proof_enc = key.encrypt(json.dumps(proof, sort_keys=True),
                                        field_aad("consent_events", "proof", account_id, event_id))
            recorded.append((account_id, event_id, cid, _CONSENT_CHANNEL, _CONSENT_PURPOSE, action, "import",
                             proof_enc, occurred_at or now))
            batch.consents[action] += 1
            batch.events.append(("consent.changed", consent.changed_data(
                cid, _CONSENT_CHANNEL, _CONSENT_PURPOSE, action, "import"), cid))
        if recorded:
            with conn.cursor().copy("COPY consent_events (account_id, id, contact_id, channel_kind, purpose, action, "
                                    "source, proof_enc, occurred_at) FROM STDIN") as cp:
                for item in recorded:
                    cp.write_row(item)

    def committed(self, batch: _Batch) -> None:
        self.started = True
        for name, n in batch.counts.items():
            self.counts[name] += n
        for name, n in batch.consents.items():
            self.consents[name] += n
        self.duplicate_lines.extend(batch.duplicate_lines[:max(MAX_ERRORS - len(self.duplicate_lines), 0)])

    def _encrypt_for_account(self, text: str | None, column: str) -> bytes | None:
        if not text:
            return None
        key = keystore.account_key(self.conn, account_id=self.account_id)
        return key.encrypt(text, field_aad("contact_imports", column, self.account_id, self.id))

    def finish(self) -> dict:
        conn = self.conn
        self.counts["rows"] = self.parsed.rows_read
        errors = sorted(self.errors, key=lambda e: e["line"])
        report = {"errors": errors, "duplicate_lines": sorted(self.duplicate_lines, key=lambda d: d["line"])}
        conn.execute(
            "UPDATE contact_imports SET status = 'completed', rows = %s, imported = %s, created = %s, updated = %s, "
            "duplicates = %s, skipped = %s, errors_enc = %s, completed_at = now() WHERE account_id = %s AND id = %s",
            (*(self.counts[k] for k in ("rows", "imported", "created", "updated", "duplicates", "skipped")),
             self._encrypt_for_account(json.dumps(report), "errors"), self.account_id, self.id))
        audit(conn, account_id=self.account_id, actor=self.actor, action="contacts.imported",
              target_type="contact_import", target_id=self.id,
              detail={**self.counts, "consent_events": self.consents})
        conn.commit()
        return get_import(conn, account_id=self.account_id, import_id=self.id)

    def fail(self) -> None:
        self.conn.rollback()
        if self.started:
            self.conn.execute("UPDATE contact_imports SET status = 'failed', rows = %s, completed_at = now() "
                              "WHERE account_id = %s AND id = %s", (self.parsed.rows_read, self.account_id, self.id))
            self.conn.commit()


def run(conn, *, account_id, data: bytes, default_region: str | None = None, filename: str | None = None,
        actor: str = "system", progress=None, batch_size: int = BATCH) -> dict:
    """Import a CSV file's bytes into the account; returns the import's summary (``get_import``).

    Commits as it goes (see the module's docstring): call it on a connection with nothing else pending.
    Raises ImportRejected, with nothing written, for a file that cannot be imported at all or has no good
    line; ValueError for an unknown region. ``progress(rows_done, rows_total)`` is called after each batch
    (the total is the file's line count, a close estimate)."""
    if len(data) > MAX_BYTES:
        raise ImportRejected(f"the file is larger than {MAX_BYTES // 1_048_576} MB; split it and import each part",
                             status=413)
    region = valid_region(default_region)
    parsed = parse(data, region)
    job = _Import(conn, account_id=account_id, parsed=parsed, filename=filename, actor=actor)
    helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="contact-import")
    in_flight: _Batch | None = None

    def settle(batch: _Batch) -> None:
        """Wait for the batch's insert; when a phone became known meanwhile (or another import of the same
        phones chose this one as a deadlock's victim), write the batch again."""
        for attempt in range(3):
            try:
                batch.future.result() if batch.future is not None else job.insert(batch)
                break
            except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
                conn.rollback()
                if attempt == 2:
                    raise
                fresh = _Batch(batch.rows, batch.rows_read)
                job.stage(fresh)
                batch.__dict__.update(fresh.__dict__)
                batch.future = None
        job.committed(batch)
        if progress is not None:
            progress(batch.rows_read, max(parsed.total, batch.rows_read))

    try:
        ahead = True   # prepare each batch as new contacts while the previous one is written
        for rows in job.batches(batch_size):
            if ahead:
                job.prepare(rows)
            batch = _Batch(rows, parsed.rows_read)
            if in_flight is not None:
                settle(in_flight)
                in_flight = None
            job.stage(batch)
            batch.future = helper.submit(job.insert, batch)
            in_flight = batch
            ahead = batch.new * 2 >= len(rows)   # a re-import finds most rows: preparing them ahead is waste
        if in_flight is not None:
            settle(in_flight)
            in_flight = None
        if not job.started:
            conn.rollback()
            job.counts["rows"] = parsed.rows_read
            errors = sorted(job.errors, key=lambda e: e["line"])
            raise ImportRejected(
                "the file has no rows" if not parsed.rows_read else
                f"none of the {parsed.rows_read:,} row(s) could be imported; see errors for each line and why",
                errors, counts=dict(job.counts))
        if progress is not None:
            progress(parsed.rows_read, parsed.rows_read)
        return job.finish()
    except ImportRejected:
        raise
    except BaseException:
        if in_flight is not None and in_flight.future is not None:
            try:
                in_flight.future.result()   # the connection is the helper's until it is done with it
                job.started = True          # (and if that batch committed, so did the import's row)
            except BaseException:
                pass
        job.fail()
        raise
    finally:
        helper.shutdown(wait=True)


# --- reading back -----------------------------------------------------------------------------------

_SUMMARY = ("id, status, filename_enc, default_region, columns, rows, imported, created, updated, duplicates, "
            "skipped, errors_enc, created_at, completed_at")


def _summary(conn, account_id, row: dict, *, detail: bool) -> dict:
    out = {"import_id": row["id"], "status": row["status"], "filename": None,
           "default_region": row["default_region"], "columns": list(row["columns"])}
    out.update({k: row[k] for k in ("rows", "imported", "created", "updated", "duplicates", "skipped")})
    key = None
    if row["filename_enc"] is not None or (detail and row["errors_enc"] is not None):
        key = keystore.account_key(conn, account_id=account_id)
    if row["filename_enc"] is not None:
        out["filename"] = key.decrypt_text(row["filename_enc"], field_aad("contact_imports", "filename",
                                                                          account_id, row["id"]))
    if detail:
        report = {"errors": [], "duplicate_lines": []}
        if row["errors_enc"] is not None:
            report = json.loads(key.decrypt_text(row["errors_enc"], field_aad("contact_imports", "errors",
                                                                              account_id, row["id"])))
        out["errors"] = report["errors"]
        out["errors_truncated"] = row["skipped"] > len(report["errors"])
        out["duplicate_lines"] = report["duplicate_lines"]
    out["created_at"], out["completed_at"] = row["created_at"], row["completed_at"]
    return out


def get_import(conn, *, account_id, import_id) -> dict | None:
    """The import's summary: counts, the lines reported (up to MAX_ERRORS) and the duplicate lines."""
    row = conn.execute(f"SELECT {_SUMMARY} FROM contact_imports WHERE account_id = %s AND id = %s",
                       (account_id, import_id)).fetchone()
    return None if row is None else _summary(conn, account_id, row, detail=True)


def list_imports(conn, *, account_id, limit: int = 50, before=None) -> list[dict]:
    """Newest first, counts only; ``before`` is the (created_at, id) of the previous page's last one."""
    rows = conn.execute(
        f"SELECT {_SUMMARY} FROM contact_imports WHERE account_id = %s "
        "AND (%s::timestamptz IS NULL OR (created_at, id) < (%s, %s)) ORDER BY created_at DESC, id DESC LIMIT %s",
        (account_id, *((None, None, None) if before is None else (before[0], before[0], before[1])), limit)).fetchall()
    return [_summary(conn, account_id, r, detail=False) for r in rows]


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def contact_ids(conn, *, account_id, import_id) -> list:
    """The import's contacts (survivors of merges since), in the order of the file."""
    return [r["id"] for r in conn.execute(
        "SELECT coalesce(c.merged_into, c.id) AS id FROM contact_import_rows r JOIN contacts c "
        "ON c.account_id = r.account_id AND c.id = r.contact_id WHERE r.account_id = %s AND r.import_id = %s "
        "GROUP BY 1 ORDER BY min(r.line)", (account_id, import_id)).fetchall()]


def column_values(conn, *, account_id, import_id, contact_ids) -> dict:
    """{contact id: {column: value}} of the import's non-reserved columns for these contacts (as the file
    gave them; an empty cell is absent). A contact merged into another since answers for its survivor (the
    survivor's own line winning). Contacts the import did not reach are absent."""
    wanted = [_uuid(c) for c in contact_ids]
    if not wanted:
        return {}
    import_id = _uuid(import_id)
    merged = conn.execute("SELECT id, merged_into FROM contacts WHERE account_id = %s "
                          "AND merged_into = ANY(%b::uuid[])", (account_id, wanted)).fetchall()
    root = {c: c for c in wanted}
    root.update({m["id"]: m["merged_into"] for m in merged})
    rows = conn.execute(
        "SELECT x.contact_id, x.values_enc, c.data_key_id, k.master_kid, k.wrapped FROM contact_import_rows x "
        "JOIN contacts c ON c.account_id = x.account_id AND c.id = x.contact_id "
        "JOIN data_keys k ON k.account_id = c.account_id AND k.id = c.data_key_id "
        "WHERE x.account_id = %s AND x.import_id = %s AND x.contact_id = ANY(%b::uuid[])",
        (account_id, import_id, list(root))).fetchall()
    out: dict = {}
    # Merged contacts first, so the survivor's own values are applied last and win.
    for r in sorted(rows, key=lambda r: root[r["contact_id"]] == r["contact_id"]):
        values = {}
        if r["values_enc"] is not None:
            key = _unwrap(conn, account_id, r["data_key_id"], r["master_kid"], r["wrapped"])
            values = json.loads(key.decrypt_text(r["values_enc"],
                                                 _values_aad(account_id, import_id, r["contact_id"])))
        out.setdefault(root[r["contact_id"]], {}).update(values)
    return out


def rows_of(conn, *, account_id, contact_ids) -> list[dict]:
    """Every import line of these contacts, decrypted (a data-subject export): import id, line, the values."""
    rows = conn.execute(
        "SELECT x.import_id, x.contact_id, x.line, x.values_enc, c.data_key_id, k.master_kid, k.wrapped, i.created_at "
        "FROM contact_import_rows x JOIN contacts c ON c.account_id = x.account_id AND c.id = x.contact_id "
        "JOIN data_keys k ON k.account_id = c.account_id AND k.id = c.data_key_id "
        "LEFT JOIN contact_imports i ON i.account_id = x.account_id AND i.id = x.import_id "
        "WHERE x.account_id = %s AND x.contact_id = ANY(%b::uuid[]) ORDER BY i.created_at, x.line",
        (account_id, [_uuid(c) for c in contact_ids])).fetchall()
    out = []
    for r in rows:
        values = {}
        if r["values_enc"] is not None:
            key = _unwrap(conn, account_id, r["data_key_id"], r["master_kid"], r["wrapped"])
            values = json.loads(key.decrypt_text(r["values_enc"], _values_aad(account_id, r["import_id"],
                                                                              r["contact_id"])))
        out.append({"import_id": r["import_id"], "contact_id": r["contact_id"], "line": r["line"],
                    "imported_at": r["created_at"], "values": values})
    return out
