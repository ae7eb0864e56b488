"""A campaign's definition: its shape, validation (every problem with a JSON pointer) and parameter mapping.

``POST /v1/campaigns`` body::

    {"name": "renewal-november", "purpose": "marketing" | "utility" | "authentication", "channel_id": "…",
     "message": {"template": {"name": "renewal", "language": "es" (optional: each recipient's own),
                              "parameters": [{"attribute": "first_name", "default": "cliente"},
                                             {"column": "amount"}, "a constant"]}}
                | {"text": "Hola {first_name}, …"}                     (SMS only: no 24-hour window there)
     "audience": {"import_id": "…"} | {"contact_ids": ["…"]}
                 | {"segment": {"tags": [...], "attributes": {"vip": "yes"}, "channel_kind": "whatsapp",
                                "last_inbound_after": "2026-01-01", "last_inbound_before": "…",
                                "consent": "marketing"}},
     "start_at": "2026-11-25T09:00:00+01:00" (optional: when started),
     "quiet_hours": {"from": "21:00", "to": "09:00", "timezone": "Europe/Madrid" (when the recipient's is unknown)},
     "pace_per_s": 20 (optional: at most 90% of the channel's rate),
     "canary": {"size": 50, "max_failure_rate": 0.2, "max_opt_out_rate": 0.05, "max_blocked_rate": 0.1},
     "window": 200}

Parameter values have the send API's shape (a list for a positional body, an object of names, or
``{"header", "body", "buttons"}``) where any value may be a mapping: ``{"attribute": name}`` (the contact's
profile), ``{"column": name}`` (the import's CSV column; audience ``import_id``), ``{"contact": "name"}`` (the
contact's name) or ``{"constant": value}``, each with an optional ``"default"`` for a recipient without one.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PURPOSES = ("marketing", "utility", "authentication")
# The consent purpose the send gate checks for each campaign purpose.
GATE_PURPOSE = {"marketing": "marketing", "utility": "transactional", "authentication": "transactional"}
SOURCES = ("attribute", "column", "contact", "constant")
CONTACT_FIELDS = ("name", "language")
CANARY_DEFAULTS = {"size": 50, "max_failure_rate": 0.2, "max_opt_out_rate": 0.05, "max_blocked_rate": 0.1}
DEFAULT_WINDOW = 200
MAX_CONTACT_IDS = 10_000
MAX_TEXT = 1600
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]{0,63})\}")
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
FIELDS = ("name", "purpose", "channel_id", "message", "audience", "start_at", "quiet_hours", "pace_per_s", "canary",
          "window")


class Missing(Exception):
    """A recipient has no value for a mapped parameter and the mapping gives no default."""

    def __init__(self, source: str, name: str):
        super().__init__(f"{source} {name!r}")
        self.source, self.name = source, name


def is_mapping(value) -> bool:
    return isinstance(value, dict) and len(set(value) & set(SOURCES)) == 1 and set(value) <= {*SOURCES, "default"}


def walk(parameters, leaf):
    """The parameters with every mapping replaced by ``leaf(mapping)``."""
    if is_mapping(parameters):
        return leaf(parameters)
    if isinstance(parameters, dict):
        return {k: walk(v, leaf) for k, v in parameters.items()}
    if isinstance(parameters, list):
        return [walk(v, leaf) for v in parameters]
    return parameters


def mappings(parameters) -> list[dict]:
    found: list[dict] = []
    walk(parameters, lambda m: found.append(m))
    return found


def resolve(parameters, *, profile: dict, columns: dict, contact: dict):
    """The recipient's parameter values; raises Missing."""
    def leaf(m):
        source = next(s for s in SOURCES if s in m)
        if source == "constant":
            return m["constant"]
        name = m[source]
        value = {"attribute": profile, "column": columns, "contact": contact}[source].get(name)
        if value is None or value == "":
            if "default" in m:
                return m["default"]
            raise Missing(source, name)
        return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else str(value)
    return walk(parameters, leaf)


def sample(parameters):
    """Placeholder values, to check a mapping covers the template's parameters before any recipient."""
    return walk(parameters, lambda m: m.get("default", m.get("constant", "x")))


def fill_text(text: str, *, profile: dict, contact: dict) -> str:
    def one(m):
        name = m.group(1)
        value = contact.get(name) if name in CONTACT_FIELDS else profile.get(name)
        if value is None or value == "":
            raise Missing("attribute", name)
        return str(value)
    return _PLACEHOLDER.sub(one, text)


