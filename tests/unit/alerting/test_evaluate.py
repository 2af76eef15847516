"""The evaluator over the in-memory store: the span-metrics path and the TraceQL path give the same
answers, grouped by label set; examples are the slow or failing traces, and they exist."""

from __future__ import annotations

import pytest

from tests.unit.alerting.shop import NOW_NS, S, rule, span, store_with
from tracesearch.alerting.evaluate import SPAN_METRICS, SPANS, Evaluator, from_span_metrics
from tracesearch.alerting.examples import example_trace_ids, search_filter
from tracesearch.alerting.rules import Scope
from tracesearch.services.query import QueryService
from tracesearch.storage.memory import MemoryStore

START = NOW_NS - 200 * S


def shop() -> tuple[MemoryStore, set[str], set[str]]:
    spans = [span("checkout", "POST /pay", 10, START + i * S) for i in range(90)]
    slow = [span("checkout", "POST /pay", 2000 + i, START + (100 + i) * S) for i in range(10)]
    failing = [span("checkout", "GET /cart", 20, START + i * S, error=i < 5) for i in range(20)]
    other = [span("search", "GET /q", 5000, START + i * S) for i in range(10)]  # out of scope
    store = store_with([*spans, *slow, *failing, *other])
    return store, {s.trace_id for s in slow}, {s.trace_id for s in failing[:5]}


@pytest.fixture
def evaluator() -> Evaluator:
    store, _, _ = shop()
    return Evaluator(QueryService(store, store.aggregates), store.aggregates)


def on_spans(r: object) -> object:
    """The same rule through the TraceQL path: an attribute filter every span of the scope meets."""
    scope = r.scope  # type: ignore[attr-defined]
    return type(r)(
        **{**r.__dict__, "scope": Scope(scope.service, scope.operation, scope.span_kind, {"span.http.route": "/pay"})}
    )


def test_a_latency_quantile_comes_from_span_metrics_and_agrees_with_the_spans(evaluator: Evaluator) -> None:
    r = rule()
    assert from_span_metrics(r)
    [red] = evaluator.evaluate(r, NOW_NS)
    assert (red.labels, red.source) == ({}, SPAN_METRICS)
    [exact] = evaluator.evaluate(on_spans(r), NOW_NS)  # type: ignore[arg-type]
    assert exact.source == SPANS
    assert exact.value == pytest.approx(2.004, rel=0.01)  # nearest rank 95 of 100: the 5th slow one
    assert red.value == pytest.approx(exact.value, rel=0.05)  # the histogram's stated error


def test_error_rate_and_request_rate_per_operation_on_both_paths(evaluator: Evaluator) -> None:
    scope = Scope(service="checkout")
    errors = rule("error_rate", scope=scope, group_by=("operation",), threshold=0.1)
    by_op = {s.labels["operation"]: s.value for s in evaluator.evaluate(errors, NOW_NS)}
    assert by_op == {"POST /pay": 0.0, "GET /cart": 0.25}
    assert evaluator.last_source == SPAN_METRICS
    on_spans_errors = rule(
        "error_rate", scope=Scope("checkout", attributes={"span.http.route": "/pay"}), group_by=("operation",)
    )
    assert {s.labels["operation"]: s.value for s in evaluator.evaluate(on_spans_errors, NOW_NS)} == by_op
    assert evaluator.last_source == SPANS
    rate = rule("request_rate", scope=scope, window_s=300.0)
    [sample] = evaluator.evaluate(rate, NOW_NS)
    assert sample.value == pytest.approx(120 / 330)  # the 5 minutes and the half minute of the current one


def test_span_filters_and_traceql_rules_go_through_the_query_service(evaluator: Evaluator) -> None:
    slow_count = rule("span_count", filter="{ duration > 1s }", scope=Scope(), group_by=("service",), window_s=600.0)
    assert {s.labels["service"]: s.value for s in evaluator.evaluate(slow_count, NOW_NS)} == {
        "checkout": 10.0,
        "search": 10.0,
    }
    query = '{ resource.service.name = "checkout" } | quantile_over_time(duration, 0.95) by (name)'
    traceql = rule("traceql", query=query, scope=Scope(), window_s=600.0)
    values = {s.labels["name"]: s.value for s in evaluator.evaluate(traceql, NOW_NS)}
    assert values["POST /pay"] == pytest.approx(2.004, rel=0.01)


def test_nothing_in_the_window_is_no_sample_but_a_zero_rate() -> None:
    store = store_with([])
    evaluator = Evaluator(QueryService(store, store.aggregates), store.aggregates)
    assert evaluator.evaluate(rule(), NOW_NS) == []
    [zero] = evaluator.evaluate(rule("request_rate", op="<", threshold=1.0), NOW_NS)
    assert zero.value == 0.0


def test_examples_are_the_slowest_or_the_failing_traces_and_exist() -> None:
    store, slow, failing = shop()
    query = QueryService(store, store.aggregates)
    latency = example_trace_ids(query, rule(), {}, NOW_NS)
    assert len(latency) == 5 and set(latency) <= slow
    assert min(query.trace(t).spans[0].duration_ns for t in latency) == 2005 * 1_000_000  # the five slowest
    assert [query.trace(t).spans[0].duration_ns for t in latency] == sorted(
        (query.trace(t).spans[0].duration_ns for t in latency), reverse=True
    )
    errors = example_trace_ids(query, rule("error_rate", scope=Scope(service="checkout")), {}, NOW_NS)
    assert set(errors) == failing
    grouped = rule("error_rate", scope=Scope(), group_by=("service", "operation"))
    assert search_filter(grouped, {"service": "checkout", "operation": "GET /cart"}) == (
        '{ name = "GET /cart" && resource.service.name = "checkout" && status = error }'
    )
