"""The one small interface every channel provider implements (DESIGN invariant 7).

A provider is a folder under ``webhooks/`` exposing one ``PROVIDER`` object and
one line in ``webhooks/registry.py``. It has four duties:

1. **verify** a webhook request on its raw bytes (signature, constant time);
2. **parse** a raw event into normalised events (messages, statuses, ...);
3. **send** one outbound message through the provider's API;
4. **classify** the provider's answer: sent (with its id), retry later
   (with a delay), or a permanent failure with a reason.

Provider knowledge (payload shapes, error codes, signatures) stays in its folder;
the core only sees the types below.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Protocol


@dataclass(frozen=True)
class InboundMessage:
    external_id: str                 # the business channel it arrived on (phone_number_id, page id, number)
    sender: str                      # the customer's address on that channel
    sender_kind: str                 # identity kind: phone, psid, igsid
    provider_message_id: str
    kind: str                        # text, image, audio, location, interactive, ...
    text: str | None = None
    sender_name: str | None = None
    timestamp: str | None = None     # as the provider gave it
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StatusUpdate:
    external_id: str
    provider_message_id: str
    status: Literal["sent", "delivered", "read", "failed"]
    timestamp: str | None = None
    error_code: str | None = None
    error_reason: str | None = None
    callback_data: str | None = None


@dataclass(frozen=True)
class Unsupported:
    """An event the gateway stores but does not act on; never silently dropped."""
    what: str


NormalisedEvent = InboundMessage | StatusUpdate | Unsupported


@dataclass(frozen=True)
class SendResult:
    outcome: Literal["sent", "retry", "failed"]
    provider_message_id: str | None = None
    retry_after_s: float | None = None
    error_code: str | None = None
    reason: str | None = None


class Provider(Protocol):
    name: str

    def channel_ids(self, raw: bytes, headers: Mapping[str, str], url: str) -> list[str]:
        """External ids of the business channels this request is addressed to (for routing)."""

    def verify(self, raw: bytes, headers: Mapping[str, str], url: str, credentials: Mapping[str, Any]) -> bool:
        """True when the request is authentic for a channel with these credentials."""

    def dedupe_key(self, raw: bytes, headers: Mapping[str, str]) -> str:
        """A stable key so a redelivered request stores no second row."""

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> list[NormalisedEvent]:
        """Every event in the request, in order; unknown ones as Unsupported."""

    def send(self, message: Mapping[str, Any], credentials: Mapping[str, Any]) -> SendResult:
        """Send one message and classify the answer; never raises for provider errors."""
