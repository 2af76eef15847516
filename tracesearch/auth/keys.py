"""API keys and their records in the keys file (``TRACESEARCH_AUTH_KEYS_FILE``).

A key is ``tsk_<id>_<secret>``: the id names its record (so a request costs one hash of one record, never
a try of every record), the secret is 32 random bytes, base64url. The file holds only a salted scrypt hash
of the whole key (``scrypt$<n>$<r>$<p>$<salt>$<hash>``, base64url): a leaked file gives no key. The keys
are random, so a slow hash is more than they need; scrypt is there so that a key a person typed (or a
future shorter key) is safe too, and its cost is paid once per key per process (``store.KeyStore``
caches what it verified).

The file (YAML, read with ``safe_load``; JSON is valid YAML, so a JSON file loads too)::

    keys:
      - id: grafana                        # [a-z0-9][a-z0-9-]{0,62}, unique
        hash: scrypt$16384$8$1$...$...
        scopes: [read]                     # ingest, read, admin
        tenant: team-a                     # optional: [a-z0-9][a-z0-9_-]{0,62} (it becomes part of index names)
        description: Grafana data sources  # optional
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from tracesearch import tenancy

INGEST = "ingest"
READ = "read"
ADMIN = "admin"
SCOPES = (INGEST, READ, ADMIN)

PREFIX = "tsk"
KEY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
TENANT = tenancy.NAME
_SECRET_BYTES = 32
_SALT_BYTES = 16
# scrypt at n=2**14, r=8, p=1 (16 MiB, the parameters OWASP lists for scrypt): ~30-60 ms per verification,
# paid once per key per process.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_DKLEN = 32
_FIELDS = {"id", "hash", "scopes", "tenant", "description"}


class KeysError(ValueError):
    """The keys file cannot be used; the message names the record and field (never a key or a hash)."""


@dataclass(frozen=True)
class KeyRecord:
    id: str
    hash: str
    scopes: frozenset[str]
    tenant: str | None = None
    description: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


valid_tenant = tenancy.valid_tenant


def new_key(key_id: str) -> str:
    """A new key for the record ``key_id``: shown once, stored only as ``hash_key(key)``."""
    if not KEY_ID.fullmatch(key_id):
        raise KeysError(f"id {key_id!r}: use lowercase letters, digits and '-', starting with a letter or digit")
    return f"{PREFIX}_{key_id}_{_b64(secrets.token_bytes(_SECRET_BYTES))}"


def key_id_of(key: str) -> str | None:
    """The record id a key names, or None when it is not shaped like one of ours."""
    prefix, sep, rest = key.partition("_")
    if prefix != PREFIX or not sep:
        return None
    key_id, sep, secret = rest.partition("_")
    if not sep or not secret or not KEY_ID.fullmatch(key_id):
        return None
    return key_id


def hash_key(key: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.scrypt(key.encode(), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=_maxmem(n, r, p))
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def _maxmem(n: int, r: int, p: int) -> int:
    return 128 * r * (n + p + 2) + 1024 * 1024


def _parse_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("not scrypt$n$r$p$salt$hash")
    n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
    if n < 2 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16 or n > 2**20:
        raise ValueError("scrypt parameters out of range")
    salt, digest = _unb64(parts[4]), _unb64(parts[5])
    if len(salt) < 8 or len(digest) < 16:
        raise ValueError("salt or hash too short")
    return n, r, p, salt, digest


def verify(key: str, stored: str) -> bool:
    """Whether ``key`` is the key ``stored`` (a ``hash_key`` result) was made from; constant-time compare."""
    n, r, p, salt, digest = _parse_hash(stored)
    candidate = hashlib.scrypt(key.encode(), salt=salt, n=n, r=r, p=p, dklen=len(digest), maxmem=_maxmem(n, r, p))
    return hmac.compare_digest(candidate, digest)


def parse_document(data: bytes) -> dict[str, KeyRecord]:
    """The records of a keys file by id; ``KeysError`` naming ``keys[i].field`` for anything wrong."""
    try:
        document = yaml.safe_load(data) if data.strip() else {"keys": []}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise KeysError(f"not valid YAML or JSON{where}") from None
    if not isinstance(document, Mapping) or set(document) - {"keys"}:
        raise KeysError("the file must be a mapping with one field, keys: a list of key records")
    items = document.get("keys")
    items = [] if items is None else items
    if not isinstance(items, list):
        raise KeysError("keys: must be a list of key records")
    records: dict[str, KeyRecord] = {}
    for index, item in enumerate(items):
        record = _record(item, f"keys[{index}]")
        if record.id in records:
            raise KeysError(f"keys[{index}].id: {record.id!r} is listed twice")
        records[record.id] = record
    return records


def _record(item: Any, where: str) -> KeyRecord:
    if not isinstance(item, Mapping):
        raise KeysError(f"{where}: must be a mapping with id, hash, scopes")
    unknown = sorted(str(name) for name in set(item) - _FIELDS)
    if unknown:
        raise KeysError(f"{where}.{unknown[0]}: unknown field (known: {', '.join(sorted(_FIELDS))})")
    key_id = item.get("id")
    if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
        raise KeysError(
            f"{where}.id: must be lowercase letters, digits and '-', 1 to 63, starting with a letter or digit"
        )
    stored = item.get("hash")
    if not isinstance(stored, str):
        raise KeysError(f"{where}.hash: required, as written by `tracesearch auth add-key`")
    try:
        _parse_hash(stored)
    except (ValueError, TypeError):
        raise KeysError(
            f"{where}.hash: not a hash written by `tracesearch auth add-key` (scrypt$n$r$p$salt$hash)"
        ) from None
    scopes = item.get("scopes")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise KeysError(f"{where}.scopes: a non-empty list of {', '.join(SCOPES)}")
    for scope in scopes:
        if scope not in SCOPES:
            raise KeysError(f"{where}.scopes: unknown scope {scope!r} (known: {', '.join(SCOPES)})")
    tenant = item.get("tenant")
    if tenant is not None and (not isinstance(tenant, str) or not valid_tenant(tenant)):
        raise KeysError(
            f"{where}.tenant: must match [a-z0-9][a-z0-9_-]{{0,62}} (lowercase; it becomes part of index names)"
        )
    description = item.get("description", "")
    if not isinstance(description, str):
        raise KeysError(f"{where}.description: must be text")
    return KeyRecord(key_id, stored, frozenset(scopes), tenant, description)


def dump_document(records: Mapping[str, KeyRecord]) -> bytes:
    """The file for ``records``, as YAML (comments of a hand-written file are not kept)."""
    items: list[dict[str, Any]] = []
    for record in records.values():
        item: dict[str, Any] = {"id": record.id, "hash": record.hash, "scopes": sorted(record.scopes)}
        if record.tenant is not None:
            item["tenant"] = record.tenant
        if record.description:
            item["description"] = record.description
        items.append(item)
    text: str = yaml.safe_dump({"keys": items}, sort_keys=False, allow_unicode=True)
    return text.encode()
