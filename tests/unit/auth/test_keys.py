"""API keys: hashing, the keys file's validation, the store's cache and reloads (fake clock)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from tracesearch.auth import keys
from tracesearch.auth.keys import KeyRecord, KeysError, hash_key, key_id_of, new_key, parse_document, verify
from tracesearch.auth.store import KeyStore, add_key, file_problem

# Cheap scrypt for tests that hash many keys; the store verifies whatever parameters a hash names.
FAST = {"n": 2**4, "r": 1, "p": 1}


def record(key: str, scopes: set[str], tenant: str | None = None, **cost: int) -> KeyRecord:
    key_id = key_id_of(key)
    assert key_id is not None
    return KeyRecord(key_id, hash_key(key, **(cost or FAST)), frozenset(scopes), tenant)


def test_a_key_names_its_record_and_verifies_against_its_hash_only() -> None:
    key = new_key("grafana")
    assert key.startswith("tsk_grafana_") and len(key) > 50
    assert key_id_of(key) == "grafana"
    stored = hash_key(key)
    assert stored.startswith("scrypt$16384$8$1$") and key not in stored
    assert verify(key, stored)
    assert not verify(key + "x", stored)
    assert not verify(new_key("grafana"), stored)
    assert hash_key(key) != stored  # salted


def test_the_default_scrypt_cost_is_slow_enough_and_measured() -> None:
    key = new_key("cost")
    stored = hash_key(key)
    started = time.perf_counter()
    assert verify(key, stored)
    elapsed = time.perf_counter() - started
    assert 0.005 < elapsed < 2.0, elapsed  # ~30-60 ms here: paid once per key per process


@pytest.mark.parametrize("text", ["", "Bearer", "tsk", "tsk_", "tsk_id", "tsk_id_", "abc_id_secret", "tsk_Bad_x"])
def test_strings_not_shaped_like_a_key_name_no_record(text: str) -> None:
    assert key_id_of(text) is None


def test_the_file_is_parsed_with_tenants_and_descriptions() -> None:
    key = new_key("a")
    data = f"""
keys:
  - id: a            # a comment
    hash: {hash_key(key, **FAST)}
    scopes: [ingest, read]
    tenant: team_a-1
    description: Grafana
