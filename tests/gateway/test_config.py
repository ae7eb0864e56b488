"""Configuration: every missing or malformed setting is one clear line, and the process exits non-zero."""
import os
import subprocess
import sys

import pytest

from gateway.config import ConfigError, load_settings


def _env(**over):
    base = {"DATABASE_URL": "postgresql://u@h/db", "REDIS_URL": "redis://h:6379/0",
            "GATEWAY_MASTER_KEYS": "mk1:" + "A" * 43 + "=", "GATEWAY_BLIND_INDEX_KEY": "B" * 43 + "="}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_valid_environment_loads():
    s = load_settings(_env())
    assert s.database_url.startswith("postgresql") and s.max_request_bytes == 4_194_304


def test_each_problem_is_its_own_line_with_an_example():
    with pytest.raises(ConfigError) as exc:
        load_settings(_env(DATABASE_URL=None, REDIS_URL="http://nope", GATEWAY_MAX_REQUEST_BYTES="lots",
                           GATEWAY_LOG_LEVEL="loud"))
    lines = exc.value.problems
    assert len(lines) == 4
    assert any(l.startswith("DATABASE_URL is not set; e.g. DATABASE_URL=postgresql://") for l in lines)
    assert any(l.startswith("REDIS_URL must be a") and "e.g. REDIS_URL=" in l for l in lines)
    assert any(l.startswith("GATEWAY_MAX_REQUEST_BYTES") for l in lines)
    assert any(l.startswith("GATEWAY_LOG_LEVEL") for l in lines)


def test_missing_and_malformed_keys():
    with pytest.raises(ConfigError) as exc:
        load_settings(_env(GATEWAY_MASTER_KEYS=None))
    assert "GATEWAY_KEYRING_FILE" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_settings(_env(GATEWAY_MASTER_KEYS="mk1:c2hvcnQ="))
    assert "GATEWAY_MASTER_KEYS" in str(exc.value) and "32 bytes" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_settings(_env(GATEWAY_BLIND_INDEX_KEY=None))
    assert "GATEWAY_BLIND_INDEX_KEY" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_settings(_env(GATEWAY_MASTER_KEYS=None, GATEWAY_KEYRING_FILE="/nonexistent/k.json"))
    assert "gateway keys init" in str(exc.value)


def test_cli_exits_nonzero_with_one_line_per_setting():
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "GATEWAY_KEYRING_FILE", "GATEWAY_MASTER_KEYS")}
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "migrate"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert len(lines) == 3 and all(l.startswith("config error: ") for l in lines)
    assert "Traceback" not in out.stderr


def test_gunicorn_entry_point_exits_cleanly_on_bad_config():
    env = dict(os.environ, REDIS_URL="ftp://x")
    out = subprocess.run([sys.executable, "-c", "import gateway.wsgi"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "config error: REDIS_URL" in out.stderr and "Traceback" not in out.stderr


def test_help_lists_the_admin_commands():
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "--help"], capture_output=True, text=True, timeout=60)
    for command in ("up", "migrate", "accounts", "api-keys", "keys", "worker", "sweeper"):
        assert f"  {command} " in out.stdout
    sub = subprocess.run([sys.executable, "-m", "gateway.cli", "api-keys", "--help"], capture_output=True,
                         text=True, timeout=60).stdout
    assert all(f"  {c} " in sub for c in ("create", "list", "revoke"))
    assert "rotate" in subprocess.run([sys.executable, "-m", "gateway.cli", "keys", "--help"],
                                      capture_output=True, text=True, timeout=60).stdout
