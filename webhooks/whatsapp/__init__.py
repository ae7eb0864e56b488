"""WhatsApp Cloud API provider (Meta): route, verify, parse, download media, send and classify.

Routing: ``value.metadata.phone_number_id`` first, then ``entry[].id`` (the WABA id), so a
channel registered by either is found, and account-level changes without metadata too.
Credentials: ``app_secret`` (signature), ``access_token`` (media, sending),
``verify_token`` (subscription handshake). See README.md for setup.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Mapping

from gateway.providers import Media, NormalisedEvent, OutboundMessage, SendResult, Unsupported
from webhooks.whatsapp import envelope
from webhooks.whatsapp.capabilities import CAPABILITIES
from webhooks.whatsapp import media as _media
from webhooks.whatsapp import parse as _parse
from webhooks.whatsapp import send as _send
from webhooks.whatsapp import templates as _templates
from webhooks.whatsapp import verify as _verify

log = logging.getLogger(__name__)


class WhatsAppProvider:
    name = "whatsapp"
    required_credentials = ("app_secret", "access_token", "verify_token")
    optional_credentials: tuple[str, ...] = ()
    ack = ("", "text/plain")   # Meta ignores the body; only the 200 matters
    capabilities = CAPABILITIES   # what the send gate allows on this channel

    def channel_ids(self, raw: bytes, headers: Mapping[str, str], url: str) -> list[str]:
        return envelope.channel_ids(raw)

    def handshake(self, params: Mapping[str, str]) -> tuple[str, str] | None:
        if params is None or params.get("hub.mode") != "subscribe":
            return None
        token, challenge = params.get("hub.verify_token"), params.get("hub.challenge")
        if not isinstance(token, str) or not token or not isinstance(challenge, str):
            return None
        return token, challenge

    def verify(self, raw: bytes, headers: Mapping[str, str], url: str, credentials: Mapping[str, Any]) -> bool:
        secret = credentials.get("app_secret") if isinstance(credentials, Mapping) else None
        return _verify.verify_request(raw, headers, secret)

    def dedupe_key(self, raw: bytes, headers: Mapping[str, str]) -> str:
        # Meta redelivers the identical body, so its hash is a stable key.
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> list[NormalisedEvent]:
        try:
            return _parse.parse_body(raw)
        except Exception:   # the contract is "never raises"; every level below already isolates its items
            log.exception("whatsapp: parse failed outside any item")
            return [Unsupported("envelope")]

    def download(self, media: Media, channel: Mapping[str, Any], credentials: Mapping[str, Any]) -> tuple[bytes, str | None]:
        return _media.download(media, channel, credentials)

    def send(self, message: OutboundMessage, channel: Mapping[str, Any], credentials: Mapping[str, Any]) -> SendResult:
        return _send.send(message, channel, credentials)

    # Message templates (the templates catalog syncs through these; TemplateApiError on failure).
    def list_templates(self, channel: Mapping[str, Any], credentials: Mapping[str, Any]) -> list[dict]:
        return _templates.list_all(channel, credentials)

    def create_template(self, channel: Mapping[str, Any], credentials: Mapping[str, Any],
                        definition: Mapping[str, Any]) -> dict:
        return _templates.create(channel, credentials, definition)

    def edit_template(self, channel: Mapping[str, Any], credentials: Mapping[str, Any], meta_id: str,
                      definition: Mapping[str, Any]) -> dict:
        return _templates.edit(channel, credentials, meta_id, definition)

    def delete_template(self, channel: Mapping[str, Any], credentials: Mapping[str, Any], name: str,
                        meta_id: str | None = None) -> dict:
        return _templates.delete(channel, credentials, name, meta_id)


PROVIDER = WhatsAppProvider()
