"""Knowledge-base entries: validation, SQL, and import from CSV or YAML with every bad row reported.

Every change bumps the account's ``kb_settings.revision`` in the same transaction: retrieval indexes
live in each process's memory, and the revision is how a worker learns that the web process changed
the entries without any message passing between them.
"""
from __future__ import annotations

import csv
import io
import re

import yaml

from gateway.db import uuid7

FIELDS = ("language", "question", "answer", "tags", "phrasings", "enabled")
MAX_QUESTION = 1000
MAX_ANSWER = 4096
MAX_LIST = 50
MAX_IMPORT_ROWS = 5000
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")
_COLUMNS = "id, language, question, answer, tags, phrasings, enabled, created_at, updated_at"


class EntryInvalid(Exception):
    """``errors`` is a list of {pointer, detail}, all the problems of one entry at once."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__("; ".join(f"{e['pointer']}: {e['detail']}" for e in errors))


def _text_list(value, name: str, errors: list[dict]) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        # CSV cells and hand-written YAML both use "a | b" for lists.
        value = [part for part in value.split("|")]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append({"pointer": f"/{name}", "detail": "must be a list of strings (or one string split by '|')"})
        return []
    items = [v.strip() for v in value if v.strip()]
    if len(items) > MAX_LIST:
        errors.append({"pointer": f"/{name}", "detail": f"at most {MAX_LIST} items"})
    if any(len(v) > MAX_QUESTION for v in items):
        errors.append({"pointer": f"/{name}", "detail": f"each item at most {MAX_QUESTION} characters"})
    return items


def validate(doc, *, partial: bool = False, default_language: str | None = None) -> dict:
    """The clean entry fields from ``doc`` or EntryInvalid listing every problem.

    ``partial`` is for updates: only the fields present are checked and returned."""
    if not isinstance(doc, dict):
        raise EntryInvalid([{"pointer": "", "detail": "an entry is an object with question, answer and language"}])
    errors: list[dict] = []
    out: dict = {}
    if not partial and not doc.get("language") and default_language:
        doc = {**doc, "language": default_language}
    for name in ("language", "question", "answer"):
        if name not in doc or doc[name] is None:
            if not partial:
                errors.append({"pointer": f"/{name}", "detail": "required"})
            continue
        value = doc[name]
        if not isinstance(value, str) or not value.strip():
            errors.append({"pointer": f"/{name}", "detail": "must be a non-empty string"})
            continue
        value = value.strip()
        if name == "language" and not _LANGUAGE.match(value):
            errors.append({"pointer": "/language", "detail": "a language code such as 'en', 'es' or 'pt_BR'"})
        elif name == "question" and len(value) > MAX_QUESTION:
            errors.append({"pointer": "/question", "detail": f"at most {MAX_QUESTION} characters"})
        elif name == "answer" and len(value) > MAX_ANSWER:
            errors.append({"pointer": "/answer", "detail": f"at most {MAX_ANSWER} characters"})
        out[name] = value
    for name in ("tags", "phrasings"):
        if name in doc:
            out[name] = _text_list(doc[name], name, errors)
        elif not partial:
            out[name] = []
    if "enabled" in doc:
        value = doc["enabled"]
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0", ""):
            value = value.strip().lower() in ("true", "yes", "1", "")
        if not isinstance(value, bool):
            errors.append({"pointer": "/enabled", "detail": "must be true or false"})
        out["enabled"] = value
    elif not partial:
        out["enabled"] = True
    if errors:
        raise EntryInvalid(errors)
    return out


def bump_revision(conn, account_id) -> None:
    conn.execute("INSERT INTO kb_settings (account_id, revision) VALUES (%s, 1) ON CONFLICT (account_id) "
                 "DO UPDATE SET revision = kb_settings.revision + 1, updated_at = now()", (account_id,))


def create_entry(conn, *, account_id, entry: dict) -> dict:
    entry = validate(entry)
    row = _insert(conn, account_id, [entry])[0]
    bump_revision(conn, account_id)
    return row


def _insert(conn, account_id, entries: list[dict]) -> list[dict]:
    if not entries:
        return []
    values, params = [], []
    for e in entries:
        values.append("(%s, %s, %s, %s, %s, %s, %s, %s)")
        params += [account_id, uuid7(), e["language"], e["question"], e["answer"], e["tags"], e["phrasings"],
                   e["enabled"]]
    return conn.execute(f"INSERT INTO kb_entries (account_id, id, language, question, answer, tags, phrasings, "
                        f"enabled) VALUES {', '.join(values)} RETURNING {_COLUMNS}", params).fetchall()


def get_entry(conn, *, account_id, entry_id) -> dict | None:
    return conn.execute(f"SELECT {_COLUMNS} FROM kb_entries WHERE account_id = %s AND id = %s",
                        (account_id, entry_id)).fetchone()


def update_entry(conn, *, account_id, entry_id, changes: dict) -> dict | None:
    changes = validate(changes, partial=True)
    if not changes:
        return get_entry(conn, account_id=account_id, entry_id=entry_id)
    sets = ", ".join(f"{name} = %s" for name in changes)
    row = conn.execute(f"UPDATE kb_entries SET {sets}, updated_at = now() WHERE account_id = %s AND id = %s "
                       f"RETURNING {_COLUMNS}", [*changes.values(), account_id, entry_id]).fetchone()
    if row is not None:
        bump_revision(conn, account_id)
    return row


def delete_entry(conn, *, account_id, entry_id) -> bool:
    gone = conn.execute("DELETE FROM kb_entries WHERE account_id = %s AND id = %s",
                        (account_id, entry_id)).rowcount == 1
    if gone:
        bump_revision(conn, account_id)
    return gone


def list_entries(conn, *, account_id, language: str | None = None, after=None, limit: int = 50) -> list[dict]:
    where, params = ["account_id = %s"], [account_id]
    if language:
        where.append("language = %s")
        params.append(language)
    if after is not None:
        where.append("(created_at, id) > (%s, %s)")
        params += list(after)
    return conn.execute(f"SELECT {_COLUMNS} FROM kb_entries WHERE {' AND '.join(where)} "
                        f"ORDER BY created_at, id LIMIT %s", [*params, limit]).fetchall()


def has_entries(conn, *, account_id) -> bool:
    """Whether the account has an assistant at all (an enabled entry)."""
    return conn.execute("SELECT EXISTS (SELECT 1 FROM kb_entries WHERE account_id = %s AND enabled) AS x",
                        (account_id,)).fetchone()["x"]


def get_threshold(conn, *, account_id) -> float | None:
    row = conn.execute("SELECT threshold FROM kb_settings WHERE account_id = %s", (account_id,)).fetchone()
    return row["threshold"] if row else None


def set_threshold(conn, *, account_id, threshold: float | None) -> None:
    # The threshold is part of what a cached index answers with, hence the revision bump.
    conn.execute("INSERT INTO kb_settings (account_id, threshold, revision) VALUES (%s, %s, 1) "
                 "ON CONFLICT (account_id) DO UPDATE SET threshold = EXCLUDED.threshold, "
                 "revision = kb_settings.revision + 1, updated_at = now()", (account_id, threshold))


# --- import -------------------------------------------------------------------------------------------

def parse_rows(body: str, fmt: str) -> tuple[list[tuple[int, object]], list[dict]]:
    """(line, raw row) pairs from a CSV or YAML document, and problems that stop the whole file."""
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(body))
        if not reader.fieldnames or not {"question", "answer"} <= {f.strip() for f in reader.fieldnames if f}:
            return [], [{"line": 1, "errors": [{"pointer": "", "detail": "the first line must name the columns, "
                                                 "at least question and answer (also language, tags, phrasings, "
                                                 "enabled)"}]}]
        rows = []
        try:
            for row in reader:
                # line_num is the line the row ends on; a quoted cell may span several.
                clean = {(k or "").strip(): v for k, v in row.items() if k}
                if None in row:
                    clean["__extra__"] = row[None]
                rows.append((reader.line_num, clean))
        except csv.Error as exc:
            return rows, [{"line": reader.line_num, "errors": [{"pointer": "", "detail": f"not valid CSV: {exc}"}]}]
        return rows, []
    try:
        loader = yaml.SafeLoader(body)
        try:
            node = loader.get_single_node()
            if node is None:
                return [], []
            if isinstance(node, yaml.MappingNode):
                # {entries: [...]} is accepted too, so a file can carry a comment header key later.
                for key, value in node.value:
                    if key.value == "entries":
                        node = value
                        break
            if not isinstance(node, yaml.SequenceNode):
                return [], [{"line": node.start_mark.line + 1, "errors": [
                    {"pointer": "", "detail": "the YAML document must be a list of entries (or entries: [...])"}]}]
            return [(item.start_mark.line + 1, loader.construct_object(item, deep=True)) for item in node.value], []
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [], [{"line": (mark.line + 1) if mark else 1,
                     "errors": [{"pointer": "", "detail": f"not valid YAML: {getattr(exc, 'problem', exc)}"}]}]


def import_entries(conn, *, account_id, body: str, fmt: str, default_language: str | None = None) -> dict:
    """Import the good rows; return {imported: [rows], problems: [{line, errors}]}."""
    rows, problems = parse_rows(body, fmt)
    if len(rows) > MAX_IMPORT_ROWS:
        return {"imported": [], "problems": [{"line": rows[MAX_IMPORT_ROWS][0], "errors": [
            {"pointer": "", "detail": f"at most {MAX_IMPORT_ROWS} entries per import; split the file"}]}]}
    good = []
    for line, raw in rows:
        try:
            if isinstance(raw, dict) and raw.get("__extra__"):
                raise EntryInvalid([{"pointer": "", "detail": "more cells than columns (an unquoted comma?)"}])
            good.append(validate(raw, default_language=default_language))
        except EntryInvalid as exc:
            problems.append({"line": line, "errors": exc.errors})
    imported = _insert(conn, account_id, good)
    if imported:
        bump_revision(conn, account_id)
    problems.sort(key=lambda p: p["line"])
    return {"imported": imported, "problems": problems}
