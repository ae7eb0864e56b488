"""Check a template definition against Meta's published rules before it is submitted.

``validate(doc)`` returns every problem at once (never just the first), each an ``Issue`` with a
JSON Pointer into the definition (``/components/1/text``), a short ``rule`` slug and a message that
names the component, the rule and the fix. An empty list means nothing Meta documents would refuse;
Meta's review can still reject on content (policy, category, duplicates), which no local check sees.

Each rule is a small function of the definition; ``RULES`` lists them in the order issues come out.
The numbers and their sources (Meta's pages, read September 2026, unless said otherwise):

- name: lowercase letters, digits and underscores, at most 512 characters (templates/overview;
  Direct Send's business-named templates state the pattern ``^[a-z0-9_]+$``);
- category MARKETING, UTILITY or AUTHENTICATION; parameter_format POSITIONAL (default) or NAMED;
- one BODY (always required, also for carousels and authentication templates), at most one HEADER,
  FOOTER and BUTTONS (templates/components);
- HEADER TEXT at most 60 characters and one parameter; IMAGE/VIDEO/GIF/DOCUMENT need an uploaded
  ``example.header_handle``; LOCATION and PRODUCT take nothing;
- BODY at most 1,024 characters; FOOTER at most 60 and no parameters;
- parameters: ``{{1}}, {{2}}...`` numbered from 1 without gaps, or with NAMED ``{{first_name}}``
  (lowercase letters, digits, underscores), never both; not at the very start or end of the body
  (templates/template-review: "cannot start or end with a parameter"); not next to each other with
  only spaces between (the rejection text Meta sends in message_template_status_update: "parameters
  placed next to each other (like {{1}}{{2}}) without text or punctuation between them"); every
  parameter needs an example (``body_text`` ``[[...]]``, ``header_text`` ``[...]``, the ``*_named_params``
  lists, a URL button's ``example``) and the counts must match;
- buttons: at most 10, of which URL 2, PHONE_NUMBER 1, COPY_CODE 1, VOICE_CALL 1, QUICK_REPLY 10;
  quick replies in one group before or after the others; label at most 25 characters; URL at most
  2,000 characters with at most one parameter, at its end; phone number at most 20 characters; a
  copy code example at most 20 characters (Meta raised it from 15; pywa still says 15);
- authentication: BODY with only ``add_security_recommendation`` (Meta supplies the text), optional
  FOOTER with only ``code_expiration_minutes`` 1-90, and BUTTONS with exactly one OTP button whose
  ``otp_type`` is COPY_CODE, ONE_TAP or ZERO_TAP; ONE_TAP and ZERO_TAP need ``supported_apps`` (1-5
  apps, ``package_name`` at most 224 characters, ``signature_hash`` exactly 11), and ZERO_TAP needs
  ``zero_tap_terms_accepted: true`` (templates/authentication-templates, pywa types/templates.py);
- LIMITED_TIME_OFFER: marketing only, offer text at most 16 characters, no FOOTER;
- CAROUSEL: marketing only, beside a BODY and nothing else, 2-10 cards that all have the same
  components; each card an IMAGE/VIDEO (or PRODUCT) header, an optional body of at most 160 characters
  and at most two QUICK_REPLY/URL/PHONE_NUMBER/SPM buttons (marketing-templates/media-card-carousel).

Enumerations (type, format, category...) are compared without regard to case: Meta's create accepts
``"type": "header"`` and reads return ``"HEADER"``.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .definition import (AUTHENTICATION, CATEGORIES, MARKETING, NAMED, PARAMETER_FORMATS, POSITIONAL, Template,
                         placeholders)

__all__ = ["Issue", "RULES", "RULE_SLUGS", "validate"]

NAME_MAX = 512
HEADER_TEXT_MAX = 60
BODY_MAX = 1024
FOOTER_MAX = 60
BUTTONS_MAX = 10
BUTTON_TEXT_MAX = 25
URL_MAX = 2000
PHONE_MAX = 20
COPY_CODE_MAX = 20
CODE_EXPIRATION_RANGE = (1, 90)
SUPPORTED_APPS_MAX = 5
PACKAGE_NAME_MAX = 224
SIGNATURE_HASH_LEN = 11
OFFER_TEXT_MAX = 16
CARDS_RANGE = (2, 10)
CARD_BODY_MAX = 160
CARD_BUTTONS_MAX = 2

COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS", "LIMITED_TIME_OFFER", "CAROUSEL")
HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "GIF", "DOCUMENT", "LOCATION", "PRODUCT")
MEDIA_FORMATS = ("IMAGE", "VIDEO", "GIF", "DOCUMENT")
BUTTON_TYPES = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE", "OTP", "FLOW", "CATALOG", "MPM", "SPM",
                "VOICE_CALL")
# Per-type maxima; the rule slug is too_many_<type>_buttons. (Meta's 10 quick replies is the same as
# the 10 buttons in all, so it is left to too_many_buttons.)
BUTTON_TYPE_MAX = {"URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1, "VOICE_CALL": 1, "OTP": 1}
# Buttons whose label (text) the template must give; OTP and COPY_CODE labels are Meta's.
LABELLED_BUTTONS = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "FLOW", "CATALOG", "MPM", "SPM", "VOICE_CALL")
OTP_TYPES = ("COPY_CODE", "ONE_TAP", "ZERO_TAP")
CARD_BUTTON_TYPES = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "SPM")
CARD_HEADER_FORMATS = ("IMAGE", "VIDEO", "PRODUCT")
# Pre-2023 categories Meta no longer accepts on create (they still come back on old templates).
LEGACY_CATEGORIES = ("TRANSACTIONAL", "OTP", "ACCOUNT_UPDATE", "ALERT_UPDATE", "APPOINTMENT_UPDATE",
                     "AUTO_REPLY", "ISSUE_RESOLUTION", "PAYMENT_UPDATE", "PERSONAL_FINANCE_UPDATE",
                     "RESERVATION_UPDATE", "SHIPPING_UPDATE", "TICKET_UPDATE", "TRANSPORTATION_UPDATE")

_NAME = re.compile(r"[a-z0-9_]+")
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:_(?:[A-Z]{2}|[0-9]{3}))?")
_PHONE = re.compile(r"\+?[0-9][0-9 ().\-]*")


@dataclasses.dataclass(frozen=True)
class Issue:
    """One broken rule: where (a JSON Pointer into the definition), which rule, and how to fix it."""

    pointer: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message} [{self.rule}]"


def _ptr(*parts: object) -> str:
    """A JSON Pointer (RFC 6901) from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _upper(value: object) -> str | None:
    return value.strip().upper() if isinstance(value, str) else None


