"""Migrations are idempotent; the admin CLI manages accounts and keys end to end."""
import json
import os
import subprocess
import sys

from gateway.migrate import available, migrate

TABLES = {"accounts", "api_keys", "channels", "contacts", "contact_identities", "consent_events", "threads",
          "messages", "message_events", "inbound_events", "data_keys", "audit_log", "schema_migrations"}


def _cli(*args, check=True):
    out = subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=os.environ, capture_output=True,
                         text=True, timeout=120)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_migrate_twice_applies_nothing_new(conn):
    assert migrate(os.environ["DATABASE_URL"], log=lambda m: None) == []
    assert "0 migration(s) applied" in _cli("migrate").stdout
    names = {r["tablename"] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert TABLES <= names
    versions = [r["version"] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [v for v, _, _ in available()]


def test_every_tenant_table_leads_its_primary_key_with_account_id(conn):
    rows = conn.execute("""
        SELECT c.relname AS t, a.attname AS first_col
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.indisprimary AND n.nspname = 'public'""").fetchall()
    firsts = {r["t"]: r["first_col"] for r in rows}
    for table in TABLES - {"accounts", "audit_log", "schema_migrations"}:
        assert firsts[table] == "account_id", table


def test_cli_accounts_and_keys_round_trip(client):
    account = json.loads(_cli("accounts", "create", "Cli Co", "--timezone", "Europe/Madrid").stdout)
    key = _cli("api-keys", "create", "--account", account["id"], "--name", "crm",
               "--scope", "contacts:read", "--scope", "messages:read").stdout.strip()
    assert key.startswith("gwk_")
    r = client.get("/v1/account", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200 and r.json["name"] == "Cli Co"
    listing = _cli("api-keys", "list", "--account", account["id"]).stdout
    assert "crm" in listing and key.split("_", 2)[2] not in listing   # the whole secret (it may hold "_")
    key_id = listing.split()[0]
    _cli("api-keys", "revoke", "--account", account["id"], key_id)
    assert client.get("/v1/account", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_cli_errors_name_the_fix():
    out = _cli("api-keys", "create", "--account", "nope", "--name", "x", "--scope", "admin", check=False)
    assert out.returncode != 0 and "UUID" in out.stderr
    out = _cli("accounts", "create", "X", "--timezone", "Mars/Base", check=False)
    assert out.returncode != 0 and "IANA" in out.stderr
    acc = json.loads(_cli("accounts", "create", "Y").stdout)
    out = _cli("api-keys", "create", "--account", acc["id"], "--name", "x", "--scope", "root", check=False)
    assert out.returncode != 0 and "messages:send" in out.stderr
