"""Refusals in Meta's Graph API error envelope, with the codes a Cloud API integration already handles.

``{"error": {"message", "type", "code", "error_subcode"?, "error_data": {"messaging_product", "details"},
"fbtrace_id"}}`` (protocols.md B3). Integrations branch on ``code`` (and read ``details``), so each gateway
refusal maps to the Meta code whose handling fits it: an integration that stops retrying on 131047 and sends a
template instead does the right thing for the gateway's closed window too. ``details`` carries the gateway's
own reason in words; ``error_data.gateway_rule`` names the rule for those who want it.
"""
from __future__ import annotations

import json

from flask import Response, g

from gateway import send_gate


class GraphError(Exception):
    """Raise in a facade view to answer with Meta's error envelope."""

    def __init__(self, code: int, message: str, details: str, *, status: int = 400, subcode: int | None = None,
                 type: str = "OAuthException", rule: str | None = None, headers: dict | None = None,
                 extra: dict | None = None):
        super().__init__(details)
        self.code, self.message, self.details, self.status = code, message, details, status
        self.subcode, self.type, self.rule = subcode, type, rule
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict:
        error: dict = {"message": f"(#{self.code}) {self.message}", "type": self.type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        data: dict = {"messaging_product": "whatsapp", "details": self.details}
        if self.rule:
            data["gateway_rule"] = self.rule
        data.update(self.extra)
        error["error_data"] = data
        error["fbtrace_id"] = getattr(g, "request_id", None) or ""
        return {"error": error}

    def response(self) -> Response:
        resp = Response(json.dumps(self.body(), default=str), status=self.status, mimetype="application/json")
        for name, value in self.headers.items():
            resp.headers[name] = value
        return resp


def invalid_parameter(details: str, *, field: str | None = None) -> GraphError:
    """Code 100: the body is not one the Cloud API takes (the field named, as Meta does)."""
    message = "Invalid parameter" if field is None else f"Param {field} is invalid"
    return GraphError(100, message, details, type="OAuthException")


def no_such_object(object_id: str, method: str = "post") -> GraphError:
    """Code 100 subcode 33: an id that does not exist or belongs to another account (never says which)."""
    return GraphError(100, f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be "
                      "loaded due to missing permissions, or does not support this operation", "the id is not one "
                      "of this API key's account: check the phone number id (the channel's external_id) or the "
                      "media or template id", subcode=33, type="GraphMethodException")


def unauthorized(details: str) -> GraphError:
    return GraphError(190, "Invalid OAuth access token - Cannot parse access token", details, status=401)


def missing_scope(scope: str) -> GraphError:
    return GraphError(10, "Application does not have permission for this action", f"the API key lacks the scope "
                      f"'{scope}'; create a key that has it", status=403, type="OAuthException")


# Gate rule → (Meta code, Meta's title for it). The nearest code whose documented handling is right for the rule.
_RULES: dict[str, tuple[int, str]] = {
    "outside_customer_service_window": (131047, "Re-engagement message"),
    "opted_out": (131050, "Unable to deliver the message. This recipient has chosen to stop receiving marketing "
                          "messages on WhatsApp from your business"),
    "no_marketing_consent": (131050, "Unable to deliver the message. This recipient has not agreed to receive "
                                     "marketing messages from your business"),
    "template_parameters": (132000, "Number of parameters does not match the expected number of params"),
    "template_not_found": (132001, "Template name does not exist in the translation"),
    "template_language_unavailable": (132001, "Template name does not exist in the translation"),
    "template_catalog_not_synced": (132001, "Template name does not exist in the translation"),
    "unsupported_message_type": (131051, "Unsupported message type"),
    "text_too_long": (100, "Invalid parameter"),
    "no_address_for_channel": (100, "Invalid parameter"),
    "channel_paused": (131031, "Business Account locked"),
    "channel_disabled": (131031, "Business Account locked"),
    "channel_not_configured": (3, "Capability or permissions issue"),
}
_TEMPLATE_STATUS = {"PAUSED": (132015, "Template is paused"), "DISABLED": (132016, "Template is disabled")}


def refused(exc: send_gate.Refused) -> GraphError:
    code, title = _RULES.get(exc.rule, (131000, "Something went wrong"))
    if exc.rule == "template_not_sendable":
        code, title = _TEMPLATE_STATUS.get(exc.extra.get("template_status"),
                                           (132001, "Template name does not exist in the translation"))
    extra = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in exc.extra.items()}
    return GraphError(code, title, exc.detail, rule=exc.rule, extra=extra)
