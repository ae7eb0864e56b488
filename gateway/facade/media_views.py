"""Cloud API media, and the Graph objects read by id, served from the gateway's own stores.

- ``POST /graph/v{N}/{phone-number-id}/media``: an upload, kept as ``POST /v1/media`` keeps it
  (``gateway.uploads``: encrypted, 30 days, Meta's types and sizes); answers ``{"id"}``, the id a send names.
- ``GET /graph/v{N}/{id}``: the id is an upload, an inbound media row (the ids the forwarded webhooks carry),
  one of the account's phone-number ids (Meta's phone number node) or one of its templates' Meta ids. Media
  answers Meta's ``{messaging_product, url, mime_type, sha256, file_size, id}``; ``url`` is
  ``…/graph/v{N}/{id}/content`` on this gateway, fetched with the same Bearer key, as Meta's lookaside URL is.
- ``DELETE /graph/v{N}/{id}``: deletes an upload. Media a customer sent is part of the conversation history:
  it goes with the history (erasure, retention), not one file at a time through a send-scoped key, so
  deleting it is refused.

Ids of another account are "does not exist" (code 100, subcode 33), exactly like unknown ones. Reads of media
are reads of personal data and leave an audit row each, as the REST API's reads do.
"""
from __future__ import annotations

import uuid

from flask import Response, request
from werkzeug.formparser import parse_form_data

from gateway import channels, uploads
from gateway import media as inbound_media
from gateway.accounts import audit
from gateway.api.upload_views import UPLOAD_MAX_REQUEST_BYTES, _disposition, _in_memory
from gateway.facade.auth import graph, whatsapp_channel
from gateway.facade.errors import GraphError, no_such_object
from gateway.facade.template_views import MetaError, gateway_base, template_object
from gateway.facade.translate import invalid, required
from gateway.facade.views import bp
from templates_catalog import store as template_store

# Every type an upload may have (Meta's list, which uploads.RULES keeps).
ACCEPTED_TYPES = tuple(t for rule in uploads.RULES.values() for t in rule.types)
_GENERIC = ("", "application/octet-stream", "binary/octet-stream")


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _record_read(conn, principal, target_type: str, target_id) -> None:
    """Art. 30: who read which file, in the request's transaction (as ``@api`` does for /v1 GETs).

    ``gateway.audit.record_read`` decides by /v1 resource and records nothing for a /graph rule, so the row
    is written with the same actor, action form and target it would have written."""
    audit(conn, account_id=principal.account_id, actor=principal.actor, action=f"read:{request.url_rule.rule}",
          target_type=target_type, target_id=target_id, detail={})


# -- upload -------------------------------------------------------------------------------------------------

@bp.post("/<version>/<phone_number_id>/media")
@graph(scope="messages:send")
def upload_media(conn, principal, phone_number_id):
    """Meta's upload: multipart ``file``, ``type`` (its MIME type) and ``messaging_product=whatsapp``."""
    whatsapp_channel(conn, principal.account_id, phone_number_id)
    if request.mimetype != "multipart/form-data":
        raise GraphError(100, "Invalid parameter", "send the file as multipart/form-data with the parts 'file' "
                         "(the file, with its Content-Type), 'type' (its MIME type) and messaging_product=whatsapp, "
                         "e.g. curl -F file=@photo.jpg;type=image/jpeg -F type=image/jpeg "
                         "-F messaging_product=whatsapp")
    _, form, files = parse_form_data(request.environ, stream_factory=_in_memory,
                                     max_content_length=request.max_content_length,
                                     max_form_memory_size=request.max_form_memory_size,
                                     max_form_parts=request.max_form_parts)
    product = form.get("messaging_product")
    if product is None:
        raise required("messaging_product")
    if product != "whatsapp":
        raise invalid("messaging_product", "messaging_product must be 'whatsapp'")
    part = files.get("file")
    if part is None:
        raise required("file")
    declared = form.get("type")
    if not declared:
        raise required("type")
    data = part.read()
    # 'type' says what the file is (Meta's reading); a specific Content-Type on the part stands in for a
    # generic 'type' such as application/octet-stream.
    mime = declared if declared.split(";")[0].strip().lower() not in _GENERIC else (part.content_type or declared)
    try:
        stored = uploads.store(conn, account_id=principal.account_id, data=data, mime_type=mime,
                               filename=part.filename, kind=None)
    except uploads.TooLarge as exc:
        raise GraphError(100, "Invalid parameter", f"File Too Large: {exc}",
                         extra={"limit_bytes": exc.limit_bytes}) from None
    except uploads.UploadError as exc:
        shown = mime.split(";")[0].strip().lower()
        if shown not in ACCEPTED_TYPES:
            raise GraphError(100, "Param file must be a file with one of the following types: "
                             f"{', '.join(ACCEPTED_TYPES)}. Received file of type '{shown[:100]}'.",
                             str(exc)) from None
        raise GraphError(131053, "Media upload error", str(exc)) from None
    return {"id": str(stored["id"])}


