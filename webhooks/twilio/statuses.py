"""Twilio status callbacks -> StatusUpdate (protocols.md D2).

A callback arrives for every status change of an outbound message, possibly
out of order; the core keeps statuses forward-only, so each callback is simply
reported. Words the core does not model become a Notice, not an error: Twilio
adds statuses over time.
"""
from __future__ import annotations

from gateway.providers import NormalisedEvent, Notice, StatusUpdate, Unsupported
from webhooks.twilio.body import Params, message_sid, split_address

STATUS_MAP = {
    "accepted": "sending",
    "queued": "sending",
    "scheduled": "sending",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}

CANCELED_REASON = "canceled before sending"

# Twilio omits ErrorMessage on many callbacks; these are the codes an operator meets most (D2, D4).
ERROR_REASONS = {
    "30001": "queue overflow: the message waited in Twilio's queue too long (over 10 hours)",
    "30003": "unreachable destination handset (switched off or out of coverage)",
    "30004": "message blocked (by the recipient or the carrier)",
    "30005": "unknown destination handset (the number is unknown or no longer active)",
    "30006": "landline or unreachable carrier",
    "30007": "message filtered by the carrier (spam filtering)",
    "30008": "unknown error from the carrier",
    "30034": "message from an unregistered US A2P 10DLC number",
    "21610": "the recipient replied STOP and unsubscribed from this sender",
}


def status_word(params: Params) -> str | None:
    word = params.get("MessageStatus") or params.get("SmsStatus")
    return word.lower() if word else None


def error_reason(code: str | None, message: str | None, word: str) -> str | None:
    if message:
        return message
    if code and code in ERROR_REASONS:
        return ERROR_REASONS[code]
    if word == "canceled":
        return CANCELED_REASON
    if code:
        return f"Twilio error {code} (https://www.twilio.com/docs/api/errors/{code})"
    return None


def _topic_word(word: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in word)
    return cleaned[:40] or "unknown"


def status_update(params: Params, external_id: str | None) -> NormalisedEvent:
    word = status_word(params) or ""
    sid = message_sid(params)
    if not sid:
        return Unsupported("status:no-MessageSid")
    channel, recipient = split_address(params.get("To"))
    if channel is None:
        channel = (params.get("ChannelPrefix") or "").lower() or split_address(params.get("From"))[0] or "sms"
    status = STATUS_MAP.get(word)
    if status is None:
        return Notice(external_id=external_id, topic=f"twilio:status:{_topic_word(word)}",
                      detail={"provider_status": word, "MessageSid": sid, "channel": channel},
                      subject=("phone", recipient) if recipient else None)

    code = params.get("ErrorCode")
    code = None if code == "0" else code
    # RawDlrDoneDate is YYMMDDhhmm with no time zone (D2): kept as given, never turned into an instant.
    detail = {"provider_status": word, "raw_dlr_done_date": params.get("RawDlrDoneDate"), "channel": channel}
    return StatusUpdate(
        external_id=external_id or "",
        provider_message_id=sid,
        status=status,
        error_code=code,
        error_reason=error_reason(code, params.get("ErrorMessage"), word) if status == "failed" else None,
        recipient=recipient,
        recipient_kind="phone" if recipient else None,
        detail=detail)
