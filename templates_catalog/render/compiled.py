"""A definition compiled once: its header, body, footer, buttons, offer and carousel cards parsed, and
the two text views laid out as ``str.format`` templates whose fields are the values' slots."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from templates_catalog.render.buttons import Button, buttons_given
from templates_catalog.render.common import (
    BODY_ONLY_TEXT_MAX, BODY_TEXT_MAX, CARD_BODY_TEXT_MAX, CAROUSEL_CARDS_MAX, HEADER_TEXT_MAX, MEDIA, MISSING,
    PLACEHOLDER, Issue, Rendered, RenderError, esc, kind_of,
)
from templates_catalog.render.values import Header, Vars

_NOT_GIVEN = (MISSING, None)                          # a button's (value, sub_type) when none is given
_PARTS = frozenset({"header", "body", "buttons", "limited_time_offer", "cards"})

# Authentication templates carry no body text: Meta writes it (English shown; Meta localises it).
_AUTH_BODY = "{{1}} is your verification code."
_AUTH_SECURITY = " For your security, do not share this code."
_AUTH_EXPIRY = "This code expires in {minutes} minutes."


class _Block:
    """A header, body, footer and buttons (a whole template, or one carousel card), compiled."""
    __slots__ = ("prefix", "header", "body", "buttons", "text_parts", "sms_parts", "sms_lead", "nslots",
                 "auth")

    def __init__(self, prefix: str, components: list, named: bool, auth: bool, body_limit: int,
                 allow_footer: bool, issues: list):
        self.prefix, self.auth = prefix, auth
        self.header: Header | None = None
        self.body: Vars | None = None
        self.buttons: list[Button] = []
        self.nslots = 0
        self.text_parts: dict[str, str] = {}           # header, body, footer, buttons -> format template
        self.sms_parts: dict[str, str] = {}
        self.sms_lead = ""                             # a media header's link, when it has one
        for comp in components:
            if not isinstance(comp, Mapping):
                issues.append(Issue(f"template {prefix}components", "holds something that is not a component",
                                    "fix the definition"))
                continue
            kind = str(comp.get("type") or "").upper()
            if kind == "HEADER":
                self._header(comp, named, issues)
            elif kind == "BODY":
                self._body(comp, named, auth, body_limit, issues)
            elif kind == "FOOTER" and allow_footer:
                footer = comp.get("text")
                if not isinstance(footer, str) and isinstance(comp.get("code_expiration_minutes"), int):
                    footer = _AUTH_EXPIRY.format(minutes=comp["code_expiration_minutes"])
                if isinstance(footer, str) and footer:
                    self.text_parts["footer"] = self.sms_parts["footer"] = esc(footer)
            elif kind == "BUTTONS":
                self._buttons(comp.get("buttons"), issues)
            elif kind not in ("LIMITED_TIME_OFFER", "CAROUSEL"):
                issues.append(Issue(f"template {prefix}{kind.lower() or 'component'}",
                                    "is a component the renderer does not know", "render it another way"))
        if self.body is None and "body" not in self.text_parts and not prefix:
            issues.append(Issue("template body", "is missing", "a template needs a BODY component"))

    def _slot(self, count: int = 1) -> int:
        first = self.nslots
        self.nslots += count
        return first

    def _header(self, comp: Mapping, named: bool, issues: list) -> None:
        where = f"{self.prefix}header"
        fmt = str(comp.get("format") or "TEXT").lower()
        if fmt == "text":
            text = comp.get("text") if isinstance(comp.get("text"), str) else ""
            if PLACEHOLDER.search(text):
                vars_ = Vars(where, text, named, HEADER_TEXT_MAX, 0, issues)
                vars_.slot = self._slot(len(vars_.keys))
                self.header = Header("text", where, vars_)
                self.text_parts["header"] = self.sms_parts["header"] = vars_.fmt(text)
            else:
                self.header = Header("text", where)
                if text:
                    self.text_parts["header"] = self.sms_parts["header"] = esc(text)
        elif fmt in MEDIA:
            self.header = Header(fmt, where, slot=self._slot())
            self.text_parts["header"] = f"[{fmt}]"
            self.sms_lead = "{%d}" % self.header.slot      # "<link>\n\n", or "" for an uploaded media id
        elif fmt == "location":
            self.header = Header("location", where, slot=self._slot(2))
            self.text_parts["header"] = "[location: {%d}]" % self.header.slot
            self.sms_parts["header"] = "{%d}" % (self.header.slot + 1)
        elif fmt == "product":
            self.header = Header("product", where)
            self.text_parts["header"] = "[product]"
        else:
            issues.append(Issue(where, f"has format {fmt.upper()}, which the renderer does not know",
                                "use TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION or PRODUCT"))

    def _body(self, comp: Mapping, named: bool, auth: bool, limit: int, issues: list) -> None:
        where = f"{self.prefix}body"
        text = comp.get("text")
        if not isinstance(text, str) and auth:
            text = _AUTH_BODY + (_AUTH_SECURITY if comp.get("add_security_recommendation") else "")
            named = False
        if not isinstance(text, str) or not text:
            issues.append(Issue(f"template {where}", "has no text", "give the BODY component its text"))
            return
        if PLACEHOLDER.search(text):
            vars_ = Vars(where, text, named, limit, 0, issues)
            vars_.slot = self._slot(len(vars_.keys))
            self.body = vars_
            self.text_parts["body"] = self.sms_parts["body"] = vars_.fmt(text)
        else:
            self.text_parts["body"] = self.sms_parts["body"] = esc(text)

    def _buttons(self, buttons: Any, issues: list) -> None:
        if not isinstance(buttons, list):
            issues.append(Issue(f"template {self.prefix}buttons", "is not a list", "fix the definition"))
            return
        text_lines, sms_lines, replies = [], [], 0
        for index, spec in enumerate(buttons):
            where = f"{self.prefix}button {index}"
            spec = spec if isinstance(spec, Mapping) else {}
            kind = str(spec.get("type") or "").upper()
            label = spec.get("text") if isinstance(spec.get("text"), str) else ""
            if kind == "URL":
                url = spec.get("url") if isinstance(spec.get("url"), str) else ""
                found = PLACEHOLDER.search(url)
                if found:
                    button = Button(index, "url", where, label, self._slot(),
                                     prefix=url[:found.start()], rest=url[found.end():])
                else:
                    button = Button(index, "url_static", where, label, url=url)
            elif kind == "PHONE_NUMBER":
                phone = str(spec.get("phone_number") or "")
                button = Button(index, "phone", where, label, url=phone if phone.startswith("+") else "+" + phone)
            elif kind == "QUICK_REPLY":
                button = Button(index, "quick_reply", where, label)
            elif kind == "COPY_CODE":
                button = Button(index, "copy_code", where, label or "Copy offer code", self._slot())
            elif kind == "OTP":
                button = Button(index, "otp", where, label or "Copy code")
            elif kind in ("CATALOG", "MPM", "FLOW"):
                button = Button(index, kind.lower(), where, label)
            else:                                      # SPM, VOICE_CALL, ...: nothing to fill in
                button = Button(index, kind.lower() or "unknown", where, label)
            self.buttons.append(button)
            text_line, sms_line = button.lines("{%d}" % button.slot)
            text_lines.append(text_line)
            if button.kind == "quick_reply":
                replies += 1
                sms_line = f"{replies}. {esc(label)}"
            if sms_line is not None:
                sms_lines.append(sms_line)
        if text_lines:
            self.text_parts["buttons"] = "\n".join(text_lines)
        if sms_lines:
            self.sms_parts["buttons"] = "\n".join(sms_lines)

    def fill(self, header: Any, body: Any, buttons: Any, values: list, issues: list) -> list:
        """The Cloud API components for these values (header, body, then buttons)."""
        components = []
        if self.header is not None:
            comp = self.header.fill(header, values, issues)
            if comp is not None:
                components.append(comp)
        elif header not in (MISSING, None):
            issues.append(Issue(f"{self.prefix}header", "is given, but the template has no header", "remove it"))
        code = None
        if self.body is not None:
            params = self.body.fill(body, values, issues)
            if params:
                components.append({"type": "body", "parameters": params})
                if self.auth:
                    code = values[self.body.slot]
        elif body not in (MISSING, None, [], {}):
            issues.append(Issue(f"{self.prefix}body", "is given, but the template's body has no parameters",
                                "remove it"))
        given = buttons_given(buttons, self.prefix, issues)
        for button in self.buttons:
            value, sub_type = given.pop(button.index, _NOT_GIVEN)
            comp = button.fill(value, sub_type, values, issues, code)
            if comp is not None:
                components.append(comp)
        for index in given:
            count = len(self.buttons)
            issues.append(Issue(f"{self.prefix}button {index}", "is not in the template",
                                f"the template has {count} button{'' if count == 1 else 's'}"
                                + (f" (0 to {count - 1})" if count else "")))
        return components


@dataclass(frozen=True, slots=True)
class _Offer:
    """A LIMITED_TIME_OFFER component: its heading, and whether the expiry is shown."""
    text: str
    has_expiration: bool
    slot: int


class _Carousel:
    __slots__ = ("cards", "fixed_count", "slot")

    def __init__(self, cards: list[_Block], fixed_count: bool, slot: int):
        self.cards, self.fixed_count, self.slot = cards, fixed_count, slot


class Compiled:
    """A definition compiled for rendering; ``render`` checks values and builds the three views."""
    __slots__ = ("name", "language", "category", "parameter_format", "block", "offer", "carousel",
                 "nslots", "text_fmt", "sms_fmt")

    def __init__(self, definition: Mapping):
        issues: list[Issue] = []
        if not isinstance(definition, Mapping):
            raise RenderError([Issue("template", f"is a {kind_of(definition)}, not a definition",
                                     "pass the template as Meta's JSON (a mapping)")])
        name = definition.get("name")
        if not isinstance(name, str) or not name:
            issues.append(Issue("template name", "is missing", "give the template's name"))
        language = definition.get("language")
        self.name = name
        self.language = language if isinstance(language, str) and language else None
        self.category = str(definition.get("category") or "").upper()
        components = definition.get("components")
        if not isinstance(components, list):
            raise RenderError(issues + [Issue("template components", "are missing", "give the components list")])
        self.parameter_format = self._format(definition, components)
        named = self.parameter_format == "NAMED"
        auth = self.category == "AUTHENTICATION"
        others = [c for c in components if isinstance(c, Mapping) and str(c.get("type") or "").upper() != "BODY"]
        self.block = _Block("", components, named, auth, BODY_TEXT_MAX if others else BODY_ONLY_TEXT_MAX,
                            True, issues)
        self.nslots = self.block.nslots
        self.offer = None
        self.carousel = None
        text_parts = self.block.text_parts
        sms_parts = self.block.sms_parts
        offer_part = carousel_part = None
        for comp in components:
            kind = str(comp.get("type") or "").upper() if isinstance(comp, Mapping) else ""
            if kind == "LIMITED_TIME_OFFER":
                spec = comp.get("limited_time_offer") if isinstance(comp.get("limited_time_offer"), Mapping) else {}
                self.offer = _Offer(str(spec.get("text") or ""), spec.get("has_expiration") is True, self.nslots)
                self.nslots += 1
                offer_part = esc(self.offer.text) + "{%d}" % self.offer.slot
            elif kind == "CAROUSEL":
                self.carousel = self._carousel(comp.get("cards"), named, issues)
                carousel_part = "{%d}" % self.carousel.slot
                # Product cards have nothing to say in plain text: the slot carries its own separator.
                sms_parts = {**sms_parts, "body": sms_parts.get("body", "") + "{%d}" % (self.carousel.slot + 1)}
        if issues:
            raise RenderError(issues)
        order = ("header", "offer", "body", "carousel", "footer", "buttons")
        extra = {"offer": offer_part, "carousel": carousel_part}
        self.text_fmt = "\n\n".join(p for p in (text_parts.get(k) or extra.get(k) for k in order) if p)
        self.sms_fmt = self.block.sms_lead + "\n\n".join(
            p for p in (sms_parts.get(k) or (extra.get(k) if k == "offer" else None) for k in order) if p)

    @staticmethod
    def _format(definition: Mapping, components: list) -> str:
        declared = str(definition.get("parameter_format") or "").upper()
        if declared in ("NAMED", "POSITIONAL"):
            return declared
        texts = [c.get("text") for c in components if isinstance(c, Mapping)
                 and str(c.get("type") or "").upper() in ("HEADER", "BODY") and isinstance(c.get("text"), str)]
        keys = [m.group(1) for t in texts for m in PLACEHOLDER.finditer(t)]
        return "NAMED" if any(not k.isdigit() for k in keys) else "POSITIONAL"

    def _carousel(self, cards: Any, named: bool, issues: list) -> _Carousel:
        slot = self.nslots
        self.nslots += 2                               # the cards as the thread shows them, and as plain text
        if not isinstance(cards, list) or not cards or not all(isinstance(c, Mapping) for c in cards):
            issues.append(Issue("template carousel", "has no cards", "give the CAROUSEL component its cards"))
            return _Carousel([], True, slot)
        first = [c for c in cards[0].get("components") or () if isinstance(c, Mapping)]
        products = any(str(c.get("type") or "").upper() == "HEADER"
                       and str(c.get("format") or "").upper() == "PRODUCT" for c in first)
        # Product cards all look alike and a message may carry up to 10 of them; media cards are sent one
        # for one as the template defines them (product-card-carousel-templates, media-card-carousel-templates).
        count = CAROUSEL_CARDS_MAX if products else len(cards)
        blocks = []
        for number in range(count):
            spec = cards[min(number, len(cards) - 1)]
            comps = spec.get("components") if isinstance(spec.get("components"), list) else []
            card = _Block(f"card {number} ", comps, named, False, CARD_BODY_TEXT_MAX, False,
                          issues if number < len(cards) else [])
            card_text = "\n".join(card.text_parts[k] for k in ("header", "body", "buttons") if k in card.text_parts)
            card_sms = card.sms_lead + "\n".join(card.sms_parts[k] for k in ("header", "body", "buttons")
                                                 if k in card.sms_parts)
            card.text_parts = {"card": card_text}
            card.sms_parts = {"card": card_sms}
            blocks.append(card)
        return _Carousel(blocks, not products, slot)

    def _cards(self, given: Any, values: list, issues: list) -> dict | None:
        carousel = self.carousel
        need = len(carousel.cards)
        how = "pass 'cards': [{'header': ..., 'body': ..., 'buttons': ...}, ...]"
        if not isinstance(given, (list, tuple)) or not given:
            issues.append(Issue("cards", "are missing" if given in (MISSING, None) else f"is a {kind_of(given)}",
                                how + (f", one for each of the template's {need} cards" if carousel.fixed_count
                                       else f", 1 to {need} product cards")))
            return None
        if carousel.fixed_count and len(given) != need:
            issues.append(Issue("cards", f"has {len(given)} card{'' if len(given) == 1 else 's'}, "
                                         f"but the template has {need}",
                                "give one entry per card, in order"))
            return None
        if len(given) > need:
            issues.append(Issue("cards", f"has {len(given)} cards, over Meta's {need}", "send fewer cards"))
            return None
        cards, texts, smss = [], [], []
        for number, entry in enumerate(given):
            block = carousel.cards[number]
            if not isinstance(entry, Mapping) or any(k not in ("header", "body", "buttons") for k in entry):
                issues.append(Issue(f"card {number}", "is not a mapping of header, body and buttons", how))
                continue
            local = [""] * block.nslots
            found = len(issues)
            comps = block.fill(entry.get("header", MISSING), entry.get("body", MISSING),
                               entry.get("buttons", MISSING), local, issues)
            if len(issues) == found:
                cards.append({"card_index": number, "components": comps})
                texts.append(block.text_parts["card"].format(*local))
                smss.append(block.sms_parts["card"].format(*local))
        values[carousel.slot] = "\n\n".join(texts)
        sms = "\n\n".join(s for s in smss if s)
        values[carousel.slot + 1] = "\n\n" + sms if sms else ""
        return {"type": "carousel", "cards": cards}

    def render(self, parameters: Any = None, *, language: str | None = None) -> Rendered:
        """The three views of this template filled with ``parameters``; RenderError lists every problem."""
        issues: list[Issue] = []
        header = buttons = offer = cards = MISSING
        if type(parameters) is dict or isinstance(parameters, Mapping):
            if parameters and _PARTS.issuperset(parameters):
                header = parameters.get("header", MISSING)
                body = parameters.get("body", MISSING)
                buttons = parameters.get("buttons", MISSING)
                offer = parameters.get("limited_time_offer", MISSING)
                cards = parameters.get("cards", MISSING)
            else:
                body = parameters                      # a named body's values alone
        elif parameters is None or isinstance(parameters, (list, tuple)):
            body = MISSING if parameters is None else parameters
        else:
            issues.append(Issue("parameters", f"is a {kind_of(parameters)}",
                                "pass the body's values (a list or mapping), or {'header', 'body', 'buttons', ...}"))
            raise RenderError(issues)
        values: list = [""] * self.nslots
        components = self.block.fill(header, body, buttons, values, issues)
        if self.offer is not None:
            comp = self._offer(offer, values, issues)
            if comp is not None:
                components.insert(self._after_body(components), comp)
        elif offer is not MISSING:
            issues.append(Issue("limited_time_offer", "is given, but the template has no limited-time offer",
                                "remove it"))
        if self.carousel is not None:
            comp = self._cards(cards, values, issues)
            if comp is not None:
                components.insert(self._after_body(components), comp)
        elif cards is not MISSING:
            issues.append(Issue("cards", "are given, but the template is not a carousel", "remove them"))
        code = language or self.language
        if not isinstance(code, str) or not code.strip():
            issues.append(Issue("language", "is missing", "pass language= or give the definition a language"))
        if issues:
            raise RenderError(issues)
        cloud = {"name": self.name, "language": {"code": code, "policy": "deterministic"}, "components": components}
        return Rendered(cloud, self.text_fmt.format(*values), self.sms_fmt.format(*values))

    @staticmethod
    def _after_body(components: list) -> int:
        """Where the offer or carousel goes: after the header and body, before the buttons (as Meta's examples)."""
        for position, comp in enumerate(components):
            if comp["type"] == "button":
                return position
        return len(components)

    def _offer(self, given: Any, values: list, issues: list) -> dict | None:
        where = "limited_time_offer expiration"
        if isinstance(given, Mapping) and given.get("type") == "limited_time_offer":
            given = given.get("limited_time_offer")
        if isinstance(given, Mapping):
            given = given.get("expiration_time_ms", MISSING)
        if isinstance(given, bool) or not isinstance(given, int) or given <= 0:
            issues.append(Issue(where, "is missing" if given in (MISSING, None)
                                else "is not a UNIX time in milliseconds",
                                "pass {'limited_time_offer': {'expiration_time_ms': 1767225600000}}"
                                " (limited-time-offer-templates)"))
            return None
        if self.offer.has_expiration:
            try:
                moment = datetime.fromtimestamp(given / 1000, tz=timezone.utc)
            except (OverflowError, OSError, ValueError):
                issues.append(Issue(where, "is not a UNIX time in milliseconds", "pass a time such as 1767225600000"))
                return None
            values[self.offer.slot] = f" (until {moment:%Y-%m-%d %H:%M} UTC)"
        return {"type": "limited_time_offer",
                "parameters": [{"type": "limited_time_offer", "limited_time_offer": {"expiration_time_ms": given}}]}
