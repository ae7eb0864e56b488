"""Text matching shared by rules and flows: keyword triggers, the hand-off words, localised texts.

Matching ignores case, accents and surrounding punctuation (as the consent keywords do); regexes run on a
bounded input because they run on untrusted text in the inbound worker.
"""
from __future__ import annotations

import re
import unicodedata

from gateway import keywords

MATCH_MODES = ("whole", "contains", "regex")
MAX_TEXT = 4096          # WhatsApp's text body limit
MAX_PATTERN = 500
# Regexes run on untrusted text in the inbound worker: a bounded input bounds the cost of a slow pattern.
MAX_MATCHED_TEXT = 2000

# "I want a person", per language. Matched as whole words or phrases anywhere in the message.
DEFAULT_HANDOFF: dict[str, list[str]] = {
    "en": ["agent", "human", "person", "a real person", "operator", "representative", "talk to someone"],
    "es": ["agente", "humano", "persona", "operador", "asesor", "hablar con alguien"],
    "pt": ["atendente", "humano", "pessoa", "agente", "operador"],
    "fr": ["agent", "humain", "conseiller", "une personne", "operateur"],
    "de": ["mitarbeiter", "mensch", "berater", "person"],
    "it": ["operatore", "umano", "persona", "agente"],
}


ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def valid_team(team) -> bool:
    return isinstance(team, str) and bool(team.strip()) and len(team) <= 64


def fold(text: str) -> str:
    """Accent- and case-free, spaces collapsed, surrounding punctuation trimmed (as the consent keywords)."""
    return keywords.normalise(text)


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def trigger_problems(d: dict, p: str, bad) -> None:
    """Problems of a keyword trigger (match, keywords or pattern, language) under pointer ``p``."""
    mode = d.get("match", "whole")
    if mode not in MATCH_MODES:
        bad(f"{p}/match", f"one of {', '.join(MATCH_MODES)}")
    elif mode == "regex":
        pattern = d.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            bad(f"{p}/pattern", "required with match 'regex': a regular expression")
        elif len(pattern) > MAX_PATTERN:
            bad(f"{p}/pattern", f"at most {MAX_PATTERN} characters")
        else:
            try:
                re.compile(strip_accents(pattern), re.IGNORECASE)
            except re.error as exc:
                bad(f"{p}/pattern", f"not a valid regular expression: {exc}")
        if "keywords" in d:
            bad(f"{p}/keywords", "give either keywords (whole, contains) or pattern (regex)")
    else:
        words = d.get("keywords")
        if not isinstance(words, list) or not words:
            bad(f"{p}/keywords", f"required with match '{mode}': a non-empty list of words or phrases")
        else:
            for i, w in enumerate(words):
                if not isinstance(w, str) or not fold(w):
                    bad(f"{p}/keywords/{i}", "a non-empty word or phrase")
        if "pattern" in d:
            bad(f"{p}/pattern", "a pattern needs match 'regex'")
    lang = d.get("language")
    if lang is not None and (not isinstance(lang, str) or not re.fullmatch(r"[a-zA-Z]{2,3}([_-][a-zA-Z0-9]+)?",
                                                                             lang)):
        bad(f"{p}/language", "a language code such as es, en, pt_BR")


def _phrase(words: list[str]) -> re.Pattern | None:
    folded = sorted({fold(w) for w in words if fold(w)}, key=len, reverse=True)
    if not folded:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in folded) + r")(?!\w)")


def keyword_matches(definition: dict, text: str | None) -> bool:
    if not text:
        return False
    mode = definition.get("match", "whole")
    if mode == "regex":
        try:
            pattern = re.compile(strip_accents(definition["pattern"]), re.IGNORECASE)
        except (re.error, KeyError):
            return False
        return pattern.search(strip_accents(text[:MAX_MATCHED_TEXT])) is not None
    folded = fold(text)
    if mode == "whole":
        return folded in {fold(w) for w in definition.get("keywords") or []}
    found = _phrase(definition.get("keywords") or [])
    return bool(found and found.search(folded[:MAX_MATCHED_TEXT]))


def handoff_matches(definition: dict, text: str | None) -> bool:
    if not text or len(text) > MAX_MATCHED_TEXT:
        return False
    table = dict(DEFAULT_HANDOFF)
    table.update(definition.get("keywords") or {})
    found = _phrase([w for words in table.values() for w in words])
    return bool(found and found.search(fold(text)))


def language_fits(wanted: str | None, contact_language: str | None) -> bool:
    if not wanted or not contact_language:
        return True
    base = lambda code: code.replace("-", "_").split("_")[0].lower()  # noqa: E731
    return base(wanted) == base(contact_language)


def reply_text(text, languages: list[str | None]) -> str | None:
    """A reply's text: a string, or the first of the preferred languages (then their base) it has."""
    if isinstance(text, str):
        return text
    if not isinstance(text, dict) or not text:
        return None
    for lang in languages:
        if not lang:
            continue
        for candidate in (lang, lang.replace("-", "_").split("_")[0].lower()):
            if text.get(candidate):
                return text[candidate]
    return next(iter(text.values()))
