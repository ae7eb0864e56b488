"""Unit tests for gateway.crypto: envelope encryption, keyrings, blind indexes.

Pure in-process tests: no database, no network.
"""
from __future__ import annotations

import base64
import json
import os
import stat
import sys
import uuid
from pathlib import Path

import pytest

from gateway.crypto import (  # noqa: E402
    BLIND_INDEX_BYTES,
    TOKEN_VERSION,
    DataKey,
    DecryptionError,
    Keyring,
    KeyringError,
    data_key_aad,
    field_aad,
    new_data_key_material,
)

ACCOUNT_A = uuid.UUID("00000000-0000-0000-0000-00000000000a")
ACCOUNT_B = uuid.UUID("00000000-0000-0000-0000-00000000000b")
ROW_A = uuid.UUID("11111111-1111-1111-1111-111111111111")
ROW_B = uuid.UUID("22222222-2222-2222-2222-222222222222")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def data_key() -> DataKey:
    return DataKey(uuid.uuid4(), new_data_key_material())


# -- field ciphertexts -----------------------------------------------------

def test_field_round_trip(data_key):
    aad = field_aad("messages", "body", ACCOUNT_A, ROW_A)
    token = data_key.encrypt("Olá, 👋 meet at 5?", aad)
    assert isinstance(token, bytes)
    assert token[:1] == TOKEN_VERSION
    assert data_key.decrypt(token, aad) == "Olá, 👋 meet at 5?".encode()
    assert data_key.decrypt_text(token, aad) == "Olá, 👋 meet at 5?"


def test_bytes_plaintext_and_buffer_tokens(data_key):
    aad = field_aad("contacts", "phone", ACCOUNT_A, ROW_A)
    token = data_key.encrypt(b"+15551234567", aad)
    # Database drivers may hand back memoryview / bytearray.
    assert data_key.decrypt(memoryview(token), aad) == b"+15551234567"
    assert data_key.decrypt_text(bytearray(token), aad) == "+15551234567"
    assert data_key.decrypt_text(None, aad) is None


def test_empty_plaintext_round_trip(data_key):
    aad = field_aad("messages", "body", ACCOUNT_A, ROW_A)
    assert data_key.decrypt_text(data_key.encrypt("", aad), aad) == ""


def test_field_aad_binds_table_column_account_and_row():
    base = field_aad("messages", "body", ACCOUNT_A, ROW_A)
    assert isinstance(base, bytes)
    assert base == field_aad("messages", "body", ACCOUNT_A, ROW_A)
    others = {
        field_aad("messages", "body", ACCOUNT_A, ROW_B),
        field_aad("messages", "caption", ACCOUNT_A, ROW_A),
        field_aad("contacts", "body", ACCOUNT_A, ROW_A),
        field_aad("messages", "body", ACCOUNT_B, ROW_A),
    }
    assert base not in others and len(others) == 4


def test_ciphertext_does_not_decrypt_on_another_row(data_key):
    token = data_key.encrypt("secret", field_aad("messages", "body", ACCOUNT_A, ROW_A))
    with pytest.raises(DecryptionError):
        data_key.decrypt(token, field_aad("messages", "body", ACCOUNT_A, ROW_B))


def test_ciphertext_does_not_decrypt_in_another_column(data_key):
    token = data_key.encrypt("secret", field_aad("messages", "body", ACCOUNT_A, ROW_A))
    with pytest.raises(DecryptionError):
        data_key.decrypt(token, field_aad("messages", "caption", ACCOUNT_A, ROW_A))
    with pytest.raises(DecryptionError):
        data_key.decrypt(token, field_aad("contacts", "body", ACCOUNT_A, ROW_A))


def test_ciphertext_does_not_decrypt_for_another_account(data_key):
    token = data_key.encrypt("secret", field_aad("messages", "body", ACCOUNT_A, ROW_A))
    with pytest.raises(DecryptionError):
        data_key.decrypt(token, field_aad("messages", "body", ACCOUNT_B, ROW_A))


def test_ciphertext_does_not_decrypt_under_another_data_key(data_key):
    aad = field_aad("messages", "body", ACCOUNT_A, ROW_A)
    token = data_key.encrypt("secret", aad)
    other = DataKey(uuid.uuid4(), new_data_key_material())
    with pytest.raises(DecryptionError):
        other.decrypt(token, aad)


@pytest.mark.parametrize("position", [1, 5, 12, 13, 20, -1])
def test_tampered_ciphertext_fails(data_key, position):
    aad = field_aad("messages", "body", ACCOUNT_A, ROW_A)
    token = bytearray(data_key.encrypt("hello there", aad))
    token[position] ^= 0x01
    with pytest.raises(DecryptionError):
        data_key.decrypt(bytes(token), aad)


