"""Tags on contacts and on threads: the account's own labels ("vip", "mayorista", "reclamación"), kept in clear
and indexed so lists filter by them (migration 0019).

A contact's tags are read through merges: the contacts merged into it lend it theirs, and removing a tag
removes it from all of them (otherwise the survivor would still show it). Tags are matched exactly as given
(trimmed; "VIP" and "vip" are two tags), at most 64 characters.

Before migration 0019 tags lived in the encrypted profile under ``"tags"``. Profiles are encrypted, so SQL
cannot move them: a profile that still holds some is moved here by its next write (``contacts.update_profile``
calls ``take_from_profile``), and the contact view shows them as tags meanwhile (``legacy``).
"""
from __future__ import annotations

from collections.abc import Iterable

from gateway import events

MAX_LENGTH = 64
MAX_PER_REQUEST = 100


class BadTag(ValueError):
    pass


def clean(values) -> list[str]:
    """The tags as stored: strings, trimmed, 1 to 64 characters, each once, sorted.
    Raises BadTag saying which one is wrong and why."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise BadTag("tags are a list of strings, e.g. [\"vip\", \"mayorista\"]")
    out = set()
    for value in values:
        if not isinstance(value, str):
            raise BadTag(f"a tag is a string, not {type(value).__name__}")
        tag = value.strip()
        if not tag or len(tag) > MAX_LENGTH:
            raise BadTag(f"a tag has 1 to {MAX_LENGTH} characters; {tag[:20]!r}… does not" if tag else
                         "a tag must not be empty")
        out.add(tag)
    if len(out) > MAX_PER_REQUEST:
        raise BadTag(f"at most {MAX_PER_REQUEST} tags at once")
    return sorted(out)


def _group(account_id, contact_id) -> tuple[str, tuple]:
    """SQL for the contact and the contacts merged into it."""
    return ("SELECT %s::uuid UNION ALL SELECT id FROM contacts WHERE account_id = %s AND merged_into = %s",
            (contact_id, account_id, contact_id))


# --- contacts -------------------------------------------------------------------------------------------

def add(conn, *, account_id, contact_id, tags, emit: bool = True) -> list[str]:
    """Add tags to the contact (already cleaned or not); returns those that were new."""
    tags = clean(tags)
    if not tags:
        return []
    added = [r["tag"] for r in conn.execute(
        "INSERT INTO contact_tags (account_id, contact_id, tag) SELECT %s, %s, unnest(%s::text[]) "
        "ON CONFLICT DO NOTHING RETURNING tag", (account_id, contact_id, tags)).fetchall()]
    if added and emit:
        events.emit(conn, account_id, "contact.updated", {"contact_id": str(contact_id), "changed": ["tags"]},
                    subject_id=contact_id)
    return sorted(added)


def add_many(conn, *, account_id, pairs: list[tuple]) -> int:
    """(contact id, tag) pairs at once (imports); tags must be clean. Returns how many were new."""
    if not pairs:
        return 0
    return conn.execute(
        "INSERT INTO contact_tags (account_id, contact_id, tag) SELECT %s, c, t "
        "FROM unnest(%s::uuid[], %s::text[]) AS q(c, t) ON CONFLICT DO NOTHING",
        (account_id, [p[0] for p in pairs], [p[1] for p in pairs])).rowcount


def remove(conn, *, account_id, contact_id, tags, emit: bool = True) -> list[str]:
    """Remove tags from the contact and from the contacts merged into it; returns those it had."""
    tags = clean(tags)
    if not tags:
        return []
    group, params = _group(account_id, contact_id)
    gone = sorted({r["tag"] for r in conn.execute(
        f"DELETE FROM contact_tags WHERE account_id = %s AND contact_id IN ({group}) AND tag = ANY(%s) "
        "RETURNING tag", (account_id, *params, tags)).fetchall()})
    if gone and emit:
        events.emit(conn, account_id, "contact.updated", {"contact_id": str(contact_id), "changed": ["tags"]},
                    subject_id=contact_id)
    return gone


def tags_of(conn, *, account_id, contact_id) -> list[str]:
    """The contact's tags, with those of the contacts merged into it, sorted."""
    return tags_of_many(conn, account_id=account_id, contact_ids=[contact_id])[contact_id]


