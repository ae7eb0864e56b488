"""Every event type of gateway.event_types.TYPES, emitted by the real action that causes it: signed provider
webhooks through the receiver and the inbound worker, sends through the RQ send worker and the sandbox provider,
and the REST API. Each test reads what happened the way an integrator does, through the change feed
(GET /v1/events), and every event it reads must load through its type's schema, name the right ids and hold no
personal data. A change that rolled back, a duplicate webhook and a status that does not move emit nothing.

A test names the types it proves with ``@covers``; a type in the registry that no test names fails
``test_every_type_is_proven_by_a_test``."""
from __future__ import annotations

import json
import secrets
import time

import pytest

from gateway import consent, contacts, db, merges
from gateway.event_types import TYPES
from tests.gateway import test_campaigns as campaigns
from tests.gateway import test_surveys as surveys
from tests.gateway.test_send_end_to_end import control, gateway_url, sandbox, wait_for  # noqa: F401  (fixtures)
from tests.gateway.test_templates_api import _setup as _templates_at_meta
from tests.webhooks.conftest import TWILIO_SID, make_inbox
from tests.webhooks.test_receiver import status, text, wa_body

COVERED: set[str] = set()


def covers(*names):
    """Declares the event types a test proves (read back through the feed, with their ids)."""
    assert not [n for n in names if n not in TYPES], f"not event types: {names}"

    def mark(test):
        COVERED.update(names)
        return test
    return mark


class Feed:
    """GET /v1/events as an integrator reads it: from a kept cursor, every event checked against its schema."""

    def __init__(self, inbox):
        self.inbox, self.cursor, self.seen = inbox, None, []

    def read(self) -> list[dict]:
        """What is new since the last read, oldest first."""
        got = []
        while True:
            r = self.inbox.api("GET", "/v1/events?limit=1000" + (f"&after={self.cursor}" if self.cursor else ""))
            assert r.status_code == 200, r.json
            got += r.json["data"]
            self.cursor = r.json["next"]
            if not r.json["more"]:
                break
        for event in got:
            assert event["type"] in TYPES, f"{event['type']} is not in the registry"
            event["loaded"] = TYPES[event["type"]].schema().load(event["data"])   # raises on a broken contract
        self.seen += got
        return got


def find(events: list[dict], type_: str, **want) -> list[dict]:
    """The events of this type whose data has these values (ids compared as strings)."""
    def matches(e):
        return all(str(e["data"].get(k)) == str(v) if v is not None else e["data"].get(k) is None
                   for k, v in want.items())
    return [e for e in events if e["type"] == type_ and matches(e)]


def the(events: list[dict], type_: str, subject=None, **want) -> dict:
    found = find(events, type_, **want)
    assert len(found) == 1, (f"expected one {type_} with {want}, found {len(found)} among "
                             f"{[(e['type'], e['data']) for e in events]}")
    if subject is not None:
        assert found[0]["subject_id"] == str(subject)
    return found[0]


def private(events: list[dict], *values: str) -> None:
    """None of these values (phone numbers, names, message text) appears in any event's data."""
    for event in events:
        dumped = json.dumps(event["data"], ensure_ascii=False)
        for value in values:
            assert value not in dumped, f"{event['type']} carries personal data"


def _phone() -> str:
    return f"34600{secrets.randbelow(10**6):06d}"


def _ok(r, code=200):
    assert r.status_code == code, r.json
    return r.json


def _wa(inbox, ch, phone, body, **card):
    msg = text(phone, body, ts=int(time.time()) - 2)
    contacts_ = [{"profile": {"name": card["name"]}, "wa_id": phone}] if card.get("name") else ()
    r = inbox.post_meta("whatsapp", wa_body(ch["external_id"], messages=[msg], contacts=contacts_))
    assert r.status_code == 200
    inbox.drain()
    return msg


def _sms(inbox, ch, phone, body):
    params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": TWILIO_SID, "From": phone,
              "To": ch["external_id"], "Body": body, "NumMedia": "0", "SmsStatus": "received",
              "ApiVersion": "2010-04-01"}
    assert inbox.post_twilio(params).status_code == 200
    inbox.drain()


def _sandboxed(client, sandbox, kind="whatsapp", **extra):
    inbox = make_inbox(client)
    external = f"+1415{secrets.randbelow(10**7):07d}" if kind == "twilio" else None
    return inbox, inbox.channel(kind, external, settings={"api_base_url": sandbox.url, "pair_interval_s": 0}, **extra)


