"""Provider name -> provider object. Adding a channel adds one folder and one line here."""
from __future__ import annotations

from gateway.providers import Provider

PROVIDERS: dict[str, Provider] = {}


def register(provider: Provider) -> Provider:
    PROVIDERS[provider.name] = provider
    return provider


def get(name: str) -> Provider | None:
    return PROVIDERS.get(name)


def _install_builtin() -> None:
    from webhooks import instagram, messenger, twilio, whatsapp
    for module in (whatsapp, messenger, instagram, twilio):
        register(module.PROVIDER)


_install_builtin()
