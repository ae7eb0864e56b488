"""Messenger / Instagram Send API: ``POST /{version}/{page_id|me}/messages`` (protocols.md C2).

Answers ``{"recipient_id", "message_id"}``; errors in the Graph envelope (100 no matching
user, 10/2018278 outside the window, 551, 613 rate limit, ...). After a message is
accepted, delivery and read events go to ``{gateway_url}/webhooks/messenger`` (or
``/webhooks/instagram`` with ``platform: "instagram"``), signed with ``app_secret``.
"""
from __future__ import annotations

from typing import Any

from gateway.sandbox import errors, ids
from gateway.sandbox.callbacks import Step, meta_request, messenger_echo, messenger_envelope, messenger_item
from gateway.sandbox.cloud import infrastructure_fault
from gateway.sandbox.core import Req, Response, Sandbox

MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
TAGS = ("HUMAN_AGENT", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "CUSTOMER_FEEDBACK")
SENDER_ACTIONS = ("typing_on", "typing_off", "mark_seen", "react", "unreact")
ATTACHMENT_TYPES = ("image", "audio", "video", "file", "template", "fallback")


class Invalid(Exception):
    pass


def validate(doc: Any) -> tuple[str, str]:
    """(recipient id, kind) of a valid Send API body; raises Invalid with Graph's wording."""
    if not isinstance(doc, dict):
        raise Invalid("(#100) The parameter recipient is required")
    rcpt = doc.get("recipient")
    if not isinstance(rcpt, dict) or not any(isinstance(rcpt.get(k), str) and rcpt[k]
                                             for k in ("id", "user_ref", "comment_id", "post_id")):
        raise Invalid("(#100) The parameter recipient is required")
    who = next(rcpt[k] for k in ("id", "user_ref", "comment_id", "post_id") if isinstance(rcpt.get(k), str) and rcpt[k])
    message, action = doc.get("message"), doc.get("sender_action")
    if message is None and action is None:
        raise Invalid("(#100) Must send either message or state")
    if message is not None and action is not None:
        raise Invalid("(#100) Cannot send both message and sender_action in the same request")
    if action is not None:
        if action not in SENDER_ACTIONS:
            raise Invalid(f"(#100) Param sender_action must be one of {{{', '.join(SENDER_ACTIONS)}}} - got "
                          f"\"{action}\"")
        return who, "sender_action"
    mtype = doc.get("messaging_type", "RESPONSE")
    if mtype not in MESSAGING_TYPES:
        raise Invalid(f"(#100) Param messaging_type must be one of {{{', '.join(MESSAGING_TYPES)}}} - got \"{mtype}\"")
    if mtype == "MESSAGE_TAG" and doc.get("tag") not in TAGS:
        raise Invalid(f"(#100) Param tag must be one of {{{', '.join(TAGS)}}} - got \"{doc.get('tag')}\"")
    if not isinstance(message, dict):
        raise Invalid("(#100) param message must be non-empty.")
    text, attachment = message.get("text"), message.get("attachment")
    if text is None and attachment is None:
        raise Invalid("(#100) Must send either text or attachment")
    if text is not None and attachment is not None:
        raise Invalid("(#100) Only one of text or attachment can be specified")
    if text is not None:
        if not isinstance(text, str) or not text:
            raise Invalid("(#100) param message[text] must be a non-empty UTF-8 encoded string")
        if len(text.encode("utf-8")) > 2000:
            raise Invalid("(#100) Length of param message[text] must be less than or equal to 2000")
        kind = "text"
    else:
        if not isinstance(attachment, dict) or attachment.get("type") not in ATTACHMENT_TYPES:
            raise Invalid(f"(#100) Param message[attachment][type] must be one of {{{', '.join(ATTACHMENT_TYPES)}}}")
        if not isinstance(attachment.get("payload"), dict):
            raise Invalid("(#100) The parameter message[attachment][payload] is required")
        kind = attachment["type"]
    metadata = message.get("metadata")
    if metadata is not None and (not isinstance(metadata, str) or len(metadata) > 1000):
        raise Invalid("(#100) Length of param message[metadata] must be less than or equal to 1000")
    quick = message.get("quick_replies")
    if quick is not None and (not isinstance(quick, list) or len(quick) > 13):
        raise Invalid("(#100) param message[quick_replies] must have at most 13 elements")
    return who, kind