def _send(inbox, **body):
    return _ok(inbox.api("POST", "/v1/messages", json=body), 202)


def _message(inbox, message_id) -> dict:
    return inbox.api("GET", f"/v1/messages/{message_id}").json


# --- inbound ---------------------------------------------------------------------------------------------------

@covers("message.received", "thread.created", "contact.created")
def test_a_first_message_makes_contact_thread_and_message_events_and_a_redelivery_none(client):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    feed = Feed(inbox)
    phone = _phone()
    msg = _wa(inbox, ch, phone, "mi pedido 4411 no llegó", name="Ana Secreta")
    [thread] = inbox.threads()
    [stored] = inbox.messages(thread["id"])
    got = feed.read()
    contact = thread["contact_id"]
    made = the(got, "contact.created", subject=contact, contact_id=contact, source="inbound", channel_kind="whatsapp")
    opened = the(got, "thread.created", subject=thread["id"], thread_id=thread["id"], contact_id=contact,
                 channel_id=ch["id"])
    received = the(got, "message.received", subject=thread["id"], message_id=stored["id"], thread_id=thread["id"],
                   contact_id=contact, channel_id=ch["id"], channel_kind="whatsapp", kind="text")
    assert got.index(made) < got.index(opened) < got.index(received)
    assert received["loaded"]["received_at"] is not None

    # Meta delivers at least once: the same body again, and the same message in another body, emit nothing.
    body = wa_body(ch["external_id"], messages=[msg], contacts=[{"profile": {"name": "Ana Secreta"}, "wa_id": phone}])
    assert inbox.post_meta("whatsapp", body).status_code == 200
    again = wa_body(ch["external_id"], messages=[dict(msg, timestamp=str(int(time.time())))])
    assert inbox.post_meta("whatsapp", again).status_code == 200
    inbox.drain()
    assert feed.read() == []

    # The customer's next message is a message, not a new contact or thread.
    _wa(inbox, ch, phone, "¿hola?")
    later = feed.read()
    assert [e["type"] for e in later if e["type"] != "message.received"] == []
    assert len(find(later, "message.received", thread_id=thread["id"], contact_id=contact)) == 1
    private(feed.seen, phone, "Ana Secreta", "pedido 4411", "¿hola?")


# --- outbound --------------------------------------------------------------------------------------------------

@covers("message.sent", "message.status")
def test_a_send_is_sent_delivered_and_read_and_a_late_or_repeated_status_emits_nothing(client, sandbox):
    inbox, ch = _sandboxed(client, sandbox)
    phone = _phone()
    _wa(inbox, ch, phone, "hola")
    [thread] = inbox.threads()
    feed = Feed(inbox)
    feed.read()
    msg = _send(inbox, channel_id=ch["id"], contact_id=thread["contact_id"], type="text",
                text={"body": "Tu pedido 8812 salió hoy"})
    done = wait_for(lambda: (m := _message(inbox, msg["id"]))["status"] == "read" and m, inbox, what="read")
    got = feed.read()
    ids = dict(message_id=msg["id"], thread_id=thread["id"], contact_id=thread["contact_id"], channel_id=ch["id"])
    sent = the(got, "message.sent", subject=thread["id"], channel_kind="whatsapp", kind="text", automated=False,
               campaign_id=None, **ids)
    read = the(got, "message.status", subject=thread["id"], status="read", error_code=None, **ids)
    moved = find(got, "message.status", **ids)
    # Statuses are applied as they come: a 'delivered' processed after 'read' moves nothing and says nothing.
    assert {e["data"]["status"] for e in moved} <= {"delivered", "read"} and read in moved
    assert all(got.index(sent) < got.index(e) for e in moved)
    assert "provider_message_id" not in sent["data"]      # a wamid encodes the customer's number

    # A late 'delivered' and a repeated 'read', signed by Meta: history only, no event.
    wamid = done["provider_message_id"]
    late = [status(wamid, "delivered", ts=int(time.time()) - 30), status(wamid, "read", ts=int(time.time()) - 1)]
    assert inbox.post_meta("whatsapp", wa_body(ch["external_id"], statuses=late)).status_code == 200
    inbox.drain()
    assert _message(inbox, msg["id"])["status"] == "read"
    assert feed.read() == []
    private(feed.seen, phone, "8812", wamid)


