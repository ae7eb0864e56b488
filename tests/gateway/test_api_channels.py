"""Channels over the API and the CLI: credentials validated per provider, stored encrypted, never shown."""
import json
import secrets
import subprocess
import sys


def test_create_list_get_patch_without_ever_showing_secrets(tenant):
    ext = f"pn-{secrets.token_hex(5)}"
    body = {"kind": "whatsapp", "name": "Soporte", "external_id": ext, "group_id": "WABA-77",
            "credentials": {"app_secret": "s3cr3t-app", "access_token": "EAAG-xyz", "verify_token": "vt-1"}}
    r = tenant.post("/v1/channels", body)
    assert r.status_code == 201, r.json
    ch = r.json
    assert ch["credentials_set"] == ["access_token", "app_secret", "verify_token"]
    assert ch["webhook_path"] == "/webhooks/whatsapp" and ch["group_id"] == "WABA-77"
    assert "s3cr3t-app" not in json.dumps(tenant.get("/v1/channels").json)
    assert tenant.get(f"/v1/channels/{ch['id']}").json["external_id"] == ext
    r = tenant.client.patch(f"/v1/channels/{ch['id']}", json={"status": "disabled", "name": "Old"},
                            headers=tenant.headers())
    assert r.status_code == 200 and r.json["status"] == "disabled" and r.json["name"] == "Old"
    dup = tenant.post("/v1/channels", body)
    assert dup.status_code == 409


def test_missing_and_unknown_credentials_are_422_naming_them(tenant):
    r = tenant.post("/v1/channels", {"kind": "twilio", "name": "SMS", "external_id": "+14155550000",
                                     "credentials": {"auth_token": "x", "colour": "blue"}})
    assert r.status_code == 422
    assert "account_sid" in r.json["detail"] and "colour" in r.json["detail"]
    r = tenant.post("/v1/channels", {"kind": "fax", "name": "x", "external_id": "1"})
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] == "/kind"


def test_channels_need_admin(tenant):
    key = tenant.key_with("messages:read")
    assert tenant.get("/v1/channels", key=key).status_code == 403


def test_cli_adds_and_lists_channels(tenant, tmp_path):
    import os
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"app_secret": "from-file", "page_access_token": "EAAG-p"}))
    ext = f"page-{secrets.token_hex(4)}"
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "channels", "add", "--account", str(tenant.id),
                          "--kind", "messenger", "--name", "Page", "--external-id", ext,
                          "--credentials-file", str(creds), "--credential", "verify_token=vt-cli"],
                         capture_output=True, text=True, env=os.environ, timeout=60)
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert made["credentials_set"] == ["app_secret", "page_access_token", "verify_token"]
    assert "from-file" not in out.stdout
    listed = subprocess.run([sys.executable, "-m", "gateway.cli", "channels", "list", "--account", str(tenant.id)],
                            capture_output=True, text=True, env=os.environ, timeout=60)
    assert ext in listed.stdout
    bad = subprocess.run([sys.executable, "-m", "gateway.cli", "channels", "add", "--account", str(tenant.id),
                          "--kind", "messenger", "--name", "Page", "--external-id", "p2"],
                         capture_output=True, text=True, env=os.environ, timeout=60)
    assert bad.returncode != 0 and "missing credential" in bad.stderr
