"""TraceQL metrics over span documents, asked of storage in storage-independent terms.

The query service turns ``{ filter } | quantile_over_time(duration, .5) by (name)`` into a
``SpanAggregation``; a store answers, per group and per time step, the count of matching spans and
the value the function asks for (``SeriesBucket``). Turning counts into rates and series into an API's
shape is the service's and the codec's work, not storage's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracesearch.query.conditions import Condition

NS_PER_S = 1_000_000_000
# histogram_over_time buckets: powers of two of nanoseconds, labelled by their upper bound in seconds.
HISTOGRAM_EXPONENTS = range(10, 42)
# Functions of one duration per step, by TraceQL name.
DURATION_FUNCS = {"avg_over_time": "avg", "min_over_time": "min", "max_over_time": "max", "sum_over_time": "sum"}


def histogram_buckets() -> list[tuple[str, int, int]]:
    """(label, from ns, to ns) of each histogram bucket: (2^(e-1), 2^e], the first from 0."""
    buckets = [(str(2**e / NS_PER_S), 2 ** (e - 1), 2**e) for e in HISTOGRAM_EXPONENTS]
    label, _, high = buckets[0]
    buckets[0] = (label, 0, high)
    return buckets


@dataclass(frozen=True, slots=True)
class GroupBy:
    """A ``by()`` field: a span field of ``conditions.FIELDS`` or a scoped attribute name."""

    label: str  # as the answer names it: "name", "resource.service.name", "span.http.route"
    field: str = ""  # "name", "status", "kind", "statusMessage", "service"
    attribute: str = ""  # "span.http.route"


@dataclass(frozen=True, slots=True)
class SpanAggregation:
    """What to compute per step of [start_ns, end_ns) over the spans meeting every condition.

    ``function``: ``count``; ``quantiles`` (of duration, at ``quantiles``); ``histogram`` (of duration);
    ``avg``, ``min``, ``max`` or ``sum`` (of duration). Steps start at ``start_ns``."""

    conditions: tuple[Condition, ...]
    start_ns: int
    end_ns: int
    step_ns: int
    function: str
    quantiles: tuple[float, ...] = ()
    group_by: tuple[GroupBy, ...] = ()


@dataclass(slots=True)
class SeriesBucket:
    """One step: its start (ms), the spans counted, and the function's value(s) in nanoseconds."""

    time_ms: int
    count: int
    value: float | None = None  # avg, min, max, sum
    quantiles: dict[float, float] = field(default_factory=dict)  # quantile -> value; absent when none
    histogram: dict[str, int] = field(default_factory=dict)  # bucket label -> spans; empty buckets absent


@dataclass(slots=True)
class SpanSeries:
    labels: tuple[tuple[str, str], ...]  # (GroupBy.label, value) per group field
    buckets: list[SeriesBucket]  # every step of the range, oldest first


@dataclass(slots=True)
class TimeSeries:
    """One series of a TraceQL metrics answer: samples (step start ms, value) of a range query, or the
    one ``value`` of an instant query."""

    labels: tuple[tuple[str, str], ...]
    samples: list[tuple[int, float]] = field(default_factory=list)
    value: float | None = None


@dataclass(slots=True)
class MetricsResult:
    series: list[TimeSeries]
    instant: bool
    source: str  # "span-metrics" (the per-minute aggregates) or "spans" (the span documents)
