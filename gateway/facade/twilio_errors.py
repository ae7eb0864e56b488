"""Refusals in Twilio's REST error shape, with the codes a Twilio integration already handles.

``{"code", "message", "more_info": "https://www.twilio.com/docs/errors/<code>", "status"}`` (protocols.md D4):
Twilio's SDKs raise ``TwilioRestException`` with that code, and integrations branch on it - 21610 means stop
messaging the number, 63016 means send a template instead, 20429 means retry later. ``message`` carries the
gateway's own reason in words; ``gateway_rule`` names the gateway rule that refused, for those who want it.
"""
from __future__ import annotations

import json

from flask import Response

from gateway import send_gate


class TwilioError(Exception):
    def __init__(self, code: int, message: str, *, status: int = 400, rule: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.rule = code, message, status, rule
        self.headers = headers or {}

    def body(self) -> dict:
        doc = {"code": self.code, "message": self.message,
               "more_info": f"https://www.twilio.com/docs/errors/{self.code}", "status": self.status}
        if self.rule:
            doc["gateway_rule"] = self.rule
        return doc

    def response(self) -> Response:
        resp = Response(json.dumps(self.body()), status=self.status, mimetype="application/json")
        for name, value in self.headers.items():
            resp.headers[name] = value
        return resp


def unauthenticated(detail: str) -> TwilioError:
    return TwilioError(20003, f"Authenticate: {detail}", status=401,
                       headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})


def not_found(path: str) -> TwilioError:
    return TwilioError(20404, f"The requested resource {path} was not found", status=404)


# Gate rule → Twilio code. The code whose documented handling is right for the rule.
_RULES: dict[str, int] = {
    "outside_customer_service_window": 63016,   # Outside messaging window: use a template
    "opted_out": 21610,                         # Attempt to send to unsubscribed recipient
    "no_marketing_consent": 21610,
    "text_too_long": 21617,                     # The concatenated message body exceeds the 1600 character limit
    "unsupported_message_type": 63021,          # Channel invalid content
    "no_address_for_channel": 21211,            # Invalid 'To' Phone Number
    "channel_paused": 21606,                    # the From number cannot send for this account now
    "channel_disabled": 21606,
    "channel_not_configured": 21606,
}


def refused(exc: send_gate.Refused) -> TwilioError:
    return TwilioError(_RULES.get(exc.rule, 30008), exc.detail, rule=exc.rule)