def needs(spec: dict) -> set[str]:
    """Which recipient data the message needs: 'profile', 'columns', 'contact'."""
    message = spec.get("message") or {}
    out = set()
    if "text" in message:
        names = set(_PLACEHOLDER.findall(message["text"]))
        if names - set(CONTACT_FIELDS):
            out.add("profile")
        if names & set(CONTACT_FIELDS):
            out.add("contact")
        return out
    reads = {"attribute": "profile", "column": "columns", "contact": "contact"}
    for m in mappings((message.get("template") or {}).get("parameters")):
        source = next(s for s in SOURCES if s in m)
        if source in reads:
            out.add(reads[source])
    return out


def canary_of(spec: dict) -> dict:
    """The canary's size and the thresholds (also those of the sliding window), defaults filled in."""
    return {**CANARY_DEFAULTS, **(spec.get("canary") or {})}


def parse_time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def problems(doc) -> list[dict]:
    """Every problem of the body that needs no database (the caller adds channel, template and audience
    checks against the account)."""
    out: list[dict] = []

    def bad(pointer, detail):
        out.append({"pointer": pointer, "detail": detail})

    if not isinstance(doc, dict):
        return [{"pointer": "", "detail": "a campaign is a JSON object with name, purpose, channel_id, message, audience"}]
    for name in doc:
        if name not in FIELDS:
            bad(f"/{name}", f"unknown field; use {', '.join(FIELDS)}")
    if not isinstance(doc.get("name"), str) or not doc["name"].strip() or len(doc["name"]) > 200:
        bad("/name", "required: a name of 1 to 200 characters, unique in the account")
    if doc.get("purpose") not in PURPOSES:
        bad("/purpose", f"required: one of {', '.join(PURPOSES)} (marketing needs each recipient's opt-in)")
    try:
        uuid.UUID(str(doc.get("channel_id")))
    except ValueError:
        bad("/channel_id", "required: the id of the channel to send from")
    _message(doc.get("message"), bad)
    _audience(doc.get("audience"), bad)
    if doc.get("start_at") is not None and parse_time(doc["start_at"]) is None:
        bad("/start_at", "an ISO 8601 date-time with its offset, e.g. 2026-11-25T09:00:00+01:00")
    _quiet_hours(doc.get("quiet_hours"), bad)
    pace = doc.get("pace_per_s")
    if pace is not None and (isinstance(pace, bool) or not isinstance(pace, (int, float)) or not 0 < pace <= 10_000):
        bad("/pace_per_s", "messages per second, more than 0 and at most 10000 (the channel's own rate caps it)")
    canary = doc.get("canary")
    if canary is not None:
        if not isinstance(canary, dict):
            bad("/canary", "an object: size, max_failure_rate, max_opt_out_rate, max_blocked_rate")
        else:
            for k, v in canary.items():
                if k not in CANARY_DEFAULTS:
                    bad(f"/canary/{k}", f"unknown field; use {', '.join(CANARY_DEFAULTS)}")
                elif k == "size" and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100_000):
                    bad("/canary/size", "how many recipients go first: 0 (no canary) to 100000")
                elif k != "size" and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1):
                    bad(f"/canary/{k}", "a share between 0 (exclusive) and 1, e.g. 0.2 for 20 %")
    window = doc.get("window")
    if window is not None and (not isinstance(window, int) or isinstance(window, bool) or not 10 <= window <= 100_000):
        bad("/window", "how many of the latest sends the failure and opt-out rates are taken over: 10 to 100000")
    return out


def _message(message, bad) -> None:
    if not isinstance(message, dict) or len([k for k in ("template", "text") if k in message]) != 1 or \
            set(message) - {"template", "text"}:
        bad("/message", "required: {\"template\": {name, language?, parameters?}} or {\"text\": \"…\"} (SMS)")
        return
    if "text" in message:
        text = message["text"]
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            bad("/message/text", f"a text of 1 to {MAX_TEXT} characters; {{attribute}} takes a contact's value")
        return
    template = message["template"]
    if not isinstance(template, dict):
        bad("/message/template", "an object: name, language (optional), parameters (optional)")
        return
    for k in template:
        if k not in ("name", "language", "parameters"):
            bad(f"/message/template/{k}", "unknown field; use name, language, parameters")
    if not isinstance(template.get("name"), str) or not template["name"]:
        bad("/message/template/name", "required: the template's name in the catalog")
    if template.get("language") is not None and not isinstance(template["language"], str):
        bad("/message/template/language", "a language code, or leave it out to use each recipient's")
    _mappings(template.get("parameters"), "/message/template/parameters", bad)