def _is_text(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _n(number: int) -> str:
    return f"{number:,}"


def _quote_hint(value: object) -> str:
    return " (in YAML, quote it)" if isinstance(value, (int, float, bool)) else ""


class _Doc:
    """What every rule reads: the definition plus its category, parameter format and components."""

    def __init__(self, doc: Mapping[str, Any]):
        self.doc = doc
        self.category = _upper(doc.get("category"))
        declared = doc.get("parameter_format")
        fmt = POSITIONAL if declared is None else _upper(declared)
        self.format = fmt if fmt in PARAMETER_FORMATS else None   # None: invalid, reported once
        comps = doc.get("components")
        self.components: list[tuple[int, Mapping[str, Any], str]] = []
        if isinstance(comps, (list, tuple)):
            for i, comp in enumerate(comps):
                if isinstance(comp, Mapping) and _upper(comp.get("type")):
                    self.components.append((i, comp, _upper(comp.get("type"))))

    @property
    def is_auth(self) -> bool:
        return self.category == AUTHENTICATION

    def of_type(self, kind: str) -> list[tuple[int, Mapping[str, Any]]]:
        return [(i, c) for i, c, t in self.components if t == kind]


Rule = Callable[[_Doc], Iterable[Issue]]


# --- Top-level fields ---------------------------------------------------------------------------
def check_name(d: _Doc) -> Iterator[Issue]:
    name = d.doc.get("name")
    if not _is_text(name):
        yield Issue("/name", "name_missing", "The template has no name; give it one of lowercase letters, "
                                             "digits and underscores, e.g. 'order_update'.")
        return
    if len(name) > NAME_MAX:
        yield Issue("/name", "name_too_long", f"The template name is {_n(len(name))} characters long; Meta "
                                              f"allows at most {NAME_MAX}. Shorten it.")
    if not _NAME.fullmatch(name):
        suggestion = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "order_update"
        yield Issue("/name", "name_invalid", f"The template name {name!r} may only contain lowercase letters, "
                                             f"digits and underscores; use e.g. {suggestion!r}.")


def check_language(d: _Doc) -> Iterator[Issue]:
    language = d.doc.get("language")
    if not _is_text(language):
        yield Issue("/language", "language_missing", "The template has no language; set it to a Meta language "
                                                     "code such as 'en_US', 'en' or 'pt_BR'" + _quote_hint(language)
                                                     + ".")
        return
    if not _LANGUAGE.fullmatch(language):
        hint = language.replace("-", "_") if "-" in language else "en_US"
        yield Issue("/language", "language_invalid", f"The language {language!r} is not a Meta language code "
                                                     f"(a lowercase language, optionally '_' and an uppercase "
                                                     f"region); use e.g. {hint!r}.")


def check_category(d: _Doc) -> Iterator[Issue]:
    value = d.doc.get("category")
    if d.category in CATEGORIES:
        return
    allowed = ", ".join(CATEGORIES)
    if value is None:
        message = f"The template has no category; set it to one of {allowed}."
    elif d.category in LEGACY_CATEGORIES:
        message = (f"The category {value!r} is a pre-2023 value Meta no longer accepts; use one of "
                   f"{allowed} (one-time codes are AUTHENTICATION, order and account updates UTILITY).")
    else:
        message = f"The category {value!r} is not one of {allowed}."
    yield Issue("/category", "category_invalid", message)


def check_parameter_format(d: _Doc) -> Iterator[Issue]:
    value = d.doc.get("parameter_format")
    if value is not None and d.format is None:
        yield Issue("/parameter_format", "parameter_format_invalid",
                    f"parameter_format {value!r} is neither POSITIONAL ({{{{1}}}}, the default) nor NAMED "
                    "({{first_name}}); set one of them or leave it out.")


# --- Components ---------------------------------------------------------------------------------
def check_components(d: _Doc) -> Iterator[Issue]:
    comps = d.doc.get("components")
    if not isinstance(comps, (list, tuple)):
        yield Issue("/components", "components_missing", "The template has no components list; it needs at "
                                                         "least a BODY: [{\"type\": \"BODY\", \"text\": ...}].")
        return
    for i, comp in enumerate(comps):
        if not isinstance(comp, Mapping) or not isinstance(comp.get("type"), str):
            yield Issue(_ptr("components", i), "component_invalid",
                        f"Component {i} is not an object with a 'type' (HEADER, BODY, FOOTER, BUTTONS...).")
        elif _upper(comp["type"]) not in COMPONENT_TYPES:
            yield Issue(_ptr("components", i, "type"), "component_type_unknown",
                        f"Component {i} has type {comp['type']!r}; known types are {', '.join(COMPONENT_TYPES)}.")


def check_component_counts(d: _Doc) -> Iterator[Issue]:
    if isinstance(d.doc.get("components"), (list, tuple)) and not d.of_type("BODY"):
        yield Issue("/components", "body_missing", "The template has no BODY component; every template needs "
                                                   "exactly one (authentication templates too, with only "
                                                   "add_security_recommendation).")
    yield from _duplicates(d.components, ("components",), "The template")


def _duplicates(components: Iterable[tuple[int, Mapping[str, Any], str]], base: tuple, owner: str) -> Iterator[Issue]:
    seen: dict[str, int] = {}
    for i, _, kind in components:
        if kind in seen and kind in COMPONENT_TYPES:
            yield Issue(_ptr(*base, i), "duplicate_component",
                        f"{owner} has a second {kind} component (the first is component {seen[kind]}); at most one is "
                        f"allowed, so merge or remove it.")
        seen.setdefault(kind, i)


# --- Parameters in texts ------------------------------------------------------------------------
@dataclasses.dataclass
class _Scan:
    issues: list[Issue]
    names: tuple[str, ...]        # distinct names, positional ones by number, named ones by appearance
    kind: str | None              # "positional" | "named" | None (no parameters, or unusable)


def _scan_text(d: _Doc, text: str, ptr: str, label: str, *, edges: bool) -> _Scan:
    issues: list[Issue] = []
    found = placeholders(text)
    leftover = text
    for p in reversed(found):
        leftover = leftover[:p.start] + leftover[p.end:]
    if "{{" in leftover or "}}" in leftover:
        issues.append(Issue(ptr, "parameter_braces_unbalanced",
                            f"{label} has a '{{{{' or '}}}}' without its partner; write each parameter as "
                            "{{1}} or {{name}}, with two braces on each side."))
    invalid = [p for p in found if p.kind == "invalid"]
    if invalid:
        shown = ", ".join(dict.fromkeys("{{" + p.name + "}}" for p in invalid))
        issues.append(Issue(ptr, "parameter_name_invalid",
                            f"{label} has {shown}: a parameter is a number ({{{{1}}}}) or, with "
                            "parameter_format NAMED, a name of lowercase letters, digits and underscores "
                            "({{first_name}}), with no spaces or other characters inside the braces."))
    valid = [p for p in found if p.kind != "invalid"]
    kinds = {p.kind for p in valid}
    kind = next(iter(kinds)) if len(kinds) == 1 else None
    if len(kinds) > 1:
        issues.append(Issue(ptr, "parameters_mixed",
                            f"{label} mixes numbered ({{{{1}}}}) and named ({{{{name}}}}) parameters; use one "
                            "kind, the one parameter_format says."))
    elif kind is not None and d.format is not None and kind != d.format.lower():
        if d.format == POSITIONAL:
            fix = "set \"parameter_format\": \"NAMED\" or number the parameters {{1}}, {{2}} and so on"
        else:
            fix = "name the parameters ({{first_name}}) or drop \"parameter_format\": \"NAMED\""
        issues.append(Issue(ptr, "parameter_format_mismatch",
                            f"{label} uses {kind} parameters but the template's parameter_format is "
                            f"{d.format}; {fix}."))
        kind = None
    if kind == "positional":
        numbers = sorted({int(p.name) for p in valid})
        if numbers != list(range(1, len(numbers) + 1)):
            used = ", ".join("{{%d}}" % n for n in numbers)
            wanted = ", ".join("{{%d}}" % n for n in range(1, len(numbers) + 1))
            issues.append(Issue(ptr, "parameters_not_contiguous",
                                f"{label} uses {used}; numbered parameters start at {{{{1}}}} and have no "
                                f"gaps, so renumber them {wanted}."))
    for before, after in zip(found, found[1:]):
        if text[before.end:after.start].strip() == "":
            issues.append(Issue(ptr, "parameters_adjacent",
                                f"{label} has {{{{{before.name}}}}} and {{{{{after.name}}}}} next to each other; "
                                "Meta rejects parameters without text or punctuation between them, so put "
                                "words between them."))
            break
    # Strictly the first/last thing in the text: "Hi {{1}}!" does not end with a parameter. (Meta's
    # own example header "Forget something, {{1}}?" shows punctuation after a parameter is accepted.)
    if edges and found and found[0].start == len(text) - len(text.lstrip()):
        issues.append(Issue(ptr, "body_starts_with_parameter",
                            f"{label} starts with the parameter {{{{{found[0].name}}}}}; Meta rejects a body "
                            "that starts or ends with a parameter, so put text before it."))
    if edges and found and found[-1].end == len(text.rstrip()):
        issues.append(Issue(ptr, "body_ends_with_parameter",
                            f"{label} ends with the parameter {{{{{found[-1].name}}}}}; Meta rejects a body "
                            "that starts or ends with a parameter, so put text after it."))
    if kind == "positional":
        names = tuple(str(n) for n in sorted({int(p.name) for p in valid}))
    else:
        names = tuple(dict.fromkeys(p.name for p in valid))
    return _Scan(issues, names, kind)


def _example_issues(comp: Mapping[str, Any], base: tuple, label: str, slot: str, scan: _Scan,
                    fmt: str | None) -> Iterator[Issue]:
    """The examples a HEADER (slot "header") or BODY ("body") text needs for review."""
    if scan.kind is None and scan.names:
        return                                          # the parameters themselves are wrong; fix those first
    kind = scan.kind or ("named" if fmt == NAMED else "positional")
    positional_key, named_key = f"{slot}_text", f"{slot}_text_named_params"
    key = named_key if kind == "named" else positional_key
    other = positional_key if key == named_key else named_key
    example = comp.get("example")
    values = example.get(key) if isinstance(example, Mapping) else None
    where = _ptr(*base, "example", key)
    if not scan.names:
        if isinstance(values, (list, tuple)) and values:
            inner = values[0] if slot == "body" and isinstance(values[0], (list, tuple)) else values
            yield Issue(where, "example_count_mismatch",
                        f"{label} has {len(inner)} example value(s) but no parameters; remove example.{key} or "
                        "add the parameters to the text.")
        return
    if values is None:
        extra = (f" (example.{other} is for {'named' if other == named_key else 'numbered'} parameters)"
                 if isinstance(example, Mapping) and other in example else "")
        yield Issue(where, "example_missing",
                    f"{label} has {len(scan.names)} parameter(s) but no example.{key}{extra}; Meta reviews "
                    f"templates with sample values, so add one per parameter: {_example_shape(slot, kind)}.")
        return
    if kind == "named":
        yield from _named_examples(values, where, label, key, scan.names)
        return
    flat = values[0] if slot == "body" and isinstance(values, (list, tuple)) and len(values) == 1 else values
    if (not isinstance(values, (list, tuple)) or
            (slot == "body" and (len(values) != 1 or not isinstance(values[0], (list, tuple)))) or
            not all(_is_text(v) for v in flat)):
        yield Issue(where, "example_malformed",
                    f"{label}'s example.{key} must be {_example_shape(slot, kind)}, each value a non-empty "
                    "string (in YAML, quote numbers).")
        return
    if len(flat) != len(scan.names):
        yield Issue(where + ("/0" if slot == "body" else ""), "example_count_mismatch",
                    f"{label} has {len(scan.names)} parameter(s) but {len(flat)} example value(s) in "
                    f"example.{key}; give exactly one value per parameter, in order.")


def _example_shape(slot: str, kind: str) -> str:
    if kind == "named":
        return '[{"param_name": "first_name", "example": "Pablo"}, ...]'
    return '[["Pablo", "25OFF"]] (a list holding one list)' if slot == "body" else '["Pablo"]'


def _named_examples(values: Any, where: str, label: str, key: str, names: tuple[str, ...]) -> Iterator[Issue]:
    if (not isinstance(values, (list, tuple)) or
            not all(isinstance(v, Mapping) and _is_text(v.get("param_name")) and _is_text(v.get("example"))
                    for v in values)):
        yield Issue(where, "example_malformed",
                    f"{label}'s example.{key} must be a list of {{\"param_name\": ..., \"example\": ...}} "
                    "objects with non-empty strings.")
        return
    given = [v["param_name"] for v in values]
    missing = [n for n in names if n not in given]
    extra = [n for n in dict.fromkeys(given) if n not in names]
    repeated = [n for n in dict.fromkeys(given) if given.count(n) > 1]
    if missing or extra or repeated:
        parts = []
        if missing:
            parts.append("no example for " + ", ".join(missing))
        if extra:
            parts.append("examples for parameters the text does not have: " + ", ".join(extra))
        if repeated:
            parts.append("more than one example for " + ", ".join(repeated))
        yield Issue(where, "example_names_mismatch",
                    f"{label}'s example.{key} does not match its parameters ({'; '.join(parts)}); give exactly "
                    "one example per named parameter.")


# --- HEADER, BODY, FOOTER -----------------------------------------------------------------------
def check_header(d: _Doc) -> Iterator[Issue]:
    for i, comp in d.of_type("HEADER"):
        yield from _header_issues(d, comp, ("components", i), "HEADER")


def _header_issues(d: _Doc, comp: Mapping[str, Any], base: tuple, label: str,
                   formats: tuple[str, ...] = HEADER_FORMATS) -> Iterator[Issue]:
    fmt = _upper(comp.get("format"))
    if fmt not in formats:
        given = f"format is {comp.get('format')!r}" if "format" in comp else "has no format"
        yield Issue(_ptr(*base, "format"), "header_format_invalid",
                    f"{label} {given}; use one of {', '.join(formats)}.")
        return
    if fmt == "TEXT":
        text = comp.get("text")
        if not _is_text(text):
            yield Issue(_ptr(*base, "text"), "header_text_missing",
                        f"{label} has format TEXT but no text; add the text or remove the header.")
            return
        where = _ptr(*base, "text")
        if len(text) > HEADER_TEXT_MAX:
            yield Issue(where, "header_too_long", f"{label} text is {_n(len(text))} characters long; Meta allows "
                                                  f"at most {HEADER_TEXT_MAX}. Shorten it.")
        scan = _scan_text(d, text, where, f"{label} text", edges=False)
        yield from scan.issues
        if len(scan.names) > 1:
            yield Issue(where, "header_too_many_parameters",
                        f"{label} text has {len(scan.names)} parameters; a header may have at most one, so move "
                        "the others to the body.")
        else:
            yield from _example_issues(comp, base, f"{label} text", "header", scan, d.format)
    elif fmt in MEDIA_FORMATS:
        example = comp.get("example")
        handles = example.get("header_handle") if isinstance(example, Mapping) else None
        if not (isinstance(handles, (list, tuple)) and handles and all(_is_text(h) for h in handles)):
            yield Issue(_ptr(*base, "example", "header_handle"), "header_handle_missing",
                        f"{label} is {fmt} but has no example.header_handle; upload a sample with Meta's "
                        "Resumable Upload API and put its handle here: {\"header_handle\": [\"4::aW...\"]}.")


def check_body(d: _Doc) -> Iterator[Issue]:
    if d.is_auth:
        return                                          # Meta writes the text; see check_authentication
    for i, comp in d.of_type("BODY"):
        yield from _body_issues(d, comp, ("components", i), "BODY", BODY_MAX, "body_too_long")


def _body_issues(d: _Doc, comp: Mapping[str, Any], base: tuple, label: str, limit: int,
                 too_long: str) -> Iterator[Issue]:
    text = comp.get("text")
    where = _ptr(*base, "text")
    if not _is_text(text):
        yield Issue(where, "body_text_missing", f"{label} has no text; write the message the customer reads.")
        return
    if len(text) > limit:
        yield Issue(where, too_long, f"{label} text is {_n(len(text))} characters long; Meta allows at most "
                                     f"{_n(limit)}. Shorten it.")
    scan = _scan_text(d, text, where, f"{label} text", edges=True)
    yield from scan.issues
    yield from _example_issues(comp, base, f"{label} text", "body", scan, d.format)


def check_footer(d: _Doc) -> Iterator[Issue]:
    if d.is_auth:
        return
    for i, comp in d.of_type("FOOTER"):
        where = _ptr("components", i, "text")
        text = comp.get("text")
        if not _is_text(text):
            yield Issue(where, "footer_text_missing", "FOOTER has no text; add it or remove the footer.")
            continue
        if len(text) > FOOTER_MAX:
            yield Issue(where, "footer_too_long", f"FOOTER text is {_n(len(text))} characters long; Meta allows "
                                                  f"at most {FOOTER_MAX}. Shorten it.")
        if placeholders(text):
            yield Issue(where, "footer_has_parameters", "FOOTER text has a parameter; footers are fixed text, so "
                                                        "move the parameter to the body.")


# --- BUTTONS ------------------------------------------------------------------------------------
def check_buttons(d: _Doc) -> Iterator[Issue]:
    for i, comp in d.of_type("BUTTONS"):
        yield from _button_list_issues(d, comp, ("components", i), "BUTTONS", allowed=BUTTON_TYPES,
                                       total=BUTTONS_MAX, too_many="too_many_buttons")


def _button_list_issues(d: _Doc, comp: Mapping[str, Any], base: tuple, label: str, *,
                        allowed: tuple[str, ...], total: int, too_many: str) -> Iterator[Issue]:
    buttons = comp.get("buttons")
    if not isinstance(buttons, (list, tuple)) or not buttons:
        yield Issue(_ptr(*base, "buttons"), "buttons_empty",
                    f"{label} has no buttons list; add buttons or remove the component.")
        return
    if len(buttons) > total:
        yield Issue(_ptr(*base, "buttons", total), too_many,
                    f"{label} has {len(buttons)} buttons; at most {total} are allowed, so remove "
                    f"{len(buttons) - total}.")
    typed: list[tuple[int, Mapping[str, Any], str]] = []
    for j, button in enumerate(buttons):
        where = _ptr(*base, "buttons", j)
        kind = _upper(button.get("type")) if isinstance(button, Mapping) else None
        if kind is None:
            yield Issue(where, "button_invalid", f"{label} button {j} is not an object with a 'type'.")
        elif kind not in allowed:
            rule = "button_type_unknown" if kind not in BUTTON_TYPES else "button_type_not_allowed"
            yield Issue(_ptr(*base, "buttons", j, "type"), rule,
                        f"{label} button {j} has type {button.get('type')!r}; here the types are "
                        f"{', '.join(allowed)}.")
        else:
            typed.append((j, button, kind))
    counts: dict[str, int] = {}
    for j, _, kind in typed:
        counts[kind] = counts.get(kind, 0) + 1
        limit = BUTTON_TYPE_MAX.get(kind)
        if limit is not None and counts[kind] == limit + 1:
            yield Issue(_ptr(*base, "buttons", j), f"too_many_{kind.lower()}_buttons",
                        f"{label} has more than {limit} {kind} button{'s' if limit > 1 else ''}; Meta allows at "
                        f"most {limit}, so remove the extra ones.")
    switches = 0                        # QR, QR, URL has one switch; QR, URL, QR has two
    for (_, _, previous), (j, _, kind) in zip(typed, typed[1:]):
        if (previous == "QUICK_REPLY") != (kind == "QUICK_REPLY"):
            switches += 1
            if switches == 2:
                yield Issue(_ptr(*base, "buttons", j), "quick_replies_not_grouped",
                            f"{label} button {j} splits the quick replies from the other buttons; put all "
                            "QUICK_REPLY buttons together, before or after the others (QR, QR, URL or URL, QR, "
                            "QR).")
                break
    for j, button, kind in typed:
        yield from _button_issues(d, button, (*base, "buttons", j), f"{label} button {j} ({kind})", kind)


def _button_issues(d: _Doc, button: Mapping[str, Any], base: tuple, label: str, kind: str) -> Iterator[Issue]:
    for field in ("text", "autofill_text"):
        value = button.get(field)
        if field == "text" and kind in LABELLED_BUTTONS and not _is_text(value):
            yield Issue(_ptr(*base, "text"), "button_text_missing", f"{label} has no text; give it a label of "
                                                                    f"at most {BUTTON_TEXT_MAX} characters.")
        elif isinstance(value, str) and len(value) > BUTTON_TEXT_MAX:
            yield Issue(_ptr(*base, field), "button_text_too_long",
                        f"{label} {field} is {len(value)} characters long; Meta allows at most "
                        f"{BUTTON_TEXT_MAX}. Shorten it.")
    if kind == "URL":
        yield from _url_issues(d, button, base, label)
    elif kind == "PHONE_NUMBER":
        yield from _phone_issues(button, base, label)
    elif kind == "COPY_CODE":
        example = button.get("example")
        if not _is_text(example):
            yield Issue(_ptr(*base, "example"), "example_missing",
                        f"{label} has no example code; add one, e.g. \"example\": \"25OFF\"{_quote_hint(example)}.")
        elif len(example) > COPY_CODE_MAX:
            yield Issue(_ptr(*base, "example"), "copy_code_example_too_long",
                        f"{label} example is {len(example)} characters long; a code may have at most "
                        f"{COPY_CODE_MAX}.")
    elif kind == "FLOW":
        targets = [key for key in ("flow_id", "flow_name", "flow_json") if button.get(key) not in (None, "")]
        if len(targets) != 1:
            yield Issue(_ptr(*base), "flow_button_target_invalid",
                        f"{label} names {len(targets)} flows ({', '.join(targets) or 'none'}); give exactly one "
                        "of flow_id, flow_name or flow_json.")
    elif kind == "OTP":
        yield from _otp_issues(d, button, base, label)


def _url_issues(d: _Doc, button: Mapping[str, Any], base: tuple, label: str) -> Iterator[Issue]:
    url = button.get("url")
    where = _ptr(*base, "url")
    if not _is_text(url):
        yield Issue(where, "url_missing", f"{label} has no url; give the https:// address it opens.")
        return
    if len(url) > URL_MAX:
        yield Issue(where, "url_too_long", f"{label} url is {_n(len(url))} characters long; Meta allows at most "
                                           f"{_n(URL_MAX)}.")
    if not re.match(r"https?://[^\s/]", url, re.IGNORECASE):
        yield Issue(where, "url_invalid", f"{label} url {url!r} is not an http(s) address; start it with https://.")
    found = placeholders(url)
    leftover = url
    for p in reversed(found):
        leftover = leftover[:p.start] + leftover[p.end:]
    if "{{" in leftover or "}}" in leftover:
        yield Issue(where, "parameter_braces_unbalanced",
                    f"{label} url has a '{{{{' or '}}}}' without its partner; the one parameter is written {{{{1}}}}.")
    if len(found) > 1:
        yield Issue(where, "url_too_many_parameters",
                    f"{label} url has {len(found)} parameters; a URL button takes at most one, {{{{1}}}} at the end.")
    elif found:
        p = found[0]
        if p.end != len(url):
            yield Issue(where, "url_parameter_not_at_end",
                        f"{label} url has {{{{{p.name}}}}} in the middle; its one parameter can only be appended "
                        "at the very end, e.g. https://example.com/orders/{{1}}.")
        if not (p.name == "1" or (p.kind == "named" and d.format == NAMED)):
            yield Issue(where, "url_parameter_invalid",
                        f"{label} url parameter is {{{{{p.name}}}}}; write it {{{{1}}}}"
                        + (" (or a lowercase name)" if d.format == NAMED else "") + ".")
    example = button.get("example")
    if found and len(found) == 1:
        if example is None:
            yield Issue(_ptr(*base, "example"), "example_missing",
                        f"{label} url has a parameter but no example; add \"example\": [\"<a sample suffix or "
                        "full URL>\"].")
        elif not (isinstance(example, (list, tuple)) and all(_is_text(v) for v in example)):
            yield Issue(_ptr(*base, "example"), "example_malformed",
                        f"{label} example must be a list with one non-empty string, e.g. [\"summer2023\"].")
        elif len(example) != 1:
            yield Issue(_ptr(*base, "example"), "example_count_mismatch",
                        f"{label} url has 1 parameter but {len(example)} example values; give exactly one.")
    elif not found and example not in (None, [], ()):
        yield Issue(_ptr(*base, "example"), "example_count_mismatch",
                    f"{label} has an example but its url has no parameter; remove the example or end the url "
                    "with {{1}}.")


def _phone_issues(button: Mapping[str, Any], base: tuple, label: str) -> Iterator[Issue]:
    number = button.get("phone_number")
    where = _ptr(*base, "phone_number")
    if number is None or number == "":
        yield Issue(where, "phone_number_missing", f"{label} has no phone_number; give the business number "
                                                   "with its country code, e.g. \"+15550051310\".")
        return
    digits = re.sub(r"\D", "", number) if isinstance(number, str) else ""
    if (not isinstance(number, str) or len(number) > PHONE_MAX or not _PHONE.fullmatch(number.strip())
            or not 7 <= len(digits) <= 15):
        yield Issue(where, "phone_number_invalid",
                    f"{label} phone_number {number!r} is not a phone number of at most {PHONE_MAX} characters "
                    "(country code and number, digits with an optional leading '+'), e.g. \"+15550051310\""
                    f"{_quote_hint(number)}.")


def _otp_issues(d: _Doc, button: Mapping[str, Any], base: tuple, label: str) -> Iterator[Issue]:
    if not d.is_auth:
        yield Issue(_ptr(*base), "otp_button_outside_authentication",
                    f"{label} is a one-time-password button, which only AUTHENTICATION templates may have; use "
                    "COPY_CODE for coupon codes, or make this an authentication template.")
    otp_type = _upper(button.get("otp_type"))
    if otp_type not in OTP_TYPES:
        yield Issue(_ptr(*base, "otp_type"), "otp_type_invalid",
                    f"{label} otp_type is {button.get('otp_type')!r}; use one of {', '.join(OTP_TYPES)}.")
        return
    if otp_type in ("ONE_TAP", "ZERO_TAP"):
        yield from _supported_apps_issues(button, base, label, otp_type)
    if otp_type == "ZERO_TAP" and button.get("zero_tap_terms_accepted") is not True:
        yield Issue(_ptr(*base, "zero_tap_terms_accepted"), "zero_tap_terms_not_accepted",
                    f"{label} is ZERO_TAP but zero_tap_terms_accepted is not true; Meta creates zero-tap "
                    "templates only once you accept its zero-tap terms, so set it to true.")


def _supported_apps_issues(button: Mapping[str, Any], base: tuple, label: str, otp_type: str) -> Iterator[Issue]:
    apps = button.get("supported_apps")
    # The older one-app form puts package_name and signature_hash on the button itself.
    legacy = apps is None and ("package_name" in button or "signature_hash" in button)
    if legacy:
        apps = [button]
    if not isinstance(apps, (list, tuple)) or not apps:
        yield Issue(_ptr(*base, "supported_apps"), "supported_apps_missing",
                    f"{label} is {otp_type}, which needs supported_apps: [{{\"package_name\": ..., "
                    "\"signature_hash\": ...}] for the Android app that receives the code.")
        return
    if len(apps) > SUPPORTED_APPS_MAX:
        yield Issue(_ptr(*base, "supported_apps", SUPPORTED_APPS_MAX), "too_many_supported_apps",
                    f"{label} lists {len(apps)} supported apps; Meta allows at most {SUPPORTED_APPS_MAX}.")
    for k, app in enumerate(apps):
        where = _ptr(*base) if legacy else _ptr(*base, "supported_apps", k)
        package = app.get("package_name") if isinstance(app, Mapping) else None
        signature = app.get("signature_hash") if isinstance(app, Mapping) else None
        if not _is_text(package) or len(package) > PACKAGE_NAME_MAX:
            yield Issue(where + "/package_name", "supported_app_invalid",
                        f"{label} supported app {k} needs a package_name of at most {PACKAGE_NAME_MAX} "
                        "characters, e.g. \"com.example.app\".")
        if not isinstance(signature, str) or len(signature) != SIGNATURE_HASH_LEN:
            yield Issue(where + "/signature_hash", "supported_app_invalid",
                        f"{label} supported app {k} needs the app's {SIGNATURE_HASH_LEN}-character signing key "
                        "hash as signature_hash.")


# --- Authentication -----------------------------------------------------------------------------
def check_authentication(d: _Doc) -> Iterator[Issue]:
    if not d.is_auth:
        return
    for i, _, kind in d.components:
        if kind not in ("BODY", "FOOTER", "BUTTONS"):
            yield Issue(_ptr("components", i), "authentication_component_not_allowed",
                        f"AUTHENTICATION templates have only BODY, FOOTER and BUTTONS; remove the {kind}.")
    for i, comp in d.of_type("BODY"):
        if "text" in comp:
            yield Issue(_ptr("components", i, "text"), "authentication_body_has_text",
                        "AUTHENTICATION BODY text is fixed by Meta (\"<code> is your verification code.\"); "
                        "remove text and set only add_security_recommendation.")
        value = comp.get("add_security_recommendation")
        if value is not None and not isinstance(value, bool):
            yield Issue(_ptr("components", i, "add_security_recommendation"), "authentication_body_invalid",
                        "AUTHENTICATION BODY add_security_recommendation must be true or false.")
    for i, comp in d.of_type("FOOTER"):
        if "text" in comp:
            yield Issue(_ptr("components", i, "text"), "authentication_footer_has_text",
                        "AUTHENTICATION FOOTER text is fixed by Meta; remove text and set only "
                        "code_expiration_minutes.")
        minutes = comp.get("code_expiration_minutes")
        low, high = CODE_EXPIRATION_RANGE
        if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int)
                                    or not low <= minutes <= high):
            yield Issue(_ptr("components", i, "code_expiration_minutes"), "code_expiration_out_of_range",
                        f"AUTHENTICATION FOOTER code_expiration_minutes is {minutes!r}; use a whole number of "
                        f"minutes from {low} to {high}, or leave it out.")
    otp = []
    for i, comp in d.of_type("BUTTONS"):
        buttons = comp.get("buttons")
        for j, button in enumerate(buttons if isinstance(buttons, (list, tuple)) else ()):
            kind = _upper(button.get("type")) if isinstance(button, Mapping) else None
            if kind == "OTP":
                otp.append(j)
            elif kind is not None:
                yield Issue(_ptr("components", i, "buttons", j), "authentication_button_not_allowed",
                            f"AUTHENTICATION templates have exactly one OTP button; remove this {kind} button.")
    if not otp:
        yield Issue("/components", "authentication_otp_button_missing",
                    "AUTHENTICATION templates need a BUTTONS component with one OTP button: "
                    "{\"type\": \"OTP\", \"otp_type\": \"COPY_CODE\"} (or ONE_TAP / ZERO_TAP).")


