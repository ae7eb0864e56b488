"""The one small interface every channel provider implements (DESIGN invariant 7).

A provider is a folder under ``webhooks/`` exposing one ``PROVIDER`` object and
one line in ``webhooks/registry.py``. It has these duties:

1. **route** a webhook request to the business channel(s) it is addressed to;
2. **verify** the request on its raw bytes (signature, constant time);
3. **parse** a raw event into the normalised events below;
4. **download** inbound media with the channel's credentials;
5. **send** one outbound message and **classify** the answer: sent (with its
   id), retry later (with a delay), or a permanent failure with a reason.

Provider knowledge (payload shapes, error codes, signatures) stays in its folder;
the core only sees the types below.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Mapping, Protocol

IdentityKind = Literal["phone", "bsuid", "psid", "igsid"]


class BadRequest(Exception):
    """The body is not what the provider ever sends (not JSON, not a form): answer 400, store nothing."""


class MediaError(Exception):
    """A media download failed; ``retryable`` says whether trying again later can help."""

    def __init__(self, reason: str, *, retryable: bool = True):
        super().__init__(reason)
        self.retryable = retryable


@dataclass(frozen=True)
class Media:
    """One attachment of a message, as the provider announced it (downloaded later by a worker)."""
    kind: str                            # image, video, audio, document, sticker, file, ...
    provider_media_id: str | None = None  # Cloud API media id (resolved to a URL at download time)
    url: str | None = None               # a direct URL (Twilio MediaUrlN, Messenger attachment payload.url)
    mime_type: str | None = None
    sha256: str | None = None            # as the provider gives it (WhatsApp webhooks: base64)
    filename: str | None = None
    caption: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    external_id: str                 # the business channel it arrived on (phone_number_id, page id, number)
    sender: str                      # the customer's address (also for echoes: always the customer)
    sender_kind: str                 # identity kind: phone (E.164), bsuid, psid, igsid
    provider_message_id: str
    kind: str                        # text, image, audio, location, interactive, reaction, unsupported, ...
    text: str | None = None          # the rendition shown in the thread
    sender_name: str | None = None   # profile name as the customer chose it
    timestamp: str | None = None     # as the provider gave it
    occurred_at: datetime | None = None  # the same instant, parsed, UTC
    content: dict = field(default_factory=dict)   # structured content (the provider's object for this type)
    media: tuple[Media, ...] = ()
    reply_to: str | None = None      # provider id of the message this replies/reacts to, edits or deletes
    aliases: tuple[tuple[str, str], ...] = ()    # other identities of the same customer, e.g. (bsuid, US.1…)
    direction: Literal["inbound", "outbound"] = "inbound"   # outbound: an echo of what the business sent elsewhere


@dataclass(frozen=True)
class StatusUpdate:
    external_id: str
    provider_message_id: str | None  # None for a watermark (Messenger delivery/read)
    # sending: accepted/queued by the provider; played: a voice/video note was played.
    status: Literal["sending", "sent", "delivered", "read", "played", "failed"]
    timestamp: str | None = None
    occurred_at: datetime | None = None
    error_code: str | None = None
    error_reason: str | None = None
    callback_data: str | None = None
    recipient: str | None = None     # the customer's address, when given
    recipient_kind: str | None = None
    watermark: datetime | None = None   # every outbound message to recipient sent up to this instant
    detail: dict = field(default_factory=dict)   # conversation, pricing, the provider's own status word


@dataclass(frozen=True)
class IdentityChange:
    """The customer moved to another address (WhatsApp user_changed_number): move the identity, keep the history."""
    external_id: str
    kind: str
    old: str
    new: str


@dataclass(frozen=True)
class Notice:
    """A provider notification that is not a message: template, quality, account, preference, call updates.

    Routed to whoever owns the topic (templates, GDPR, channel health) and kept.
    """
    external_id: str | None
    topic: str                       # template_status, template_quality, phone_quality, account_update, user_preferences, ...
    detail: dict = field(default_factory=dict)
    subject: tuple[str, str] | None = None   # (identity kind, address) of the customer it concerns, if any
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Unsupported:
    """Something in the request the gateway cannot read: stored raw, flagged for review, never dropped."""
    what: str


NormalisedEvent = InboundMessage | StatusUpdate | IdentityChange | Notice | Unsupported


@dataclass(frozen=True)
class OutboundMessage:
    """One message the send worker hands to a provider, already through the send gate.

    ``kind`` and ``content`` (the type's fields, provider-neutral):
      text        {"body": str, "preview_url": bool}
      image|video|audio|document|sticker
                  {"link": url} or {"media_id": provider media id}, plus "caption"?, "filename"? (document)
      template    {"name", "language", "components": [Cloud API template components with parameters]}
      interactive {"type": "button"|"list", "body": str, "header"?: str, "footer"?: str,
                   "buttons": [{"id", "title"}] | "button": str, "sections": [{"title", "rows": [{"id", "title", "description"?}]}]}
      location    {"latitude", "longitude", "name"?, "address"?}
      contacts    {"contacts": [Cloud API contact cards]}
      reaction    {"message_id": provider id reacted to, "emoji": str ("" removes)}
      read        {"message_id": provider id to mark read}
    """
    id: str                          # our message id (echo it where the provider allows: biz_opaque_callback_data)
    to: str                          # the customer's address: +E.164, BSUID, PSID or IGSID
    to_kind: str                     # phone, bsuid, psid, igsid
    kind: str
    content: dict
    reply_to: str | None = None      # provider message id this replies to (context)
    tag: str | None = None           # Messenger message tag outside the window (HUMAN_AGENT, ...)


@dataclass(frozen=True)
class SendResult:
    # unknown: the request may have reached the provider (read timeout, connection dropped after sending):
    # the worker reconciles before any resend instead of retrying blindly.
    outcome: Literal["sent", "retry", "failed", "unknown"]
    provider_message_id: str | None = None
    retry_after_s: float | None = None   # for "retry": when to try again (Retry-After, or the provider's advice)
    error_code: str | None = None        # the provider's own code, as a string ("131047", "21610", "429")
    reason: str | None = None            # readable, says what to do
    opted_out: bool = False              # the provider says the customer stopped messages (131050, 21610)
    channel_problem: bool = False        # auth/config error: pause the channel instead of burning the queue


class Provider(Protocol):
    name: str
    # Credential names a channel of this kind must / may carry (checked when the channel is added).
    required_credentials: tuple[str, ...]
    optional_credentials: tuple[str, ...]
    # Body and content type of the 200 answer (Twilio wants TwiML; Meta ignores the body).
    ack: tuple[str, str]
    # True when the signature covers the URL: the receiver then passes the public URL to verify().
    signs_url: bool

    def channel_ids(self, raw: bytes, headers: Mapping[str, str], url: str) -> list[str]:
        """External ids of the business channels this request may be addressed to, best first.
        Raises BadRequest when the body is not even the provider's format."""

    def handshake(self, params: Mapping[str, str]) -> tuple[str, str] | None:
        """For a subscription handshake GET: (offered verify token, challenge to echo); else None."""

    def verify(self, raw: bytes, headers: Mapping[str, str], url: str, credentials: Mapping[str, Any]) -> bool:
        """True when the request is authentic for a channel with these credentials.
        ``url`` is the public URL the provider called (Twilio signs it)."""

    def dedupe_key(self, raw: bytes, headers: Mapping[str, str]) -> str:
        """A stable key so a redelivered request stores no second row."""

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> list[NormalisedEvent]:
        """Every event in the request, in order; what it cannot read as Unsupported. Never raises."""

    def download(self, media: Media, channel: Mapping[str, Any], credentials: Mapping[str, Any]) -> tuple[bytes, str | None]:
        """The media's bytes and content type. ``channel['settings'].get('api_base_url')`` overrides the
        provider's host (tests point it at the sandbox). Raises MediaError."""

    def send(self, message: OutboundMessage, channel: Mapping[str, Any], credentials: Mapping[str, Any]) -> SendResult:
        """Send one message and classify the answer (sent / retry with a delay / failed with a reason).
        ``channel`` has ``external_id`` and ``settings`` (``api_base_url`` points at the sandbox in tests).
        Never raises for provider or network errors: a connect error is ``retry`` (nothing was sent); a
        read timeout or a connection dropped after the request went out is ``unknown``."""

    # Optional, where the provider can be asked (Twilio's Messages list):
    # def find_sent(self, message, channel, credentials, since: datetime) -> SendResult | None:
    #     """Whether an attempt begun at ``since`` whose outcome is unknown reached the provider:
    #     ``sent`` with its provider id, None when it clearly did not (sending again is safe), or
    #     ``unknown`` when the provider could not say (ask again later). Never raises."""
