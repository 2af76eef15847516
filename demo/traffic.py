"""Drive the demo: start services, send orders, stop them, wait for the trace."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

import requests

from demo.config import FAILING_CARD, ORDER_NOTE, SERVICES, TRACE_ID_HEADER
from demo.processes import ServiceCluster, ServiceReport
from demo.query import showcase_traceql, wait_for_dependencies, wait_for_tempo_search, wait_for_trace

Log = Callable[[str], None]


class BackendUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class DemoResult:
    base_url: str
    services: tuple[str, ...]
    trace_ids: tuple[str, ...]  # one per request, in request order
    error_trace_ids: tuple[str, ...]  # requests frontend answered with 5xx
    showcase_trace_id: str  # the first request's trace: the one waited for
    expected_span_ids: frozenset[str]  # what the services exported for it
    searchable: bool  # every expected span came back from /api/traces/{id}
    wait_seconds: float
    failed_exports: Mapping[str, int]  # per service: spans the backend did not accept
    missing_spans: Mapping[str, int]  # per service: showcase spans not (yet) returned
    # Tempo API: the TraceQL search run for the showcase trace; None when it was not run
    # (the trace never became complete).
    traceql: str = ""
    tempo_found: bool | None = None
    tempo_wait_seconds: float = 0.0
    # Service graph: (parent, child, calls) from /api/dependencies, and whether every edge of
    # SERVICES' call graph was there; None when not waited for (--graph-wait 0, or a check failed).
    dependencies: tuple[tuple[str, str, int], ...] = ()
    graph_complete: bool | None = None
    graph_wait_seconds: float = 0.0
    finished_ms: int = 0  # unix ms when the checks ended: the endTs of the printed dependency queries

    @property
    def ok(self) -> bool:
        """The trace is complete by id (Jaeger API) and the Tempo search finds it."""
        return self.searchable and self.tempo_found is not False


def _quiet(_: str) -> None:
    pass


def check_backend(base_url: str, wait: float = 3.0) -> None:
    """Fail fast with a clear message when nothing listens at base_url."""
    deadline = time.monotonic() + wait
    while True:
        try:
            requests.get(f"{base_url}/api/services", timeout=1.0)
            return
        except requests.ConnectionError as error:
            if time.monotonic() > deadline:
                raise BackendUnavailableError(
                    f"tracesearch is not reachable at {base_url} ({error.__class__.__name__}); "
                    "start it first or pass --base-url / set TRACESEARCH_URL"
                ) from error
            time.sleep(0.25)


def orders(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Deterministic orders; every fifth one (never the first) fails in payments."""
    rng = random.Random(seed)
    skus = [f"sku-{n}" for n in range(1, 13)]
    for i in range(count):
        yield {
            "user": f"user-{rng.randint(1, 40):02d}",
            # The first trace is the one printed, so give it the widest fan-out.
            "items": rng.sample(skus, k=3 if i == 0 else rng.randint(1, 3)),
            "card": FAILING_CARD if i % 5 == 3 else "tok_visa",
            "note": ORDER_NOTE if i % 2 == 0 else "Leave it at the door.",
            "fast_checkout": i % 3 != 1,
        }


def send_orders(frontend_url: str, count: int) -> list[tuple[str, int]]:
    """POST each order to frontend; returns (trace id, HTTP status) per order."""
    results = []
    with requests.Session() as http:
        for order in orders(count):
            response = http.post(f"{frontend_url}/checkout", json=order, timeout=15)
            trace_id = response.headers.get(TRACE_ID_HEADER, "")
            if len(trace_id) != 32:
                raise RuntimeError(f"frontend gave no trace id (HTTP {response.status_code})")
            results.append((trace_id, response.status_code))
    return results


def _spans_of(trace_id: str, reports: Mapping[str, ServiceReport]) -> dict[str, set[str]]:
    return {
        name: set(report.exported.get(trace_id, [])) | set(report.failed.get(trace_id, []))
        for name, report in reports.items()
    }