def test_unknown_version_byte_fails(data_key):
    aad = field_aad("messages", "body", ACCOUNT_A, ROW_A)
    token = data_key.encrypt("hello", aad)
    for version in (b"\x00", b"\x02", b"\xff"):
        with pytest.raises(DecryptionError):
            data_key.decrypt(version + token[1:], aad)
    with pytest.raises(DecryptionError):
        data_key.decrypt(b"", aad)


def test_truncated_token_with_full_header_fails(data_key):
    aad = field_aad("messages", "body", ACCOUNT_A, ROW_A)
    token = data_key.encrypt("hello", aad)
    for cut in (13, 20, len(token) - 1):
        with pytest.raises(DecryptionError):
            data_key.decrypt(token[:cut], aad)


def test_very_short_token_fails_with_decryption_error(data_key):
    aad = field_aad("messages", "body", ACCOUNT_A, ROW_A)
    token = data_key.encrypt("hello", aad)
    with pytest.raises(DecryptionError):
        data_key.decrypt(token[:5], aad)
    keyring = Keyring.generate()
    kaad = data_key_aad(ACCOUNT_A, uuid.uuid4())
    kid, blob = keyring.wrap(new_data_key_material(), kaad)
    with pytest.raises(DecryptionError):
        keyring.unwrap(kid, blob[:5], kaad)


def test_same_plaintext_encrypts_differently(data_key):
    aad = field_aad("messages", "body", ACCOUNT_A, ROW_A)
    first = data_key.encrypt("same value", aad)
    second = data_key.encrypt("same value", aad)
    assert first != second
    assert first[1:13] != second[1:13]  # distinct nonces
    assert data_key.decrypt(first, aad) == data_key.decrypt(second, aad) == b"same value"


def test_ciphertext_does_not_contain_plaintext(data_key):
    aad = field_aad("messages", "body", ACCOUNT_A, ROW_A)
    token = data_key.encrypt("a very recognisable message body", aad)
    assert b"recognisable" not in token


# -- master keys: wrap / unwrap / rotation ---------------------------------

def test_wrap_unwrap_round_trip():
    keyring = Keyring.generate()
    material = new_data_key_material()
    key_id = uuid.uuid4()
    aad = data_key_aad(ACCOUNT_A, key_id)
    kid, blob = keyring.wrap(material, aad)
    assert kid == keyring.current_kid
    assert material not in blob
    assert keyring.unwrap(kid, blob, aad) == material
    assert keyring.unwrap(kid, memoryview(blob), aad) == material
    # The unwrapped material is a working data key.
    dk = DataKey(key_id, keyring.unwrap(kid, blob, aad))
    faad = field_aad("messages", "body", ACCOUNT_A, ROW_A)
    assert DataKey(key_id, material).decrypt(dk.encrypt("x", faad), faad) == b"x"


def test_unwrap_with_wrong_aad_fails():
    keyring = Keyring.generate()
    key_id = uuid.uuid4()
    kid, blob = keyring.wrap(new_data_key_material(), data_key_aad(ACCOUNT_A, key_id))
    with pytest.raises(DecryptionError):
        keyring.unwrap(kid, blob, data_key_aad(ACCOUNT_B, key_id))
    with pytest.raises(DecryptionError):
        keyring.unwrap(kid, blob, data_key_aad(ACCOUNT_A, uuid.uuid4()))


def test_unwrap_tampered_or_unknown_version_fails():
    keyring = Keyring.generate()
    aad = data_key_aad(ACCOUNT_A, uuid.uuid4())
    kid, blob = keyring.wrap(new_data_key_material(), aad)
    tampered = bytearray(blob)
    tampered[-3] ^= 0x80
    with pytest.raises(DecryptionError):
        keyring.unwrap(kid, bytes(tampered), aad)
    with pytest.raises(DecryptionError):
        keyring.unwrap(kid, b"\x02" + blob[1:], aad)


def test_unwrap_under_another_keyring_fails():
    aad = data_key_aad(ACCOUNT_A, uuid.uuid4())
    first = Keyring.generate()
    kid, blob = first.wrap(new_data_key_material(), aad)
    impostor = Keyring({kid: os.urandom(32)}, kid, os.urandom(32))
    with pytest.raises(DecryptionError):
        impostor.unwrap(kid, blob, aad)


def test_unknown_kid_raises_keyring_error():
    keyring = Keyring.generate()
    aad = data_key_aad(ACCOUNT_A, uuid.uuid4())
    _, blob = keyring.wrap(new_data_key_material(), aad)
    with pytest.raises(KeyringError, match="mk-missing"):
        keyring.unwrap("mk-missing", blob, aad)


