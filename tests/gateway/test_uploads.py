"""Outbound media uploads: POST /v1/media, upload metadata, signed public links, and what a send resolves."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import io
import logging
import secrets
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest

from gateway import runtime, uploads

PUBLIC = "https://gw.example.test"
PNG = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(4096)
PDF = b"%PDF-1.7\n" + secrets.token_bytes(8192) + b"\n%%EOF\n"


def _webp(size: int, animated: bool) -> bytes:
    # RIFF/WEBP with a VP8X chunk whose flags byte (offset 20) says whether it is animated.
    head = b"RIFF" + (size - 8).to_bytes(4, "little") + b"WEBP" + b"VP8X" + (10).to_bytes(4, "little")
    head += bytes([0x02 if animated else 0x00]) + bytes(9)
    return head + secrets.token_bytes(size - len(head))


@pytest.fixture
def public_url(monkeypatch):
    monkeypatch.setattr(runtime, "_settings", dataclasses.replace(runtime.settings(), public_url=PUBLIC))
    return PUBLIC


def upload(tenant, data: bytes, mime: str, filename: str = "file.bin", key=None, **form):
    return tenant.post("/v1/media", data={"file": (io.BytesIO(data), filename, mime), **form}, key=key,
                       content_type="multipart/form-data")


def _path(link: str) -> str:
    assert link.startswith(PUBLIC + uploads.LINK_PATH)
    return urlsplit(link).path


def _is_problem(r, status: int, *needles: str):
    assert r.status_code == status, (r.status_code, r.data[:300])
    assert r.mimetype == "application/problem+json"
    body = r.json
    assert body["status"] == status and body["type"].startswith("https://")
    for needle in needles:
        assert needle in body["detail"], (needle, body["detail"])
    return body


def test_upload_image_and_pdf_read_metadata_and_fetch_by_link(tenant, client, public_url):
    r = upload(tenant, PNG, "image/png", "photo.png")
    assert r.status_code == 201, r.json
    image = r.json
    assert set(image) == {"id", "kind", "mime_type", "size_bytes", "sha256", "filename", "created_at", "expires_at"}
    assert image["kind"] == "image" and image["mime_type"] == "image/png" and image["filename"] == "photo.png"
    assert image["size_bytes"] == len(PNG) and image["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert r.headers["Location"] == f"/v1/uploads/{image['id']}"

    r = upload(tenant, PDF, "application/pdf", "Factura Núñez 03.pdf")
    assert r.status_code == 201, r.json
    pdf = r.json
    assert pdf["kind"] == "document" and pdf["filename"] == "Factura Núñez 03.pdf"

    meta = tenant.get(f"/v1/uploads/{pdf['id']}")
    assert meta.status_code == 200
    assert meta.json == pdf
    kept = datetime.fromisoformat(pdf["expires_at"]) - datetime.fromisoformat(pdf["created_at"])
    assert kept == timedelta(days=30)

    for doc, data, mime in ((image, PNG, "image/png"), (pdf, PDF, "application/pdf")):
        got = client.get(_path(uploads.public_link(tenant.id, doc["id"])))   # no API key: the token is it
        assert got.status_code == 200 and got.data == data
        assert got.headers["Content-Type"] == mime and got.headers["Content-Length"] == str(len(data))
        cache = got.headers["Cache-Control"]
        assert cache.startswith("private, max-age=") and 3500 < int(cache.split("=")[1]) <= 3600
        assert got.headers["X-Content-Type-Options"] == "nosniff"
    disposition = client.get(_path(uploads.public_link(tenant.id, pdf["id"]))).headers["Content-Disposition"]
    assert "filename*=UTF-8''Factura%20N%C3%BA%C3%B1ez%2003.pdf" in disposition


def test_inbound_media_route_is_untouched(tenant):
    image = upload(tenant, PNG, "image/png").json
    # GET /v1/media/{id} still serves inbound media only: an upload id is not one of those.
    _is_problem(tenant.get(f"/v1/media/{image['id']}"), 404, "no media with id")


def test_content_and_filename_are_encrypted_at_rest(tenant, conn):
    name = "contrato-lucia-perez.pdf"
    doc = upload(tenant, PDF, "application/pdf", name).json
    row = conn.execute("SELECT content_enc, filename_enc, size_bytes FROM uploads WHERE account_id = %s AND id = %s",
                       (tenant.id, doc["id"])).fetchone()
    raw = bytes(row["content_enc"])
    assert PDF[10:74] not in raw and PDF[-2000:-1000] not in raw and b"%PDF-" not in raw
    assert name.encode() not in bytes(row["filename_enc"]) and row["size_bytes"] == len(PDF)
    with conn.cursor().copy("COPY uploads TO STDOUT") as copy:
        dump = b"".join(bytes(chunk) for chunk in copy)
    assert name.encode() not in dump and name.encode().hex().encode() not in dump
    assert PDF[10:74].hex().encode() not in dump


def test_tampered_expired_and_deleted_links_answer_404_and_serve_nothing(tenant, make_tenant, client, conn,
                                                                          public_url):
    image = upload(tenant, PNG, "image/png").json
    good = uploads.public_link(tenant.id, image["id"])
    token = good.rsplit("/", 1)[1]
    assert client.get(_path(good)).data == PNG

    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    other = make_tenant("other")
    swapped = raw[:1] + uuid.UUID(str(other.id)).bytes + raw[17:]       # claim another account, same MAC
    longer = raw[:33] + (2**40).to_bytes(8, "big") + raw[41:]            # push the expiry out, same MAC
    flipped = raw[:-1] + bytes([raw[-1] ^ 1])
    bad = [base64.urlsafe_b64encode(b).rstrip(b"=").decode() for b in (swapped, longer, flipped)]
    bad += [token[:-4], token + "AAAA", "not-a-token", "x" * 500, "%00"]
    bad.append(uploads.public_link(tenant.id, image["id"], ttl_s=-5).rsplit("/", 1)[1])   # already expired
    bad.append(uploads.public_link(tenant.id, image["id"], ttl_s=0).rsplit("/", 1)[1])
    for candidate in bad:
        r = client.get(uploads.LINK_PATH + candidate)
        _is_problem(r, 404, "invalid or has expired")
        assert PNG[8:64] not in r.data
    with pytest.raises(uploads.LinkError, match="expired"):
        uploads.verify_link(bad[-1])
    with pytest.raises(uploads.LinkError, match="signature"):
        uploads.verify_link(bad[0])
    assert uploads.verify_link(token) == (uuid.UUID(str(tenant.id)), uuid.UUID(image["id"]))

    # A valid link to an upload that has since expired, or been deleted, serves nothing either.
    conn.execute("UPDATE uploads SET expires_at = now() - interval '1 second' WHERE account_id = %s AND id = %s",
                 (tenant.id, image["id"]))
    conn.commit()
    _is_problem(client.get(_path(good)), 404)
    conn.execute("DELETE FROM uploads WHERE account_id = %s AND id = %s", (tenant.id, image["id"]))
    conn.commit()
    _is_problem(client.get(_path(good)), 404)


def test_link_tokens_stay_out_of_the_request_log(tenant, client, public_url, caplog):
    image = upload(tenant, PNG, "image/png").json
    token = uploads.public_link(tenant.id, image["id"]).rsplit("/", 1)[1]
    with caplog.at_level(logging.INFO, logger="gateway.http"):
        assert client.get(uploads.LINK_PATH + token).status_code == 200
    paths = [getattr(rec, "path", "") for rec in caplog.records if rec.name == "gateway.http"]
    assert paths == [uploads.LINK_PATH + "<token>"]
    assert all(token not in rec.getMessage() and token not in str(rec.__dict__) for rec in caplog.records)


def test_another_account_can_neither_read_nor_resolve_an_upload(tenant, make_tenant, conn, public_url):
    image = upload(tenant, PNG, "image/png").json
    other = make_tenant("rival")
    _is_problem(other.get(f"/v1/uploads/{image['id']}"), 404, "in this account")
    assert uploads.get(conn, account_id=other.id, upload_id=image["id"]) is None
    with pytest.raises(LookupError, match="no upload with id"):
        uploads.check_reference(conn, account_id=other.id, media_id=image["id"])
    with pytest.raises(LookupError):
        uploads.resolve_for_send(conn, account_id=other.id, content={"media_id": image["id"]})
    with pytest.raises(LookupError):
        uploads.load_content(conn, account_id=other.id, upload_id=image["id"])
    # ...while its own account still can.
    assert uploads.load_content(conn, account_id=tenant.id, upload_id=image["id"])[0] == PNG


def test_resolve_for_send_and_check_reference(tenant, client, conn, public_url):
    doc = upload(tenant, PDF, "application/pdf", "menu.pdf").json
    content = {"media_id": doc["id"], "caption": "nuestro menú"}
    resolved = uploads.resolve_for_send(conn, account_id=tenant.id, content=content)
    assert set(resolved) == {"link", "caption", "filename"} and resolved["caption"] == "nuestro menú"
    assert resolved["filename"] == "menu.pdf"                     # a document keeps its name
    assert content == {"media_id": doc["id"], "caption": "nuestro menú"}   # the stored content is not touched
    fetched = client.get(_path(resolved["link"]))
    assert fetched.status_code == 200 and fetched.data == PDF and fetched.mimetype == "application/pdf"
    max_age = int(fetched.headers["Cache-Control"].split("=")[1])
    assert 3500 < max_age <= uploads.SEND_LINK_TTL_S

    named = uploads.resolve_for_send(conn, account_id=tenant.id,
                                     content={"media_id": doc["id"], "filename": "carta.pdf"})
    assert named["filename"] == "carta.pdf"
    image = upload(tenant, PNG, "image/png", "foto.png").json
    assert "filename" not in uploads.resolve_for_send(conn, account_id=tenant.id, content={"media_id": image["id"]})

    linked = {"link": "https://cdn.example.com/a.jpg", "caption": "hola"}
    assert uploads.resolve_for_send(conn, account_id=tenant.id, content=linked) == linked

    assert uploads.check_reference(conn, account_id=tenant.id, media_id=doc["id"])["kind"] == "document"
    for unknown in (str(uuid.uuid4()), "1234567890", "wamid.not-an-upload"):
        with pytest.raises(LookupError, match="POST /v1/media"):
            uploads.check_reference(conn, account_id=tenant.id, media_id=unknown)
        with pytest.raises(LookupError):
            uploads.resolve_for_send(conn, account_id=tenant.id, content={"media_id": unknown})

    conn.execute("UPDATE uploads SET expires_at = now() - interval '1 second' WHERE account_id = %s AND id = %s",
                 (tenant.id, doc["id"]))
    with pytest.raises(LookupError, match="expired at .* upload the file again"):
        uploads.check_reference(conn, account_id=tenant.id, media_id=doc["id"])
    with pytest.raises(LookupError, match="expired"):
        uploads.resolve_for_send(conn, account_id=tenant.id, content={"media_id": doc["id"]})
    conn.commit()
    _is_problem(tenant.get(f"/v1/uploads/{doc['id']}"), 410, "upload the file again")


def test_without_a_public_url_no_link_is_made(tenant, conn, monkeypatch):
    monkeypatch.setattr(runtime, "_settings", dataclasses.replace(runtime.settings(), public_url=None))
    image = upload(tenant, PNG, "image/png").json
    with pytest.raises(uploads.NotConfigured, match="GATEWAY_PUBLIC_URL"):
        uploads.resolve_for_send(conn, account_id=tenant.id, content={"media_id": image["id"]})


def test_not_multipart_is_415(tenant):
    _is_problem(tenant.post("/v1/media", {"file": "aGVsbG8="}), 415, "multipart/form-data", "-F file=@")


def test_missing_file_part_is_422(tenant):
    body = _is_problem(tenant.post("/v1/media", data={"type": "image"}, content_type="multipart/form-data"),
                       422, "'file'")
    assert body["errors"][0]["pointer"] == "/file"


@pytest.mark.parametrize("data, mime, form, status, needles, pointer", [
    (b"GIF89a" + bytes(64), "image/gif", {}, 422, ("image/gif is not a type", "image/jpeg, image/png",
                                                    "application/pdf", "convert"), "/file"),
    (PDF, "application/octet-stream", {}, 422, ("Content-Type", "type=application/pdf"), "/file"),
    (PNG, "image/jpeg", {}, 422, ("not valid image/jpeg", "JPEG signature", "real type"), "/file"),
    (b"", "image/png", {}, 422, ("empty",), "/file"),
    (PDF, "application/pdf", {"type": "image"}, 422, ("an image must be image/jpeg or image/png",
                                                      "type document"), "/type"),
    (PNG, "image/png", {"type": "gif"}, 422, ("type must be one of image, video, audio, document, sticker",), "/type"),
    (b"OggS" + bytes(200), "audio/ogg", {}, 422, ("Opus", "ffmpeg"), "/file"),
])
def test_unsupported_uploads_are_422_and_name_the_fix(tenant, data, mime, form, status, needles, pointer):
    body = _is_problem(upload(tenant, data, mime, "upload", **form), status, *needles)
    assert body["errors"][0]["pointer"] == pointer


@pytest.mark.parametrize("data, mime, limit, needles", [
    (b"\xff\xd8\xff\xe0" + bytes(5_000_000), "image/jpeg", 5_000_000, ("an image may be at most 5 MB",
                                                                        "compress or resize")),
    (_webp(100_001, animated=False), "image/webp", 100_000, ("a static sticker may be at most 100 KB",)),
    (_webp(500_001, animated=True), "image/webp", 500_000, ("an animated sticker may be at most 500 KB",)),
    (bytes(16_000_001), "video/mp4", 16_000_000, ("a video may be at most 16 MB",)),
])
def test_over_the_kinds_limit_is_413_and_says_the_limit(tenant, data, mime, limit, needles):
    body = _is_problem(upload(tenant, data, mime, "big"), 413, *needles, f"({limit} bytes)", str(len(data)))
    assert body["limit_bytes"] == limit and body["type"].endswith("/upload-too-large")


def test_types_are_inferred_normalised_and_guessed_from_the_name(tenant):
    sticker = upload(tenant, _webp(400_000, animated=True), "image/webp", "wave.webp")
    assert sticker.status_code == 201 and sticker.json["kind"] == "sticker"
    jpg = upload(tenant, b"\xff\xd8\xff\xe0" + bytes(100), "image/jpg", "a.jpg")
    assert jpg.json["mime_type"] == "image/jpeg" and jpg.json["kind"] == "image"
    guessed = upload(tenant, PDF, "application/octet-stream", "reports/Informe.PDF")
    assert guessed.status_code == 201, guessed.json
    assert guessed.json["mime_type"] == "application/pdf" and guessed.json["filename"] == "Informe.PDF"
    voice = upload(tenant, b"OggS" + bytes(24) + b"OpusHead" + bytes(64), "audio/ogg; codecs=opus", "v.ogg",
                   type="audio")
    assert voice.status_code == 201 and voice.json["mime_type"] == "audio/ogg"


def test_the_larger_body_limit_holds_for_uploads_only(tenant, client):
    big_pdf = b"%PDF-1.4\n" + bytes(6 * 1024 * 1024)                 # over the 4 MiB request limit
    r = upload(tenant, big_pdf, "application/pdf", "big.pdf")
    assert r.status_code == 201 and r.json["size_bytes"] == len(big_pdf)
    r = tenant.post("/v1/contacts", data=b"{" + bytes(5 * 1024 * 1024) + b"}", content_type="application/json")
    _is_problem(r, 413, "4194304 bytes", "GATEWAY_MAX_REQUEST_BYTES")
    # Past the largest document plus framing, /v1/media refuses before reading the body.
    r = client.post("/v1/media", headers=tenant.headers(), input_stream=io.BytesIO(b""),
                    content_type="multipart/form-data; boundary=x",
                    environ_overrides={"CONTENT_LENGTH": str(uploads.LARGEST_BYTES + 1024 * 1024)})
    _is_problem(r, 413, "the most this endpoint takes")


def test_uploading_needs_the_send_scope(tenant):
    reader = tenant.key_with("messages:read")
    _is_problem(upload(tenant, PNG, "image/png", key=reader), 403, "messages:send")
    sender = tenant.key_with("messages:send")
    assert upload(tenant, PNG, "image/png", key=sender).status_code == 201


def test_expired_uploads_are_purged(tenant, conn):
    keep, old = (upload(tenant, PNG, "image/png").json for _ in range(2))
    conn.execute("UPDATE uploads SET expires_at = now() - interval '1 day' WHERE account_id = %s AND id = %s",
                 (tenant.id, old["id"]))
    while uploads.purge_expired(conn, batch_size=50):
        pass
    left = {str(r["id"]) for r in conn.execute("SELECT id FROM uploads WHERE account_id = %s", (tenant.id,))}
    assert left == {keep["id"]}


def test_links_survive_a_master_key_rotation_and_die_with_their_key(monkeypatch):
    from gateway.crypto import Keyring
    account, upload_id = uuid.uuid4(), uuid.uuid4()
    old = Keyring.generate()
    monkeypatch.setattr(runtime, "_keyring", old)
    signed_before = uploads.link_token(account, upload_id)
    raw = base64.urlsafe_b64decode(signed_before + "=" * (-len(signed_before) % 4))
    # The MAC key is a derived sub-key, not the master key itself.
    assert raw[-32:] != hmac.digest(old._keys[old.current_kid], raw[:-32], "sha256")

    rotated = old.with_new_current()
    monkeypatch.setattr(runtime, "_keyring", rotated)
    assert uploads.verify_link(signed_before) == (account, upload_id)
    signed_after = uploads.link_token(account, upload_id)
    assert rotated.current_kid.encode() in base64.urlsafe_b64decode(signed_after + "=" * (-len(signed_after) % 4))
    assert uploads.verify_link(signed_after) == (account, upload_id)

    monkeypatch.setattr(runtime, "_keyring", Keyring.generate())     # a keyring without those keys
    for token in (signed_before, signed_after):
        with pytest.raises(uploads.LinkError, match="signature"):
            uploads.verify_link(token)


def test_the_sweeper_deletes_uploads_past_their_days(tenant, conn, public_url):
    from gateway import sweeper
    made = upload(tenant, PNG, "image/png", "viejo.png").json
    conn.execute("UPDATE uploads SET expires_at = now() - interval '1 second' WHERE account_id = %s AND id = %s",
                 (tenant.id, made["id"]))
    conn.commit()
    assert sweeper.sweep_once(grace_s=0)["expired_uploads"] >= 1
    assert conn.execute("SELECT count(*) AS n FROM uploads WHERE id = %s", (made["id"],)).fetchone()["n"] == 0
