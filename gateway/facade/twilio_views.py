"""The Twilio-shaped facade: Twilio's Messages API under ``/twilio``, through the gateway's one send gate.

An integration written with Twilio's SDK changes its base URL to ``{gateway}/twilio`` and its credentials to
AccountSid = the gateway account's (``"AC" + account id hex``, shown by ``GET /v1/account``) and auth token = a
gateway API key with ``messages:send``; nothing else. ``POST …/Messages.json`` becomes what ``POST /v1/messages``
makes of it (``outbound.accept``: the same gate, consent, window, encryption, at-most-once send) and answers
201 with Twilio's Message resource; ``GET …/Messages/{sid}.json`` reads it back with its current status. A
``StatusCallback`` gets Twilio's signed status callbacks through the webhook delivery machinery (retries,
order per thread, delivery log, replay): see twilio_format.
"""
from __future__ import annotations

import functools
import logging
from urllib.parse import urlsplit

import psycopg
import redis
from flask import Blueprint, g, request
from werkzeug.exceptions import HTTPException

from gateway import db, outbound, send_gate, webhook_endpoints
from gateway.accounts import authenticate
from gateway.http import authenticated
from gateway.contacts import normalise_phone
from gateway.facade import twilio_format
from gateway.facade.twilio_errors import TwilioError, not_found, refused, unauthenticated

log = logging.getLogger("gateway.facade.twilio")
bp = Blueprint("twilio_api", __name__, url_prefix="/twilio")
API = "/2010-04-01/Accounts/<account_sid>"
BODY_LIMIT = 1600
MEDIA_LIMIT = 1            # one MediaUrl per message: a gateway message carries one media item
_KINDS = {"jpg": "image", "jpeg": "image", "png": "image", "gif": "image", "webp": "image",
          "mp4": "video", "3gp": "video", "mov": "video",
          "mp3": "audio", "ogg": "audio", "amr": "audio", "m4a": "audio", "aac": "audio", "opus": "audio",
          "wav": "audio", "pdf": "document", "doc": "document", "docx": "document", "xls": "document",
          "xlsx": "document", "ppt": "document", "pptx": "document", "txt": "document", "csv": "document",
          "zip": "document", "vcf": "document"}


@bp.errorhandler(TwilioError)
def _twilio_error(exc: TwilioError):
    return exc.response()


@bp.errorhandler(db.DatabaseUnavailable)
@bp.errorhandler(redis.RedisError)
def _unavailable(exc):
    # 20429's handling (safe to retry with backoff) is what an outage needs.
    return TwilioError(20429, "Too Many Requests: the gateway's database or job queue is unreachable; retry "
                       "shortly", status=429, headers={"Retry-After": "5"}).response()


@bp.errorhandler(psycopg.DataError)
def _unstorable(exc):
    return TwilioError(21618, "The message body cannot be stored (a NUL character, or a value out of range); "
                       "remove or change it").response()


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    if exc.code == 404:
        return not_found(request.path.removeprefix("/twilio")).response()
    return TwilioError(20001, f"{request.method} {request.path}: {exc.description or exc.name}",
                       status=exc.code or 400).response()


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    log.error("unhandled error in the Twilio facade", exc_info=exc)
    return TwilioError(20500, "Internal Server Error: something went wrong on the gateway's side",
                       status=500).response()


def twilio(scope: str):
    """HTTP Basic: username = the account's AccountSid, password = a gateway API key with ``scope``; the URL's
    AccountSid must be the same. Runs the view in one transaction."""
    def wrap(view):
        @functools.wraps(view)
        def inner(account_sid, **kwargs):
            auth = request.authorization
            if auth is None or auth.type != "basic" or not auth.username or not auth.password:
                raise unauthenticated("send HTTP Basic credentials: the AccountSid (GET /v1/account's "
                                      "twilio_account_sid) and a gateway API key as the auth token")

            def principal_of(conn):
                principal = authenticate(conn, auth.password)
                if principal is None:
                    raise unauthenticated("the auth token is not a valid gateway API key (unknown or revoked)")
                return principal
            return authenticated(principal_of, lambda conn, principal: _serve(conn, principal, auth, account_sid,
                                                                              kwargs))

        def _serve(conn, principal, auth, account_sid, kwargs):
            mine = twilio_format.account_sid(principal.account_id)
            if auth.username != mine or account_sid != mine:
                conn.commit()
                raise unauthenticated("the AccountSid (username and URL) must be the one of the API key's "
                                      "account; GET /v1/account says it (twilio_account_sid)")
            g.account_id = principal.account_id
            if not principal.allows(scope):
                conn.commit()
                raise TwilioError(20403, f"Forbidden: the API key lacks the scope '{scope}'; use a key that "
                                  "has it", status=403)
            return view(conn=conn, principal=principal, api_key=auth.password, account_sid=mine, **kwargs)

        inner.required_scope = scope
        return inner
    return wrap


