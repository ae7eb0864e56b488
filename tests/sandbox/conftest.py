"""Fixtures for the sandbox provider: the sandbox on a free port, and a tiny stand-in gateway that records
every webhook the sandbox sends (real HTTP both ways)."""
from __future__ import annotations

import pytest
import requests

from gateway.sandbox import start
from sandbox_helpers import Receiver


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def make_sandbox():
    running = []

    def make(**config):
        config.setdefault("seed", 7)
        r = start("127.0.0.1", 0, **config)
        running.append(r)
        return r

    yield make
    for r in running:
        r.stop()


@pytest.fixture
def sandbox(make_sandbox):
    return make_sandbox()


@pytest.fixture
def http():
    with requests.Session() as s:
        yield s
