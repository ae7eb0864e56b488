"""Identifiers shaped like the providers' own: wamids, Messenger mids, Twilio SIDs, Graph ids.

They only need to look right and never repeat within a run; nothing parses them.
"""
from __future__ import annotations

import base64
import itertools
import secrets
import string

_counter = itertools.count(1)
# 16 digits: a random run prefix, then a counter (unique for 10 million ids per run).
_GRAPH_BASE = 10**15 + secrets.randbelow(9 * 10**7) * 10**7
_B64URL = string.ascii_letters + string.digits + "-_"


def digits(address: str) -> str:
    """The digits of a phone number as WhatsApp reports it in wa_id / recipient_id ("+34 600-000 001" -> "34600000001")."""
    return "".join(ch for ch in address if ch.isdigit())


def wamid(to_digits: str = "") -> str:
    """A Cloud API message id: "wamid." + base64 of a small binary frame holding the recipient and a random key,
    like ``wamid.HBgLMzQ2MDAwMDAwMDEVAgARGBI5QTNDQTVCM0M0Q0U2QjRGNTQA``."""
    who = (to_digits or "0")[:20].encode("ascii")
    key = secrets.token_hex(9).upper().encode("ascii")
    frame = b"\x1c\x18" + bytes([len(who)]) + who + b"\x15\x02\x00\x11\x18\x12" + key + b"\x00"
    return "wamid." + base64.b64encode(frame).decode("ascii")


def mid() -> str:
    """A Messenger / Instagram message id."""
    return "mid.$cAA" + "".join(secrets.choice(_B64URL) for _ in range(28))


def twilio_sid(prefix: str = "SM") -> str:
    """A Twilio SID: two letters and 32 lowercase hex digits (SM…, MM…)."""
    return prefix + secrets.token_hex(16)


def graph_id() -> str:
    """A numeric Graph object id (media ids, template ids): 15-16 digits, unique within the run."""
    return str(_GRAPH_BASE + next(_counter))


def fbtrace_id() -> str:
    return "".join(secrets.choice(_B64URL) for _ in range(11))
