"""Template buttons: which take a value when sending (URL suffix, quick reply payload, coupon code,
one-time code, catalog, multi-product and flow actions), how it is checked, and how each button reads
in the thread and in plain text."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from templates_catalog.render.common import (
    CODE_MAX, MISSING, MPM_PRODUCTS_MAX, MPM_SECTIONS_MAX, MPM_TITLE_MAX, URL_MAX, Issue, esc, kind_of, nonempty,
)


def _button_value(value: Any, kind: str, field: str, where: str, issues: list, how: str) -> str | None:
    """A button's single string value, given as the string or as {'type': kind, field: ...}."""
    if type(value) is str and value and not value.isspace():
        return value
    if isinstance(value, Mapping):
        if value.get("type") != kind:
            issues.append(Issue(where, f"has type {value.get('type')!r}",
                                f"pass the value as a string, or as {{'type': '{kind}', '{field}': ...}}"))
            return None
        value = value.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        issues.append(Issue(where, "is missing" if value in (None, MISSING) else
                            "is empty" if isinstance(value, str) else f"is a {kind_of(value)}, not a string", how))
        return None
    return value


def _action(value: Any, where: str, issues: list, fields: tuple[str, ...]) -> Mapping | None:
    """The 'action' object of a catalog, multi-product or flow button."""
    if isinstance(value, Mapping) and value.get("type") == "action":
        value = value.get("action")
    if not isinstance(value, Mapping) or any(k not in fields for k in value):
        issues.append(Issue(where, "is not an action object",
                            "pass {'type': 'action', 'action': {" + ", ".join(f"'{f}': ..." for f in fields) + "}}"))
        return None
    return value


def _products(value: Any, where: str, issues: list) -> dict | None:
    action = _action(value, where, issues, ("thumbnail_product_retailer_id", "sections"))
    if action is None:
        return None
    thumbnail, sections = nonempty(action.get("thumbnail_product_retailer_id")), action.get("sections")
    how = ("pass {'thumbnail_product_retailer_id': '<SKU>', 'sections': [{'title': 'Popular', "
           "'product_items': ['<SKU>', ...]}]}")
    if thumbnail is None or not isinstance(sections, (list, tuple)) or not 1 <= len(sections) <= MPM_SECTIONS_MAX:
        issues.append(Issue(where, f"needs a thumbnail_product_retailer_id and 1 to {MPM_SECTIONS_MAX} sections", how))
        return None
    out_sections, count = [], 0
    for number, section in enumerate(sections):
        items = section.get("product_items") if isinstance(section, Mapping) else None
        title = section.get("title") if isinstance(section, Mapping) else None
        skus = [nonempty(i.get("product_retailer_id") if isinstance(i, Mapping) else i) for i in items or ()]
        if not skus or None in skus:
            issues.append(Issue(f"{where} section {number}", "has no products, or a product without an id", how))
            return None
        if (len(sections) > 1 or title is not None) and (nonempty(title) is None or len(title) > MPM_TITLE_MAX):
            issues.append(Issue(f"{where} section {number}",
                                f"needs a title of 1 to {MPM_TITLE_MAX} characters (every section does, "
                                "when there are several)", "set 'title'"))
            return None
        count += len(skus)
        entry: dict = {"title": title} if title is not None else {}
        entry["product_items"] = [{"product_retailer_id": sku} for sku in skus]
        out_sections.append(entry)
    if count > MPM_PRODUCTS_MAX:
        issues.append(Issue(where, f"lists {count} products, over Meta's {MPM_PRODUCTS_MAX} across all sections",
                            "send fewer products"))
        return None
    return {"type": "action", "action": {"thumbnail_product_retailer_id": thumbnail, "sections": out_sections}}


