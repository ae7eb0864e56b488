"""The Cloud API facade's media and template endpoints: Meta's paths and answer shapes, served from the
gateway's own stores (uploads, inbound media, the template catalog), with the sandbox playing Meta.

An integration written for graph.facebook.com uploads, reads back and downloads media, reads the media a
customer sent (by the ids the forwarded webhooks carry), reads its phone number, and lists, creates and
deletes templates - and every refusal comes in Meta's error envelope with Meta's codes."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway import db
from tests.gateway import test_send_end_to_end as end_to_end
from tests.webhooks.conftest import make_inbox
from tests.webhooks.test_receiver import wa_body

# The live gateway and the sandbox playing Meta (fixtures of the end-to-end send tests).
gateway_url, sandbox = end_to_end.gateway_url, end_to_end.sandbox

VERSION = "v21.0"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "whatsapp_templates"
PNG = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(4096)
PDF = b"%PDF-1.7\n" + secrets.token_bytes(2048) + b"\n%%EOF\n"


# -- helpers ------------------------------------------------------------------------------------------------

def graph(inbox, method, path, *, key=None, **kw):
    headers = {"Authorization": f"Bearer {key or inbox.key}", **kw.pop("headers", {})}
    return inbox.client.open(f"/graph/{VERSION}{path}", method=method, headers=headers, **kw)


def upload(inbox, phone_number_id, data=PNG, mime="image/png", filename="photo.png", *, key=None, **form):
    fields = {"messaging_product": "whatsapp", "type": mime, "file": (io.BytesIO(data), filename, mime)}
    fields.update(form)
    return graph(inbox, "POST", f"/{phone_number_id}/media", key=key, data={k: v for k, v in fields.items()
                                                                            if v is not None},
                 content_type="multipart/form-data")


def meta_error(r, code: int, status: int | None = None, *, subcode: int | None = None, needle: str = ""):
    """Meta's envelope (never an RFC 9457 problem), with this code."""
    assert r.mimetype == "application/json", (r.status_code, r.mimetype, r.data[:300])
    if status is not None:
        assert r.status_code == status, (r.status_code, r.json)
    error = r.json["error"]
    assert error["code"] == code, error
    assert error["message"].startswith(f"(#{code}) ") and error["type"] and "fbtrace_id" in error
    assert error["error_data"]["messaging_product"] == "whatsapp"
    if subcode is not None:
        assert error.get("error_subcode") == subcode, error
    assert needle in error["message"] + error["error_data"]["details"], (needle, error)
    return error


def key_with(inbox, *scopes) -> str:
    r = inbox.api("POST", "/v1/api-keys", json={"name": "scoped", "scopes": list(scopes)})
    assert r.status_code == 201, r.json
    return r.json["key"]


def setup(client, sandbox, waba: str | None = None):
    inbox = make_inbox(client)
    waba = waba or f"{secrets.randbelow(10**15):015d}"
    ch = inbox.channel("whatsapp", f"{secrets.randbelow(10**15):015d}", group_id=waba,
                       settings={"api_base_url": sandbox.url, "pair_interval_s": 0})
    return inbox, ch


def content_path(url: str) -> str:
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.path.startswith("/graph/")
    return parts.path


def audit_rows(account_id, target_id) -> list[dict]:
    with db.connection() as c:
        return c.execute("SELECT actor, action, target_type, target_id FROM audit_log WHERE account_id = %s "
                         "AND target_id = %s ORDER BY at, id", (account_id, str(target_id))).fetchall()


# -- uploads ------------------------------------------------------------------------------------------------

