"""Per-minute aggregates and the label cap."""

from __future__ import annotations

from tests.unit.servicegraph.topology import MINUTE_NS, T0, span
from tracesearch.model import SpanKind, StatusCode
from tracesearch.servicegraph.aggregator import OVERFLOW_LABEL, Aggregator
from tracesearch.servicegraph.model import Call


def test_spans_are_counted_per_minute_and_labels() -> None:
    aggregator = Aggregator(max_series=100)
    aggregator.add_spans(
        [
            span("1" * 32, "a" * 16, "web", SpanKind.SERVER, error=True, start_ns=T0, name="GET /"),
            span("1" * 32, "b" * 16, "web", SpanKind.SERVER, start_ns=T0 + 59_000_000_000, name="GET /"),
            span("1" * 32, "c" * 16, "web", SpanKind.SERVER, start_ns=T0 + MINUTE_NS, name="GET /"),
        ]
    )
    snapshot = aggregator.drain()
    counts = {(minute - T0, labels): (s.calls, s.errors) for (minute, labels), s in snapshot.spans.items()}
    server = int(SpanKind.SERVER)
    assert counts == {
        (0, ("web", "GET /", server, int(StatusCode.ERROR))): (1, 1),
        (0, ("web", "GET /", server, int(StatusCode.UNSET))): (1, 0),
        (MINUTE_NS, ("web", "GET /", server, int(StatusCode.UNSET))): (1, 0),
    }
    assert not aggregator.drain()  # drained: the next flush starts from zero


def test_label_sets_beyond_the_cap_are_folded_into_overflow() -> None:
    aggregator = Aggregator(max_series=2)
    aggregator.add_spans([span("1" * 32, f"{i:016x}", "web", SpanKind.SERVER, name=f"GET /{i}") for i in range(5)])
    aggregator.add_calls([Call("web", f"host-{i}", "virtual_node", False, 1, -1, T0) for i in range(4)])
    snapshot = aggregator.drain()
    names = sorted((labels[1], s.calls) for (_, labels), s in snapshot.spans.items())
    assert names == [("GET /0", 1), ("GET /1", 1), (OVERFLOW_LABEL, 3)]
    servers = sorted((labels[1], s.calls) for (_, labels), s in snapshot.edges.items())
    assert servers == [(OVERFLOW_LABEL, 2), ("host-0", 1), ("host-1", 1)]
    assert aggregator.span_cap.overflowed == 3 and aggregator.edge_cap.overflowed == 2
