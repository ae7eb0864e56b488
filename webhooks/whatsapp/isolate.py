"""Convert the items of a list one by one so that one odd item never loses its neighbours."""
from __future__ import annotations

import logging
from typing import Any, Callable

from gateway.providers import NormalisedEvent, Unsupported

log = logging.getLogger(__name__)

Converted = NormalisedEvent | list[NormalisedEvent]


def each(items: Any, convert: Callable[[dict], Converted], what: str) -> list[NormalisedEvent]:
    """Events for every item; ``Unsupported("<what>:malformed")`` in place of an item that cannot be read."""
    if items is None:
        return []
    if not isinstance(items, list):
        return [Unsupported(f"{what}:malformed")]
    out: list[NormalisedEvent] = []
    for item in items:
        if not isinstance(item, dict):
            out.append(Unsupported(f"{what}:malformed"))
            continue
        try:
            result = convert(item)
        except Exception:   # a shape we did not foresee: keep it reviewable, carry on with the rest
            log.warning("whatsapp: could not read one %s item", what, exc_info=True)
            out.append(Unsupported(f"{what}:malformed"))
            continue
        out.extend(result if isinstance(result, list) else [result])
    return out
