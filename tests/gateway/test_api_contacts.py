"""Contacts over REST, and the HTTP conventions: problems, 413/415/422, pagination."""


def test_create_get_and_list(tenant):
    r = tenant.post("/v1/contacts", {"name": "Ana", "language": "es",
                                     "identities": [{"kind": "phone", "address": "+34 600 000 001"}]})
    assert r.status_code == 201, r.json
    assert r.json["identities"] == [{"kind": "phone", "address": "+34600000001"}]
    got = tenant.get(f"/v1/contacts/{r.json['id']}")
    assert got.json["name"] == "Ana" and got.json["language"] == "es"
    assert any(c["id"] == r.json["id"] for c in tenant.get("/v1/contacts").json["data"])


def test_pagination_walks_every_contact_once(tenant):
    made = {tenant.post("/v1/contacts", {"name": f"c{i}"}).json["id"] for i in range(7)}
    seen, cursor = [], None
    while True:
        r = tenant.get("/v1/contacts", query_string={"limit": 3, **({"before": cursor} if cursor else {})})
        seen += [c["id"] for c in r.json["data"]]
        cursor = r.json["next"]
        if not cursor:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))


def test_unknown_fields_and_wrong_types_name_each_field(tenant):
    r = tenant.post("/v1/contacts", {"name": 5, "colour": "red", "identities": [{"kind": "fax", "address": "1"}]})
    assert r.status_code == 422
    pointers = {e["pointer"] for e in r.json["errors"]}
    assert {"/name", "/colour", "/identities/0/kind"} <= pointers
    assert tenant.get("/v1/contacts").json["data"] == []


def test_invalid_phone_is_422_and_changes_nothing(tenant):
    r = tenant.post("/v1/contacts", {"identities": [{"kind": "phone", "address": "12"}]})
    assert r.status_code == 422
    assert r.json["errors"][0]["pointer"] == "/identities/0/address"
    assert "+34600000001" in r.json["errors"][0]["detail"]  # the message shows the expected format
    assert tenant.get("/v1/contacts").json["data"] == []


def test_duplicate_identity_is_409(tenant):
    body = {"identities": [{"kind": "phone", "address": "+447700900123"}]}
    assert tenant.post("/v1/contacts", body).status_code == 201
    assert tenant.post("/v1/contacts", body).status_code == 409


def test_not_json_malformed_json_and_too_large(tenant, app):
    r = tenant.client.post("/v1/contacts", data="name=x", headers={**tenant.headers(),
                           "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and r.mimetype == "application/problem+json"
    r = tenant.client.post("/v1/contacts", data="{nope", headers={**tenant.headers(),
                           "Content-Type": "application/json"})
    assert r.status_code == 400
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    r = tenant.client.post("/v1/contacts", data=big, headers={**tenant.headers(), "Content-Type": "application/json"})
    assert r.status_code == 413 and "GATEWAY_MAX_REQUEST_BYTES" in r.json["detail"]


def test_bad_ids_limits_and_cursors(tenant):
    assert tenant.get("/v1/contacts/not-a-uuid").status_code == 404
    assert tenant.get("/v1/contacts", query_string={"limit": 0}).status_code == 400
    assert tenant.get("/v1/contacts", query_string={"before": "garbage"}).status_code == 400


def test_unknown_route_and_method_are_problems(client, tenant):
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    r = tenant.client.put("/v1/account", headers=tenant.headers())
    assert r.status_code == 405 and r.mimetype == "application/problem+json"


def test_request_id_is_echoed_or_minted(client):
    r = client.get("/healthz", headers={"X-Request-Id": "abc-123-def-456"})
    assert r.headers["X-Request-Id"] == "abc-123-def-456"
    r = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert r.headers["X-Request-Id"] != "bad id with spaces" and len(r.headers["X-Request-Id"]) == 32


def test_erasure_removes_contact(tenant, conn):
    c = tenant.post("/v1/contacts", {"name": "Bo", "identities": [{"kind": "phone", "address": "+34600123456"}]}).json
    assert tenant.delete(f"/v1/contacts/{c['id']}").status_code == 204
    assert tenant.get(f"/v1/contacts/{c['id']}").status_code == 404
    assert conn.execute("SELECT count(*) AS n FROM contact_identities WHERE account_id = %s",
                        (tenant.id,)).fetchone()["n"] == 0
    audit = conn.execute("SELECT action FROM audit_log WHERE account_id = %s AND target_id = %s",
                         (tenant.id, c["id"])).fetchall()
    assert {"contact.created", "contact.erased"} <= {a["action"] for a in audit}
