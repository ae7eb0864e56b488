"""Twilio Programmable Messaging provider (SMS, MMS and Twilio's WhatsApp senders): verify, parse, download, send.

Routing: a channel's external id is its business number in E.164
(``+14155238886``, also for a WhatsApp sender ``whatsapp:+14155238886``) or a
Messaging Service SID (``MG…``); see ``parse`` for the order they are tried.
Credentials: ``account_sid`` and ``auth_token`` (media downloads; the default
signing key), optionally ``webhook_secret`` (a managed signing key that
replaces the auth token for signatures) and ``previous_auth_token`` (still
accepted while a token rotation settles). Sending (``send.py``) uses the Messages API with
``account_sid``/``auth_token``. See README.md.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from gateway.providers import Media, NormalisedEvent, OutboundMessage, SendResult
from webhooks.twilio import media as _media
from webhooks.twilio.capabilities import CAPABILITIES
from webhooks.twilio import parse as _parse
from webhooks.twilio import reconcile as _reconcile
from webhooks.twilio import send as _send
from webhooks.twilio import signature as _signature


class TwilioProvider:
    name = "twilio"
    required_credentials = ("account_sid", "auth_token")
    optional_credentials = ("webhook_secret", "previous_auth_token")
    # Twilio reads the answer as TwiML: an empty Response means "no auto-reply".
    signs_url = True   # X-Twilio-Signature covers the URL Twilio called
    ack = ('<?xml version="1.0" encoding="UTF-8"?><Response/>', "text/xml")
    capabilities = CAPABILITIES   # what the send gate allows on this channel

    def group_id(self, credentials: Mapping[str, Any]) -> str | None:
        """Status callbacks without a number still name the account: route them by its SID."""
        return credentials.get("account_sid") or None

    def channel_ids(self, raw: bytes, headers: Mapping[str, str], url: str) -> list[str]:
        return _parse.channel_ids(raw, headers)

    def handshake(self, params: Mapping[str, str]) -> tuple[str, str] | None:
        return None   # Twilio has no subscription handshake

    def verify(self, raw: bytes, headers: Mapping[str, str], url: str, credentials: Mapping[str, Any]) -> bool:
        return _signature.verify_request(raw, headers, url, _signature.signing_keys(credentials))

    def dedupe_key(self, raw: bytes, headers: Mapping[str, str]) -> str:
        return _parse.dedupe_key(raw, headers)

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> list[NormalisedEvent]:
        return _parse.parse_body(raw, headers)

    def download(self, media: Media, channel: Mapping[str, Any],
                 credentials: Mapping[str, Any]) -> tuple[bytes, str | None]:
        return _media.download(media, channel, credentials)

    def send(self, message: OutboundMessage, channel: Mapping[str, Any],
             credentials: Mapping[str, Any]) -> SendResult:
        return _send.send(message, channel, credentials)

    def find_sent(self, message: OutboundMessage, channel: Mapping[str, Any], credentials: Mapping[str, Any],
                  since: datetime) -> SendResult | None:
        return _reconcile.find_sent(message, channel, credentials, since)


PROVIDER = TwilioProvider()
