"""Level-1 assistant: answer a customer's message from the account's knowledge base, or hand off.

``reply`` is what the automation engine calls for an inbound text. It retrieves the best entries
offline (gateway.assistant.retrieve), answers only when the best one's confidence reaches the account's
threshold, and, if an LLM endpoint is configured, lets it draft the answer from those entries, falling
back to the entry's own answer when the endpoint fails or is slow.
"""
from __future__ import annotations

from dataclasses import dataclass

from gateway.assistant import llm as llm_mod
from gateway.assistant import retrieve

# Chosen on the evaluation set (tests/data/assistant, bench/assistant.py): the lowest confidence at which
# accuracy among answered questions stays at or above 90 % while out-of-scope questions are handed off.
DEFAULT_THRESHOLD = 0.35
# Entries given to the LLM: the best one and close runners-up, so it can combine them.
LLM_ENTRIES = 3
_RUNNER_UP_SHARE = 0.6


@dataclass(frozen=True)
class Answer:
    text: str
    entry_id: object        # uuid.UUID of the best entry (the one the LLM was grounded on first)
    score: float            # confidence in [0, 1]
    source: str             # 'kb' (the entry's answer) or 'llm' (drafted from the entries)


@dataclass(frozen=True)
class Decision:
    """What ``decide`` found, answer or not: the API's /ask shows best_score on a hand-off."""
    answer: Answer | None
    best: retrieve.Hit | None
    hits: list
    threshold: float


def _endpoint(llm):
    if llm is False:
        return None
    if llm is None:
        from gateway import runtime
        return llm_mod.Endpoint.from_settings(runtime.settings())
    return llm


def decide(conn, *, account_id, text: str, language: str | None = None, llm=None) -> Decision:
    hits, configured = retrieve.lookup(conn, account_id=account_id, text=text or "", language=language,
                                       limit=LLM_ENTRIES)
    threshold = DEFAULT_THRESHOLD if configured is None else configured
    best = hits[0] if hits else None
    if best is None or best.score < threshold:
        return Decision(None, best, hits, threshold)
    answer = Answer(text=best.answer, entry_id=best.entry_id, score=round(best.score, 4), source="kb")
    endpoint = _endpoint(llm)
    if endpoint is not None:
        grounding = [h for h in hits if h.score >= best.score * _RUNNER_UP_SHARE]
        try:
            drafted = llm_mod.draft(endpoint, question=text, entries=grounding)
        except llm_mod.Handoff:
            return Decision(None, best, hits, threshold)
        if drafted:
            answer = Answer(text=drafted, entry_id=best.entry_id, score=answer.score, source="llm")
    return Decision(answer, best, hits, threshold)


def reply(conn, *, account_id, text: str, language: str | None = None, llm=None) -> Answer | None:
    """The answer to ``text`` from the account's knowledge base, or None: hand off to a person.

    ``language`` is a hint (the contact's language); every language of the knowledge base is tried.
    ``llm``: None uses the configured endpoint (GATEWAY_ASSISTANT_LLM_*) if any, False stays offline,
    an ``llm.Endpoint`` uses that one. Runs in the caller's transaction and writes nothing."""
    return decide(conn, account_id=account_id, text=text, language=language, llm=llm).answer


__all__ = ["Answer", "Decision", "DEFAULT_THRESHOLD", "decide", "reply"]
