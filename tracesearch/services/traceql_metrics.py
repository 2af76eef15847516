"""TraceQL metrics (``rate()``, ``count_over_time()``, ``quantile_over_time()``, ``histogram_over_time()``,
``avg/min/max/sum_over_time(duration)``): from the per-minute span metrics when the query's shape allows
(cheap), else counted by the store over every matching span document.

The span filter must push down exactly (``query.traceql.pushdown``): metrics are counted by the store
over every matching span, not over a sample of traces, so a filter that needs the in-memory evaluator
(structural operators, trace-level intrinsics, regexes read differently) is refused, saying so.
``by()`` takes intrinsics and attributes with a named scope. Durations are answered in seconds, as Tempo does.
"""

from __future__ import annotations

from collections.abc import Sequence

from tracesearch.query.errors import InvalidQuery
from tracesearch.query.span_aggregation import (
    DURATION_FUNCS,
    GroupBy,
    MetricsResult,
    SeriesBucket,
    SpanAggregation,
    SpanSeries,
    TimeSeries,
)
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
    Query,
    SpansetFilter,
)
from tracesearch.services import latency_rollup
from tracesearch.services.latency_rollup import RollupSource
from tracesearch.storage.contracts import AggregateReader, SpanReader

NS_PER_S = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_S
# by() intrinsics, by the condition field holding them.
BY_FIELDS = {"name": "name", "status": "status", "kind": "kind", "statusMessage": "statusMessage"}
# Fields of the per-minute span metrics, by the TraceQL field that names them.
RED_LABELS = {"resource.service.name": "service", "name": "span_name", "kind": "span_kind", "status": "status_code"}
ADDITIVE = frozenset({"rate", "count_over_time", "sum_over_time", "histogram_over_time"})


def _group(f: Field) -> GroupBy:
    if isinstance(f, IntrinsicField):
        if f.name not in BY_FIELDS:
            raise InvalidQuery(f"by({f.label}) is not supported in metrics queries", field="q")
        return GroupBy(f.label, field=BY_FIELDS[f.name])
    if f.scope == "resource" and f.name == "service.name":
        return GroupBy(f.label, field="service")
    if f.scope in ("", "event", "link"):
        raise InvalidQuery(f"by({f.label}): name the scope, span. or resource.", field="q")
    return GroupBy(f.label, attribute=f"{f.scope}.{f.name}")


def _function(metrics: MetricsQuery) -> tuple[str, tuple[float, ...]]:
    func = metrics.func
    if func in ("rate", "count_over_time"):
        return "count", ()
    if not (isinstance(metrics.field, IntrinsicField) and metrics.field.name == "duration"):
        raise InvalidQuery(f"{func}() is supported over duration only", field="q")
    if func == "quantile_over_time":
        if not metrics.params or any(not 0 <= q <= 1 for q in metrics.params):
            raise InvalidQuery("quantile_over_time(duration, q...) needs quantiles between 0 and 1", field="q")
        return "quantiles", metrics.params
    if func == "histogram_over_time":
        return "histogram", ()
    return DURATION_FUNCS[func], ()


def span_request(query: Query, start_ns: int, end_ns: int, step_ns: int) -> SpanAggregation:
    metrics = query.metrics
    if metrics is None:
        raise InvalidQuery("not a metrics query", field="q")
    pushed = pushdown.plan(metrics.spansets)
    if not pushed.exact:
        raise InvalidQuery(
            "metrics need a span filter the store can count exactly: attribute and intrinsic comparisons "
            "joined by && and ||, without structural operators, trace-level intrinsics or pipelines",
            field="q",
        )
    groups = tuple(_group(f) for f in metrics.by)
    function, quantiles = _function(metrics)
    return SpanAggregation(tuple(pushed.conditions()), start_ns, end_ns, step_ns, function, quantiles, groups)


def _red_label(f: Field) -> str | None:
    if isinstance(f, Attribute):
        return RED_LABELS["resource.service.name"] if (f.scope, f.name) == ("resource", "service.name") else None
    return RED_LABELS.get(f.label)


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


