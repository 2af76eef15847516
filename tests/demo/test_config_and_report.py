from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from demo import logship, traffic
from demo.config import (
    DEFAULT_BASE_URL,
    NOTE_SEARCH_WORD,
    ORDER_NOTE,
    SERVICES,
    STOREFRONT,
    Runtime,
    expected_edges,
    resolve_base_url,
)
from demo.query import GraphWait, SearchWait, TraceView, TraceWait, showcase_traceql
from demo.report import (
    DATABASE_TRACEQL,
    ERRORS_TRACEQL,
    GRAFANA_DASHBOARD_DIR,
    GRAFANA_DASHBOARDS,
    GRAFANA_DATASOURCES,
    GRAFANA_README,
    HOPS,
    JAVA_DATABASE_TRACEQL,
    METRICS_TRACEQL,
    failure_text,
    success_text,
)
from demo.traffic import DemoResult, orders
from tracesearch.api.tempo_params import metrics_params
from tracesearch.model import Resource, Scope, Span
from tracesearch.query.traceql import evaluate, parse, pushdown
from tracesearch.services.traceql_metrics import span_request
from tracesearch.storage.es.span_aggregation import body as metrics_body

REPO = Path(__file__).resolve().parents[2]
ES = "http://127.0.0.1:9200"


def test_base_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACESEARCH_URL", raising=False)
    assert resolve_base_url(None) == DEFAULT_BASE_URL
    monkeypatch.setenv("TRACESEARCH_URL", "http://ts:9000/")
    assert resolve_base_url(None) == "http://ts:9000"
    assert resolve_base_url("http://cli:1") == "http://cli:1"


def test_the_shop_runs_every_runtime_and_every_ingest_path() -> None:
    assert {spec.runtime for spec in SERVICES} == set(Runtime)
    assert {spec.exporter for spec in SERVICES} == {"otlp", "otlp_json_http", "zipkin_json"}
    assert NOTE_SEARCH_WORD in ORDER_NOTE.split()


def test_every_hop_the_report_names_is_a_call_of_the_shop() -> None:
    assert {(caller, callee) for caller, callee, _ in HOPS} == expected_edges()


def test_first_order_is_a_successful_fan_out() -> None:
    batch = list(orders(20))
    assert batch == list(orders(20)), "orders must be deterministic"
    assert len(batch[0]["items"]) == 3
    assert batch[0]["card"] != batch[3]["card"]
    assert sum(order["card"] == batch[3]["card"] for order in batch) == 4


def _result(**overrides: Any) -> DemoResult:
    result = DemoResult(
        base_url="http://127.0.0.1:4318",
        services=(STOREFRONT, *(spec.name for spec in SERVICES)),
        trace_ids=("a" * 32, "b" * 32),
        error_trace_ids=("b" * 32,),
        showcase_trace_id="a" * 32,
        view=TraceView(25, frozenset({STOREFRONT, *(spec.name for spec in SERVICES)}), frozenset(), 0, 1),
        searchable=True,
        wait_seconds=0.4,
        logs_shipped={"frontend": 40, "inventory": 60},
        trace_logs={"frontend": 1, "inventory": 2},
    )
    return dataclasses.replace(result, **overrides)


def test_success_text_has_every_pointer() -> None:
    text = success_text(_result(), ES)
    assert f"curl -s http://127.0.0.1:4318/api/traces/{'a' * 32}" in text
    assert "curl -s http://127.0.0.1:4318/api/services" in text
    assert """--data-urlencode service=frontend --data-urlencode 'tags={"http.response.status_code":">=500"}'""" in text
    assert f"""'tags={{"_text":"{NOTE_SEARCH_WORD}"}}'""" in text
    assert "Jaeger" in text and "URL:    http://127.0.0.1:4318" in text and "proxy" in text


def test_success_text_says_how_the_trace_crossed_languages_and_where_its_logs_are() -> None:
    text = success_text(_result(), ES)
    assert "25 spans from 7 services in Java, Node.js, Python" in text
    assert "storefront -> frontend: uber-trace-id only" in text
    assert "recommendations -> catalog: B3 multi only" in text
    assert "Its log lines (1 from frontend, 2 from inventory)" in text
    assert f"curl -s http://127.0.0.1:4318/api/v1/traces/{'a' * 32}/logs" in text
    assert f"curl -s -G {ES}/logs-shop-demo/_search --data-urlencode q=trace.id:{'a' * 32}" in text


def test_failure_text_says_what_the_trace_lacks() -> None:
    partial = TraceView(9, frozenset({STOREFRONT, "frontend", "checkout"}), frozenset(), 2, 1)
    text = failure_text(_result(searchable=False, view=partial), timeout=30)
    assert "9 spans from checkout, frontend, storefront" in text
    assert "no span yet from: catalog, inventory, payments, recommendations" in text
    assert "2 span(s) whose parent is missing" in text


