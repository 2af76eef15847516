"""AggregateReader on Elasticsearch: the service-graph and span-metrics aggregates, adding up the
partial documents that every process wrote per minute (see ``aggregate_writer``). Resolution is one
minute: a minute is in a range when its start is in [start rounded down to the minute, end].

Counts are summed by Elasticsearch (``composite`` aggregation); histograms, which are stored
sparse and not indexed, are summed here from the documents, paged with ``search_after``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from elasticsearch import Elasticsearch

from tracesearch.servicegraph.model import EDGE_LABELS, SPAN_LABELS, check_labels, normalise_label, short_label
from tracesearch.storage import aggregate_points
from tracesearch.storage.contracts import DependencyLink, EdgeStats, LatencySeries, SpanMetricsSeries
from tracesearch.storage.es.aggregate_writer import (
    SERVICEGRAPH,
    SERVICELATENCY,
    SPANMETRICS,
    aggregate_indices_between,
    unpack,
)
from tracesearch.storage.es.compiler import term
from tracesearch.storage.es.search import search

NS_PER_MS = 1_000_000
NS_PER_MINUTE = 60_000_000_000
PAGE = 5_000
ROLLUP_FILTER = "hits.hits.fields,hits.hits.sort"
ROLLUP_FIELDS = [{"field": "@timestamp", "format": "epoch_millis"}, "service", "calls", "latency_packed"]


class EsAggregateReader:
    def __init__(self, client: Elasticsearch, index_prefix: str):
        self._client = client
        self._prefix = index_prefix

    def _range(self, start_ns: int, end_ns: int) -> dict[str, Any]:
        first_minute = start_ns - start_ns % NS_PER_MINUTE
        return {"range": {"@timestamp": {"gte": first_minute // NS_PER_MS, "lte": end_ns // NS_PER_MS}}}

    def dependencies(self, start_ns: int, end_ns: int, service: str | None = None) -> list[DependencyLink]:
        query: dict[str, Any] = {"bool": {"filter": [self._range(start_ns, end_ns)]}}
        if service:
            query["bool"]["should"] = [term("client", service), term("server", service)]
            query["bool"]["minimum_should_match"] = 1
        index = aggregate_indices_between(self._prefix, SERVICEGRAPH, start_ns, end_ns)
        links = [
            DependencyLink(b["key"]["parent"], b["key"]["child"], int(b["calls"]["value"]), int(b["errors"]["value"]))
            for b in self._composite(index, query, {"parent": "client", "child": "server"})
        ]
        return sorted(links, key=lambda link: (link.parent, link.child))

    def _composite(self, index: str, query: dict[str, Any], sources: dict[str, str]) -> Iterator[dict[str, Any]]:
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": 1000,
                "sources": [{name: {"terms": {"field": f}}} for name, f in sources.items()],
            }
            if after is not None:
                composite["after"] = after
            body = {
                "size": 0,
                "query": query,
                "aggs": {
                    "keys": {
                        "composite": composite,
                        "aggs": {"calls": {"sum": {"field": "calls"}}, "errors": {"sum": {"field": "errors"}}},
                    }
                },
            }
            keys = search(self._client, index, body).get("aggregations", {}).get("keys", {})
            yield from keys.get("buckets", [])
            after = keys.get("after_key")
            if after is None or not keys.get("buckets"):
                return

    def span_metrics(
        self,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        filters: Mapping[str, str] | None = None,
        by: Sequence[str] = (),
    ) -> list[SpanMetricsSeries]:
        """Per-step calls, errors and latency histograms of spans, grouped by the ``by`` labels
        (any of service, span_name, span_kind, status_code), keeping spans whose labels equal
        ``filters``. Steps start at ``start_ns``; a step shorter than a minute holds whole minutes."""
        check_labels(SPAN_LABELS, [*(filters or {}), *by])
        conditions = [{"term": {k: normalise_label(k, v)}} for k, v in (filters or {}).items()]
        records = self._records(SPANMETRICS, start_ns, end_ns, conditions)
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
        """(by-label values, [(step start ms, calls)]) of the spans whose labels equal ``filters``."""
        index = aggregate_indices_between(self._prefix, SPANMETRICS, start_ns, end_ns)
        answer = search(self._client, index, calls_body(start_ns, end_ns, step_ns, filters, by, max_groups))
        out: list[tuple[tuple[str, ...], list[tuple[int, int]]]] = []

        def walk(agg: dict[str, Any], depth: int, labels: tuple[str, ...]) -> None:
            if depth == len(by):
                points = [(int(b["key"]), int(b["calls"]["value"])) for b in agg["t"]["buckets"]]
                out.append((labels, points))
                return
            for bucket in agg[f"g{depth}"]["buckets"]:
                walk(bucket, depth + 1, (*labels, short_label(by[depth], str(bucket["key"]))))

        if answer.get("aggregations"):  # absent when no index of the range exists yet
            walk(answer["aggregations"], 0, ())
        return out

    def service_latency(
        self, start_ns: int, end_ns: int, step_ns: int, service: str | None, by_service: bool
    ) -> list[LatencySeries]:
        """Per-step calls and latency histograms of the minutes in [start_ns, end_ns) from the
        per-service rollups (``servicegraph.rollup``): of one service, or of all, or per service."""
        conditions = [term("service", service)] if service is not None else []
        records = self._rollup_records(start_ns, end_ns - 1, conditions)
        return aggregate_points.latency_series(records, start_ns, step_ns, by_service)

    def _rollup_records(
        self, start_ns: int, end_ns: int, conditions: list[dict[str, Any]]
    ) -> Iterator[aggregate_points.Record]:
        """From doc values only (``stored_fields: _none_``): no stored field is decompressed."""
        index = aggregate_indices_between(self._prefix, SERVICELATENCY, start_ns, end_ns)
        body: dict[str, Any] = {
            "query": {"bool": {"filter": [self._range(start_ns, end_ns), *conditions]}},
            "stored_fields": "_none_",
            "docvalue_fields": [
                {"field": "@timestamp", "format": "epoch_millis"},
                "service",
                "calls",
                "latency_packed",
            ],
            "sort": [{"@timestamp": "asc"}, {"doc_id": "asc"}],
            "size": PAGE,
            "track_total_hits": False,
        }
        while True:
            answer = search(self._client, index, body, filter_path=ROLLUP_FILTER)
            hits = answer.get("hits", {}).get("hits", [])
            for hit in hits:
                fields = hit["fields"]
                yield aggregate_points.Record(
                    int(float(fields["@timestamp"][0])),
                    {"service": fields["service"][0]},
                    int(fields["calls"][0]),
                    0,
                    0.0,
                    unpack([int(v) for v in fields.get("latency_packed", [])]),
                )
            if len(hits) < PAGE:
                return
            body["search_after"] = hits[-1]["sort"]

    def service_latency_first(self, start_ns: int, end_ns: int) -> int | None:
        """Start (ns) of the first minute in [start_ns, end_ns) with a per-service rollup, None if none."""
        index = aggregate_indices_between(self._prefix, SERVICELATENCY, start_ns, end_ns)
        body = {
            "size": 0,
            "track_total_hits": False,
            "query": {"bool": {"filter": [self._range(start_ns, end_ns - 1)]}},
            "aggs": {"first": {"min": {"field": "@timestamp"}}},
        }
        found = (search(self._client, index, body).get("aggregations") or {}).get("first", {}).get("value")
        return None if found is None else int(found) * NS_PER_MS

    def service_edges(self, start_ns: int, end_ns: int) -> list[EdgeStats]:
        """Calls, errors and server latency per edge over the whole range (for a node graph)."""
        step = aggregate_points.whole_range(start_ns, end_ns)
        records = self._records(SERVICEGRAPH, start_ns, end_ns, [])
        return aggregate_points.edges(aggregate_points.group(records, start_ns, step, EDGE_LABELS), start_ns)

    def _records(
        self, family: str, start_ns: int, end_ns: int, conditions: list[dict[str, Any]]
    ) -> Iterator[aggregate_points.Record]:
        for doc in self._documents(family, start_ns, end_ns, conditions):
            latency = doc.get("latency") or {}
            buckets = dict(zip(latency.get("i", []), latency.get("c", []), strict=True))
            yield aggregate_points.Record(
                int(doc["@timestamp"]), doc, int(doc["calls"]), int(doc["errors"]), float(doc["latency_sum_s"]), buckets
            )

    def _documents(
        self, family: str, start_ns: int, end_ns: int, conditions: list[dict[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        index = aggregate_indices_between(self._prefix, family, start_ns, end_ns)
        body: dict[str, Any] = {
            "query": {"bool": {"filter": [self._range(start_ns, end_ns), *conditions]}},
            "sort": [{"@timestamp": "asc"}, {"doc_id": "asc"}],
            "size": PAGE,
            "track_total_hits": False,
        }
        while True:
            hits = search(self._client, index, body)["hits"]["hits"]
            for hit in hits:
                yield hit["_source"]
            if len(hits) < PAGE:
                return
            body["search_after"] = hits[-1]["sort"]


def calls_body(
    start_ns: int, end_ns: int, step_ns: int, filters: Mapping[str, str], by: Sequence[str], max_groups: int
) -> dict[str, Any]:
    """Calls per step summed in Elasticsearch (``calls`` has doc values), grouped by ``by`` labels."""
    check_labels(SPAN_LABELS, [*filters, *by])
    step_ms = max(step_ns // NS_PER_MS, 1)
    histogram: dict[str, Any] = {
        "date_histogram": {
            "field": "@timestamp",
            "fixed_interval": f"{step_ms}ms",
            "offset": f"{(start_ns // NS_PER_MS) % step_ms}ms",
            "min_doc_count": 1,
        },
        "aggs": {"calls": {"sum": {"field": "calls"}}},
    }
    aggs: dict[str, Any] = {"t": histogram}
    for depth in reversed(range(len(by))):
        aggs = {f"g{depth}": {"terms": {"field": by[depth], "size": max_groups}, "aggs": aggs}}
    conditions = [{"term": {k: normalise_label(k, v)}} for k, v in filters.items()]
    first_minute = start_ns - start_ns % NS_PER_MINUTE
    time_range = {"range": {"@timestamp": {"gte": first_minute // NS_PER_MS, "lt": end_ns // NS_PER_MS}}}
    return {
        "size": 0,
        "track_total_hits": False,
        "query": {"bool": {"filter": [time_range, *conditions]}},
        "aggs": aggs,
    }
