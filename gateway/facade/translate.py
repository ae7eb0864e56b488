"""A Cloud API ``/messages`` body, read into what the gateway sends (protocols.md B1).

Every type Meta takes is read here: text, the five media kinds, template (with every parameter kind),
interactive (any sub-type), location, contacts, reaction, and the mark-as-read / typing-indicator body.
The gateway's send path builds the Cloud API body again from the result, so what reaches Meta is what the
integration sent (ids aside): interactive objects and template components travel as given, the rest is
Meta's own fields under the gateway's names. A body Meta would refuse for its shape raises ``GraphError``
code 100 naming the parameter, as Meta does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.facade.errors import GraphError

MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
CAPTIONED = ("image", "video", "document")
INTERACTIVE_HEADER_TEXT_MAX = 60
BIZ_OPAQUE_MAX = 512


@dataclass
class Outbound:
    """One message as the facade hands it to the send gate."""
    kind: str
    content: dict
    to: str                                   # as the integration wrote it (echoed in contacts[].input)
    reply_to: str | None = None               # context.message_id: a wamid (ours or the provider's)
    react_to: str | None = None               # reaction.message_id
    template: tuple[str, str] | None = None   # (name, language code), to read its category
    check_parameters: Any = None              # the components as the catalog renderer reads them, when it can
    extra: dict = field(default_factory=dict)


@dataclass
class MarkRead:
    message_id: str
    typing_indicator: dict | None = None


def required(param: str) -> GraphError:
    return GraphError(100, f"The parameter {param} is required.", f"add '{param}' to the request body "
                      "(https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages)")


def invalid(param: str, details: str) -> GraphError:
    return GraphError(100, f"Invalid parameter: {param}", details)


def _object(body: dict, key: str, where: str | None = None) -> dict:
    value = body.get(key)
    name = where or key
    if value is None:
        raise required(name)
    if not isinstance(value, dict):
        raise invalid(name, f"'{name}' must be a JSON object")
    return value


def _string(obj: dict, key: str, where: str, *, optional: bool = False, empty: bool = False,
            max_len: int | None = None) -> str | None:
    value = obj.get(key)
    if value is None:
        if optional:
            return None
        raise required(where)
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise invalid(where, f"'{where}' must be a{'' if empty else ' non-empty'} string")
    if max_len is not None and len(value) > max_len:
        raise invalid(where, f"'{where}' takes at most {max_len} characters; it has {len(value)}")
    return value


def read(body: Any) -> Outbound | MarkRead:
    if not isinstance(body, dict):
        raise GraphError(100, "Invalid parameter", "the body must be a JSON object, as the Cloud API takes it")
    product = body.get("messaging_product")
    if product is None:
        raise required("messaging_product")
    if product != "whatsapp":
        raise invalid("messaging_product", "messaging_product must be 'whatsapp'")
    if body.get("status") is not None:
        return _mark_read(body)
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type != "individual":
        raise invalid("recipient_type", "the gateway sends to individuals only: recipient_type 'individual'")
    to = _string(body, "to", "to", max_len=64)
    kind = body.get("type", "text")   # Meta reads a body without a type as text
    if not isinstance(kind, str) or kind not in READERS:
        raise invalid("type", f"type must be one of {', '.join(sorted(READERS))}")
    out = READERS[kind](body)
    out.to = to
    context = body.get("context")
    if context is not None:
        if not isinstance(context, dict):
            raise invalid("context", "'context' must be an object with 'message_id'")
        out.reply_to = _string(context, "message_id", "context['message_id']")
    opaque = body.get("biz_opaque_callback_data")
    if opaque is not None:
        if not isinstance(opaque, str) or len(opaque) > BIZ_OPAQUE_MAX:
            raise invalid("biz_opaque_callback_data", f"biz_opaque_callback_data must be a string of at most "
                          f"{BIZ_OPAQUE_MAX} characters")
        # Echoed in this message's forwarded statuses; the provider gets the gateway's own id there.
        out.content["biz_opaque_callback_data"] = opaque
    return out


def _mark_read(body: dict) -> MarkRead:
    if body.get("status") != "read":
        raise invalid("status", "status must be 'read' (marking a message read is the only status you can send)")
    message_id = _string(body, "message_id", "message_id")
    indicator = body.get("typing_indicator")
    if indicator is not None and (not isinstance(indicator, dict) or indicator.get("type") != "text"):
        raise invalid("typing_indicator", "typing_indicator must be {\"type\": \"text\"}")
    return MarkRead(message_id, indicator)


def _text(body: dict) -> Outbound:
    text = _object(body, "text")
    content = {"body": _string(text, "body", "text['body']")}
    preview = text.get("preview_url")
    if preview is not None and not isinstance(preview, bool):
        raise invalid("text['preview_url']", "preview_url must be true or false")
    content["preview_url"] = bool(preview)
    return Outbound("text", content, to="")


def _media(kind: str):
    def read_media(body: dict) -> Outbound:
        media = _object(body, kind)
        media_id = media.get("id")
        link = media.get("link")
        if (media_id is None) == (link is None):
            raise invalid(kind, f"'{kind}' needs exactly one of 'id' (an uploaded media id) or 'link'")
        content: dict = {}
        if media_id is not None:
            if not isinstance(media_id, (str, int)) or isinstance(media_id, bool) or not str(media_id).strip():
                raise invalid(f"{kind}['id']", "the media id must be a string")
            content["media_id"] = str(media_id)
        else:
            link = _string(media, "link", f"{kind}['link']")
            if not link.startswith(("https://", "http://")):
                raise invalid(f"{kind}['link']", "the link must be an http(s) URL")
            content["link"] = link
        caption = _string(media, "caption", f"{kind}['caption']", optional=True, empty=True)
        if caption is not None:
            if kind not in CAPTIONED:
                raise invalid(f"{kind}['caption']", f"a {kind} takes no caption (only {', '.join(CAPTIONED)})")
            content["caption"] = caption
        filename = _string(media, "filename", f"{kind}['filename']", optional=True, max_len=240)
        if filename is not None:
            if kind != "document":
                raise invalid(f"{kind}['filename']", "only a document takes a filename")
            content["filename"] = filename
        return Outbound(kind, content, to="")
    return read_media


def _location(body: dict) -> Outbound:
    loc = _object(body, "location")
    content: dict = {}
    for key, bound in (("latitude", 90), ("longitude", 180)):
        value = loc.get(key)
        if value is None:
            raise required(f"location['{key}']")
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not -bound <= number <= bound:
            raise invalid(f"location['{key}']", f"{key} must be a number from -{bound} to {bound}")
        content[key] = number
    for key in ("name", "address"):
        value = _string(loc, key, f"location['{key}']", optional=True, empty=True)
        if value:
            content[key] = value
    return Outbound("location", content, to="")


def _contacts(body: dict) -> Outbound:
    cards = body.get("contacts")
    if cards is None:
        raise required("contacts")
    if not isinstance(cards, list) or not cards or not all(isinstance(c, dict) for c in cards):
        raise invalid("contacts", "contacts must be a non-empty list of contact objects")
    for i, card in enumerate(cards):
        name = card.get("name")
        if not isinstance(name, dict) or not isinstance(name.get("formatted_name"), str):
            raise required(f"contacts[{i}]['name']['formatted_name']")
    return Outbound("contacts", {"contacts": cards}, to="")


def _reaction(body: dict) -> Outbound:
    reaction = _object(body, "reaction")
    target = _string(reaction, "message_id", "reaction['message_id']")
    emoji = _string(reaction, "emoji", "reaction['emoji']", optional=True, empty=True, max_len=16) or ""
    out = Outbound("reaction", {"emoji": emoji}, to="")
    out.react_to = target
    return out


def _interactive(body: dict) -> Outbound:
    inter = _object(body, "interactive")
    sub = _string(inter, "type", "interactive['type']")
    text = ""
    body_obj = inter.get("body")
    if body_obj is not None:
        if not isinstance(body_obj, dict):
            raise invalid("interactive['body']", "interactive body must be an object with 'text'")
        text = _string(body_obj, "text", "interactive['body']['text']", max_len=1024)
    elif sub in ("button", "list", "cta_url", "flow", "product_list", "location_request_message"):
        raise required("interactive['body']")
    action = inter.get("action")
    if sub != "address_message" and not isinstance(action, dict):
        raise required("interactive['action']")
    if sub == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise invalid("interactive['action']['buttons']", "a button message has 1 to 3 reply buttons")
        for i, b in enumerate(buttons):
            reply = b.get("reply") if isinstance(b, dict) else None
            if not isinstance(reply, dict):
                raise required(f"interactive['action']['buttons'][{i}]['reply']")
            _string(reply, "id", f"interactive['action']['buttons'][{i}]['reply']['id']", max_len=256)
            _string(reply, "title", f"interactive['action']['buttons'][{i}]['reply']['title']", max_len=20)
    elif sub == "list":
        _string(action, "button", "interactive['action']['button']", max_len=20)
        sections = action.get("sections")
        if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
            raise invalid("interactive['action']['sections']", "a list message has 1 to 10 sections")
        rows = [r for s in sections if isinstance(s, dict) for r in (s.get("rows") or [])]
        if not 1 <= len(rows) <= 10:
            raise invalid("interactive['action']['sections']", "a list message has 1 to 10 rows in all")
    # The whole object goes to Meta as given (send.py): every sub-type Meta has, also ones added later.
    return Outbound("interactive", {"type": sub, "body": text, "cloud_api": inter}, to="")


def _template(body: dict) -> Outbound:
    tpl = _object(body, "template")
    name = _string(tpl, "name", "template['name']", max_len=512)
    language = tpl.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(code, str) or not code.strip():
        raise required("template['language']['code']")
    components = tpl.get("components")
    if components is None:
        components = []
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise invalid("template['components']", "components must be a list of component objects")
    content = {"name": name, "language": code, "components": components}
    out = Outbound("template", content, to="", template=(name, code))
    out.check_parameters = parameters_of(components)
    return out


def _value(param: Any):
    """One send parameter as the catalog renderer takes it, or KeyError when it cannot say."""
    kind = param.get("type") if isinstance(param, dict) else None
    if kind == "text":
        return param["text"]
    if kind in ("payload", "coupon_code"):
        return param[kind]
    if kind in ("currency", "date_time", "action"):
        return param
    if kind in ("image", "video", "document"):
        return {"type": kind, kind: param[kind]}
    if kind == "location":
        return param["location"]
    raise KeyError(kind)


def parameters_of(components: list[dict]):
    """The components' values in the renderer's form (templates_catalog.render), so the catalog can check
    them as Meta would (count, names, types: 132000); None for shapes it does not model (carousel, limited
    time offer, products), which then go to Meta unchecked."""
    out: dict = {}
    buttons = []
    try:
        for comp in components:
            kind = str(comp.get("type") or "").lower()
            params = comp.get("parameters") or []
            if not isinstance(params, list):
                return None
            if kind == "header":
                if len(params) == 1:
                    out["header"] = _value(params[0])
                elif params:
                    return None
            elif kind == "body":
                if any(isinstance(p, dict) and "parameter_name" in p for p in params):
                    out["body"] = {p["parameter_name"]: _value(p) for p in params}
                else:
                    out["body"] = [_value(p) for p in params]
            elif kind == "button":
                buttons.append({"index": int(comp["index"]), "sub_type": str(comp.get("sub_type") or "").lower(),
                                "parameters": [_value(p) for p in params]})
            else:
                return None
    except (KeyError, TypeError, ValueError):
        return None
    if buttons:
        out["buttons"] = buttons
    return out


READERS = {"text": _text, "template": _template, "interactive": _interactive, "location": _location,
           "contacts": _contacts, "reaction": _reaction, **{k: _media(k) for k in MEDIA_KINDS}}
