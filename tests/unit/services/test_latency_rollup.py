"""Latency panels from the per-service rollups: which queries, which time range, what coverage, and answers
within the histogram's error of the span path's (the memory store stands in for Elasticsearch here; the
integration test compares with Elasticsearch itself)."""

from __future__ import annotations

import math
import random

import pytest

from tests.unit.servicegraph.topology import MINUTE_NS, T0, span
from tracesearch.model import Span, SpanKind
from tracesearch.query.span_aggregation import MetricsResult
from tracesearch.query.traceql import parse
from tracesearch.servicegraph.aggregator import Snapshot
from tracesearch.servicegraph.histogram import STATED_RELATIVE_ERROR
from tracesearch.servicegraph.rollup import ServiceLatency
from tracesearch.services import traceql_metrics
from tracesearch.services.latency_rollup import (
    MAX_GROUPS,
    LatencyShape,
    RollupSource,
    Split,
    as_span_series,
    covered,
    latency_shape,
    split,
)
from tracesearch.storage.contracts import LatencySeries, LatencyStep
from tracesearch.storage.memory import MemoryStore

S = 1_000_000_000
STEP = 60 * S
PANEL = '{ resource.service.name = "web" } | quantile_over_time(duration, .5, .9, .99)'


@pytest.mark.parametrize(
    "q",
    [
        PANEL,
        "{ } | quantile_over_time(duration, .95)",
        '{ resource.service.name = "web" && resource.service.name = "web" } | quantile_over_time(duration, .5)',
        "{ } | quantile_over_time(duration, .5) by (resource.service.name)",
        '{ resource.service.name = "web" } | quantile_over_time(duration, .5, .99) by (resource.service.name)',
    ],
)
def test_the_shapes_the_rollups_answer(q: str) -> None:
    assert latency_shape(parse(q), STEP, instant=False) is not None


@pytest.mark.parametrize(
    "q",
    [
        '{ resource.service.name = "web" && name = "GET /" } | quantile_over_time(duration, .5)',
        '{ resource.service.name = "web" } | quantile_over_time(duration, .5) by (name)',
        '{ resource.service.name != "web" } | quantile_over_time(duration, .5)',
        '{ resource.service.name =~ "w.*" } | quantile_over_time(duration, .5)',
        '{ span.service.name = "web" } | quantile_over_time(duration, .5)',
        '{ resource.service.name = "web" || resource.service.name = "api" } | quantile_over_time(duration, .5)',
        '{ resource.service.name = "a" && resource.service.name = "b" } | quantile_over_time(duration, .5)',
        '{ resource.service.name = "web" } | histogram_over_time(duration)',
        '{ resource.service.name = "web" } | avg_over_time(duration)',
        '{ resource.service.name = "web" } > { } | quantile_over_time(duration, .5)',
        "{ false } | quantile_over_time(duration, .5)",
    ],
)
def test_every_other_shape_is_left_to_the_spans(q: str) -> None:
    assert latency_shape(parse(q), STEP, instant=False) is None


def test_instant_queries_and_steps_that_are_not_whole_minutes_are_left_to_the_spans() -> None:
    assert latency_shape(parse(PANEL), STEP, instant=True) is None
    assert latency_shape(parse(PANEL), 90 * S, instant=False) is None
    assert latency_shape(parse(PANEL), 5 * STEP, instant=False) is not None


def test_the_range_is_aligned_on_the_step_and_cut_where_the_rollups_may_not_be_written_yet() -> None:
    start = T0 + 37 * S
    assert split(start, start + 3600 * S, STEP, now_ns=start + 7200 * S, lag_ns=600 * S) == Split(
        T0, T0 + 3600 * S, start + 3600 * S
    )
    recent = split(start, start + 3600 * S, STEP, now_ns=start + 3600 * S, lag_ns=600 * S)
    assert recent.cut_ns == T0 + 3000 * S and (recent.cut_ns - recent.start_ns) % STEP == 0
    assert split(start, start + 60 * S, STEP, now_ns=start, lag_ns=600 * S).cut_ns == T0  # all from the spans


def _load(store: MemoryStore, spans: list[Span], rollup_from_ns: int = 0) -> None:
    """Store the spans; the rollups hold those starting at or after ``rollup_from_ns`` (the service graph
    was off before)."""
    store.write(spans)
    rollup = ServiceLatency()
    rollup.add([s for s in spans if s.start_ns >= rollup_from_ns], now_ns=0)
    store.aggregates.write(Snapshot(latency=rollup.drain(0, everything=True), seq=1), "p1")


def _corpus(minutes: int, seed: int = 7) -> list[Span]:
    rng = random.Random(seed)
    spans = []
    for m in range(minutes):
        for i in range(300):
            service = rng.choice(("web", "api"))
            duration = int(rng.lognormvariate(17, 1.0))  # about 24 ms, long tail
            start = T0 + m * MINUTE_NS + rng.randrange(MINUTE_NS - duration % MINUTE_NS)
            spans.append(
                span(
                    f"{m:08x}{i:024x}", f"{i + 1:016x}", service, SpanKind.SERVER, start_ns=start, duration_ns=duration
                )
            )
    return spans


