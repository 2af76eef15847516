"""``tracesearch auth ...``: add, list and revoke API keys in the keys file (``TRACESEARCH_AUTH_KEYS_FILE``)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TextIO

from tracesearch.auth.keys import SCOPES, KeyRecord, KeysError, dump_document, hash_key, new_key, valid_tenant
from tracesearch.auth.store import add_key as append_record
from tracesearch.auth.store import read_records
from tracesearch.files import write_atomically


def add_key(
    path: str, scopes: str, tenant: str | None, description: str, key_id: str | None, out: TextIO, err: TextIO
) -> int:
    """Make a key, append its hash to the file, print the key once (on ``out``, alone: scripts read it)."""
    wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
    unknown = [scope for scope in wanted if scope not in SCOPES]
    if not wanted or unknown:
        print(f"auth add-key: --scopes: a comma-separated list of {', '.join(SCOPES)}", file=err)
        return 2
    if tenant is not None and not valid_tenant(tenant):
        print("auth add-key: --tenant: must match [a-z0-9][a-z0-9_-]{0,62}", file=err)
        return 2
    key_id = key_id or secrets.token_hex(4)
    try:
        key = new_key(key_id)
        append_record(path, KeyRecord(key_id, hash_key(key), frozenset(wanted), tenant, description))
    except (KeysError, OSError) as exc:
        print(f"auth add-key: {exc}", file=err)
        return 1
    print(key, file=out)
    print(
        f"key {key_id} ({','.join(sorted(wanted))}{f', tenant {tenant}' if tenant else ''}) added to {path}; "
        "it is shown only now: store it",
        file=err,
    )
    return 0


def list_keys(path: str, out: TextIO, err: TextIO) -> int:
    try:
        records = read_records(path)
    except KeysError as exc:
        print(f"auth list: {exc}", file=err)
        return 1
    for record in records.values():
        tenant = record.tenant or "-"
        print(f"{record.id}\t{','.join(sorted(record.scopes))}\t{tenant}\t{record.description}", file=out)
    return 0


def revoke(path: str, key_id: str, out: TextIO, err: TextIO) -> int:
    try:
        records = read_records(path)
    except KeysError as exc:
        print(f"auth revoke: {exc}", file=err)
        return 1
    if records.pop(key_id, None) is None:
        print(f"auth revoke: no key {key_id!r} in {path}", file=err)
        return 1
    write_atomically(Path(path), dump_document(records))
    print(
        f"key {key_id} removed from {path}; every process refuses it within TRACESEARCH_AUTH_RELOAD_INTERVAL", file=out
    )
    return 0
