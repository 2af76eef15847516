"""Reads traces back through tracesearch's Jaeger and Tempo query APIs and its service graph."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class TraceView:
    """A trace as the Jaeger API returns it, reduced to what completeness is judged on."""

    spans: int = 0
    services: frozenset[str] = frozenset()
    kinds: frozenset[tuple[str, str]] = frozenset()  # (service, span.kind)
    orphans: int = 0  # spans whose parent is not in the trace
    roots: int = 0

    def complete(self, services: Set[str], kinds: Set[tuple[str, str]]) -> bool:
        """Every service and span kind expected is there, and every span hangs under one root."""
        return services <= self.services and kinds <= self.kinds and self.orphans == 0 and self.roots == 1


@dataclass(frozen=True)
class TraceWait:
    complete: bool
    view: TraceView
    last_status: int | None
    elapsed: float


def _span_id(raw: str) -> str:
    # Jaeger JSON may drop leading zeros; compare ids in one canonical form.
    return f"{int(raw, 16):016x}"


def view_of(trace: Mapping[str, Any]) -> TraceView:
    processes = {key: value["serviceName"] for key, value in trace["processes"].items()}
    ids = {_span_id(span["spanID"]) for span in trace["spans"]}
    kinds, orphans, roots = set(), 0, 0
    for span in trace["spans"]:
        service = processes[span["processID"]]
        tags = {tag["key"]: tag["value"] for tag in span.get("tags") or []}
        kinds.add((service, str(tags.get("span.kind", "internal"))))
        parents = [_span_id(ref["spanID"]) for ref in span.get("references") or [] if ref["refType"] == "CHILD_OF"]
        if not parents:
            roots += 1
        elif parents[0] not in ids:
            orphans += 1
    return TraceView(len(ids), frozenset(processes.values()), frozenset(kinds), orphans, roots)


def fetch_trace(base_url: str, trace_id: str, timeout: float = 5.0) -> tuple[int, TraceView]:
    """HTTP status of ``GET /api/traces/{id}`` and what the trace holds."""
    response = requests.get(f"{base_url}/api/traces/{trace_id}", timeout=timeout)
    if response.status_code != 200:
        return response.status_code, TraceView()
    traces = response.json().get("data") or []
    return 200, view_of(traces[0]) if traces else TraceView()


def wait_for_trace(
    base_url: str,
    trace_id: str,
    services: Set[str],
    kinds: Set[tuple[str, str]] = frozenset(),
    timeout: float = 30.0,
    interval: float = 0.5,
) -> TraceWait:
    """Poll until the trace is whole (see TraceView.complete) and stopped growing, or the timeout passes.

    Java and Node.js services keep no record of the spans they sent, so "whole" is judged on the
    trace's shape: every service expected, no span without its parent, and the same span count twice.
    """
    start = time.monotonic()
    view, previous = TraceView(), -1
    status: int | None = None
    while True:
        try:
            status, view = fetch_trace(base_url, trace_id)
        except (requests.RequestException, ValueError, KeyError, TypeError):
            status = None  # down, restarting or malformed: keep polling
        elapsed = time.monotonic() - start
        if status == 200 and view.complete(services, kinds) and view.spans == previous:
            return TraceWait(True, view, status, elapsed)
        if elapsed >= timeout:
            return TraceWait(False, view, status, elapsed)
        previous = view.spans
        time.sleep(interval)


def fetch_logs(base_url: str, trace_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The trace's log lines from tracesearch's ``GET /api/v1/traces/{id}/logs``."""
    response = requests.get(f"{base_url}/api/v1/traces/{trace_id}/logs", timeout=timeout)
    response.raise_for_status()
    logs: list[dict[str, Any]] = response.json()["logs"]
    return logs


def service_of(line: Mapping[str, Any]) -> str:
    """service.name of an ECS line, whether written nested (Python) or dotted (Java, Node.js)."""
    nested = line.get("service")
    name = nested.get("name") if isinstance(nested, Mapping) else line.get("service.name")
    return str(name or "?")


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
