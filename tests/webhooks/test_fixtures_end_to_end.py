"""Every shared provider fixture, end to end: signed POST -> durable event -> real worker -> REST API.

For each fixture the provider's own parse says which events it holds; this
test checks that the gateway applied each of them and that the API shows it:
messages in their thread (kind, direction, text), statuses on their message
(with history), notices under their topic, and anything unreadable flagged
for review - never a 500, never dropped.
"""
from __future__ import annotations

import json

import pytest

from gateway import db, merges, messages
from gateway.providers import IdentityChange, InboundMessage, Notice, StatusUpdate, Unsupported
from tests.webhooks.conftest import SHARED, TWILIO_SID, make_inbox
from webhooks import registry

if not SHARED.is_dir():
    pytest.skip(f"shared fixtures not found at {SHARED}", allow_module_level=True)

# Send API bodies kept beside the webhooks: not something a provider posts to us.
NOT_WEBHOOKS = {"mseri_sendapi_errorResponse.json", "mseri_sendapi_textMessage_request.json"}


def _meta_envelope(kind: str, doc: dict) -> dict:
    """Doc pages show bare events or entries; the wire always carries the full envelope."""
    obj = "page" if kind == "messenger" else "instagram"
    if "entry" in doc or "field" in doc:
        return doc
    if "messaging" in doc or "changes" in doc:
        return {"object": obj, "entry": [doc]}
    page = (doc.get("recipient") or {}).get("id") or "PAGE"
    return {"object": obj, "entry": [{"id": page, "time": 1458668856463, "messaging": [doc]}]}


def _twilio_params(doc: dict) -> dict:
    # Twilio always sends the account and both numbers; the doc excerpts leave them out.
    params = {"AccountSid": TWILIO_SID, "ApiVersion": "2010-04-01", **doc}
    if "MessageStatus" in doc and "From" not in doc:
        params.update(From="+14155550100", To="+34600000009")
    return params


def _cases():
    for kind, folder in (("whatsapp", "whatsapp"), ("messenger", "messenger"), ("instagram", "instagram"),
                         ("twilio", "twilio")):
        for path in sorted((SHARED / folder).glob("*.json")):
            if path.name not in NOT_WEBHOOKS:
                yield pytest.param(kind, path, id=f"{kind}/{path.stem}")


@pytest.fixture(scope="module")
def world(app):
    # One account for the module: fixture files share business ids, and a number belongs to one channel.
    inbox = make_inbox(app.test_client())
    inbox.seen = {}
    return inbox


def _body(kind: str, path):
    doc = json.loads(path.read_text(encoding="utf-8"))
    if kind == "twilio":
        params = _twilio_params(doc)
        return params, json.dumps(params).encode()   # raw only used to predict events below
    if kind in ("messenger", "instagram"):
        doc = _meta_envelope(kind, doc)
    return doc, json.dumps(doc, separators=(",", ":")).encode("ascii")


def _seed_outbound(conn, account_id, channel_id, provider_message_id: str):
    """What the send worker records before a status can refer to it."""
    bidx = messages.provider_id_bidx(account_id, provider_message_id)
    if conn.execute("SELECT 1 FROM messages WHERE account_id = %s AND channel_id = %s AND provider_id_bidx = %s",
                    (account_id, channel_id, bidx)).fetchone():
        return
    contact = merges.resolve_sender(conn, account_id=account_id, identities=[("phone", "+34600000077")], name=None)
    messages.record_message(conn, account_id=account_id, contact_id=contact, channel_id=channel_id,
                            direction="outbound", body="seeded", status="sent",
                            provider_message_id=provider_message_id)


@pytest.mark.parametrize("kind,path", list(_cases()))
def test_fixture_lands_and_reads_back(world, kind, path):
    provider = registry.get(kind)
    body, raw = _body(kind, path)
    if kind == "twilio":
        from urllib.parse import urlencode
        raw = urlencode(body).encode()
        events = provider.parse(raw, {"Content-Type": "application/x-www-form-urlencoded"})
        candidates = provider.channel_ids(raw, {"Content-Type": "application/x-www-form-urlencoded"}, "")
    else:
        events = provider.parse(raw, {})
        candidates = provider.channel_ids(raw, {}, "")
    assert candidates, "the fixture names no business id to route by"
    channel = world.channel(kind, candidates[0])

    with db.connection() as conn:
        for ev in events:
            if isinstance(ev, StatusUpdate) and ev.provider_message_id:
                _seed_outbound(conn, world.account_id, channel["id"], ev.provider_message_id)
        before = {r["id"] for r in world.events(conn)}

    r = world.post_twilio(body) if kind == "twilio" else world.post_meta(kind, raw)
    assert r.status_code == 200, r.get_data(as_text=True)
    if kind == "twilio":
        assert r.mimetype == "text/xml" and b"<Response/>" in r.data

    world.drain()
    with db.connection() as conn:
        new = [e for e in world.events(conn) if e["id"] not in before]
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if kind == "twilio" else {}
    if world.seen.setdefault(("event", kind, provider.dedupe_key(raw, headers)), path.name) != path.name:
        assert new == [], "a redelivery (same dedupe key) is stored once"
        return
    assert len(new) == 1, "one stored event per delivery"
    event = new[0]
    assert event["processed_at"] is not None and event["last_error"] is None, event

    found = world.all_messages()
    for ev in events:
        if isinstance(ev, InboundMessage):
            m = found.get(ev.provider_message_id)
            assert m is not None, f"message {ev.provider_message_id} not readable over the API"
            first_seen = world.seen.setdefault(ev.provider_message_id, path.name)
            if first_seen != path.name:
                continue   # fixtures reuse ids: a message id seen before is deduplicated, not recorded twice
            assert (m["kind"], m["direction"], m["text"]) == (ev.kind, ev.direction, ev.text)
            assert len(m["media"]) == len(ev.media)
            if ev.reply_to and ev.reply_to in found and ev.reply_to != ev.provider_message_id:
                assert m["reply_to_id"] == found[ev.reply_to]["id"]
        elif isinstance(ev, StatusUpdate) and ev.provider_message_id:
            m = found[ev.provider_message_id]
            assert ev.status in [s["status"] for s in m["statuses"]]
            assert messages.STATUS_RANK[m["status"]] >= messages.STATUS_RANK[ev.status]
            if ev.status == "failed":
                assert m["error"]["code"] == ev.error_code
        elif isinstance(ev, Notice):
            topics = [n["topic"] for n in world.api("GET", f"/v1/notices?topic={ev.topic}").json["data"]]
            assert ev.topic in topics
        elif isinstance(ev, Unsupported):
            flagged = {str(e["id"]): e for e in world.api("GET", "/v1/inbound-events/review?limit=200").json["data"]}
            assert ev.what in flagged[str(event["id"])]["review_reasons"]
        elif isinstance(ev, IdentityChange):
            with db.connection() as conn:
                from gateway import contacts
                assert contacts.contact_id_for(conn, account_id=world.account_id, kind=ev.kind, address=ev.new)


def test_every_fixture_folder_is_covered():
    covered = {p.values[1].parent.name for p in _cases()}
    assert covered == {"whatsapp", "messenger", "instagram", "twilio"}
