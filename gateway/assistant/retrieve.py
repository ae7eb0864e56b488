"""Offline retrieval: BM25 over the account's entries in this process's memory, with PostgreSQL doing the
language work (accent folding, stop words, Snowball stemming through the same ``kb_ts_config`` the
stored ``search`` column uses), so a question and an entry are always normalised alike.

Why BM25 here rather than ranking with ``ts_rank`` in SQL: on the evaluation set
(tests/data/assistant, ``bench/assistant.py --compare``) it ranks better, and its scores turn into a
confidence that means the same thing on every account, which a threshold needs; ``ts_rank`` grows with
document length and repetitions and has no natural scale. ``fts_search`` is kept as the reference.

Cost per message: one round trip (stem the text once per language in the knowledge base, and read the
revision) plus a few posting-list walks; the index is rebuilt only when the revision moved.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

# Field weights of the stored tsvector: A = question and phrasings, B = tags, C = answer. A customer
# asks a question, so matching a question weighs most; answers only help a little (they add words a
# customer may use: "PayPal", "Bizum") and must not drag in entries that merely mention a term.
_FIELD_WEIGHT = {"A": 1.0, "B": 0.6, "C": 0.25, "D": 0.25}
_K1 = 1.2
_B = 0.75
_CACHE_ACCOUNTS = 512


def base_language(language: str | None) -> str:
    return (language or "").replace("-", "_").split("_")[0].lower()


@dataclass
class Hit:
    entry_id: object
    language: str
    question: str
    answer: str
    score: float        # confidence in [0, 1]: the share of the question's weight the entry matches
    bm25: float


@dataclass
class _Language:
    language: str                     # as stored on the first entry seen: what kb_ts_config is given
    entries: list = field(default_factory=list)          # (id, question, answer)
    lengths: list = field(default_factory=list)
    postings: dict = field(default_factory=dict)         # lexeme -> [(doc, tf, best field weight)]
    avglen: float = 1.0
    idf: dict = field(default_factory=dict)
    idf_unknown: float = 1.0

    def finish(self) -> None:
        n = len(self.entries)
        self.avglen = (sum(self.lengths) / n) if n else 1.0
        for term, plist in self.postings.items():
            df = len(plist)
            self.idf[term] = math.log(1 + (n - df + 0.5) / (df + 0.5))
        self.idf_unknown = math.log(1 + (n + 0.5) / 0.5)


@dataclass
class Index:
    revision: int
    threshold: float | None
    languages: dict                   # base language -> _Language


_cache: OrderedDict = OrderedDict()   # account_id -> Index
_lock = threading.Lock()


def invalidate(account_id=None) -> None:
    """Forget cached indexes (all of them without an account). The revision check makes this optional
    across processes; in-process writers call it so their next question never waits for a round trip."""
    with _lock:
        if account_id is None:
            _cache.clear()
        else:
            _cache.pop(account_id, None)


def _build(conn, account_id) -> Index:
    settings = conn.execute("SELECT revision, threshold FROM kb_settings WHERE account_id = %s",
                            (account_id,)).fetchone()
    rows = conn.execute(
        "SELECT e.id, e.language, e.question, e.answer, t.lexeme, t.weights "
        "FROM kb_entries e CROSS JOIN LATERAL unnest(e.search) AS t "
        "WHERE e.account_id = %s AND e.enabled ORDER BY e.id", (account_id,)).fetchall()
    languages: dict[str, _Language] = {}
    doc_of: dict = {}
    for row in rows:
        base = base_language(row["language"])
        lang = languages.get(base)
        if lang is None:
            lang = languages[base] = _Language(language=row["language"])
        doc = doc_of.get(row["id"])
        if doc is None:
            doc = doc_of[row["id"]] = len(lang.entries)
            lang.entries.append((row["id"], row["question"], row["answer"]))
            lang.lengths.append(0.0)
        weights = row["weights"] or ["D"]
        tf = sum(_FIELD_WEIGHT.get(w, 0.25) for w in weights)
        best = max(_FIELD_WEIGHT.get(w, 0.25) for w in weights)
        lang.lengths[doc] += tf
        lang.postings.setdefault(row["lexeme"], []).append((doc, tf, best))
    for lang in languages.values():
        lang.finish()
    return Index(revision=settings["revision"] if settings else 0,
                 threshold=settings["threshold"] if settings else None, languages=languages)


def _stem(conn, account_id, text: str, languages: list[str]) -> tuple[int, dict[str, list[str]]]:
    rows = conn.execute(
        "SELECT coalesce((SELECT revision FROM kb_settings WHERE account_id = %s), 0) AS revision, "
        "l.lang, tsvector_to_array(kb_lexemes(kb_ts_config(l.lang), %s)) AS terms "
        "FROM unnest(%s::text[]) AS l(lang)", (account_id, text, languages)).fetchall()
    if not rows:
        row = conn.execute("SELECT coalesce((SELECT revision FROM kb_settings WHERE account_id = %s), 0) AS r",
                           (account_id,)).fetchone()
        return row["r"], {}
    return rows[0]["revision"], {r["lang"]: r["terms"] for r in rows}


def index_for(conn, account_id, text: str) -> tuple[Index, dict[str, list[str]]]:
    """The account's current index and ``text`` stemmed for each of its languages (one round trip when
    the cached index is current)."""
    with _lock:
        index = _cache.get(account_id)
        if index is not None:
            _cache.move_to_end(account_id)
    if index is not None:
        revision, stems = _stem(conn, account_id, text, [l.language for l in index.languages.values()])
        if revision == index.revision:
            return index, stems
    index = _build(conn, account_id)
    with _lock:
        _cache[account_id] = index
        _cache.move_to_end(account_id)
        while len(_cache) > _CACHE_ACCOUNTS:
            _cache.popitem(last=False)
    _, stems = _stem(conn, account_id, text, [l.language for l in index.languages.values()])
    return index, stems


def _rank(lang: _Language, terms: list[str], limit: int) -> list[Hit]:
    if not terms or not lang.entries:
        return []
    bm25: dict[int, float] = {}
    matched: dict[int, float] = {}
    total = 0.0
    for term in terms:
        idf = lang.idf.get(term, lang.idf_unknown)
        total += idf
        for doc, tf, best in lang.postings.get(term, ()):
            norm = tf * (_K1 + 1) / (tf + _K1 * (1 - _B + _B * lang.lengths[doc] / lang.avglen))
            bm25[doc] = bm25.get(doc, 0.0) + idf * norm
            # Confidence counts each question term once, by the most telling field it is found in.
            matched[doc] = matched.get(doc, 0.0) + idf * best
    if not bm25:
        return []
    top = sorted(bm25, key=lambda d: bm25[d], reverse=True)[:limit]
    hits = []
    for doc in top:
        entry_id, question, answer = lang.entries[doc]
        hits.append(Hit(entry_id=entry_id, language=lang.language, question=question, answer=answer,
                        score=matched[doc] / total if total else 0.0, bm25=bm25[doc]))
    return hits


def search(conn, *, account_id, text: str, language: str | None = None, limit: int = 3) -> list[Hit]:
    return lookup(conn, account_id=account_id, text=text, language=language, limit=limit)[0]


def lookup(conn, *, account_id, text: str, language: str | None = None,
           limit: int = 3) -> tuple[list[Hit], float | None]:
    """The best entries for ``text``, best first, over every language of the knowledge base, and the account's
    threshold (None: the default).

    A customer does not always write in the language their contact record says, so every language is
    tried. Within a language BM25 ranks (it measured better than ranking by confidence); across languages
    the hinted one comes first unless another matches clearly better."""
    index, stems = index_for(conn, account_id, text)
    hint = base_language(language)
    best: list[Hit] = []
    for base, lang in index.languages.items():
        ranked = _rank(lang, stems.get(lang.language, []), limit)
        if ranked and (not best or ranked[0].score + (0.1 if base == hint else 0.0) >
                       best[0].score + (0.1 if base_language(best[0].language) == hint else 0.0)):
            best = ranked
    # The threshold comes from the same index, so a decision never mixes two revisions.
    return best, index.threshold


def fts_search(conn, *, account_id, text: str, language: str, limit: int = 3) -> list[tuple[object, float]]:
    """Reference ranking with PostgreSQL alone: an OR of the question's lexemes, ``ts_rank_cd`` with its
    rank/(rank+1) normalisation, over the entries in ``language``'s configuration. Kept to measure BM25
    against (bench/assistant.py --compare)."""
    rows = conn.execute(
        "WITH q AS (SELECT (SELECT string_agg(quote_literal(x), ' | ') FROM unnest(tsvector_to_array("
        "  kb_lexemes(kb_ts_config(%(lang)s), %(text)s))) AS x)::tsquery AS q) "
        "SELECT e.id, ts_rank_cd('{0.1, 0.25, 0.6, 1.0}', e.search, q.q, 32) AS rank FROM kb_entries e, q "
        "WHERE e.account_id = %(account)s AND e.enabled AND kb_ts_config(e.language) = kb_ts_config(%(lang)s) "
        "AND q.q IS NOT NULL AND e.search @@ q.q ORDER BY rank DESC LIMIT %(limit)s",
        {"lang": language, "text": text, "account": account_id, "limit": limit}).fetchall()
    return [(r["id"], r["rank"]) for r in rows]