def expected_edges() -> frozenset[tuple[str, str]]:
    """(caller, callee) for every call between the demo services."""
    return frozenset((spec.name, callee) for spec in SERVICES for callee in spec.calls)


def run_demo(
    base_url: str,
    requests: int = 20,
    *,
    timeout: float = 30.0,
    graph_wait: float = 20.0,
    log: Log = _quiet,
) -> DemoResult:
    """Run the whole demo against tracesearch at base_url and report what it sent.

    ``requests`` (the count; the name is the public signature) shadows the module,
    which is only used by the helpers above.

    Once the trace is complete, the Tempo search must find it too (``tempo_found``); then the
    service graph is polled for up to ``graph_wait`` seconds, which never fails the demo: the
    edges appear only after the pairing wait and a flush.

    Raises BackendUnavailableError when nothing listens at base_url and
    ServiceStartError when a service does not come up.
    """
    if requests < 1:
        raise ValueError("requests must be at least 1")
    base_url = base_url.rstrip("/")
    check_backend(base_url)
    started_ms = time.time_ns() // 1_000_000

    with ServiceCluster(base_url) as cluster:
        for spec in SERVICES:
            log(f"  {spec.name:<10} {cluster.urls[spec.name]:<24} exports {spec.ingest.value}")
        log(f"Sending {requests} orders to frontend ...")
        sent = send_orders(cluster.urls["frontend"], requests)
        log("Stopping services (each flushes its spans on SIGTERM) ...")
        reports = cluster.stop()

    showcase = sent[0][0]
    by_service = _spans_of(showcase, reports)
    expected = frozenset(chain.from_iterable(by_service.values()))
    failed = {name: r.failed_count for name, r in reports.items() if r.failed_count}
    lost = any(report.failed.get(showcase) for report in reports.values())
    if lost:
        # Some of its spans were refused at export: waiting could never succeed.
        wait = wait_for_trace(base_url, showcase, expected, timeout=0)
    else:
        log(f"Waiting up to {timeout:.0f} s for trace {showcase} ({len(expected)} spans) ...")
        wait = wait_for_trace(base_url, showcase, expected, timeout=timeout)
    missing = {name: len(ids - wait.seen) for name, ids in by_service.items() if ids - wait.seen}
    traceql = showcase_traceql(showcase)
    tempo_found: bool | None = None
    tempo_wait = 0.0
    if wait.complete:
        log(f"Searching the Tempo API: {traceql} ...")
        search = wait_for_tempo_search(base_url, traceql, showcase, timeout=min(timeout, 10.0))
        tempo_found, tempo_wait = search.found, search.elapsed
    links: tuple[tuple[str, str, int], ...] = ()
    graph_complete: bool | None = None
    graph_seconds = 0.0
    if tempo_found and graph_wait > 0:
        log(f"Waiting up to {graph_wait:.0f} s for the service graph (/api/dependencies) ...")
        graph = wait_for_dependencies(base_url, expected_edges(), started_ms, timeout=graph_wait)
        links, graph_complete, graph_seconds = graph.links, graph.complete, graph.elapsed
    return DemoResult(
        base_url=base_url,
        services=tuple(spec.name for spec in SERVICES),
        trace_ids=tuple(trace_id for trace_id, _ in sent),
        error_trace_ids=tuple(trace_id for trace_id, status in sent if status >= 500),
        showcase_trace_id=showcase,
        expected_span_ids=expected,
        searchable=wait.complete,
        wait_seconds=wait.elapsed,
        failed_exports=failed,
        missing_spans=missing,
        traceql=traceql,
        tempo_found=tempo_found,
        tempo_wait_seconds=tempo_wait,
        dependencies=links,
        graph_complete=graph_complete,
        graph_wait_seconds=graph_seconds,
        finished_ms=time.time_ns() // 1_000_000,
    )
