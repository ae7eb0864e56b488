"""Render an approved WhatsApp template for one contact (protocols.md B1, B6).

A template definition is a plain dict in Meta's creation shape, as in
``shared/fixtures/whatsapp_templates/``: ``{"name", "language", "category", "parameter_format"?,
"components": [HEADER?, LIMITED_TIME_OFFER?, BODY, FOOTER?, BUTTONS?, CAROUSEL?]}``. ``render`` checks
the contact's values against it and returns

- ``cloud_api``: the Cloud API ``template`` object, ``{"name", "language": {"code", "policy"},
  "components": [...]}`` (https://developers.facebook.com/docs/whatsapp/cloud-api/guides/send-message-templates);
- ``text``: what the customer sees, for the conversation thread;
- ``sms_text``: the same for plain-text channels (SMS, Messenger, Instagram), quick replies as
  numbered options and URL buttons with their full URL.

The values (``parameters``) are either the body's values alone, a list for a positional template
(``{{1}}``, ``{{2}}``) or a mapping for a named one (``{{first_name}}``), or a mapping with any of
these keys::

    {"header": "Summer Sale",                  # a text header's value; or an image/video/document,
                                               # location or product (see below)
     "body": ["Ana", "A-1001"],                # or {"first_name": "Ana", "order_id": "A-1001"}
     "buttons": [{"index": 1, "sub_type": "url", "parameters": ["A-1001"]}],   # or {1: "A-1001"}
     "limited_time_offer": {"expiration_time_ms": 1767225600000},
     "cards": [{"header": {...}, "body": [...], "buttons": {...}}, ...]}        # carousel templates

A value is a string (text) or a typed object as Meta spells it: ``{"type": "currency", "currency":
{"fallback_value", "code", "amount_1000"}}``, ``{"type": "date_time", "date_time": {"fallback_value"}}``;
a media header ``{"type": "image", "image": {"link": "https://..."}}`` or ``{"id": "<media id>"}``
(``{"link": ...}`` alone, or the URL as a string, also do; a document may add ``filename``); a location
header ``{"latitude", "longitude", "name", "address"}``; a product header ``{"product_retailer_id",
"catalog_id"}``. A button takes one value: the URL suffix, the quick reply payload, the coupon code,
the one-time code, the catalog thumbnail's product id, or an ``{"type": "action", ...}`` for multi-product
and flow buttons. Quick reply payloads and catalog thumbnails are optional; an authentication
template's code button repeats the body's code unless given.

Every problem (a value missing, extra, of the wrong type, or over Meta's limits) is collected and
raised at once as ``RenderError``, whose ``issues`` name the value (``body {{2}}``, ``header``,
``button 0 url suffix``) and the fix, so that Meta never answers 132000/132005/132012 for them. Issue
texts never quote a value: values are personal data (``shared/DESIGN.md`` invariant 8).

Speed: each definition is compiled once (placeholders parsed, the text views turned into
``str.format`` templates) and kept, by identity, in a small cache: rendering is checks, a few small
dicts and two ``format`` calls. Definitions are treated as immutable; a changed template is a new
dict. ``compile_template`` returns the compiled form for callers that keep it themselves.

Layout: ``common`` (Meta's limits, ``Issue``, ``RenderError``, ``Rendered``), ``values`` (placeholders
and header values), ``buttons``, ``compiled`` (a definition parsed and laid out once); the language
fallback, ``pick_language``, lives in ``templates_catalog.languages`` and is re-exported here.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from templates_catalog.languages import pick_language
from templates_catalog.render.common import Issue, Rendered, RenderError
from templates_catalog.render.compiled import Compiled

__all__ = ["Compiled", "Issue", "RenderError", "Rendered", "compile_template", "pick_language", "render"]

_CACHE_MAX = 1024
_CACHE: dict[int, tuple[Mapping, Compiled]] = {}


def compile_template(definition: Mapping) -> Compiled:
    """The compiled form of ``definition``, kept by identity (treat definitions as immutable)."""
    hit = _CACHE.get(id(definition))
    if hit is not None and hit[0] is definition:
        return hit[1]
    compiled = Compiled(definition)
    if len(_CACHE) >= _CACHE_MAX:
        try:                                           # the oldest entry goes; the cache keeps its definition alive
            del _CACHE[next(iter(_CACHE))]
        except (KeyError, RuntimeError, StopIteration):   # another thread got there first
            pass
    _CACHE[id(definition)] = (definition, compiled)
    return compiled


def render(definition: Mapping, parameters: Any = None, *, language: str | None = None) -> Rendered:
    """Fill ``definition`` (Meta's template JSON) with ``parameters``; ``language`` overrides its code.

    Raises RenderError listing every problem with the values (or the definition)."""
    return compile_template(definition).render(parameters, language=language)
