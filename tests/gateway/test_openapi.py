"""The OpenAPI document: valid OpenAPI 3.1, complete for every route of the app, every event type and every
problem type, and the reference page that shows it."""
from __future__ import annotations

import re

import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31

from gateway import event_types
from gateway.api import openapi, openapi_paths, openapi_problems


@pytest.fixture(scope="module")
def doc(app):
    return openapi.document(app)


def test_the_document_is_valid_openapi_3_1(client, doc):
    served = client.get("/openapi.json")
    assert served.status_code == 200 and served.mimetype == "application/json"
    assert served.json == doc
    assert doc["openapi"] == "3.1.0"
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}"
              for e in jsonschema_rs.validator_for(OPENAPI_31).iter_errors(doc)]
    assert not errors, "\n".join(errors[:20])
    # The 3.1 meta-schema leaves schemas unchecked: each must itself be valid JSON Schema 2020-12.
    bad = [name for name, schema in doc["components"]["schemas"].items() if not jsonschema_rs.meta.is_valid(schema)]
    assert not bad, bad


def test_every_route_of_the_app_is_documented(app, doc):
    """Adding a route without an entry in gateway/api/openapi_paths.OPERATIONS fails here."""
    missing = [f"{method} {rule}" for method, rule, _ in openapi.routes(app)
               if method.lower() not in doc["paths"].get(openapi.openapi_path(rule), {})]
    assert not missing, ("routes missing from the OpenAPI document; add them to "
                         "gateway/api/openapi_paths.OPERATIONS:\n  " + "\n  ".join(missing))


def test_no_entry_documents_a_route_that_does_not_exist(app):
    routes = {(method, rule) for method, rule, _ in openapi.routes(app)}
    stale = [f"{m} {r}" for (m, r), entry in openapi_paths.OPERATIONS.items()
             if (m, r) not in routes and not entry.handler]
    assert not stale, f"entries in openapi_paths.OPERATIONS for routes the app does not have: {stale}"


def test_the_webhook_receivers_post_answered_before_flask_is_documented(doc):
    op = doc["paths"]["/webhooks/{provider}"]["post"]
    assert {"bad-signature", "unknown-channel", "malformed-body", "payload-too-large"} <= set(op["x-problem-types"])
    assert op["security"] == []


def test_path_parameters_are_typed(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            declared = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "path"}
            named = {part[1:-1] for part in path.split("/") if part.startswith("{")}
            assert set(declared) == named, (method, path)
            for name, param in declared.items():
                if name.endswith("_id"):
                    assert param["schema"] == {"type": "string", "format": "uuid"}, (method, path, name)


def test_each_operation_states_its_scope_from_the_views_decorator(app, doc):
    scoped = 0
    for method, rule, endpoint in openapi.routes(app):
        view = app.view_functions[endpoint]
        op = doc["paths"][openapi.openapi_path(rule)][method.lower()]
        if hasattr(view, "required_scope"):
            scope = view.required_scope
            assert op["x-scope"] == (scope or "any") and op["security"] == [{"bearer": [scope] if scope else []}]
            assert "401" in op["responses"] and ("403" in op["responses"]) == bool(scope)
            scoped += 1
        else:
            assert op["security"] == []
    assert scoped > 80
    assert doc["paths"]["/v1/contacts/{contact_id}"]["delete"]["x-scope"] == "contacts:erase"
    assert doc["paths"]["/v1/messages"]["post"]["x-scope"] == "messages:send"
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_errors_are_problem_documents_with_their_types(doc):
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    listed = {p["slug"] for p in doc["x-problem-types"]}
    # Slugs from the source: the send gate's rules, the HTTP layer's, views', the receiver's, f-string ones.
    assert {"opted_out", "outside_customer_service_window", "validation-failed", "malformed-json", "missing-scope",
            "contact-erased", "bad-signature", "team-not-found", "routing-rule-not-found", "internal-error",
            "method-not-allowed"} <= listed
    assert all(" " not in slug for slug in listed), "a problem type's slug ends a URI: no spaces"
    send = doc["paths"]["/v1/messages"]["post"]
    assert {"opted_out", "text_too_long", "validation-failed", "unsupported-media-type",
            "idempotency-key-reused"} <= set(send["x-problem-types"])
    assert send["responses"]["409"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"}
    erase = doc["paths"]["/v1/contacts/{contact_id}"]["delete"]
    assert {"204", "401", "403", "404", "410", "default"} <= set(erase["responses"])
    teams = doc["paths"]["/v1/teams/{team_id}"]["get"]
    assert "team-not-found" in teams["x-problem-types"]


def test_problem_types_are_read_from_the_code():
    found = openapi_problems.catalog()
    assert [p.status for p in found["media-not-available"]] == [409, 425]
    assert found["upload-expired"][0].status == 410


def test_every_event_type_is_a_webhook_with_its_payload(doc):
    assert set(doc["webhooks"]) == set(event_types.TYPES)
    for name, kind in event_types.TYPES.items():
        op = doc["webhooks"][name]["post"]
        body = op["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"]["type"]["const"] == name
        assert {"id", "type", "timestamp", "account_id", "data"} <= set(body["required"])
        assert ("content" in body["properties"]) == name.startswith("message.")
        data = doc["components"]["schemas"][body["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
        assert set(data["properties"]) == {f.data_key or n for n, f in kind.schema().fields.items()}
        assert {p["name"] for p in op["parameters"]} == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        assert op["x-scope"] == kind.scope


def test_the_reference_page_shows_every_operation_and_event(client, doc):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "<script" not in html and "http://" not in html.replace("http://127", "")
    for path in doc["paths"]:
        assert path.replace("&", "&amp;") in html, path
    for name in event_types.TYPES:
        assert f"id='event-{name.replace('.', '-')}'" in html, name
    assert "scope <code>contacts:write</code>" in html
    ids = re.findall(r"id='([^']+)'", html)
    assert len(ids) == len(set(ids)), "two elements share an id"
    assert "routing-rule-not-found" in html
