"""Reads traces back through tracesearch's Jaeger and Tempo query APIs and its service graph."""

from __future__ import annotations

import contextlib
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


# ---------------------------------------------------------------------------------------------- Tempo API


def showcase_traceql(trace_id: str, service: str = "frontend") -> str:
    """A TraceQL query that finds exactly the demo trace (the demo runs it, and prints it)."""
    return f'{{resource.service.name="{service}" && trace:id="{trace_id}"}}'


def tempo_search_ids(base_url: str, query: str, limit: int = 20, timeout: float = 5.0) -> tuple[int, frozenset[str]]:
    """HTTP status of ``GET /api/search?q=<TraceQL>`` and the trace ids it returned."""
    response = requests.get(f"{base_url}/api/search", params={"q": query, "limit": str(limit)}, timeout=timeout)
    if response.status_code != 200:
        return response.status_code, frozenset()
    traces = response.json().get("traces") or []
    # Tempo drops leading zeros of trace ids in some versions: compare in one canonical form.
    return 200, frozenset(f"{int(t['traceID'], 16):032x}" for t in traces)


@dataclass(frozen=True)
class SearchWait:
    found: bool
    last_status: int | None
    elapsed: float


def wait_for_tempo_search(
    base_url: str, query: str, trace_id: str, timeout: float = 10.0, interval: float = 0.25
) -> SearchWait:
    """Poll the Tempo search until it returns ``trace_id``, or the timeout passes."""
    start = time.monotonic()
    status: int | None = None
    while True:
        try:
            status, found = tempo_search_ids(base_url, query)
        except (requests.RequestException, ValueError, KeyError, TypeError):
            status, found = None, frozenset()
        elapsed = time.monotonic() - start
        if trace_id in found:
            return SearchWait(True, status, elapsed)
        if elapsed >= timeout:
            return SearchWait(False, status, elapsed)
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------- service graph

Link = tuple[str, str, int]  # (parent, child, call count)


def fetch_dependencies(base_url: str, end_ms: int, lookback_ms: int, timeout: float = 5.0) -> tuple[Link, ...]:
    """Jaeger's ``GET /api/dependencies`` (endTs and lookback in milliseconds)."""
    response = requests.get(
        f"{base_url}/api/dependencies",
        params={"endTs": str(end_ms), "lookback": str(lookback_ms)},
        timeout=timeout,
    )
    response.raise_for_status()
    links = response.json().get("data") or []
    return tuple(sorted((str(d["parent"]), str(d["child"]), int(d["callCount"])) for d in links))


@dataclass(frozen=True)
class GraphWait:
    links: tuple[Link, ...]  # what /api/dependencies answered last
    complete: bool  # every expected edge was there
    elapsed: float


def wait_for_dependencies(
    base_url: str,
    expected: Set[tuple[str, str]],
    since_ms: int,
    timeout: float = 20.0,
    interval: float = 1.0,
) -> GraphWait:
    """Poll ``/api/dependencies`` over [since_ms, now] until every expected (parent, child) edge is
    there, or the timeout passes. The service graph pairs spans within TRACESEARCH_SERVICEGRAPH_WAIT
    and writes its aggregates every TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL, so edges come late."""
    start = time.monotonic()
    links: tuple[Link, ...] = ()
    while True:
        now_ms = time.time_ns() // 1_000_000
        # Down or malformed: keep what was seen last.
        with contextlib.suppress(requests.RequestException, ValueError, KeyError, TypeError):
            links = fetch_dependencies(base_url, now_ms, max(now_ms - since_ms, 0) + 60_000)
        elapsed = time.monotonic() - start
        if expected <= {(parent, child) for parent, child, _ in links}:
            return GraphWait(links, True, elapsed)
        if elapsed >= timeout:
            return GraphWait(links, False, elapsed)
        time.sleep(interval)
