"""Sandbox provider: a local stand-in for the WhatsApp Cloud API, the Messenger/Instagram Send API and
Twilio's Messages API, with faults on demand and signed status webhooks back to the gateway.

    from gateway.sandbox import serve, start, make_app, say
    serve("127.0.0.1", 8089, gateway_url="http://127.0.0.1:8000", app_secret="…")

Point a channel's ``api_base_url`` setting at the sandbox's base URL. See server.py for the
paths and faults.py for the settings.
"""
from gateway.sandbox.faults import DEFAULTS
from gateway.sandbox.say import inbound, say
from gateway.sandbox.server import Running, make_app, serve, start

__all__ = ["DEFAULTS", "Running", "inbound", "make_app", "say", "serve", "start"]
