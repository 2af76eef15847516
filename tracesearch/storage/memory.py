"""The in-memory store: every storage contract kept in one process's memory.

It is the twin of the Elasticsearch store for tests and for trying services without a cluster: the
storage conformance suite (``tests/storage_conformance.py``) runs against both. Conditions are
evaluated by ``query.matching``, the definition of what they mean; time windows follow the
Elasticsearch store's millisecond ``@timestamp`` of a span's start. It keeps everything and samples
nothing, so where the Elasticsearch store may approximate (sampled autocomplete, t-digest quantiles)
this one is exact.
"""

from __future__ import annotations

import fnmatch
import heapq
import math
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tracesearch.alerting.state import AlertState, Transition, event, is_current, view
from tracesearch.alerting.views import AlertEvent, AlertView
from tracesearch.model import Span, SpanKind, short_trace_id
from tracesearch.query.conditions import All, Condition, FieldEquals, TraceQuery
from tracesearch.query.matching import SpanFacts, facts, matches
from tracesearch.query.remote_service import REMOTE_SERVICE_FIELD
from tracesearch.query.span_aggregation import SeriesBucket, SpanAggregation, SpanSeries, histogram_buckets
from tracesearch.query.span_terms import encode_number
from tracesearch.servicegraph.aggregator import Snapshot, Stats
from tracesearch.servicegraph.model import (
    EDGE_LABELS,
    KIND_LABELS,
    SPAN_LABELS,
    STATUS_LABELS,
    ParentInfo,
    SpanRef,
    check_labels,
    normalise_label,
    short_label,
)
from tracesearch.storage import aggregate_points
from tracesearch.storage.contracts import (
    AlertWrite,
    DependencyLink,
    EdgeStats,
    LatencySeries,
    LogLines,
    SamplingState,
    SpanMetricsSeries,
    StateVersion,
    StoredAlert,
    WriteResult,
)

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_S
NS_PER_DAY = 86_400 * NS_PER_S
TAGS_LOOKBACK_NS = 24 * 3600 * NS_PER_S
INTRINSIC_FIELDS = {"name": "name", "status": "status", "kind": "kind", "statusMessage": "statusMessage"}
ROOT_FIELDS = {"rootName": "name", "rootServiceName": "service"}
TAGGED_INTRINSICS = ("event:name", "instrumentation:name")
MAX_GROUPS = 100


def _ms(ns: int) -> int:
    return ns // NS_PER_MS


