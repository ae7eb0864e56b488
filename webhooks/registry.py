"""Provider name -> provider object. Adding a channel adds one folder and one line here."""
from __future__ import annotations

from gateway.providers import Provider

PROVIDERS: dict[str, Provider] = {}


def register(provider: Provider) -> Provider:
    PROVIDERS[provider.name] = provider
    return provider


def get(name: str) -> Provider | None:
    return PROVIDERS.get(name)