def test_upload_read_download_and_delete_as_the_cloud_api_does(client, sandbox):
    inbox, ch = setup(client, sandbox)
    r = upload(inbox, ch["external_id"], PDF, "application/pdf", "Factura Núñez.pdf")
    assert r.status_code == 200, r.json
    assert set(r.json) == {"id"}
    media_id = r.json["id"]

    got = graph(inbox, "GET", f"/{media_id}")
    assert got.status_code == 200, got.json
    assert got.json == {"messaging_product": "whatsapp", "url": got.json["url"], "mime_type": "application/pdf",
                        "sha256": hashlib.sha256(PDF).hexdigest(), "file_size": len(PDF), "id": media_id}
    path = content_path(got.json["url"])
    assert path == f"/graph/{VERSION}/{media_id}/content"
    assert graph(inbox, "GET", f"/{media_id}?phone_number_id={ch['external_id']}").json == got.json

    # The URL is fetched with the same Bearer header, like Meta's lookaside URL; without one, Meta's 401.
    fetched = client.get(path, headers={"Authorization": f"Bearer {inbox.key}"})
    assert fetched.status_code == 200 and fetched.data == PDF
    assert hashlib.sha256(fetched.data).hexdigest() == got.json["sha256"]
    assert fetched.headers["Content-Type"] == "application/pdf"
    assert fetched.headers["Content-Length"] == str(len(PDF))
    assert "filename*=UTF-8''Factura%20N%C3%BA%C3%B1ez.pdf" in fetched.headers["Content-Disposition"]
    meta_error(client.get(path), 2500, 401)

    # The same upload through the REST API: one store.
    rest = inbox.api("GET", f"/v1/uploads/{media_id}").json
    assert rest["sha256"] == got.json["sha256"] and rest["filename"] == "Factura Núñez.pdf"
    reads = [r for r in audit_rows(inbox.account_id, media_id) if r["action"].startswith("read:/graph/")]
    assert {(r["action"], r["target_type"]) for r in reads} == {
        ("read:/graph/<version>/<object_id>", "upload"), ("read:/graph/<version>/<object_id>/content", "upload")}

    deleted = graph(inbox, "DELETE", f"/{media_id}")
    assert deleted.status_code == 200 and deleted.json == {"success": True}
    meta_error(graph(inbox, "GET", f"/{media_id}"), 100, 400, subcode=33, needle=media_id)
    meta_error(graph(inbox, "GET", f"/{media_id}/content"), 100, 400, subcode=33)
    meta_error(graph(inbox, "DELETE", f"/{media_id}"), 100, 400, subcode=33, needle="Unsupported delete request")
    assert inbox.api("GET", f"/v1/uploads/{media_id}").status_code == 404


def test_an_uploaded_id_is_what_a_pywa_style_client_reads_back_as_an_image(client, sandbox):
    inbox, ch = setup(client, sandbox)
    # Some clients label the part application/octet-stream and say what it is in 'type' only.
    r = upload(inbox, ch["external_id"], PNG, "image/png", "x.bin",
               file=(io.BytesIO(PNG), "x.bin", "application/octet-stream"))
    assert r.status_code == 200, r.json
    got = graph(inbox, "GET", f"/{r.json['id']}").json
    assert got["mime_type"] == "image/png" and got["file_size"] == len(PNG)
    fetched = client.get(content_path(got["url"]), headers={"Authorization": f"Bearer {inbox.key}"})
    assert fetched.data == PNG and fetched.mimetype == "image/png"


def test_bad_uploads_get_meta_errors_naming_the_param(client, sandbox):
    inbox, ch = setup(client, sandbox)
    phone = ch["external_id"]
    not_multipart = graph(inbox, "POST", f"/{phone}/media", json={"messaging_product": "whatsapp"})
    meta_error(not_multipart, 100, 400, needle="multipart/form-data")
    meta_error(upload(inbox, phone, messaging_product=None), 100, 400, needle="messaging_product")
    meta_error(upload(inbox, phone, messaging_product="sms"), 100, 400, needle="messaging_product")
    meta_error(upload(inbox, phone, type=None), 100, 400, needle="parameter type is required")
    no_file = graph(inbox, "POST", f"/{phone}/media", data={"messaging_product": "whatsapp", "type": "image/png"},
                    content_type="multipart/form-data")
    meta_error(no_file, 100, 400, needle="parameter file is required")
    wrong_type = meta_error(upload(inbox, phone, b"<html></html>", "text/html", "page.html"), 100, 400)
    assert "Param file must be a file with one of the following types" in wrong_type["message"]
    assert "image/jpeg" in wrong_type["message"] and "'text/html'" in wrong_type["message"]
    # A file unlike its type: Meta's media upload error, with what is wrong in details.
    meta_error(upload(inbox, phone, b"not a png at all", "image/png"), 131053, 400, needle="PNG signature")
    big = b"\x89PNG\r\n\x1a\n" + bytes(5_000_001)
    too_large = meta_error(upload(inbox, phone, big, "image/png"), 100, 400, needle="File Too Large")
    assert too_large["error_data"]["limit_bytes"] == 5_000_000
    # A phone number id that is not one of the account's WhatsApp channels does not exist.
    meta_error(upload(inbox, phone + "9"), 100, 400, subcode=33)
    with db.connection() as c:
        assert c.execute("SELECT count(*) AS n FROM uploads WHERE account_id = %s",
                         (inbox.account_id,)).fetchone()["n"] == 0