def send(sb: Sandbox, req: Req, version: str, page_id: str, doc: Any) -> Response:
    rec = {"provider": "messenger", "method": req.method, "path": req.path, "channel_id": page_id,
           "recipient": None, "type": None, "body": doc, "provider_message_id": None,
           "received_at": req.received_at, "http_status": 0, "error_code": None, "fault": None}
    token = req.arg("access_token") or req.bearer()
    if not token:
        status, body = errors.graph_error(401, "An access token is required to request this resource.", 190)
        return _finish(sb, rec, (status, body, None), 190)
    psid = None
    if isinstance(doc, dict) and isinstance(doc.get("recipient"), dict) and isinstance(doc["recipient"].get("id"), str):
        psid = doc["recipient"]["id"]
        rec["recipient"] = psid
    cfg = sb.faults.effective((page_id, f"to:{psid}") if psid else (page_id,))
    rec["provider"] = cfg["platform"]
    if cfg["access_token"] is not None and token != cfg["access_token"]:
        status, body = errors.graph_error(401, "Invalid OAuth access token - Cannot parse access token", 190)
        return _finish(sb, rec, (status, body, None), 190)
    sb.sleep(sb.faults.latency_s(cfg))
    fault = sb.faults.infrastructure(cfg)
    if fault == "timeout":
        rec["fault"] = "timeout"
        sb.sleep(cfg["timeout_s"])
    else:
        answer = infrastructure_fault(sb, cfg, fault)
        if answer is not None:
            rec["fault"] = fault
            return _finish(sb, rec, answer, answer[1]["error"]["code"])
    try:
        who, kind = validate(doc)
    except Invalid as bad:
        status, body = errors.graph_error(400, str(bad), 100)
        return _finish(sb, rec, (status, body, None), 100)
    rec["recipient"], rec["type"] = who, kind
    if kind == "sender_action":
        return _finish(sb, rec, (200, {"recipient_id": who}, None))
    code = sb.faults.provider_error(cfg, "messenger_error_code")
    if code == 10 and doc.get("messaging_type") == "MESSAGE_TAG":
        code = None      # a message tag is how a page writes outside the standard window
    if code is not None:
        rec["fault"] = rec["fault"] or f"error:{code}"
        status, body = errors.messenger_error(code, cfg["error_details"])
        return _finish(sb, rec, (status, body, None), code)
    message_id = ids.mid()
    rec["provider_message_id"] = message_id
    answer = _finish(sb, rec, (200, {"recipient_id": who, "message_id": message_id}, None))
    _schedule(sb, cfg, rec, page_id, who, message_id)
    return answer


def _finish(sb: Sandbox, rec: dict, answer: Response, error_code: int | None = None) -> Response:
    rec["http_status"] = answer[0]
    rec["error_code"] = error_code
    sb.store.record(rec)
    sb.store.count("requests", f"{rec['provider']}:{answer[0]}")
    return answer


def _schedule(sb: Sandbox, cfg: dict, rec: dict, page_id: str, psid: str, message_id: str) -> None:
    if not cfg["callbacks"] or not cfg["gateway_url"]:
        return
    secret = cfg["app_secret"]
    if not secret:
        sb.store.count("callbacks_skipped_no_app_secret")
        return
    platform = cfg["platform"]
    url = cfg["gateway_url"].rstrip("/") + f"/webhooks/{platform}"
    delay = cfg["status_delay_ms"] / 1000.0
    window = cfg["batch_window_ms"] / 1000.0
    # Messenger reports deliveries and reads; Instagram only reads (messaging_seen). Neither has "sent".
    words = [w for w in cfg["statuses"] if w == "read" or (w == "delivered" and platform == "messenger")]
    if cfg.get("echoes", True):
        words.insert(0, "echo")    # a page subscribed to message_echoes hears its own sends first

    key = (platform, url, secret, page_id)

    def wrap(items: list):
        return meta_request(url, messenger_envelope(platform=platform, page_id=page_id, events=items), secret)

    def step(status: str) -> Step:
        def item():
            if status == "echo":
                return messenger_echo(page_id=page_id, psid=psid, mid=message_id,
                                      message=(rec["body"] or {}).get("message") or {})
            return messenger_item(platform=platform, page_id=page_id, psid=psid, status=status, mid=message_id)

        def sent(http_status):
            rec["callback_status"] = status
            rec["callback_http_status"] = http_status
        return Step(f"{platform}:{status}", delay, None, message_id, sent, batch_key=key, item=item, wrap=wrap,
                    window_s=window)

    sb.dispatcher.submit([step(w) for w in words])