def red_shape(query: Query, step_ns: int, instant: bool = False) -> tuple[dict[str, str], list[str]] | None:
    """Filters and group labels when the query can be answered from the per-minute span metrics:
    rate() or count_over_time() of spans selected by service, name, kind and status equalities,
    grouped by those, in whole-minute steps (an instant query's range is cut at whole minutes instead)."""
    metrics = query.metrics
    if metrics is None or metrics.func not in ("rate", "count_over_time") or (step_ns % NS_PER_MINUTE and not instant):
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


def _from_aggregates(
    aggregates: AggregateReader,
    spans: SpanReader,
    source: RollupSource,
    query: Query,
    start_ns: int,
    end_ns: int,
    step_ns: int,
    instant: bool,
) -> MetricsResult | None:
    """rate()/count_over_time() of a RED shape from the span metrics where they are surely written and
    cover the range; the newest steps, a range reaching back before them, and an instant query's partial
    first minute from the spans. The stage writes span metrics and latency rollups together, so the
    rollups' lag and first minute stand for both (``services.latency_rollup``)."""
    shape = red_shape(query, step_ns, instant)
    metrics = query.metrics
    if shape is None or metrics is None:
        return None
    head, cut = _aggregate_cut(source, start_ns, end_ns, step_ns, instant)
    func = metrics.func
    series: list[list[TimeSeries]] = []
    if head > start_ns:  # an instant query's partial first minute, which no whole minute holds
        found = spans.aggregate_spans(span_request(query, start_ns, head, head - start_ns))
        series.append(_shaped(func, found, step_ns, instant))
    if cut > head:
        series.append(_red_series(aggregates, shape, metrics, head, cut, step_ns, instant))
    if cut < end_ns:
        found = spans.aggregate_spans(span_request(query, cut, end_ns, end_ns - cut if instant else step_ns))
        series.append(_shaped(func, found, step_ns, instant))
    named = _source_name(cut > head, head > start_ns or cut < end_ns)
    return MetricsResult(_summed(series) if instant else _merged(series), instant, named)


def _source_name(aggregates: bool, spans: bool) -> str:
    """``X-Tracesearch-Metrics-Source``: what answered."""
    return "span-metrics+spans" if aggregates and spans else "span-metrics" if aggregates else "spans"


