"""SamplingStore on Elasticsearch: two documents in ``<prefix>-sampling``, the lease and the output.

Both are written with optimistic concurrency: a first write with ``op_type=create``, every later one
with ``if_seq_no``/``if_primary_term`` of the version read, so of two processes writing from the same
version exactly one succeeds (the other gets 409) — the lease is taken by one process, and an output is
computed from the output before it, never from a stale one. Reads are ``GET`` by id, which is real time
(no refresh to wait for). Expiry is judged on the caller's clock: hosts' clocks must agree to well
within the lease's length (the runner uses three intervals).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from elasticsearch import Elasticsearch

from tracesearch.storage.contracts import OperationSampling, SamplingState, StateVersion
from tracesearch.storage.es.versioned import create_index, get_versioned, unless_conflict, write_versioned

LEASE_ID = "adaptive-lease"
STATE_ID = "adaptive-state"
MS_PER_S = 1000.0

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "holder": {"type": "keyword"},
        "expires_at_ms": {"type": "long"},
        "window_end_ms": {"type": "long"},
        "computed_at_ms": {"type": "long"},
        # Read whole by id, never searched.
        "operations": {"type": "object", "enabled": False},
    },
}


def sampling_index(prefix: str) -> str:
    # Not a daily name, so the retention (exactly <prefix>-<family>-YYYY-MM-DD) never deletes it.
    return f"{prefix}-sampling"


class EsSamplingStore:
    def __init__(
        self, client: Elasticsearch, index_prefix: str, replicas: int = 1, clock: Callable[[], float] = time.time
    ):
        self._client = client
        self._index = sampling_index(index_prefix)
        self._replicas = replicas
        self._clock = clock
        self._created = False

    # -- the lease

    def acquire_lease(self, holder: str, ttl_s: float) -> bool:
        self._ensure_index()
        now = self._clock()
        document = {"holder": holder, "expires_at_ms": round((now + ttl_s) * MS_PER_S)}
        found, version = self._get(LEASE_ID)
        if found is None:
            return self._write(LEASE_ID, document, None)
        if found["holder"] != holder and found["expires_at_ms"] > now * MS_PER_S:
            return False
        return self._write(LEASE_ID, document, version)

    def release_lease(self, holder: str) -> None:
        found, version = self._get(LEASE_ID)
        if found is None or found["holder"] != holder or version is None:
            return
        seq_no, primary_term = version
        # A conflict: renewed or taken meanwhile, so not ours to delete.
        unless_conflict(
            lambda: self._client.delete(index=self._index, id=LEASE_ID, if_seq_no=seq_no, if_primary_term=primary_term)
        )

    # -- the output

    def read_state(self) -> tuple[SamplingState | None, StateVersion]:
        found, version = self._get(STATE_ID)
        return (_state(found) if found is not None else None), version

    def write_state(self, state: SamplingState, version: StateVersion) -> bool:
        self._ensure_index()
        return self._write(STATE_ID, _document(state), version)

    # -- Elasticsearch

    def _get(self, doc_id: str) -> tuple[dict[str, Any] | None, StateVersion]:
        # Readers create the index too: a GET meeting an index another process is creating answers 503.
        self._ensure_index()
        return get_versioned(self._client, self._index, doc_id)

    def _write(self, doc_id: str, document: dict[str, Any], version: StateVersion) -> bool:
        return write_versioned(self._client, self._index, doc_id, document, version)

    def _ensure_index(self) -> None:
        if not self._created:
            create_index(self._client, self._index, MAPPINGS, self._replicas)
            self._created = True


def _document(state: SamplingState) -> dict[str, Any]:
    return {
        "holder": state.holder,
        "window_end_ms": round(state.window_end_s * MS_PER_S),
        "computed_at_ms": round(state.computed_at_s * MS_PER_S),
        "operations": [
            {
                "service": op.service,
                "operation": op.operation,
                "probability": op.probability,
                "observed_tps": op.observed_tps,
                "estimated_tps": op.estimated_tps,
                "changed_at_ms": round(op.changed_at_s * MS_PER_S),
                "last_seen_ms": round(op.last_seen_s * MS_PER_S),
            }
            for op in state.operations
        ],
    }


def _state(source: dict[str, Any]) -> SamplingState:
    return SamplingState(
        window_end_s=source["window_end_ms"] / MS_PER_S,
        computed_at_s=source["computed_at_ms"] / MS_PER_S,
        holder=source["holder"],
        operations=tuple(
            OperationSampling(
                service=op["service"],
                operation=op["operation"],
                probability=float(op["probability"]),
                observed_tps=float(op["observed_tps"]),
                estimated_tps=float(op["estimated_tps"]),
                changed_at_s=op["changed_at_ms"] / MS_PER_S,
                last_seen_s=op["last_seen_ms"] / MS_PER_S,
            )
            for op in source["operations"]
        ),
    )
