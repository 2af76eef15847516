"""Tail sampling, pure: the policies, the policy file, the buffer's bounds, the decision cache and
which offsets may be committed."""

from __future__ import annotations

import json
import random
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tracesearch.model import Resource, Scope, Span, StatusCode
from tracesearch.sampling.tail.buffer import DecisionCache, TraceBuffer
from tracesearch.sampling.tail.offsets import OffsetTracker
from tracesearch.sampling.tail.percentiles import TenantPercentiles
from tracesearch.sampling.tail.policies import (
    DROP,
    POLICY_ATTRIBUTE,
    Decision,
    PolicyError,
    Trace,
    load_policy_file,
    parse_policies,
    trace_fraction,
)
from tracesearch.sampling.tail.sampler import Output, TailSampler
from tracesearch.servicegraph.aggregator import Aggregator
from tracesearch.storage.memory import MemoryStore

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000


def span(
    trace_id: str,
    service: str = "shop",
    name: str = "GET /",
    ms: float = 10,
    parent: str = "",
    error: bool = False,
    start: int = T0,
    **attributes: object,
) -> Span:
    return Span(
        trace_id,
        uuid.uuid4().hex[:16],
        name,
        start,
        start + int(ms * MS),
        Resource({"service.name": service}, service),
        Scope(),
        parent_span_id=parent,
        status_code=StatusCode.ERROR if error else StatusCode.UNSET,
        attributes=dict(attributes),  # type: ignore[arg-type]
    )


def decide(doc: Any, *spans: Span) -> Decision:
    return parse_policies(doc).decide(Trace(spans[0].trace_id, spans))


POLICIES = {
    "policies": [
        {"name": "errors", "type": "error"},
        {
            "name": "slow",
            "type": "latency",
            "threshold_ms": 1000,
            "services": {"db": 50},
            "operations": {"shop": {"POST /pay": 200}},
        },
        {"name": "vip", "type": "traceql", "query": '{ span.tier = "gold" }'},
        {"name": "sample", "type": "probabilistic", "percentage": 10},
    ]
}


def test_the_first_policy_that_keeps_a_trace_names_it() -> None:
    t = uuid.uuid4().hex
    assert decide(POLICIES, span(t, error=True), span(t, ms=5000)) == Decision(True, "errors")
    assert decide(POLICIES, span(t, ms=1001)) == Decision(True, "slow")
    assert decide(POLICIES, span(t, service="db", ms=51)).policy == "slow"
    assert decide(POLICIES, span(t, service="db", ms=49), span(t, tier="gold")).policy == "vip"
    assert decide(POLICIES, span(t, name="POST /pay", ms=201)).policy == "slow"
    # The operation's own threshold wins over the service's (none here) and the global one.
    assert decide(POLICIES, span(t, name="POST /pay", ms=199)).policy in ("", "sample")


def test_the_global_threshold_is_the_whole_trace_end_to_end() -> None:
    t = uuid.uuid4().hex
    first = span(t, ms=600)
    second = span(t, ms=600, start=T0 + 500 * MS)
    assert decide(POLICIES, first, second).policy == "slow"  # 1.1 s from first start to last end


def test_the_probabilistic_share_is_a_hash_of_the_trace_id() -> None:
    doc = {"policies": [{"name": "sample", "type": "probabilistic", "percentage": 10}]}
    ids = [uuid.uuid4().hex for _ in range(20_000)]
    kept = [t for t in ids if decide(doc, span(t)).keep]
    assert 0.09 < len(kept) / len(ids) < 0.11
    # The same trace id always gets the same answer, whatever its spans and their order.
    for t in ids[:200]:
        spans = [span(t, ms=random.randint(1, 99)) for _ in range(5)]
        assert decide(doc, *spans).keep == decide(doc, *reversed(spans)).keep == (trace_fraction(t) < 0.1)


def test_a_decision_does_not_depend_on_the_order_spans_arrived_in() -> None:
    doc = {"policies": [{"name": "root-checkout", "type": "traceql", "query": '{ rootServiceName = "checkout" }'}]}
    t = uuid.uuid4().hex
    root = span(t, service="checkout")
    child = span(t, service="db", parent=root.span_id, start=T0 + MS)
    assert decide(doc, child, root).keep and decide(doc, root, child).keep


