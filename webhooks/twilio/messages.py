"""Twilio inbound messages ("A message comes in") -> InboundMessage (protocols.md D1, D5).

The same form serves SMS, MMS and Twilio's WhatsApp senders; addresses of the
latter carry a ``whatsapp:`` prefix, which becomes ``content["channel"]`` and
is stripped from the sender.

``content`` keeps Twilio's own parameter names for what Twilio says
(FromCity, WaId, ButtonPayload, Referral*, ...) and snake_case for what is
derived here (channel, body, num_segments, num_media, opt_out).
"""
from __future__ import annotations

import json

from gateway.providers import InboundMessage, Media, NormalisedEvent, Unsupported
from webhooks.twilio.body import Params, message_sid, split_address

# Twilio allows 10 media per message; the cap bounds a hostile NumMedia.
MAX_MEDIA = 20

GEO_FIELDS = tuple(f"{side}{part}" for side in ("From", "To") for part in ("City", "State", "Zip", "Country"))
WHATSAPP_FIELDS = ("WaId", "MessageType", "ButtonText", "ButtonPayload", "Latitude", "Longitude", "Address",
                   "Label", "Forwarded", "FrequentlyForwarded", "OriginalRepliedMessageSender", "OptOutType")

# Twilio's default opt-out handling (D5): the whole message, trimmed, any case.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})


def media_kind(mime_type: str | None) -> str:
    major = (mime_type or "").split("/", 1)[0].strip().lower()
    return major if major in ("image", "video", "audio") else "document"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def media_of(params: Params) -> tuple[Media, ...]:
    announced = max(0, min(_int(params.get("NumMedia")) or 0, MAX_MEDIA))
    # Some senders (and the shared image fixture) list MediaUrl0 with NumMedia=0: never drop an attachment.
    present = 0
    while present < MAX_MEDIA and params.get(f"MediaUrl{present}"):
        present += 1
    found = []
    for n in range(max(announced, present)):
        url = params.get(f"MediaUrl{n}")
        if url:
            mime = params.get(f"MediaContentType{n}")
            found.append(Media(kind=media_kind(mime), url=url, mime_type=mime))
    return tuple(found)


def opt_out(params: Params, channel: str) -> str | None:
    """STOP / START / HELP when this message is an opt-out keyword Twilio acts on, else None."""
    given = params.get("OptOutType")
    if given:
        return given.upper()
    if channel != "sms":
        return None   # Twilio's default keyword handling is for SMS/MMS senders
    word = (params.get("Body") or "").strip().upper()
    if word in STOP_WORDS:
        return "STOP"
    if word in START_WORDS:
        return "START"
    if word in HELP_WORDS:
        return "HELP"
    return None


def kind_of(params: Params, media: tuple[Media, ...]) -> str:
    kind = "text"
    if media:
        kind = media[0].kind
    if params.get("Latitude") and params.get("Longitude"):
        kind = "location"
    if params.get("ButtonPayload") or params.get("ButtonText"):
        kind = "button"
    declared = (params.get("MessageType") or "").lower()
    if declared and declared != "text" and declared.replace("_", "").isalnum():
        kind = declared   # WhatsApp's own word is more precise (sticker, interactive, reaction, ...)
    return kind


def rendition(params: Params, kind: str, media: tuple[Media, ...]) -> str:
    body = params.first.get("Body") or ""
    if body.strip():
        return body
    if kind == "location":
        named = ", ".join(p for p in (params.get("Label"), params.get("Address")) if p)
        return named or f"{params.get('Latitude')},{params.get('Longitude')}"
    if kind == "button":
        return params.get("ButtonText") or params.get("ButtonPayload") or "[button]"
    if media:
        return " ".join(f"[{m.kind}]" for m in media)
    return "" if kind == "text" else f"[{kind}]"


def content_of(params: Params, channel: str, media: tuple[Media, ...]) -> dict:
    content: dict = {"channel": channel, "body": params.first.get("Body") or ""}
    segments = _int(params.get("NumSegments"))
    if segments is not None:
        content["num_segments"] = segments
    content["num_media"] = len(media)
    for name in GEO_FIELDS + WHATSAPP_FIELDS:
        if params.get(name):
            content[name] = params.get(name)
    for name, value in params.first.items():
        if name.startswith("Referral") and value.strip():
            content[name] = value
    metadata = params.get("ChannelMetadata")
    if metadata:
        try:
            content["ChannelMetadata"] = json.loads(metadata)
        except ValueError:
            content["ChannelMetadata"] = metadata
    keyword = opt_out(params, channel)
    if keyword:
        content["opt_out"] = keyword
    return content


def inbound_message(params: Params, external_id: str | None) -> NormalisedEvent:
    sid = message_sid(params)
    if not sid:
        return Unsupported("message:no-MessageSid")
    channel, sender = split_address(params.get("From"))
    if not sender:
        return Unsupported("message:no-From")
    if not external_id:
        return Unsupported("message:no-To")
    channel = channel or split_address(params.get("To"))[0] or "sms"
    media = media_of(params)
    kind = kind_of(params, media)
    return InboundMessage(
        external_id=external_id,
        sender=sender,
        sender_kind="phone",
        provider_message_id=sid,
        kind=kind,
        text=rendition(params, kind, media),
        sender_name=params.get("ProfileName"),
        content=content_of(params, channel, media),
        media=media,
        reply_to=params.get("OriginalRepliedMessageSid"))