def _day_start(ns: int) -> int:
    day = datetime.fromtimestamp(max(ns, 0) // NS_PER_S, tz=UTC).date()
    return int(datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp()) * NS_PER_S


def _ranked(counts: Counter[str], limit: int) -> list[str]:
    """Most frequent first, then by value, as a terms aggregation orders its buckets."""
    return [value for value, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def _key(span: Span) -> tuple[str, str, int]:
    return (span.trace_id, span.span_id, int(span.kind))


def _trace_order(stored: SpanFacts) -> tuple[int, str, str]:
    """The order of a trace's spans, Elasticsearch's sort: start, span id, kind."""
    return (stored.span.start_ns, stored.span.span_id, stored.span.kind.label)


@dataclass(slots=True)
class _Aggregate:
    """One process's partial counts of one minute and label set (an aggregate document)."""

    family: str  # "servicegraph", "spanmetrics" or "servicelatency"
    minute_ns: int
    labels: dict[str, str]
    calls: int
    errors: int
    latency_sum_s: float
    buckets: dict[int, int]


class MemoryStore:
    """SpanWriter, SpanReader, AggregateWriter, AggregateReader, SpanLookup and Readiness in one."""

    def __init__(self, trace_lookback_s: float = 7 * 86400.0, clock: Callable[[], int] = time.time_ns):
        self._lock = threading.Lock()
        self._spans: dict[tuple[str, str, int], SpanFacts] = {}
        self._traces: dict[str, list[SpanFacts]] = defaultdict(list)
        self._aggregates: dict[tuple[str, int, int], _Aggregate] = {}
        self._trace_lookback_ns = int(trace_lookback_s * NS_PER_S)
        self._clock = clock

    # -- SpanWriter

    def write(self, spans: Sequence[Span]) -> WriteResult:
        result = WriteResult()
        with self._lock:
            for span in spans:
                key = _key(span)
                result.stored += 1
                if key in self._spans:
                    result.duplicates += 1
                    continue
                stored = self._spans[key] = facts(span)
                self._traces[span.trace_id].append(stored)
                result.created.append(span)
        return result

    # -- SpanReader

    def _all(self) -> list[SpanFacts]:
        with self._lock:
            return list(self._spans.values())

    def _trace(self, trace_id: str, max_spans: int | None = None) -> list[Span]:
        with self._lock:
            found = list(self._traces.get(trace_id, ()))
        if max_spans is None:
            found.sort(key=_trace_order)
        else:
            found = heapq.nsmallest(max_spans, found, key=_trace_order)
        return [f.span for f in found]

    def _matching(self, conditions: Sequence[Condition], start_ns: int, end_ns: int) -> Iterable[SpanFacts]:
        condition = All(tuple(conditions))
        low, high = _ms(start_ns), _ms(end_ns)
        return (f for f in self._all() if low <= _ms(f.span.start_ns) <= high and matches(condition, f))

    def get_trace(
        self, trace_id: str, start_ns: int | None = None, end_ns: int | None = None, max_spans: int | None = None
    ) -> list[Span]:
        return self._trace(trace_id, max_spans)

    def trace_extent(
        self, trace_id: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> tuple[int, int] | None:
        with self._lock:
            found = [f.span for f in self._traces.get(trace_id, ())]
        if not found:
            return None
        return min(s.start_ns for s in found), max(s.end_ns for s in found)

    def candidate_traces(
        self, conditions: Sequence[Condition], start_ns: int, end_ns: int, size: int
    ) -> list[tuple[str, int]]:
        newest: dict[str, int] = {}
        for f in self._matching(conditions, start_ns, end_ns):
            newest[f.span.trace_id] = max(newest.get(f.span.trace_id, f.span.start_ns), f.span.start_ns)
        return sorted(newest.items(), key=lambda item: (-item[1], item[0]))[:size]

    def find_traces(self, query: TraceQuery, max_spans: int | None = None) -> list[list[Span]]:
        found = self.candidate_traces(query.conditions, query.start_ns, query.end_ns, query.limit)
        return [trace for trace in (self._trace(t, max_spans) for t, _ in found) if trace]

    def traces(
        self, trace_ids: Sequence[str], start_ns: int, end_ns: int, max_spans: int | None = None
    ) -> dict[str, list[Span]]:
        return {t: self._trace(t, max_spans) for t in trace_ids}

    def _looked_back(self) -> list[SpanFacts]:
        """The spans of the days the trace look-back covers, as the day-indexed store reads them."""
        first_day = _day_start(self._clock() - self._trace_lookback_ns)
        return [f for f in self._all() if f.span.start_ns >= first_day]

    def services(self) -> list[str]:
        return sorted({f.span.service_name for f in self._looked_back()})

    def operations(
        self, service: str, span_kind: str | None = None, ignore_case: bool = False
    ) -> list[tuple[str, str]]:
        named = FieldEquals("service", service, ignore_case)
        return sorted(
            {
                (f.span.name, f.span.kind.label)
                for f in self._looked_back()
                if matches(named, f) and (span_kind is None or f.span.kind.label == span_kind)
            }
        )

    def _sample(self, start_ns: int | None, end_ns: int | None, conditions: Sequence[Condition]) -> list[SpanFacts]:
        if start_ns is None or end_ns is None:
            end_ns = self._clock()
            start_ns = end_ns - TAGS_LOOKBACK_NS
        return list(self._matching(conditions, start_ns, end_ns))

    def tag_names(
        self, scope: str, start_ns: int | None, end_ns: int | None, limit: int, conditions: Sequence[Condition]
    ) -> list[str]:
        prefix = f"{scope}."
        counts: Counter[str] = Counter()
        for f in self._sample(start_ns, end_ns, conditions):
            counts.update(t[len(prefix) :] for t in f.tags if t.startswith(prefix) and "=" not in t)
        return _ranked(counts, limit)

    def attribute_values(
        self,
        scope: str,
        key: str,
        start_ns: int | None,
        end_ns: int | None,
        limit: int,
        conditions: Sequence[Condition],
    ) -> list[str]:
        prefix = f"{scope}.{key}="
        counts: Counter[str] = Counter()
        for f in self._sample(start_ns, end_ns, conditions):
            counts.update({t[len(prefix) :] for t in f.tags if t.startswith(prefix)})
        return _ranked(counts, limit)

    def numeric_attribute_values(
        self,
        scope: str,
        key: str,
        candidates: Sequence[str],
        start_ns: int | None,
        end_ns: int | None,
        conditions: Sequence[Condition],
    ) -> set[str]:
        name = f"{scope}.{key}"
        held = {e for f in self._sample(start_ns, end_ns, conditions) for e in f.numbers.get(name, ())}
        return {value for value in candidates if encode_number(float(value)) in held}

    def intrinsic_values(
        self, name: str, start_ns: int | None, end_ns: int | None, limit: int, conditions: Sequence[Condition]
    ) -> list[str] | None:
        counts: Counter[str] = Counter()
        sample = self._sample(start_ns, end_ns, conditions)
        if name in TAGGED_INTRINSICS:
            prefix = f"{name}="
            for f in sample:
                counts.update({t[len(prefix) :] for t in f.tags if t.startswith(prefix)})
        elif name in INTRINSIC_FIELDS or name in ROOT_FIELDS:
            field = INTRINSIC_FIELDS.get(name) or ROOT_FIELDS[name]
            roots_only = name in ROOT_FIELDS
            counts.update(
                f.fields[field] for f in sample if field in f.fields and not (roots_only and f.span.parent_span_id)
            )
        else:
            return None
        return _ranked(counts, limit)

    def remote_service_names(self, service: str, start_ns: int, end_ns: int, ignore_case: bool = False) -> list[str]:
        prefix = f"{REMOTE_SERVICE_FIELD}="
        spans = self._matching([FieldEquals("service", service, ignore_case)], start_ns, end_ns)
        return sorted({t[len(prefix) :] for f in spans for t in f.tags if t.startswith(prefix)})

    def aggregate_spans(self, request: SpanAggregation) -> list[SpanSeries]:
        return _SpanAggregation(request).series(
            self._matching(request.conditions, request.start_ns, request.end_ns - 1)
        )

    # -- SpanLookup

    def parents(self, refs: Sequence[SpanRef]) -> dict[tuple[str, str], ParentInfo]:
        wanted = {(r.trace_id, r.span_id) for r in refs}
        found: dict[tuple[str, str], ParentInfo] = {}
        for f in self._all():
            key = (f.span.trace_id, f.span.span_id)
            # Zipkin's shared spans: of the two halves, the server one is the parent.
            if key in wanted and (key not in found or f.span.kind is SpanKind.SERVER):
                found[key] = ParentInfo(f.span.service_name, f.span.kind, f.span.duration_ns)
        return found

    def served(self, refs: Sequence[SpanRef]) -> set[tuple[str, str]]:
        service = {(r.trace_id, r.span_id): r.service for r in refs}
        served: set[tuple[str, str]] = set()
        for f in self._all():
            span = f.span
            keys = [(span.trace_id, span.parent_span_id)]
            if span.kind is SpanKind.SERVER:
                keys.append((span.trace_id, span.span_id))
            for key in keys:
                if key in service and (
                    service[key] != span.service_name or span.kind in (SpanKind.SERVER, SpanKind.CONSUMER)
                ):
                    served.add(key)
        return served

    # -- AggregateWriter

    def write_aggregates(self, snapshot: Snapshot, process: str) -> None:
        records = [
            ("servicegraph", minute, dict(zip(EDGE_LABELS, labels, strict=True)), stats)
            for (minute, labels), stats in snapshot.edges.items()
        ]
        records += [
            ("spanmetrics", minute, _span_labels(labels), stats) for (minute, labels), stats in snapshot.spans.items()
        ]
        records += [
            ("servicelatency", minute, {"service": service}, stats)
            for (minute, service), stats in snapshot.latency.items()
        ]
        with self._lock:
            for n, (family, minute, labels, stats) in enumerate(records):
                # The first write of a record stays, as a create of the same document id does.
                self._aggregates.setdefault(
                    (process, snapshot.seq, n),
                    _Aggregate(family, minute - minute % NS_PER_MINUTE, labels, *_totals(stats)),
                )

    # -- AggregateReader

    def _aggregates_in(self, family: str, start_ns: int, end_ns: int) -> list[_Aggregate]:
        first_minute = start_ns - start_ns % NS_PER_MINUTE
        with self._lock:
            records = list(self._aggregates.values())
        return [r for r in records if r.family == family and _ms(first_minute) <= _ms(r.minute_ns) <= _ms(end_ns)]

    def dependencies(self, start_ns: int, end_ns: int, service: str | None = None) -> list[DependencyLink]:
        calls: Counter[tuple[str, str]] = Counter()
        errors: Counter[tuple[str, str]] = Counter()
        for r in self._aggregates_in("servicegraph", start_ns, end_ns):
            pair = (r.labels["client"], r.labels["server"])
            if service and service not in pair:
                continue
            calls[pair] += r.calls
            errors[pair] += r.errors
        return [DependencyLink(p, c, calls[(p, c)], errors[(p, c)]) for p, c in sorted(calls)]

    def span_metrics_per_step(
        self,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        filters: Mapping[str, str] | None = None,
        by: Sequence[str] = (),
    ) -> list[SpanMetricsSeries]:
        check_labels(SPAN_LABELS, [*(filters or {}), *by])
        wanted = {k: normalise_label(k, v) for k, v in (filters or {}).items()}
        records = self._records("spanmetrics", start_ns, end_ns, wanted)
        return aggregate_points.series(aggregate_points.group(records, start_ns, step_ns, by), by)

    def calls_per_step(
        self,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        filters: Mapping[str, str],
        by: Sequence[str],
        max_groups: int = 100,
    ) -> list[tuple[tuple[str, ...], list[tuple[int, int]]]]:
        check_labels(SPAN_LABELS, [*filters, *by])
        wanted = {k: normalise_label(k, v) for k, v in filters.items()}
        step_ms = max(step_ns // NS_PER_MS, 1)
        offset = _ms(start_ns) % step_ms
        first_minute = start_ns - start_ns % NS_PER_MINUTE
        per_group: dict[tuple[str, ...], Counter[int]] = defaultdict(Counter)
        for r in self._aggregates_in("spanmetrics", start_ns, end_ns):
            if _ms(r.minute_ns) >= _ms(end_ns) or _ms(r.minute_ns) < _ms(first_minute):
                continue
            if any(r.labels[k] != v for k, v in wanted.items()):
                continue
            ms = _ms(r.minute_ns)
            per_group[tuple(short_label(label, r.labels[label]) for label in by)][
                (ms - offset) // step_ms * step_ms + offset
            ] += r.calls
        return [(labels, sorted(points.items())) for labels, points in sorted(per_group.items())[:max_groups]]

    def service_latency(
        self, start_ns: int, end_ns: int, step_ns: int, service: str | None, by_service: bool
    ) -> list[LatencySeries]:
        wanted = {} if service is None else {"service": service}
        records = self._records("servicelatency", start_ns, end_ns - 1, wanted)
        return aggregate_points.latency_series(records, start_ns, step_ns, by_service)

    def service_latency_first(self, start_ns: int, end_ns: int) -> int | None:
        minutes = [r.minute_ns for r in self._aggregates_in("servicelatency", start_ns, end_ns - 1)]
        return min(minutes, default=None)

    def has_spans(self, start_ns: int, end_ns: int) -> bool:
        return any(start_ns <= f.span.start_ns < end_ns for f in self._all())

    def service_edges(self, start_ns: int, end_ns: int) -> list[EdgeStats]:
        step = aggregate_points.whole_range(start_ns, end_ns)
        records = self._records("servicegraph", start_ns, end_ns, {})
        return aggregate_points.edges(aggregate_points.group(records, start_ns, step, EDGE_LABELS), start_ns)

    def _records(
        self, family: str, start_ns: int, end_ns: int, wanted: Mapping[str, str]
    ) -> list[aggregate_points.Record]:
        return [
            aggregate_points.Record(_ms(r.minute_ns), r.labels, r.calls, r.errors, r.latency_sum_s, r.buckets)
            for r in self._aggregates_in(family, start_ns, end_ns)
            if all(r.labels[k] == v for k, v in wanted.items())
        ]

    # -- Readiness

    def status(self) -> str:
        return "green"

    @property
    def aggregates(self) -> MemoryAggregates:
        return MemoryAggregates(self)


def _span_labels(labels: tuple[str, str, int, int]) -> dict[str, str]:
    service, name, kind, status = labels
    return {
        "service": service,
        "span_name": name,
        "span_kind": KIND_LABELS[SpanKind(kind)],
        "status_code": STATUS_LABELS[status],
    }


def _totals(stats: Stats) -> tuple[int, int, float, dict[int, int]]:
    return stats.calls, stats.errors, stats.sum_ns / NS_PER_S, dict(stats.buckets)


class MemoryAggregates:
    """The aggregate side of a ``MemoryStore`` under the contracts' method names (``write`` means
    something else on the span side): ``MemoryStore.aggregates``."""

    def __init__(self, store: MemoryStore):
        self._store = store

    def write(self, snapshot: Snapshot, process: str) -> None:
        self._store.write_aggregates(snapshot, process)

    def dependencies(self, start_ns: int, end_ns: int, service: str | None = None) -> list[DependencyLink]:
        return self._store.dependencies(start_ns, end_ns, service)

    def span_metrics(
        self,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        filters: Mapping[str, str] | None = None,
        by: Sequence[str] = (),
    ) -> list[SpanMetricsSeries]:
        return self._store.span_metrics_per_step(start_ns, end_ns, step_ns, filters, by)

    def calls_per_step(
        self,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        filters: Mapping[str, str],
        by: Sequence[str],
        max_groups: int = 100,
    ) -> list[tuple[tuple[str, ...], list[tuple[int, int]]]]:
        return self._store.calls_per_step(start_ns, end_ns, step_ns, filters, by, max_groups)

    def service_edges(self, start_ns: int, end_ns: int) -> list[EdgeStats]:
        return self._store.service_edges(start_ns, end_ns)

    def service_latency(
        self, start_ns: int, end_ns: int, step_ns: int, service: str | None, by_service: bool
    ) -> list[LatencySeries]:
        return self._store.service_latency(start_ns, end_ns, step_ns, service, by_service)

    def service_latency_first(self, start_ns: int, end_ns: int) -> int | None:
        return self._store.service_latency_first(start_ns, end_ns)


class _SpanAggregation:
    """``SpanReader.aggregate_spans`` over spans in memory, bucketed as a date histogram with an offset."""

    def __init__(self, request: SpanAggregation):
        self.request = request
        self.step_ms = max(request.step_ns // NS_PER_MS, 1)
        self.offset = _ms(request.start_ns) % self.step_ms

    def _bucket_of(self, ms: int) -> int:
        return (ms - self.offset) // self.step_ms * self.step_ms + self.offset

    def _group_values(self, f: SpanFacts) -> list[tuple[tuple[str, str], ...]]:
        """Every label combination a span counts in (an attribute with several values counts in each)."""
        combos: list[tuple[tuple[str, str], ...]] = [()]
        for group in self.request.group_by:
            if group.attribute:
                prefix = f"{group.attribute}="
                values = sorted({t[len(prefix) :] for t in f.tags if t.startswith(prefix)})
            else:
                value = f.fields.get(group.field)
                values = [] if value is None else [value]
            combos = [(*c, (group.label, v)) for c in combos for v in values]
        return combos

    def series(self, spans: Iterable[SpanFacts]) -> list[SpanSeries]:
        durations: dict[tuple[tuple[str, str], ...], dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for f in spans:
            for labels in self._group_values(f):
                durations[labels][self._bucket_of(_ms(f.span.start_ns))].append(f.span.duration_ns)
        first, last = self._bucket_of(_ms(self.request.start_ns)), self._bucket_of(_ms(self.request.end_ns))
        keys = range(first, last + 1, self.step_ms)
        ordered = sorted(durations.items(), key=lambda kv: (-self._count(kv[1]), kv[0]))
        return [
            SpanSeries(labels, [self._bucket(ms, per_step.get(ms, [])) for ms in keys]) for labels, per_step in ordered
        ]

    @staticmethod
    def _count(per_step: dict[int, list[int]]) -> int:
        return sum(len(v) for v in per_step.values())

    def _bucket(self, ms: int, durations: list[int]) -> SeriesBucket:
        out = SeriesBucket(ms, len(durations))
        if not durations:
            return out
        function = self.request.function
        if function == "quantiles":
            ordered = sorted(durations)
            out.quantiles = {q: _percentile(ordered, q) for q in self.request.quantiles}
        elif function == "histogram":
            for label, low, high in histogram_buckets():
                inside = sum(1 for d in durations if low <= d < high)
                if inside:
                    out.histogram[label] = inside
        elif function == "avg":
            out.value = sum(durations) / len(durations)
        elif function == "min":
            out.value = float(min(durations))
        elif function == "max":
            out.value = float(max(durations))
        elif function == "sum":
            out.value = float(sum(durations))
        return out


def _percentile(ordered: list[int], q: float) -> float:
    """Linear interpolation between the nearest ranks (exact; Elasticsearch's t-digest approximates)."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class MemoryLogs:
    """LogReader in memory: documents put in named indices by ``add``, read as the Elasticsearch reader
    reads a keyword trace-id field (exact values). The pattern is comma-separated names with ``*``."""

    def __init__(self, index: str = "logs-*", field: str = "trace.id"):
        self._index = index
        self._field = field
        self._lock = threading.Lock()
        self._lines: list[tuple[str, str, dict[str, Any]]] = []  # (index, id, document), in order added

    @property
    def index(self) -> str:
        return self._index

    @property
    def field(self) -> str:
        return self._field

    def add(self, index: str, document: Mapping[str, Any], doc_id: str | None = None) -> None:
        with self._lock:
            self._lines.append((index, doc_id or f"log-{len(self._lines)}", dict(document)))

    def trace_logs(self, trace_id: str, start_ns: int, end_ns: int, limit: int) -> LogLines:
        ids = {trace_id, short_trace_id(trace_id)}
        low, high = start_ns // NS_PER_MS, -(-end_ns // NS_PER_MS)
        with self._lock:
            lines = list(self._lines)
        found = [
            (ms, {**doc, "_index": index, "_id": doc_id})
            for index, doc_id, doc in lines
            if self._searched(index) and _field_value(doc, self._field) in ids
            for ms in [_timestamp_ms(doc.get("@timestamp"))]
            if ms is not None and low <= ms <= high
        ]
        found.sort(key=lambda pair: pair[0])  # stable: equal times keep the order they were added in
        return LogLines([line for _, line in found[:limit]], truncated=len(found) > limit)

    def _searched(self, index: str) -> bool:
        return any(fnmatch.fnmatchcase(index, part.strip()) for part in self._index.split(","))


class MemorySampling:
    """SamplingStore in memory: the lease and the output of one process's runners (tests, no cluster).
    Versions count writes, as Elasticsearch's sequence numbers do."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._lease: tuple[str, float] | None = None  # holder, expiry
        self._state: SamplingState | None = None
        self._version = 0

    def acquire_lease(self, holder: str, ttl_s: float) -> bool:
        with self._lock:
            now = self._clock()
            if self._lease is not None and self._lease[0] != holder and self._lease[1] > now:
                return False
            self._lease = (holder, now + ttl_s)
            return True

    def release_lease(self, holder: str) -> None:
        with self._lock:
            if self._lease is not None and self._lease[0] == holder:
                self._lease = None

    def read_state(self) -> tuple[SamplingState | None, StateVersion]:
        with self._lock:
            return self._state, (self._version, 1) if self._state is not None else None

    def write_state(self, state: SamplingState, version: StateVersion) -> bool:
        with self._lock:
            current = (self._version, 1) if self._state is not None else None
            if version != current:
                return False
            self._state = state
            self._version += 1
            return True


class MemoryAlerts:
    """AlertStateStore in memory: the lease with its fencing token, alerts and events (tests, no cluster).
    Versions count writes, as Elasticsearch's sequence numbers do."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._lease: tuple[str, float, int] | None = None  # holder, expiry, token
        self._alerts: dict[str, StoredAlert] = {}
        self._events: dict[tuple[str, str, int], Transition] = {}
        self._writes = 0

    def acquire_lease(self, holder: str, ttl_s: float) -> int | None:
        with self._lock:
            now = self._clock()
            token = self._lease[2] if self._lease is not None else 0
            if self._lease is not None and self._lease[0] != holder and self._lease[1] > now:
                return None
            if self._lease is None or self._lease[0] != holder or self._lease[1] <= now:
                token += 1  # changes hands, or taken again after expiring: a new fencing token
            self._lease = (holder, now + ttl_s, token)
            return token

    def release_lease(self, holder: str) -> None:
        with self._lock:
            if self._lease is not None and self._lease[0] == holder:
                self._lease = (holder, 0.0, self._lease[2])  # expired: the token still counts on

    def load_alerts(self) -> dict[str, StoredAlert]:
        with self._lock:
            return dict(self._alerts)

    def get_alert(self, fingerprint: str) -> StoredAlert | None:
        with self._lock:
            return self._alerts.get(fingerprint)

    def write_alert(self, alert: AlertState, token: int, version: StateVersion) -> tuple[str, StateVersion]:
        with self._lock:
            stored = self._alerts.get(alert.fingerprint)
            if stored is not None and stored.token > token:
                return AlertWrite.FENCED, None
            if (stored.version if stored is not None else None) != version:
                return AlertWrite.CONFLICT, None
            self._writes += 1
            self._alerts[alert.fingerprint] = StoredAlert(alert, token, (self._writes, 1))
            return AlertWrite.WRITTEN, (self._writes, 1)

    def add_events(self, events: Sequence[Transition], token: int) -> None:
        with self._lock:
            for event in events:
                self._events[(event.fingerprint, event.state, event.at_ns)] = event

    def current(self) -> list[AlertView]:
        with self._lock:
            found = [view(s.alert) for s in self._alerts.values() if is_current(s.alert)]
        return sorted(found, key=lambda a: (a.rule, a.fingerprint))

    def history(self, rule: str | None, since_ns: int | None, limit: int) -> list[AlertEvent]:
        low = since_ns or 0
        with self._lock:
            found = [e for e in self._events.values() if e.at_ns >= low and (rule is None or e.rule == rule)]
        return [event(e) for e in sorted(found, key=lambda e: e.at_ns, reverse=True)[:limit]]


def _field_value(document: Mapping[str, Any], field: str) -> Any:
    """A dotted field as Elasticsearch reads it: ``{"trace": {"id": ...}}`` or ``{"trace.id": ...}``."""
    if field in document:
        return document[field]
    head, _, rest = field.partition(".")
    inner = document.get(head)
    return _field_value(inner, rest) if rest and isinstance(inner, Mapping) else None


def _timestamp_ms(value: Any) -> int | None:
    """Milliseconds of an ECS ``@timestamp``: epoch milliseconds or RFC 3339 (nanoseconds cut)."""
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str):
        return None
    text = re.sub(r"(\.\d{1,6})\d*", r"\1", value.replace("Z", "+00:00"))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
