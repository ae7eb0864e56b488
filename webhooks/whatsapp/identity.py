"""Who a message is from (or a status is for): a phone number, a business-scoped user id (BSUID), or both.

Since 2025 a user may hide their number; they then arrive with a BSUID (``US.1349…``)
in ``from_user_id`` / ``contacts[].user_id`` and no ``from``. The phone number stays
the primary address whenever it is known, so existing threads keep matching; the
BSUID rides along as an alias so the core can link the two.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from webhooks.whatsapp.values import phone_digits, text


@dataclass(frozen=True)
class Party:
    address: str                     # "+<digits>" or the BSUID
    kind: str                        # "phone" or "bsuid"
    name: str | None = None          # profile name the user chose (unverified)
    aliases: tuple[tuple[str, str], ...] = ()
    ids: dict = field(default_factory=dict)   # user_id, parent_user_id, identity_key_hash, username


def find_card(contacts: list[dict], digits: str | None, bsuid: str | None) -> dict | None:
    for card in contacts:
        if digits and phone_digits(card.get("wa_id")) == digits:
            return card
        if bsuid and text(card.get("user_id")) == bsuid:
            return card
    return None


def identify(phone: Any, bsuid: Any, parent: Any, contacts: list[dict]) -> Party | None:
    """The party named by an item's own fields, completed from its contacts[] card; None if nobody is named."""
    digits = phone_digits(phone)
    user_id = text(bsuid)
    parent_id = text(parent)
    card = find_card(contacts, digits, user_id)
    if card is None and digits is None and user_id is None and len(contacts) == 1:
        # Meta sends one card per sender; when the item names nobody readable the card is the only identity.
        card = contacts[0]
    card = card or {}
    profile = card.get("profile") if isinstance(card.get("profile"), dict) else {}
    digits = digits or phone_digits(card.get("wa_id"))
    user_id = user_id or text(card.get("user_id"))
    parent_id = parent_id or text(card.get("parent_user_id"))

    ids = {key: value for key, value in (
        ("user_id", user_id), ("parent_user_id", parent_id),
        ("identity_key_hash", text(card.get("identity_key_hash"))), ("username", text(profile.get("username"))),
    ) if value}
    name = text(profile.get("name"))
    if digits:
        aliases = (("bsuid", user_id),) if user_id else ()
        return Party("+" + digits, "phone", name, aliases, ids)
    if user_id:
        return Party(user_id, "bsuid", name, (), ids)
    return None
