"""The values of header and body placeholders and of media, location and product headers, checked
against Meta's rules (protocols.md B1) and turned into Cloud API parameters plus what the customer sees."""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from templates_catalog.render.common import (
    MEDIA, MISSING, PLACEHOLDER, Issue, a_or_an, braces, esc, kind_of, nonempty, text_problem,
)

_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_HAS_SPACE = re.compile(r"\s").search


def _typed_text(value: Any, where: str, name: str | None, issues: list) -> tuple[dict, str] | None:
    """A non-str value for a text placeholder: (Cloud API parameter, what the customer sees) or None."""
    if value is MISSING or value is None:
        issues.append(Issue(where, "is missing", "add a value for it"))
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
        return ({"type": "text", "parameter_name": name, "text": value} if name
                else {"type": "text", "text": value}), value
    if not isinstance(value, Mapping):
        issues.append(Issue(where, f"is a {kind_of(value)}, not text",
                            "pass a string, or a typed value such as {'type': 'currency', 'currency': {...}}"))
        return None
    kind = value.get("type")
    head: dict = {"type": kind, "parameter_name": name} if name else {"type": kind}
    if kind == "text":
        text = value.get("text")
        if not isinstance(text, str):
            issues.append(Issue(where, "is a text value without a 'text' string", "set 'text'"))
            return None
        problem = text_problem(text)
        if problem:
            issues.append(Issue(where, *problem))
            return None
        head["text"] = text
        return head, text
    if kind == "currency":
        money = value.get("currency")
        if not isinstance(money, Mapping):
            issues.append(Issue(where, "is a currency without a 'currency' object",
                                "pass {'fallback_value': '$10.99', 'code': 'USD', 'amount_1000': 10990}"))
            return None
        fallback, code, amount = money.get("fallback_value"), money.get("code"), money.get("amount_1000")
        bad = []
        if not isinstance(fallback, str) or text_problem(fallback):
            bad.append("'fallback_value' (the text shown: Meta shows only it)")
        if not isinstance(code, str) or not _CURRENCY_CODE.fullmatch(code):
            bad.append("'code' (ISO 4217, e.g. USD)")
        if not isinstance(amount, int) or isinstance(amount, bool):
            bad.append("'amount_1000' (the amount times 1000, an integer)")
        if bad:
            issues.append(Issue(where, "is a currency with a missing or invalid " + ", ".join(bad),
                                "fix those fields"))
            return None
        head["currency"] = {"fallback_value": fallback, "code": code, "amount_1000": amount}
        return head, fallback
    if kind == "date_time":
        moment = value.get("date_time")
        fallback = moment.get("fallback_value") if isinstance(moment, Mapping) else None
        if not isinstance(fallback, str) or text_problem(fallback):
            issues.append(Issue(where, "is a date_time without a usable 'fallback_value'",
                                "pass {'type': 'date_time', 'date_time': {'fallback_value': 'March 25, 2026'}}:"
                                " Meta shows only the fallback value"))
            return None
        head["date_time"] = {"fallback_value": fallback}
        return head, fallback
    if kind in MEDIA or kind in ("location", "product"):
        issues.append(Issue(where, f"is {a_or_an(kind)}, but this placeholder takes text",
                            "pass a string, currency or date_time"))
        return None
    issues.append(Issue(where, f"has an unknown type {kind!r}" if kind else "is a mapping without a 'type'",
                        "pass a string, or {'type': 'text' | 'currency' | 'date_time', ...}"))
    return None


