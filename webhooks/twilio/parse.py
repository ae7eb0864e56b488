"""Route, deduplicate and parse one Twilio webhook request.

A request is either an inbound message (SmsStatus/MessageStatus ``received``,
or no status at all) or a status callback (any other status word).

Channel external ids, best first: the MessagingServiceSid when the number is
in a Messaging Service, then the business number without its ``whatsapp:``
(or other channel) prefix: ``To`` of an inbound message, ``From`` of a status
callback. Events carry the first of these as their ``external_id``.

``Unsupported.what`` values produced here: ``undecodable-body``,
``json:not-an-object``, ``empty-body``, ``message:no-MessageSid``,
``message:no-From``, ``message:no-To``, ``status:no-MessageSid``, ``malformed``
(a bug here, logged).
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Mapping

from gateway.providers import BadRequest, NormalisedEvent, Unsupported
from webhooks.twilio import body as _body
from webhooks.twilio import messages, statuses
from webhooks.twilio.body import Params, split_address

log = logging.getLogger(__name__)

INBOUND_WORDS = frozenset({"received"})


def is_inbound(params: Params) -> bool:
    word = statuses.status_word(params)
    return word is None or word in INBOUND_WORDS


def candidates(params: Params) -> list[str]:
    found: list[str] = []
    service = params.get("MessagingServiceSid")
    number = split_address(params.get("To" if is_inbound(params) else "From"))[1]
    for value in (service, number):
        if value and value not in found:
            found.append(value)
    return found


def channel_ids(raw: bytes, headers: Mapping[str, Any] | None) -> list[str]:
    """Raises BadRequest for a body that is not a UTF-8 form or valid JSON; otherwise never raises.
    Last resort: the account SID, which the core matches against a channel's group id."""
    params = _body.decode(raw, headers)
    found = candidates(params)
    account = params.get("AccountSid")
    return found + [account] if account and account not in found else found


def dedupe_key(raw: bytes, headers: Mapping[str, Any] | None) -> str:
    """'<MessageSid>:<status word>' for forms, so each status of a message is one event and a redelivery is not."""
    try:
        params = _body.decode(raw, headers)
    except BadRequest:
        params = None
    sid = _body.message_sid(params) if params is not None and not params.is_json else None
    if not sid:
        return "sha256:" + hashlib.sha256(bytes(raw)).hexdigest()
    word = params.get("MessageStatus") or params.get("SmsStatus") or "received"
    return f"{sid}:{word}"


def parse_params(params: Params) -> list[NormalisedEvent]:
    if params.is_json and not params.json_object:
        return [Unsupported("json:not-an-object")]
    if not params.pairs:
        return [Unsupported("empty-body")]
    ids = candidates(params)
    external_id = ids[0] if ids else None
    if is_inbound(params):
        return [messages.inbound_message(params, external_id)]
    return [statuses.status_update(params, external_id)]


def parse_body(raw: bytes, headers: Mapping[str, Any] | None) -> list[NormalisedEvent]:
    try:
        params = _body.decode(raw, headers)
    except BadRequest:
        return [Unsupported("undecodable-body")]
    try:
        return parse_params(params)
    except Exception:   # parse never raises: the raw event stays stored and flagged
        log.warning("twilio: could not read a webhook body", exc_info=True)
        return [Unsupported("malformed")]
