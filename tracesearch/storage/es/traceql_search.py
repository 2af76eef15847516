"""TraceQL search over Elasticsearch: pushed-down candidates, exact evaluation, bounded work.

1. The planner (``query.traceql.pushdown``) turns the query into a span condition that every matching trace
   satisfies somewhere; Elasticsearch returns the newest candidate traces (collapsed on trace id).
2. Whole candidate traces are fetched and the exact evaluator decides which spans match.
3. Pages of candidates continue until ``limit`` traces matched, the candidates ran out, or the work
   bound (``MAX_CANDIDATES`` traces) was reached: then the answer says it is incomplete.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tracesearch.codecs.tempo import FoundSpanSet, FoundTrace
from tracesearch.errors import BadRequest
from tracesearch.model import AttrValue, Span
from tracesearch.query.conditions import Condition
from tracesearch.query.tempo_params import MetricsParams, parse_bounded
from tracesearch.query.traceql import SpanSet, TraceQLError, evaluate, pushdown
from tracesearch.query.traceql.ast import (
    And,
    Attribute,
    By,
    Compare,
    Field,
    FieldExpr,
    IntrinsicField,
    IsTrue,
    Not,
    Or,
    Pipeline,
    Query,
    Select,
    SpansetFilter,
    SpansetOp,
)
from tracesearch.storage.es.aggregates import EsAggregates
from tracesearch.storage.es.reader import EsSpanReader
from tracesearch.storage.es.traceql_metrics import metrics_from_aggregates, run_metrics

MAX_CANDIDATES = 2_000
MIN_PAGE = 100
MAX_PAGE = 500


@dataclass(slots=True)
class SearchResult:
    traces: list[FoundTrace] = field(default_factory=list)
    inspected_traces: int = 0
    inspected_spans: int = 0
    complete: bool = True


def _fields_of_expr(expr: FieldExpr) -> Iterator[Field]:
    if isinstance(expr, And | Or):
        yield from _fields_of_expr(expr.left)
        yield from _fields_of_expr(expr.right)
    elif isinstance(expr, Not):
        yield from _fields_of_expr(expr.expr)
    elif isinstance(expr, Compare):
        yield expr.lhs
    elif isinstance(expr, IsTrue):
        yield expr.field


def _fields_of_spanset(expr: object) -> Iterator[Field]:
    if isinstance(expr, SpansetFilter):
        yield from _fields_of_expr(expr.expr)
    elif isinstance(expr, SpansetOp):
        yield from _fields_of_spanset(expr.left)
        yield from _fields_of_spanset(expr.right)
    elif isinstance(expr, Pipeline):
        for stage in expr.stages:
            yield from _fields_of_spanset(stage)
    elif isinstance(expr, Select | By):
        yield from expr.fields


def _shown(f: Field) -> bool:
    if isinstance(f, Attribute):
        return f.scope in ("span", "resource", "")
    return f.name in ("status", "kind", "statusMessage")


def shown_fields(query: Query) -> list[Field]:
    """Fields to show beside each returned span: those the query names (as Tempo does)."""
    seen: dict[Field, None] = {}
    for f in _fields_of_spanset(query.spansets):
        if _shown(f):
            seen[f] = None
    return list(seen)


def _field_value(span: Span, f: Field) -> tuple[str, AttrValue] | None:
    if isinstance(f, IntrinsicField):
        if f.name == "status":
            return "status", span.status_code.label
        if f.name == "kind":
            return "kind", span.kind.label
        return ("statusMessage", span.status_message) if span.status_message else None
    if f.scope in ("span", "") and f.name in span.attributes:
        return f.name, span.attributes[f.name]
    if f.scope in ("resource", "") and f.name in span.resource.attributes:
        return f.name, span.resource.attributes[f.name]
    return None


def _found_spanset(spanset: SpanSet, fields: list[Field], spss: int) -> FoundSpanSet:
    """The first ``spss`` spans by start time, each with the fields the query named and select()ed."""
    order = sorted(range(len(spanset.spans)), key=lambda i: spanset.spans[i].start_ns)[:spss]
    shown = [spanset.spans[i] for i in order]
    per_span: dict[str, dict[str, AttrValue]] = {}
    for i in order:
        span = spanset.spans[i]
        values = dict(v for f in fields if (v := _field_value(span, f)) is not None)
        if i < len(spanset.selected):
            values.update(spanset.selected[i])
        if values:
            per_span[span.span_id] = values
    return FoundSpanSet(shown, spanset.matched, dict(spanset.attributes), per_span)


class EsTraceqlSearch:
    def __init__(self, reader: EsSpanReader, aggregates: EsAggregates, max_candidates: int = MAX_CANDIDATES):
        self._reader = reader
        self._aggregates = aggregates
        self._max_candidates = max_candidates

    def lenient_conditions(self, text: str) -> list[Condition]:
        """Span conditions of a possibly unfinished query; none when it does not parse."""
        if not text.strip():
            return []
        try:
            query = parse_bounded(text)
        except (TraceQLError, BadRequest):
            return []
        return pushdown.push_pipeline(query.spansets).conditions()

    def metrics(self, params: MetricsParams) -> tuple[dict[str, Any], str]:
        """(answer, source): from the per-minute span metrics when the query's shape allows it (see
        ``red_shape``), else by aggregating the spans."""
        answer = metrics_from_aggregates(self._aggregates, params)
        if answer is not None:
            return answer, "span-metrics"
        return run_metrics(self._reader, params), "spans"

    def search(self, query: Query, start_ns: int, end_ns: int, limit: int, spss: int) -> SearchResult:
        pushed = pushdown.plan(query.spansets)
        exact = pushed.exact
        page = limit if exact else min(max(limit * 5, MIN_PAGE), MAX_PAGE)
        fields = shown_fields(query)
        result = SearchResult()
        seen: set[str] = set()
        cursor = end_ns
        while len(result.traces) < limit:
            candidates = self._reader.candidate_traces(pushed.conditions(), start_ns, cursor, page)
            fresh = [(t, s) for t, s in candidates if t not in seen]
            if not fresh:
                break
            self._evaluate(query, [t for t, _ in fresh], start_ns, end_ns, spss, fields, limit, result)
            seen.update(t for t, _ in fresh)
            cursor = min(s for _, s in candidates)
            if len(candidates) < page or exact:
                break
            if len(seen) >= self._max_candidates:
                result.complete = False
                break
        result.traces.sort(key=lambda t: min(s.start_ns for s in t.trace), reverse=True)
        return result

    def _evaluate(
        self,
        query: Query,
        trace_ids: list[str],
        start_ns: int,
        end_ns: int,
        spss: int,
        fields: list[Field],
        limit: int,
        result: SearchResult,
    ) -> None:
        traces = self._reader.traces(trace_ids, start_ns, end_ns)
        for trace_id in trace_ids:
            spans = traces.get(trace_id) or []
            if not spans or len(result.traces) >= limit:
                continue
            result.inspected_traces += 1
            result.inspected_spans += len(spans)
            spansets = [s for s in evaluate(query, spans) if s.spans]
            if spansets:
                found = [_found_spanset(s, fields, spss) for s in spansets]
                result.traces.append(FoundTrace(spans, found))
