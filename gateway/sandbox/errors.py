"""The providers' error answers, as the gateway will meet them (protocols.md B3, C2, D4).

Graph (Cloud API, Messenger): ``{"error": {"message", "type", "code", "error_subcode"?, "error_data"?,
"is_transient"?, "fbtrace_id"}}`` with the HTTP status Meta documents for the code. Twilio:
``{"code", "message", "more_info", "status"}``.
"""
from __future__ import annotations

from typing import Any

from gateway.sandbox import ids

META_ERROR_DOCS = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

# code: (HTTP status, title, details). Titles and details follow Meta's error-code reference.
WHATSAPP_ERRORS: dict[int, tuple[int, str, str]] = {
    0: (401, "AuthException", "We were unable to authenticate the app user."),
    1: (400, "API Unknown", "Invalid request or possible server error."),
    2: (503, "API Service", "Temporary due to downtime or due to being overloaded."),
    3: (500, "API Method", "Capability or permissions issue."),
    4: (429, "API Too Many Calls", "The app has reached its API call rate limit."),
    10: (403, "Permission Denied", "Permission is either not granted or has been removed."),
    100: (400, "Invalid parameter", "The request included one or more unsupported or misspelled parameters."),
    190: (401, "Access token has expired", "Error validating access token: Session has expired."),
    200: (403, "API Permission", "Permission is either not granted or has been removed."),
    368: (403, "Temporarily blocked for policies violations",
          "The WhatsApp Business Account associated with the app has been restricted or disabled for "
          "violating a platform policy."),
    80007: (400, "Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    130429: (400, "Rate limit hit", "Message failed to send because there were too many messages sent from "
             "this phone number in a short period of time"),
    130472: (400, "User's number is part of an experiment",
             "Failed to send message because this user's phone number is part of an experiment"),
    131000: (500, "Something went wrong", "Message failed to send due to an unknown error."),
    131005: (403, "Access denied", "Permission is either not granted or has been removed."),
    131008: (400, "Required parameter is missing", "The request is missing a required parameter."),
    131009: (400, "Parameter value is not valid", "One or more parameter values are invalid."),
    131016: (500, "Service unavailable", "A service is temporarily unavailable."),
    131021: (400, "Recipient cannot be sender", "Sender and recipient phone number is the same."),
    131026: (400, "Message undeliverable", "Unable to deliver message. Reasons can include: the recipient "
             "phone number is not a WhatsApp phone number; the recipient has not accepted the new Terms of "
             "Service; the recipient is using an old WhatsApp version."),
    131030: (400, "Recipient phone number not in allowed list",
             "Recipient phone number not in allowed list: add it to the test number's recipient list."),
    131031: (403, "Account has been locked", "The WhatsApp Business Account is restricted or disabled."),
    131042: (400, "Business eligibility payment issue",
             "There was an error related to your payment method."),
    131045: (400, "Incorrect certificate", "Message failed to send due to a phone number registration error."),
    131047: (400, "Re-engagement message", "Message failed to send because more than 24 hours have passed "
             "since the customer last replied to this number."),
    131048: (400, "Spam rate limit hit", "Message failed to send because there are restrictions on how many "
             "messages can be sent from this phone number."),
    131049: (400, "This message was not delivered to maintain healthy ecosystem engagement.",
             "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."),
    131050: (400, "User has stopped marketing messages",
             "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages "
             "on WhatsApp from your business."),
    131051: (400, "Unsupported message type", "Message type is not currently supported."),
    131052: (400, "Media download error", "Unable to download the media sent by the user."),
    131053: (400, "Media upload error", "Unable to upload the media used in the message."),
    131056: (400, "(Business Account, Consumer Account) pair rate limit hit",
             "Too many messages sent from the sender phone number to the same recipient phone number in a "
             "short period of time."),
    131057: (500, "Account in maintenance mode", "Business Account is in maintenance mode."),
    132000: (400, "Number of parameters does not match the expected number of params",
             "The number of variable parameter values included in the request did not match the number of "
             "variable parameters defined in the template."),
    132001: (404, "Template does not exist", "The template does not exist in the specified language or the "
             "template has not been approved."),
    132005: (400, "Translated text too long", "Translated text is too long."),
    132007: (400, "Template format character policy violated",
             "Template content violates a WhatsApp policy."),
    132012: (400, "Parameter format does not match format in the created template",
             "Variable parameter values formatted incorrectly."),
    132015: (400, "Template is paused", "Template is paused due to low quality so it cannot be sent."),
    132016: (400, "Template is disabled", "Template has been paused too many times due to low quality and is "
             "now permanently disabled."),
    133016: (400, "Account register deregister rate limit exceeded",
             "Registration or Deregistration failed because there were too many attempts for this phone "
             "number in a short period of time."),
}
TRANSIENT_WHATSAPP = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131057})
WHATSAPP_SUBCODES = {190: 463}

