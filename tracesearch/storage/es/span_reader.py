"""SpanReader on Elasticsearch: traces by id, trace search, services and operations, autocomplete,
TraceQL metrics over span documents. Index names come from the time range (daily indices, UTC)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from elasticsearch import Elasticsearch

from tracesearch.model import Span
from tracesearch.query.conditions import Condition, FieldEquals, TraceQuery
from tracesearch.query.remote_service import REMOTE_SERVICE_FIELD
from tracesearch.query.span_aggregation import SpanAggregation, SpanSeries
from tracesearch.storage.es import compiler, key_sets, span_aggregation, tag_queries
from tracesearch.storage.es.document import from_documents
from tracesearch.storage.es.indices import span_indices_between
from tracesearch.storage.es.search import call, msearch, search

NS_PER_S = 1_000_000_000
PAGE_SIZE = 10_000
# The whole-trace fetch: traces per ``_msearch``, and the fewest hits one trace's search asks for.
MSEARCH_TRACES = 100
MIN_TRACE_PAGE = 100
MAX_TERMS = 10_000
MAX_RANGE_DAYS = 90
TAG_SAMPLE = 20_000
TAGS_LOOKBACK_NS = 24 * 3600 * NS_PER_S


def _now_ns() -> int:
    return time.time_ns()


class EsSpanReader:
    def __init__(
        self,
        client: Elasticsearch,
        index_prefix: str,
        trace_lookback_s: float,
        max_trace_duration_s: float,
        clock: Callable[[], int] = _now_ns,
        search_timeout_s: float | None = None,
        search_each_trace: bool = False,
    ):
        """``search_each_trace``: fetch several traces with one search per trace (for span indices sorted by
        trace id, ``TRACESEARCH_INDEX_SORT_BY_TRACE``); False: one search of them all, paged together."""
        self._client = client
        self._search_each_trace = search_each_trace
        self._search_timeout_s = search_timeout_s
        self._prefix = index_prefix
        self._trace_lookback_ns = int(trace_lookback_s * NS_PER_S)
        self._padding_ns = int(max_trace_duration_s * NS_PER_S)
        self._clock = clock
        self._tags_lookback_ns = TAGS_LOOKBACK_NS

    def _indices(self, start_ns: int, end_ns: int) -> str:
        """Daily indices of the range; a range longer than MAX_RANGE_DAYS keeps its newest part, so
        a request with ``start=0`` never names fifty thousand indices."""
        max_range = max(self._trace_lookback_ns, MAX_RANGE_DAYS * 86400 * NS_PER_S)
        start_ns = max(start_ns, end_ns - max_range)
        return ",".join(span_indices_between(self._prefix, start_ns, end_ns))

    def _lookback_indices(self) -> str:
        now = self._clock()
        return self._indices(now - self._trace_lookback_ns, now + self._padding_ns)

    def _search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        """Every span search stops at the query time budget (``TRACESEARCH_QUERY_TIMEOUT``)."""
        return search(self._client, index, body, self._search_timeout_s)

    def _terms_enum(self, index: str, prefix: str, after: str | None) -> Mapping[str, Any]:
        # _terms_enum refuses names of missing indices and has no ignore_unavailable: each daily index as a
        # pattern matches itself or nothing.
        patterns = ",".join(f"{name}*" for name in index.split(","))
        options: dict[str, Any] = {"field": "tags", "string": prefix, "size": key_sets.ENUM_PAGE}
        if after is not None:
            options["search_after"] = after
        if self._search_timeout_s is not None:
            options["timeout"] = f"{max(1, int(self._search_timeout_s * 1000))}ms"
        return call(lambda: self._client.terms_enum(index=patterns, **options).body)

    def _key_sets(self, index: str) -> dict[str, list[str]]:
        """The key sets the daily indices hold, by id (``key_sets.py``)."""
        return key_sets.known_sets(self._terms_enum, index)

    def _resolved(self, index: str, conditions: Sequence[Condition]) -> list[Condition]:
        """The conditions with each presence condition given the ids of the key sets listing its keys."""
        if not key_sets.asks_for_keys(conditions):
            return list(conditions)
        sets = self._key_sets(index)
        return [key_sets.resolve(c, sets) for c in conditions]

    @staticmethod
    def _compiled(conditions: Sequence[Condition], sets: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        return [compiler.compile_condition(key_sets.resolve(c, sets)) for c in conditions]

    def _spans_of(self, index: str, trace_ids: Sequence[str], max_spans: int | None = None) -> dict[str, list[Span]]:
        """The spans of these traces by trace id, each in the order of a trace."""
        docs = (self._docs_each if self._search_each_trace else self._docs_together)(index, trace_ids, max_spans)
        by_trace: dict[str, list[Span]] = {t: [] for t in docs}
        for span in from_documents(doc for trace_docs in docs.values() for doc in trace_docs):
            by_trace[span.trace_id].append(span)
        return by_trace

    def _docs_each(
        self, index: str, trace_ids: Sequence[str], max_spans: int | None
    ) -> dict[str, list[dict[str, Any]]]:
        """The span documents of these traces.

        One search per trace (several in one ``_msearch``), paged with ``search_after``: in daily indices
        sorted by trace id (docs/storage.md, "Index format") one trace's hits are one run of documents
        in each segment, which Elasticsearch reads with its sequential stored-fields reader: each
        compressed block decompressed once per trace, not once per span as a search of many traces
        does. A page asks for at most ``PAGE_SIZE`` hits over all its traces (``MIN_TRACE_PAGE`` each at
        least), and never for more than a trace may still take under ``max_spans``."""
        docs: dict[str, list[dict[str, Any]]] = {t: [] for t in trace_ids}
        after: dict[str, list[Any] | None] = dict.fromkeys(docs)  # traces still to read, where they are
        while after:
            pending = list(after)[:MSEARCH_TRACES]
            share = max(PAGE_SIZE // len(pending), MIN_TRACE_PAGE)
            sizes = [share if max_spans is None else min(share, max_spans - len(docs[t])) for t in pending]
            bodies = [compiler.spans_of_traces([t], size, after[t]) for t, size in zip(pending, sizes, strict=True)]
            for trace_id, size, hits in zip(pending, sizes, self._hits_of(index, bodies), strict=True):
                docs[trace_id] += (hit["_source"] for hit in hits)
                if hits and len(hits) == size and (max_spans is None or len(docs[trace_id]) < max_spans):
                    after[trace_id] = hits[-1]["sort"]
                else:
                    del after[trace_id]
        return docs

    def _docs_together(
        self, index: str, trace_ids: Sequence[str], max_spans: int | None
    ) -> dict[str, list[dict[str, Any]]]:
        """The span documents of these traces with one search of them all, paged with ``search_after``.

        With ``max_spans`` a trace that has its spans leaves the query of the next page, and no page asks
        for more hits than the traces still short could take: one trace is read in exactly ``max_spans``
        hits however many it holds, and the hits kept in memory never pass ``max_spans`` per trace plus
        one page."""
        wanted = list(dict.fromkeys(trace_ids))
        docs: dict[str, list[dict[str, Any]]] = {t: [] for t in wanted}
        after: list[Any] | None = None
        while wanted:
            size = PAGE_SIZE if max_spans is None else min(PAGE_SIZE, sum(max_spans - len(docs[t]) for t in wanted))
            hits = self._search(index, compiler.spans_of_traces(wanted, size, after))["hits"]["hits"]
            for hit in hits:
                trace_docs = docs[hit["_source"]["trace"]["id"]]
                if max_spans is None or len(trace_docs) < max_spans:
                    trace_docs.append(hit["_source"])
            if not hits or len(hits) < size:
                break
            after = hits[-1]["sort"]
            if max_spans is not None:
                wanted = [t for t in wanted if len(docs[t]) < max_spans]
        return docs

    def _hits_of(self, index: str, bodies: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        if len(bodies) == 1:
            return [self._search(index, bodies[0])["hits"]["hits"]]
        answers = msearch(self._client, index, bodies, self._search_timeout_s)
        return [answer["hits"]["hits"] for answer in answers]

    def get_trace(
        self, trace_id: str, start_ns: int | None = None, end_ns: int | None = None, max_spans: int | None = None
    ) -> list[Span]:
        if start_ns is not None and end_ns is not None:
            index = self._indices(start_ns - self._padding_ns, end_ns + self._padding_ns)
        else:
            index = self._lookback_indices()
        return self._spans_of(index, [trace_id], max_spans)[trace_id]

    def trace_extent(
        self, trace_id: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> tuple[int, int] | None:
        if start_ns is not None and end_ns is not None:
            index = self._indices(start_ns - self._padding_ns, end_ns + self._padding_ns)
        else:
            index = self._lookback_indices()
        # The last start plus the longest duration bounds the last end without a script (the minimal
        # node may lack painless) and without reading a span. Aggregations answer doubles: a few hundred
        # nanoseconds off at today's times, nothing next to the logs' margin of minutes.
        body = {
            "size": 0,
            "track_total_hits": False,
            "query": {"term": {"trace.id": trace_id}},
            "aggs": {
                "first": {"min": {"field": "start_ns"}},
                "last": {"max": {"field": "start_ns"}},
                "longest": {"max": {"field": "duration_ns"}},
            },
        }
        aggs = self._search(index, body).get("aggregations", {})
        first, last, longest = (aggs.get(name, {}).get("value") for name in ("first", "last", "longest"))
        if first is None or last is None:
            return None
        return int(first), int(last) + int(longest or 0)

    def _find_trace_ids(self, query: TraceQuery) -> list[str]:
        index = self._indices(query.start_ns, query.end_ns)
        conditions = self._resolved(index, query.conditions)
        body = compiler.latest_traces(conditions, query.start_ns, query.end_ns, query.limit)
        return [h["fields"]["trace.id"][0] for h in self._search(index, body)["hits"]["hits"]]

    def find_traces(self, query: TraceQuery, max_spans: int | None = None) -> list[list[Span]]:
        trace_ids = self._find_trace_ids(query)
        if not trace_ids:
            return []
        index = self._indices(query.start_ns - self._padding_ns, query.end_ns + self._padding_ns)
        by_trace = self._spans_of(index, trace_ids, max_spans)
        return [by_trace[t] for t in trace_ids if by_trace[t]]

    def candidate_traces(
        self, conditions: Sequence[Condition], start_ns: int, end_ns: int, size: int
    ) -> list[tuple[str, int]]:
        index = self._indices(start_ns, end_ns)
        body = compiler.candidate_traces(self._resolved(index, conditions), start_ns, end_ns, size)
        hits = self._search(index, body)["hits"]["hits"]
        return [(h["fields"]["trace.id"][0], int(h["fields"]["start_ns"][0])) for h in hits]

    def traces(
        self, trace_ids: Sequence[str], start_ns: int, end_ns: int, max_spans: int | None = None
    ) -> dict[str, list[Span]]:
        index = self._indices(start_ns - self._padding_ns, end_ns + self._padding_ns)
        return self._spans_of(index, trace_ids, max_spans)

    def aggregate_spans(self, request: SpanAggregation) -> list[SpanSeries]:
        index = self._indices(request.start_ns, request.end_ns)
        if key_sets.asks_for_keys(request.conditions):
            request = replace(request, conditions=tuple(self._resolved(index, request.conditions)))
        answer = self._search(index, span_aggregation.body(request))
        return span_aggregation.series(request, answer)

    def _terms(self, field: str, filters: list[dict[str, Any]], sub: str | None = None) -> list[Any]:
        aggs: dict[str, Any] = {"values": {"terms": {"field": field, "size": MAX_TERMS}}}
        if sub:
            aggs["values"]["aggs"] = {"sub": {"terms": {"field": sub, "size": 20}}}
        body = {"size": 0, "query": compiler.bool_(filter=filters), "aggs": aggs}
        buckets = self._search(self._lookback_indices(), body).get("aggregations", {})
        return list(buckets.get("values", {}).get("buckets", []))

    def has_spans(self, start_ns: int, end_ns: int) -> bool:
        """Whether any span starts in [start_ns, end_ns) (one document per shard at most is read)."""
        if end_ns <= start_ns:
            return False
        body = {
            "size": 0,
            "track_total_hits": 1,
            "terminate_after": 1,
            "query": compiler.time_filter(start_ns, end_ns - 1),
        }
        answer = self._search(self._indices(start_ns, end_ns), body)
        return int(answer.get("hits", {}).get("total", {}).get("value", 0)) > 0

    def services(self) -> list[str]:
        return sorted(b["key"] for b in self._terms("service.name", []))

    def operations(
        self, service: str, span_kind: str | None = None, ignore_case: bool = False
    ) -> list[tuple[str, str]]:
        filters = [compiler.compile_condition(FieldEquals("service", service, ignore_case))]
        if span_kind:
            filters.append(compiler.term("span.kind", span_kind))
        pairs = {
            (b["key"], k["key"])
            for b in self._terms("span.name", filters, sub="span.kind")
            for k in b["sub"]["buckets"]
        }
        return sorted(pairs)

    def _in_range(self, start_ns: int | None, end_ns: int | None) -> tuple[str, list[dict[str, Any]]]:
        if start_ns is None or end_ns is None:
            now = self._clock()
            start_ns, end_ns = now - self._tags_lookback_ns, now
        return self._indices(start_ns, end_ns), [compiler.time_filter(start_ns, end_ns)]

    def tag_names(
        self, scope: str, start_ns: int | None, end_ns: int | None, limit: int, conditions: Sequence[Condition]
    ) -> list[str]:
        """Attribute keys of a scope (``span``, ``resource``...) seen in the range, without the scope,
        the most frequent first."""
        index, time_filters = self._in_range(start_ns, end_ns)
        sets = self._key_sets(index)
        filters = [*time_filters, *self._compiled(conditions, sets)]
        body = tag_queries.tag_names(scope, filters, limit, TAG_SAMPLE)
        return tag_queries.key_names(self._search(index, body), scope, limit, sets)

    def attribute_values(
        self,
        scope: str,
        key: str,
        start_ns: int | None,
        end_ns: int | None,
        limit: int,
        conditions: Sequence[Condition],
    ) -> list[str]:
        index, time_filters = self._in_range(start_ns, end_ns)
        sets = self._key_sets(index)
        filters = [*time_filters, *self._compiled(conditions, sets)]
        listing = key_sets.ids_listing(sets, [f"{scope}.{key}"])
        body = tag_queries.attribute_values(scope, key, listing, filters, limit, TAG_SAMPLE)
        skip = len(scope) + len(key) + 2
        return [value[skip:] for value in tag_queries.buckets(self._search(index, body))]

    def numeric_attribute_values(
        self,
        scope: str,
        key: str,
        candidates: Sequence[str],
        start_ns: int | None,
        end_ns: int | None,
        conditions: Sequence[Condition],
    ) -> set[str]:
        """The candidate values that are stored as numbers under the key."""
        if not candidates:
            return set()
        index, time_filters = self._in_range(start_ns, end_ns)
        sets = self._key_sets(index)
        filters = [*time_filters, *self._compiled(conditions, sets)]
        listing = key_sets.ids_listing(sets, [f"{scope}.{key}"])
        body = tag_queries.numeric_values(scope, key, listing, list(candidates), filters, TAG_SAMPLE)
        return tag_queries.numeric_buckets(self._search(index, body))

    def remote_service_names(self, service: str, start_ns: int, end_ns: int, ignore_case: bool = False) -> list[str]:
        index, time_filters = self._in_range(start_ns, end_ns)
        named = compiler.compile_condition(FieldEquals("service", service, ignore_case))
        body = tag_queries.remote_service_names([*time_filters, named], MAX_TERMS, TAG_SAMPLE)
        skip = len(REMOTE_SERVICE_FIELD) + 1
        return sorted(value[skip:] for value in tag_queries.buckets(self._search(index, body)))

    def intrinsic_values(
        self, name: str, start_ns: int | None, end_ns: int | None, limit: int, conditions: Sequence[Condition]
    ) -> list[str] | None:
        """Values of ``name``, ``status``, ``kind``... seen in the range; None for an unknown intrinsic."""
        index, time_filters = self._in_range(start_ns, end_ns)
        filters = [*time_filters, *map(compiler.compile_condition, self._resolved(index, conditions))]
        body = tag_queries.intrinsic_values(name, filters, limit, TAG_SAMPLE)
        if body is None:
            return None
        values = tag_queries.buckets(self._search(index, body))
        prefix = tag_queries.INTRINSIC_TAG_PREFIXES.get(name, "")
        return [v[len(prefix) :] for v in values]