# -- inbound media ------------------------------------------------------------------------------------------

def _sandbox_media(sandbox, data: bytes, mime: str) -> dict:
    req = urllib.request.Request(f"{sandbox.url}/_sandbox/media", data=data, method="POST",
                                 headers={"Content-Type": mime})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _customer_sends_image(inbox, ch, provider_media_id: str, data: bytes) -> str:
    msg = {"from": f"3460{secrets.randbelow(10**7):07d}", "id": f"wamid.{secrets.token_hex(8)}",
           "timestamp": str(int(time.time())), "type": "image",
           "image": {"id": provider_media_id, "mime_type": "image/png", "caption": "la factura",
                     "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode()}}
    assert inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[msg],
                                               entry_id=ch["group_id"])).status_code == 200
    inbox.drain(("inbound",))   # the message, not yet its file
    [thread] = inbox.threads()
    [m] = inbox.messages(thread["id"])
    [media] = m["media"]
    return media["id"]


def test_inbound_media_is_read_by_its_media_row_id_once_downloaded(client, sandbox):
    inbox, ch = setup(client, sandbox)
    at_meta = _sandbox_media(sandbox, PNG, "image/png")
    media_id = _customer_sends_image(inbox, ch, at_meta["id"], PNG)

    pending = meta_error(graph(inbox, "GET", f"/{media_id}"), 131016, 503, needle="still downloading")
    assert pending["is_transient"] is True and pending["error_data"]["media_state"] == "pending"
    meta_error(graph(inbox, "GET", f"/{media_id}/content"), 131016, 503)

    inbox.drain(("default",))   # the download job, through the sandbox's Cloud API media endpoints
    got = graph(inbox, "GET", f"/{media_id}")
    assert got.status_code == 200, got.json
    assert got.json == {"messaging_product": "whatsapp", "url": got.json["url"], "mime_type": "image/png",
                        "sha256": hashlib.sha256(PNG).hexdigest(), "file_size": len(PNG), "id": media_id}
    fetched = client.get(content_path(got.json["url"]), headers={"Authorization": f"Bearer {inbox.key}"})
    assert fetched.status_code == 200 and fetched.data == PNG and fetched.mimetype == "image/png"
    assert hashlib.sha256(fetched.data).hexdigest() == got.json["sha256"]
    # ?phone_number_id= names the channel the media came in on (Meta checks the same).
    assert graph(inbox, "GET", f"/{media_id}?phone_number_id={ch['external_id']}").status_code == 200
    second = inbox.channel("whatsapp", f"{secrets.randbelow(10**15):015d}", settings={"api_base_url": sandbox.url})
    meta_error(graph(inbox, "GET", f"/{media_id}?phone_number_id={second['external_id']}"), 100, 400, subcode=33)

    # Reading a customer's file is a read of personal data: one audit row per read, naming the media.
    reads = [r for r in audit_rows(inbox.account_id, media_id) if r["action"].startswith("read:/graph/")]
    assert [(r["action"], r["target_type"]) for r in reads] == [
        ("read:/graph/<version>/<object_id>", "media"), ("read:/graph/<version>/<object_id>/content", "media"),
        ("read:/graph/<version>/<object_id>", "media")]
    assert all(r["actor"].startswith("api_key:") for r in reads)

    # A customer's file is part of the history: not deletable one at a time.
    meta_error(graph(inbox, "DELETE", f"/{media_id}"), 100, 400, needle="conversation history")
    assert graph(inbox, "GET", f"/{media_id}").status_code == 200


def test_a_failed_download_says_so_in_metas_code(client, sandbox):
    inbox, ch = setup(client, sandbox)
    media_id = _customer_sends_image(inbox, ch, "1234567890", PNG)   # unknown at the sandbox: 100 there
    inbox.drain(("default",))
    error = meta_error(graph(inbox, "GET", f"/{media_id}"), 131052, 400, needle="retry")
    assert error["error_data"]["media_state"] == "failed"