# --- LIMITED_TIME_OFFER -------------------------------------------------------------------------
def check_limited_time_offer(d: _Doc) -> Iterator[Issue]:
    offers = d.of_type("LIMITED_TIME_OFFER")
    for i, comp in offers:
        if d.category != MARKETING:
            yield Issue(_ptr("components", i), "limited_time_offer_not_marketing",
                        "LIMITED_TIME_OFFER is only for MARKETING templates; change the category or remove it.")
        offer = comp.get("limited_time_offer")
        text = offer.get("text") if isinstance(offer, Mapping) else None
        where = _ptr("components", i, "limited_time_offer", "text")
        if not _is_text(text):
            yield Issue(where, "limited_time_offer_text_missing",
                        "LIMITED_TIME_OFFER has no limited_time_offer.text; add the offer line, e.g. "
                        "\"Expiring offer!\".")
        elif len(text) > OFFER_TEXT_MAX:
            yield Issue(where, "limited_time_offer_text_too_long",
                        f"LIMITED_TIME_OFFER text is {len(text)} characters long; Meta allows at most "
                        f"{OFFER_TEXT_MAX}.")
    if offers:
        for i, _ in d.of_type("FOOTER"):
            yield Issue(_ptr("components", i), "limited_time_offer_with_footer",
                        "Limited-time offer templates cannot have a FOOTER; remove it.")


