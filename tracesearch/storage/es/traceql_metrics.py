"""TraceQL metrics (``rate()``, ``count_over_time()``, ``quantile_over_time()``,
``histogram_over_time()``, ``avg/min/max/sum_over_time(duration)``) as Elasticsearch aggregations.

The span filter must push down exactly (see ``query.traceql.pushdown``): metrics are counted by Elasticsearch
over every matching span, not over a sample of traces, so a filter that needs the in-memory evaluator
(structural operators, trace-level intrinsics, regexes Lucene reads differently) is refused with a
400 that says so. ``by()`` takes intrinsics and attributes; attribute values come from the ``tags``
keywords. Durations are answered in seconds, as Tempo does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tracesearch.errors import BadRequest
from tracesearch.query.tempo_params import MetricsParams
from tracesearch.query.traceql import pushdown
from tracesearch.query.traceql.ast import (
    And,
    Attribute,
    Compare,
    Const,
    Field,
    FieldExpr,
    IntrinsicField,
    MetricsQuery,
    SpansetFilter,
)
from tracesearch.storage.es.aggregates import EsAggregates
from tracesearch.storage.es.compiler import Query, bool_, compile_condition, lucene_prefix, time_filter
from tracesearch.storage.es.reader import EsSpanReader

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
MAX_GROUPS = 100
# histogram_over_time buckets: powers of two of nanoseconds, labelled by their upper bound in seconds.
HISTOGRAM_EXPONENTS = range(10, 42)
BY_FIELDS = {
    "name": "span.name",
    "status": "status.code",
    "kind": "span.kind",
    "rootServiceName": "service.name",
    "statusMessage": "status.message",
}
DURATION_FUNCS = {"avg_over_time": "avg", "min_over_time": "min", "max_over_time": "max", "sum_over_time": "sum"}


@dataclass(frozen=True, slots=True)
class _Group:
    label: str
    field: str
    prefix: str  # stripped from ``tags`` values ("span.http.route=")


def _group(f: Field) -> _Group:
    if isinstance(f, IntrinsicField):
        if f.name not in BY_FIELDS or f.name == "rootServiceName":
            raise BadRequest(f"by({f.label}) is not supported in metrics queries", field="q")
        return _Group(f.label, BY_FIELDS[f.name], "")
    if f.scope == "resource" and f.name == "service.name":
        return _Group(f.label, "service.name", "")
    if f.scope in ("", "event", "link"):
        raise BadRequest(f"by({f.label}): name the scope, span. or resource.", field="q")
    return _Group(f.label, "tags", f"{f.scope}.{f.name}=")


def _value_aggs(metrics: MetricsQuery) -> dict[str, Any]:
    func = metrics.func
    if func in ("rate", "count_over_time"):
        return {}
    if not (isinstance(metrics.field, IntrinsicField) and metrics.field.name == "duration"):
        raise BadRequest(f"{func}() is supported over duration only", field="q")
    if func == "quantile_over_time":
        if not metrics.params or any(not 0 <= q <= 1 for q in metrics.params):
            raise BadRequest("quantile_over_time(duration, q...) needs quantiles between 0 and 1", field="q")
        return {"value": {"percentiles": {"field": "duration_ns", "percents": [q * 100 for q in metrics.params]}}}
    if func == "histogram_over_time":
        ranges = [{"key": str(2**e / NS_PER_S), "from": 2 ** (e - 1), "to": 2**e} for e in HISTOGRAM_EXPONENTS]
        ranges[0] = {**ranges[0], "from": 0}
        return {"value": {"range": {"field": "duration_ns", "keyed": True, "ranges": ranges}}}
    return {"value": {DURATION_FUNCS[func]: {"field": "duration_ns"}}}


def _time_buckets(params: MetricsParams) -> dict[str, Any]:
    return {
        "date_histogram": {
            "field": "@timestamp",
            "fixed_interval": f"{max(params.step_ns // NS_PER_MS, 1)}ms",
            "min_doc_count": 0,
            "offset": f"{(params.start_ns // NS_PER_MS) % max(params.step_ns // NS_PER_MS, 1)}ms",
            "extended_bounds": {"min": params.start_ns // NS_PER_MS, "max": params.end_ns // NS_PER_MS},
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


def metrics_body(params: MetricsParams) -> tuple[dict[str, Any], list[_Group]]:
    metrics = params.query.metrics
    assert metrics is not None
    pushed = pushdown.plan(metrics.spansets)
    if not pushed.exact:
        raise BadRequest(
            "metrics need a span filter Elasticsearch can count exactly: attribute and intrinsic comparisons "
            "joined by && and ||, without structural operators, trace-level intrinsics or pipelines",
            field="q",
        )
    groups = [_group(f) for f in metrics.by]
    time_aggs = {"t": {**_time_buckets(params), "aggs": _value_aggs(metrics)}}
    clauses: list[Query] = [
        time_filter(params.start_ns, params.end_ns - 1),
        *map(compile_condition, pushed.conditions()),
    ]
    body = {"size": 0, "track_total_hits": False, "query": bool_(filter=clauses), "aggs": _nest(groups, time_aggs)}
    return body, groups


def _walk(agg: dict[str, Any], groups: list[_Group], depth: int, labels: tuple[tuple[str, str], ...]) -> Any:
    if depth == len(groups):
        yield labels, agg["t"]["buckets"]
        return
    g = groups[depth]
    for bucket in agg[f"g{depth}"]["buckets"]:
        value = str(bucket["key"])[len(g.prefix) :]
        yield from _walk(bucket, groups, depth + 1, (*labels, (g.label, value)))


def _label_json(labels: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    return [{"key": k, "value": {"stringValue": v}} for k, v in labels]


def _points(metrics: MetricsQuery, buckets: list[dict[str, Any]], step_s: float) -> dict[tuple[str, str], list[Any]]:
    """Per extra label (quantile ``p``, histogram ``__bucket``, or none): (ms, value) points."""
    series: dict[tuple[str, str], list[Any]] = {}
    for bucket in buckets:
        ms, count = int(bucket["key"]), bucket["doc_count"]
        if metrics.func == "rate":
            series.setdefault(("", ""), []).append((ms, count / step_s))
        elif metrics.func == "count_over_time":
            series.setdefault(("", ""), []).append((ms, float(count)))
        elif metrics.func == "quantile_over_time":
            values = bucket["value"]["values"]
            for q in metrics.params:
                value = values.get(f"{q * 100:.1f}") if count else None
                if value is None:
                    value = next((v for k, v in values.items() if math.isclose(float(k), q * 100)), None)
                if count and value is not None:
                    series.setdefault(("p", repr(q)), []).append((ms, value / NS_PER_S))
        elif metrics.func == "histogram_over_time":
            for key, entry in bucket["value"]["buckets"].items():
                if entry["doc_count"]:
                    series.setdefault(("__bucket", key), []).append((ms, float(entry["doc_count"])))
        elif count and bucket["value"]["value"] is not None:
            series.setdefault(("", ""), []).append((ms, bucket["value"]["value"] / NS_PER_S))
    return series


# Fields of the per-minute span metrics, by the TraceQL field that names them.
RED_LABELS = {"resource.service.name": "service", "name": "span_name", "kind": "span_kind", "status": "status_code"}
NS_PER_MINUTE = 60 * NS_PER_S


def _red_label(f: Field) -> str | None:
    key = (
        "resource.service.name"
        if isinstance(f, Attribute) and (f.scope, f.name) == ("resource", "service.name")
        else f.label
    )
    return RED_LABELS.get(key) if isinstance(f, IntrinsicField) or key == "resource.service.name" else None


def _red_filters(expr: FieldExpr, found: dict[str, str]) -> bool:
    if isinstance(expr, Const):
        return bool(expr.value)
    if isinstance(expr, And):
        return _red_filters(expr.left, found) and _red_filters(expr.right, found)
    if not isinstance(expr, Compare) or expr.op != "=" or expr.value.kind not in ("string", "status", "kind"):
        return False
    label = _red_label(expr.lhs)
    if label is None or found.get(label, str(expr.value.value)) != str(expr.value.value):
        return False
    found[label] = str(expr.value.value)
    return True


def red_shape(params: MetricsParams) -> tuple[dict[str, str], list[str]] | None:
    """Filters and group labels when the query can be answered from the per-minute span metrics:
    rate() or count_over_time() of spans selected by service, name, kind and status equalities,
    grouped by those, in whole-minute steps."""
    metrics = params.query.metrics
    if metrics is None or metrics.func not in ("rate", "count_over_time") or params.step_ns % NS_PER_MINUTE:
        return None
    stages = metrics.spansets.stages
    if len(stages) != 1 or not isinstance(stages[0], SpansetFilter):
        return None
    filters: dict[str, str] = {}
    if not _red_filters(stages[0].expr, filters):
        return None
    by = [_red_label(f) for f in metrics.by]
    if any(label is None for label in by):
        return None
    return filters, [label for label in by if label is not None]


def metrics_from_aggregates(aggregates: EsAggregates, params: MetricsParams) -> dict[str, Any] | None:
    shape = red_shape(params)
    metrics = params.query.metrics
    if shape is None or metrics is None:
        return None
    filters, by = shape
    step_s = params.step_ns / NS_PER_S
    out = []
    for values, points in aggregates.calls_per_step(params.start_ns, params.end_ns, params.step_ns, filters, by):
        labels = tuple(zip([f.label for f in metrics.by], values, strict=True)) or (("__name__", metrics.func),)
        scale = 1 / step_s if metrics.func == "rate" else 1.0
        if params.instant:
            out.append({"labels": _label_json(labels), "value": sum(c for _, c in points) * scale})
        else:
            samples = [{"timestampMs": str(ms), "value": calls * scale} for ms, calls in points]
            out.append({"labels": _label_json(labels), "samples": samples})
    return {"series": out, "metrics": {}}


def run_metrics(reader: EsSpanReader, params: MetricsParams) -> dict[str, Any]:
    metrics = params.query.metrics
    assert metrics is not None
    body, groups = metrics_body(params)
    answer = reader.aggregate(params.start_ns, params.end_ns, body)
    step_s = params.step_ns / NS_PER_S
    out = []
    # No "aggregations" at all when no index of the range exists yet.
    walked = _walk(answer["aggregations"], groups, 0, ()) if answer.get("aggregations") else iter(())
    for labels, buckets in walked:
        for (extra_key, extra_value), points in _points(metrics, buckets, step_s).items():
            all_labels = (*labels, (extra_key, extra_value)) if extra_key else labels
            if not all_labels:
                all_labels = (("__name__", metrics.func),)
            if params.instant:
                # The step is the whole range; alignment may split it in two buckets.
                additive = metrics.func in ("rate", "count_over_time", "sum_over_time", "histogram_over_time")
                value = sum(v for _, v in points) if additive else points[-1][1]
                out.append({"labels": _label_json(all_labels), "value": value})
            else:
                samples = [{"timestampMs": str(ms), "value": v} for ms, v in points]
                out.append({"labels": _label_json(all_labels), "samples": samples})
    return {"series": out, "metrics": {}}