@covers("message.sent")
def test_a_send_whose_answer_timed_out_is_announced_once_its_status_webhook_proves_it(client, sandbox):
    inbox, ch = _sandboxed(client, sandbox)
    ch = _ok(inbox.api("PATCH", f"/v1/channels/{ch['id']}", json={"settings": {"send_timeout_s": 0.5}}))
    _wa(inbox, ch, _phone(), "hola")
    [thread] = inbox.threads()
    feed = Feed(inbox)
    feed.read()
    # Meta takes the message but answers after our read timeout; its status webhooks echo our id.
    control(sandbox, "/_sandbox/config", {"timeout_rate": 1.0, "timeout_s": 1, "max_faults": 1})
    msg = _send(inbox, channel_id=ch["id"], contact_id=thread["contact_id"], type="text", text={"body": "¿sigues?"})
    wait_for(lambda: _message(inbox, msg["id"])["status"] == "read", inbox, what="adopted by its statuses")
    got = feed.read()
    sent = the(got, "message.sent", message_id=msg["id"], thread_id=thread["id"], channel_kind="whatsapp")
    assert all(got.index(sent) < got.index(e) for e in find(got, "message.status", message_id=msg["id"]))


@covers("message.sent")
def test_a_status_webhook_that_beats_the_workers_commit_does_not_make_a_second_sent_event(client):
    from gateway import messages, send_worker
    from gateway.providers import SendResult
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    _wa(inbox, ch, _phone(), "hola")
    [thread] = inbox.threads()
    msg = _send(inbox, channel_id=ch["id"], contact_id=thread["contact_id"], type="text", text={"body": "x"})
    feed = Feed(inbox)
    feed.read()
    # The worker has claimed the message and the provider has taken it; before the worker records that, a
    # status webhook naming our id (biz_opaque_callback_data) is applied.
    claimed, _ = send_worker._claim_many(inbox.account_id, [msg["id"]])
    [(row, _)] = claimed
    wamid = f"wamid.{secrets.token_hex(12)}"
    with db.connection() as conn:
        assert messages.apply_status(conn, account_id=inbox.account_id, channel_id=ch["id"],
                                     provider_message_id=wamid, status="delivered",
                                     detail={"callback_data": msg["id"]}) == "applied"
    with db.connection() as conn:
        send_worker._record_sent(conn, inbox.account_id, [(row, SendResult("sent", provider_message_id=wamid))])
    got = feed.read()
    assert [e["type"] for e in got] == ["message.sent", "message.status"]
    the(got, "message.sent", message_id=msg["id"])
    the(got, "message.status", message_id=msg["id"], status="delivered")
    assert _message(inbox, msg["id"])["status"] == "delivered"


@covers("contact.created", "thread.created", "message.sent", "message.status")
def test_an_sms_to_a_new_number_creates_its_contact_and_thread_then_is_sent_and_delivered(client, sandbox):
    inbox, sms = _sandboxed(client, sandbox, "twilio")
    feed = Feed(inbox)
    phone = "+" + _phone()
    msg = _send(inbox, channel_id=sms["id"], to={"address": phone}, type="text", text={"body": "Tu cita es el lunes"})
    wait_for(lambda: _message(inbox, msg["id"])["status"] == "delivered", inbox, what="delivered")
    [thread] = inbox.threads()
    got = feed.read()
    contact = thread["contact_id"]
    the(got, "contact.created", subject=contact, contact_id=contact, source="api", channel_kind="twilio")
    the(got, "thread.created", subject=thread["id"], thread_id=thread["id"], contact_id=contact, channel_id=sms["id"])
    ids = dict(message_id=msg["id"], thread_id=thread["id"], contact_id=contact, channel_id=sms["id"])
    the(got, "message.sent", channel_kind="twilio", kind="text", **ids)
    the(got, "message.status", status="delivered", **ids)
    private(feed.seen, phone, phone.lstrip("+"), "lunes")