# --- CAROUSEL -----------------------------------------------------------------------------------
def check_carousel(d: _Doc) -> Iterator[Issue]:
    for i, comp in d.of_type("CAROUSEL"):
        base = ("components", i)
        if d.category != MARKETING:
            yield Issue(_ptr(*base), "carousel_not_marketing",
                        "CAROUSEL cards are only for MARKETING templates; change the category or remove them.")
        for j, _, kind in d.components:
            if kind in ("HEADER", "FOOTER", "BUTTONS"):
                yield Issue(_ptr("components", j), "carousel_component_not_allowed",
                            f"A carousel template is a BODY and the CAROUSEL; move the {kind} into the cards or "
                            "remove it.")
        cards = comp.get("cards")
        low, high = CARDS_RANGE
        if not isinstance(cards, (list, tuple)) or not low <= len(cards) <= high:
            count = len(cards) if isinstance(cards, (list, tuple)) else 0
            yield Issue(_ptr(*base, "cards"), "carousel_card_count",
                        f"CAROUSEL has {count} card(s); it needs from {low} to {high}.")
        if not isinstance(cards, (list, tuple)):
            continue
        shapes = []
        for n, card in enumerate(cards):
            card_base = (*base, "cards", n)
            comps = card.get("components") if isinstance(card, Mapping) else None
            if not isinstance(comps, (list, tuple)):
                yield Issue(_ptr(*card_base), "carousel_card_invalid",
                            f"CAROUSEL card {n} is not an object with a components list.")
                continue
            shapes.append((n, _card_shape(comps)))
            yield from _card_issues(d, comps, card_base, f"CAROUSEL card {n}")
        for n, shape in shapes[1:]:
            if shape != shapes[0][1]:
                yield Issue(_ptr(*base, "cards", n), "carousel_cards_differ",
                            f"CAROUSEL card {n} does not have the same components and buttons as card "
                            f"{shapes[0][0]}; every card must have the same header format, body (all or none) "
                            "and button types in the same order.")


