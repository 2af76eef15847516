"""Reads traces back through tracesearch's Jaeger query API."""

from __future__ import annotations

import time
from collections.abc import Set
from dataclasses import dataclass

import requests


@dataclass(frozen=True)
class TraceWait:
    complete: bool
    seen: frozenset[str]
    last_status: int | None
    elapsed: float


def _span_id(raw: str) -> str:
    # Jaeger JSON may drop leading zeros; compare ids in one canonical form.
    return f"{int(raw, 16):016x}"


def fetch_span_ids(base_url: str, trace_id: str, timeout: float = 5.0) -> tuple[int, frozenset[str]]:
    """HTTP status of ``GET /api/traces/{id}`` and the span ids it returned."""
    response = requests.get(f"{base_url}/api/traces/{trace_id}", timeout=timeout)
    if response.status_code != 200:
        return response.status_code, frozenset()
    traces = response.json().get("data") or []
    ids = frozenset(_span_id(span["spanID"]) for t in traces for span in t.get("spans") or [])
    return 200, ids


def wait_for_trace(
    base_url: str,
    trace_id: str,
    expected: Set[str],
    timeout: float = 30.0,
    interval: float = 0.25,
) -> TraceWait:
    """Poll until every expected span id is returned, or the timeout passes.

    With no expected ids, any 200 answer counts: there is nothing finer to check.
    """
    start = time.monotonic()
    seen: frozenset[str] = frozenset()
    status: int | None = None
    while True:
        try:
            status, seen = fetch_span_ids(base_url, trace_id)
        except (requests.RequestException, ValueError, KeyError, TypeError):
            status = None  # down, restarting or malformed: keep polling
        elapsed = time.monotonic() - start
        if status == 200 and seen >= expected:
            return TraceWait(True, seen, status, elapsed)
        if elapsed >= timeout:
            return TraceWait(False, seen, status, elapsed)
        time.sleep(interval)
