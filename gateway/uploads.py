"""Outbound media uploads: files a business sends, kept encrypted under the account's data key.

A message refers to an upload by ``media_id``. Providers fetch media by URL (Twilio's MediaUrl,
the Cloud API's and Messenger's ``link``), so at send time the id becomes a signed, short-lived
public link to ``/media-links/<token>``; the token is the only credential that URL needs, and it
names one account and one upload.

Limits and types are the Cloud API's, the strictest of the channels, so an accepted upload is one
every channel can send:
https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#supported-media-types
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time
import uuid
from dataclasses import dataclass
from typing import NamedTuple


from gateway import keystore, runtime
from gateway.crypto import field_aad
from gateway.db import uuid7

KINDS = ("image", "video", "audio", "document", "sticker")
RETENTION_DAYS = 30          # Meta keeps uploaded media 30 days; an id should not outlive what it stands for
LINK_PATH = "/media-links/"
SEND_LINK_TTL_S = 3600       # long enough for a provider's own retries of the fetch, short enough to leak little

# Meta writes "MB" without saying which; the decimal reading is the smaller, so nothing accepted here is
# refused by Meta for its size.
_KB, _MB = 1_000, 1_000_000


@dataclass(frozen=True)
class Rule:
    types: tuple[str, ...]
    max_bytes: int
    hint: str                                # how to get under the limit
    animated_max_bytes: int | None = None    # stickers: animated WebP may be larger than static


RULES: dict[str, Rule] = {
    "image": Rule(("image/jpeg", "image/png"), 5 * _MB, "compress or resize it"),
    "video": Rule(("video/mp4", "video/3gpp"), 16 * _MB, "compress or shorten it (H.264 video, AAC audio)"),
    "audio": Rule(("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"), 16 * _MB,
                  "compress or shorten it"),
    "document": Rule(("application/pdf", "text/plain", "application/msword",
                      "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                      "application/vnd.ms-excel",
                      "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                      "application/vnd.ms-powerpoint",
                      "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
                     100 * _MB, "compress it or split it into several documents"),
    "sticker": Rule(("image/webp",), 100 * _KB, "stickers are 512x512 WebP; reduce its quality or frames",
                    animated_max_bytes=500 * _KB),
}
_KIND_OF = {mime: kind for kind, rule in RULES.items() for mime in rule.types}
LARGEST_BYTES = max(max(r.max_bytes, r.animated_max_bytes or 0) for r in RULES.values())

# Names clients and tools use for the same types; stored under the name Meta documents.
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "video/3gp": "video/3gpp",
            "audio/mp3": "audio/mpeg", "audio/x-m4a": "audio/mp4", "audio/m4a": "audio/mp4",
            "audio/opus": "audio/ogg", "audio/x-aac": "audio/aac"}
# curl and browsers send application/octet-stream for extensions they do not know; a fixed table (not the
# mimetypes module, whose answers depend on the host's /etc/mime.types) keeps the guess the same everywhere.
_BY_EXTENSION = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
                 ".mp4": "video/mp4", ".3gp": "video/3gpp", ".aac": "audio/aac", ".amr": "audio/amr",
                 ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".ogg": "audio/ogg", ".opus": "audio/ogg",
                 ".pdf": "application/pdf", ".txt": "text/plain", ".doc": "application/msword",
                 ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                 ".xls": "application/vnd.ms-excel",
                 ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 ".ppt": "application/vnd.ms-powerpoint",
                 ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation"}
_GENERIC = {"", "application/octet-stream", "binary/octet-stream", "application/x-download"}

# Where a type has a fixed signature, check it: a mislabelled file is otherwise refused by Meta only
# after the send, as error 131053.
_SIGNATURES = {
    "image/jpeg": (lambda d: d.startswith(b"\xff\xd8\xff"), "it lacks the JPEG signature"),
    "image/png": (lambda d: d.startswith(b"\x89PNG\r\n\x1a\n"), "it lacks the PNG signature"),
    "image/webp": (lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", "it is not a RIFF/WEBP file"),
    "application/pdf": (lambda d: b"%PDF-" in d[:1024], "it has no %PDF- header"),
    "audio/ogg": (lambda d: d.startswith(b"OggS") and b"OpusHead" in d[:512],
                  "WhatsApp takes Ogg audio only with the Opus codec; convert it, e.g. "
                  "ffmpeg -i in.ogg -c:a libopus out.ogg"),
}


class UploadError(ValueError):
    """An upload refused before anything is stored; str() says what to change, pointer which form field."""

    def __init__(self, message: str, *, pointer: str = "/file"):
        super().__init__(message)
        self.pointer = pointer


class UnsupportedMedia(UploadError):
    """Wrong or unknown type, wrong kind for the type, empty file, content unlike its type."""


class TooLarge(UploadError):
    def __init__(self, message: str, *, kind: str, limit_bytes: int):
        super().__init__(message)
        self.kind = kind
        self.limit_bytes = limit_bytes


class LinkError(ValueError):
    """A media link that is malformed, forged or expired. Its text never holds the token."""


class NotConfigured(RuntimeError):
    """GATEWAY_PUBLIC_URL is unset, so no link a provider could fetch can be made."""


def _size(n: int) -> str:
    return f"{n // _MB} MB" if n % _MB == 0 else f"{n // _KB} KB"


def allowed_types() -> str:
    return "; ".join(f"{kind}: {', '.join(rule.types)} (up to {_size(rule.max_bytes)}"
                     + (f", animated {_size(rule.animated_max_bytes)}" if rule.animated_max_bytes else "") + ")"
                     for kind, rule in RULES.items())


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _animated_webp(data: bytes) -> bool:
    # Extended WebP: a VP8X chunk first, whose flags byte has bit 1 set for animation.
    return data[12:16] == b"VP8X" and len(data) > 20 and bool(data[20] & 0x02)


def _clean_filename(filename: str | None) -> str | None:
    if not filename:
        return None
    # Browsers may send a client-side path (C:\fakepath\x.pdf); keep the last part, printable, 240 chars
    # at most (what POST /v1/messages accepts as a filename).
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:240] or None


def classify(data: bytes, mime_type: str | None, filename: str | None = None,
             kind: str | None = None) -> tuple[str, str]:
    """(kind, normalised MIME type) of a file, or UploadError saying which limit or type it breaks."""
    mime = (mime_type or "").split(";", 1)[0].strip().lower()
    mime = _ALIASES.get(mime, mime)
    if mime in _GENERIC and filename:
        mime = _BY_EXTENSION.get(os.path.splitext(filename)[1].lower(), mime)
    if kind is not None and kind not in RULES:
        raise UnsupportedMedia(f"type must be one of {', '.join(KINDS)}, or left out to infer it from the "
                               f"file's MIME type; got {kind[:40]!r}", pointer="/type")
    if mime in _GENERIC:
        raise UnsupportedMedia("the file's MIME type is missing or generic; give the part its real "
                               "Content-Type (curl: -F 'file=@report.pdf;type=application/pdf'). Allowed: "
                               + allowed_types())
    inferred = _KIND_OF.get(mime)
    if inferred is None:
        raise UnsupportedMedia(f"{mime[:100]} is not a type WhatsApp accepts; convert the file to one of "
                               f"these. Allowed: {allowed_types()}")
    kind = kind or inferred
    if kind != inferred:
        raise UnsupportedMedia(f"{_a(kind)} must be {' or '.join(RULES[kind].types)}; {mime} is sent as "
                               f"{inferred}, so upload it with type {inferred} (or leave type out)", pointer="/type")
    if not data:
        raise UnsupportedMedia("the file is empty; attach its content")
    signature = _SIGNATURES.get(mime)
    if signature is not None and not signature[0](data):
        raise UnsupportedMedia(f"the file is not valid {mime}: {signature[1]}; send it with its real type")
    rule = RULES[kind]
    animated = kind == "sticker" and _animated_webp(data)
    limit = rule.animated_max_bytes if animated else rule.max_bytes
    if len(data) > limit:
        what = f"{'animated' if animated else 'static'} sticker" if kind == "sticker" else kind
        raise TooLarge(f"{_a(what)} may be at most {_size(limit)} ({limit} bytes); this file is {len(data)} "
                       f"bytes: {rule.hint}", kind=kind, limit_bytes=limit)
    return kind, mime


def store(conn, *, account_id, data: bytes, mime_type: str, filename: str | None, kind: str | None) -> dict:
    """Validate and keep a file for 30 days; returns its metadata (the API's answer)."""
    filename = _clean_filename(filename)
    kind, mime = classify(data, mime_type, filename, kind)
    upload_id, digest = uuid7(), hashlib.sha256(data).hexdigest()
    key = keystore.account_key(conn, account_id=account_id)
    name_enc = key.encrypt(filename, field_aad("uploads", "filename", account_id, upload_id)) if filename else None
    # %b: bytea in binary, not as hex text twice the size.
    row = conn.execute(
        "INSERT INTO uploads (account_id, id, data_key_id, kind, mime_type, filename_enc, size_bytes, sha256, "
        "content_enc, expires_at) VALUES (%s, %s, %s, %s, %s, %b, %s, %s, %b, "
        "now() + make_interval(days => %s)) RETURNING created_at, expires_at",
        (account_id, upload_id, key.id, kind, mime, name_enc, len(data), digest,
         key.encrypt(data, field_aad("uploads", "content", account_id, upload_id)), RETENTION_DAYS)).fetchone()
    return {"id": upload_id, "kind": kind, "mime_type": mime, "size_bytes": len(data),
            "sha256": digest, "filename": filename,
            "created_at": row["created_at"], "expires_at": row["expires_at"]}


_META = "id, kind, mime_type, filename_enc, size_bytes, sha256, created_at, expires_at, data_key_id, " \
        "expires_at <= now() AS expired"


def _as_uuid(value) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def get(conn, *, account_id, upload_id) -> dict | None:
    """An upload's metadata, with ``expired``; None when the account has no such upload."""
    upload_id = _as_uuid(upload_id)
    if upload_id is None:
        return None
    row = conn.execute(f"SELECT {_META} FROM uploads WHERE account_id = %s AND id = %s",
                       (account_id, upload_id)).fetchone()
    if row is None:
        return None
    out = {k: row[k] for k in ("id", "kind", "mime_type", "size_bytes", "sha256", "created_at", "expires_at",
                               "expired")}
    out["filename"] = None
    if row["filename_enc"] is not None:
        key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
        out["filename"] = key.decrypt_text(row["filename_enc"], field_aad("uploads", "filename", account_id,
                                                                           upload_id))
    return out


def check_reference(conn, *, account_id, media_id) -> dict:
    """The upload a message names by ``media_id``; LookupError (saying why) when it is unknown here or expired."""
    found = get(conn, account_id=account_id, upload_id=media_id)
    if found is None:
        raise LookupError(f"no upload with id {str(media_id)[:64]} in this account; upload the file with "
                          "POST /v1/media and use the id it returns")
    if found["expired"]:
        raise LookupError(f"upload {found['id']} expired at {found['expires_at'].isoformat()} (uploads are "
                          f"kept {RETENTION_DAYS} days); upload the file again")
    return found


def load_content(conn, *, account_id, upload_id) -> tuple[bytes, str, str | None]:
    """(bytes, MIME type, filename) of a live upload; LookupError when it is unknown here or expired."""
    upload_id = _as_uuid(upload_id)
    row = None
    if upload_id is not None:
        # Binary results: the content comes back as it is, not as hex text to parse.
        row = conn.cursor(binary=True).execute(
            "SELECT mime_type, filename_enc, content_enc, data_key_id FROM uploads "
            "WHERE account_id = %s AND id = %s AND expires_at > now()", (account_id, upload_id)).fetchone()
    if row is None:
        raise LookupError(f"no live upload with id {upload_id} in this account")
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    data = key.decrypt(bytes(row["content_enc"]), field_aad("uploads", "content", account_id, upload_id))
    filename = key.decrypt_text(row["filename_enc"], field_aad("uploads", "filename", account_id, upload_id))
    return data, row["mime_type"], filename


def delete(conn, *, account_id, upload_id) -> bool:
    """Delete one upload now, as its owner asked (the Cloud API facade's DELETE /{media-id})."""
    return conn.execute("DELETE FROM uploads WHERE account_id = %s AND id = %s", (account_id, upload_id)).rowcount > 0


def purge_expired(conn, *, batch_size: int = 500) -> int:
    """Delete up to batch_size expired uploads (every account: a maintenance pass); returns how many."""
    return conn.execute(
        "DELETE FROM uploads WHERE (account_id, id) IN (SELECT account_id, id FROM uploads "
        "WHERE expires_at <= now() ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)", (batch_size,)).rowcount


def resolve_for_send(conn, *, account_id, content: dict) -> dict:
    """A media message's content as a provider takes it: ``media_id`` replaced by a fresh public ``link``.

    Content that already has a ``link`` comes back unchanged. A document without its own filename gets
    the upload's. LookupError when the upload is unknown in this account or expired; NotConfigured when
    GATEWAY_PUBLIC_URL is unset. The link is a credential: hand it to the provider, do not store or log it.
    """
    if not content.get("media_id"):
        return content
    upload = check_reference(conn, account_id=account_id, media_id=content["media_id"])
    out = {k: v for k, v in content.items() if k != "media_id"}
    out["link"] = public_link(account_id, upload["id"], ttl_s=SEND_LINK_TTL_S)
    if upload["kind"] == "document" and not out.get("filename") and upload["filename"]:
        out["filename"] = upload["filename"]
    return out


# -- signed links ---------------------------------------------------------------------------------------
# token = base64url(version | account id | upload id | expiry (unix s, u64) | kid length | kid | HMAC-SHA256)
# The MAC key is derived (HKDF) from the master key named by kid: a sub-key used for nothing else, which
# rotates with the master keys, while links signed just before a rotation keep working (old keys stay).
_LINK_VERSION = 1
_LINK_HEAD = struct.Struct(">B16s16sQB")
_LINK_INFO = b"gateway media-links v1"
_MAC_BYTES = 32
_MAX_TOKEN_CHARS = 400


class LinkClaims(NamedTuple):
    account_id: uuid.UUID
    upload_id: uuid.UUID
    expires_at: int      # unix seconds


def _link_key(kid: str) -> bytes | None:
    return runtime.keyring().derive(kid, _LINK_INFO)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def link_token(account_id, upload_id, ttl_s: int = SEND_LINK_TTL_S) -> str:
    kid = runtime.keyring().current_kid
    kid_raw = kid.encode()
    body = _LINK_HEAD.pack(_LINK_VERSION, _as_uuid(account_id).bytes, _as_uuid(upload_id).bytes,
                           max(0, int(time.time()) + int(ttl_s)), len(kid_raw)) + kid_raw
    return _b64(body + hmac.digest(_link_key(kid), body, "sha256"))


def public_link(account_id, upload_id, ttl_s: int = SEND_LINK_TTL_S) -> str:
    """``{GATEWAY_PUBLIC_URL}/media-links/{token}``: anyone holding it may fetch the file until it expires."""
    base = runtime.settings().public_url
    if not base:
        raise NotConfigured("GATEWAY_PUBLIC_URL is not set: providers fetch media by URL, so set it to the "
                            "gateway's base URL as they reach it, e.g. GATEWAY_PUBLIC_URL=https://gw.example.com")
    return base + LINK_PATH + link_token(account_id, upload_id, ttl_s)


def link_claims(token: str) -> LinkClaims:
    """What a token grants, once its MAC holds (compared in constant time) and it has not expired."""
    if not token or len(token) > _MAX_TOKEN_CHARS:
        raise LinkError("malformed media link")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        raise LinkError("malformed media link") from None
    # Only the canonical spelling counts: the decoder skips stray characters, which would let many URLs
    # stand for one token.
    if len(raw) < _LINK_HEAD.size + _MAC_BYTES or _b64(raw) != token:
        raise LinkError("malformed media link")
    version, account, upload, expires, kid_len = _LINK_HEAD.unpack_from(raw)
    body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if version != _LINK_VERSION or len(body) != _LINK_HEAD.size + kid_len:
        raise LinkError("malformed media link")
    try:
        key = _link_key(body[_LINK_HEAD.size:].decode())
    except UnicodeDecodeError:
        key = None
    if key is None or not hmac.compare_digest(mac, hmac.digest(key, body, "sha256")):
        raise LinkError("media link signature does not match")
    if expires <= time.time():
        raise LinkError("media link expired")
    return LinkClaims(uuid.UUID(bytes=account), uuid.UUID(bytes=upload), expires)


def verify_link(token: str) -> tuple[uuid.UUID, uuid.UUID]:
    """(account id, upload id) a link grants; LinkError when it is malformed, forged or expired."""
    claims = link_claims(token)
    return claims.account_id, claims.upload_id
