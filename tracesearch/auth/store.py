"""The keys of a process: the keys file, reloaded when it changes, and the keys it verified, cached.

Verifying a key costs one scrypt (tens of milliseconds, ``keys.verify``); a request must not. Each key
verified once is remembered by its SHA-256 (the cache holds digests, never keys) with the record and hash
it matched, so later requests cost one SHA-256 of the header and two dict look-ups. A reload drops
nothing valid and everything revoked: a cached key is honoured only while its record is still in the
file with the same hash. Keys that failed are remembered too (bounded), so a client retrying with a bad
key costs no scrypt after the first.

Like the sampling and alert-rules files, every process looks at the file's inode, size and modification
time at most once per reload interval, on a request (no thread). A file that becomes invalid keeps the
last good keys (logged once, naming the field); an invalid file at start stops the service
(``file_problem``, from gunicorn.conf.py; ``KeyStore`` raises too).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tracesearch.auth.keys import SCOPES, KeyRecord, KeysError, key_id_of, parse_document, verify

log = logging.getLogger(__name__)
_MAX_FAILED = 10_000


@dataclass(frozen=True)
class Identity:
    """Who a request is: the key's id, scopes and tenant. ``key_id`` None: authentication is off."""

    key_id: str | None
    scopes: frozenset[str]
    tenant: str | None = None

    def allows(self, scopes: frozenset[str]) -> bool:
        """Whether this identity holds one of ``scopes``."""
        return not self.scopes.isdisjoint(scopes)


# Authentication off: every request is this, with every scope and no tenant.
ANONYMOUS = Identity(None, frozenset(SCOPES))


@dataclass(frozen=True)
class _Stat:
    inode: int
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class _Loaded:
    records: Mapping[str, KeyRecord]
    identities: Mapping[str, Identity]
    stat: _Stat | None


def _stat(path: Path) -> _Stat | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return _Stat(found.st_ino, found.st_size, found.st_mtime_ns)


def read_records(path: str) -> dict[str, KeyRecord]:
    """The records of the file; ``KeysError`` naming the file and the field."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeysError(f"TRACESEARCH_AUTH_KEYS_FILE={path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return parse_document(data)
    except KeysError as exc:
        raise KeysError(f"TRACESEARCH_AUTH_KEYS_FILE={path}: {exc}") from None


def file_problem(path: str) -> str | None:
    """Why the keys file cannot be used (missing, unreadable, invalid), or None; checked once at start."""
    if not path:
        return None
    try:
        read_records(path)
    except KeysError as exc:
        return f"{exc} (create it with `tracesearch auth add-key`)"
    return None


def _identities(records: Mapping[str, KeyRecord]) -> dict[str, Identity]:
    return {key_id: Identity(key_id, record.scopes, record.tenant) for key_id, record in records.items()}


class KeyStore:
    def __init__(self, path: str, reload_interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self._interval = reload_interval_s
        self._clock = clock
        stat = _stat(self.path)
        records = read_records(path)  # raises: a bad file at start stops the service
        self._loaded = _Loaded(records, _identities(records), stat)
        self._next_check = clock() + reload_interval_s
        self._lock = threading.Lock()
        self._reported: str | None = None
        # sha256(key) -> (record id, the record's hash when the key was verified against it)
        self._verified: dict[bytes, tuple[str, str]] = {}
        self._failed: dict[bytes, Mapping[str, KeyRecord]] = {}
        log.info("auth: %d keys from %s", len(records), path)

    @property
    def records(self) -> Mapping[str, KeyRecord]:
        return self._loaded.records

    def authenticate(self, key: str) -> Identity | None:
        """The identity of ``key``, or None when it is not a valid key of the file (as of the last reload)."""
        if self._clock() >= self._next_check:
            self._maybe_reload()
        loaded = self._loaded
        digest = hashlib.sha256(key.encode()).digest()
        cached = self._verified.get(digest)
        if cached is not None:
            record = loaded.records.get(cached[0])
            if record is not None and record.hash == cached[1]:
                return loaded.identities[record.id]
            self._verified.pop(digest, None)  # revoked or re-hashed: verify it again below
        if self._failed.get(digest) is loaded.records:
            return None
        key_id = key_id_of(key)
        record = loaded.records.get(key_id) if key_id else None
        if record is None:
            return None  # no record to hash against: costs nothing
        if verify(key, record.hash):
            self._verified[digest] = (record.id, record.hash)
            return loaded.identities[record.id]
        if len(self._failed) >= _MAX_FAILED:
            self._failed.clear()
        self._failed[digest] = loaded.records
        return None

    def _maybe_reload(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another thread is looking: use the keys as they are
        try:
            self._next_check = self._clock() + self._interval
            stat = _stat(self.path)
            if stat == self._loaded.stat:
                return
            if stat is None:
                self._report(f"TRACESEARCH_AUTH_KEYS_FILE={self.path}: cannot read it; keeping the last good keys")
                return
            try:
                records = read_records(str(self.path))
            except KeysError as exc:
                self._report(f"{exc}; keeping the last good keys")
                return
            self._loaded = _Loaded(records, _identities(records), stat)
            self._reported = None
            self._verified = {
                digest: entry
                for digest, entry in self._verified.items()
                if entry[0] in records and records[entry[0]].hash == entry[1]
            }
            self._failed = {}
            log.info("auth: reloaded %d keys from %s", len(records), self.path)
        finally:
            self._lock.release()

    def _report(self, message: str) -> None:
        if message != self._reported:
            log.error("auth: %s", message)
            self._reported = message


def add_key(path: str, record: KeyRecord) -> None:
    """Append ``record`` to the file (created when absent), written atomically."""
    from tracesearch.auth.keys import dump_document
    from tracesearch.files import write_atomically

    target = Path(path)
    records = read_records(path) if target.exists() else {}
    if record.id in records:
        raise KeysError(f"id {record.id!r} is in {path} already: choose another --id or remove it first")
    records[record.id] = record
    existed = target.exists()
    write_atomically(target, dump_document(records))
    if not existed:
        os.chmod(target, 0o600)  # hashes only, but nobody else needs to read them
