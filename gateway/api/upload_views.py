"""Outbound media: POST /v1/media (upload), GET /v1/uploads/{id}, and the public signed links providers fetch."""
from __future__ import annotations

import io
import time
from urllib.parse import quote

from flask import Blueprint, Response, request
from werkzeug.formparser import parse_form_data

from gateway import db, uploads
from gateway.api.views import bp
from gateway.http import api, parse_uuid
from gateway.problems import Problem

# Outside /v1 and without an API key: a provider fetching media has only the URL, and the token in it
# is the credential.
links_bp = Blueprint("media_links", __name__)

# The app refuses bodies over GATEWAY_MAX_REQUEST_BYTES (4 MiB) before any view runs; documents may be
# 100 MB, so this one endpoint takes the largest file plus room for the multipart framing. Only
# authenticated callers get as far as the body being read: the view authenticates before touching it.
UPLOAD_MAX_REQUEST_BYTES = uploads.LARGEST_BYTES + 64 * 1024


def _in_memory(total_content_length, content_type, filename, content_length=None):
    # Werkzeug spools file parts over 500 KB to a temporary file: the clear file on disk, against
    # encryption at rest. The body is bounded by the limit above, so it stays in memory instead.
    return io.BytesIO()


def _upload_view(row: dict) -> dict:
    return {k: row[k] for k in ("id", "kind", "mime_type", "size_bytes", "sha256", "filename", "created_at",
                                "expires_at")}


@bp.post("/media")
@api(scope="messages:send")
def upload_media(conn, principal):
    if request.mimetype != "multipart/form-data":
        raise Problem(415, "Unsupported Media Type", "send the file as multipart/form-data with a 'file' part, "
                      "e.g. curl -F file=@photo.jpg (optional form field 'type': "
                      f"{', '.join(uploads.KINDS)})")
    _, form, files = parse_form_data(request.environ, stream_factory=_in_memory,
                                     max_content_length=request.max_content_length,
                                     max_form_memory_size=request.max_form_memory_size,
                                     max_form_parts=request.max_form_parts)
    part = files.get("file")
    if part is None:
        raise Problem(422, "Validation Failed", "the form has no 'file' part; attach the file as 'file', "
                      "e.g. curl -F file=@photo.jpg", slug="validation-failed",
                      errors=[{"pointer": "/file", "detail": "missing file part"}])
    try:
        stored = uploads.store(conn, account_id=principal.account_id, data=part.read(),
                               mime_type=part.content_type or "", filename=part.filename,
                               kind=form.get("type") or None)
    except uploads.TooLarge as exc:
        raise Problem(413, "Payload Too Large", str(exc), slug="upload-too-large",
                      extra={"kind": exc.kind, "limit_bytes": exc.limit_bytes}) from None
    except uploads.UploadError as exc:
        raise Problem(422, "Unsupported Upload", str(exc), slug="unsupported-upload",
                      errors=[{"pointer": exc.pointer, "detail": str(exc)}]) from None
    return _upload_view(stored), 201, {"Location": f"/v1/uploads/{stored['id']}"}


upload_media.max_request_bytes = UPLOAD_MAX_REQUEST_BYTES   # read by the app's body-size check


@bp.get("/uploads/<upload_id>")
@api(scope="messages:send")
def get_upload(conn, principal, upload_id):
    found = uploads.get(conn, account_id=principal.account_id, upload_id=parse_uuid(upload_id, "upload"))
    if found is None:
        raise Problem(404, "Not Found", f"no upload with id {upload_id} in this account")
    if found["expired"]:
        raise Problem(410, "Gone", f"upload {upload_id} expired at {found['expires_at'].isoformat()} (uploads are "
                      f"kept {uploads.RETENTION_DAYS} days); upload the file again", slug="upload-expired")
    return _upload_view(found)


def _disposition(filename: str) -> str:
    plain = "".join(ch for ch in filename if ch.isascii() and ch not in '"\\') or "file"
    header = f'inline; filename="{plain}"'
    if plain != filename:   # RFC 6266: the exact name for clients that read filename*
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


@links_bp.get(uploads.LINK_PATH + "<token>")
def fetch_link(token):
    # One answer for malformed, forged, expired and deleted alike: the endpoint is public and should not
    # tell a guesser which of its guesses came closer.
    gone = Problem(404, "Not Found", "this media link is invalid or has expired; links are made when a "
                   "message is sent and last an hour", slug="media-link-not-found")
    try:
        claims = uploads.link_claims(token)
    except uploads.LinkError:
        raise gone from None
    with db.connection() as conn:
        try:
            data, mime, filename = uploads.load_content(conn, account_id=claims.account_id,
                                                        upload_id=claims.upload_id)
        except LookupError:
            raise gone from None
    max_age = max(0, claims.expires_at - int(time.time()))
    headers = {"Content-Length": str(len(data)), "Cache-Control": f"private, max-age={max_age}",
               "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}
    if filename:
        headers["Content-Disposition"] = _disposition(filename)
    return Response(data, 200, content_type=mime, headers=headers)
