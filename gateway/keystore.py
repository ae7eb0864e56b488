"""Data keys in PostgreSQL: create, load (cached), shred, and re-wrap on rotation."""
from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict

from gateway import runtime
from gateway.crypto import DataKey, KeyShredded, data_key_aad, new_data_key_material
from gateway.db import uuid7

# Unwrapped keys are cached briefly: long enough to make hot paths cheap,
# short enough that a key shredded by another process stops working soon
# everywhere (the rows it protected are deleted in the same transaction).
_CACHE_TTL_S = 60.0
_CACHE_MAX = 10_000
_cache: OrderedDict[tuple, tuple[float, DataKey]] = OrderedDict()
_cache_lock = threading.Lock()


def _remember(account_id, key: DataKey) -> DataKey:
    with _cache_lock:
        _cache[(str(account_id), key.id)] = (time.monotonic() + _CACHE_TTL_S, key)
        _cache.move_to_end((str(account_id), key.id))
        while len(_cache) > _CACHE_MAX:
            _cache.popitem(last=False)
    return key


def forget(account_id, key_id) -> None:
    with _cache_lock:
        _cache.pop((str(account_id), uuid.UUID(str(key_id))), None)


def _new_wrapped(account_id):
    key_id = uuid7()
    material = new_data_key_material()
    kid, wrapped = runtime.keyring().wrap(material, data_key_aad(account_id, key_id))
    return key_id, material, kid, wrapped


def create_key(conn, *, account_id, purpose: str) -> DataKey:
    key_id, material, kid, wrapped = _new_wrapped(account_id)
    conn.execute(
        "INSERT INTO data_keys (account_id, id, purpose, master_kid, wrapped) VALUES (%s, %s, %s, %s, %s)",
        (account_id, key_id, purpose, kid, wrapped))
    return _remember(account_id, DataKey(key_id, material))


def load_key(conn, *, account_id, key_id) -> DataKey:
    key_id = key_id if isinstance(key_id, uuid.UUID) else uuid.UUID(str(key_id))
    hit = _cache.get((str(account_id), key_id))
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    row = conn.execute(
        "SELECT master_kid, wrapped FROM data_keys WHERE account_id = %s AND id = %s",
        (account_id, key_id)).fetchone()
    if row is None or row["wrapped"] is None:
        forget(account_id, key_id)
        raise KeyShredded(f"data key {key_id} has been shredded")
    material = runtime.keyring().unwrap(row["master_kid"], row["wrapped"],
                                        data_key_aad(account_id, key_id))
    return _remember(account_id, DataKey(key_id, material))


def load_keys(conn, *, account_id, key_ids) -> dict:
    """key id → DataKey for many keys, with one query for those not cached (a campaign's or a batch's
    recipients rarely repeat). A shredded key is left out: load_key raises for it as ever."""
    out, missing = {}, []
    now = time.monotonic()
    for key_id in {k if isinstance(k, uuid.UUID) else uuid.UUID(str(k)) for k in key_ids}:
        hit = _cache.get((str(account_id), key_id))
        if hit is not None and hit[0] > now:
            out[key_id] = hit[1]
        else:
            missing.append(key_id)
    if missing:
        keyring = runtime.keyring()
        for r in conn.execute("SELECT id, master_kid, wrapped FROM data_keys WHERE account_id = %s "
                              "AND id = ANY(%b::uuid[]) AND wrapped IS NOT NULL", (account_id, missing)).fetchall():
            out[r["id"]] = _remember(account_id, DataKey(r["id"], keyring.unwrap(
                r["master_kid"], r["wrapped"], data_key_aad(account_id, r["id"]))))
    return out


def account_key(conn, *, account_id) -> DataKey:
    """The account's own data key, for personal data not yet tied to a contact."""
    row = conn.execute(
        "SELECT id FROM data_keys WHERE account_id = %s AND purpose = 'account'",
        (account_id,)).fetchone()
    if row is not None:
        return load_key(conn, account_id=account_id, key_id=row["id"])
    # Two processes may race to create it: the partial unique index lets one win.
    key_id, material, kid, wrapped = _new_wrapped(account_id)
    created = conn.execute(
        "INSERT INTO data_keys (account_id, id, purpose, master_kid, wrapped) "
        "VALUES (%s, %s, 'account', %s, %s) "
        "ON CONFLICT (account_id) WHERE purpose = 'account' DO NOTHING RETURNING id",
        (account_id, key_id, kid, wrapped)).fetchone()
    if created is not None:
        return _remember(account_id, DataKey(key_id, material))
    return account_key(conn, account_id=account_id)


def shred(conn, *, account_id, key_id) -> None:
    """Destroy a data key: everything encrypted under it is unreadable from now on."""
    conn.execute(
        "UPDATE data_keys SET wrapped = NULL, master_kid = NULL, shredded_at = now() "
        "WHERE account_id = %s AND id = %s AND wrapped IS NOT NULL",
        (account_id, key_id))
    forget(account_id, key_id)


def pending_rewrap(conn) -> int:
    kid = runtime.keyring().current_kid
    return conn.execute(
        "SELECT count(*) AS n FROM data_keys WHERE wrapped IS NOT NULL AND master_kid <> %s",
        (kid,)).fetchone()["n"]


def rewrap_batch(conn, batch_size: int = 500) -> int:
    """Re-wrap up to batch_size keys under the current master key; returns how many.

    SKIP LOCKED lets several rotations (or a rotation and live traffic) proceed
    without waiting on each other; each key row is rewritten atomically.
    """
    keyring = runtime.keyring()
    kid = keyring.current_kid
    rows = conn.execute(
        "SELECT account_id, id, master_kid, wrapped FROM data_keys "
        "WHERE wrapped IS NOT NULL AND master_kid <> %s LIMIT %s FOR UPDATE SKIP LOCKED",
        (kid, batch_size)).fetchall()
    for row in rows:
        aad = data_key_aad(row["account_id"], row["id"])
        material = keyring.unwrap(row["master_kid"], row["wrapped"], aad)
        new_kid, wrapped = keyring.wrap(material, aad)
        conn.execute(
            "UPDATE data_keys SET master_kid = %s, wrapped = %s, rewrapped_at = now() "
            "WHERE account_id = %s AND id = %s",
            (new_kid, wrapped, row["account_id"], row["id"]))
    return len(rows)
