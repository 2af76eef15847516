"""The query limits of ``QueryLimits``: time budget (a partial answer), concurrent queries (429),
time range (400 naming the parameter), traces per search (cut), and what the HTTP APIs answer."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.unit.storage.es_recorder import RecordingElasticsearch
from tracesearch.app import create_app
from tracesearch.model import Resource, Scope, Span
from tracesearch.query.conditions import TraceQuery
from tracesearch.query.errors import InvalidQuery, TooManyQueries
from tracesearch.query.limits import MAX_JAEGER_TAGS, MAX_JAEGER_TAGS_BYTES, QueryLimits
from tracesearch.query.traceql import parse
from tracesearch.services.query import QueryService
from tracesearch.services.traceql_search import TraceqlSearch
from tracesearch.settings import Settings
from tracesearch.storage.memory import MemoryStore

NS = 1_000_000_000


def store_with(traces: int, now_ns: int) -> MemoryStore:
    memory = MemoryStore()
    spans = [
        Span(
            trace_id=f"{t:032x}",
            span_id=f"{t + 1:016x}",
            name="op",
            start_ns=now_ns - (t + 1) * NS,
            end_ns=now_ns - (t + 1) * NS + 1000,
            resource=Resource({"service.name": "svc"}, "svc"),
            scope=Scope(),
            attributes={"x": "a" * 100 + "b"},
        )
        for t in range(traces)
    ]
    assert memory.write(spans).rejected == []
    return memory


class SteppingClock:
    """Each reading is one second later: a deadline of ``n`` seconds passes after ``n`` readings."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_the_evaluation_stops_at_the_deadline_and_says_the_answer_is_partial() -> None:
    now = time.time_ns()
    memory = store_with(50, now)
    search = TraceqlSearch(memory, timeout_s=10, clock=SteppingClock())
    result = search.search(parse('{ span.x =~ "(a+)+$" }'), now - 3600 * NS, now, 20, 3)
    assert not result.complete and result.partial_reason == "time budget"
    assert 0 < result.inspected_traces < 50


def test_a_search_within_its_budget_is_complete() -> None:
    now = time.time_ns()
    memory = store_with(50, now)
    result = QueryService(memory, memory.aggregates).search(parse('{ span.x =~ "a+b" }'), now - 3600 * NS, now, 20, 3)
    assert result.complete and len(result.traces) == 20


def test_the_limit_is_cut_to_traces_per_search() -> None:
    now = time.time_ns()
    memory = store_with(30, now)
    service = QueryService(memory, memory.aggregates, limits=QueryLimits(max_traces=7))
    assert len(service.search(parse("{}"), now - 3600 * NS, now, 1000, 3).traces) == 7
    assert len(service.find_traces(TraceQuery(now - 3600 * NS, now, [], 1000))) == 7


def test_a_range_over_the_limit_is_refused_naming_the_parameter() -> None:
    memory = MemoryStore()
    service = QueryService(memory, memory.aggregates, limits=QueryLimits(max_range_s=86400))
    now = time.time_ns()
    with pytest.raises(InvalidQuery, match="longer than the 1d a query may cover") as refused:
        service.search(parse("{}"), now - 2 * 86400 * NS, now, 20, 3)
    assert refused.value.field == "start"
    with pytest.raises(InvalidQuery) as refused:
        service.zipkin_search(TraceQuery(now - 2 * 86400 * NS, now, [], 10))
    assert refused.value.field == "lookback"
    service.search(parse("{}"), now - 86400 * NS, now, 20, 3)  # exactly the limit is fine


class BlockingReader(MemoryStore):
    """A store whose trace search waits until released: queries that occupy their slots."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def find_traces(self, query: TraceQuery, max_spans: int | None = None) -> list[list[Span]]:
        self.entered.release()
        self.release.wait(10)
        return []


def test_queries_over_the_concurrency_limit_are_refused_after_a_short_wait() -> None:
    reader = BlockingReader()
    service = QueryService(reader, reader.aggregates, limits=QueryLimits(max_concurrent=2, timeout_s=0.2))
    now = time.time_ns()
    query = TraceQuery(now - NS, now, [], 10)
    running = [threading.Thread(target=service.find_traces, args=(query,)) for _ in range(2)]
    for thread in running:
        thread.start()
    assert reader.entered.acquire(timeout=5) and reader.entered.acquire(timeout=5)
    began = time.monotonic()
    with pytest.raises(TooManyQueries):
        service.find_traces(query)
    assert 0.15 < time.monotonic() - began < 2  # waited queue_wait_s (the budget, here), then gave up
    reader.release.set()
    for thread in running:
        thread.join(5)
    assert service.find_traces(query) == []  # the slots are free again


# -- what the HTTP APIs answer


@pytest.fixture(scope="module")
def client() -> FlaskClient:
    app = create_app(
        Settings(index_prefix="limits", install_templates=False, servicegraph_enabled=False, query_max_range_s=86400)
    )
    app.extensions["tracesearch"].__dict__["_es"] = RecordingElasticsearch()
    return app.test_client()


def get(client: FlaskClient, path: str, **params: Any) -> tuple[int, Any]:
    answer = client.get(path, query_string=params)
    return answer.status_code, answer.json


def test_tempo_range_over_the_limit_is_a_400_naming_start(client: FlaskClient) -> None:
    status, body = get(client, "/api/search", q="{}", start="1000000", end=str(1000000 + 2 * 86400))
    assert status == 400 and body["error"]["field"] == "start"
    assert "longer than the 1d a query may cover" in body["message"]


def test_metrics_range_over_the_limit_is_a_400(client: FlaskClient) -> None:
    status, body = get(client, "/api/metrics/query_range", q="{} | rate()", start="1000000", end="1300000")
    assert status == 400 and body["error"]["field"] == "start"


def test_jaeger_range_over_the_limit_is_a_400(client: FlaskClient) -> None:
    status, body = get(client, "/api/traces", service="a", start="0", end=str(3 * 86400 * 1_000_000))
    assert status == 400 and "longer than" in body["errors"][0]["msg"]


def test_a_bad_regex_is_a_400_naming_the_pattern_never_a_500(client: FlaskClient) -> None:
    status, body = get(client, "/api/search", q='{ span.x =~ "(?=a)a" }')
    assert status == 400 and body["error"]["field"] == "q"
    assert "'(?=a)a'" in body["message"] and "RE2" in body["message"]


def test_a_huge_traceql_query_is_a_400(client: FlaskClient) -> None:
    status, body = get(client, "/api/search", q="{" + " " * 20_000 + "}")
    assert status == 400 and "query too long" in body["message"]


def test_jaeger_tags_too_long_or_too_many_are_400s(client: FlaskClient) -> None:
    status, body = get(client, "/api/traces", service="a", tags='{"a":"' + "x" * MAX_JAEGER_TAGS_BYTES + '"}')
    assert status == 400 and "longer than" in body["errors"][0]["msg"]
    many = "{" + ",".join(f'"k{i}":"v"' for i in range(MAX_JAEGER_TAGS + 1)) + "}"
    status, body = get(client, "/api/traces", service="a", tags=many)
    assert status == 400 and f"more than {MAX_JAEGER_TAGS} tags" in body["errors"][0]["msg"]


def test_too_many_queries_is_a_429_with_retry_after(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    service = client.application.extensions["tracesearch"].query

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise TooManyQueries("4 queries already running in this process")

    monkeypatch.setattr(service, "search", busy)
    answer = client.get("/api/search", query_string={"q": "{}"})
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    assert "too many queries running" in (answer.json or {})["message"]