# -- send -----------------------------------------------------------------------------------------------------------

@bp.post(f"{API}/Messages.json")
@twilio(scope="messages:send")
def create_message(conn, principal, api_key, account_sid):
    """Send a message (Twilio's Messages API form body)."""
    form = request.form
    to = (form.get("To") or "").strip()
    if not to:
        raise TwilioError(21604, "A 'To' phone number is required.")
    body = form.get("Body")
    media = [u.strip() for u in form.getlist("MediaUrl") if u.strip()]
    if not (body or "").strip() and not media:
        raise TwilioError(21602, "Message body is required: give Body, MediaUrl, or both.")
    if body is not None and len(body) > BODY_LIMIT:
        raise TwilioError(21617, f"The concatenated message body exceeds the {BODY_LIMIT} character limit "
                          f"({len(body)} characters).")
    if len(media) > MEDIA_LIMIT:
        raise TwilioError(21623, "Number of media files exceeds allowed limit: the gateway sends one MediaUrl per "
                          "message; send the others as further messages.")
    for url in media:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TwilioError(21620, f"Invalid media URL(s): {url!r} is not an absolute http(s) URL.")
    callback = form.get("StatusCallback")
    if callback is not None and callback.strip():
        problems = webhook_endpoints.check_url(callback)
        if problems:
            raise TwilioError(21609, f"Invalid 'StatusCallback': {problems[0]['detail']}.")
    channel = _channel(conn, principal.account_id, form.get("From"), form.get("MessagingServiceSid"))
    address = to[len("whatsapp:"):] if to.lower().startswith("whatsapp:") else to
    try:
        normalise_phone(address)
    except ValueError:
        # The value is not repeated: it may be (part of) a customer's number, and errors carry no personal data.
        raise TwilioError(21211, "Invalid 'To' Phone Number: give the customer's number in E.164 form (+ and the "
                          "country code), with whatsapp: for WhatsApp.") from None
    kind, content = _content(body, media)
    key = request.headers.get("Idempotency-Key") or request.headers.get("I-Twilio-Idempotency-Token")
    if key is not None and not 1 <= len(key) <= 255:
        raise TwilioError(21201, "The Idempotency-Key header must be 1 to 255 characters.")
    try:
        accepted, created = outbound.accept(
            conn, principal.account_id, channel_id=channel["id"], kind=kind, content=content,
            to={"kind": "phone", "address": address}, purpose="transactional", idempotency_key=key,
            body_for_hash={k: form.getlist(k) for k in sorted(form.keys())})
    except send_gate.Refused as exc:
        raise refused(exc) from None
    except outbound.InvalidRecipient as exc:
        raise TwilioError(21211, f"Invalid 'To' Phone Number: {exc}") from None
    except outbound.IdempotencyConflict as exc:
        raise TwilioError(20409, f"Conflict: {exc}", status=409) from None
    except outbound.NotFound as exc:
        raise TwilioError(21606, f"The 'From' number cannot send for this account: {exc}") from None
    message_id = accepted["id"] if created else accepted
    if created:
        if callback is not None and callback.strip():
            webhook_endpoints.link_status_callback(conn, account_id=principal.account_id, message_id=message_id,
                                                   api_key_id=principal.key_id, api_key=api_key, url=callback,
                                                   scopes=principal.scopes)
        conn.commit()
        outbound.enqueue(principal.account_id, message_id)
    found = twilio_format.load(conn, [(principal.account_id, message_id)])
    m = found.get((str(principal.account_id), str(message_id)))
    if m is None:
        raise not_found(f"/2010-04-01/Accounts/{account_sid}/Messages/{twilio_format.message_sid(message_id)}.json")
    return m.resource(), 201


