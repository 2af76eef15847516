"""Per-minute aggregates of calls (per edge) and of spans (per service, name, kind, status).

Each process drains its aggregates every few seconds into *partial* documents; a minute and edge
may thus have several documents (processes, flushes, late spans), which the reader adds up.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from tracesearch.model import Span, StatusCode
from tracesearch.servicegraph.histogram import bucket_of_ns
from tracesearch.servicegraph.model import NO_LATENCY, Call

NS_PER_MINUTE = 60_000_000_000
OVERFLOW_LABEL = "__overflow__"
EdgeLabels = tuple[str, str, str]  # client, server, connection_type
SpanLabels = tuple[str, str, int, int]  # service, span name, SpanKind, StatusCode


class Stats:
    """Counts, errors and latency histograms of one key over one minute."""

    __slots__ = ("buckets", "calls", "client_buckets", "client_sum_ns", "errors", "sum_ns")

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.sum_ns = 0
        self.buckets: dict[int, int] = {}
        self.client_sum_ns = 0
        self.client_buckets: dict[int, int] = {}

    def add(self, duration_ns: int, error: bool) -> None:
        self.calls += 1
        self.errors += error
        self.sum_ns += duration_ns
        index = bucket_of_ns(duration_ns)
        self.buckets[index] = self.buckets.get(index, 0) + 1

    def add_client(self, duration_ns: int) -> None:
        self.client_sum_ns += duration_ns
        index = bucket_of_ns(duration_ns)
        self.client_buckets[index] = self.client_buckets.get(index, 0) + 1


@dataclass(slots=True)
class Snapshot:
    """What one flush drained: stats by (minute start in ns, labels)."""

    edges: dict[tuple[int, EdgeLabels], Stats] = field(default_factory=dict)
    spans: dict[tuple[int, SpanLabels], Stats] = field(default_factory=dict)
    seq: int = 0  # flush number within the process: with the process token, it names the documents
    # Per (minute, service): the entries of ``rollup.ServiceLatency`` that closed by this flush.
    latency: dict[tuple[int, str], Stats] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.edges or self.spans or self.latency)

    def __len__(self) -> int:
        return len(self.edges) + len(self.spans) + len(self.latency)


class SeriesCap:
    """At most ``limit`` distinct label sets per process; later ones are folded into an overflow set
    (span names and virtual peer names are unbounded, Prometheus series are not free)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.seen: set[tuple[object, ...]] = set()
        self.overflowed = 0

    def admit(self, labels: tuple[object, ...]) -> bool:
        if labels in self.seen:
            return True
        if len(self.seen) < self.limit:
            self.seen.add(labels)
            return True
        self.overflowed += 1
        return False


class Aggregator:
    """Not thread-safe (the stage holds a lock)."""

    def __init__(self, max_series: int):
        self._edges: dict[tuple[int, EdgeLabels], Stats] = {}
        self._spans: dict[tuple[int, SpanLabels], Stats] = {}
        self.edge_cap = SeriesCap(max_series)
        self.span_cap = SeriesCap(max_series)
        self._seq = itertools.count(1)

    def add_spans(self, spans: Iterable[Span]) -> None:
        table = self._spans
        for span in spans:
            minute = span.start_ns - span.start_ns % NS_PER_MINUTE
            status = span.status_code
            key = (minute, (span.resource.service_name, span.name, int(span.kind), int(status)))
            stats = table.get(key)
            if stats is None:
                stats = table[key] = Stats()
                if not self.span_cap.admit(key[1]):
                    del table[key]
                    key = (minute, (key[1][0], OVERFLOW_LABEL, key[1][2], key[1][3]))
                    stats = table.setdefault(key, stats)
            stats.add(span.end_ns - span.start_ns, status is StatusCode.ERROR)

    def add_calls(self, calls: Iterable[Call]) -> None:
        table = self._edges
        for call in calls:
            minute = call.start_ns - call.start_ns % NS_PER_MINUTE
            labels: EdgeLabels = (call.client, call.server, call.connection_type)
            if not self.edge_cap.admit(labels):
                labels = (call.client, OVERFLOW_LABEL, call.connection_type)
            stats = table.get((minute, labels))
            if stats is None:
                stats = table[(minute, labels)] = Stats()
            stats.add(call.server_ns, call.error)
            if call.client_ns != NO_LATENCY:
                stats.add_client(call.client_ns)

    def drain(self) -> Snapshot:
        snapshot = Snapshot(self._edges, self._spans, next(self._seq))
        self._edges, self._spans = {}, {}
        return snapshot