class Vars:
    """The placeholders of one header or body text, in the order Meta matches them."""
    __slots__ = ("label", "keys", "named", "counts", "simple", "static_len", "limit", "slot", "wheres", "key_set")

    def __init__(self, label: str, text: str, named: bool, limit: int, slot: int, issues: list):
        found = [m.group(1) for m in PLACEHOLDER.finditer(text)]
        distinct = list(dict.fromkeys(found))
        if named:
            keys = distinct                               # sent in order of first appearance
        else:
            bad = [k for k in distinct if not k.isdigit()]
            if bad:
                issues.append(Issue(f"template {label}", f"has {braces(bad[0])} in a POSITIONAL template",
                                    "set parameter_format NAMED, or number the placeholders {{1}}, {{2}}"))
            numbers = sorted(int(k) for k in distinct if k.isdigit())
            if numbers != list(range(1, len(numbers) + 1)):
                issues.append(Issue(f"template {label}", "placeholders are not numbered {{1}} to {{n}}",
                                    "renumber them: Meta matches positional values by order"))
            keys = [str(n) for n in numbers]
            found = [str(int(k)) if k.isdigit() else k for k in found]
        self.label, self.named, self.limit, self.slot = label, named, limit, slot
        self.keys = tuple(keys)
        self.key_set = frozenset(keys)
        self.counts = tuple(found.count(k) for k in keys)
        self.simple = all(c == 1 for c in self.counts)     # each placeholder once: length is a join's
        self.static_len = len(PLACEHOLDER.sub("", text))
        self.wheres = tuple(f"{label} {braces(k)}" for k in keys)

    def fmt(self, text: str) -> str:
        """``text`` as a str.format template whose fields are this section's slots."""
        out, pos = [], 0
        for m in PLACEHOLDER.finditer(text):
            key = m.group(1)
            if not self.named and key.isdigit():
                key = str(int(key))
            out.append(esc(text[pos:m.start()]))
            out.append("{%d}" % (self.slot + self.keys.index(key)) if key in self.key_set else esc(m.group(0)))
            pos = m.end()
        out.append(esc(text[pos:]))
        return "".join(out)

    def _sequence(self, given: Any, issues: list) -> list | None:
        keys, n, label = self.keys, len(self.keys), self.label
        if given is MISSING or given is None:
            return [MISSING] * n
        if self.named:
            if isinstance(given, Mapping):
                for key in given:
                    if key not in self.key_set:
                        names = ", ".join(braces(k) for k in keys) or "no parameters"
                        issues.append(Issue(f"{label} {braces(str(key))}", "is not a parameter of this template",
                                            f"remove it (the {label} has {names})"))
                return [given.get(k, MISSING) for k in keys]
            if n == 1 and not isinstance(given, (list, tuple)):
                return [given]
            if isinstance(given, (list, tuple)) and not given and not n:
                return []
            issues.append(Issue(label, f"is a {kind_of(given)}, but the template uses named parameters",
                                "pass a mapping such as {" + ", ".join(f"'{k}': ..." for k in keys) + "}"))
            return None
        if isinstance(given, (list, tuple)):
            if len(given) == n:
                return given
            seq = list(given)
        elif isinstance(given, Mapping):
            seq = [MISSING] * n
            for key, value in given.items():
                position = int(key) if isinstance(key, int) or (isinstance(key, str) and key.isdigit()) else 0
                if 1 <= position <= n:
                    seq[position - 1] = value
                else:
                    issues.append(Issue(f"{label} {braces(str(key))}", "is not a parameter of this template",
                                        f"remove it (the {label} has {n} positional parameter(s))"))
            return seq
        elif n == 1:
            return [given]
        else:
            issues.append(Issue(label, f"is a {kind_of(given)}",
                                f"pass a list of {n} values" if n else "remove it: it has no parameters"))
            return None
        for extra in range(n, len(seq)):
            issues.append(Issue(f"{label} {braces(str(extra + 1))}",
                                f"is extra: the {label} has {n} parameter{'' if n == 1 else 's'}", "remove it"))
        return seq[:n] + [MISSING] * (n - len(seq))

    def fill(self, given: Any, values: list, issues: list) -> list | None:
        """Check the values, put what the customer sees into ``values``; the Cloud API parameters or None."""
        mark = len(issues)
        seq = self._sequence(given, issues)
        if seq is None:
            return None
        if len(issues) > mark:                         # extra values: report them after the values' own problems
            extras = issues[mark:]
            del issues[mark:]
            params = self._fill_slowly(seq, values, issues)
            issues.extend(extras)
            return params
        n = len(seq)
        # The hot path: every value a plain, acceptable string. One join answers "all str?" (a TypeError
        # otherwise) and lets each forbidden character be looked for once, in C.
        try:
            joined = "\x00".join(seq)
        except TypeError:
            joined = None
        if (joined is not None and "\n" not in joined and "\t" not in joined and "\r" not in joined
                and "     " not in joined and "" not in seq and not any(map(str.isspace, seq))):
            total = self.static_len + (len(joined) - n + 1 if self.simple
                                       else sum(c * len(v) for c, v in zip(self.counts, seq)))
            if total <= self.limit:
                values[self.slot:self.slot + n] = seq
                if self.named:
                    return [{"type": "text", "parameter_name": k, "text": v} for k, v in zip(self.keys, seq)]
                return [{"type": "text", "text": v} for v in seq]
        return self._fill_slowly(seq, values, issues)

    def _fill_slowly(self, seq: list, values: list, issues: list) -> list | None:
        """Value by value, recording every problem."""
        keys, named, slot = self.keys, self.named, self.slot
        params: list = []
        shown_all: list[str] = []
        for i, value in enumerate(seq):
            if type(value) is str:
                problem = text_problem(value)
                if problem:
                    issues.append(Issue(self.wheres[i], *problem))
                    continue
                param, shown = ({"type": "text", "parameter_name": keys[i], "text": value} if named
                                else {"type": "text", "text": value}), value
            else:
                got = _typed_text(value, self.wheres[i], keys[i] if named else None, issues)
                if got is None:
                    continue
                param, shown = got
            params.append(param)
            shown_all.append(shown)
        if len(params) < len(seq):
            return None
        total = self.static_len + sum(c * len(v) for c, v in zip(self.counts, shown_all))
        if total > self.limit:
            longest = max(range(len(seq)), key=lambda i: len(shown_all[i]))
            issues.append(Issue(self.wheres[longest],
                                f"makes the {self.label} {total} characters long once filled in, "
                                f"over Meta's {self.limit} (132005)",
                                f"shorten it: it is {len(shown_all[longest])} characters"))
            return None
        values[slot:slot + len(seq)] = shown_all
        return params