def _shown(value: str) -> str:
    return repr(value[:40])


def _content(body: str | None, media: list[str]) -> tuple[str, dict]:
    if not media:
        return "text", {"body": body}
    url = media[0]
    ext = urlsplit(url).path.rsplit("/", 1)[-1].rpartition(".")[2].lower()
    kind = _KINDS.get(ext, "image")
    content: dict = {"link": url}
    if body and body.strip() and kind in ("image", "video", "document"):
        content["caption"] = body
    if kind == "document":
        content["filename"] = urlsplit(url).path.rsplit("/", 1)[-1] or "document"
    return kind, content


def _channel(conn, account_id, from_: str | None, service_sid: str | None) -> dict:
    """The account's channel a From (or MessagingServiceSid) names: a twilio channel whose external id is that
    number (a Twilio WhatsApp sender registered with or without ``whatsapp:``), or a WhatsApp channel whose
    display number has those digits; a MessagingServiceSid, a twilio channel's settings.messaging_service_sid
    (or a channel registered with the MG… sid as its external id)."""
    cols = "SELECT id, kind, external_id, settings FROM channels WHERE account_id = %s "
    if not (from_ or "").strip():
        if not (service_sid or "").strip():
            raise TwilioError(21603, "A 'From' phone number (or a MessagingServiceSid) is required.")
        sid = service_sid.strip()
        row = conn.execute(cols + "AND kind = 'twilio' AND (settings ->> 'messaging_service_sid' = %s "
                           "OR external_id = %s) ORDER BY created_at LIMIT 1", (account_id, sid, sid)).fetchone()
        if row is None:
            raise TwilioError(21606, f"The MessagingServiceSid {sid} is not one of this account's channels "
                              "(settings.messaging_service_sid of a twilio channel).")
        return row
    raw = from_.strip()
    wa = raw.lower().startswith("whatsapp:")
    number = raw[len("whatsapp:"):] if wa else raw
    try:
        e164 = normalise_phone(number)
    except ValueError:
        raise TwilioError(21212, f"Invalid 'From' Phone Number: {_shown(raw)} is not a phone number in E.164 "
                          "form.") from None
    rows = conn.execute(
        cols + "AND ((kind = 'twilio' AND external_id = ANY (%s)) OR (kind = 'whatsapp' AND "
        "regexp_replace(coalesce(settings ->> 'display_phone_number', ''), '[^0-9]', '', 'g') = %s)) "
        "ORDER BY created_at", (account_id, [number, e164, "whatsapp:" + number, "whatsapp:" + e164],
                                e164.lstrip("+"))).fetchall()
    fits = [r for r in rows if twilio_format.is_whatsapp(r["kind"], r["external_id"], r["settings"]) == wa]
    if not fits:
        if rows:
            raise TwilioError(21606, f"The 'From' number {_shown(raw)} is a channel of this account, but not a "
                              f"{'WhatsApp' if wa else 'SMS'} sender: " + (
                                  "register the Twilio WhatsApp sender with settings.channel = \"whatsapp\"" if wa
                                  else "send with the whatsapp: prefix"))
        raise TwilioError(21606, f"The 'From' phone number {_shown(raw)} is not a valid, message-capable number "
                          "of this account: use the number of one of its twilio channels, or the display number "
                          "of one of its WhatsApp channels.")
    return fits[0]


# -- read -----------------------------------------------------------------------------------------------------------

@bp.get(f"{API}/Messages/<message_sid>.json")
@twilio(scope="messages:read")
def fetch_message(conn, principal, api_key, account_sid, message_sid):
    """A message sent through the facade (or any outbound message of the account), with its current status."""
    message_id = twilio_format.parse_sid(message_sid, "SM")
    found = {} if message_id is None else twilio_format.load(conn, [(principal.account_id, message_id)])
    m = found.get((str(principal.account_id), str(message_id)))
    if m is None:
        raise not_found(f"/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}.json")
    return m.resource()

