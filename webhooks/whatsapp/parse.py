"""WhatsApp Cloud API webhook bodies -> normalised events (protocols.md A3-A5).

One table maps each webhook ``field`` to a handler. Every entry, change, message and
status is visited (never only index 0). Nothing is dropped: what cannot be read comes
back as ``Unsupported`` in its place, and one bad item never takes its neighbours down.

``Unsupported.what`` values produced here:

* ``invalid-json`` / ``envelope`` / ``entry`` / ``change`` - the request itself is malformed;
* ``field:<name>`` - a change whose field nobody knows yet;
* ``malformed:<field>`` - a change whose value cannot be read (e.g. messages without metadata);
* ``<field>:empty`` - a known change that carries nothing;
* ``message:…`` / ``status:…`` / ``echo:…`` / ``user_preferences:malformed`` - one item that cannot be read;
* ``errors`` - value-level ``errors[]`` (Meta reporting a problem with the notification itself).
"""
from __future__ import annotations

import logging
from typing import Callable

from gateway.providers import BadRequest, NormalisedEvent, Unsupported
from webhooks.whatsapp import messages, notices, statuses
from webhooks.whatsapp.envelope import Change, decode
from webhooks.whatsapp.isolate import each
from webhooks.whatsapp.values import dict_list, phone_digits, text

log = logging.getLogger(__name__)


def handle_messages(change: Change) -> list[NormalisedEvent]:
    """field=messages: customers' messages and the statuses of what the business sent."""
    external_id = change.phone_number_id
    if external_id is None:   # the WABA id alone cannot say which of its numbers the customer wrote to
        return [Unsupported("malformed:messages")]
    contacts = dict_list(change.value.get("contacts"))
    events = each(change.value.get("messages"), lambda m: messages.inbound(m, external_id, contacts), "message")
    events += each(change.value.get("statuses"), lambda s: statuses.status(s, external_id, contacts), "status")
    return events


def handle_echoes(change: Change) -> list[NormalisedEvent]:
    """field=smb_message_echoes: messages the business sent from the WhatsApp Business app (coexistence)."""
    external_id = change.phone_number_id
    if external_id is None:
        return [Unsupported("malformed:smb_message_echoes")]
    contacts = dict_list(change.value.get("contacts"))
    meta = change.value.get("metadata")
    business = phone_digits(meta.get("display_phone_number")) if isinstance(meta, dict) else None
    return each(change.value.get("message_echoes"),
                lambda m: messages.echo(m, external_id, contacts, business), "echo")


HANDLERS: dict[str, Callable[[Change], list[NormalisedEvent]]] = {
    "messages": handle_messages,
    "smb_message_echoes": handle_echoes,
    "user_preferences": notices.user_preferences,
    **{name: notices.field_notice for name in notices.TOPICS},
}


def parse_change(raw_change: object, waba_id: str | None, entry_time: object) -> list[NormalisedEvent]:
    if not isinstance(raw_change, dict):
        return [Unsupported("change")]
    name = raw_change.get("field")
    handler = HANDLERS.get(name) if isinstance(name, str) else None
    if handler is None:
        return [Unsupported(f"field:{name}")]
    value = raw_change.get("value")
    if not isinstance(value, dict):
        return [Unsupported(f"malformed:{name}")]
    try:
        events = handler(Change(name, value, waba_id, entry_time))
    except Exception:
        log.warning("whatsapp: could not read a %s change", name, exc_info=True)
        events = [Unsupported(f"malformed:{name}")]
    if value.get("errors"):
        events.append(Unsupported("errors"))
    return events or [Unsupported(f"{name}:empty")]


def parse_body(raw: bytes) -> list[NormalisedEvent]:
    try:
        body = decode(raw)
    except BadRequest:
        return [Unsupported("invalid-json")]
    entries = body.get("entry")
    if not isinstance(entries, list) or not entries:
        return [Unsupported("envelope")]
    events: list[NormalisedEvent] = []
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list) or not changes:
            events.append(Unsupported("entry"))
            continue
        for change in changes:
            events.extend(parse_change(change, text(entry.get("id")), entry.get("time")))
    return events
