"""Test backends: real PostgreSQL and Redis, never mocks.

With DATABASE_URL / REDIS_URL set, the suite creates a fresh database on that
PostgreSQL server (dropped at the end) and uses (and flushes) that Redis
database. Unset, it starts embedded PostgreSQL and Valkey for the run.
Every test makes its own account, so tenant walls also isolate the tests.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis as redis_lib

from gateway.crypto import Keyring

_TMP = Path(tempfile.mkdtemp(prefix="gw-test-"))
_SERVERS = None
_CREATED_DB: tuple[str, str] | None = None


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def pytest_configure(config):
    global _SERVERS, _CREATED_DB
    if os.environ.get("DATABASE_URL"):
        admin_url = os.environ["DATABASE_URL"]
        name = f"gw_test_{secrets.token_hex(4)}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        _CREATED_DB = (admin_url, name)
        os.environ["DATABASE_URL"] = _with_database(admin_url, name)
        os.environ["GATEWAY_TEST_BACKEND"] = "external"
    else:
        from gateway.embedded import EmbeddedServers
        _SERVERS = EmbeddedServers(_TMP / "data")
        os.environ["DATABASE_URL"] = _SERVERS.start_postgres("gateway_test")
        os.environ["GATEWAY_TEST_BACKEND"] = "embedded"
    if not os.environ.get("REDIS_URL"):
        if _SERVERS is None:
            from gateway.embedded import EmbeddedServers
            _SERVERS = EmbeddedServers(_TMP / "data")
        os.environ["REDIS_URL"] = _SERVERS.start_valkey()
    redis_lib.Redis.from_url(os.environ["REDIS_URL"]).flushdb()

    keyring_path = _TMP / "keyring.json"
    Keyring.generate().save(keyring_path)
    os.environ["GATEWAY_KEYRING_FILE"] = str(keyring_path)
    os.environ.pop("GATEWAY_MASTER_KEYS", None)
    os.environ.setdefault("GATEWAY_LOG_LEVEL", "WARNING")
    import logging
    logging.getLogger("werkzeug").setLevel(logging.WARNING)   # test HTTP servers' access lines

    from gateway.migrate import migrate
    migrate(os.environ["DATABASE_URL"], log=lambda m: None)
    from gateway import runtime
    runtime.init()


def pytest_unconfigure(config):
    from gateway import db
    db.close()
    if _CREATED_DB is not None:
        admin_url, name = _CREATED_DB
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if _SERVERS is not None:
        _SERVERS.stop()
    shutil.rmtree(_TMP, ignore_errors=True)


def pytest_report_header(config):
    return f"backends: {os.environ.get('GATEWAY_TEST_BACKEND')} PostgreSQL, Redis at {os.environ.get('REDIS_URL')}"


@pytest.fixture(scope="session")
def app():
    from gateway.app import create_app
    application = create_app()
    application.testing = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def conn():
    from gateway import db
    with db.connection() as c:
        yield c


class Tenant:
    """An account with an admin key, plus helpers to call the API as it."""

    def __init__(self, client, account_id, key):
        self.client = client
        self.id = account_id
        self.key = key

    def headers(self, key=None):
        return {"Authorization": f"Bearer {key or self.key}"}

    def get(self, path, key=None, **kw):
        return self.client.get(path, headers=self.headers(key), **kw)

    def post(self, path, json=None, key=None, **kw):
        return self.client.post(path, json=json, headers=self.headers(key), **kw)

    def delete(self, path, key=None, **kw):
        return self.client.delete(path, headers=self.headers(key), **kw)

    def key_with(self, *scopes):
        r = self.post("/v1/api-keys", {"name": "scoped", "scopes": list(scopes)})
        assert r.status_code == 201, r.json
        return r.json["key"]


@pytest.fixture
def make_tenant(client):
    from gateway import accounts, db

    def make(name="acme"):
        with db.connection() as c:
            account = accounts.create_account(c, name=f"{name}-{secrets.token_hex(3)}", actor="test")
            _, key = accounts.create_api_key(c, account_id=account["id"], name="admin", scopes=["admin"],
                                             actor="test")
        return Tenant(client, account["id"], key)
    return make


@pytest.fixture
def tenant(make_tenant):
    return make_tenant()


@pytest.fixture
def redis():
    from gateway import runtime
    return runtime.redis_client()
