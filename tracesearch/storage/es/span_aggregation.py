"""TraceQL metrics over span documents as one Elasticsearch aggregation (``SpanAggregation``).

A ``date_histogram`` per step inside one ``terms`` per group field; the value per step is a
``percentiles`` (t-digest, approximate), a ``range`` of power-of-two duration buckets, or an
``avg``/``min``/``max``/``sum`` of ``duration_ns``. Counted by Elasticsearch over every matching span.
Attribute group values come from the ``tags`` keywords (``span.http.route=/cart``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tracesearch.query.span_aggregation import GroupBy, SeriesBucket, SpanAggregation, SpanSeries, histogram_buckets
from tracesearch.storage.es.compiler import DOCUMENT_FIELDS, Query, bool_, compile_condition, lucene_prefix, time_filter

NS_PER_MS = 1_000_000
MAX_GROUPS = 100


@dataclass(frozen=True, slots=True)
class _Group:
    label: str
    field: str
    prefix: str  # stripped from ``tags`` values ("span.http.route=")


def _group(group: GroupBy) -> _Group:
    if group.attribute:
        return _Group(group.label, "tags", f"{group.attribute}=")
    return _Group(group.label, DOCUMENT_FIELDS[group.field], "")


def _value_aggs(request: SpanAggregation) -> dict[str, Any]:
    function = request.function
    if function == "count":
        return {}
    if function == "quantiles":
        return {"value": {"percentiles": {"field": "duration_ns", "percents": [q * 100 for q in request.quantiles]}}}
    if function == "histogram":
        ranges = [{"key": label, "from": low, "to": high} for label, low, high in histogram_buckets()]
        return {"value": {"range": {"field": "duration_ns", "keyed": True, "ranges": ranges}}}
    return {"value": {function: {"field": "duration_ns"}}}


def _time_buckets(request: SpanAggregation) -> dict[str, Any]:
    step_ms = max(request.step_ns // NS_PER_MS, 1)
    return {
        "date_histogram": {
            "field": "@timestamp",
            "fixed_interval": f"{step_ms}ms",
            "min_doc_count": 0,
            "offset": f"{(request.start_ns // NS_PER_MS) % step_ms}ms",
            "extended_bounds": {"min": request.start_ns // NS_PER_MS, "max": request.end_ns // NS_PER_MS},
        }
    }


def _nest(groups: list[_Group], leaf: dict[str, Any]) -> dict[str, Any]:
    aggs = leaf
    for depth in reversed(range(len(groups))):
        g = groups[depth]
        terms: dict[str, Any] = {"field": g.field, "size": MAX_GROUPS}
        if g.prefix:
            terms["include"] = lucene_prefix(g.prefix)
        aggs = {f"g{depth}": {"terms": terms, "aggs": aggs}}
    return aggs


def body(request: SpanAggregation) -> dict[str, Any]:
    groups = [_group(g) for g in request.group_by]
    time_aggs = {"t": {**_time_buckets(request), "aggs": _value_aggs(request)}}
    clauses: list[Query] = [
        time_filter(request.start_ns, request.end_ns - 1),
        *map(compile_condition, request.conditions),
    ]
    return {"size": 0, "track_total_hits": False, "query": bool_(filter=clauses), "aggs": _nest(groups, time_aggs)}


def _walk(
    agg: dict[str, Any], groups: list[_Group], depth: int, labels: tuple[tuple[str, str], ...]
) -> Iterator[tuple[tuple[tuple[str, str], ...], list[dict[str, Any]]]]:
    if depth == len(groups):
        yield labels, agg["t"]["buckets"]
        return
    g = groups[depth]
    for bucket in agg[f"g{depth}"]["buckets"]:
        value = str(bucket["key"])[len(g.prefix) :]
        yield from _walk(bucket, groups, depth + 1, (*labels, (g.label, value)))


def _quantiles(request: SpanAggregation, values: dict[str, float | None]) -> dict[float, float]:
    found = {}
    for q in request.quantiles:
        value = values.get(f"{q * 100:.1f}")
        if value is None:
            value = next((v for k, v in values.items() if math.isclose(float(k), q * 100)), None)
        if value is not None:
            found[q] = float(value)
    return found


def _bucket(request: SpanAggregation, bucket: dict[str, Any]) -> SeriesBucket:
    count = int(bucket["doc_count"])
    out = SeriesBucket(int(bucket["key"]), count)
    if request.function == "quantiles" and count:
        out.quantiles = _quantiles(request, bucket["value"]["values"])
    elif request.function == "histogram":
        out.histogram = {k: int(e["doc_count"]) for k, e in bucket["value"]["buckets"].items() if e["doc_count"]}
    elif request.function != "count" and count and bucket["value"]["value"] is not None:
        out.value = float(bucket["value"]["value"])
    return out


def series(request: SpanAggregation, answer: dict[str, Any]) -> list[SpanSeries]:
    """The series of an answer to ``body(request)``; none when no index of the range exists yet."""
    if not answer.get("aggregations"):
        return []
    groups = [_group(g) for g in request.group_by]
    return [
        SpanSeries(labels, [_bucket(request, b) for b in buckets])
        for labels, buckets in _walk(answer["aggregations"], groups, 0, ())
    ]
