"""The template catalog in PostgreSQL: one row per account, WABA, name and language (SQL lives here)."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from psycopg.types.json import Jsonb

from gateway import events
from gateway.db import uuid7

_COLUMNS = ("id, waba_id, name, language, category, status, status_reason, quality_score, meta_id, definition, "
            "synced_at, created_at, updated_at")
# What Meta's list returns beside the definition itself.
_META_ONLY = ("id", "status", "quality_score", "rejected_reason", "previous_category")


def _definition(doc: Mapping[str, Any]) -> dict:
    return {k: v for k, v in doc.items() if k not in _META_ONLY}


def _quality(doc: Mapping[str, Any]) -> str | None:
    quality = doc.get("quality_score")
    if isinstance(quality, Mapping):
        quality = quality.get("score")
    return str(quality) if quality else None


def upsert_from_meta(conn, *, account_id, waba_id: str, docs: Iterable[Mapping[str, Any]], channel_id=None) -> int:
    """Store templates as Meta lists them (definition, status, quality, id); returns how many. A template the
    catalog held with another status emits template.status_changed; one seen for the first time does not (a
    first sync would announce the whole catalog)."""
    docs = list(docs)
    # Locked: a status webhook applied meanwhile must not make this sync's previous status a stale one.
    before = {(r["name"], r["language"]): r["status"] for r in conn.execute(
        "SELECT name, language, status FROM templates WHERE account_id = %s AND waba_id = %s AND name = ANY(%s) "
        "FOR UPDATE", (account_id, waba_id, list({str(d["name"]) for d in docs}))).fetchall()}
    changed = []
    n = 0
    for doc in docs:
        reason = doc.get("rejected_reason")
        row = conn.execute(
            "INSERT INTO templates (account_id, id, waba_id, name, language, category, status, status_reason, "
            "quality_score, meta_id, definition, synced_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now()) "
            "ON CONFLICT (account_id, waba_id, name, language) DO UPDATE SET category = excluded.category, "
            "status = excluded.status, status_reason = excluded.status_reason, "
            "quality_score = excluded.quality_score, meta_id = excluded.meta_id, "
            "definition = excluded.definition, synced_at = now(), updated_at = now() "
            "RETURNING id, name, language, status, status_reason",
            (account_id, uuid7(), waba_id, doc["name"], doc["language"], doc.get("category"),
             str(doc.get("status") or "PENDING").upper(), None if reason in (None, "NONE") else str(reason),
             _quality(doc), None if doc.get("id") is None else str(doc["id"]), Jsonb(_definition(doc)))).fetchone()
        previous = before.get((row["name"], row["language"]))
        if previous is not None and previous != row["status"]:
            changed.append(dict(row, previous=previous))
        n += 1
    _status_changed(conn, account_id, changed, channel_id)
    return n


def _status_changed(conn, account_id, rows: list[dict], channel_id) -> None:
    """template.status_changed for catalog rows whose status moved (id, name, language, status, status_reason,
    previous). Template names and languages are the business's own words, not a customer's data."""
    events.emit_many(conn, account_id, [("template.status_changed", {
        "template_id": str(r["id"]), "channel_id": None if channel_id is None else str(channel_id),
        "name": r["name"], "language": r["language"], "status": r["status"], "previous_status": r["previous"],
        "reason": r["status_reason"]}, r["id"]) for r in rows])


def get(conn, *, account_id, waba_id: str, name: str, language: str) -> dict | None:
    return conn.execute(f"SELECT {_COLUMNS} FROM templates WHERE account_id = %s AND waba_id = %s AND name = %s "
                        "AND language = %s", (account_id, waba_id, name, language)).fetchone()


def languages(conn, *, account_id, waba_id: str, name: str) -> dict[str, str]:
    """Language → status of every translation of ``name``."""
    return {r["language"]: r["status"] for r in conn.execute(
        "SELECT language, status FROM templates WHERE account_id = %s AND waba_id = %s AND name = %s "
        "ORDER BY language", (account_id, waba_id, name)).fetchall()}


def has_catalog(conn, *, account_id, waba_id: str) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM templates WHERE account_id = %s AND waba_id = %s) AS x",
                        (account_id, waba_id)).fetchone()["x"]


def list_templates(conn, *, account_id, waba_id: str | None = None, name: str | None = None,
                   status: str | None = None, limit: int = 100) -> list[dict]:
    return conn.execute(
        f"SELECT {_COLUMNS} FROM templates WHERE account_id = %s AND (%s::text IS NULL OR waba_id = %s) "
        "AND (%s::text IS NULL OR name = %s) AND (%s::text IS NULL OR status = %s) "
        "ORDER BY name, language LIMIT %s",
        (account_id, waba_id, waba_id, name, name, status, status, limit)).fetchall()


def set_status(conn, *, account_id, meta_id: str | None, waba_id: str | None = None, name: str | None = None,
               language: str | None = None, status: str, reason: str | None = None, channel_id=None) -> int:
    """A status Meta reported (by its template id, or by name and language): rows updated. Each row whose
    status moved emits template.status_changed (Meta repeats webhooks; a repeat changes nothing)."""
    reason = None if reason in (None, "NONE") else reason
    which, params = (("meta_id = %s", (str(meta_id),)) if meta_id else
                     ("waba_id = %s AND name = %s AND language = %s", (waba_id, name, language)))
    before = {r["id"]: r["status"] for r in conn.execute(
        f"SELECT id, status FROM templates WHERE account_id = %s AND {which} FOR UPDATE",
        (account_id, *params)).fetchall()}
    rows = conn.execute(
        f"UPDATE templates SET status = %s, status_reason = %s, updated_at = now() WHERE account_id = %s "
        f"AND {which} RETURNING id, name, language, status, status_reason",
        (status.upper(), reason, account_id, *params)).fetchall()
    _status_changed(conn, account_id, [dict(r, previous=before.get(r["id"])) for r in rows
                                       if before.get(r["id"]) != r["status"]], channel_id)
    return len(rows)


def set_quality(conn, *, account_id, meta_id, quality: str | None) -> int:
    """Meta's new quality rating for a template (message_template_quality_update)."""
    return conn.execute("UPDATE templates SET quality_score = %s, updated_at = now() WHERE account_id = %s "
                        "AND meta_id = %s", (quality, account_id, str(meta_id))).rowcount