upload_media.max_request_bytes = UPLOAD_MAX_REQUEST_BYTES   # read by the app's body-size check: 100 MB documents


# -- objects by id ------------------------------------------------------------------------------------------

def _content_url(object_id: str) -> str:
    return f"{gateway_base()}/graph/{request.view_args['version']}/{object_id}/content"


def _media_answer(object_id, mime_type: str | None, sha256: str | None, size: int | None) -> dict:
    return {"messaging_product": "whatsapp", "url": _content_url(str(object_id)),
            "mime_type": mime_type or "application/octet-stream", "sha256": sha256, "file_size": size,
            "id": str(object_id)}


def _inbound(conn, account_id, media_id: uuid.UUID) -> dict | None:
    # The columns kept in clear beside the encrypted file: metadata without decrypting the whole file.
    return conn.execute("SELECT id, channel_id, kind, mime_type, state, attempts, last_error, size_bytes, sha256 "
                        "FROM media WHERE account_id = %s AND id = %s", (account_id, media_id)).fetchone()


def _phone_filter(conn, account_id, method: str) -> dict | None:
    """The channel ``?phone_number_id=`` names (Meta checks the media belongs to it); None when not given."""
    phone_number_id = request.args.get("phone_number_id")
    return whatsapp_channel(conn, account_id, phone_number_id, method) if phone_number_id else None


def _not_ready(row: dict) -> GraphError:
    if row["state"] == "failed":
        return GraphError(131052, "Media download error", f"the gateway could not download this file from the "
                          f"provider: {row['last_error']}; once the cause is fixed, POST /v1/media/{row['id']}/retry "
                          "puts it back in line", extra={"media_state": "failed"})
    return MetaError(131016, "Service unavailable", f"the gateway is still downloading this file from the provider "
                     f"(attempt {row['attempts']}); retry in a few seconds", status=503,
                     headers={"Retry-After": "5"}, extra={"media_state": row["state"]}, top={"is_transient": True})


def _media(conn, principal, object_id: str, method: str):
    """('upload', metadata) or ('inbound', row) for a media id of this account, else None."""
    media_id = _uuid(object_id)
    if media_id is None:
        return None
    channel = _phone_filter(conn, principal.account_id, method)
    found = uploads.get(conn, account_id=principal.account_id, upload_id=media_id)
    if found is not None:
        if found["expired"]:   # Meta keeps uploads 30 days too; after that the id names nothing
            raise no_such_object(object_id, method)
        return "upload", found
    row = _inbound(conn, principal.account_id, media_id)
    if row is not None:
        if channel is not None and row["channel_id"] != channel["id"]:
            raise no_such_object(object_id, method)
        return "inbound", row
    return None


def _known_media(conn, principal, object_id: str, method: str):
    """``_media``, or Meta's "does not exist" for an id that names no media of this account."""
    found = _media(conn, principal, object_id, method)
    if found is None:
        raise no_such_object(object_id, method)
    return found


