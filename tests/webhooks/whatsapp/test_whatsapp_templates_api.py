"""The message_templates adapter (list, create, edit, delete) against the sandbox provider over real HTTP."""
from __future__ import annotations

import socket

import pytest
import requests

from gateway.sandbox import start
from webhooks.whatsapp import PROVIDER
from webhooks.whatsapp.templates import TemplateApiError

TOKEN = "EAAG-templates-token-1234"
WABA = "WABA_TPL"


def definition(name="order_update", language="en_US", text="Hi {{1}}, order {{2}} shipped", category="UTILITY"):
    return {"name": name, "language": language, "category": category,
            "components": [{"type": "BODY", "text": text, "example": {"body_text": [["Ana", "42"]]}}]}


@pytest.fixture
def sandbox():
    running = start("127.0.0.1", 0, seed=7, template_review_ms=0)
    yield running
    running.stop()


@pytest.fixture
def channel(sandbox):
    return {"group_id": WABA, "settings": {"api_base_url": sandbox.url}}


CREDENTIALS = {"access_token": TOKEN}


def by_key(channel):
    return {(t["name"], t["language"]): t for t in PROVIDER.list_templates(channel, CREDENTIALS)}


def settle(sandbox):
    assert sandbox.sandbox.dispatcher.wait_idle(5)


def test_delete_by_name_removes_every_language(channel):
    for language in ("en_US", "es"):
        PROVIDER.create_template(channel, CREDENTIALS, definition(language=language))
    PROVIDER.create_template(channel, CREDENTIALS, definition(name="welcome"))
    assert PROVIDER.delete_template(channel, CREDENTIALS, "order_update") == {"success": True}
    assert set(by_key(channel)) == {("welcome", "en_US")}


def test_delete_by_meta_id_removes_one_language(channel):
    english = PROVIDER.create_template(channel, CREDENTIALS, definition())["id"]
    spanish = PROVIDER.create_template(channel, CREDENTIALS, definition(language="es"))["id"]
    assert PROVIDER.delete_template(channel, CREDENTIALS, "order_update", meta_id=english) == {"success": True}
    assert [t["id"] for t in by_key(channel).values()] == [spanish]
    with pytest.raises(TemplateApiError) as exc:
        PROVIDER.delete_template(channel, CREDENTIALS, "order_update", meta_id=english)
    assert exc.value.code == "100"


def test_delete_unknown_name_raises_meta_code_and_reason(channel):
    with pytest.raises(TemplateApiError) as exc:
        PROVIDER.delete_template(channel, CREDENTIALS, "never_created")
    assert exc.value.code == "100"
    assert "Meta answered 400" in str(exc.value) and "never_created" in str(exc.value)


def test_edit_round_trip_back_to_pending_then_approved(sandbox, channel):
    created = PROVIDER.create_template(channel, CREDENTIALS, definition())
    sandbox.sandbox.faults.update(WABA, {"template_status": "PENDING"})
    changed = definition(text="Hello {{1}}, order {{2}} is on its way")
    assert PROVIDER.edit_template(channel, CREDENTIALS, created["id"], changed) == {"success": True}
    settle(sandbox)
    now = by_key(channel)[("order_update", "en_US")]
    assert now["status"] == "PENDING" and now["components"] == changed["components"]

    sandbox.sandbox.faults.update(WABA, {"template_status": None})     # back to auto-approval
    sandbox.sandbox.store.update_template(created["id"], lambda t: t.update(status="REJECTED"))
    assert PROVIDER.edit_template(channel, CREDENTIALS, created["id"], definition(category="MARKETING")) == {
        "success": True}
    settle(sandbox)
    now = by_key(channel)[("order_update", "en_US")]
    assert (now["status"], now["category"]) == ("APPROVED", "MARKETING")


def test_edit_refusals_carry_meta_code_and_user_message(sandbox, channel):
    created = PROVIDER.create_template(channel, CREDENTIALS, definition())
    with pytest.raises(TemplateApiError) as exc:
        PROVIDER.edit_template(channel, CREDENTIALS, created["id"], definition(category="MARKETING"))
    assert exc.value.code == "100" and "category of an approved template" in str(exc.value)
    PROVIDER.edit_template(channel, CREDENTIALS, created["id"], definition(text="v2 {{1}} {{2}}"))
    settle(sandbox)
    with pytest.raises(TemplateApiError) as exc:
        PROVIDER.edit_template(channel, CREDENTIALS, created["id"], definition(text="v3 {{1}} {{2}}"))
    assert exc.value.code == "100" and "once in 24 hours" in str(exc.value)
    with pytest.raises(TemplateApiError) as exc:
        PROVIDER.edit_template(channel, CREDENTIALS, "999999999999999", definition())
    assert exc.value.code == "100"


def test_bad_token_never_leaks(sandbox, channel):
    created = PROVIDER.create_template(channel, CREDENTIALS, definition())
    sandbox.sandbox.faults.update(WABA, {"access_token": "a-different-token"})
    for call in (lambda: PROVIDER.delete_template(channel, CREDENTIALS, "order_update"),
                 lambda: PROVIDER.edit_template(channel, CREDENTIALS, created["id"], definition())):
        with pytest.raises(TemplateApiError) as exc:
            call()
        assert exc.value.code == "190" and "401" in str(exc.value) and TOKEN not in str(exc.value)
    sandbox.sandbox.faults.update(WABA, {"access_token": None})
    assert ("order_update", "en_US") in by_key(channel)


def test_missing_configuration_is_refused_before_any_request(channel):
    with pytest.raises(TemplateApiError) as exc:
        PROVIDER.delete_template(channel, {}, "order_update")
    assert exc.value.code == "config"
    with pytest.raises(TemplateApiError) as exc:
        PROVIDER.delete_template({"settings": channel["settings"]}, CREDENTIALS, "order_update")
    assert exc.value.code == "config" and "group_id" in str(exc.value)
    for meta_id in ("", "abc", None):
        with pytest.raises(TemplateApiError) as exc:
            PROVIDER.edit_template(channel, CREDENTIALS, meta_id, definition())
        assert exc.value.code == "config"
    with pytest.raises(TemplateApiError) as exc:
        PROVIDER.edit_template(channel, CREDENTIALS, "123", {"name": "x", "language": "en_US"})
    assert exc.value.code == "config"


def test_network_errors(channel):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]          # nothing listens here once closed
    dead = {**channel, "settings": {"api_base_url": f"http://127.0.0.1:{port}"}}
    for call in (lambda: PROVIDER.delete_template(dead, CREDENTIALS, "order_update"),
                 lambda: PROVIDER.edit_template(dead, CREDENTIALS, "123", definition())):
        with pytest.raises(TemplateApiError) as exc:
            call()
        assert exc.value.code == "network" and TOKEN not in str(exc.value)


def test_edit_sends_only_components_and_category(sandbox, channel):
    """The sandbox refuses name/language in an edit body, so a successful edit proves they were left out."""
    created = PROVIDER.create_template(channel, CREDENTIALS, definition())
    full = {**definition(text="v2 {{1}} {{2}}"), "parameter_format": "POSITIONAL", "allow_category_change": True}
    assert PROVIDER.edit_template(channel, CREDENTIALS, created["id"], full) == {"success": True}
    raw = requests.post(f"{sandbox.url}/v24.0/{created['id']}", json={"name": "order_update"},
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert raw.status_code == 400 and "name" in raw.json()["error"]["error_data"]["details"]