def test_failure_text_when_the_logs_endpoint_returns_nothing() -> None:
    result = _result(trace_logs={})
    assert not result.ok
    assert "returned no log line (100 were shipped into logs-shop-demo)" in failure_text(result, timeout=30)


def _checked(**overrides: object) -> DemoResult:
    """A result after every check ran: Tempo search found the trace, the graph was polled."""
    trace_id = "a" * 32
    fields: dict[str, object] = {
        "traceql": showcase_traceql(trace_id),
        "tempo_found": True,
        "tempo_wait_seconds": 0.1,
        "dependencies": (("checkout", "inventory", 3), ("frontend", "checkout", 1), ("user", "frontend", 1)),
        "graph_complete": False,
        "graph_wait_seconds": 20.0,
        "finished_ms": 1_763_790_000_000,
    }
    fields.update(overrides)
    return _result(**fields)


def test_success_text_points_at_the_tempo_zipkin_and_graph_apis() -> None:
    text = success_text(_checked(), ES)
    base = "http://127.0.0.1:4318"
    showcase = showcase_traceql("a" * 32)
    assert f"The Tempo API's TraceQL search finds it too: {showcase}" in text
    assert f"curl -s -G {base}/api/search --data-urlencode 'q={showcase}'" in text
    assert f"curl -s {base}/api/v2/search/tag/resource.service.name/values" in text
    assert f"curl -s {base}/api/v2/traces/{'a' * 32}" in text
    metrics = '{resource.service.name="frontend"} | quantile_over_time(duration, .5, .95) by (name)'
    assert f"curl -s -G {base}/api/metrics/query_range --data-urlencode 'q={metrics}'" in text
    # Jaeger and Zipkin dependencies, both in milliseconds, ending when the demo ended.
    ms = "--data-urlencode endTs=1763790000000 --data-urlencode lookback=3600000"
    assert f"curl -s -G {base}/api/dependencies {ms}" in text
    assert f"curl -s -G {base}/api/v2/dependencies {ms}" in text
    assert f"curl -s {base}/api/v2/trace/{'a' * 32}" in text
    # Grafana: one URL, Tempo with streaming off, where the provisioning files are.
    assert "Tempo:  turn Streaming OFF" in text and f"Explore > TraceQL: {showcase}" in text
    for path in (GRAFANA_DATASOURCES, GRAFANA_DASHBOARDS, GRAFANA_DASHBOARD_DIR, GRAFANA_README):
        assert path in text
        assert (REPO / path).exists(), path


def test_success_text_says_what_the_service_graph_showed() -> None:
    text = success_text(_checked(), ES)
    assert "frontend -> checkout: 1 call(s)" in text and "user -> frontend: 1 call(s)" in text
    assert "Not there yet: checkout -> payments, inventory -> recommendations" in text
    complete = success_text(_checked(graph_complete=True), ES)
    assert "Not there yet" not in complete
    empty = success_text(_checked(dependencies=(), graph_complete=False), ES)
    assert "no edges yet." in empty
    skipped = success_text(_checked(dependencies=(), graph_complete=None), ES)
    assert "Service graph" not in skipped


def test_success_text_links_into_the_zipkin_ui() -> None:
    base = "http://127.0.0.1:4318"
    lines = success_text(_checked(), ES).splitlines()
    assert f"Zipkin UI (Lens; TRACESEARCH_UI=true, as in make demo): {base}/zipkin/" in lines
    assert f"  the trace:        {base}/zipkin/traces/{'a' * 32}" in lines
    # Lens's dependency page over the hour the dependencies curls ask for (startTime/endTime in ms).
    assert f"  dependency graph: {base}/zipkin/dependency?startTime=1763786400000&endTime=1763790000000" in lines
    # Before the checks ended there is no window to name: the page's own default.
    assert f"  dependency graph: {base}/zipkin/dependency" in success_text(_result(), ES).splitlines()


def test_expected_edges_follow_the_services_calls() -> None:
    assert expected_edges() == {
        (STOREFRONT, "frontend"),
        ("frontend", "checkout"),
        ("checkout", "inventory"),
        ("checkout", "payments"),
        ("inventory", "recommendations"),
        ("recommendations", "catalog"),
    }


def test_every_printed_traceql_query_parses_and_the_metrics_one_runs_in_elasticsearch() -> None:
    showcase = parse(showcase_traceql("0af7651916cd43dd8448eb211c80319c"))
    # The showcase query pushes down exactly: one Elasticsearch query answers it.
    assert pushdown.plan(showcase.spansets).exact
    for text in (ERRORS_TRACEQL, DATABASE_TRACEQL, JAVA_DATABASE_TRACEQL):
        assert parse(text).metrics is None
    params = metrics_params({"q": METRICS_TRACEQL}, now_ns=1_763_790_000 * 10**9, instant=False)
    request = span_request(params.query, params.start_ns, params.end_ns, params.step_ns)  # refuses inexact filters
    assert [g.label for g in request.group_by] == ["name"]
    assert metrics_body(request)["aggs"]["g0"]["terms"]["field"] == "span.name"


