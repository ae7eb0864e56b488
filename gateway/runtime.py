"""Per-process wiring: settings, keyring, Redis client and the database pool.

Web processes, RQ workers, the sweeper and the CLI all call ``init()`` once;
jobs and domain code then reach shared resources through the accessors here
instead of a Flask app context, so they run the same in every process.
"""
from __future__ import annotations

import os

import redis

from gateway import db
from gateway.config import Settings, load_settings
from gateway.crypto import Keyring

_settings: Settings | None = None
_keyring: Keyring | None = None
_redis: redis.Redis | None = None
_redis_pid: int | None = None


def init(settings: Settings | None = None) -> Settings:
    global _settings, _keyring, _redis
    settings = settings or load_settings()
    _settings = settings
    _keyring = Keyring.from_settings(settings)
    _redis = None
    db.configure(settings.database_url, max_size=settings.pool_max_size)
    return settings


def settings() -> Settings:
    if _settings is None:
        init()
    assert _settings is not None
    return _settings


def keyring() -> Keyring:
    if _keyring is None:
        init()
    assert _keyring is not None
    return _keyring


def redis_client() -> redis.Redis:
    """A Redis client for this process with short timeouts, so an outage is a quick 503."""
    global _redis, _redis_pid
    if _redis is None or _redis_pid != os.getpid():
        _redis = redis.Redis.from_url(settings().redis_url, socket_timeout=3,
                                      socket_connect_timeout=2, health_check_interval=15)
        _redis_pid = os.getpid()
    return _redis
