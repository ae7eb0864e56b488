"""Did Twilio take a message whose send's outcome is unknown? Asked through the Messages list.

Twilio keeps no idempotency key, and its answer to a create can be lost after
the message was made (a read timeout, a worker killed mid-call). Before the
gateway sends again, it lists the newest messages from this sender to this
recipient and looks for one made since the attempt started with the same
body and media: found, the message was sent (its SID is adopted); a clean
answer without it, sending again is safe; no clean answer, keep waiting.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

import requests

from gateway import provider_http
from gateway.providers import OutboundMessage, SendResult
from webhooks.twilio.send import (CONNECT_TIMEOUT_S, READ_TIMEOUT_S, Unsendable, build_form, endpoint,
                                  session)

PAGE_SIZE = 50
# Twilio stamps date_created to the second, in its own clock: allow for both.
CLOCK_SLACK = timedelta(seconds=60)


def find_sent(message: OutboundMessage, channel: Mapping[str, Any], credentials: Mapping[str, Any],
              since: datetime) -> SendResult | None:
    """SendResult("sent", provider_message_id=SID) when Twilio has the message; None when it clearly has not;
    SendResult("unknown") when Twilio could not be asked (try again later)."""
    sid, token = credentials.get("account_sid"), credentials.get("auth_token")
    if not isinstance(sid, str) or not sid or not isinstance(token, str) or not token:
        return SendResult("unknown", error_code="config", reason="the channel has no Twilio credentials")
    try:
        form = build_form(message, channel)
    except Unsendable:
        return None       # it could never have been sent
    fields: dict[str, list[str]] = {}
    for name, value in form:
        fields.setdefault(name, []).append(value)
    query = {"To": fields["To"][0], "PageSize": str(PAGE_SIZE)}
    if "From" in fields:
        query["From"] = fields["From"][0]
    try:
        response = session().get(endpoint(channel, sid), params=query, auth=(sid, token),
                                 headers={"Accept": "application/json"},
                                 timeout=provider_http.send_timeouts(channel.get("settings"), CONNECT_TIMEOUT_S,
                                                                     READ_TIMEOUT_S))
    except requests.RequestException as exc:
        return SendResult("unknown", error_code="network",
                          reason=f"could not ask Twilio whether it has the message ({type(exc).__name__})")
    if response.status_code != 200:
        return SendResult("unknown", error_code=str(response.status_code),
                          reason=f"Twilio answered {response.status_code} to the Messages list")
    try:
        listed = response.json().get("messages")
    except ValueError:
        listed = None
    if not isinstance(listed, list):
        return SendResult("unknown", error_code="bad_answer", reason="Twilio's Messages list was unreadable")
    body = (fields.get("Body") or [""])[0]
    media = len(fields.get("MediaUrl") or [])
    for item in listed:
        if isinstance(item, Mapping) and _same(item, fields, body, media, since):
            return SendResult("sent", provider_message_id=str(item["sid"]))
    return None


def _same(item: Mapping[str, Any], fields: Mapping[str, list[str]], body: str, media: int,
          since: datetime) -> bool:
    if not isinstance(item.get("sid"), str) or item.get("direction") not in ("outbound-api", None):
        return False
    if (item.get("body") or "") != body or str(item.get("num_media") or "0") != str(media):
        return False
    if "MessagingServiceSid" in fields and item.get("messaging_service_sid") not in (
            None, fields["MessagingServiceSid"][0]):
        return False
    return _created(item) is not None and _created(item) >= since - CLOCK_SLACK


def _created(item: Mapping[str, Any]) -> datetime | None:
    try:
        return parsedate_to_datetime(str(item.get("date_created")))
    except (TypeError, ValueError, IndexError):
        return None