def test_another_accounts_media_channel_and_waba_do_not_exist(client, sandbox):
    inbox, ch = setup(client, sandbox)
    mine = upload(inbox, ch["external_id"]).json["id"]
    at_meta = _sandbox_media(sandbox, PNG, "image/png")
    received = _customer_sends_image(inbox, ch, at_meta["id"], PNG)
    inbox.drain(("default",))
    other, other_ch = setup(client, sandbox)
    for object_id in (mine, received, ch["external_id"]):
        for path in (f"/{object_id}", f"/{object_id}/content"):
            error = meta_error(graph(other, "GET", path), 100, 400, subcode=33, needle=object_id)
            assert error["type"] == "GraphMethodException"
            assert "image" not in json.dumps(error) and "sha256" not in json.dumps(error)
        meta_error(graph(other, "DELETE", f"/{object_id}"), 100, 400, subcode=33)
    meta_error(upload(other, ch["external_id"]), 100, 400, subcode=33)
    meta_error(graph(other, "GET", f"/{ch['group_id']}/message_templates"), 100, 400, subcode=33)
    meta_error(graph(other, "DELETE", f"/{ch['group_id']}/message_templates?name=x"), 100, 400, subcode=33)
    meta_error(graph(other, "GET", f"/{mine}?phone_number_id={ch['external_id']}"), 100, 400, subcode=33)
    # Still there for their owner, and nothing of theirs was touched.
    assert graph(inbox, "GET", f"/{mine}").status_code == 200
    assert graph(inbox, "GET", f"/{received}").status_code == 200
    assert graph(other, "GET", "/not-a-thing").json["error"]["error_subcode"] == 33
    assert graph(other, "GET", f"/{other_ch['external_id']}").status_code == 200


# -- auth ---------------------------------------------------------------------------------------------------

def test_scopes_and_authentication_answer_in_metas_envelope(client, sandbox):
    inbox, ch = setup(client, sandbox)
    media_id = upload(inbox, ch["external_id"]).json["id"]
    reader, sender = key_with(inbox, "messages:read"), key_with(inbox, "messages:send")
    refused = meta_error(upload(inbox, ch["external_id"], key=reader), 10, 403, needle="messages:send")
    assert refused["type"] == "OAuthException"
    meta_error(graph(inbox, "DELETE", f"/{media_id}", key=reader), 10, 403)
    meta_error(graph(inbox, "GET", f"/{media_id}", key=sender), 10, 403, needle="messages:read")
    meta_error(graph(inbox, "GET", f"/{ch['group_id']}/message_templates", key=sender), 10, 403)
    meta_error(graph(inbox, "POST", f"/{ch['group_id']}/message_templates", key=reader, json={}), 10, 403,
               needle="templates:write")
    meta_error(graph(inbox, "DELETE", f"/{ch['group_id']}/message_templates?name=x", key=reader), 10, 403)
    assert graph(inbox, "GET", f"/{media_id}", key=reader).status_code == 200
    assert upload(inbox, ch["external_id"], key=sender).status_code == 200

    for path, method in ((f"/{media_id}", "GET"), (f"/{media_id}/content", "GET"),
                         (f"/{ch['external_id']}/media", "POST"), (f"/{ch['group_id']}/message_templates", "GET")):
        anonymous = client.open(f"/graph/{VERSION}{path}", method=method)
        meta_error(anonymous, 2500, 401)
        meta_error(graph(inbox, method, path, key="gwk_revoked_or_made_up"), 190, 401)
    # Graph's other way of passing the token works too.
    assert client.get(f"/graph/{VERSION}/{media_id}?access_token={reader}").status_code == 200
    meta_error(client.get(f"/graph/v0.x/{media_id}", headers={"Authorization": f"Bearer {reader}"}), 100, 400)


# -- phone number -------------------------------------------------------------------------------------------

