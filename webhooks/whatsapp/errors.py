"""What a Cloud API error answer means for the send worker (protocols.md B3).

``RULES`` maps a Graph error ``code`` to retry-later (with a default delay) or a permanent
failure (with what to do about it). Meta asks integrators to build on ``code`` and
``error_data.details``, never on ``title`` (titles are being deprecated):
https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/

``classify(status, body, retry_after)`` turns one non-2xx answer into a ``SendResult``.
An answer nobody knows: 5xx (or a 4xx Meta flags ``is_transient``) retries, other 4xx fail
with Meta's own message.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from gateway.providers import SendResult

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
SERVER_ERROR_DELAY = 30.0            # 5xx or an unknown transient code
RATE_LIMIT_DELAY = 10.0              # a bare HTTP 429 without a Graph code
PAIR_RATE_MIN_DELAY = 6.0            # Meta: about one message per 6 s to the same user
MAX_DETAIL = 200                     # characters of Meta's own words kept in a reason
TOKEN_FIX = "update the channel's access_token"


@dataclass(frozen=True)
class Rule:
    retry: bool                      # True: try again after ``delay_s``; False: failed for good
    advice: str                      # what happened and what to do, without personal data
    delay_s: float | None = None     # default delay when Meta sends no Retry-After
    min_delay_s: float = 0.0         # never advise less, whatever Retry-After says
    opted_out: bool = False
    channel_problem: bool = False    # every message of the channel would fail the same way: pause it


def _retry(advice: str, delay_s: float, min_delay_s: float = 0.0) -> Rule:
    return Rule(True, advice, delay_s, min_delay_s)


def _fail(advice: str, **flags: bool) -> Rule:
    return Rule(False, advice, **flags)


_PERMISSION = _fail("the access token lacks a permission on this WhatsApp Business Account: give its system user "
                    f"whatsapp_business_messaging on the WABA and {TOKEN_FIX}", channel_problem=True)

RULES: dict[int, Rule] = {
    # -- later: rate limits, maintenance, Meta's own trouble -------------------------------------------
    1: _retry("Meta reported an unknown error; trying again later", SERVER_ERROR_DELAY),
    2: _retry("Meta's service is temporarily unavailable; trying again later", SERVER_ERROR_DELAY),
    4: _retry("the app hit Graph's API call rate limit; slowing down", MINUTE),
    80007: _retry("the WhatsApp Business Account hit its rate limit; slowing down", MINUTE),
    130429: _retry("the number's throughput (messages per second) was exceeded; queued for a moment", 2.0),
    # Pair rate: Meta suggests waiting 4^n seconds, never retrying at once; one message per ~6 s per user.
    131056: _retry("too many messages to this customer in a short time (pair rate limit); waiting before the next",
                   16.0, PAIR_RATE_MIN_DELAY),
    131057: _retry("the business account is in maintenance (e.g. a throughput upgrade); trying again shortly",
                   MINUTE),
    131000: _retry("Meta failed to send for an unknown reason; trying again a few times", SERVER_ERROR_DELAY),
    131016: _retry("Meta's service is temporarily unavailable; trying again later", SERVER_ERROR_DELAY),
    133016: _retry("the number hit the register/deregister rate limit; trying again much later", HOUR, HOUR),
    # Meta chose not to deliver (per-user marketing cap): wait about a day, not in increasing loops.
    131049: _retry("Meta did not deliver this message to keep the customer's experience healthy (marketing limit); "
                   "trying again in about a day", DAY, DAY),

    # -- permanent: the customer, the window, the request, the template ------------------------------
    131026: _fail("undeliverable: the customer may not be on WhatsApp, may use an old app, may not have accepted "
                  "the terms, or has blocked the business; do not resend free-form, reach them another way"),
    131047: _fail("the 24-hour customer service window has closed: send an approved template instead"),
    131050: _fail("the customer stopped marketing messages from this business: record the opt-out and "
                  "send them no more marketing", opted_out=True),
    131051: _fail("WhatsApp does not support this message type: send a supported type"),
    131052: _fail("WhatsApp could not download the media: send the media again"),
    131053: _fail("WhatsApp could not fetch or accept the media: check that the link is public and the file's "
                  "type and size are supported, or upload it and send by id"),
    131008: _fail("a required parameter is missing: fix the message"),
    131009: _fail("a parameter value is invalid: fix the message"),
    131021: _fail("the recipient is the business's own number: send to another number"),
    131030: _fail("the recipient is not in this test number's allowed list: add it in the App Dashboard "
                  "(WhatsApp > API Setup) or use a production number"),
    131031: _fail("the business account is locked: resolve it in WhatsApp Manager before sending"),
    131042: _fail("a billing or eligibility problem on the business account: fix the payment method in "
                  "WhatsApp Manager"),
    131045: _fail("the phone number's certificate or registration is not valid: register the number again"),
    131048: _fail("spam rate limit: too many of this number's messages were blocked or flagged; slow down and "
                  "check the number's quality rating before sending more"),
    130472: _fail("the customer is in a Meta marketing experiment group: this marketing message was not sent"),
    132000: _fail("the number of template parameters does not match the template: fix the parameters"),
    132001: _fail("the template does not exist in this language or is not approved: check the name and the "
                  "exact language code (en is not en_US)"),
    132005: _fail("the template's text is too long once the parameters are filled in: shorten the parameters"),
    132007: _fail("the template's content violates WhatsApp policy: edit the template"),
    132008: _fail("a template parameter is missing or invalid: fix the parameters"),
    132012: _fail("a template parameter has the wrong format (type, newlines, tabs, too many spaces): "
                  "fix the parameters"),
    132015: _fail("the template is paused for low quality: pause campaigns using it and improve it"),
    132016: _fail("the template is permanently disabled for low quality: create a new template"),
    100: _fail("Meta rejected a parameter (recipient, field or value): fix the message"),
    368: _fail("the business is temporarily blocked for policy violations: stop sending and check "
               "WhatsApp Manager"),

    # -- the channel itself: credentials and permissions ----------------------------------------------
    0: _fail(f"authentication failed: {TOKEN_FIX}", channel_problem=True),
    190: _fail(f"the access token has expired or is invalid: {TOKEN_FIX}", channel_problem=True),
    3: _fail(f"the app lacks the capability to send WhatsApp messages: check the app's WhatsApp product and "
             f"{TOKEN_FIX}", channel_problem=True),
    10: _PERMISSION,
}


def rule_for(code: int | None) -> Rule | None:
    if code is None:
        return None
    if code in RULES:
        return RULES[code]
    if 200 <= code <= 299:           # the whole Graph permission range
        return _PERMISSION
    return None


# -- reading Graph's error object ---------------------------------------------------------------------

def _as_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def error_object(body: Any) -> dict:
    """The ``error`` object of a Graph answer (``{"error": {...}}``), or {} when the body has none."""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


_LONG_NUMBER = re.compile(r"\+?\d(?:[ -]?\d){7,}")   # 8+ digits: a phone number, not a code


def scrub(words: str, private: Iterable[str] = ()) -> str:
    """Meta's text, short and without the customer's address (phone numbers, BSUIDs) in it."""
    out = " ".join(words.split())
    for value in private:
        if value and len(value) >= 4:
            out = out.replace(value, "[recipient]")
    out = _LONG_NUMBER.sub("[number]", out)
    return out if len(out) <= MAX_DETAIL else out[:MAX_DETAIL - 1] + "…"


def meta_words(error: dict, private: Iterable[str] = ()) -> str | None:
    """``error_data.details`` when Meta gave it (the specific cause), else ``message``; never ``title``."""
    data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
    for candidate in (data.get("details"), error.get("message")):
        if isinstance(candidate, str) and candidate.strip():
            return scrub(candidate, private)
    return None


def classify(status: int, body: Any, retry_after: float | None = None,
             private: Iterable[str] = ()) -> SendResult:
    """One non-2xx Cloud API answer as a SendResult. ``private``: strings to keep out of the reason."""
    error = error_object(body)
    code = _as_code(error.get("code"))
    subcode = _as_code(error.get("error_subcode"))
    said = meta_words(error, tuple(private))
    error_code = str(code) if code is not None else str(status)
    label = f"WhatsApp error {code}" if code is not None else f"WhatsApp answered HTTP {status}"
    if subcode is not None:
        label += f" (subcode {subcode})"
    suffix = f" (Meta: {said})" if said else ""

    rule = rule_for(code)
    if rule is None:
        if status == 401:
            rule = _fail(f"the access token was rejected: {TOKEN_FIX}", channel_problem=True)
        elif status == 403:
            rule = _PERMISSION
        elif status == 429:
            rule = _retry("rate limited; slowing down", RATE_LIMIT_DELAY)
        elif status >= 500:
            rule = _retry("Meta's server failed; trying again later", SERVER_ERROR_DELAY)
        elif error.get("is_transient") is True:
            rule = _retry("Meta says the error is transient; trying again later", SERVER_ERROR_DELAY)
        else:
            # An unknown 4xx: Meta's own words are the best reason we have.
            return SendResult("failed", error_code=error_code, reason=f"{label}: {said or 'request rejected'}")

    reason = f"{label}: {rule.advice}{suffix}"
    if rule.retry:
        delay = retry_after if retry_after is not None else rule.delay_s
        delay = max(delay if delay is not None else SERVER_ERROR_DELAY, rule.min_delay_s)
        return SendResult("retry", retry_after_s=delay, error_code=error_code, reason=reason)
    return SendResult("failed", error_code=error_code, reason=reason,
                      opted_out=rule.opted_out, channel_problem=rule.channel_problem)