# -- header values -------------------------------------------------------------------------------------

def _media(kind: str, value: Any, where: str, issues: list) -> tuple[dict, str] | None:
    """An image/video/document header: (Cloud API parameter, the link or "") or None."""
    how = (f"pass {{'type': '{kind}', '{kind}': {{'link': 'https://...'}}}} "
           f"or {{'type': '{kind}', '{kind}': {{'id': '<media id>'}}}}")
    if value is MISSING or value is None:
        issues.append(Issue(where, f"is missing: the template has {a_or_an(kind)} header",
                            how))
        return None
    if isinstance(value, str):
        if value.startswith(("https://", "http://")):
            inner: Mapping = {"link": value}
        elif value.isdigit():
            inner = {"id": value}
        else:
            issues.append(Issue(where, f"is a string that is neither a URL nor a media id, "
                                       f"but the header is {a_or_an(kind)}", how))
            return None
    elif isinstance(value, Mapping):
        given_kind = value.get("type")
        if given_kind is None:
            inner = value                                  # {"link": ...} or {"id": ...} alone
        elif given_kind != kind:
            issues.append(Issue(where, f"is {a_or_an(str(given_kind))}, "
                                       f"but the template's header is {a_or_an(kind)}", how))
            return None
        else:
            inner = value.get(kind)
            if not isinstance(inner, Mapping):
                issues.append(Issue(where, f"has no {kind!r} object", how))
                return None
    else:
        issues.append(Issue(where, f"is {a_or_an(kind_of(value))}, not {a_or_an(kind)}", how))
        return None
    allowed = {"link", "id", "filename"} if kind == "document" else {"link", "id"}
    unknown = [str(k) for k in inner if k not in allowed]
    if unknown:
        issues.append(Issue(where, f"has {', '.join(map(repr, unknown))}, which a template header does not take",
                            f"keep only {', '.join(sorted(allowed))}"))
        return None
    link, media_id = inner.get("link"), nonempty(inner.get("id"))
    if link is not None and media_id is not None:
        issues.append(Issue(where, "has both a link and a media id", "give one of them"))
        return None
    if media_id is not None:
        out: dict = {"id": media_id}
        shown = ""
    elif isinstance(link, str) and link.startswith(("https://", "http://")) and not _HAS_SPACE(link):
        out = {"link": link}
        shown = link
    else:
        issues.append(Issue(where, "has no usable link or media id" if link is None
                            else "has a link that is not an http(s) URL", how))
        return None
    if kind == "document" and "filename" in inner:
        filename = nonempty(inner.get("filename"))
        if filename is None:
            issues.append(Issue(where, "has an empty filename",
                                "give the file's name, e.g. receipt.pdf, or leave it out"))
            return None
        out["filename"] = filename
    return {"type": kind, kind: out}, shown


