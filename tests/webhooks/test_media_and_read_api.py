"""Media downloads through a real HTTP server playing the Cloud API; the read API's paging, window and merges."""
from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from datetime import datetime, timedelta, timezone

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.webhooks.test_receiver import text, wa_body

FILE = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(2048)


class FakeGraph:
    """The two Cloud API media endpoints: GET /{version}/{media-id} -> URL, GET URL -> bytes (Bearer both)."""

    def __init__(self, token: str):
        self.token = token
        self.calls = 0
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @Request.application
    def app(self, request):
        self.calls += 1
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return Response('{"error": {"code": 190, "message": "Invalid OAuth access token"}}', 401,
                            mimetype="application/json")
        if request.path.startswith("/file/"):
            return Response(FILE, 200, mimetype="image/png")
        media_id = request.path.rsplit("/", 1)[-1]
        return Response(f'{{"url": "{self.base}/file/{media_id}", "mime_type": "image/png", '
                        f'"sha256": "{hashlib.sha256(FILE).hexdigest()}", "file_size": {len(FILE)}, '
                        f'"id": "{media_id}", "messaging_product": "whatsapp"}}', 200, mimetype="application/json")


@pytest.fixture
def graph():
    g = FakeGraph("EAAG-test")
    yield g
    g.server.shutdown()


def _image(wa_id: str, media_id: str):
    return {"from": wa_id, "id": f"wamid.{secrets.token_hex(8)}", "timestamp": "1732400000", "type": "image",
            "image": {"id": media_id, "mime_type": "image/png", "caption": "la factura",
                      "sha256": base64.b64encode(hashlib.sha256(FILE).digest()).decode()}}


def test_inbound_image_is_downloaded_encrypted_and_served(inbox, graph, conn):
    ch = inbox.channel("whatsapp", settings={"api_base_url": graph.base})
    assert inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[_image("34600000091", "1234567")])
                           ).status_code == 200
    inbox.drain(("inbound", "default"))
    [thread] = inbox.threads()
    [m] = inbox.messages(thread["id"])
    assert m["kind"] == "image" and m["text"] == "la factura"
    [media] = m["media"]
    assert media["state"] == "stored" and media["size_bytes"] == len(FILE)
    r = inbox.api("GET", media["url"])
    assert r.status_code == 200 and r.data == FILE and r.mimetype == "image/png"
    stored = conn.execute("SELECT content_enc FROM media WHERE account_id = %s", (inbox.account_id,)).fetchone()
    assert FILE[8:40] not in bytes(stored["content_enc"])     # encrypted at rest


def test_failed_download_is_visible_and_can_be_retried(inbox, graph):
    ch = inbox.channel("whatsapp", settings={"api_base_url": graph.base})
    inbox.api("PATCH", f"/v1/channels/{ch['id']}", json={"credentials": {"access_token": "EAAG-expired"}})
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[_image("34600000092", "7654321")]))
    inbox.drain(("inbound", "default"))
    [thread] = inbox.threads()
    [media] = inbox.messages(thread["id"])[0]["media"]
    assert media["state"] == "failed" and "access_token" in media["last_error"]
    r = inbox.api("GET", media["url"])
    assert r.status_code == 409 and "retry" in r.json["detail"]
    inbox.api("PATCH", f"/v1/channels/{ch['id']}", json={"credentials": {"access_token": "EAAG-test"}})
    assert inbox.api("POST", f"{media['url']}/retry").status_code == 202
    inbox.drain(("default",))
    assert inbox.api("GET", media["url"]).data == FILE


def test_media_of_another_account_is_not_found(inbox, graph, client):
    from tests.webhooks.conftest import make_inbox
    ch = inbox.channel("whatsapp", settings={"api_base_url": graph.base})
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[_image("34600000093", "999")]))
    inbox.drain(("inbound", "default"))
    [thread] = inbox.threads()
    url = inbox.messages(thread["id"])[0]["media"][0]["url"]
    other = make_inbox(client)
    assert other.api("GET", url).status_code == 404
    assert other.api("GET", f"/v1/threads/{thread['id']}").status_code == 404
    assert other.api("GET", f"/v1/threads/{thread['id']}/messages").status_code == 404


