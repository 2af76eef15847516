"""rate() and count_over_time() from the per-minute span metrics: only where the metrics are surely written
and cover the range; the newest steps, ranges before the service graph wrote anything, an instant
query's partial first minute, and deployments without the service graph are counted over the spans. Every
answer counts what the span path counts."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from tests.unit.servicegraph.topology import MINUTE_NS, T0, span
from tracesearch.model import Span, SpanKind, StatusCode
from tracesearch.query.span_aggregation import MetricsResult
from tracesearch.query.traceql import parse
from tracesearch.servicegraph.stage import ServiceGraphStage, StageConfig
from tracesearch.services import traceql_metrics
from tracesearch.services.latency_rollup import RollupSource
from tracesearch.storage.memory import MemoryStore

S = 1_000_000_000
LAG_NS = 600 * S
COUNT = '{ resource.service.name = "web" } | count_over_time() by (status)'
RATE = '{ resource.service.name = "web" && kind = server } | rate()'
# The same selections in a shape the span metrics cannot answer: always counted over the spans.
COUNT_RAW = '{ resource.service.name = "web" && duration >= 0ns } | count_over_time() by (status)'
RATE_RAW = '{ resource.service.name = "web" && kind = server && duration >= 0ns } | rate()'


def corpus(minutes: int, seed: int = 3) -> list[Span]:
    rng = random.Random(seed)
    spans = []
    for n in range(minutes * 40):
        at = T0 + rng.randrange(minutes * MINUTE_NS)
        one = span(f"{n:032x}", f"{n + 1:016x}", rng.choice(("web", "api")), SpanKind.SERVER, start_ns=at)
        if rng.random() < 0.2:
            one.status_code = StatusCode.ERROR
        spans.append(one)
    return spans


def store_with(spans: Sequence[Span], metrics_from_ns: int = 0) -> MemoryStore:
    """The spans stored; the span metrics and rollups of those starting at or after ``metrics_from_ns``
    written as the service-graph stage writes them (the stage was off before)."""
    store = MemoryStore()
    store.write(spans)
    stage = ServiceGraphStage(
        StageConfig(wait_s=0, flush_interval_s=3600), store, store.aggregates, lambda *_: None, "test"
    )
    stage.observe([s for s in spans if s.start_ns >= metrics_from_ns])
    stage.close()
    return store


def run(store: MemoryStore, q: str, start: int, end: int, step: int, now: int, instant: bool = False) -> MetricsResult:
    source = RollupSource(store.aggregates, store, lag_ns=LAG_NS, clock=lambda: now)
    return traceql_metrics.run(store, store.aggregates, parse(q), start, end, step, instant, source)


def points(result: MetricsResult) -> dict[tuple[tuple[tuple[str, str], ...], int], float]:
    """Non-zero samples (the span path also answers empty steps, the span metrics do not)."""
    return {(s.labels, ms): v for s in result.series for ms, v in s.samples if v}


def totals(result: MetricsResult) -> dict[tuple[tuple[str, str], ...], float]:
    if result.instant:
        return {s.labels: s.value or 0.0 for s in result.series}
    return {s.labels: sum(v for _, v in s.samples) for s in result.series}


@pytest.mark.parametrize(("q", "raw"), [(COUNT, COUNT_RAW), (RATE, RATE_RAW)])
def test_a_past_range_comes_from_the_span_metrics_and_counts_what_the_spans_count(q: str, raw: str) -> None:
    store = store_with(corpus(20))
    start, end = T0 + 17 * S, T0 + 20 * MINUTE_NS
    fast = run(store, q, start, end, MINUTE_NS, now=end + 3600 * S)
    slow = run(store, raw, start - start % MINUTE_NS, end, MINUTE_NS, now=end + 3600 * S)
    assert (fast.source, slow.source) == ("span-metrics", "spans")
    assert points(fast) == pytest.approx(points(slow)) and len(points(fast)) >= 20


@pytest.mark.parametrize(("q", "raw"), [(COUNT, COUNT_RAW), (RATE, RATE_RAW)])
def test_the_newest_minutes_come_from_the_spans(q: str, raw: str) -> None:
    """The span metrics of a minute are written a flush (or a late span) after it: counting the newest
    minutes from them would show a dip that is not there."""
    spans = corpus(30)
    store = store_with(spans[: len(spans) // 2])  # the stage has not flushed the second half yet
    store.write(spans[len(spans) // 2 :])
    end = T0 + 30 * MINUTE_NS
    both = run(store, q, T0, end, MINUTE_NS, now=end)
    assert both.source == "span-metrics+spans"
    steps = sorted({ms for _, ms in points(both)})
    assert steps == [(T0 + m * MINUTE_NS) // 1_000_000 for m in range(30)]
    newest = run(store, raw, end - LAG_NS - MINUTE_NS, end, MINUTE_NS, now=end)
    recent = {key: v for key, v in points(both).items() if key[1] * 1_000_000 >= end - LAG_NS}
    assert recent and recent == pytest.approx({k: v for k, v in points(newest).items() if k in recent})


def test_without_the_service_graph_everything_is_counted_over_the_spans() -> None:
    """No span metrics are written then; answering from them would say nothing happened."""
    store = MemoryStore()
    store.write(corpus(5))
    end = T0 + 5 * MINUTE_NS
    answer = traceql_metrics.run(store, store.aggregates, parse(COUNT), T0, end, MINUTE_NS, False, None)
    assert answer.source == "spans" and sum(totals(answer).values()) > 50


def test_a_range_reaching_back_before_the_span_metrics_comes_from_the_spans() -> None:
    spans = corpus(10)
    store = store_with(spans, metrics_from_ns=T0 + 5 * MINUTE_NS)
    end = T0 + 10 * MINUTE_NS
    before = run(store, COUNT, T0, end, MINUTE_NS, now=end + 3600 * S)
    assert before.source == "spans"
    expected = sum(1 for s in spans if s.resource.service_name == "web")
    assert sum(totals(before).values()) == expected
    later = run(store, COUNT, T0 + 5 * MINUTE_NS, end, MINUTE_NS, now=end + 3600 * S)
    assert later.source == "span-metrics"


@pytest.mark.parametrize(("q", "raw"), [(COUNT, COUNT_RAW), (RATE, RATE_RAW)])
def test_an_instant_query_counts_its_partial_first_minute_from_the_spans(q: str, raw: str) -> None:
    store = store_with(corpus(20))
    start, end = T0 + 90 * S + 123, T0 + 20 * MINUTE_NS - 7 * S
    fast = run(store, q, start, end, end - start, now=end + 3600 * S, instant=True)
    slow = run(store, raw, start, end, end - start, now=end + 3600 * S, instant=True)
    assert (fast.source, slow.source) == ("span-metrics+spans", "spans")
    assert totals(fast) == pytest.approx(totals(slow))


def test_an_instant_query_of_recent_minutes_is_counted_over_the_spans() -> None:
    store = store_with(corpus(20))
    end = T0 + 20 * MINUTE_NS
    answer = run(store, COUNT, end - 300 * S, end, 300 * S, now=end, instant=True)
    assert answer.source == "spans" and sum(totals(answer).values()) > 0
