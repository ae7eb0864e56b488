"""Instagram DMs provider: the Meta messaging platform of ``webhooks.messenger`` under ``object=instagram``.

Routing: ``entry[].id`` is the Instagram professional account id = the channel's external id.
Customers are Instagram-scoped ids (IGSID). Comments, mentions and other ``changes[]``
become ``Notice("instagram:<field>")``. See README.md for setup.
"""
from __future__ import annotations

from webhooks.messenger import MessengerProvider
from webhooks.messenger.capabilities import INSTAGRAM_CAPABILITIES


class InstagramProvider(MessengerProvider):
    name = "instagram"
    label = "Instagram"
    object_name = "instagram"
    identity_kind = "igsid"
    capabilities = INSTAGRAM_CAPABILITIES


PROVIDER = InstagramProvider()