@covers("message.status", "message.sent")
def test_a_refused_send_and_a_failed_status_webhook_report_their_code_and_reason(client, sandbox):
    inbox, ch = _sandboxed(client, sandbox)
    _wa(inbox, ch, _phone(), "hola")
    [thread] = inbox.threads()
    feed = Feed(inbox)
    feed.read()
    # Refused by the provider at once: the send worker fails the message.
    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": 131026})
    refused = _send(inbox, channel_id=ch["id"], contact_id=thread["contact_id"], type="text", text={"body": "x"})
    wait_for(lambda: _message(inbox, refused["id"])["status"] == "failed", inbox, what="refused")
    # Accepted, then failed by a status webhook.
    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": 131026, "async_failure": True})
    later = _send(inbox, channel_id=ch["id"], contact_id=thread["contact_id"], type="text", text={"body": "y"})
    wait_for(lambda: _message(inbox, later["id"])["status"] == "failed", inbox, what="failed by webhook")
    got = feed.read()
    now = the(got, "message.status", message_id=refused["id"], thread_id=thread["id"], status="failed",
              error_code="131026")
    assert now["data"]["reason"] and not find(got, "message.sent", message_id=refused["id"])
    the(got, "message.sent", message_id=later["id"])
    webhook = the(got, "message.status", message_id=later["id"], status="failed", error_code="131026")
    assert webhook["data"]["reason"]


@covers("consent.changed", "channel.status_changed")
def test_the_providers_opt_out_and_a_revoked_token_are_reported_by_the_send_worker(client, sandbox):
    inbox, ch = _sandboxed(client, sandbox)
    _wa(inbox, ch, _phone(), "hola")
    contact = inbox.threads()[0]["contact_id"]
    feed = Feed(inbox)
    _ok(inbox.api("POST", f"/v1/contacts/{contact}/consents", json={
        "channel_kind": "whatsapp", "purpose": "marketing", "action": "granted", "source": "web_form",
        "proof": {"text": "Quiero ofertas", "text_version": "v1"}}), 201)
    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": 131050})
    msg = _send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": "x"}, purpose="marketing")
    wait_for(lambda: _message(inbox, msg["id"])["status"] == "failed", inbox, what="131050")
    control(sandbox, "/_sandbox/config", {"whatsapp_error_code": 190})
    msg = _send(inbox, channel_id=ch["id"], contact_id=contact, type="text", text={"body": "y"})
    wait_for(lambda: _message(inbox, msg["id"])["status"] == "failed", inbox, what="190")
    got = feed.read()
    common = dict(subject=contact, contact_id=contact, channel_kind="whatsapp", purpose="marketing")
    granted = the(got, "consent.changed", action="granted", source="web_form", **common)
    revoked = the(got, "consent.changed", action="revoked", source="provider", **common)
    assert got.index(granted) < got.index(revoked)
    paused = the(got, "channel.status_changed", subject=ch["id"], channel_id=ch["id"], channel_kind="whatsapp",
                 status="paused", previous_status="active")
    assert "access_token" in paused["data"]["reason"]


# --- channels --------------------------------------------------------------------------------------------------

@covers("channel.status_changed")
def test_a_channel_disabled_and_enabled_over_the_api_and_its_quality_flagged_by_meta(client):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp", group_id=f"WABA{secrets.randbelow(10**9)}")
    feed = Feed(inbox)
    _ok(inbox.api("PATCH", f"/v1/channels/{ch['id']}", json={"status": "disabled"}))
    _ok(inbox.api("PATCH", f"/v1/channels/{ch['id']}", json={"status": "disabled", "name": "renamed"}))
    _ok(inbox.api("PATCH", f"/v1/channels/{ch['id']}", json={"status": "active"}))
    got = feed.read()
    both = find(got, "channel.status_changed", channel_id=ch["id"], channel_kind="whatsapp")
    assert [(e["data"]["previous_status"], e["data"]["status"]) for e in both] == [
        ("active", "disabled"), ("disabled", "active")]

    def quality(event: str):
        assert inbox.post_meta("whatsapp", {"object": "whatsapp_business_account", "entry": [{
            "id": ch["group_id"], "time": int(time.time()), "changes": [{"field": "phone_number_quality_update",
                                                                        "value": {"display_phone_number": "34910000000",
                                                                                  "event": event,
                                                                                  "current_limit": "TIER_1K"}}]}]}
        ).status_code == 200
        inbox.drain()

    quality("FLAGGED")
    quality("FLAGGED")            # Meta repeats itself: the same state is no change
    quality("UNFLAGGED")
    got = feed.read()
    reported = find(got, "channel.status_changed", channel_id=ch["id"], status="phone_quality")
    assert [(e["data"]["reason"], e["data"]["previous_reason"]) for e in reported] == [
        ("FLAGGED", None), ("UNFLAGGED", "FLAGGED")]
    assert len(got) == 2
    private(feed.seen, "34910000000")


