"""Helpers shared by the WhatsApp provider tests (pure: no database, no Redis)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from webhooks.whatsapp import PROVIDER

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "whatsapp"


class Kit:
    """Load a shared fixture, turn it into Meta's wire bytes, parse it, pick events."""
    fixtures = FIXTURES

    def load(self, name: str) -> dict:
        if not (FIXTURES / name).is_file():
            pytest.skip(f"shared WhatsApp fixture {name} not found in {FIXTURES}")
        return json.loads((FIXTURES / name).read_text(encoding="utf-8"))

    @staticmethod
    def raw(body: dict) -> bytes:
        # Meta's wire form: compact, non-ASCII escaped as \uXXXX.
        return json.dumps(body, separators=(",", ":")).encode("ascii")

    def parse(self, body: dict | bytes) -> list:
        return PROVIDER.parse(body if isinstance(body, bytes) else self.raw(body), {})

    @staticmethod
    def value(body: dict, entry: int = 0, change: int = 0) -> dict:
        return body["entry"][entry]["changes"][change]["value"]

    @staticmethod
    def only(events: list, cls: type):
        found = [e for e in events if isinstance(e, cls)]
        assert len(found) == 1, events
        return found[0]


@pytest.fixture
def wa() -> Kit:
    return Kit()
