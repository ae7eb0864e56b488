"""Message ids the facade hands out: the gateway's message id, dressed as a WhatsApp message id.

The Cloud API answers a send with the message's ``wamid`` at once; the gateway queues first and learns the
provider's id later. So the facade answers with an id of its own, derived from the gateway's message id and
read back without a table: the statuses forwarded in Meta's format carry it, and a later ``context``, reaction
or mark-as-read naming it finds the message. Inbound messages keep the provider's own wamid.
"""
from __future__ import annotations

import base64
import binascii
import uuid

PREFIX = "wamid.GW"   # no real wamid starts so: theirs are base64 of a protobuf that begins with HBg


def mint(message_id) -> str:
    raw = (message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(str(message_id))).bytes
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse(wamid: str) -> uuid.UUID | None:
    """The gateway message id inside a facade id, or None for any other string (a provider's wamid)."""
    if not isinstance(wamid, str) or not wamid.startswith(PREFIX) or len(wamid) != len(PREFIX) + 22:
        return None
    try:
        raw = base64.urlsafe_b64decode(wamid[len(PREFIX):] + "==")
    except (binascii.Error, ValueError):
        return None
    return uuid.UUID(bytes=raw) if len(raw) == 16 else None