def test_rate_limiting_counts_per_service_and_second_of_the_traces_own_time() -> None:
    decider = parse_policies({"policies": [{"name": "floor", "type": "rate_limiting", "traces_per_second": 2}]})

    def keep(service: str, second: int) -> bool:
        t = uuid.uuid4().hex
        return decider.decide(Trace(t, [span(t, service=service, start=T0 + second * 1_000_000_000)])).keep

    assert [keep("a", 0) for _ in range(3)] == [True, True, False]
    assert keep("b", 0) and keep("a", 1)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, 'expected {"policies": [...]}'),
        ({"policies": [{"type": "error"}]}, 'needs a non-empty "name"'),
        ({"policies": [{"name": "x", "type": "often"}]}, "type must be one of error, latency"),
        ({"policies": [{"name": "x", "type": "error", "treshold": 1}]}, "unknown key(s) treshold"),
        ({"policies": [{"name": "x", "type": "latency"}]}, "set threshold_ms, services or operations"),
        ({"policies": [{"name": "x", "type": "probabilistic", "percentage": 101}]}, "at most 100"),
        ({"policies": [{"name": "x", "type": "traceql", "query": "{ span.a = }"}]}, "policies[0] (x)"),
        ({"policies": [{"name": "x", "type": "traceql", "query": "{ } | rate()"}]}, "a metrics query"),
        ({"policies": [{"name": "x", "type": "error"}, {"name": "x", "type": "error"}]}, "used twice"),
    ],
)
def test_a_bad_policy_file_is_refused_with_where(doc: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        parse_policies(doc)


def test_a_policy_file_is_read_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "tail.json"
    path.write_text(json.dumps(POLICIES))
    assert load_policy_file(str(path)).names == ["errors", "slow", "vip", "sample"]
    path.write_text("{")
    with pytest.raises(PolicyError, match="is not JSON"):
        load_policy_file(str(path))
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy_file(str(tmp_path / "missing.json"))


def test_offsets_are_committable_up_to_the_oldest_record_not_done() -> None:
    tracker = OffsetTracker()
    for offset in range(5):
        tracker.read(("p", offset))
    assert tracker.commit_points() == {"p": 0}
    tracker.release(("p", 1))
    tracker.release(("p", 2))
    assert tracker.commit_points() == {"p": 0}
    tracker.release(("p", 0))
    assert tracker.commit_points() == {"p": 3}
    tracker.release(("p", 4))
    tracker.release(("p", 3))
    assert tracker.commit_points() == {"p": 5}
    tracker.read(("p", 5), holds=2)  # a record with spans of two traces
    tracker.release(("p", 5))
    assert tracker.commit_points() == {"p": 5}
    tracker.release(("p", 5))
    assert tracker.commit_points() == {"p": 6}


def sampler(wait_s: float = 1.0, max_spans: int = 1000, max_bytes: int = 10**9, cache: int = 1000) -> TailSampler:
    decider = parse_policies(
        {
            "policies": [
                {"name": "errors", "type": "error"},
                {"name": "sample", "type": "probabilistic", "percentage": 0},
            ]
        }
    )
    return TailSampler(decider, TraceBuffer(wait_s, max_spans, max_bytes), DecisionCache(cache))


def test_a_trace_waits_until_quiet_then_its_spans_are_kept_or_dropped_and_released() -> None:
    s = sampler()
    ok, bad = uuid.uuid4().hex, uuid.uuid4().hex
    out = Output()
    s.offer(("p", 0), [span(ok)], 100, now=0.0, out=out)
    s.offer(("p", 1), [span(bad)], 100, now=0.0, out=out)
    s.offer(("p", 2), [span(bad, error=True)], 100, now=0.5, out=out)
    s.decide_due(0.9, out)
    assert not out.kept and not out.dropped and s.commit_points() == {"p": 0}
    s.decide_due(1.0, out)  # ok has been quiet for 1 s: dropped, its record done
    assert [x.trace_id for x in out.dropped] == [ok] and s.commit_points() == {"p": 1}
    s.decide_due(1.5, out)  # bad is kept; its records are done once stored
    assert {x.trace_id for x in out.kept} == {bad} and all(x.attributes[POLICY_ATTRIBUTE] == "errors" for x in out.kept)
    assert s.commit_points() == {"p": 1}
    s.stored(out.kept_positions)
    assert s.commit_points() == {"p": 3}


def test_late_spans_follow_the_decision_and_the_cache_is_bounded() -> None:
    s = sampler(cache=2)
    kept, dropped = uuid.uuid4().hex, uuid.uuid4().hex
    out = Output()
    s.offer(("p", 0), [span(kept, error=True)], 10, 0.0, out)
    s.offer(("p", 1), [span(dropped)], 10, 0.0, out)
    s.decide_due(5.0, out)
    late = Output()
    s.offer(("p", 2), [span(kept)], 10, 6.0, late)
    s.offer(("p", 3), [span(dropped)], 10, 6.0, late)
    assert [x.attributes[POLICY_ATTRIBUTE] for x in late.kept] == ["errors"] and len(late.dropped) == 1
    assert late.kept_positions == [("p", 2)]
    for _ in range(2):  # two newer decisions push the oldest out
        t = uuid.uuid4().hex
        s.offer(("p", 9), [span(t)], 10, 7.0, late)
        s.decide_due(9.0, late)
    assert s.cache.get(kept) is None and len(s.cache) == 2


def test_over_its_bounds_the_buffer_decides_the_oldest_traces_early() -> None:
    s = sampler(max_spans=10, max_bytes=10**9)
    out = Output()
    ids = [uuid.uuid4().hex for _ in range(4)]
    for i, t in enumerate(ids):
        s.offer(("p", i), [span(t) for _ in range(4)], 400, float(i), out)
    # 16 spans offered, 10 allowed: the two oldest traces went early, the rest still wait.
    assert {x.trace_id for x in out.dropped} == set(ids[:2])
    assert s.buffer.spans == 8 and len(s.buffer) == 2 and s.buffer.bytes == 800
    bytes_bound = sampler(max_spans=1000, max_bytes=1000)
    for i, t in enumerate(ids):
        bytes_bound.offer(("p", i), [span(t)], 400, float(i), out)
    assert bytes_bound.buffer.bytes <= 1000 and len(bytes_bound.buffer) == 2


def test_a_rebalance_forgets_what_waits_and_does_not_feed_dropped_spans_twice() -> None:
    s = sampler()
    t = uuid.uuid4().hex
    out = Output()
    s.offer(("p", 0), [span(t)], 10, 0.0, out)
    s.offer(("p", 1), [span(uuid.uuid4().hex)], 10, 5.0, out)  # still waiting at the rebalance
    s.decide_due(2.0, out)
    assert len(out.dropped) == 1
    assert s.reset() == 1 and s.commit_points() == {}
    again = Output()
    s.offer(("p", 0), [span(t)], 10, 6.0, again)  # read again: follows the cached decision
    assert not again.dropped and s.commit_points() == {"p": 1}


def test_buffer_due_order_follows_the_last_span() -> None:
    buffer = TraceBuffer(1.0, 100, 10**6)
    buffer.add("a", [span("a" * 32)], ("p", 0), 1, 0.0)
    buffer.add("b", [span("b" * 32)], ("p", 1), 1, 0.1)
    buffer.add("a", [span("a" * 32)], ("p", 2), 1, 0.5)
    assert [t.trace_id for t in buffer.due(1.2)] == ["b"]
    assert [t.trace_id for t in buffer.due(1.5)] == ["a"]


def metrics_of(spans: list[Span]) -> MemoryStore:
    aggregator = Aggregator(max_series=100)
    aggregator.add_spans(spans)
    store = MemoryStore()
    store.aggregates.write(aggregator.drain(), "p1")
    return store


def percentiles_over(spans: list[Span]) -> TenantPercentiles:
    """Span metrics of ``spans`` in the in-memory twin, read the way the ingester reads them."""
    store = metrics_of(spans)
    return TenantPercentiles(lambda tenant: store.aggregates, clock=lambda: T0 / 1e9 + 60)


UNUSUAL = {"policies": [{"name": "unusual", "type": "latency_percentile", "percentile": 99, "min_calls": 50}]}


def test_a_span_slower_than_its_operations_p99_keeps_the_trace() -> None:
    usual = [span(f"{i:032x}", ms=10 + i % 20, start=T0 - 600 * 10**9) for i in range(1000)]
    decider = parse_policies(UNUSUAL, percentiles_over(usual))
    trace_id = uuid.uuid4().hex

    def decided(ms: float, name: str = "GET /") -> Decision:
        return decider.decide(Trace(trace_id, [span(trace_id, ms=ms, name=name)]))

    assert decided(40) == Decision(True, "unusual")  # p99 of 10-29 ms is about 29 ms
    assert decided(25) == DROP
    # An operation with too few calls in the window is not judged.
    assert decided(10_000, name="GET /rare") == DROP


def test_the_percentile_policy_needs_the_span_metrics() -> None:
    with pytest.raises(PolicyError, match=re.escape("needs the span metrics")):
        parse_policies(UNUSUAL)
    with pytest.raises(PolicyError, match="between 0 and 100"):
        doc = {"policies": [{"name": "x", "type": "latency_percentile", "percentile": 100}]}
        parse_policies(doc, percentiles_over([]))


def test_two_tenants_with_one_trace_id_are_two_traces_decided_apart() -> None:
    """Tenant b sending spans with a's trace id neither joins a's trace (b's error does not keep a's
    spans) nor follows a's decision, and each trace's spans come out under their own tenant."""
    s = sampler()
    shared = uuid.uuid4().hex
    out = Output()
    s.offer(("p", 0), [span(shared), span(shared)], 20, 0.0, out, "a")
    s.offer(("p", 1), [span(shared, error=True)], 10, 0.0, out, "b")
    assert len(s.buffer) == 2
    s.decide_due(1.0, out)
    assert [x.trace_id for x in out.kept_by_tenant["b"]] == [shared]
    assert "a" not in out.kept_by_tenant and len(out.dropped_by_tenant["a"]) == 2
    assert s.cache.get(shared, "a") == DROP and s.cache.get(shared, "b") == Decision(True, "errors")
    assert s.cache.get(shared) is None  # the default tenant's trace of that id is a third one
    late = Output()
    s.offer(("p", 2), [span(shared)], 10, 2.0, late, "a")  # a's late span follows a's decision
    s.offer(("p", 3), [span(shared)], 10, 2.0, late, "b")  # b's follows b's
    assert list(late.kept_by_tenant) == ["b"] and list(late.dropped_by_tenant) == ["a"]


def test_rate_limiting_counts_each_tenant_apart() -> None:
    decider = parse_policies({"policies": [{"name": "floor", "type": "rate_limiting", "traces_per_second": 1}]})
    first = [span(uuid.uuid4().hex) for _ in range(2)]
    assert decider.decide(Trace(first[0].trace_id, first[:1], "a")).keep
    assert not decider.decide(Trace(first[1].trace_id, first[1:], "a")).keep  # a's second in that second
    assert decider.decide(Trace(first[1].trace_id, first[1:], "b")).keep  # b has its own budget


def test_each_tenant_is_judged_against_its_own_span_metrics() -> None:
    fast = metrics_of([span(f"{i:032x}", ms=10, start=T0 - 600 * 10**9) for i in range(100)])
    slow = metrics_of([span(f"{i:032x}", ms=1000, start=T0 - 600 * 10**9) for i in range(100)])
    stores = {"fast": fast, "slow": slow}
    source = TenantPercentiles(lambda tenant: stores[tenant or "fast"].aggregates, clock=lambda: T0 / 1e9 + 60)
    decider = parse_policies(UNUSUAL, source)
    trace_id = uuid.uuid4().hex
    trace = [span(trace_id, ms=100)]
    assert decider.decide(Trace(trace_id, trace, "fast")).keep  # 100 ms is slow where 10 ms is usual
    assert not decider.decide(Trace(trace_id, trace, "slow")).keep  # not where 1 s is
