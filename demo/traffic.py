"""Drive the demo: start the services, send orders through the storefront, stop them, check the trace."""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.jaeger import JaegerPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, format_trace_id
from tqdm import tqdm

from demo import logship
from demo.config import FAILING_CARD, LOGS_INDEX, ORDER_NOTE, SERVICES, STOREFRONT, expected_edges
from demo.processes import Backends, ServiceCluster, prepare_runtimes
from demo.query import (
    TraceView,
    fetch_logs,
    service_of,
    showcase_traceql,
    wait_for_dependencies,
    wait_for_tempo_search,
    wait_for_trace,
)

Log = Callable[[str], None]
# The Kafka hop: checkout's record, consumed by inventory (Java) in the same trace.
EXPECTED_KINDS = frozenset({("checkout", "producer"), ("inventory", "consumer")})


class BackendUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class DemoResult:
    base_url: str
    services: tuple[str, ...]  # every service of the trace, the storefront first
    trace_ids: tuple[str, ...]  # one per order, in order
    error_trace_ids: tuple[str, ...]  # orders frontend answered with 5xx
    showcase_trace_id: str  # the first order's trace: the one waited for
    view: TraceView  # what the Jaeger API returned for it last
    searchable: bool  # the trace came back whole
    wait_seconds: float
    # Tempo API: the TraceQL search run for the showcase trace; None when it was not run.
    traceql: str = ""
    tempo_found: bool | None = None
    tempo_wait_seconds: float = 0.0
    # Service graph: (parent, child, calls) from /api/dependencies; None when not waited for.
    dependencies: tuple[tuple[str, str, int], ...] = ()
    graph_complete: bool | None = None
    graph_wait_seconds: float = 0.0
    finished_ms: int = 0  # unix ms when the checks ended: the endTs of the printed dependency queries
    # Log lines shipped into Elasticsearch per service, and those the logs endpoint returned for the trace.
    logs_shipped: Mapping[str, int] = field(default_factory=dict)
    trace_logs: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The trace is whole (Jaeger API), the Tempo search finds it, and its logs come back."""
        return self.searchable and self.tempo_found is not False and bool(self.trace_logs)


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
                    "start it first (make up) or pass --base-url / set TRACESEARCH_URL"
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


class Storefront:
    """The load generator, dressed as a gateway still on a Jaeger client: its requests carry only
    uber-trace-id, so the first hop of every trace is a Jaeger-to-OpenTelemetry one."""

    def __init__(self, base_url: str) -> None:
        resource = Resource.create(
            {"service.name": STOREFRONT, "service.namespace": "shop", "service.version": "5.0.2"}
        )
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base_url}/v1/traces")))
        self._tracer = self.provider.get_tracer("shop.storefront")
        self._propagator = JaegerPropagator()
        self._http = requests.Session()

    def order(self, frontend_url: str, order: Mapping[str, Any]) -> tuple[str, int]:
        with self._tracer.start_as_current_span("POST /checkout", kind=SpanKind.CLIENT) as span:
            headers: dict[str, str] = {}
            self._propagator.inject(headers)
            span.set_attributes(
                {"http.request.method": "POST", "server.address": "frontend", "enduser.id": order["user"]}
            )
            response = self._http.post(f"{frontend_url}/checkout", json=order, headers=headers, timeout=30)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return format_trace_id(span.get_span_context().trace_id), response.status_code

    def close(self) -> None:
        self.provider.shutdown()


def send_orders(storefront: Storefront, frontend_url: str, count: int, progress: bool = True) -> list[tuple[str, int]]:
    """Send each order through the storefront; (trace id, HTTP status) per order."""
    batch = tqdm(list(orders(count)), desc="Orders", unit="order", disable=not progress, ncols=80)
    return [storefront.order(frontend_url, order) for order in batch]


def _trace_logs(base_url: str, trace_id: str, timeout: float) -> Counter[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = Counter(service_of(line) for line in fetch_logs(base_url, trace_id))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def run_demo(
    base_url: str,
    es_url: str,
    kafka_bootstrap: str,
    requests: int = 20,
    *,
    timeout: float = 60.0,
    graph_wait: float = 20.0,
    progress: bool = True,
    log: Log = _quiet,
) -> DemoResult:
    """Run the whole demo against tracesearch at base_url and report what came back.

    ``requests`` (the count; the name is the public signature) shadows the module,
    which is only used by the helpers above.

    Raises BackendUnavailableError when nothing listens at base_url, ServiceStartError when a
    service does not come up, and DevstackError when Java, Maven, Node.js or npm is missing.
    """
    if requests < 1:
        raise ValueError("requests must be at least 1")
    base_url = base_url.rstrip("/")
    check_backend(base_url)
    prepare_runtimes(SERVICES, log)
    started_ms = time.time_ns() // 1_000_000
    logs_dir = Path(tempfile.mkdtemp(prefix="tracesearch-demo-logs-"))
    storefront = Storefront(base_url)
    try:
        with ServiceCluster(Backends(base_url, kafka_bootstrap), logs_dir) as cluster:
            for spec in SERVICES:
                log(f"  {spec.name:<16} {cluster.urls[spec.name]:<24} {spec.runtime.value}")
            sent = send_orders(storefront, cluster.urls["frontend"], requests, progress)
            log("Stopping the services (each flushes its spans) ...")
            cluster.stop()
        storefront.close()
        shipped = logship.ship(es_url, {spec.name: cluster.log_file(spec.name) for spec in SERVICES})
    finally:
        shutil.rmtree(logs_dir, ignore_errors=True)
    log(f"Shipped {sum(shipped.values())} ECS log lines into Elasticsearch ({LOGS_INDEX}).")

    showcase = sent[0][0]
    services = (STOREFRONT, *(spec.name for spec in SERVICES))
    log(f"Waiting up to {timeout:.0f} s for trace {showcase} to come back whole ...")
    wait = wait_for_trace(base_url, showcase, set(services), EXPECTED_KINDS, timeout=timeout)
    traceql = showcase_traceql(showcase)
    tempo_found: bool | None = None
    tempo_wait = 0.0
    trace_logs: Counter[str] = Counter()
    if wait.complete:
        log(f"Searching the Tempo API: {traceql} ...")
        search = wait_for_tempo_search(base_url, traceql, showcase, timeout=min(timeout, 10.0))
        tempo_found, tempo_wait = search.found, search.elapsed
        trace_logs = _trace_logs(base_url, showcase, timeout=10.0)
    links: tuple[tuple[str, str, int], ...] = ()
    graph_complete: bool | None = None
    graph_seconds = 0.0
    if tempo_found and graph_wait > 0:
        log(f"Waiting up to {graph_wait:.0f} s for the service graph (/api/dependencies) ...")
        graph = wait_for_dependencies(base_url, expected_edges(), started_ms, timeout=graph_wait)
        links, graph_complete, graph_seconds = graph.links, graph.complete, graph.elapsed
    return DemoResult(
        base_url=base_url,
        services=services,
        trace_ids=tuple(trace_id for trace_id, _ in sent),
        error_trace_ids=tuple(trace_id for trace_id, status in sent if status >= 500),
        showcase_trace_id=showcase,
        view=wait.view,
        searchable=wait.complete,
        wait_seconds=wait.elapsed,
        traceql=traceql,
        tempo_found=tempo_found,
        tempo_wait_seconds=tempo_wait,
        dependencies=links,
        graph_complete=graph_complete,
        graph_wait_seconds=graph_seconds,
        finished_ms=time.time_ns() // 1_000_000,
        logs_shipped=dict(shipped),
        trace_logs=dict(trace_logs),
    )
