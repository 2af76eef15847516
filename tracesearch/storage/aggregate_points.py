"""Adding up per-minute aggregate records into steps, series and edges: the same arithmetic for every
store (each process writes its own partial record per minute and label set; readers add them up)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from tracesearch.storage.contracts import EdgeStats, LatencySeries, LatencyStep, MetricsPoint, SpanMetricsSeries

NS_PER_MS = 1_000_000
NS_PER_MINUTE = 60_000_000_000

Grouped = dict[tuple[str, ...], dict[int, MetricsPoint]]


class Record(NamedTuple):
    """One process's partial counts of one minute and label set."""

    minute_ms: int
    labels: Mapping[str, str]
    calls: int
    errors: int
    latency_sum_s: float
    buckets: Mapping[int, int]


def group(records: Iterable[Record], start_ns: int, step_ns: int, by: Sequence[str]) -> Grouped:
    """Records added up per ``by`` label values and step; steps start at ``start_ns``, and a step shorter
    than a minute holds whole minutes."""
    if step_ns <= 0:
        raise ValueError("step must be positive")
    grouped: Grouped = {}
    for r in records:
        step = max(0, (r.minute_ms * NS_PER_MS - start_ns) // step_ns)
        points = grouped.setdefault(tuple(str(r.labels[label]) for label in by), {})
        point = points.get(step)
        if point is None:
            point = points[step] = MetricsPoint(start_ns + step * step_ns)
        point.add(r.calls, r.errors, r.latency_sum_s, r.buckets)
    return grouped


def series(grouped: Grouped, by: Sequence[str]) -> list[SpanMetricsSeries]:
    return [
        SpanMetricsSeries(dict(zip(by, labels, strict=True)), [points[i] for i in sorted(points)])
        for labels, points in sorted(grouped.items())
    ]


def edges(grouped: Grouped, start_ns: int) -> list[EdgeStats]:
    """One total per (client, server, connection_type) over every step."""
    found = []
    for (client, server, connection_type), points in sorted(grouped.items()):
        total = MetricsPoint(start_ns)
        for point in points.values():
            total.merge(point)
        found.append(
            EdgeStats(
                client, server, connection_type, total.calls, total.errors, total.latency_sum_s, total.bucket_counts
            )
        )
    return found


def whole_range(start_ns: int, end_ns: int) -> int:
    """A step spanning the whole range, its last minute included."""
    return max(1, end_ns - start_ns + NS_PER_MINUTE)


def latency_series(records: Iterable[Record], start_ns: int, step_ns: int, by_service: bool) -> list[LatencySeries]:
    """Per-service rollup records added up per step (and per service with ``by_service``), histograms
    kept sparse: a day in one-minute steps is 1,440 small dicts, not 1,440 lists of every bucket."""
    if step_ns <= 0:
        raise ValueError("step must be positive")
    grouped: dict[str | None, dict[int, LatencyStep]] = {}
    for r in records:
        step = max(0, (r.minute_ms * NS_PER_MS - start_ns) // step_ns)
        steps = grouped.setdefault(str(r.labels["service"]) if by_service else None, {})
        point = steps.get(step)
        if point is None:
            point = steps[step] = LatencyStep(start_ns + step * step_ns)
        point.add(r.calls, r.buckets)
    return [
        LatencySeries(service, [steps[i] for i in sorted(steps)])
        for service, steps in sorted(grouped.items(), key=lambda item: item[0] or "")
    ]