def _phone_number(conn, account_id, phone_number_id: str) -> dict:
    """Meta's phone number node from what the gateway knows: the channel, and the latest phone quality and
    name updates Meta sent (channels.health). What it does not know is left out, never guessed."""
    row = whatsapp_channel(conn, account_id, phone_number_id, "get")
    channel = channels.get_channel(conn, account_id=account_id, channel_id=row["id"]) or {}
    settings, health = channel.get("settings") or {}, channel.get("health") or {}
    quality = health.get("phone_quality") if isinstance(health.get("phone_quality"), dict) else {}
    name = health.get("phone_name") if isinstance(health.get("phone_name"), dict) else {}
    decision = str(name.get("decision") or "").upper()
    out: dict = {"id": row["external_id"]}
    display = quality.get("display_phone_number") or name.get("display_phone_number") \
        or settings.get("display_phone_number")
    if display:
        out["display_phone_number"] = str(display)
    verified = (name.get("requested_verified_name") if decision == "APPROVED" else None) \
        or settings.get("verified_name")
    if verified:
        out["verified_name"] = str(verified)
    name_status = {"APPROVED": "APPROVED", "REJECTED": "DECLINED", "PENDING": "PENDING_REVIEW",
                   "DEFERRED": "PENDING_REVIEW"}.get(decision)
    if name_status:
        out["name_status"] = name_status
    rating = str(settings.get("quality_rating") or "").upper()
    if rating in ("GREEN", "YELLOW", "RED", "UNKNOWN"):
        out["quality_rating"] = rating
    tier = quality.get("current_limit")
    if isinstance(tier, str) and tier.startswith("TIER_"):
        out["messaging_limit_tier"] = tier
    out["platform_type"] = "CLOUD_API"
    fields = request.args.get("fields")
    if fields:
        wanted = {f.strip() for f in fields.split(",")}
        out = {k: v for k, v in out.items() if k in wanted or k == "id"}
    return out


@bp.get("/<version>/<object_id>")
@graph(scope="messages:read")
def get_object(conn, principal, object_id):
    """A media id → Meta's media URL object; a phone-number id → its node; a template id → the template."""
    found = _media(conn, principal, object_id, "get")
    if found is not None:
        kind, meta = found
        if kind == "upload":
            _record_read(conn, principal, "upload", meta["id"])
            return _media_answer(meta["id"], meta["mime_type"], meta["sha256"], meta["size_bytes"])
        if meta["state"] != "stored":
            raise _not_ready(meta)
        _record_read(conn, principal, "media", meta["id"])
        return _media_answer(meta["id"], meta["mime_type"], meta["sha256"], meta["size_bytes"])
    if _uuid(object_id) is None:
        template = template_store.get_by_meta_id(conn, account_id=principal.account_id, meta_id=object_id)
        if template is not None:
            return template_object(template)
    return _phone_number(conn, principal.account_id, object_id)   # or Meta's "does not exist"


@bp.get("/<version>/<object_id>/content")
@graph(scope="messages:read")
def get_content(conn, principal, object_id):
    """The bytes behind a media URL this facade handed out (Bearer key required, like Meta's lookaside)."""
    kind, meta = _known_media(conn, principal, object_id, "get")
    if kind == "upload":
        try:
            data, mime, filename = uploads.load_content(conn, account_id=principal.account_id,
                                                        upload_id=meta["id"])
        except LookupError:
            raise no_such_object(object_id, "get") from None
    else:
        stored = inbound_media.content(conn, account_id=principal.account_id, media_id=meta["id"])
        if stored is None:
            raise no_such_object(object_id, "get")
        if stored["data"] is None:
            raise _not_ready(meta)
        data, mime, filename = stored["data"], stored["mime_type"], stored["filename"]
    _record_read(conn, principal, kind if kind == "upload" else "media", meta["id"])
    headers = {"Content-Length": str(len(data)), "Cache-Control": "private, max-age=300",
               "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}
    if filename:
        headers["Content-Disposition"] = _disposition(filename)
    return Response(data, 200, content_type=mime or "application/octet-stream", headers=headers)


@bp.delete("/<version>/<object_id>")
@graph(scope="messages:send")
def delete_object(conn, principal, object_id):
    """Delete an upload of this account (as Meta deletes uploaded media); ``{"success": true}``."""
    kind, meta = _known_media(conn, principal, object_id, "delete")
    if kind == "inbound":
        raise GraphError(100, "Invalid parameter", "this is media a customer sent: it is part of the conversation "
                         "history and is deleted with it (contact erasure or the account's retention), not one "
                         "file at a time; only media you uploaded can be deleted here")
    uploads.delete(conn, account_id=principal.account_id, upload_id=meta["id"])
    audit(conn, account_id=principal.account_id, actor=principal.actor, action="upload.deleted",
          target_type="upload", target_id=meta["id"], detail={"size_bytes": meta["size_bytes"]})
    return {"success": True}