# --- consent ---------------------------------------------------------------------------------------------------

@covers("consent.changed")
def test_stop_and_start_keywords_and_the_api_record_consent_events(client):
    inbox = make_inbox(client)
    sms = inbox.channel("twilio", f"+1415{secrets.randbelow(10**7):07d}")
    phone = "+" + _phone()
    _sms(inbox, sms, phone, "hola")
    contact = inbox.threads()[0]["contact_id"]
    feed = Feed(inbox)
    feed.read()
    _sms(inbox, sms, phone, "STOP")
    _sms(inbox, sms, phone, "START")
    _ok(inbox.api("POST", f"/v1/contacts/{contact}/consents", json={
        "channel_kind": "all", "purpose": "surveys", "action": "withdrawn", "source": "agent"}), 201)
    got = [e for e in feed.read() if e["type"] == "consent.changed"]
    assert [(e["data"]["channel_kind"], e["data"]["purpose"], e["data"]["action"], e["data"]["source"])
            for e in got] == [("twilio", "all", "revoked", "keyword"), ("twilio", "all", "granted", "keyword"),
                              ("all", "surveys", "revoked", "agent")]
    assert all(e["subject_id"] == contact and e["data"]["contact_id"] == contact for e in got)
    private(feed.seen, phone, phone.lstrip("+"))


# --- contacts --------------------------------------------------------------------------------------------------

@covers("contact.created", "contact.updated", "contact.merged", "contact.erased")
def test_a_contact_created_updated_merged_and_erased_over_the_api(client):
    inbox = make_inbox(client)
    feed = Feed(inbox)
    ana = _ok(inbox.api("POST", "/v1/contacts", json={"name": "Ana Secreta", "identities": [
        {"kind": "phone", "address": "+34 600 111 222"}]}), 201)
    alias = _ok(inbox.api("POST", "/v1/contacts", json={
        "identities": [{"kind": "email", "address": "ana@example.com"}]}), 201)
    _ok(inbox.api("PATCH", f"/v1/contacts/{ana['id']}", json={"name": "Ana S.", "language": "es"}))
    _ok(inbox.api("POST", f"/v1/contacts/{ana['id']}/merge", json={"contact_id": alias["id"]}), 201)
    assert inbox.api("DELETE", f"/v1/contacts/{ana['id']}").status_code == 204
    got = feed.read()
    for c in (ana, alias):
        the(got, "contact.created", subject=c["id"], contact_id=c["id"], source="api", channel_kind=None)
    updated = the(got, "contact.updated", subject=ana["id"], contact_id=ana["id"])
    assert sorted(updated["data"]["changed"]) == ["language", "name"]
    the(got, "contact.merged", subject=ana["id"], contact_id=ana["id"], merged_contact_id=alias["id"], reason="api")
    erased = the(got, "contact.erased", subject=ana["id"], contact_id=ana["id"])
    assert erased["data"]["merged_contact_ids"] == [alias["id"]]
    private(feed.seen, "Ana", "600 111 222", "34600111222", "ana@example.com")


@covers("contact.created", "consent.changed")
def test_an_import_emits_one_event_per_contact_created_and_per_consent_recorded(client):
    inbox = make_inbox(client)
    known = _ok(inbox.api("POST", "/v1/contacts", json={"identities": [{"kind": "phone", "address": "+34612000003"}]}),
                201)
    feed = Feed(inbox)
    feed.read()
    csv = ("phone,name,consent_marketing\n+34612000001,Ana García,yes\n+34612000002,Luis Pérez,\n"
           "+34612000003,,no\n")
    doc = _ok(inbox.api("POST", "/v1/contacts/import?default_region=ES", data=csv.encode(),
                        headers={"Content-Type": "text/csv"}), 201)
    assert (doc["created"], doc["updated"]) == (2, 1)
    got = feed.read()
    created = find(got, "contact.created", source="import", channel_kind=None)
    assert len(created) == 2 and known["id"] not in {e["data"]["contact_id"] for e in created}
    assert all(e["subject_id"] == e["data"]["contact_id"] for e in created)
    new_ids = [e["data"]["contact_id"] for e in created]
    by_phone = {c["identities"][0]["address"]: c["id"] for c in
                (inbox.api("GET", f"/v1/contacts/{i}").json for i in new_ids)}
    common = dict(channel_kind="all", purpose="marketing", source="import")
    the(got, "consent.changed", subject=by_phone["+34612000001"], contact_id=by_phone["+34612000001"],
        action="granted", **common)
    the(got, "consent.changed", subject=known["id"], contact_id=known["id"], action="revoked", **common)
    assert not find(got, "consent.changed", contact_id=by_phone["+34612000002"])
    private(feed.seen, "612000001", "Ana García", "Luis")