def _source(store: MemoryStore, now_ns: int) -> RollupSource:
    return RollupSource(store.aggregates, store, lag_ns=600 * S, clock=lambda: now_ns)


def _samples(result: MetricsResult) -> dict[tuple[tuple[tuple[str, str], ...], int], float]:
    return {(s.labels, ms): v for s in result.series for ms, v in s.samples}


def _nearest_rank(spans: list[Span], service: str | None, minute_ns: int, q: float) -> float:
    durations = sorted(
        s.end_ns - s.start_ns
        for s in spans
        if minute_ns <= s.start_ns < minute_ns + MINUTE_NS and service in (None, s.resource.service_name)
    )
    return durations[max(1, math.ceil(q * len(durations))) - 1] / S


@pytest.mark.parametrize(
    ("q", "service"),
    [(PANEL, "web"), ("{ } | quantile_over_time(duration, .5, .95) by (resource.service.name)", None)],
)
def test_a_past_range_comes_from_the_rollups_within_the_stated_error(q: str, service: str | None) -> None:
    spans = _corpus(10)
    store = MemoryStore()
    _load(store, spans)
    query, start, end = parse(q), T0 + 13 * S, T0 + 10 * MINUTE_NS
    fast = traceql_metrics.run(store, store.aggregates, query, start, end, STEP, False, _source(store, end + 3600 * S))
    # The span path over the range aligned on the step, as the rollups' answer is.
    slow = traceql_metrics.run(store, store.aggregates, query, start - start % STEP, end, STEP, False)
    assert fast.source == "span-metrics" and slow.source == "spans"
    rollup = _samples(fast)
    assert rollup.keys() == _samples(slow).keys() and len(rollup) >= 20  # the same series and steps
    for (labels, ms), value in rollup.items():
        named = dict(labels)
        exact = _nearest_rank(spans, named.get("resource.service.name", service), ms * 1_000_000, float(named["p"]))
        assert abs(value - exact) <= STATED_RELATIVE_ERROR * exact, (labels, ms)


def test_the_newest_steps_come_from_the_spans() -> None:
    store = MemoryStore()
    _load(store, _corpus(30))
    end = T0 + 30 * MINUTE_NS
    both = traceql_metrics.run(store, store.aggregates, parse(PANEL), T0, end, STEP, False, _source(store, end))
    assert both.source == "span-metrics+spans"
    [p50] = [s for s in both.series if ("p", "0.5") in s.labels]
    assert [ms for ms, _ in p50.samples] == [(T0 + m * MINUTE_NS) // 1_000_000 for m in range(30)]


def test_a_range_reaching_back_before_the_rollups_comes_from_the_spans() -> None:
    store = MemoryStore()
    _load(store, _corpus(10), rollup_from_ns=T0 + 5 * MINUTE_NS)
    end = T0 + 10 * MINUTE_NS
    source = _source(store, end + 3600 * S)
    assert not covered(source, T0, end)
    assert covered(source, T0 + 5 * MINUTE_NS, end)
    answer = traceql_metrics.run(store, store.aggregates, parse(PANEL), T0, end, STEP, False, source)
    assert answer.source == "spans"
    later = traceql_metrics.run(store, store.aggregates, parse(PANEL), T0 + 5 * MINUTE_NS, end, STEP, False, source)
    assert later.source == "span-metrics"


def test_a_range_before_any_span_is_covered_from_the_first_rollup() -> None:
    store = MemoryStore()
    _load(store, _corpus(3))
    source = _source(store, T0 + 3600 * S)
    assert covered(source, T0 - 3600 * S, T0 + 3 * MINUTE_NS)
    assert not covered(source, T0 + 3 * MINUTE_NS, T0 + 9 * MINUTE_NS)  # no rollup at all: the spans say


def test_by_service_keeps_the_services_with_the_most_spans_first_as_the_span_path_does() -> None:
    steps = [LatencyStep(T0, calls, {100: calls}) for calls in (1, 5, 5)]
    found = [LatencySeries("a", [steps[0]]), LatencySeries("c", [steps[1]]), LatencySeries("b", [steps[2]])]
    shape = LatencyShape(None, "resource.service.name", (0.5,))
    assert [s.labels for s in as_span_series(found, shape)] == [
        (("resource.service.name", "b"),),
        (("resource.service.name", "c"),),
        (("resource.service.name", "a"),),
    ]
    many = [LatencySeries(f"s{i:03d}", [LatencyStep(T0, 1, {100: 1})]) for i in range(MAX_GROUPS + 5)]
    assert len(as_span_series(many, shape)) == MAX_GROUPS
