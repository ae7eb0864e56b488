"""Finding contacts: ``GET /v1/contacts`` with filters, every one an index look-up rather than a decryption scan.

- ``phone``: normalised to E.164 (``00`` read as ``+``; a national number needs ``region``) and looked up by
  its blind index, like inbound does; through merges, so a merged contact's number finds its survivor.
- ``tags``: every tag given (``contact_tags``, merged contacts' included).
- ``attributes``: name → value for filterable attributes, by the blind index of the normalised value
  (``gateway/attributes.py``).
- ``channel_id`` / ``channel_kind``: the contact (or one merged into it) has a thread there.
- ``active_after`` / ``active_before``: the latest ``last_activity_at`` of its threads (from inclusive, to
  exclusive); a contact without threads has no activity and is left out by either.

Filters combine (all must hold). Only surviving contacts are listed (a merged one answers through its
survivor), newest first, paged by the (created_at, id) of the previous page's last contact.
"""
from __future__ import annotations

from gateway import attributes, contact_tags, contacts

_GROUP = ("SELECT c.id UNION ALL SELECT m.id FROM contacts m WHERE m.account_id = c.account_id "
          "AND m.merged_into = c.id")


def phone_address(raw: str, region: str | None = None) -> str:
    """A phone as inbound stores it: E.164 when it can be read as a number (``00`` as ``+``, a national
    number with the region), else the text as given (an odd sender is still a customer)."""
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        return contacts.normalise_phone(text, region)
    except contacts.InvalidAddress:
        return contacts.lookup_address("phone", raw)


def search(conn, *, account_id, limit: int = 50, before=None, phone: str | None = None,
           region: str | None = None, tags=(), attribute_values: dict | None = None, channel_id=None,
           channel_kind: str | None = None, active_after=None, active_before=None) -> list[dict]:
    """Contacts matching every filter given, as the contact view shows them. ``attribute_values`` maps a
    filterable attribute's name to its value already normalised (``attributes.filter_value``)."""
    where = ["c.account_id = %(a)s", "c.merged_into IS NULL"]
    params: dict = {"a": account_id, "n": limit}
    if phone is not None:
        found = contacts.contact_id_for(conn, account_id=account_id, kind="phone",
                                        address=phone_address(phone, region))
        if found is None:
            return []
        where.append("c.id = %(pid)s")
        params["pid"] = found
    for n, tag in enumerate(sorted(set(tags))):
        where.append(contact_tags.has_tag_sql("c.id", f"tag{n}"))
        params[f"tag{n}"] = tag
    for n, (name, value) in enumerate(sorted((attribute_values or {}).items())):
        where.append(attributes.filter_sql("c.id", f"an{n}", f"ab{n}"))
        params[f"an{n}"], params[f"ab{n}"] = name, attributes.digest(account_id, name, value)
    if channel_id is not None:
        where.append("c.id IN (SELECT coalesce(x.merged_into, x.id) FROM threads t JOIN contacts x "
                     "ON x.account_id = t.account_id AND x.id = t.contact_id "
                     "WHERE t.account_id = %(a)s AND t.channel_id = %(ch)s)")
        params["ch"] = channel_id
    if channel_kind is not None:
        where.append("c.id IN (SELECT coalesce(x.merged_into, x.id) FROM threads t JOIN channels ch "
                     "ON ch.account_id = t.account_id AND ch.id = t.channel_id JOIN contacts x "
                     "ON x.account_id = t.account_id AND x.id = t.contact_id "
                     "WHERE t.account_id = %(a)s AND ch.kind = %(ck)s)")
        params["ck"] = channel_kind
    if active_after is not None or active_before is not None:
        latest = (f"(SELECT max(t.last_activity_at) FROM threads t WHERE t.account_id = c.account_id "
                  f"AND t.contact_id IN ({_GROUP}))")
        if active_after is not None:
            where.append(f"{latest} >= %(aa)s")
            params["aa"] = active_after
        if active_before is not None:
            where.append(f"{latest} < %(ab)s")
            params["ab"] = active_before
    if before is not None:
        where.append("(c.created_at, c.id) < (%(bt)s, %(bi)s)")
        params["bt"], params["bi"] = before
    rows = conn.execute(
        f"SELECT {contacts._COLUMNS} FROM contacts c WHERE {' AND '.join(where)} "
        "ORDER BY c.created_at DESC, c.id DESC LIMIT %(n)s", params).fetchall()
    return [contacts._decrypt_contact(conn, account_id, r) for r in rows]