# --- threads ---------------------------------------------------------------------------------------------------

@covers("thread.status_changed", "thread.assigned", "thread.unassigned", "thread.handed_off", "thread.handed_back",
        "thread.note_added", "thread.updated")
def test_a_threads_lifecycle_over_the_api(client):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    _wa(inbox, ch, _phone(), "hola")
    [thread] = inbox.threads()
    tid = thread["id"]
    team = _ok(inbox.api("POST", "/v1/teams", json={"name": f"t-{secrets.token_hex(3)}", "strategy": "round_robin"}),
               201)
    agent = _ok(inbox.api("POST", "/v1/agents", json={"external_id": f"crm-{secrets.token_hex(3)}", "name": "Agent",
                                                      "availability": "available", "capacity": 5}), 201)
    _ok(inbox.api("PUT", f"/v1/teams/{team['id']}/members/{agent['id']}"), 201)
    feed = Feed(inbox)
    feed.read()
    _ok(inbox.api("POST", f"/v1/threads/{tid}/handler", json={"handler": "human"}))
    _ok(inbox.api("POST", f"/v1/threads/{tid}/assign", json={"team_id": team["id"], "agent_id": agent["id"]}))
    note = _ok(inbox.api("POST", f"/v1/threads/{tid}/notes", json={"body": "cliente enfadado, llamar"}), 201)
    _ok(inbox.api("POST", f"/v1/threads/{tid}/tags", json={"add": ["urgente"]}))
    _ok(inbox.api("POST", f"/v1/threads/{tid}/status", json={"status": "pending"}))
    _ok(inbox.api("POST", f"/v1/threads/{tid}/assign", json={"team_id": None, "agent_id": None}))
    _ok(inbox.api("POST", f"/v1/threads/{tid}/handler", json={"handler": "bot"}))
    got = feed.read()
    on = dict(subject=tid, thread_id=tid)
    the(got, "thread.handed_off", channel_id=ch["id"], **on)
    the(got, "thread.assigned", channel_id=ch["id"], team_id=team["id"], agent_id=agent["id"], **on)
    the(got, "thread.note_added", note_id=note["id"], **on)
    assert the(got, "thread.updated", **on)["data"]["changed"] == ["tags"]
    moved = the(got, "thread.status_changed", to="pending", **on)
    assert moved["loaded"]["from_"] == "open" and moved["data"]["actor"]
    the(got, "thread.unassigned", channel_id=ch["id"], team_id=None, agent_id=None, previous_team_id=team["id"],
        previous_agent_id=agent["id"], **on)
    the(got, "thread.handed_back", channel_id=ch["id"], **on)
    private(feed.seen, "enfadado")


@covers("survey.answered")
def test_a_survey_answered_by_a_tap(client, sandbox):
    inbox, ch, thread, phone = surveys._wa_customer(client, sandbox)
    surveys._configure(inbox, "csat")
    asked = surveys._resolve(inbox, thread["id"])["survey"]
    surveys._sent(inbox, asked["message_id"])
    feed = Feed(inbox)
    feed.read()
    surveys._tap_whatsapp(inbox, ch, phone, 4)
    surveys._tap_whatsapp(inbox, ch, phone, 2)          # counted once: the second tap changes nothing
    got = feed.read()
    the(got, "survey.answered", subject=thread["id"], survey_id=asked["id"], thread_id=thread["id"],
        contact_id=thread["contact_id"], kind="csat", score=4)
    assert len(find(got, "survey.answered")) == 1


# --- templates and campaigns -----------------------------------------------------------------------------------

