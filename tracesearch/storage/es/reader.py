"""Reads spans back: traces by id, trace search, services and operations."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import elasticsearch
from elasticsearch import Elasticsearch

from tracesearch.model import Span
from tracesearch.query.filters import TraceQuery
from tracesearch.storage.base import StorageUnavailable
from tracesearch.storage.es import queries
from tracesearch.storage.es.document import from_documents
from tracesearch.storage.es.indices import span_indices_between

NS_PER_S = 1_000_000_000
PAGE_SIZE = 10_000
MAX_TERMS = 10_000
MAX_RANGE_DAYS = 90
T = TypeVar("T")


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
    ):
        self._client = client
        self._prefix = index_prefix
        self._trace_lookback_ns = int(trace_lookback_s * NS_PER_S)
        self._padding_ns = int(max_trace_duration_s * NS_PER_S)
        self._clock = clock

    def _indices(self, start_ns: int, end_ns: int) -> str:
        """Daily indices of the range; a range longer than MAX_RANGE_DAYS keeps its newest part, so
        a request with ``start=0`` never names fifty thousand indices."""
        max_range = max(self._trace_lookback_ns, MAX_RANGE_DAYS * 86400 * NS_PER_S)
        start_ns = max(start_ns, end_ns - max_range)
        return ",".join(span_indices_between(self._prefix, start_ns, end_ns))

    def _lookback_indices(self) -> str:
        now = self._clock()
        return self._indices(now - self._trace_lookback_ns, now + self._padding_ns)

    def _call(self, request: Callable[[], T]) -> T:
        try:
            return request()
        except (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout) as exc:
            raise StorageUnavailable(f"Elasticsearch unreachable: {exc}") from exc
        except elasticsearch.ApiError as exc:
            if exc.meta.status == 429 or exc.meta.status >= 500:
                raise StorageUnavailable(f"Elasticsearch answered {exc.meta.status}: {exc}") from exc
            raise

    def _search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._call(
            lambda: self._client.search(index=index, body=body, ignore_unavailable=True, allow_no_indices=True)
        )
        answer: dict[str, Any] = response.body
        return answer

    def _spans_of(self, index: str, trace_ids: list[str]) -> list[Span]:
        docs: list[dict[str, Any]] = []
        after: list[Any] | None = None
        while True:
            hits = self._search(index, queries.spans_of_traces(trace_ids, PAGE_SIZE, after))["hits"]["hits"]
            docs.extend(h["_source"] for h in hits)
            if len(hits) < PAGE_SIZE:
                return from_documents(docs)
            after = hits[-1]["sort"]

    def get_trace(self, trace_id: str, start_ns: int | None = None, end_ns: int | None = None) -> list[Span]:
        if start_ns is not None and end_ns is not None:
            index = self._indices(start_ns - self._padding_ns, end_ns + self._padding_ns)
        else:
            index = self._lookback_indices()
        return self._spans_of(index, [trace_id])

    def find_trace_ids(self, query: TraceQuery) -> list[str]:
        index = self._indices(query.start_ns, query.end_ns)
        hits = self._search(index, queries.latest_traces(query))["hits"]["hits"]
        return [h["fields"]["trace.id"][0] for h in hits]

    def find_traces(self, query: TraceQuery) -> list[list[Span]]:
        trace_ids = self.find_trace_ids(query)
        if not trace_ids:
            return []
        index = self._indices(query.start_ns - self._padding_ns, query.end_ns + self._padding_ns)
        by_trace: dict[str, list[Span]] = {t: [] for t in trace_ids}
        for span in self._spans_of(index, trace_ids):
            by_trace[span.trace_id].append(span)
        return [by_trace[t] for t in trace_ids if by_trace[t]]

    def _terms(self, field: str, filters: list[dict[str, Any]], sub: str | None = None) -> list[Any]:
        aggs: dict[str, Any] = {"values": {"terms": {"field": field, "size": MAX_TERMS}}}
        if sub:
            aggs["values"]["aggs"] = {"sub": {"terms": {"field": sub, "size": 20}}}
        body = {"size": 0, "query": queries.bool_(filter=filters), "aggs": aggs}
        buckets = self._search(self._lookback_indices(), body).get("aggregations", {})
        return list(buckets.get("values", {}).get("buckets", []))

    def services(self) -> list[str]:
        return sorted(b["key"] for b in self._terms("service.name", []))

    def operations(self, service: str, span_kind: str | None = None) -> list[tuple[str, str]]:
        filters = [queries.term("service.name", service)]
        if span_kind:
            filters.append(queries.term("span.kind", span_kind))
        pairs = {
            (b["key"], k["key"])
            for b in self._terms("span.name", filters, sub="span.kind")
            for k in b["sub"]["buckets"]
        }
        return sorted(pairs)