""".encode()
    records = parse_document(data)
    assert records["a"].scopes == {"ingest", "read"} and records["a"].tenant == "team_a-1"
    assert records["a"].description == "Grafana"
    assert parse_document(b"") == {} and parse_document(b"keys: []") == {}
    assert parse_document(keys.dump_document(records)) == records


GOOD_HASH = hash_key("tsk_x_y", **FAST)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("keys: {}", "keys: must be a list"),
        ("[]", "must be a mapping with one field"),
        ("other: 1", "must be a mapping with one field"),
        ("keys: [1]", "keys[0]: must be a mapping"),
        (f"keys: [{{id: A, hash: '{GOOD_HASH}', scopes: [read]}}]", "keys[0].id"),
        ("keys: [{id: a, hash: sha256$x, scopes: [read]}]", "keys[0].hash: not a hash"),
        ("keys: [{id: a, scopes: [read]}]", "keys[0].hash: required"),
        (f"keys: [{{id: a, hash: '{GOOD_HASH}', scopes: []}}]", "keys[0].scopes"),
        (f"keys: [{{id: a, hash: '{GOOD_HASH}', scopes: [write]}}]", "unknown scope 'write'"),
        (f"keys: [{{id: a, hash: '{GOOD_HASH}', scopes: [read], tenant: Team}}]", "keys[0].tenant"),
        (f"keys: [{{id: a, hash: '{GOOD_HASH}', scopes: [read], tenant: -a}}]", "keys[0].tenant"),
        (f"keys: [{{id: a, hash: '{GOOD_HASH}', scopes: [read], tenant: '{'a' * 64}'}}]", "keys[0].tenant"),
        (f"keys: [{{id: a, hash: '{GOOD_HASH}', scopes: [read], tenant: 'a.b'}}]", "keys[0].tenant"),
        (f"keys: [{{id: a, hash: '{GOOD_HASH}', scopes: [read], owner: me}}]", "keys[0].owner: unknown field"),
        (
            f"keys: [{{id: a, hash: '{GOOD_HASH}', scopes: [read]}}, {{id: a, hash: '{GOOD_HASH}', scopes: [read]}}]",
            "keys[1].id: 'a' is listed twice",
        ),
        ("keys: [", "not valid YAML or JSON"),
    ],
)
def test_a_bad_file_is_refused_naming_the_field_and_never_the_hash(document: str, message: str) -> None:
    with pytest.raises(KeysError, match=None) as caught:
        parse_document(document.encode())
    assert message in str(caught.value)
    assert GOOD_HASH not in str(caught.value)


def test_tenants_are_index_name_safe() -> None:
    for good in ("a", "team-a", "t_1", "0", "a" * 63):
        assert keys.valid_tenant(good)
    for bad in ("", "A", "-a", "_a", "a b", "a/b", "a*", "a" * 64, "é"):
        assert not keys.valid_tenant(bad)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, *records: KeyRecord) -> None:
    path.write_bytes(keys.dump_document({r.id: r for r in records}))
    # A distinct mtime even on coarse file systems: the store compares inode, size and mtime.
    os.utime(path, ns=(time.time_ns(), time.time_ns() + int(path.stat().st_size) * 1000))


def test_the_store_caches_verified_keys_by_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keys.yaml"
    key = new_key("a")
    write(path, record(key, {"read"}, "team-a"))
    store = KeyStore(str(path), 5.0, Clock())
    calls: list[str] = []
    real_verify = verify

    def counting_verify(key: str, stored: str) -> bool:
        calls.append(key)
        return real_verify(key, stored)

    monkeypatch.setattr("tracesearch.auth.store.verify", counting_verify)
    first = store.authenticate(key)
    assert first is not None and first.key_id == "a" and first.scopes == {"read"} and first.tenant == "team-a"
    for _ in range(100):
        assert store.authenticate(key) == first
    assert len(calls) == 1  # one scrypt, then dict look-ups
    assert key not in repr(store.__dict__)  # digests only
    assert hashlib.sha256(key.encode()).digest() in store._verified
    # a wrong secret for a known id: one scrypt, then remembered as failed
    wrong = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
    assert store.authenticate(wrong) is None and store.authenticate(wrong) is None
    assert len(calls) == 2
    # an unknown id or a foreign string: no scrypt at all
    assert store.authenticate(new_key("nobody")) is None and store.authenticate("hunter2") is None
    assert len(calls) == 2


def test_a_revoked_key_stops_within_the_reload_interval(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    clock = Clock()
    kept, revoked = new_key("kept"), new_key("gone")
    write(path, record(kept, {"read"}), record(revoked, {"ingest"}))
    store = KeyStore(str(path), 5.0, clock)
    assert store.authenticate(kept) and store.authenticate(revoked)
    write(path, store.records["kept"])  # "gone" removed, "kept" as it was
    clock.now += 4.9
    assert store.authenticate(revoked) is not None  # not looked at yet: the interval bounds the delay
    clock.now += 0.2
    assert store.authenticate(revoked) is None
    assert store.authenticate(kept) is not None  # still cached: same record, same hash
    assert store.authenticate(revoked) is None


def test_a_rotated_key_replaces_the_old_one_under_the_same_id(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    clock = Clock()
    old = new_key("svc")
    write(path, record(old, {"ingest"}))
    store = KeyStore(str(path), 1.0, clock)
    assert store.authenticate(old)
    new = new_key("svc")
    write(path, record(new, {"ingest", "read"}))
    clock.now += 1
    assert store.authenticate(old) is None
    found = store.authenticate(new)
    assert found is not None and found.scopes == {"ingest", "read"}


def test_a_bad_file_keeps_the_last_good_keys_and_a_bad_start_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.yaml"
    clock = Clock()
    key = new_key("a")
    write(path, record(key, {"read"}))
    store = KeyStore(str(path), 1.0, clock)
    path.write_text("keys: [{id: a, scopes: [nope]}]\n")
    clock.now += 1
    assert store.authenticate(key) is not None
    assert "keys[0].hash" in caplog.text and key not in caplog.text
    path.unlink()
    clock.now += 1
    assert store.authenticate(key) is not None  # a deleted file revokes nothing: empty the list instead
    assert file_problem(str(path)) is not None and "cannot read" in str(file_problem(str(path)))
    path.write_text("keys: 3")
    with pytest.raises(KeysError, match="keys: must be a list"):
        KeyStore(str(path), 1.0, clock)
    assert file_problem("") is None


def test_add_key_appends_and_refuses_a_duplicate_id(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    first, second = new_key("one"), new_key("two")
    add_key(str(path), record(first, {"read"}))
    add_key(str(path), record(second, {"admin"}, "t"))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    store = KeyStore(str(path), 1.0, Clock())
    assert set(store.records) == {"one", "two"}
    with pytest.raises(KeysError, match="'one' is in"):
        add_key(str(path), record(new_key("one"), {"read"}))
    assert first not in path.read_text() and second not in path.read_text()