@covers("template.status_changed")
def test_meta_pausing_a_template_and_a_sync_finding_it_approved_again(client, sandbox):
    inbox, ch, _, made = _templates_at_meta(client, sandbox)
    _ok(inbox.api("POST", "/v1/templates/sync", json={"channel_id": ch["id"]}))
    feed = Feed(inbox)
    assert find(feed.read(), "template.status_changed") == []    # a first sync announces nothing
    template = inbox.api("GET", f"/v1/templates/order_delivery_update?channel_id={ch['id']}&language=en_US").json
    meta_id = made["order_delivery_update"]["id"]
    control(sandbox, f"/_sandbox/templates/{meta_id}/status", {"status": "PAUSED", "reason": "LOW_QUALITY"})
    control(sandbox, "/_sandbox/wait", {"timeout_s": 10})
    inbox.drain()
    which = dict(subject=template["id"], template_id=template["id"], channel_id=ch["id"],
                 name="order_delivery_update", language="en_US")
    the(feed.read(), "template.status_changed", status="PAUSED", previous_status="APPROVED", reason="LOW_QUALITY",
        **which)
    _ok(inbox.api("POST", "/v1/templates/sync", json={"channel_id": ch["id"]}))
    assert feed.read() == []                                      # nothing moved
    # Approved again: the sync finds out before Meta's webhook is applied, which then changes nothing.
    control(sandbox, f"/_sandbox/templates/{meta_id}/status", {"status": "APPROVED"})
    control(sandbox, "/_sandbox/wait", {"timeout_s": 10})
    _ok(inbox.api("POST", "/v1/templates/sync", json={"channel_id": ch["id"]}))
    inbox.drain()
    the(feed.read(), "template.status_changed", status="APPROVED", previous_status="PAUSED", **which)


@covers("campaign.status_changed", "message.sent")
def test_a_campaigns_states_and_the_messages_it_sent(client, sandbox):
    inbox, ch = campaigns._setup(client, sandbox)
    ana, _ = campaigns._contact(inbox)
    luis, _ = campaigns._contact(inbox)
    feed = Feed(inbox)
    campaign = campaigns._campaign(inbox, ch, [ana, luis])
    campaigns._act(inbox, campaign, "start")
    campaigns._run(inbox, campaigns._settled(inbox, campaign), what="the campaign to complete")
    got = feed.read()
    states = find(got, "campaign.status_changed", campaign_id=campaign["id"])
    assert [e["data"]["state"] for e in states] == ["running", "completed"]
    assert all(e["subject_id"] == campaign["id"] for e in states)
    sent = find(got, "message.sent", campaign_id=campaign["id"], kind="template", automated=False)
    assert sorted(e["data"]["contact_id"] for e in sent) == sorted([ana, luis])


# --- what did not happen emits nothing -------------------------------------------------------------------------

def test_events_of_a_change_that_rolled_back_never_appear(client):
    inbox = make_inbox(client)
    feed = Feed(inbox)
    ana = _ok(inbox.api("POST", "/v1/contacts", json={"identities": [{"kind": "phone", "address": "+34612000101"}]}),
              201)["id"]
    luis = _ok(inbox.api("POST", "/v1/contacts", json={"identities": [{"kind": "phone", "address": "+34612000102"}]}),
               201)["id"]
    feed.read()
    with pytest.raises(RuntimeError):
        with db.connection() as conn:
            consent.record(conn, account_id=inbox.account_id, contact_id=ana, channel_kind="all", purpose="marketing",
                           action="granted", source="api", actor="test")
            merges.merge(conn, account_id=inbox.account_id, survivor_id=ana, merged_id=luis, actor="test")
            contacts.create_contact(conn, account_id=inbox.account_id, identities=[("phone", "+34612000103")])
            raise RuntimeError("the request fails after its changes were made")
    # The same request failing at the API: a second contact with a phone that is taken is refused whole.
    r = inbox.api("POST", "/v1/contacts", json={"identities": [{"kind": "phone", "address": "+34612000101"}]})
    assert r.status_code == 409
    assert feed.read() == []
    with db.connection() as conn:
        consent.record(conn, account_id=inbox.account_id, contact_id=ana, channel_kind="all", purpose="marketing",
                       action="granted", source="api", actor="test")
    assert [e["type"] for e in feed.read()] == ["consent.changed"]


# --- the registry is covered -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TYPES))
def test_every_type_is_proven_by_a_test(name):
    assert name in COVERED, f"{name} is in gateway/event_types.py but no test here emits it (add one with @covers)"


def test_no_test_claims_a_type_the_registry_lacks():
    assert COVERED <= set(TYPES)
