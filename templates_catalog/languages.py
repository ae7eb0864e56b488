"""Which approved translation of a template to send to a contact (protocols.md B1, B6).

Meta matches ``language.code`` exactly: ``en`` is not ``en_US``, and a code the template has no approved
translation for fails with 132001. So the gateway picks one of the codes Meta actually has, in this order:

1. the contact's language as given (``es_MX``);
2. its base language (``es``);
3. any regional variant of that base (``es_ES``, ``es_AR``: the first in sorted order, so the choice
   does not depend on the order the codes were listed in);
4. the account's default language, by the same three steps;
5. nothing (``None``): the caller decides whether to skip the contact or refuse the send.

Codes are compared case-insensitively with ``-`` and ``_`` treated alike, so a contact stored as
``es-mx`` finds Meta's ``es_MX``; the code returned is always spelled as Meta listed it.
"""
from __future__ import annotations

from collections.abc import Iterable

__all__ = ["pick_language"]


def _key(code: str) -> str:
    return code.strip().replace("-", "_").lower()


def _base(key: str) -> str:
    return key.split("_", 1)[0]


def _pick(by_key: dict[str, str], wanted: str | None) -> str | None:
    if not isinstance(wanted, str) or not wanted.strip():
        return None
    key = _key(wanted)
    if key in by_key:                                   # 1. exactly what the contact reads
        return by_key[key]
    base = _base(key)
    if base in by_key:                                  # 2. es_MX -> es
        return by_key[base]
    variants = sorted(k for k in by_key if _base(k) == base)
    if variants:                                        # 3. es_MX -> es_AR, es_ES, ... (sorted)
        return by_key[variants[0]]
    return None


def pick_language(available: Iterable[str], wanted: str | None, default: str | None) -> str | None:
    """The approved code to send: the contact's language, its base, a variant of the base, then the
    account default (by the same steps); None when none of them is available."""
    by_key: dict[str, str] = {}
    for code in available:
        if isinstance(code, str) and code.strip():
            by_key.setdefault(_key(code), code)
    if not by_key:
        return None
    return _pick(by_key, wanted) or _pick(by_key, default)