def _aggregate_cut(source: RollupSource, start_ns: int, end_ns: int, step_ns: int, instant: bool) -> tuple[int, int]:
    """[head, cut): the whole minutes the stage's aggregates (span metrics, rollups) answer; a range query's
    steps aligned on the step (as Tempo aligns them), an instant query's range from its first whole minute."""
    if instant:
        head = min(end_ns, -(-start_ns // NS_PER_MINUTE) * NS_PER_MINUTE)
        parts = latency_rollup.split(head, end_ns, NS_PER_MINUTE, source.clock(), source.lag_ns)
    else:
        parts = latency_rollup.split(start_ns, end_ns, step_ns, source.clock(), source.lag_ns)
        head = parts.start_ns
    cut = max(head, parts.cut_ns)
    if cut > head and not latency_rollup.covered(source, head, cut):
        cut = head
    return head, cut


def _red_series(
    aggregates: AggregateReader,
    shape: tuple[dict[str, str], list[str]],
    metrics: MetricsQuery,
    start_ns: int,
    end_ns: int,
    step_ns: int,
    instant: bool,
) -> list[TimeSeries]:
    filters, by = shape
    scale = 1 / (step_ns / NS_PER_S) if metrics.func == "rate" else 1.0
    out = []
    hist_step = end_ns - start_ns if instant else step_ns
    for values, points in aggregates.calls_per_step(start_ns, end_ns, hist_step, filters, by):
        labels = tuple(zip([f.label for f in metrics.by], values, strict=True)) or (("__name__", metrics.func),)
        if instant:
            out.append(TimeSeries(labels, value=sum(c for _, c in points) * scale))
        else:
            out.append(TimeSeries(labels, [(ms, calls * scale) for ms, calls in points]))
    return out


def _points(
    func: str, buckets: Sequence[SeriesBucket], step_s: float
) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """Per extra label (quantile ``p``, histogram ``__bucket``, or none): (ms, value) points."""
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for bucket in buckets:
        ms, count = bucket.time_ms, bucket.count
        if func == "rate":
            series.setdefault(("", ""), []).append((ms, count / step_s))
        elif func == "count_over_time":
            series.setdefault(("", ""), []).append((ms, float(count)))
        elif func == "quantile_over_time":
            for q, value in bucket.quantiles.items():
                series.setdefault(("p", repr(q)), []).append((ms, value / NS_PER_S))
        elif func == "histogram_over_time":
            for key, spans in bucket.histogram.items():
                series.setdefault(("__bucket", key), []).append((ms, float(spans)))
        elif bucket.value is not None:
            series.setdefault(("", ""), []).append((ms, bucket.value / NS_PER_S))
    return series


def _shaped(func: str, found: list[SpanSeries], step_ns: int, instant: bool) -> list[TimeSeries]:
    out = []
    for one in found:
        for (extra_key, extra_value), points in _points(func, one.buckets, step_ns / NS_PER_S).items():
            labels = (*one.labels, (extra_key, extra_value)) if extra_key else one.labels
            labels = labels or (("__name__", func),)
            if instant:
                # The step is the whole range; alignment may split it in two buckets.
                value = sum(v for _, v in points) if func in ADDITIVE else points[-1][1]
                out.append(TimeSeries(labels, value=value))
            else:
                out.append(TimeSeries(labels, points))
    return out


def _summed(parts: list[list[TimeSeries]]) -> list[TimeSeries]:
    """Instant values of consecutive time ranges added up by their labels (additive functions only)."""
    totals: dict[tuple[tuple[str, str], ...], float] = {}
    for part in parts:
        for one in part:
            totals[one.labels] = totals.get(one.labels, 0.0) + (one.value or 0.0)
    return [TimeSeries(labels, value=value) for labels, value in totals.items()]


def _merged(parts: list[list[TimeSeries]]) -> list[TimeSeries]:
    """Series of consecutive time ranges joined by their labels, oldest part first."""
    joined: dict[tuple[tuple[str, str], ...], TimeSeries] = {}
    for part in parts:
        for one in part:
            found = joined.get(one.labels)
            if found is None:
                joined[one.labels] = TimeSeries(one.labels, list(one.samples))
            else:
                found.samples.extend(one.samples)
    return list(joined.values())


def _from_rollups(
    spans: SpanReader, source: RollupSource, query: Query, start_ns: int, end_ns: int, step_ns: int
) -> MetricsResult | None:
    """A latency panel's quantiles from the per-service rollups, its newest steps from the spans
    (``services.latency_rollup``); None when the query has another shape."""
    shape = latency_rollup.latency_shape(query, step_ns, instant=False)
    if shape is None or query.metrics is None:
        return None
    func = query.metrics.func
    head, cut = _aggregate_cut(source, start_ns, end_ns, step_ns, instant=False)
    series: list[list[TimeSeries]] = []
    if cut > head:
        found = source.rollups.service_latency(head, cut, step_ns, shape.service, shape.by_label is not None)
        series.append(_shaped(func, latency_rollup.as_span_series(found, shape), step_ns, instant=False))
    if cut < end_ns:
        request = span_request(query, cut, end_ns, step_ns)
        series.append(_shaped(func, spans.aggregate_spans(request), step_ns, instant=False))
    named = _source_name(cut > head, cut < end_ns)
    return MetricsResult(_merged(series), False, named)


def run(
    spans: SpanReader,
    aggregates: AggregateReader,
    query: Query,
    start_ns: int,
    end_ns: int,
    step_ns: int,
    instant: bool,
    rollups: RollupSource | None = None,
) -> MetricsResult:
    """The series of a metrics query; ``source`` says whether the span metrics, the spans or both answered.
    ``rollups``: the per-service latency rollups, when this deployment writes them (service graph on,
    no tail sampling)."""
    if rollups is not None:
        answer = _from_aggregates(aggregates, spans, rollups, query, start_ns, end_ns, step_ns, instant)
        if answer is not None:
            return answer
    if rollups is not None and not instant:
        answer = _from_rollups(spans, rollups, query, start_ns, end_ns, step_ns)
        if answer is not None:
            return answer
    request = span_request(query, start_ns, end_ns, step_ns)
    assert query.metrics is not None  # span_request checked it
    return MetricsResult(
        _shaped(query.metrics.func, spans.aggregate_spans(request), step_ns, instant), instant, "spans"
    )
