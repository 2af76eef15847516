"""The query service: everything the read APIs ask, above any store that keeps the storage contracts.

Views parse their parameters, call one method here and serialise the answer; this service owns the
TraceQL search loop (``traceql_search``), autocomplete typing (``autocomplete``), the metrics dispatch
(``traceql_metrics``) and the read adjusters (``adjusters``). It talks to storage only through
``storage.contracts`` and raises only the storage errors and ``query.errors.InvalidQuery``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from tracesearch.model import Span
from tracesearch.query.capped_trace import CappedTrace, capped
from tracesearch.query.conditions import TraceQuery
from tracesearch.query.errors import InvalidQuery, TooManyQueries
from tracesearch.query.limits import QueryLimits
from tracesearch.query.search_results import SearchResult
from tracesearch.query.span_aggregation import MetricsResult
from tracesearch.query.traceql.ast import Query
from tracesearch.services import adjusters, traceql_metrics
from tracesearch.services.autocomplete import Autocomplete
from tracesearch.services.latency_rollup import RollupSource
from tracesearch.services.traceql_search import MAX_CANDIDATES, TraceqlSearch
from tracesearch.storage.contracts import AggregateReader, DependencyLink, SpanReader


class QueryService:
    def __init__(
        self,
        spans: SpanReader,
        aggregates: AggregateReader,
        max_candidates: int = MAX_CANDIDATES,
        limits: QueryLimits | None = None,
        rollups: RollupSource | None = None,
    ):
        self._spans = spans
        self._aggregates = aggregates
        self._rollups = rollups
        self.limits = limits or QueryLimits()
        self._traceql = TraceqlSearch(spans, max_candidates, self.limits.timeout_s, self.limits.max_spans_per_trace)
        self._slots = threading.BoundedSemaphore(self.limits.max_concurrent)
        self.autocomplete = Autocomplete(spans)

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """One of the process's query slots, waited for briefly; none free: ``TooManyQueries``."""
        if not self._slots.acquire(timeout=self.limits.queue_wait_s):
            raise TooManyQueries(f"{self.limits.max_concurrent} queries already running in this process")
        try:
            yield
        finally:
            self._slots.release()

    def check_range(self, start_ns: int, end_ns: int, field: str = "start") -> None:
        """A search or metrics range longer than the limit is refused, naming the parameter."""
        if end_ns - start_ns > self.limits.max_range_s * 1e9:
            raise InvalidQuery(
                f"the time range is {_days((end_ns - start_ns) / 1e9)}, longer than the "
                f"{_days(self.limits.max_range_s)} a query may cover: narrow '{field}'",
                field=field,
            )

    # -- traces by id and by the Jaeger/Zipkin search forms; each cut to the spans-per-trace limit

    @property
    def _read_spans(self) -> int:
        """Spans to read of a trace: one over the limit tells a cut trace from one exactly at it."""
        return self.limits.max_spans_per_trace + 1

    def _capped(self, spans: list[Span]) -> CappedTrace:
        return capped(spans, self.limits.max_spans_per_trace)

    def trace(self, trace_id: str, start_ns: int | None = None, end_ns: int | None = None) -> CappedTrace:
        """The spans of a trace as stored, at most the limit (the earliest); no spans when unknown."""
        return self._capped(self._spans.get_trace(trace_id, start_ns, end_ns, self._read_spans))

    def traces(self, trace_ids: Sequence[str]) -> list[CappedTrace]:
        """The traces found of these ids, in their order; unknown ones left out."""
        found = [self.trace(t) for t in trace_ids]
        return [trace for trace in found if trace.spans]

    def find_traces(self, query: TraceQuery) -> list[CappedTrace]:
        return self.find_traces_within(query)[0]

    def find_traces_within(self, query: TraceQuery, range_field: str = "start") -> tuple[list[CappedTrace], bool]:
        """The Jaeger/Zipkin search (``limit`` cut to the limit), and whether it ended within the time
        budget (Elasticsearch stops at its search ``timeout`` with what it found: then False)."""
        self.check_range(query.start_ns, query.end_ns, range_field)
        bounded = TraceQuery(query.start_ns, query.end_ns, query.conditions, min(query.limit, self.limits.max_traces))
        with self._slot():
            began = time.monotonic()
            found = self._spans.find_traces(bounded, self._read_spans)
            return [self._capped(spans) for spans in found], time.monotonic() - began < self.limits.timeout_s

    def zipkin_trace(self, trace_id: str) -> CappedTrace:
        """A trace with Zipkin's read adjustments (shared spans merged)."""
        return _adjusted(self.trace(trace_id), adjusters.merge_shared)

    def zipkin_traces(self, trace_ids: Sequence[str]) -> list[CappedTrace]:
        return [_adjusted(trace, adjusters.merge_shared) for trace in self.traces(trace_ids)]

    def zipkin_search(self, query: TraceQuery) -> list[CappedTrace]:
        """Zipkin's trace list: shared spans merged, and every trace with a root span (``ensure_root``)."""
        found = self.find_traces_within(query, range_field="lookback")[0]
        return [_adjusted(t, lambda spans: adjusters.ensure_root(adjusters.merge_shared(spans))) for t in found]

    def services(self) -> list[str]:
        return self._spans.services()

    def operations(self, service: str, span_kind: str | None = None) -> list[tuple[str, str]]:
        return self._spans.operations(service, span_kind)

    def span_names(self, service: str, ignore_case: bool = False) -> list[str]:
        return sorted({name for name, _ in self._spans.operations(service, ignore_case=ignore_case)})

    # -- TraceQL

    def search(self, query: Query, start_ns: int, end_ns: int, limit: int, spss: int) -> SearchResult:
        """TraceQL search; ``limit`` is cut to the limit, and past the time budget the result is partial."""
        self.check_range(start_ns, end_ns)
        with self._slot():
            return self._traceql.search(query, start_ns, end_ns, min(limit, self.limits.max_traces), spss)

    def metrics(self, query: Query, start_ns: int, end_ns: int, step_ns: int, instant: bool) -> MetricsResult:
        self.check_range(start_ns, end_ns)
        with self._slot():
            return traceql_metrics.run(
                self._spans, self._aggregates, query, start_ns, end_ns, step_ns, instant, self._rollups
            )

    # -- the service graph

    def dependencies(self, start_ns: int, end_ns: int, service: str | None = None) -> list[DependencyLink]:
        return self._aggregates.dependencies(start_ns, end_ns, service)

    def remote_services(self, service: str, start_ns: int, end_ns: int, ignore_case: bool = False) -> list[str]:
        """The remote services the service's spans name (``query.remote_service``), as Zipkin lists the
        remote endpoint names it was sent: each one finds spans with the same name (``ignore_case``:
        the service named ignoring ASCII case)."""
        return self._spans.remote_service_names(service, start_ns, end_ns, ignore_case)


def _adjusted(trace: CappedTrace, adjust: Callable[[list[Span]], list[Span]]) -> CappedTrace:
    return replace(trace, spans=adjust(trace.spans))


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g}d" if seconds >= 86400 else f"{seconds / 3600:g}h"