def set_category(conn, *, account_id, meta_id, category: str) -> int:
    """Meta moved a template to another category (template_category_update); the definition follows, so a
    push does not see a change that is Meta's own."""
    return conn.execute(
        "UPDATE templates SET category = %s, definition = jsonb_set(definition, '{category}', to_jsonb(%s::text)), "
        "updated_at = now() WHERE account_id = %s AND meta_id = %s",
        (category, category, account_id, str(meta_id))).rowcount


def get_by_meta_id(conn, *, account_id, meta_id) -> dict | None:
    return conn.execute(f"SELECT {_COLUMNS} FROM templates WHERE account_id = %s AND meta_id = %s",
                        (account_id, str(meta_id))).fetchone()


def set_definition(conn, *, account_id, template_id, definition: Mapping[str, Any], status: str | None = None,
                   channel_id=None) -> None:
    """A new definition (an edit submitted, or Meta's components update); ``status`` too when the edit sent it
    back to review, which emits template.status_changed."""
    before = None if status is None else conn.execute(
        "SELECT status FROM templates WHERE account_id = %s AND id = %s FOR UPDATE",
        (account_id, template_id)).fetchone()
    row = conn.execute("UPDATE templates SET definition = %s, category = coalesce(%s, category), "
                       "status = coalesce(%s, status), updated_at = now() WHERE account_id = %s AND id = %s "
                       "RETURNING id, name, language, status, status_reason",
                       (Jsonb(_definition(definition)), definition.get("category"), status, account_id,
                        template_id)).fetchone()
    if before is not None and row is not None and before["status"] != row["status"]:
        _status_changed(conn, account_id, [dict(row, previous=before["status"])], channel_id)


def delete(conn, *, account_id, waba_id: str, name: str, language: str | None = None) -> int:
    return conn.execute("DELETE FROM templates WHERE account_id = %s AND waba_id = %s AND name = %s "
                        "AND (%s::text IS NULL OR language = %s)",
                        (account_id, waba_id, name, language, language)).rowcount


def translations(conn, *, account_id, name: str, waba_id: str | None = None) -> list[dict]:
    """Every translation of ``name`` in a WABA or, for channels without one (SMS, Messenger), in any of the
    account's: for one language the most recently synced row wins."""
    return conn.execute(
        f"SELECT DISTINCT ON (language) {_COLUMNS} FROM templates WHERE account_id = %s AND name = %s "
        "AND (%s::text IS NULL OR waba_id = %s) ORDER BY language, synced_at DESC NULLS LAST, updated_at DESC",
        (account_id, name, waba_id, waba_id)).fetchall()