# Messenger / Instagram Send API (Graph): code -> (HTTP status, message, subcode)
MESSENGER_ERRORS: dict[int, tuple[int, str, int | None]] = {
    10: (400, "(#10) This message is sent outside of allowed window. Learn more about the new policy here: "
              "https://developers.facebook.com/docs/messenger-platform/policy-overview", 2018278),
    100: (400, "(#100) No matching user found", 2018001),
    190: (401, "Error validating access token: Session has expired.", 463),
    200: (403, "(#200) The user hasn't authorized the app to perform this action", None),
    230: (403, "(#230) Requires pages_messaging permission to manage the object", None),
    551: (400, "(#551) This person isn't available right now.", 1545041),
    613: (400, "(#613) Calls to this api have exceeded the rate limit.", None),
    4: (429, "(#4) Application request limit reached", None),
    2: (503, "An unexpected error has occurred. Please retry your request later.", None),
    1: (500, "An unknown error has occurred.", None),
}
TRANSIENT_MESSENGER = frozenset({1, 2, 4, 613})

# Twilio: code -> (HTTP status, message template; {to}/{from} filled in)
TWILIO_ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21212: (400, "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."),
    21408: (400, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: "
                 "{to}."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (400, "The 'From' phone number provided is not a valid message-capable Twilio phone number for this "
                 "destination/account."),
    21609: (400, "The StatusCallback URL is not a valid URL."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21611: (400, "This 'From' number has exceeded the maximum number of queued messages"),
    21612: (400, "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: "
                 "{from} via SMS."),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
    21619: (400, "A text message body or media urls must be specified."),
    21620: (400, "Invalid media URL(s)"),
    21623: (400, "Number of media files exceeds allowed limit"),
    21910: (400, "Invalid From and To pair. From and To should be of the same channel"),
}
# Delivery failures Twilio reports in status callbacks (the send itself answered 201).
TWILIO_ASYNC_ERRORS: dict[int, str] = {
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
    30034: "Message from an unregistered number",
    63016: "Failed to send freeform message because you are outside the allowed window. If you are using "
           "WhatsApp, please use a Message Template.",
}


def whatsapp_error(code: int, details: str | None = None, *, message: str | None = None,
                   error_type: str = "OAuthException") -> tuple[int, dict]:
    """(HTTP status, body) of a Cloud API error answer for ``code``."""
    status, title, default_details = WHATSAPP_ERRORS.get(code, (400, "Error", "Unknown error."))
    error: dict[str, Any] = {
        "message": message or f"(#{code}) {title}",
        "type": error_type,
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details or default_details},
    }
    if code in WHATSAPP_SUBCODES:
        error["error_subcode"] = WHATSAPP_SUBCODES[code]
    if code in TRANSIENT_WHATSAPP:
        error["is_transient"] = True
    error["fbtrace_id"] = ids.fbtrace_id()
    return status, {"error": error}


def whatsapp_webhook_error(code: int, details: str | None = None) -> dict:
    """One item of a failed status's ``errors[]`` (webhook shape: code, title, message, error_data, href)."""
    _, title, default_details = WHATSAPP_ERRORS.get(code, (400, "Error", "Unknown error."))
    return {"code": code, "title": title, "message": title,
            "error_data": {"details": details or default_details}, "href": META_ERROR_DOCS}


def graph_error(status: int, message: str, code: int, *, subcode: int | None = None,
                error_type: str = "OAuthException", transient: bool = False) -> tuple[int, dict]:
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient:
        error["is_transient"] = True
    error["fbtrace_id"] = ids.fbtrace_id()
    return status, {"error": error}


def messenger_error(code: int, message: str | None = None) -> tuple[int, dict]:
    status, default, subcode = MESSENGER_ERRORS.get(code, (400, f"(#{code}) Error", None))
    return graph_error(status, message or default, code, subcode=subcode, transient=code in TRANSIENT_MESSENGER)


def twilio_error(code: int, *, to: str = "", from_: str = "", message: str | None = None) -> tuple[int, dict]:
    status, template = TWILIO_ERRORS.get(code, (400, TWILIO_ASYNC_ERRORS.get(code, "Error")))
    text = message or template.replace("{to}", to).replace("{from}", from_)
    return status, {"code": code, "message": text, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status}


def twilio_error_message(code: int) -> str:
    if code in TWILIO_ASYNC_ERRORS:
        return TWILIO_ASYNC_ERRORS[code]
    return TWILIO_ERRORS.get(code, (400, "Error"))[1].replace("{to}", "").replace("{from}", "")


def retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds as an integer ("7"); a fraction is kept ("0.5", a sandbox liberty
    for fast tests; the gateway's parsers read it as a float)."""
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)