class Button:
    """One of the template's buttons: what it takes when sending, and how it reads."""
    __slots__ = ("index", "kind", "sub_type", "accepts", "where", "slot", "prefix", "rest", "label", "url")

    # kind -> (sub_type sent, sub_types a caller may name it by)
    SUB_TYPES = {
        "quick_reply": ("quick_reply", {"quick_reply"}),
        "url": ("url", {"url"}),
        "copy_code": ("copy_code", {"copy_code"}),
        # An authentication code button is sent as a url button with the code (authentication-templates).
        "otp": ("url", {"url", "otp", "copy_code", "one_tap", "zero_tap"}),
        "catalog": ("catalog", {"catalog"}),
        "mpm": ("mpm", {"mpm"}),
        "flow": ("flow", {"flow"}),
    }

    NAMES = {"quick_reply": "quick reply", "url": "URL", "url_static": "fixed URL", "phone": "phone number",
             "copy_code": "copy code", "otp": "one-time code", "catalog": "catalog", "mpm": "multi-product",
             "flow": "flow", "spm": "single-product"}

    def __init__(self, index: int, kind: str, where: str, label: str, slot: int = -1,
                 prefix: str = "", rest: str = "", url: str = ""):
        self.index, self.kind, self.where, self.label, self.slot = index, kind, where, label, slot
        self.prefix, self.rest, self.url = prefix, rest, url
        self.sub_type, self.accepts = self.SUB_TYPES.get(kind, (None, set()))

    @property
    def template_url(self) -> str:
        return f"{self.prefix}{{{{1}}}}{self.rest}"

    def component(self, params: list) -> dict:
        return {"type": "button", "sub_type": self.sub_type, "index": str(self.index), "parameters": params}

    def fill(self, given: Any, sub_type: Any, values: list, issues: list, code: str | None) -> dict | None:
        kind, where = self.kind, self.where
        if (sub_type is not None and given is not MISSING and sub_type not in self.accepts
                and str(sub_type).lower() not in self.accepts):
            name = self.NAMES.get(kind, kind.replace("_", " "))
            issues.append(Issue(where, f"is given as {sub_type!r}, but the template's button {self.index} is "
                                       f"a {name} button", "fix the index or sub_type"))
            return None
        if kind == "url":
            suffix = (given if type(given) is str and given and not given.isspace()
                      else _button_value(given, "text", "text", f"{where} url suffix", issues,
                                         f"give the part that replaces {{{{1}}}} in {self.template_url}"))
            if suffix is None:
                return None
            url_len = len(self.prefix) + len(suffix) + len(self.rest)
            if self.prefix and suffix.startswith(("http://", "https://")):
                issues.append(Issue(f"{where} url suffix", "is a whole URL",
                                    f"pass only the part that replaces {{{{1}}}} in {self.template_url}"))
            elif " " in suffix or not suffix.isprintable():
                issues.append(Issue(f"{where} url suffix", "contains a space or a control character",
                                    "URL-encode it (urllib.parse.quote)"))
            elif url_len > URL_MAX:
                issues.append(Issue(f"{where} url suffix",
                                    f"makes the URL {url_len} characters, over Meta's {URL_MAX}", "shorten it"))
            else:
                values[self.slot] = suffix
                return self.component([{"type": "text", "text": suffix}])
            return None
        if kind == "quick_reply":
            if given is MISSING:                      # optional: without it Meta sends the button's text back
                return None
            payload = _button_value(given, "payload", "payload", f"{where} quick reply payload", issues,
                                    "give a non-empty payload, or leave the button out")
            return self.component([{"type": "payload", "payload": payload}]) if payload is not None else None
        if kind == "copy_code":
            coupon = _button_value(given, "coupon_code", "coupon_code", f"{where} coupon code", issues,
                                   "give the code the button copies")
            if coupon is None:
                return None
            if len(coupon) > CODE_MAX:
                issues.append(Issue(f"{where} coupon code", f"is {len(coupon)} characters, over Meta's {CODE_MAX}",
                                    "use a shorter code (limited-time-offer-templates)"))
                return None
            if not (coupon.isascii() and coupon.isalnum()):
                issues.append(Issue(f"{where} coupon code", "has characters other than letters and digits",
                                    "use only letters and digits: Meta accepts nothing else (coupon-templates)"))
                return None
            values[self.slot] = coupon
            return self.component([{"type": "coupon_code", "coupon_code": coupon}])
        if kind == "otp":
            if given is MISSING:
                if code is None:                       # the body's code is missing or wrong: already reported
                    return None
                otp = code
            else:
                otp = _button_value(given, "text", "text", f"{where} one-time code", issues,
                                    "give the same code as body {{1}}, or leave the button out")
                if otp is None:
                    return None
                if code is not None and otp != code:
                    issues.append(Issue(f"{where} one-time code", "differs from the code in body {{1}}",
                                        "send the same code in both (authentication-templates), "
                                        "or leave the button out"))
                    return None
            if len(otp) > CODE_MAX:                     # reported where the caller gave the code
                issues.append(Issue("body {{1}}" if given is MISSING else f"{where} one-time code",
                                    f"is a one-time code of {len(otp)} characters, over Meta's {CODE_MAX}",
                                    "use a shorter code (authentication-templates)"))
                return None
            return self.component([{"type": "text", "text": otp}])
        if kind == "catalog":
            if given is MISSING:                      # optional: Meta then shows the catalog's first product
                return None
            if isinstance(given, (str, int)) and not isinstance(given, bool):
                given = {"thumbnail_product_retailer_id": given}
            action = _action(given, f"{where} catalog thumbnail", issues, ("thumbnail_product_retailer_id",))
            thumbnail = nonempty(action.get("thumbnail_product_retailer_id")) if action is not None else None
            if action is not None and thumbnail is None:
                issues.append(Issue(f"{where} catalog thumbnail", "has no thumbnail_product_retailer_id",
                                    "give a product id (SKU) or leave the button out"))
            if thumbnail is None:
                return None
            return self.component([{"type": "action", "action": {"thumbnail_product_retailer_id": thumbnail}}])
        if kind == "mpm":
            if given is MISSING:
                issues.append(Issue(f"{where} products", "are missing: the template has a multi-product button",
                                    "pass {'thumbnail_product_retailer_id': '<SKU>', 'sections': [...]}"))
                return None
            param = _products(given, f"{where} products", issues)
            return self.component([param]) if param is not None else None
        if kind == "flow":
            if given is MISSING:
                return None
            if isinstance(given, str):
                given = {"flow_token": given}
            action = _action(given, f"{where} flow", issues, ("flow_token", "flow_action_data"))
            if action is None:
                return None
            if "flow_action_data" in action and not isinstance(action["flow_action_data"], Mapping):
                issues.append(Issue(f"{where} flow", "has flow_action_data that is not an object",
                                    "pass the first screen's data as a mapping"))
                return None
            return self.component([{"type": "action", "action": dict(action)}])
        # url without a variable, phone number, single-product view, and the like: nothing to send.
        if given is not MISSING:
            issues.append(Issue(where, f"is given, but the template's button {self.index} takes no parameter",
                                "remove it"))
        return None

    def lines(self, slot_fmt: str) -> tuple[str, str | None]:
        """(line in the thread text, line in the plain-text version or None) as str.format templates."""
        label, kind = esc(self.label), self.kind
        if kind == "url":
            url = esc(self.prefix) + slot_fmt + esc(self.rest)
            return f"[{label}] {url}", f"{label}: {url}"
        if kind in ("url_static", "phone"):
            return f"[{label}] {esc(self.url)}", f"{label}: {esc(self.url)}"
        if kind == "copy_code":
            return f"[{label}] {slot_fmt}", f"{label}: {slot_fmt}"
        return f"[{label}]", None


