"""WhatsApp Cloud API provider (Meta): verify and parse; sending comes later.

Routing: ``value.metadata.phone_number_id`` is the channel's external id; bodies
without metadata (account/template updates) fall back to ``entry[].id`` (WABA id).
Credentials used: ``app_secret`` (signature). See README.md for setup.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

from gateway.providers import NormalisedEvent, SendResult
from webhooks.whatsapp import parse as _parse
from webhooks.whatsapp import verify as _verify


class WhatsAppProvider:
    name = "whatsapp"

    def channel_ids(self, raw: bytes, headers: Mapping[str, str], url: str) -> list[str]:
        return _parse.channel_ids(raw)

    def verify(self, raw: bytes, headers: Mapping[str, str], url: str, credentials: Mapping[str, Any]) -> bool:
        secret = (credentials or {}).get("app_secret") if isinstance(credentials, Mapping) else None
        return _verify.verify_request(raw, headers, secret)

    def dedupe_key(self, raw: bytes, headers: Mapping[str, str]) -> str:
        # Meta redelivers the identical body, so its hash is a stable key.
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> list[NormalisedEvent]:
        return _parse.parse_body(raw)

    def send(self, message: Mapping[str, Any], credentials: Mapping[str, Any]) -> SendResult:
        return SendResult("failed", reason="sending through WhatsApp is not implemented yet")


PROVIDER = WhatsAppProvider()