def tags_of_many(conn, *, account_id, contact_ids: list) -> dict:
    """contact id → its sorted tags (merged contacts' included), for many contacts in one query."""
    out: dict = {c: set() for c in contact_ids}
    if contact_ids:
        for r in conn.execute(
                "SELECT CASE WHEN g.contact_id = ANY(%s) THEN g.contact_id ELSE c.merged_into END AS owner, g.tag "
                "FROM contact_tags g "
                "JOIN contacts c ON c.account_id = g.account_id AND c.id = g.contact_id "
                "WHERE g.account_id = %s AND (g.contact_id = ANY(%s) OR g.contact_id IN (SELECT id FROM contacts "
                "WHERE account_id = %s AND merged_into = ANY(%s)))",
                (contact_ids, account_id, contact_ids, account_id, contact_ids)).fetchall():
            if r["owner"] in out:
                out[r["owner"]].add(r["tag"])
    return {c: sorted(tags) for c, tags in out.items()}


def own_tags(conn, *, account_id, contact_id) -> list[str]:
    """The tags stored on this very contact (not through merges): what its data export lists."""
    return [r["tag"] for r in conn.execute(
        "SELECT tag FROM contact_tags WHERE account_id = %s AND contact_id = %s ORDER BY tag",
        (account_id, contact_id)).fetchall()]


def has_tag_sql(contact: str, param: str) -> str:
    """A condition: the contact (a SQL expression, e.g. ``c.id``), or a contact merged into it, has the tag
    in the named parameter (``%(name)s`` style). Served by contact_tags_by_tag."""
    return (f"{contact} IN (SELECT coalesce(x.merged_into, x.id) FROM contact_tags g JOIN contacts x "
            "ON x.account_id = g.account_id AND x.id = g.contact_id "
            f"WHERE g.account_id = %(a)s AND g.tag = %({param})s)")


# --- the profile's old "tags" ----------------------------------------------------------------------------

def legacy(profile: dict) -> list[str]:
    """Tags still in a profile written before migration 0019 (shown as tags until the profile's next write)."""
    found = profile.get("tags")
    if not isinstance(found, list):
        return []
    return sorted({t.strip() for t in found if isinstance(t, str) and t.strip() and len(t.strip()) <= MAX_LENGTH})


def take_from_profile(conn, *, account_id, contact_id, profile: dict) -> bool:
    """Move a profile's old "tags" into contact_tags (the profile is edited in place); True when it had any."""
    if "tags" not in profile:
        return False
    tags = legacy(profile)
    del profile["tags"]
    if tags:
        add(conn, account_id=account_id, contact_id=contact_id, tags=tags, emit=False)
    return True


# --- threads --------------------------------------------------------------------------------------------

def thread_exists(conn, *, account_id, thread_id) -> bool:
    return conn.execute("SELECT 1 FROM threads WHERE account_id = %s AND id = %s",
                        (account_id, thread_id)).fetchone() is not None


def change_thread(conn, *, account_id, thread_id, add: list[str] = (), remove: list[str] = ()) -> dict | None:
    """Add and remove a thread's tags (cleaned here); None when the thread is not in the account. Emits
    thread.updated when anything changed."""
    add_tags, remove_tags = clean(add), clean(remove)
    if not thread_exists(conn, account_id=account_id, thread_id=thread_id):
        return None
    added = [r["tag"] for r in conn.execute(
        "INSERT INTO thread_tags (account_id, thread_id, tag) SELECT %s, %s, unnest(%s::text[]) "
        "ON CONFLICT DO NOTHING RETURNING tag", (account_id, thread_id, add_tags)).fetchall()] if add_tags else []
    removed = [r["tag"] for r in conn.execute(
        "DELETE FROM thread_tags WHERE account_id = %s AND thread_id = %s AND tag = ANY(%s) RETURNING tag",
        (account_id, thread_id, remove_tags)).fetchall()] if remove_tags else []
    if added or removed:
        events.emit(conn, account_id, "thread.updated", {"thread_id": str(thread_id), "changed": ["tags"]},
                    subject_id=thread_id)
    return {"thread_id": thread_id, "tags": thread_tags_of(conn, account_id=account_id, thread_id=thread_id),
            "added": sorted(added), "removed": sorted(removed)}


def thread_tags_of(conn, *, account_id, thread_id) -> list[str]:
    return [r["tag"] for r in conn.execute(
        "SELECT tag FROM thread_tags WHERE account_id = %s AND thread_id = %s ORDER BY tag",
        (account_id, thread_id)).fetchall()]


def thread_tags_of_many(conn, *, account_id, thread_ids: list) -> dict:
    """thread id → its sorted tags, in one query (for an inbox page)."""
    out: dict = {t: [] for t in thread_ids}
    if thread_ids:
        for r in conn.execute("SELECT thread_id, tag FROM thread_tags WHERE account_id = %s AND thread_id = ANY(%s) "
                              "ORDER BY tag", (account_id, thread_ids)).fetchall():
            out.setdefault(r["thread_id"], []).append(r["tag"])
    return out