def test_showcase_query_matches_the_showcase_trace_only() -> None:
    def span(trace_id: str, service: str) -> Span:
        return Span(
            trace_id=trace_id,
            span_id="1" * 16,
            name="POST /checkout",
            start_ns=1,
            end_ns=2,
            resource=Resource({"service.name": service}, service_name=service),
            scope=Scope(),
        )

    query = parse(showcase_traceql("a" * 32))

    def matches(trace_id: str, service: str) -> bool:
        return any(s.spans for s in evaluate(query, [span(trace_id, service)]))

    assert matches("a" * 32, "frontend")
    assert not matches("b" * 32, "frontend")
    assert not matches("a" * 32, "checkout")


def test_failure_text_when_only_the_tempo_search_misses_the_trace() -> None:
    text = failure_text(_checked(tempo_found=False, tempo_wait_seconds=10), timeout=30)
    assert "is complete at http://127.0.0.1:4318/api/traces/" in text
    assert "Tempo API's TraceQL search" in text and "/api/search --data-urlencode 'q={resource" in text
    assert not _checked(tempo_found=False).ok
    assert _checked().ok and _result().ok  # None: not run, e.g. in a result built before the search
    assert not _result(searchable=False).ok


class _FakeCluster:
    """Stands in for the service processes."""

    urls = {spec.name: f"http://127.0.0.1:{9000 + i}" for i, spec in enumerate(SERVICES)}

    def __init__(self, backends: object, logs_dir: Path) -> None:
        self.logs_dir = logs_dir

    def __enter__(self) -> _FakeCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def log_file(self, name: str) -> Path:
        return self.logs_dir / f"{name}.json"

    def stop(self) -> dict[str, int]:
        return {spec.name: 0 for spec in SERVICES}


class _FakeStorefront:
    def __init__(self, base_url: str) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("found", "graph_wait"), [(True, 20.0), (False, 20.0), (True, 0.0)])
def test_run_demo_checks_the_tempo_search_the_logs_and_polls_the_graph(
    monkeypatch: pytest.MonkeyPatch, found: bool, graph_wait: float
) -> None:
    calls: list[str] = []
    view = TraceView(3, frozenset({"frontend"}), frozenset(), 0, 1)
    monkeypatch.setattr(traffic, "check_backend", lambda base_url: None)
    monkeypatch.setattr(traffic, "prepare_runtimes", lambda specs, log: None)
    monkeypatch.setattr(traffic, "ServiceCluster", _FakeCluster)
    monkeypatch.setattr(traffic, "Storefront", _FakeStorefront)
    monkeypatch.setattr(logship, "ship", lambda es_url, files: {"frontend": 4})
    monkeypatch.setattr(traffic, "send_orders", lambda *args: [("a" * 32, 200), ("b" * 32, 502)])
    monkeypatch.setattr(traffic, "fetch_logs", lambda base, trace_id: [{"service": {"name": "frontend"}}])

    def wait(base: str, trace_id: str, services: object, kinds: object, timeout: float) -> TraceWait:
        assert services == {STOREFRONT, *(spec.name for spec in SERVICES)}
        assert kinds == {("checkout", "producer"), ("inventory", "consumer")}
        return TraceWait(True, view, 200, 0.3)

    def search(base: str, query: str, trace_id: str, timeout: float) -> SearchWait:
        calls.append(query)
        assert trace_id == "a" * 32 and timeout == 10.0
        return SearchWait(found, 200, 0.1)

    def graph(base: str, expected: object, since_ms: int, timeout: float) -> GraphWait:
        assert expected == expected_edges() and timeout == graph_wait
        return GraphWait((("frontend", "checkout", 2),), False, timeout)

    monkeypatch.setattr(traffic, "wait_for_trace", wait)
    monkeypatch.setattr(traffic, "wait_for_tempo_search", search)
    monkeypatch.setattr(traffic, "wait_for_dependencies", graph)
    result = traffic.run_demo("http://ts:4318/", ES, "127.0.0.1:9092", 2, graph_wait=graph_wait)
    assert calls == [showcase_traceql("a" * 32)] and result.traceql == calls[0]
    assert result.searchable and result.tempo_found is found and result.ok is found
    assert result.trace_logs == {"frontend": 1} and result.logs_shipped == {"frontend": 4}
    assert result.finished_ms > 0 and result.view == view
    if graph_wait and found:
        assert result.dependencies == (("frontend", "checkout", 2),) and result.graph_complete is False
    else:
        assert result.dependencies == () and result.graph_complete is None