def test_a_phone_number_id_reads_as_metas_phone_number_node(client, sandbox):
    inbox, ch = setup(client, sandbox)
    bare = graph(inbox, "GET", f"/{ch['external_id']}")
    assert bare.status_code == 200 and bare.json == {"id": ch["external_id"], "platform_type": "CLOUD_API"}

    def notify(field, value):
        doc = {"object": "whatsapp_business_account", "entry": [{"id": ch["group_id"], "time": int(time.time()),
                                                                 "changes": [{"field": field, "value": value}]}]}
        assert inbox.post_meta("whatsapp", doc).status_code == 200
        inbox.drain()

    notify("phone_number_name_update", {"display_phone_number": "15550783881", "decision": "APPROVED",
                                        "requested_verified_name": "Tienda Sol", "rejection_reason": None})
    notify("phone_number_quality_update", {"display_phone_number": "15550783881", "event": "UPGRADE",
                                           "current_limit": "TIER_10K"})
    inbox.api("PATCH", f"/v1/channels/{ch['id']}", json={"settings": {"quality_rating": "green"}})
    got = graph(inbox, "GET", f"/{ch['external_id']}")
    assert got.status_code == 200
    assert got.json == {"id": ch["external_id"], "display_phone_number": "15550783881", "verified_name": "Tienda Sol",
                        "name_status": "APPROVED", "quality_rating": "GREEN", "messaging_limit_tier": "TIER_10K",
                        "platform_type": "CLOUD_API"}
    some = graph(inbox, "GET", f"/{ch['external_id']}?fields=verified_name,display_phone_number,throughput")
    assert some.json == {"id": ch["external_id"], "display_phone_number": "15550783881",
                         "verified_name": "Tienda Sol"}


# -- templates ----------------------------------------------------------------------------------------------

def _definition(name: str) -> dict:
    return json.loads((FIXTURES / f"pywa_template_create__{name}.json").read_text())


