"""TraceQL search over any span store: pushed-down candidates, exact evaluation, bounded work.

1. The planner (``query.traceql.pushdown``) turns the query into a span condition that every matching
   trace meets somewhere; the store returns the newest candidate traces (``SpanReader.candidate_traces``).
2. Whole candidate traces are fetched and the exact evaluator decides which spans match.
   A trace is read up to ``max_spans_per_trace`` spans (its earliest) and judged on those; the result
   lists such traces (``truncated_traces``).
3. Pages of candidates continue until ``limit`` traces matched, the candidates ran out, the work
   bound (``MAX_CANDIDATES`` traces) was reached or the time budget (``timeout_s``) ran out: then the
   answer says it is incomplete, with what was found so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from tracesearch.model import AttrValue, Span
from tracesearch.query.search_results import FoundSpanSet, FoundTrace, SearchResult
from tracesearch.query.traceql import SpanSet, evaluate, pushdown
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
from tracesearch.storage.contracts import SpanReader

MAX_CANDIDATES = 2_000
MIN_PAGE = 100
MAX_PAGE = 500


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


class TraceqlSearch:
    def __init__(
        self,
        reader: SpanReader,
        max_candidates: int = MAX_CANDIDATES,
        timeout_s: float = 10.0,
        max_spans_per_trace: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._reader = reader
        self._max_candidates = max_candidates
        self._timeout_s = timeout_s
        self._max_spans = max_spans_per_trace
        self._clock = clock

    def search(self, query: Query, start_ns: int, end_ns: int, limit: int, spss: int) -> SearchResult:
        deadline = self._clock() + self._timeout_s
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
            if self._clock() >= deadline:  # the candidates' search itself used up the budget
                result.complete, result.partial_reason = False, "time budget"
                break
            self._evaluate(query, [t for t, _ in fresh], start_ns, end_ns, spss, fields, limit, result, deadline)
            seen.update(t for t, _ in fresh)
            if not result.complete:
                break
            cursor = min(s for _, s in candidates)
            if len(candidates) < page or exact:
                break
            if len(seen) >= self._max_candidates:
                result.complete, result.partial_reason = False, "candidate bound"
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
        deadline: float,
    ) -> None:
        traces = self._reader.traces(trace_ids, start_ns, end_ns, self._max_spans + 1)
        for trace_id in trace_ids:
            spans = traces.get(trace_id) or []
            if not spans or len(result.traces) >= limit:
                continue
            if len(spans) > self._max_spans:
                # A runaway trace is judged on its first spans: say so rather than read it all.
                spans = spans[: self._max_spans]
                result.truncated_traces.append(trace_id)
            if self._clock() >= deadline:  # out of time: answer with what matched so far
                result.complete, result.partial_reason = False, "time budget"
                return
            result.inspected_traces += 1
            result.inspected_spans += len(spans)
            spansets = [s for s in evaluate(query, spans) if s.spans]
            if spansets:
                found = [_found_spanset(s, fields, spss) for s in spansets]
                result.traces.append(FoundTrace(spans, found))