def _coordinate(value: Any, low: float, high: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number) and low <= number <= high


def _location(value: Any, where: str, issues: list) -> tuple[dict, tuple] | None:
    how = ("pass {'type': 'location', 'location': {'latitude': 40.4168, 'longitude': -3.7038, "
           "'name': ..., 'address': ...}}")
    if isinstance(value, Mapping) and value.get("type") is not None:
        if value.get("type") != "location":
            issues.append(Issue(where, f"is a {value.get('type')}, but the template's header is a location", how))
            return None
        value = value.get("location")
    if not isinstance(value, Mapping):
        issues.append(Issue(where, "is missing: the template has a location header" if value in (None, MISSING)
                            else f"is a {kind_of(value)}, not a location", how))
        return None
    bad = []
    if not _coordinate(value.get("latitude"), -90, 90):
        bad.append("latitude (-90 to 90)")
    if not _coordinate(value.get("longitude"), -180, 180):
        bad.append("longitude (-180 to 180)")
    for key in ("name", "address"):
        if nonempty(value.get(key)) is None:
            bad.append(key)
    if bad:
        issues.append(Issue(where, "is a location with a missing or invalid " + ", ".join(bad), how))
        return None
    out = {"latitude": value["latitude"], "longitude": value["longitude"],
           "name": nonempty(value["name"]), "address": nonempty(value["address"])}
    return {"type": "location", "location": out}, (out["name"], out["address"], out["latitude"], out["longitude"])


def _product(value: Any, where: str, issues: list) -> dict | None:
    how = "pass {'type': 'product', 'product': {'product_retailer_id': '<SKU>', 'catalog_id': '<catalog id>'}}"
    if isinstance(value, Mapping) and value.get("type") is not None:
        if value.get("type") != "product":
            issues.append(Issue(where, f"is a {value.get('type')}, but the template's header is a product", how))
            return None
        value = value.get("product")
    if not isinstance(value, Mapping):
        issues.append(Issue(where, "is missing: the template has a product header" if value in (None, MISSING)
                            else f"is a {kind_of(value)}, not a product", how))
        return None
    sku, catalog = nonempty(value.get("product_retailer_id")), nonempty(value.get("catalog_id"))
    if sku is None or catalog is None:
        issues.append(Issue(where, "needs both product_retailer_id and catalog_id", how))
        return None
    return {"type": "product", "product": {"product_retailer_id": sku, "catalog_id": catalog}}


class Header:
    """A header: text (with or without placeholders), image, video, document, location or product."""
    __slots__ = ("kind", "vars", "where", "slot")

    def __init__(self, kind: str, where: str, vars_: Vars | None = None, slot: int = -1):
        self.kind, self.where, self.vars, self.slot = kind, where, vars_, slot

    def fill(self, given: Any, values: list, issues: list) -> dict | None:
        """The header component, or None (nothing to send, or a problem recorded in ``issues``)."""
        kind = self.kind
        if kind == "text":
            if self.vars is not None:
                params = self.vars.fill(given, values, issues)
                return {"type": "header", "parameters": params} if params else None
            if given not in (MISSING, None, "", [], {}):
                issues.append(Issue(self.where, "is given, but the template's header has no parameters",
                                    "remove it"))
            return None
        if kind in MEDIA:
            got = _media(kind, given, self.where, issues)
            if got is None:
                return None
            values[self.slot] = got[1] + "\n\n" if got[1] else ""
            return {"type": "header", "parameters": [got[0]]}
        if kind == "location":
            got = _location(given, self.where, issues)
            if got is None:
                return None
            name, address, lat, lng = got[1]
            values[self.slot] = f"{name}, {address}"
            values[self.slot + 1] = f"{name}, {address}: https://maps.google.com/?q={lat},{lng}"
            return {"type": "header", "parameters": [got[0]]}
        param = _product(given, self.where, issues)
        return {"type": "header", "parameters": [param]} if param else None