def test_rotation_keeps_old_keys_and_wraps_under_new():
    old = Keyring.generate()
    aad = data_key_aad(ACCOUNT_A, uuid.uuid4())
    material = new_data_key_material()
    old_kid, old_blob = old.wrap(material, aad)

    rotated = old.with_new_current()
    assert rotated.current_kid != old.current_kid
    assert set(rotated.key_ids) == {old_kid, rotated.current_kid}
    assert old.key_ids == [old_kid]  # the original is not mutated
    assert rotated.unwrap(old_kid, old_blob, aad) == material

    new_kid, new_blob = rotated.wrap(material, aad)
    assert new_kid == rotated.current_kid != old_kid
    assert rotated.unwrap(new_kid, new_blob, aad) == material
    # The old (non file-backed) keyring does not know the new key.
    with pytest.raises(KeyringError):
        old.unwrap(new_kid, new_blob, aad)
    # Blind indexes survive rotation.
    assert (rotated.blind_indexer(ACCOUNT_A)("phone", "+15551234567")
            == old.blind_indexer(ACCOUNT_A)("phone", "+15551234567"))


def test_constructor_rejects_unknown_current():
    with pytest.raises(KeyringError, match="nope"):
        Keyring({"mk1": os.urandom(32)}, "nope", os.urandom(32))


# -- file-backed keyring ---------------------------------------------------

def test_file_keyring_round_trip_and_permissions(tmp_path):
    original = Keyring.generate().with_new_current()
    path = tmp_path / "keyring.json"
    assert original.save(path) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "keyring.json.tmp").exists()

    loaded = Keyring.from_file(path)
    assert loaded.current_kid == original.current_kid
    assert loaded.key_ids == original.key_ids
    assert loaded.path == path
    aad = data_key_aad(ACCOUNT_A, uuid.uuid4())
    material = new_data_key_material()
    for kid in original.key_ids:
        blob = Keyring({kid: original._keys[kid]}, kid, b"\0" * 32).wrap(material, aad)[1]
        assert loaded.unwrap(kid, blob, aad) == material
    assert (loaded.blind_indexer(ACCOUNT_A)("phone", "+1555")
            == original.blind_indexer(ACCOUNT_A)("phone", "+1555"))


def test_save_overwrite_keeps_owner_only_mode(tmp_path):
    path = tmp_path / "keyring.json"
    path.write_text("{}")
    path.chmod(0o644)
    Keyring.generate().save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_file_keyring_picks_up_key_added_later(tmp_path):
    path = tmp_path / "keyring.json"
    Keyring.generate().save(path)
    old = Keyring.from_file(path)           # a running process
    first_kid = old.current_kid

    writer = Keyring.from_file(path).with_new_current()   # `gateway keys rotate`
    writer.save(path)
    aad = data_key_aad(ACCOUNT_A, uuid.uuid4())
    material = new_data_key_material()
    new_kid, blob = writer.wrap(material, aad)
    assert new_kid != first_kid

    old._last_reload = 0.0  # defeat the once-per-second reload throttle
    assert old.unwrap(new_kid, blob, aad) == material
    assert old.current_kid == new_kid
    assert set(old.key_ids) == {first_kid, new_kid}


def test_file_keyring_refuses_reload_with_changed_blind_index_key(tmp_path):
    path = tmp_path / "keyring.json"
    Keyring.generate().save(path)
    old = Keyring.from_file(path)
    stranger = Keyring.generate()
    stranger.save(path)
    aad = data_key_aad(ACCOUNT_A, uuid.uuid4())
    kid, blob = stranger.wrap(new_data_key_material(), aad)
    old._last_reload = 0.0
    with pytest.raises(KeyringError):
        old.unwrap(kid, blob, aad)


def test_from_file_errors(tmp_path):
    with pytest.raises(KeyringError, match="cannot read"):
        Keyring.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    with pytest.raises(KeyringError, match="malformed"):
        Keyring.from_file(bad)
    bad.write_text(json.dumps({"current": "k", "keys": {}}))
    with pytest.raises(KeyringError, match="malformed"):
        Keyring.from_file(bad)
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"current": "k", "keys": {"k": _b64(os.urandom(16))},
                                 "blind_index_key": _b64(os.urandom(32))}))
    with pytest.raises(KeyringError, match="32 bytes"):
        Keyring.from_file(short)


# -- environment keyring ---------------------------------------------------

