"""Schemathesis against the live app: every operation of /openapi.json, called over HTTP with generated valid
and invalid requests, must never answer 5xx and must answer what the document says (status and schema).

The app runs on a real HTTP server in a thread, as one throwaway account with an admin key. Each operation
runs with generated valid and invalid requests, and again with the ids of records made here (a channel, a
contact, a thread, a message…) in its path, so the answers that carry data are checked too; operations whose
valid bodies generated data rarely hits also run one worked example that must succeed. Examples are few and
derandomised, so a run is repeatable and takes under a minute; failures are collected over every operation and
reported together. Nothing is left out: the account is a throwaway, and deletions run last.
"""
from __future__ import annotations

import os
import threading
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.webhooks.conftest import make_inbox

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Per operation and mode; SCHEMATHESIS_SCALE=10 explores ten times as much (minutes, not seconds).
SCALE = int(os.environ.get("SCHEMATHESIS_SCALE", "1"))
EXAMPLES = {GenerationMode.POSITIVE: 8 * SCALE, GenerationMode.NEGATIVE: 4 * SCALE}


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


@pytest.fixture(scope="module")
def live(app):
    from gateway import db
    db.close()   # a fresh pool: an earlier module may have cut every connection (test_outages)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _seed(client) -> tuple[str, dict]:
    """An account with one of each record, through the API; returns its key and the ids by parameter name."""
    inbox = make_inbox(client)

    def call(method, path, body=None, status=(200, 201, 202)):
        r = inbox.api(method, path, json=body)
        assert r.status_code in status, (method, path, r.status_code, r.json)
        return r.json

    sms = inbox.channel("twilio")
    # A WhatsApp channel whose Graph host refuses connections: template calls take their error paths
    # without reaching Meta.
    wa = inbox.channel("whatsapp", group_id="WABA-schemathesis", settings={"api_base_url": "http://127.0.0.1:9"})
    contact = call("POST", "/v1/contacts", {"name": "Ana", "identities": [{"kind": "phone",
                                                                          "address": "+34600555001"}]})
    other = call("POST", "/v1/contacts", {"name": "Bea", "identities": [{"kind": "phone", "address": "+34600555009"}]})
    sent = call("POST", "/v1/messages", {"channel_id": sms["id"], "contact_id": contact["id"], "type": "text",
                                         "text": {"body": "hola"}})
    team = call("POST", "/v1/teams", {"name": "support"})
    agent = call("POST", "/v1/agents", {"external_id": "crm-1", "name": "Lucía", "availability": "available"})
    call("PUT", f"/v1/teams/{team['id']}/members/{agent['id']}")
    rule = call("POST", "/v1/routing-rules", {"name": "sms", "team_id": team["id"],
                                              "conditions": {"channel_kind": "twilio"}})
    entry = call("POST", "/v1/knowledge-base", {"language": "en", "question": "When do you open?",
                                                "answer": "At nine."})
    automation = call("POST", "/v1/automations", {"name": "hello", "kind": "keyword", "definition": {
        "keywords": ["hello"], "actions": [{"type": "reply", "text": "Hi!"}]}})
    campaign = call("POST", "/v1/campaigns", {"name": "promo", "purpose": "utility", "channel_id": sms["id"],
                                              "message": {"text": "Hola {name}"},
                                              "audience": {"contact_ids": [contact["id"]]}})
    call("POST", f"/v1/threads/{sent['thread_id']}/notes", {"body": "call back"})
    imported = client.post("/v1/contacts/import", data=b"phone,name\n+34600555002,Bea\n",
                           headers={"Authorization": f"Bearer {inbox.key}",
                                    "Content-Type": "text/csv"}).json
    call("POST", "/v1/attribute-definitions", {"name": "tier", "type": "string", "filterable": True})
    endpoint = call("POST", "/v1/webhook-endpoints", {"url": "https://crm.example.com/hooks", "event_types": ["*"],
                                                      "enabled": False})
    ids = {"channel_id": wa["id"], "contact_id": contact["id"], "thread_id": sent["thread_id"],
           "message_id": sent["id"], "team_id": team["id"], "agent_id": agent["id"], "entry_id": entry["id"],
           "campaign_id": campaign["id"], "import_id": imported["import_id"], "endpoint_id": endpoint["id"],
           "name": "tier", "provider": "whatsapp"}
    rules = {"/v1/routing-rules/{rule_id}": rule["id"], "/v1/automations/{rule_id}": automation["id"]}
    return inbox.key, {"ids": ids, "rules": rules, "sms": sms["id"], "other": other["id"]}


