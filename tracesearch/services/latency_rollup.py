"""Latency panels from the per-service rollups: when and how ``quantile_over_time(duration, ...)`` is answered
from ``servicegraph.rollup``'s per-minute histograms instead of a percentiles aggregation over every span.

The shape: a range query (not instant) in whole-minute steps of ``{}`` or ``{resource.service.name = "x"}``,
optionally ``by (resource.service.name)``. Steps are aligned on multiples of the step (as Tempo aligns a
query range), so each step is whole minutes. The range is cut where the rollups stop being sure to be
written (``split``): steps before the cut come from the rollups, the rest from the spans. Steps before the
cut come from the rollups only when the rollups cover the range (``covered``): they have a document at or
before its first minute, or no span was stored before their first one (a range reaching back before the
rollups existed, or from a process with the service graph off, falls back to the spans).

Precision: a quantile is the harmonic midpoint of the histogram bucket holding the nearest-rank value,
within 4.33 % of the exact value (``servicegraph.histogram``: eight buckets per doubling, durations from
about 1 µs to 4.7 h); the span path's answer is Elasticsearch's t-digest estimate, itself approximate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tracesearch.query.span_aggregation import SeriesBucket, SpanSeries
from tracesearch.query.traceql.ast import (
    And,
    Attribute,
    Compare,
    Const,
    FieldExpr,
    IntrinsicField,
    Query,
    SpansetFilter,
)
from tracesearch.servicegraph.histogram import sparse_quantiles
from tracesearch.storage.contracts import LatencyRollups, LatencySeries, SpanPresence

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
NS_PER_MINUTE = 60 * NS_PER_S
SERVICE = Attribute("resource", "service.name")
MAX_GROUPS = 100  # by() values answered, as the span path's terms aggregation (storage/es/span_aggregation.py)


@dataclass(frozen=True)
class RollupSource:
    """What the query side needs: the rollups, whether spans exist (coverage), and ``lag_ns``: spans
    observed longer ago than that are in a written rollup (``rollup.written_within_ns``)."""

    rollups: LatencyRollups
    spans: SpanPresence
    lag_ns: int
    clock: Callable[[], int] = field(default=time.time_ns)


@dataclass(frozen=True)
class LatencyShape:
    service: str | None  # the one service selected, or None for every span
    by_label: str | None  # the by() label when grouped by service
    quantiles: tuple[float, ...]


@dataclass(frozen=True)
class Split:
    start_ns: int  # the range's start, aligned on a multiple of the step
    cut_ns: int  # steps starting before it from the rollups, the others from the spans
    end_ns: int


def _service_filter(expr: FieldExpr) -> tuple[bool, str | None]:
    """(whether the filter is one the rollups hold, the service it selects)."""
    if isinstance(expr, Const):
        return expr.value is True, None
    if isinstance(expr, Compare) and expr.op == "=" and expr.lhs == SERVICE and expr.value.kind == "string":
        return True, str(expr.value.value)
    if isinstance(expr, And):
        left_ok, left = _service_filter(expr.left)
        right_ok, right = _service_filter(expr.right)
        if not (left_ok and right_ok) or (left is not None and right is not None and left != right):
            return False, None
        return True, left if left is not None else right
    return False, None


def latency_shape(query: Query, step_ns: int, instant: bool) -> LatencyShape | None:
    metrics = query.metrics
    if metrics is None or instant or metrics.func != "quantile_over_time" or step_ns % NS_PER_MINUTE:
        return None
    if metrics.field != IntrinsicField("duration") or not metrics.params:
        return None
    if any(not 0 <= q <= 1 for q in metrics.params):
        return None  # the span path refuses it, saying why
    stages = metrics.spansets.stages
    if len(stages) != 1 or not isinstance(stages[0], SpansetFilter):
        return None
    ok, service = _service_filter(stages[0].expr)
    if not ok:
        return None
    if not metrics.by:
        return LatencyShape(service, None, metrics.params)
    if list(metrics.by) == [SERVICE]:
        return LatencyShape(service, SERVICE.label, metrics.params)
    return None


def split(start_ns: int, end_ns: int, step_ns: int, now_ns: int, lag_ns: int) -> Split:
    aligned = start_ns - start_ns % step_ns
    edge = min(end_ns, now_ns - lag_ns)
    cut = aligned + max(0, (edge - aligned) // step_ns) * step_ns
    return Split(aligned, cut, end_ns)


def covered(source: RollupSource, start_ns: int, cut_ns: int) -> bool:
    """Whether the rollups hold every span of [start_ns, cut_ns): they began at or before its first
    minute, or no span was stored before they began."""
    first = source.rollups.service_latency_first(start_ns, cut_ns)
    if first is None:
        return False
    return first <= start_ns or not source.spans.has_spans(start_ns, first)


def as_span_series(found: Sequence[LatencySeries], shape: LatencyShape) -> list[SpanSeries]:
    """The rollups' steps as the span path's series: quantiles in nanoseconds, steps with spans only; by
    service, the ``MAX_GROUPS`` services with the most spans, most first (the span path's ``terms`` order)."""
    if shape.by_label:
        found = sorted(found, key=lambda one: (-sum(step.calls for step in one.steps), one.service or ""))
        found = found[:MAX_GROUPS]
    out = []
    for one in found:
        labels = ((shape.by_label, one.service or ""),) if shape.by_label else ()
        buckets = [
            SeriesBucket(
                step.time_ns // NS_PER_MS,
                step.calls,
                quantiles={q: s * NS_PER_S for q, s in sparse_quantiles(step.buckets, shape.quantiles).items()},
            )
            for step in one.steps
            if step.calls
        ]
        out.append(SpanSeries(labels, buckets))
    return out