def test_from_env_values_parses_pairs_and_defaults_current_to_first():
    k1, k2, bik = os.urandom(32), os.urandom(32), os.urandom(32)
    value = f"kid1:{_b64(k1)}, kid2:{_b64(k2)}"
    keyring = Keyring.from_env_values(value, None, _b64(bik))
    assert keyring.current_kid == "kid1"
    assert keyring.key_ids == ["kid1", "kid2"]
    assert keyring.path is None
    assert Keyring.from_env_values(value, "", _b64(bik)).current_kid == "kid1"

    chosen = Keyring.from_env_values(value, "kid2", _b64(bik))
    assert chosen.current_kid == "kid2"
    aad = data_key_aad(ACCOUNT_A, uuid.uuid4())
    material = new_data_key_material()
    kid, blob = chosen.wrap(material, aad)
    assert kid == "kid2"
    # Same key material from the same env values: another process can unwrap.
    assert Keyring.from_env_values(value, None, _b64(bik)).unwrap(kid, blob, aad) == material


@pytest.mark.parametrize("master_keys", [
    "kid1",                              # no colon
    "",                                  # nothing at all
    ":{good}",                           # empty key id
    "kid1:{good},kid2",                  # second item without colon
])
def test_from_env_values_rejects_malformed_pairs(master_keys):
    good = _b64(os.urandom(32))
    with pytest.raises(KeyringError, match="GATEWAY_MASTER_KEYS"):
        Keyring.from_env_values(master_keys.format(good=good), None, good)


@pytest.mark.parametrize("raw", ["not base64!!", "abc", _b64(os.urandom(16)), _b64(os.urandom(64))])
def test_from_env_values_rejects_bad_master_key(raw):
    with pytest.raises(KeyringError, match="GATEWAY_MASTER_KEYS") as exc:
        Keyring.from_env_values(f"kid1:{raw}", None, _b64(os.urandom(32)))
    assert "GATEWAY_BLIND_INDEX_KEY" not in str(exc.value)


def test_from_env_values_rejects_16_byte_key_with_length_message():
    with pytest.raises(KeyringError, match=r"GATEWAY_MASTER_KEYS.*32 bytes, got 16"):
        Keyring.from_env_values(f"kid1:{_b64(os.urandom(16))}", None, _b64(os.urandom(32)))


def test_from_env_values_rejects_unknown_current():
    good = _b64(os.urandom(32))
    with pytest.raises(KeyringError, match="GATEWAY_MASTER_KEY_ID") as exc:
        Keyring.from_env_values(f"kid1:{good}", "kid9", good)
    assert "kid9" in str(exc.value)


@pytest.mark.parametrize("bik", ["", "not base64!!", _b64(os.urandom(16))])
def test_from_env_values_rejects_bad_blind_index_key(bik):
    good = _b64(os.urandom(32))
    with pytest.raises(KeyringError, match="GATEWAY_BLIND_INDEX_KEY"):
        Keyring.from_env_values(f"kid1:{good}", None, bik)


def test_keyring_error_does_not_leak_key_material():
    secret = _b64(os.urandom(16))
    with pytest.raises(KeyringError) as exc:
        Keyring.from_env_values(f"kid1:{secret}", None, _b64(os.urandom(32)))
    assert secret not in str(exc.value)


# -- blind index -----------------------------------------------------------

def test_blind_index_properties():
    keyring = Keyring.generate()
    index_a = keyring.blind_indexer(ACCOUNT_A)
    value = "+15551234567"
    digest = index_a("phone", value)
    assert isinstance(digest, bytes)
    assert len(digest) == BLIND_INDEX_BYTES == 16
    # Deterministic, also across indexer instances and str/UUID account ids.
    assert index_a("phone", value) == digest
    assert keyring.blind_indexer(ACCOUNT_A)("phone", value) == digest
    assert keyring.blind_indexer(str(ACCOUNT_A))("phone", value) == digest
    # Differs per account, per kind and per value.
    assert keyring.blind_indexer(ACCOUNT_B)("phone", value) != digest
    assert index_a("psid", value) != digest
    assert index_a("phone", "+15551234568") != digest
    # Does not reveal the clear value.
    assert value.encode() not in digest
    assert b"5551234567" not in digest
    assert value.encode().hex().encode() not in digest.hex().encode()


def test_blind_index_depends_on_the_blind_index_key():
    kid = "mk1"
    master = os.urandom(32)
    one = Keyring({kid: master}, kid, os.urandom(32))
    two = Keyring({kid: master}, kid, os.urandom(32))
    assert (one.blind_indexer(ACCOUNT_A)("phone", "+1555")
            != two.blind_indexer(ACCOUNT_A)("phone", "+1555"))