def _card_shape(comps: Iterable[Any]) -> tuple:
    """What must match across cards: the allowed components' types, header format and button types
    (components a card may not have are reported on their own, not as a difference)."""
    shape = []
    for comp in comps:
        kind = _upper(comp.get("type")) if isinstance(comp, Mapping) else None
        if kind not in ("HEADER", "BODY", "BUTTONS"):
            continue
        buttons = comp.get("buttons") if kind == "BUTTONS" else None
        detail = (_upper(comp.get("format")) if kind == "HEADER" else
                  tuple(_upper(b.get("type")) if isinstance(b, Mapping) else None for b in buttons)
                  if isinstance(buttons, (list, tuple)) else None)
        shape.append((kind, detail))
    return tuple(shape)


def _card_issues(d: _Doc, comps: Iterable[Any], base: tuple, label: str) -> Iterator[Issue]:
    typed = []
    for k, comp in enumerate(comps):
        kind = _upper(comp.get("type")) if isinstance(comp, Mapping) else None
        if kind not in ("HEADER", "BODY", "BUTTONS"):
            yield Issue(_ptr(*base, "components", k), "card_component_not_allowed",
                        f"{label} component {k} is {kind or 'not a component'}; a card has a HEADER, an optional "
                        "BODY and BUTTONS.")
            continue
        typed.append((k, comp, kind))
    yield from _duplicates(typed, (*base, "components"), label)
    if not any(kind == "HEADER" for _, _, kind in typed):
        yield Issue(_ptr(*base, "components"), "card_header_missing",
                    f"{label} has no HEADER; each card needs an IMAGE or VIDEO header (PRODUCT for product cards).")
    for k, comp, kind in typed:
        where = (*base, "components", k)
        if kind == "HEADER":
            yield from _header_issues(d, comp, where, f"{label} HEADER", formats=CARD_HEADER_FORMATS)
        elif kind == "BODY":
            yield from _body_issues(d, comp, where, f"{label} BODY", CARD_BODY_MAX, "card_body_too_long")
        else:
            yield from _button_list_issues(d, comp, where, f"{label} BUTTONS", allowed=CARD_BUTTON_TYPES,
                                           total=CARD_BUTTONS_MAX, too_many="card_too_many_buttons")