def test_thread_window_and_paging_both_ways(inbox):
    ch = inbox.channel("whatsapp")
    now = int(datetime.now(timezone.utc).timestamp())
    msgs = [text("34600000094", f"m{i}", ts=now - 100 + i) for i in range(7)]
    inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=msgs))
    inbox.drain()
    [thread] = inbox.threads()
    shown = inbox.api("GET", f"/v1/threads/{thread['id']}").json
    assert shown["window"]["open"] is True and shown["message_count"] == 7
    closes = datetime.fromisoformat(shown["window"]["closes_at"])
    assert abs(closes - (datetime.fromtimestamp(now - 94, timezone.utc) + timedelta(hours=24))) < timedelta(seconds=2)
    assert shown["last_message"]["text"] == "m6"

    first = inbox.api("GET", f"/v1/threads/{thread['id']}/messages?limit=3").json
    assert [m["text"] for m in first["data"]] == ["m0", "m1", "m2"] and first["previous"] is None
    second = inbox.api("GET", f"/v1/threads/{thread['id']}/messages?limit=3&after={first['next']}").json
    assert [m["text"] for m in second["data"]] == ["m3", "m4", "m5"]
    back = inbox.api("GET", f"/v1/threads/{thread['id']}/messages?limit=3&before={second['previous']}").json
    assert [m["text"] for m in back["data"]] == ["m0", "m1", "m2"]
    latest = inbox.api("GET", f"/v1/threads/{thread['id']}/messages?limit=2&before=latest").json
    assert [m["text"] for m in latest["data"]] == ["m5", "m6"] and latest["next"] is None
    older = inbox.api("GET", f"/v1/threads/{thread['id']}/messages?limit=2&before={latest['previous']}").json
    assert [m["text"] for m in older["data"]] == ["m3", "m4"]
    assert inbox.api("GET", f"/v1/threads/{thread['id']}/messages?after=nonsense").status_code == 400


def test_old_window_is_closed_and_threads_page_newest_first(inbox):
    ch = inbox.channel("whatsapp")
    old = int((datetime.now(timezone.utc) - timedelta(days=3)).timestamp())
    for i in range(3):
        inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[text(f"3460000010{i}", "hi", ts=old + i)]))
    inbox.drain()
    page = inbox.api("GET", "/v1/threads?limit=2").json
    assert len(page["data"]) == 2 and page["next"]
    rest = inbox.api("GET", f"/v1/threads?limit=2&before={page['next']}").json
    ordered = page["data"] + rest["data"]
    assert [t["last_activity_at"] for t in ordered] == sorted((t["last_activity_at"] for t in ordered), reverse=True)
    assert all(t["window"]["open"] is False for t in ordered)
    key = inbox.api("POST", "/v1/api-keys", json={"name": "crm", "scopes": ["contacts:read"]}).json["key"]
    assert inbox.client.get("/v1/threads", headers={"Authorization": f"Bearer {key}"}).status_code == 403


def test_merge_and_unmerge_across_channels(inbox):
    wa = inbox.channel("whatsapp")
    page = inbox.channel("messenger")
    inbox.post_meta("whatsapp", wa_body(wa["external_id"], messages=[text("34600000120", "por WhatsApp")]))
    inbox.post_meta("messenger", {"object": "page", "entry": [{"id": page["external_id"], "time": 1732400000000,
                                  "messaging": [{"sender": {"id": "PSID-merge"}, "recipient": {"id": page["external_id"]},
                                                 "timestamp": 1732400000000,
                                                 "message": {"mid": "m_merge", "text": "por Messenger"}}]}]})
    inbox.drain()
    threads = inbox.threads()
    by_kind = {t["channel_kind"]: t["contact_id"] for t in threads}
    phone_contact, psid_contact = by_kind["whatsapp"], by_kind["messenger"]
    assert phone_contact != psid_contact        # never merged automatically
    r = inbox.api("POST", f"/v1/contacts/{phone_contact}/merge", json={"contact_id": psid_contact})
    assert r.status_code == 201, r.json
    merged = inbox.api("GET", f"/v1/contacts/{phone_contact}").json
    assert sorted(i["kind"] for i in merged["identities"]) == ["phone", "psid"]
    assert len(merged["threads"]) == 2
    assert len(inbox.threads(contact_id=phone_contact)) == 2
    assert all(c["id"] != psid_contact for c in inbox.api("GET", "/v1/contacts").json["data"])
    # A contact already merged cannot be merged again; unmerge restores both exactly.
    again = inbox.api("POST", f"/v1/contacts/{phone_contact}/merge", json={"contact_id": psid_contact})
    assert again.status_code == 409
    r = inbox.api("POST", f"/v1/contacts/{phone_contact}/unmerge", json={"contact_id": psid_contact})
    assert r.status_code == 200 and r.json["unmerged_at"]
    assert [i["kind"] for i in inbox.api("GET", f"/v1/contacts/{phone_contact}").json["identities"]] == ["phone"]
    assert inbox.api("GET", f"/v1/contacts/{psid_contact}").json["merged_into"] is None