def _mappings(value, p, bad) -> None:
    if isinstance(value, dict) and set(value) & set(SOURCES):
        if not is_mapping(value):
            bad(p, f"a mapping names one source ({', '.join(SOURCES)}) and an optional default")
            return
        source = next(s for s in SOURCES if s in value)
        if source == "contact" and value["contact"] not in CONTACT_FIELDS:
            bad(f"{p}/contact", f"one of {', '.join(CONTACT_FIELDS)}")
        elif source in ("attribute", "column") and (not isinstance(value[source], str) or not value[source]):
            bad(f"{p}/{source}", "the name to read the value from")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _mappings(v, f"{p}/{k}", bad)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _mappings(v, f"{p}/{i}", bad)


def _audience(audience, bad) -> None:
    kinds = ("import_id", "contact_ids", "segment")
    if not isinstance(audience, dict) or len([k for k in kinds if k in audience]) != 1 or set(audience) - set(kinds):
        bad("/audience", "required: one of {\"import_id\"}, {\"contact_ids\": [...]}, {\"segment\": {...}}")
        return
    if "import_id" in audience:
        try:
            uuid.UUID(str(audience["import_id"]))
        except ValueError:
            bad("/audience/import_id", "the id POST /v1/contacts/import returned")
    elif "contact_ids" in audience:
        ids = audience["contact_ids"]
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_CONTACT_IDS:
            bad("/audience/contact_ids", f"a list of 1 to {MAX_CONTACT_IDS} contact ids (import a CSV for more)")
            return
        for i, v in enumerate(ids):
            try:
                uuid.UUID(str(v))
            except ValueError:
                bad(f"/audience/contact_ids/{i}", "a contact id")
    else:
        seg = audience["segment"]
        fields = ("tags", "attributes", "channel_kind", "last_inbound_after", "last_inbound_before", "consent")
        if not isinstance(seg, dict):
            bad("/audience/segment", f"an object with any of {', '.join(fields)}")
            return
        for k in seg:
            if k not in fields:
                bad(f"/audience/segment/{k}", f"unknown field; use {', '.join(fields)}")
        tags = seg.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags)):
            bad("/audience/segment/tags", "a list of tags; a contact needs every one of them")
        attrs = seg.get("attributes")
        if attrs is not None and (not isinstance(attrs, dict) or any(isinstance(v, (dict, list)) for v in attrs.values())):
            bad("/audience/segment/attributes", "an object of attribute → value the contact must have")
        if seg.get("channel_kind") is not None and seg["channel_kind"] not in ("whatsapp", "twilio", "messenger",
                                                                               "instagram"):
            bad("/audience/segment/channel_kind", "whatsapp, twilio, messenger or instagram: contacts who wrote there")
        for k in ("last_inbound_after", "last_inbound_before"):
            if seg.get(k) is not None and _date_or_time(seg[k]) is None:
                bad(f"/audience/segment/{k}", "a date (2026-11-01) or a date-time with its offset")
        if seg.get("consent") is not None and seg["consent"] not in ("marketing", "transactional", "surveys"):
            bad("/audience/segment/consent", "a purpose the contact must have granted: marketing, transactional, surveys")


def _date_or_time(value) -> datetime | None:
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return datetime.fromisoformat(value + "T00:00:00+00:00")
        except ValueError:
            return None
    return parse_time(value)


def since(value) -> datetime | None:
    return _date_or_time(value)


def _quiet_hours(q, bad) -> None:
    if q is None:
        return
    if not isinstance(q, dict) or set(q) - {"from", "to", "timezone"}:
        bad("/quiet_hours", "an object: from, to (HH:MM in the recipient's time zone), timezone (fallback)")
        return
    for k in ("from", "to"):
        if not isinstance(q.get(k), str) or not _HHMM.fullmatch(q[k]):
            bad(f"/quiet_hours/{k}", "required: a time as HH:MM, e.g. 21:00")
    if q.get("from") == q.get("to") and q.get("from") is not None:
        bad("/quiet_hours/to", "differs from 'from' (equal times would be quiet all day or never)")
    if q.get("timezone") is not None:
        try:
            ZoneInfo(str(q["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            bad("/quiet_hours/timezone", "an IANA time zone such as Europe/Madrid")


def hhmm(value: str) -> time:
    h, m = value.split(":")
    return time(int(h), int(m))