def _at_meta(sandbox, waba: str, definition: dict) -> dict:
    req = urllib.request.Request(f"{sandbox.url}/v24.0/{waba}/message_templates", method="POST",
                                 data=json.dumps(definition).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer t"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _at_meta_list(sandbox, waba: str) -> list[dict]:
    req = urllib.request.Request(f"{sandbox.url}/v24.0/{waba}/message_templates",
                                 headers={"Authorization": "Bearer t"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["data"]


@pytest.fixture
def catalog(client, sandbox):
    """A WABA whose catalog holds five translations of four templates, synced from the sandbox."""
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    inbox, ch = setup(client, sandbox)
    waba = ch["group_id"]
    made = {}
    for name in ("order_confirmation", "order_delivery_update", "seasonal_promotion", "coupon_code_fall2023_25off"):
        made[(name, "en_US")] = _at_meta(sandbox, waba, _definition(name))
    made[("order_confirmation", "es")] = _at_meta(sandbox, waba, {**_definition("order_confirmation"),
                                                                  "language": "es"})
    r = inbox.api("POST", "/v1/templates/sync", json={"channel_id": ch["id"]})
    assert r.status_code == 200 and r.json["pulled"] == 5, r.json
    return inbox, ch, waba, made


def test_template_list_has_metas_shape_fields_and_filters(catalog):
    inbox, ch, waba, made = catalog
    r = graph(inbox, "GET", f"/{waba}/message_templates")
    assert r.status_code == 200, r.json
    data = r.json["data"]
    assert [(t["name"], t["language"]) for t in data] == [
        ("coupon_code_fall2023_25off", "en_US"), ("order_confirmation", "en_US"), ("order_confirmation", "es"),
        ("order_delivery_update", "en_US"), ("seasonal_promotion", "en_US")]
    first = next(t for t in data if t["name"] == "order_confirmation" and t["language"] == "en_US")
    assert set(first) == {"name", "parameter_format", "components", "language", "status", "category", "id"}
    assert first["id"] == made[("order_confirmation", "en_US")]["id"]
    assert first["status"] == "APPROVED" and first["category"] == "UTILITY"
    assert first["parameter_format"] == "POSITIONAL"
    assert first["components"] == _definition("order_confirmation")["components"]
    assert set(r.json["paging"]["cursors"]) == {"before", "after"} and "next" not in r.json["paging"]

    some = graph(inbox, "GET", f"/{waba}/message_templates?fields=name,status,quality_score,components%7Btype%7D"
                               "&summary=total_count").json
    assert all(set(t) == {"name", "status", "quality_score", "components", "id"} for t in some["data"])
    assert all(t["quality_score"] == {"score": "UNKNOWN"} for t in some["data"])
    assert some["summary"] == {"total_count": 5}

    def names(query):
        got = graph(inbox, "GET", f"/{waba}/message_templates?{query}")
        assert got.status_code == 200, got.json
        return [(t["name"], t["language"]) for t in got.json["data"]]

    assert names("category=UTILITY") == [("order_confirmation", "en_US"), ("order_confirmation", "es"),
                                         ("order_delivery_update", "en_US")]
    assert names("category=marketing&language=en_US") == [("coupon_code_fall2023_25off", "en_US"),
                                                           ("seasonal_promotion", "en_US")]
    assert names("language=es") == [("order_confirmation", "es")]
    assert names("name=order_confirmation") == [("order_confirmation", "en_US"), ("order_confirmation", "es")]
    assert names('status=["APPROVED","PAUSED"]&category=UTILITY,AUTHENTICATION') == names("category=UTILITY")
    assert names("status=REJECTED") == []
    assert graph(inbox, "GET", f"/{waba}/message_templates?status=REJECTED").json["paging"] == {"cursors": {}}
    meta_error(graph(inbox, "GET", f"/{waba}/message_templates?limit=0"), 100, 400, needle="limit")
    meta_error(graph(inbox, "GET", f"/{waba}/message_templates?after=bm90IG91cnM"), 100, 400, needle="cursor")
    meta_error(graph(inbox, "GET", "/999999999999/message_templates"), 100, 400, subcode=33)
    # A phone number id is not a business account id.
    meta_error(graph(inbox, "GET", f"/{ch['external_id']}/message_templates"), 100, 400, subcode=33)


def test_template_list_pages_with_cursors_both_ways(catalog):
    inbox, _, waba, _ = catalog
    everything = [(t["name"], t["language"]) for t in graph(inbox, "GET", f"/{waba}/message_templates").json["data"]]
    seen, pages, url = [], [], f"/{waba}/message_templates?limit=2&fields=name,language"
    while url:
        page = graph(inbox, "GET", url).json
        pages.append(page)
        seen += [(t["name"], t["language"]) for t in page["data"]]
        following = page["paging"].get("next")
        if following:
            parts = urlsplit(following)
            assert parts.path == f"/graph/{VERSION}/{waba}/message_templates"
            assert parse_qs(parts.query)["limit"] == ["2"] and parse_qs(parts.query)["fields"] == ["name,language"]
            url = following.split(f"/graph/{VERSION}", 1)[1]
        else:
            url = None
    assert seen == everything and [len(p["data"]) for p in pages] == [2, 2, 1]
    assert "previous" not in pages[0]["paging"] and "previous" in pages[1]["paging"]
    # Back from the last page with its 'before' cursor: the page before it, in the same order.
    back = graph(inbox, "GET", f"/{waba}/message_templates?limit=2&before={pages[2]['paging']['cursors']['before']}")
    assert [(t["name"], t["language"]) for t in back.json["data"]] == everything[2:4]
    assert "next" in back.json["paging"] and "previous" in back.json["paging"]
    after = graph(inbox, "GET", f"/{waba}/message_templates?limit=2&after={pages[0]['paging']['cursors']['after']}")
    assert [(t["name"], t["language"]) for t in after.json["data"]] == everything[2:4]


@pytest.mark.parametrize("fixture", ["seasonal_promotion", "abandoned_cart", "authentication_code_copy_code_button",
                                     "carousel_template_media_cards_v1", "limited_time_offer_caribbean_pkg_2023"])
def test_create_takes_metas_creation_bodies(client, sandbox, fixture):
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    inbox, ch = setup(client, sandbox)
    waba = ch["group_id"]
    body = _definition(fixture)
    r = graph(inbox, "POST", f"/{waba}/message_templates", json=body)
    assert r.status_code == 200, r.json
    assert set(r.json) == {"id", "status", "category"} and r.json["category"] == body["category"]
    at_meta = {t["id"]: t for t in _at_meta_list(sandbox, waba)}
    assert at_meta[r.json["id"]]["name"] == body["name"]
    assert at_meta[r.json["id"]]["components"] == body["components"]
    # In the catalog, where the send gate and /v1/templates read it.
    listed = graph(inbox, "GET", f"/{waba}/message_templates?name={body['name']}").json["data"]
    assert [t["id"] for t in listed] == [r.json["id"]]
    rest = inbox.api("GET", f"/v1/templates/{body['name']}?channel_id={ch['id']}&language={body['language']}")
    assert rest.status_code == 200 and rest.json["meta_id"] == r.json["id"]
    assert graph(inbox, "GET", f"/{r.json['id']}").json == {**listed[0]}
    # The same create again (a retried request) answers as the first did and creates nothing more.
    again = graph(inbox, "POST", f"/{waba}/message_templates", json=body)
    assert again.status_code == 200 and again.json == r.json
    assert len(_at_meta_list(sandbox, waba)) == 1


def test_create_refusals_are_metas(client, sandbox):
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    inbox, ch = setup(client, sandbox)
    waba = ch["group_id"]
    body = _definition("order_confirmation")
    bad = json.loads(json.dumps(body))
    bad["name"] = "Order Confirmation!"
    bad["components"][1]["example"] = {"body_text": [["Pablo"]]}      # two parameters, one example
    error = meta_error(graph(inbox, "POST", f"/{waba}/message_templates", json=bad), 100, 400)
    assert error["message"] == "(#100) Invalid parameter"
    pointers = {p["pointer"] for p in error["error_data"]["problems"]}
    assert "/name" in pointers and any(p.startswith("/components/1") for p in pointers)
    assert "/name" in error["error_data"]["details"] and error["error_user_title"]
    assert _at_meta_list(sandbox, waba) == []      # nothing reached Meta

    meta_error(graph(inbox, "POST", f"/{waba}/message_templates", json={k: v for k, v in body.items()
                                                                         if k != "name"}),
               100, 400, needle="The parameter name is required")
    meta_error(graph(inbox, "POST", f"/{waba}/message_templates", data="name=x",
                     content_type="application/x-www-form-urlencoded"), 100, 400, needle="JSON")
    assert graph(inbox, "POST", f"/{waba}/message_templates", json=body).status_code == 200
    changed = json.loads(json.dumps(body))
    changed["components"][1]["text"] = changed["components"][1]["text"].replace("Thank you", "Thanks")
    dup = meta_error(graph(inbox, "POST", f"/{waba}/message_templates", json=changed), 100, 400, subcode=2388024)
    assert dup["error_user_title"] == "Content in this language already exists"
    meta_error(graph(inbox, "POST", "/999999999999/message_templates", json=body), 100, 400, subcode=33)


def test_delete_by_name_or_by_hsm_id(catalog, sandbox):
    inbox, _, waba, made = catalog
    es_id = made[("order_confirmation", "es")]["id"]
    meta_error(graph(inbox, "DELETE", f"/{waba}/message_templates"), 100, 400, needle="parameter name is required")
    mismatch = meta_error(graph(inbox, "DELETE", f"/{waba}/message_templates?name=seasonal_promotion&hsm_id={es_id}"),
                          100, 400)
    assert mismatch["error_user_title"] == "Template name does not match"
    one = graph(inbox, "DELETE", f"/{waba}/message_templates?name=order_confirmation&hsm_id={es_id}")
    assert one.status_code == 200 and one.json == {"success": True}
    left = {(t["name"], t["language"]) for t in graph(inbox, "GET", f"/{waba}/message_templates").json["data"]}
    assert ("order_confirmation", "es") not in left and ("order_confirmation", "en_US") in left
    assert es_id not in {t["id"] for t in _at_meta_list(sandbox, waba)}

    every = graph(inbox, "DELETE", f"/{waba}/message_templates?name=order_confirmation")
    assert every.status_code == 200 and every.json == {"success": True}
    assert graph(inbox, "GET", f"/{waba}/message_templates?name=order_confirmation").json["data"] == []
    assert "order_confirmation" not in {t["name"] for t in _at_meta_list(sandbox, waba)}
    gone = meta_error(graph(inbox, "DELETE", f"/{waba}/message_templates?name=order_confirmation"), 100, 400)
    assert gone["error_user_title"] == "Message template not found"
    unknown = meta_error(graph(inbox, "DELETE", f"/{waba}/message_templates?name=x&hsm_id=123"), 100, 400)
    assert unknown["error_user_title"] == "Message template not found"
