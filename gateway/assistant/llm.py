"""Optional drafting of the answer by an OpenAI-compatible chat-completions endpoint, grounded on the
retrieved entries. Any failure (timeout, connection, HTTP error, malformed reply) returns None and the
caller keeps the offline answer: the LLM may improve a reply, never block or break one.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import requests

log = logging.getLogger(__name__)

# The model says this, alone, when the entries do not answer the question.
HANDOFF_TOKEN = "HANDOFF"

_SYSTEM = (
    "You are the first-line assistant of a business, answering a customer in a chat. Answer ONLY from the "
    "knowledge-base entries given below; never invent prices, dates, policies or links. Reply in the "
    "customer's language, briefly (at most three sentences), in plain text. If the entries do not answer "
    f"the question, reply with exactly {HANDOFF_TOKEN}.")


@dataclass(frozen=True)
class Endpoint:
    url: str                      # base URL; "/chat/completions" is appended, as OpenAI clients do
    model: str
    key: str | None = None
    timeout_s: float = 8.0

    @classmethod
    def from_settings(cls, settings) -> "Endpoint | None":
        if not settings.assistant_llm_url or not settings.assistant_llm_model:
            return None
        return cls(url=settings.assistant_llm_url, model=settings.assistant_llm_model,
                   key=settings.assistant_llm_key, timeout_s=settings.assistant_llm_timeout_s)


class Handoff(Exception):
    """The model read the entries and said they do not answer the question."""


_local = threading.local()


def _session() -> requests.Session:
    # Keep-alive per thread: requests.Session is not documented as thread-safe.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def messages_for(question: str, entries: list) -> list[dict]:
    grounding = "\n\n".join(f"Entry {i} (id {h.entry_id}, language {h.language})\nQ: {h.question}\nA: {h.answer}"
                            for i, h in enumerate(entries, 1))
    return [{"role": "system", "content": f"{_SYSTEM}\n\nKnowledge-base entries:\n\n{grounding}"},
            {"role": "user", "content": question}]


def draft(endpoint: Endpoint, *, question: str, entries: list) -> str | None:
    """The model's answer, None on any failure; raises Handoff when the model declines."""
    headers = {"Content-Type": "application/json"}
    if endpoint.key:
        headers["Authorization"] = f"Bearer {endpoint.key}"
    body = {"model": endpoint.model, "messages": messages_for(question, entries), "temperature": 0.2,
            "max_tokens": 400, "stream": False}
    try:
        response = _session().post(endpoint.url.rstrip("/") + "/chat/completions", json=body, headers=headers,
                                   timeout=(min(endpoint.timeout_s, 3.0), endpoint.timeout_s))
        if response.status_code != 200:
            # The status only: a provider's error body may echo the prompt, which holds the customer's text.
            log.warning("assistant LLM answered HTTP %s; using the offline answer", response.status_code)
            return None
        text = response.json()["choices"][0]["message"]["content"]
    except requests.Timeout:
        log.warning("assistant LLM timed out after %.1f s; using the offline answer", endpoint.timeout_s)
        return None
    except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("assistant LLM failed (%s); using the offline answer", type(exc).__name__)
        return None
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    if text.strip(" .").upper() == HANDOFF_TOKEN:
        raise Handoff()
    return text
