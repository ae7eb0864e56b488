"""API keys: bearer auth, scopes, revocation, and the wall between accounts."""


def _problem(resp, status):
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.json
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("http")
    return body


def test_missing_key_is_401_problem(client):
    body = _problem(client.get("/v1/account"), 401)
    assert "Bearer" in body["detail"]


def test_malformed_and_unknown_keys_are_401(client, tenant):
    assert client.get("/v1/account", headers={"Authorization": "Basic abc"}).status_code == 401
    _problem(tenant.get("/v1/account", key="gwk_000000000000_nope"), 401)
    _problem(tenant.get("/v1/account", key=tenant.key[:-2] + "xx"), 401)
    _problem(tenant.get("/v1/account", key="not-even-close"), 401)


def test_valid_key_identifies_account(tenant):
    r = tenant.get("/v1/account")
    assert r.status_code == 200
    assert r.json["id"] == str(tenant.id)
    assert r.json["api_key"]["scopes"] == ["admin"]
    assert r.headers["X-Request-Id"]


def test_scope_missing_is_403(tenant):
    reader = tenant.key_with("contacts:read")
    body = _problem(tenant.post("/v1/contacts", {"name": "x"}, key=reader), 403)
    assert "contacts:write" in body["detail"]
    _problem(tenant.get("/v1/api-keys", key=reader), 403)
    assert tenant.get("/v1/contacts", key=reader).status_code == 200


def test_revoked_key_stops_working(tenant):
    writer = tenant.key_with("contacts:write")
    keys = tenant.get("/v1/api-keys").json["data"]
    kid = next(k["id"] for k in keys if k["name"] == "scoped")
    assert tenant.post("/v1/contacts", {"name": "a"}, key=writer).status_code == 201
    assert tenant.delete(f"/v1/api-keys/{kid}").status_code == 200
    _problem(tenant.post("/v1/contacts", {"name": "b"}, key=writer), 401)


def test_keys_are_stored_hashed_and_shown_once(tenant, conn):
    r = tenant.post("/v1/api-keys", {"name": "crm", "scopes": ["messages:read"]})
    secret = r.json["key"]
    listed = tenant.get("/v1/api-keys").json["data"]
    assert all("key" not in k for k in listed)
    rows = conn.execute("SELECT prefix, secret_hash::text AS h FROM api_keys WHERE account_id = %s",
                        (tenant.id,)).fetchall()
    assert all(secret.split("_")[-1] not in row["h"] for row in rows)
    assert any(secret.startswith(f"gwk_{row['prefix']}_") for row in rows)


def test_last_used_is_recorded(tenant, conn):
    tenant.get("/v1/account")
    row = conn.execute("SELECT last_used_at FROM api_keys WHERE account_id = %s", (tenant.id,)).fetchone()
    assert row["last_used_at"] is not None


def test_unknown_scope_is_422(tenant):
    body = _problem(tenant.post("/v1/api-keys", {"name": "x", "scopes": ["root"]}), 422)
    assert body["errors"][0]["pointer"].startswith("/scopes")


def test_account_b_cannot_see_or_touch_account_a(make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    contact = a.post("/v1/contacts", {"name": "Alice", "identities": [{"kind": "phone", "address": "+34600111222"}]}).json
    assert b.get(f"/v1/contacts/{contact['id']}").status_code == 404
    assert b.delete(f"/v1/contacts/{contact['id']}").status_code == 404
    assert all(c["id"] != contact["id"] for c in b.get("/v1/contacts").json["data"])
    a_key_id = a.get("/v1/api-keys").json["data"][0]["id"]
    assert b.delete(f"/v1/api-keys/{a_key_id}").status_code == 404
    assert a.get("/v1/account").status_code == 200
    # The same phone number in B is a different contact, not a conflict that would leak A's data.
    r = b.post("/v1/contacts", {"identities": [{"kind": "phone", "address": "+34600111222"}]})
    assert r.status_code == 201 and r.json["id"] != contact["id"]
    assert a.get(f"/v1/contacts/{contact['id']}").json["name"] == "Alice"


def test_data_layer_is_scoped_by_account(make_tenant, conn):
    from gateway import contacts
    a, b = make_tenant("a"), make_tenant("b")
    made = contacts.create_contact(conn, account_id=a.id, name="Zed", identities=[("phone", "+34600999888")])
    assert contacts.get_contact(conn, account_id=b.id, contact_id=made["id"]) is None
    assert contacts.find_by_identity(conn, account_id=b.id, kind="phone", address="+34600999888") is None
    assert contacts.find_by_identity(conn, account_id=a.id, kind="phone", address="+34600999888")["id"] == made["id"]
    assert contacts.erase_contact(conn, account_id=b.id, contact_id=made["id"], actor="t") is False