# Every rule slug validate() can return, for callers that switch on them (and a test that checks
# each has a case).
RULE_SLUGS = frozenset({
    "not_an_object", "name_missing", "name_invalid", "name_too_long", "language_missing", "language_invalid",
    "category_invalid", "parameter_format_invalid",
    "components_missing", "component_invalid", "component_type_unknown", "body_missing", "duplicate_component",
    "header_format_invalid", "header_text_missing", "header_too_long", "header_too_many_parameters",
    "header_handle_missing", "body_text_missing", "body_too_long", "footer_text_missing", "footer_too_long",
    "footer_has_parameters",
    "parameter_braces_unbalanced", "parameter_name_invalid", "parameters_mixed", "parameter_format_mismatch",
    "parameters_not_contiguous", "parameters_adjacent", "body_starts_with_parameter", "body_ends_with_parameter",
    "example_missing", "example_malformed", "example_count_mismatch", "example_names_mismatch",
    "buttons_empty", "too_many_buttons", "button_invalid", "button_type_unknown", "button_type_not_allowed",
    *(f"too_many_{kind.lower()}_buttons" for kind in BUTTON_TYPE_MAX), "quick_replies_not_grouped",
    "button_text_missing", "button_text_too_long", "url_missing", "url_too_long", "url_invalid",
    "url_too_many_parameters", "url_parameter_not_at_end", "url_parameter_invalid", "phone_number_missing",
    "phone_number_invalid", "copy_code_example_too_long", "flow_button_target_invalid",
    "otp_button_outside_authentication", "otp_type_invalid", "supported_apps_missing", "too_many_supported_apps",
    "supported_app_invalid", "zero_tap_terms_not_accepted",
    "authentication_component_not_allowed", "authentication_body_has_text", "authentication_body_invalid",
    "authentication_footer_has_text", "code_expiration_out_of_range", "authentication_button_not_allowed",
    "authentication_otp_button_missing",
    "limited_time_offer_not_marketing", "limited_time_offer_text_missing", "limited_time_offer_text_too_long",
    "limited_time_offer_with_footer",
    "carousel_not_marketing", "carousel_component_not_allowed", "carousel_card_count", "carousel_card_invalid",
    "carousel_cards_differ", "card_component_not_allowed", "card_header_missing", "card_body_too_long",
    "card_too_many_buttons",
})


RULES: tuple[Rule, ...] = (
    check_name, check_language, check_category, check_parameter_format,
    check_components, check_component_counts,
    check_header, check_body, check_footer, check_buttons,
    check_authentication, check_limited_time_offer, check_carousel,
)


def validate(doc: Mapping[str, Any] | Template) -> list[Issue]:
    """Every way ``doc`` (a definition in Meta's shape, or a ``Template``) breaks Meta's rules; []
    when none."""
    if isinstance(doc, Template):
        doc = doc.doc
    if not isinstance(doc, Mapping):
        return [Issue("", "not_an_object", f"A template definition is a JSON object, not "
                                           f"{type(doc).__name__}; see shared/fixtures/whatsapp_templates/.")]
    d = _Doc(doc)
    return [issue for rule in RULES for issue in rule(d)]