def _worked(seeded: dict) -> dict:
    """A valid request for operations whose bodies generated data rarely gets right (they need ids of this
    account, or rules the schema cannot say): their success answers are checked too."""
    ids, sms = seeded["ids"], seeded["sms"]
    text = {"channel_id": sms, "contact_id": ids["contact_id"], "type": "text", "text": {"body": "¿algo más?"}}
    rule = {"name": "sms-2", "team_id": ids["team_id"], "conditions": {"channel_kind": "twilio"}}
    automation = {"name": "hello-2", "kind": "keyword", "definition": {
        "keywords": ["hi"], "actions": [{"type": "reply", "text": "Hello!"}]}}
    campaign = {"name": "promo-2", "purpose": "utility", "channel_id": sms, "message": {"text": "Hola"},
                "audience": {"contact_ids": [ids["contact_id"]]}}
    return {
        ("POST", "/v1/messages"): {"body": text},
        ("POST", "/v1/messages/batch"): {"body": {"messages": [text]}},
        ("POST", "/v1/contacts/{contact_id}/consents"): {"body": {
            "channel_kind": "all", "purpose": "marketing", "action": "granted",
            "proof": {"text": "Sí, quiero ofertas", "text_version": "v1"}}},
        ("POST", "/v1/contacts/{contact_id}/merge"): {"body": {"contact_id": seeded["other"]}},
        ("POST", "/v1/contacts/{contact_id}/unmerge"): {"body": {"contact_id": seeded["other"]}},
        ("POST", "/v1/contacts/import"): {"body": "phone,name\n+34600555003,Carla\n", "media_type": "text/csv"},
        ("POST", "/v1/threads/{thread_id}/assign"): {"body": {"team_id": ids["team_id"]}},
        ("POST", "/v1/routing-rules"): {"body": rule},
        ("PUT", "/v1/routing-rules/{rule_id}"): {"body": rule},
        ("POST", "/v1/automations"): {"body": automation},
        ("PUT", "/v1/automations/{rule_id}"): {"body": dict(automation, name="hello-3")},
        ("POST", "/v1/knowledge-base"): {"body": {"language": "en", "question": "Do you ship?", "answer": "Yes."}},
        ("POST", "/v1/knowledge-base/import"): {"body": "language,question,answer\nen,Gift cards?,Yes.\n",
                                               "media_type": "text/csv"},
        ("POST", "/v1/attribute-definitions"): {"body": {"name": "plan", "type": "string"}},
        ("POST", "/v1/campaigns"): {"body": campaign},
        ("POST", "/v1/campaigns/dry-run"): {"body": campaign},
        ("PUT", "/v1/surveys/config"): {"body": {"kind": "csat", "questions": {"en": "How did we do?"}}},
        ("POST", "/v1/webhook-endpoints"): {"body": {"url": "https://crm.example.com/h2",
                                                     "event_types": ["message.received"], "enabled": False}},
        ("GET", "/v1/reports/summary"): {"query": {"from": "2026-01-01", "to": "2026-01-07"}},
    }


def _known(path: str, names: list[str], seeded: dict) -> dict:
    out = {}
    for name in names:
        if name == "rule_id":
            value = next((v for prefix, v in seeded["rules"].items() if path.startswith(prefix)), None)
        else:
            value = seeded["ids"].get(name)
        if value is not None:
            out[name] = str(value)
    return out


def test_every_operation_answers_as_documented_and_never_5xx(client, live):
    key, seeded = _seed(client)
    doc = requests.get(f"{live}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(doc)
    headers = {"Authorization": f"Bearer {key}"}
    session = requests.Session()
    worked = _worked(seeded)
    failures: list[str] = []
    ran = 0
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    # Deletions last (erasing the contact takes its thread and messages): the other operations meet the
    # seeded records first.
    for operation in sorted(operations, key=lambda o: (o.method.upper() == "DELETE", o.path, o.method)):
        known = _known(operation.path, [p.name for p in operation.path_parameters], seeded)
        name = f"{operation.method.upper()} {operation.path}"
        # The calling key's id is not among the known ones: DELETE /v1/api-keys/{key_id} cannot revoke it.
        for fixed in [None] + ([known] if known else []):
            for mode, examples in EXAMPLES.items():
                ran += 1
                failure = _run(operation, mode, examples, live, headers, session, path_parameters=fixed)
                if failure:
                    failures.append(f"{name} [{mode.value}{', known ids' if fixed else ''}]: {failure}")
        example = worked.get((operation.method.upper(), operation.path))
        if example is not None:
            failure = _run(operation, GenerationMode.POSITIVE, 1, live, headers, session, expect_success=True,
                           path_parameters=known or None, **example)
            if failure:
                failures.append(f"{name} [worked example]: {failure}")
    elapsed = time.monotonic() - started
    assert ran > 200, ran
    assert not failures, f"{len(failures)} failing operation run(s) in {elapsed:.0f} s:\n\n" + "\n\n".join(failures)


def _run(operation, mode, examples, base_url, headers, session, expect_success=False, **fixed) -> str | None:
    """One operation under Hypothesis (``fixed``: path parameters, body or query it must use); the first failure
    as text (not shrunk: it costs time and the failing request is printed whole), else None."""
    strategy = operation.as_strategy(generation_mode=mode, **{k: v for k, v in fixed.items() if v is not None})

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case):
        response = case.call(base_url=base_url, headers=headers, session=session, timeout=30)
        case.validate_response(response, checks=CHECKS)
        assert not expect_success or response.status_code < 300, (response.status_code, response.text[:500])

    try:
        check()
    except Unsatisfiable:
        return None   # nothing to make invalid (no parameters, no body): the positive run covers it
    except (Exception, BaseExceptionGroup) as exc:   # a group of check failures, or the call's own error
        text = str(exc)
        return text if len(text) < 4000 else text[:4000] + " …"
    return None


# What schemathesis found, kept as plain regressions.

def test_a_nul_character_postgresql_cannot_store_is_a_400_problem_not_a_500(client):
    inbox = make_inbox(client)
    channel = inbox.channel("twilio")
    r = inbox.api("PATCH", f"/v1/channels/{channel['id']}", json={"settings": {"note": "a\u0000b"}})
    assert r.status_code == 400 and r.json["type"].endswith("/unstorable-value"), r.json
    r = inbox.api("GET", "/v1/contacts?tag=a%00b")
    assert r.status_code == 400 and r.json["type"].endswith("/unstorable-value"), r.json


def test_a_template_preview_with_a_channel_id_that_is_not_text_is_a_422(client):
    inbox = make_inbox(client)
    r = inbox.api("POST", "/v1/templates/welcome/preview", json={"channel_id": 5, "language": ["es"]})
    assert r.status_code == 422, r.json
    assert {e["pointer"] for e in r.json["errors"]} == {"/channel_id", "/language"}