def buttons_given(given: Any, where_prefix: str, issues: list) -> dict[int, tuple[Any, Any]]:
    """index -> (value or MISSING, sub_type or None) from a list of entries or an {index: value} mapping."""
    out: dict[int, tuple[Any, Any]] = {}
    if given is MISSING or given is None:
        return out
    if type(given) is list:
        # The hot path: [{"index": 0, "sub_type": ..., "parameters": [value]}, ...], read once.
        for entry in given:
            if type(entry) is not dict:
                break
            index, params = entry.get("index"), entry.get("parameters")
            if type(index) is not int or index < 0 or type(params) is not list or len(params) != 1 or index in out:
                break
            out[index] = (params[0], entry.get("sub_type"))
        else:
            return out
        out = {}
    if isinstance(given, Mapping):
        entries = [({"index": k, "parameters": [v]}) for k, v in given.items()]
    elif isinstance(given, (list, tuple)):
        entries = list(given)
    else:
        issues.append(Issue(f"{where_prefix}buttons", f"is a {kind_of(given)}",
                            "pass [{'index': 0, 'sub_type': 'url', 'parameters': ['...']}] or {0: '...'}"))
        return out
    for number, entry in enumerate(entries):
        index = entry.get("index") if isinstance(entry, Mapping) else None
        if isinstance(index, str) and index.isdigit():
            index = int(index)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            issues.append(Issue(f"{where_prefix}buttons[{number}]", "has no button index",
                                "give 'index': the button's position in the template, from 0"))
            continue
        if index in out:
            issues.append(Issue(f"{where_prefix}button {index}", "is given twice", "give each button once"))
            continue
        params = entry.get("parameters", MISSING)
        if type(params) is list or isinstance(params, tuple):
            if len(params) > 1:
                issues.append(Issue(f"{where_prefix}button {index}", f"has {len(params)} parameters",
                                    "give one: a button takes a single value"))
                continue
            params = params[0] if params else MISSING
        out[index] = (params, entry.get("sub_type"))
    return out
