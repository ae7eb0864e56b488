"""Statuses (StatusUpdate / Notice) and the non-message webhook fields (Notice / Unsupported). Pure."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway.providers import Notice, StatusUpdate, Unsupported
from webhooks.whatsapp import notices


def status(wa, name: str) -> StatusUpdate:
    return wa.only(wa.parse(wa.load(name)), StatusUpdate)


@pytest.mark.parametrize("word", ["sent", "delivered", "read", "played"])
def test_status_words_with_conversation_and_pricing(wa, word):
    st = status(wa, f"pywa_message_status__{word}.json")
    assert st.status == word and st.external_id == "1122334455667"
    assert st.provider_message_id == "wamid.xyzxyz"
    assert (st.recipient, st.recipient_kind) == ("+972987654321", "phone")
    assert st.error_code is None and st.error_reason is None
    assert st.detail["status"] == word
    assert st.detail["conversation"]["id"] == "7270432eae37498234f4444b35ffc5"
    assert st.detail["pricing"] == {"billable": True, "pricing_model": "CBP", "category": "service"}
    assert st.detail["recipient_user_id"] == "US.13491208655302741918"
    assert st.occurred_at == datetime.fromtimestamp(int(st.timestamp), tz=timezone.utc)


def test_failed_status_with_code_and_reason(wa):
    st = status(wa, "pywa_message_status__failed.json")
    assert st.status == "failed" and st.timestamp == "1689380458"
    assert st.occurred_at == datetime(2023, 7, 15, 0, 20, 58, tzinfo=timezone.utc)
    assert st.error_code == "130472"
    assert st.error_reason == ("User's number is part of an experiment: Failed to send message because "
                               "this user's phone number is part of an experiment")
    assert st.detail["errors"][0]["code"] == 130472
    assert "conversation" not in st.detail and "pricing" not in st.detail   # both are optional since PMP


def test_failed_status_without_errors_and_with_title_only(wa):
    body = wa.load("pywa_message_status__failed.json")
    item = wa.value(body)["statuses"][0]
    item["errors"] = [{"code": 131026, "title": "Message undeliverable"}]
    st = wa.only(wa.parse(body), StatusUpdate)
    assert (st.error_code, st.error_reason) == ("131026", "Message undeliverable")
    del item["errors"]
    st = wa.only(wa.parse(body), StatusUpdate)
    assert st.status == "failed" and st.error_code is None


def test_status_tracker_is_callback_data(wa):
    st = status(wa, "pywa_message_status__with_tracker.json")
    assert st.status == "sent" and st.callback_data == "some data"
    assert st.detail["conversation"]["expiration_timestamp"] == "1698339900"


def test_group_status_names_the_participant(wa):
    st = status(wa, "pywa_message_status__group.json")
    assert st.status == "read" and st.provider_message_id == "<WHATSAPP_MESSAGE_ID>"
    # the participant's phone is a doc placeholder in the sample, so the BSUID is the address
    assert (st.recipient, st.recipient_kind) == ("US.123456", "bsuid")
    assert st.detail["recipient_type"] == "group" and st.detail["group_id"] == "fowefinoewcnw"
    assert st.detail["recipient_username"] == "<USERNAME>"


def test_group_status_with_a_participant_phone(wa):
    body = wa.load("pywa_message_status__group.json")
    wa.value(body)["statuses"][0]["recipient_participant_id"] = "34600000001"
    st = wa.only(wa.parse(body), StatusUpdate)
    assert (st.recipient, st.recipient_kind) == ("+34600000001", "phone")


def test_bsuid_only_recipient(wa):
    body = wa.load("pywa_message_status__read.json")
    item = wa.value(body)["statuses"][0]
    del item["recipient_id"]
    item["recipient_user_id"] = "US.13491208655302741918"
    st = wa.only(wa.parse(body), StatusUpdate)
    # the contacts card matches the BSUID and also carries the phone: the phone stays the address
    assert (st.recipient, st.recipient_kind) == ("+972987654321", "phone")
    del wa.value(body)["contacts"][0]["wa_id"]
    st = wa.only(wa.parse(body), StatusUpdate)
    assert (st.recipient, st.recipient_kind) == ("US.13491208655302741918", "bsuid")


@pytest.mark.parametrize("word", ["deleted", "warning", "some_future_status"])
def test_unranked_status_words_become_notices(wa, word):
    body = wa.load("pywa_message_status__read.json")
    wa.value(body)["statuses"][0]["status"] = word
    notice = wa.only(wa.parse(body), Notice)
    assert notice.topic == f"status:{word}" and notice.external_id == "1122334455667"
    assert notice.detail["id"] == "wamid.xyzxyz" and notice.detail["status"] == word
    assert notice.subject == ("phone", "+972987654321")
    assert notice.occurred_at == datetime.fromtimestamp(1689380458, tz=timezone.utc)


def test_status_without_word_or_id_is_unsupported(wa):
    body = wa.load("pywa_message_status__read.json")
    item = wa.value(body)["statuses"][0]
    del item["id"]
    assert wa.parse(body) == [Unsupported("status:no-id")]
    del item["status"]
    assert wa.parse(body) == [Unsupported("status:no-status")]


# --- other webhook fields -> Notice ------------------------------------------------------------

@pytest.mark.parametrize("name, topic", [
    ("pywa_template_status_update__approved.json", "template_status"),
    ("pywa_template_status_update__rejected.json", "template_status"),
    ("pywa_template_quality_update__yellow.json", "template_quality"),
    ("pywa_template_category_update__marketing.json", "template_category"),
    ("pywa_template_components_update__element.json", "template_components"),
    ("pywa_account_update__account_restriction.json", "account_update"),
    ("pywa_account_update__partner_added.json", "account_update"),
])
def test_account_level_fields_become_notices_on_the_waba(wa, name, topic):
    body = wa.load(name)
    notice = wa.only(wa.parse(body), Notice)
    assert notice.topic == topic
    assert notice.external_id == body["entry"][0]["id"]          # no metadata: the WABA id
    assert notice.detail == wa.value(body)                        # the change's value, whole
    assert notice.subject is None
    assert notice.occurred_at == datetime.fromtimestamp(body["entry"][0]["time"], tz=timezone.utc)


def test_template_notice_details(wa):
    rejected = wa.only(wa.parse(wa.load("pywa_template_status_update__rejected.json")), Notice)
    assert rejected.detail["event"] == "REJECTED" and rejected.detail["reason"] == "INVALID_FORMAT"
    assert rejected.detail["rejection_info"]["recommendation"].startswith("Separate parameters")
    quality = wa.only(wa.parse(wa.load("pywa_template_quality_update__yellow.json")), Notice)
    assert (quality.detail["previous_quality_score"], quality.detail["new_quality_score"]) == ("GREEN", "YELLOW")


@pytest.mark.parametrize("field, topic", sorted(notices.TOPICS.items()))
def test_every_known_field_has_a_topic(wa, field, topic):
    body = wa.load("pywa_message__text.json")
    change = body["entry"][0]["changes"][0]
    change["field"] = field
    change["value"] = {"messaging_product": "whatsapp",
                       "metadata": {"display_phone_number": "972123456789", "phone_number_id": "1122334455667"},
                       "something": {"new": True}}
    notice = wa.only(wa.parse(body), Notice)
    assert notice.topic == topic and notice.external_id == "1122334455667"
    assert notice.detail["something"] == {"new": True}


def test_topics_named_by_the_interface():
    assert notices.TOPICS["phone_number_quality_update"] == "phone_quality"
    assert notices.TOPICS["phone_number_name_update"] == "phone_name"
    assert notices.TOPICS["business_capability_update"] == "business_capability"
    assert {"security", "flows", "calls", "account_alerts", "account_review_update", "history",
            "smb_app_state_sync"} <= set(notices.TOPICS.values())


def test_call_notices_name_the_customer_and_the_time(wa):
    connect = wa.only(wa.parse(wa.load("pywa_call_connect__user_initiated.json")), Notice)
    assert connect.topic == "calls" and connect.external_id == "743897493242"
    assert connect.subject == ("phone", "+972987654321")
    assert connect.detail["calls"][0]["event"] == "connect"
    assert connect.occurred_at == datetime.fromtimestamp(1752583107, tz=timezone.utc)
    ringing = wa.only(wa.parse(wa.load("pywa_call_status__call_status.json")), Notice)
    assert ringing.detail["statuses"][0]["status"] == "RINGING"     # a call status, not a message status
    assert ringing.occurred_at == datetime.fromtimestamp(1671644824, tz=timezone.utc)


def test_call_terminate_errors_are_flagged_and_kept(wa):
    events = wa.parse(wa.load("pywa_call_terminate__call_terminate.json"))
    notice = wa.only(events, Notice)
    assert notice.detail["calls"][0]["duration"] == 120 and notice.detail["errors"][0]["code"] == 12455
    assert events[-1] == Unsupported("errors")


def test_user_preferences_one_notice_per_item(wa):
    body = wa.load("pywa_user_marketing_preferences__resume.json")
    prefs = wa.value(body)["user_preferences"]
    prefs.append({"wa_id": "34600000001", "category": "marketing_messages", "value": "stop",
                  "timestamp": 1731705800})
    prefs.append("garbage")
    events = wa.parse(body)
    assert [type(e) for e in events] == [Notice, Notice, Unsupported]
    first, second, bad = events
    assert first.topic == "user_preferences" and first.external_id == "106540352242922"
    assert first.subject == ("phone", "+16505551234")
    assert first.detail["value"] == "resume" and first.detail["category"] == "marketing_messages"
    assert first.occurred_at == datetime.fromtimestamp(1731705721, tz=timezone.utc)
    assert second.subject == ("phone", "+34600000001") and second.detail["value"] == "stop"
    assert bad == Unsupported("user_preferences:malformed")
    signup = wa.only(wa.parse(wa.load("pywa_user_marketing_preferences__signup.json")), Notice)
    assert signup.detail["signup_id"] == "13176843987434774"


def test_unknown_field_is_flagged_for_review(wa):
    body = wa.load("pywa_message__text.json")
    body["entry"][0]["changes"][0]["field"] = "some_future_field"
    assert wa.parse(body) == [Unsupported("field:some_future_field")]


def test_value_level_errors_are_flagged_and_the_message_kept(wa):
    events = wa.parse(wa.load("pywa_message__interactive_message_with_err.json"))
    assert events[-1] == Unsupported("errors")
    assert events[0].kind == "interactive" and events[0].text == "[unsupported message]"


def test_errors_alone_and_empty_changes(wa):
    body = wa.load("pywa_message__text.json")
    value = wa.value(body)
    del value["messages"]
    assert wa.parse(body) == [Unsupported("messages:empty")]
    value["errors"] = [{"code": 131000}]
    assert wa.parse(body) == [Unsupported("errors")]
    prefs = wa.load("pywa_user_marketing_preferences__resume.json")
    wa.value(prefs)["user_preferences"] = []
    assert wa.parse(prefs) == [Unsupported("user_preferences:empty")]
