"""Envelope encryption of personal data (DESIGN invariant 5).

Three layers:
- master keys (the keyring), each with a key id, never stored in the database;
- data keys, one per contact (and one per account for data not yet tied to a
  contact), stored wrapped by a master key in ``data_keys``;
- field ciphertexts, AES-256-GCM under a data key with the row's identity as
  associated data, so a value copied onto another row or column fails to decrypt.

Look-ups use a keyed blind index (HMAC-SHA256) instead of the clear value; the
index key is derived per account so equal phone numbers in two accounts do not
index alike (tenant walls hold even for someone reading the raw tables).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN_VERSION = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32
BLIND_INDEX_BYTES = 16
_HEADER = len(TOKEN_VERSION) + NONCE_BYTES
_MIN_TOKEN = _HEADER + 16   # header and GCM tag
_urandom = os.urandom


class CryptoError(Exception):
    pass


class KeyringError(CryptoError):
    """The configured keyring is missing, malformed or lacks a needed key."""


class DecryptionError(CryptoError):
    """Wrong key, wrong row, tampered ciphertext, or a shredded key."""


class KeyShredded(DecryptionError):
    """The data key was destroyed by an erasure: the data is gone for good."""


def _b64key(raw: str, where: str) -> bytes:
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (ValueError, TypeError):
        raise KeyringError(f"{where}: not valid base64; generate one with "
                           f"python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'")
    if len(key) != KEY_BYTES:
        raise KeyringError(f"{where}: must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def new_key_id() -> str:
    return f"mk-{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(3)}"


_UUID = uuid.UUID
_AAD_PREFIXES: dict[tuple[str, str], bytes] = {}


def field_aad(table: str, column: str, account_id, row_id) -> bytes:
    """Associated data binding a ciphertext to its table, column and row.

    Ids enter as their 16 raw bytes, so a UUID from the database and the same
    id as text (a job argument) give identical AAD; this runs once per field on
    every read and write, so it avoids UUID.__str__, which costs more than AES.
    """
    prefix = _AAD_PREFIXES.get((table, column))
    if prefix is None:
        prefix = _AAD_PREFIXES[(table, column)] = f"{table}.{column}|".encode()
    if account_id.__class__ is not _UUID:
        account_id = _UUID(str(account_id))
    if row_id.__class__ is not _UUID:
        row_id = _UUID(str(row_id))
    return prefix + ((account_id.int << 128) | row_id.int).to_bytes(32)


def data_key_aad(account_id, key_id) -> bytes:
    return field_aad("data_keys", "wrapped", account_id, key_id)


class Keyring:
    """Master keys by key id, one of them current, plus the blind-index key.

    Loaded from a JSON file (single host; ``gateway up`` makes one) or from
    environment variables (platform secret stores). A file-backed keyring
    re-reads its file when asked for a key id it does not know, so running
    processes follow a ``gateway keys rotate`` without a restart.
    """

    def __init__(self, keys: dict[str, bytes], current: str, blind_index_key: bytes,
                 path: Path | None = None):
        if current not in keys:
            raise KeyringError(f"current master key id {current!r} is not among the keys "
                               f"({', '.join(sorted(keys)) or 'none'})")
        self._keys = dict(keys)
        self.current_kid = current
        self._blind_index_key = blind_index_key
        self.path = path
        self._ciphers: dict[str, AESGCM] = {}
        self._lock = threading.Lock()
        self._last_reload = 0.0
        self._last_check = time.monotonic()
        try:
            self._mtime = path.stat().st_mtime_ns if path is not None else None
        except OSError:
            self._mtime = None

    # -- construction ----------------------------------------------------
    @classmethod
    def generate(cls) -> "Keyring":
        kid = new_key_id()
        return cls({kid: os.urandom(KEY_BYTES)}, kid, os.urandom(KEY_BYTES))

    @classmethod
    def from_file(cls, path: Path | str) -> "Keyring":
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
            keys = {kid: _b64key(raw, f"{path}: key {kid}") for kid, raw in doc["keys"].items()}
            bik = _b64key(doc["blind_index_key"], f"{path}: blind_index_key")
            current = doc["current"]
        except OSError as exc:
            raise KeyringError(f"cannot read keyring file {path}: {exc.strerror}")
        except (ValueError, KeyError, AttributeError, TypeError):
            raise KeyringError(f"keyring file {path} is malformed: expected JSON with "
                               f"'current', 'keys' and 'blind_index_key'")
        return cls(keys, current, bik, path=path)

    @classmethod
    def from_env_values(cls, master_keys: str, current: str | None, blind_index_key: str) -> "Keyring":
        keys: dict[str, bytes] = {}
        order = []
        for item in master_keys.split(","):
            kid, sep, raw = item.strip().partition(":")
            if not sep or not kid:
                raise KeyringError("GATEWAY_MASTER_KEYS must be comma-separated kid:base64key pairs; "
                                   "e.g. GATEWAY_MASTER_KEYS=mk1:<base64 of 32 random bytes>")
            keys[kid] = _b64key(raw, f"GATEWAY_MASTER_KEYS key {kid}")
            order.append(kid)
        current = current or order[0]
        if current not in keys:
            raise KeyringError(f"GATEWAY_MASTER_KEY_ID={current} names no key in GATEWAY_MASTER_KEYS "
                               f"({', '.join(order)})")
        return cls(keys, current, _b64key(blind_index_key, "GATEWAY_BLIND_INDEX_KEY"))

    @classmethod
    def from_settings(cls, settings) -> "Keyring":
        if settings.keyring_file:
            return cls.from_file(settings.keyring_file)
        return cls.from_env_values(settings.master_keys or "", settings.master_key_id,
                                   settings.blind_index_key or "")

    def save(self, path: Path | str | None = None) -> Path:
        """Write the keyring atomically with owner-only permissions."""
        path = Path(path or self.path)
        doc = {"current": self.current_kid,
               "keys": {kid: base64.b64encode(k).decode() for kid, k in self._keys.items()},
               "blind_index_key": base64.b64encode(self._blind_index_key).decode()}
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self.path = path
        return path

    def with_new_current(self) -> "Keyring":
        """A copy with a freshly generated master key made current; old keys stay readable."""
        kid = new_key_id()
        while kid in self._keys:
            kid = new_key_id()
        keys = dict(self._keys)
        keys[kid] = os.urandom(KEY_BYTES)
        return Keyring(keys, kid, self._blind_index_key, path=self.path)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    # -- use -------------------------------------------------------------
    def _cipher(self, kid: str) -> AESGCM:
        cipher = self._ciphers.get(kid)
        if cipher is not None:
            return cipher
        if kid not in self._keys:
            self._reload()
        if kid not in self._keys:
            raise KeyringError(f"master key {kid!r} is not in the keyring; add it back "
                               f"(keys known: {', '.join(self.key_ids)})")
        cipher = self._ciphers[kid] = AESGCM(self._keys[kid])
        return cipher

    def derive(self, kid: str, info: bytes) -> bytes | None:
        """A 32-byte sub-key of master key ``kid`` for one purpose (``info``), e.g. signing media links; it
        rotates with the master keys. None when ``kid`` is not (or no longer) in the keyring."""
        if kid not in self._keys:
            self._reload()
        master = self._keys.get(kid)
        if master is None:
            return None
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)

    def _reload(self) -> None:
        if self.path is None or time.monotonic() - self._last_reload < 1.0:
            return
        with self._lock:
            self._last_reload = time.monotonic()
            try:
                fresh = Keyring.from_file(self.path)
            except KeyringError:
                return
            if fresh._blind_index_key != self._blind_index_key:
                # Changing it would orphan every blind index; refuse silently-breaking input.
                return
            self._keys.update(fresh._keys)
            self.current_kid = fresh.current_kid

    def _follow_file(self) -> None:
        """Pick up a rotation made by another process (cheap: one stat every few seconds)."""
        if self.path is None or time.monotonic() - self._last_check < 2.0:
            return
        self._last_check = time.monotonic()
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return
        if mtime != self._mtime:
            self._mtime = mtime
            self._last_reload = 0.0
            self._reload()

    def wrap(self, material: bytes, aad: bytes) -> tuple[str, bytes]:
        self._follow_file()
        kid = self.current_kid
        nonce = os.urandom(NONCE_BYTES)
        return kid, TOKEN_VERSION + nonce + self._cipher(kid).encrypt(nonce, material, aad)

    def unwrap(self, kid: str, blob: bytes, aad: bytes) -> bytes:
        blob = bytes(blob)
        if len(blob) < _MIN_TOKEN or blob[0] != 1:
            raise DecryptionError("unknown or truncated wrapped key")
        try:
            return self._cipher(kid).decrypt(blob[1:_HEADER], blob[_HEADER:], aad)
        except InvalidTag:
            raise DecryptionError("data key does not unwrap under its master key") from None

    def blind_indexer(self, account_id) -> "BlindIndexer":
        sub = hmac.new(self._blind_index_key, b"account|" + str(account_id).encode(),
                       hashlib.sha256).digest()
        return BlindIndexer(sub)


class BlindIndexer:
    """Keyed, deterministic digest of a normalised value for equality look-ups."""
    __slots__ = ("_key",)

    def __init__(self, key: bytes):
        self._key = key

    def __call__(self, kind: str, value: str) -> bytes:
        # The kind is mixed in so a phone number and a page-scoped id never collide.
        return hmac.digest(self._key, f"{kind}|{value}".encode(), "sha256")[:BLIND_INDEX_BYTES]


class DataKey:
    """An unwrapped data key; its AES-GCM context is built once and reused."""
    __slots__ = ("id", "_aead")

    def __init__(self, key_id: uuid.UUID, material: bytes):
        self.id = key_id
        self._aead = AESGCM(material)

    def encrypt(self, plaintext: bytes | str, aad: bytes) -> bytes:
        if plaintext.__class__ is str:
            plaintext = plaintext.encode()
        nonce = _urandom(NONCE_BYTES)
        return TOKEN_VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, token: bytes, aad: bytes) -> bytes:
        if len(token) < _MIN_TOKEN or token[0] != 1:
            raise DecryptionError("unknown or truncated ciphertext")
        try:
            return self._aead.decrypt(token[1:_HEADER], token[_HEADER:], aad)
        except InvalidTag:
            raise DecryptionError("ciphertext does not belong to this row or key") from None

    def decrypt_text(self, token: bytes | None, aad: bytes) -> str | None:
        if token is None:
            return None
        return self.decrypt(bytes(token), aad).decode()


def new_data_key_material() -> bytes:
    return os.urandom(KEY_BYTES)
