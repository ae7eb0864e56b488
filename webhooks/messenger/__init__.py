"""Facebook Messenger provider (Meta Messenger Platform): route, verify, parse, download, send.

Routing: ``entry[].id`` is the Page id = the channel's external id. Messenger and Instagram
DMs are one Meta messaging platform; this class reads both, and ``webhooks.instagram``
subclasses it with its own name, ``object`` and identity kind; both send through the Send
API (``send.py``). Credentials: ``app_secret`` (signature), ``page_access_token`` (sending),
``verify_token`` (subscription handshake). See README.md for setup.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

from gateway.providers import Media, NormalisedEvent, OutboundMessage, SendResult
from webhooks.messenger import download as _download
from webhooks.messenger.capabilities import CAPABILITIES
from webhooks.messenger import parse as _parse
from webhooks.messenger import send as _send
from webhooks.messenger import signature as _signature


class MessengerProvider:
    name = "messenger"
    label = "Messenger"
    object_name = "page"          # the envelope's "object" for this platform
    identity_kind = "psid"
    required_credentials = ("app_secret", "page_access_token", "verify_token")
    optional_credentials: tuple[str, ...] = ()
    ack = ("", "text/plain")      # Meta ignores the body of the 200
    capabilities = CAPABILITIES   # what the send gate allows on this channel

    def channel_ids(self, raw: bytes, headers: Mapping[str, str], url: str) -> list[str]:
        return _parse.channel_ids(raw)

    def handshake(self, params: Mapping[str, str]) -> tuple[str, str] | None:
        return _signature.handshake(params)

    def verify(self, raw: bytes, headers: Mapping[str, str], url: str, credentials: Mapping[str, Any]) -> bool:
        secret = credentials.get("app_secret") if isinstance(credentials, Mapping) else None
        return _signature.signature_ok(raw, headers, secret)

    def dedupe_key(self, raw: bytes, headers: Mapping[str, str]) -> str:
        # Meta redelivers the identical body, so its hash is a stable key.
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> list[NormalisedEvent]:
        return _parse.parse_body(raw, platform=self.name, object_name=self.object_name,
                                 identity_kind=self.identity_kind)

    def download(self, media: Media, channel: Mapping[str, Any],
                 credentials: Mapping[str, Any]) -> tuple[bytes, str | None]:
        # The URL is complete and signed by Meta's CDN: no token, no api_base_url to apply.
        return _download.fetch(media, provider_label=self.label)

    def send(self, message: OutboundMessage, channel: Mapping[str, Any],
             credentials: Mapping[str, Any]) -> SendResult:
        # Same Send API for both; an Instagram-Login channel sets settings.api_base_url to
        # https://graph.instagram.com. The label names the platform in reasons.
        return _send.send(message, channel, credentials, label=self.label)


PROVIDER = MessengerProvider()
