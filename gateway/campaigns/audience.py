"""A campaign's audience: which contacts it reaches, resolved once into campaign_recipients when it starts.

Audiences: an import (every contact of ``POST /v1/contacts/import``, in file order), a list of contact ids,
or a segment. A segment filters in SQL what SQL can see (a thread on a channel kind, the last inbound
message's date, the consent ledger, tags) and decrypts the profile for attributes, which are encrypted.
Merged contacts count as their survivor; a contact named twice is one recipient.
"""
from __future__ import annotations

import json
from typing import Iterator

from gateway import consent, contact_tags, keystore
from gateway.campaigns import spec as campaign_spec
from gateway.crypto import field_aad

PAGE = 5000


def contact_ids(conn, *, account_id, audience: dict, channel_kind: str, limit: int | None = None) -> Iterator[list]:
    """The audience's contact ids (survivors), page by page, in a stable order."""
    if "import_id" in audience:
        yield from _pages(conn, (
            "SELECT coalesce(c.merged_into, c.id) AS id, min(r.line) AS first FROM contact_import_rows r "
            "JOIN contacts c ON c.account_id = r.account_id AND c.id = r.contact_id "
            "WHERE r.account_id = %s AND r.import_id = %s GROUP BY 1 ORDER BY 2"), (account_id, audience["import_id"]),
            limit)
    elif "contact_ids" in audience:
        yield from _pages(conn, (
            "SELECT coalesce(c.merged_into, c.id) AS id, min(q.n) AS first FROM unnest(%s::uuid[]) WITH ORDINALITY "
            "AS q(id, n) JOIN contacts c ON c.account_id = %s AND c.id = q.id GROUP BY 1 ORDER BY 2"),
            ([str(i) for i in audience["contact_ids"]], account_id), limit)
    else:
        yield from _segment(conn, account_id, audience["segment"], channel_kind, limit)


def _pages(conn, sql: str, params: tuple, limit: int | None) -> Iterator[list]:
    rows = [r["id"] for r in conn.execute(sql + (" LIMIT %s" if limit else ""),
                                          (*params, limit) if limit else params).fetchall()]
    for i in range(0, len(rows), PAGE):
        yield rows[i:i + PAGE]


def _segment(conn, account_id, seg: dict, channel_kind: str, limit: int | None) -> Iterator[list]:
    where, params = ["c.account_id = %(a)s", "c.merged_into IS NULL", "(%(after)s::uuid IS NULL OR c.id > %(after)s)"], {
        "a": account_id}
    if seg.get("channel_kind"):
        where.append("EXISTS (SELECT 1 FROM threads t JOIN channels ch ON ch.account_id = t.account_id "
                     "AND ch.id = t.channel_id WHERE t.account_id = c.account_id AND t.contact_id = c.id "
                     "AND ch.kind = %(ck)s)")
        params["ck"] = seg["channel_kind"]
    if seg.get("last_inbound_after") or seg.get("last_inbound_before"):
        where.append("(SELECT max(t.last_inbound_at) FROM threads t WHERE t.account_id = c.account_id "
                     "AND t.contact_id = c.id) BETWEEN coalesce(%(ia)s, '-infinity'::timestamptz) "
                     "AND coalesce(%(ib)s, 'infinity'::timestamptz)")
        params["ia"] = campaign_spec.since(seg.get("last_inbound_after"))
        params["ib"] = campaign_spec.since(seg.get("last_inbound_before"))
    if seg.get("consent"):
        where.append(f"({consent.state_sql('c.id', '%(kind)s::text')}) ->> %(purpose)s = 'granted'")
        params.update(kind=channel_kind, purpose=seg["consent"])
    for n, tag in enumerate(sorted({t.strip() for t in seg.get("tags") or ()})):   # every tag, indexed
        where.append(contact_tags.has_tag_sql("c.id", f"tag{n}"))
        params[f"tag{n}"] = tag
    attrs = seg.get("attributes") or {}
    needs_profile = bool(attrs)
    sql = (f"SELECT c.id, c.data_key_id, c.profile_enc FROM contacts c WHERE {' AND '.join(where)} "
           "ORDER BY c.id LIMIT %(page)s")
    after, found = None, 0
    while True:
        rows = conn.execute(sql, {**params, "after": after, "page": PAGE}).fetchall()
        if not rows:
            return
        after = rows[-1]["id"]
        page = [r["id"] for r in rows if not needs_profile or _fits(conn, account_id, r, attrs)]
        if limit:
            page = page[:limit - found]
        found += len(page)
        if page:
            yield page
        if limit and found >= limit:
            return


def _fits(conn, account_id, row: dict, attrs: dict) -> bool:
    if row["profile_enc"] is None:
        return False
    key = keystore.load_key(conn, account_id=account_id, key_id=row["data_key_id"])
    profile = json.loads(key.decrypt_text(row["profile_enc"], field_aad("contacts", "profile", account_id, row["id"])))
    return all(_same(profile.get(k), v) for k, v in attrs.items())


def _same(have, want) -> bool:
    if have == want:
        return True
    # Imported attributes are text: "yes" in a CSV and true in a segment, or "3" and 3, are the same thing.
    return have is not None and str(have).strip().lower() == str(want).strip().lower()


def materialise(conn, *, account_id, campaign_id, audience: dict, channel_kind: str) -> tuple[int, int]:
    """Insert every audience contact as a pending recipient (idempotent). (recipients added, duplicates)."""
    added = dupes = 0
    for page in contact_ids(conn, account_id=account_id, audience=audience, channel_kind=channel_kind):
        made = conn.execute(
            "INSERT INTO campaign_recipients (account_id, campaign_id, contact_id) SELECT %s, %s, id "
            "FROM unnest(%s::uuid[]) WITH ORDINALITY AS q(id, n) ORDER BY n ON CONFLICT DO NOTHING",
            (account_id, campaign_id, page)).rowcount
        added += made
        dupes += len(page) - made
    return added, dupes
