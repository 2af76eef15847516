"""A rule's value per label set at one moment: from the per-minute span metrics where the rule allows
(cheap: a few aggregate documents per minute), otherwise through the query service's TraceQL metrics,
the path Grafana's Tempo panels take, so a panel drawing the rule's query shows what the alert saw.

Span metrics answer a rule when its metric is a latency quantile, the error rate or the request rate,
its scope is only service, operation and span kind (no attribute filters: the aggregates have no
attributes), it groups by those only, and its window is whole minutes (the aggregates are per minute:
the window's minutes are read, from the one holding ``now - window`` to the current, partial one, so a
5m window reads between 5 and 6 minutes of spans; rates divide by the time those minutes cover).
Anything else is a TraceQL
metrics query over the span documents (or over the span metrics when ``traceql_metrics`` finds its shape
fits), exact to the nanosecond window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tracesearch.alerting import traceql_text
from tracesearch.alerting.rules import Rule
from tracesearch.query.traceql import parse
from tracesearch.servicegraph.histogram import quantile
from tracesearch.services.query import QueryService
from tracesearch.storage.contracts import AggregateReader, MetricsPoint

NS_PER_S = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_S
SPAN_METRICS = "span-metrics"
SPANS = "spans"
RED_METRICS = frozenset({"latency", "error_rate", "request_rate"})
# group_by names the span metrics hold, by their label there.
RED_LABELS = {"service": "service", "operation": "span_name", "span_kind": "span_kind"}
# Metrics whose value with no spans at all is 0 (nothing happened), not "no data".
ZERO_WHEN_EMPTY = frozenset({"request_rate", "span_count", "span_rate"})


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]  # one value per group_by name (a traceql rule: its series' labels)
    value: float
    source: str  # SPAN_METRICS or SPANS: which path answered


def compare(op: str, value: float, threshold: float) -> bool:
    if math.isnan(value):
        return False
    return {">": value > threshold, ">=": value >= threshold, "<": value < threshold, "<=": value <= threshold}[op]


def from_span_metrics(rule: Rule) -> bool:
    """Whether the per-minute span metrics can answer the rule."""
    return (
        rule.metric in RED_METRICS
        and not rule.scope.attributes
        and all(name in RED_LABELS for name in rule.group_by)
        and rule.window_s >= 60
        and rule.window_s % 60 == 0
    )


class Evaluator:
    def __init__(self, query_service: QueryService, aggregate_reader: AggregateReader):
        self._query = query_service
        self._aggregates = aggregate_reader
        self.last_source = ""  # which path answered the last evaluate() (the bench counts them)

    def evaluate(self, rule: Rule, now_ns: int) -> list[Sample]:
        """The rule's value per label set over the window ending at ``now_ns``."""
        if from_span_metrics(rule):
            self.last_source = SPAN_METRICS
            samples = self._red(rule, now_ns)
        else:
            samples = self._traceql(rule, now_ns)
        if not samples and not rule.group_by and rule.metric in ZERO_WHEN_EMPTY:
            return [Sample({}, 0.0, self.last_source)]
        return samples

    # -- the span metrics

    def _red(self, rule: Rule, now_ns: int) -> list[Sample]:
        # The reader takes every minute whose start is in [start rounded down, end]: the window's minutes
        # and the current, partial one (a window of 5m reads between 5 and 6 minutes of spans).
        start_ns = now_ns - int(rule.window_s * NS_PER_S)
        scope = rule.scope
        filters = {
            label: value
            for label, value in (
                ("service", scope.service),
                ("span_name", scope.operation),
                ("span_kind", scope.span_kind),
            )
            if value
        }
        by = [RED_LABELS[name] for name in rule.group_by]
        samples = []
        for series in self._aggregates.span_metrics(start_ns, now_ns, NS_PER_MINUTE, filters, by):
            total = MetricsPoint(0)
            for point in series.points:
                total.merge(point)
            covered_s = (now_ns - start_ns // NS_PER_MINUTE * NS_PER_MINUTE) / NS_PER_S
            value = self._red_value(rule, total, series.bounds, covered_s)
            if value is not None:
                labels = {name: series.labels[RED_LABELS[name]] for name in rule.group_by}
                samples.append(Sample(labels, value, SPAN_METRICS))
        return samples

    @staticmethod
    def _red_value(rule: Rule, total: MetricsPoint, bounds: Sequence[float], covered_s: float) -> float | None:
        if total.calls == 0:
            return None
        if rule.metric == "latency":
            return quantile(total.bucket_counts, bounds, rule.quantile if rule.quantile is not None else 0.95)
        if rule.metric == "error_rate":
            return total.errors / total.calls
        return total.calls / covered_s

    # -- TraceQL metrics through the query service

    def _traceql(self, rule: Rule, now_ns: int) -> list[Sample]:
        by = traceql_text.by(rule.group_by)
        spans = traceql_text.rule_filter(rule)
        if rule.metric == "traceql" and rule.query:
            return self._metrics(rule.query, now_ns, rule, keep_labels=True)
        if rule.metric == "latency":
            q = rule.quantile if rule.quantile is not None else 0.95
            return self._metrics(f"{spans} | quantile_over_time(duration, {q}){by}", now_ns, rule)
        if rule.metric == "error_rate":
            errors = traceql_text.rule_filter(rule, extra=["status = error"])
            failed = {_key(s.labels): s.value for s in self._metrics(f"{errors} | count_over_time(){by}", now_ns, rule)}
            source = self.last_source
            every = self._metrics(f"{spans} | count_over_time(){by}", now_ns, rule)
            if source == SPANS:
                self.last_source = SPANS  # one of the two went to the span documents
            return [
                Sample(s.labels, failed.get(_key(s.labels), 0.0) / s.value, self.last_source)
                for s in every
                if s.value > 0
            ]
        if rule.metric in ("request_rate", "span_rate"):
            return self._metrics(f"{spans} | rate(){by}", now_ns, rule)
        if rule.metric == "span_count":
            return self._metrics(f"{spans} | count_over_time(){by}", now_ns, rule)
        raise ValueError(f"rule {rule.name}: unknown metric {rule.metric!r}")

    def _metrics(self, text: str, now_ns: int, rule: Rule, keep_labels: bool = False) -> list[Sample]:
        window_ns = int(rule.window_s * NS_PER_S)
        result = self._query.metrics(parse(text), now_ns - window_ns, now_ns, window_ns, instant=True)
        self.last_source = SPAN_METRICS if result.source == "span-metrics" else SPANS
        samples = []
        for series in result.series:
            if series.value is None or math.isnan(series.value):
                continue
            named = [(k, v) for k, v in series.labels if k != "__name__"]
            if keep_labels:
                labels = dict(named)
            else:  # by() lists the group_by names in order; quantiles add a "p" label after them
                labels = {name: value for name, (_, value) in zip(rule.group_by, named, strict=False)}
            samples.append(Sample(labels, float(series.value), self.last_source))
        return samples


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))
