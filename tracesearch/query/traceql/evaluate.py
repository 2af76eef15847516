"""Exact TraceQL semantics over one whole trace: the single source of truth for which spans match.

Evaluation follows Tempo's engine (``pkg/traceql/ast_execute.go``): every stage maps a list of
spansets to a new list; the first stage sees one spanset holding every span of the trace.

* ``{ expr }`` keeps, in each spanset, the spans for which ``expr`` holds; empty spansets are dropped.
  A missing field never satisfies a comparison (``!=`` included); ``= nil`` holds when it is missing,
  ``!= nil`` when present. Multi-valued fields (``event.*``, ``link.*``, ``event:name`` ...) hold when
  any value does. ``!`` of a field that is not a boolean does not match either way.
* ``A && B`` / ``A || B``: both sides see the same input spanset; the result is the union of their
  spans when both / either matched.
* Structural operators see the same input spanset on both sides and keep right-hand spans (``&``
  forms: plus the left-hand spans taking part; ``!`` forms: right-hand spans NOT in the relation).
  Parent links are span ids within the trace; siblings share a non-empty parent id.
* ``count() > 2`` etc. keep the spansets whose aggregate compares as asked (avg/min/max/sum over the
  numeric values only; a spanset without any is dropped) and record the value under ``count()`` etc.
* ``by(f)`` splits each spanset by the value of ``f`` (missing is a group of its own) and records
  ``by(f)``; ``coalesce()`` merges all spansets; ``select(f)`` attaches ``f`` to every returned span.
* Trace intrinsics: ``traceDuration`` = max(end) - min(start); ``rootName``/``rootServiceName`` come
  from the earliest span without a parent, else the earliest span whose parent is not in the trace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from tracesearch.model import AttrValue, Span
from tracesearch.query.traceql import ast
from tracesearch.query.traceql.values import TraceIndex, Typed, getter, plain, value_test

Predicate = Callable[[int, TraceIndex], bool | None]
Evaluable = ast.Query | ast.Pipeline | ast.SpansetFilter | ast.SpansetOp


@dataclass(slots=True)
class SpanSet:
    """One matching spanset of a trace.

    ``spans`` in trace order; ``matched`` = len(spans); ``attributes`` = by() values and aggregate
    results keyed as Tempo prints them (``by(resource.service.name)``, ``count()``, ``avg(duration)``);
    ``selected`` is parallel to ``spans``: the select()ed fields of each span, keyed by field label
    (``span.http.url``, ``name``), missing fields left out (empty dicts without select())."""

    spans: list[Span]
    matched: int
    attributes: dict[str, AttrValue] = field(default_factory=dict)
    selected: list[dict[str, AttrValue]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Set:
    indices: tuple[int, ...]
    attributes: tuple[tuple[str, AttrValue], ...] = ()


def evaluate(query: Evaluable, trace: Sequence[Span]) -> list[SpanSet]:
    """The spansets of ``trace`` that match ``query`` (its spanset part for a metrics query); [] = no match."""
    if not trace:
        return []
    index = TraceIndex.build(trace)
    pipeline = query.spansets if isinstance(query, ast.Query) else query
    results = _run(pipeline, [_Set(tuple(range(len(trace))))], index)
    selected = _selected_fields(pipeline)
    return [_spanset(result, index, selected) for result in results]


def matching_spans(query: Evaluable, trace: Sequence[Span]) -> list[Span]:
    """Every span of ``trace`` in any matching spanset, once each, in trace order (for metrics)."""
    if not trace:
        return []
    index = TraceIndex.build(trace)
    pipeline = query.spansets if isinstance(query, ast.Query) else query
    results = _run(pipeline, [_Set(tuple(range(len(trace))))], index)
    found = sorted({i for result in results for i in result.indices})
    return [trace[i] for i in found]


def _spanset(result: _Set, index: TraceIndex, selected: tuple[ast.Field, ...]) -> SpanSet:
    spans = [index.spans[i] for i in result.indices]
    fields = [_field_values(i, index, selected) for i in result.indices]
    return SpanSet(spans, len(spans), dict(result.attributes), fields)


def _field_values(i: int, index: TraceIndex, fields: tuple[ast.Field, ...]) -> dict[str, AttrValue]:
    out: dict[str, AttrValue] = {}
    for item in fields:
        values = getter(item)(i, index)
        if values:
            out[item.label] = plain(values[0]) if len(values) == 1 else [plain(v) for v in values]
    return out


def _selected_fields(stage: ast.Stage) -> tuple[ast.Field, ...]:
    if isinstance(stage, ast.Select):
        return stage.fields
    if isinstance(stage, ast.Pipeline):
        found = [f for inner in stage.stages for f in _selected_fields(inner)]
        return tuple(dict.fromkeys(found))
    if isinstance(stage, ast.SpansetOp):
        return tuple(dict.fromkeys(_selected_fields(stage.left) + _selected_fields(stage.right)))
    return ()


# -- stages -------------------------------------------------------------------------------------------


def _run(stage: ast.Stage, sets: list[_Set], index: TraceIndex) -> list[_Set]:
    if isinstance(stage, ast.SpansetFilter):
        return _filter(stage, sets, index)
    if isinstance(stage, ast.SpansetOp):
        return [out for one in sets if (out := _spanset_op(stage, one, index)) is not None]
    if isinstance(stage, ast.Pipeline):
        for inner in stage.stages:
            sets = _run(inner, sets, index)
            if not sets:
                return []
        return sets
    if isinstance(stage, ast.Aggregate):
        return [out for one in sets if (out := _aggregate(stage, one, index)) is not None]
    if isinstance(stage, ast.By):
        return [group for one in sets for group in _group(stage, one, index)]
    if isinstance(stage, ast.Coalesce):
        merged = sorted({i for one in sets for i in one.indices})
        return [_Set(tuple(merged))] if merged else []
    return sets  # Select: the fields are attached when the results are built


def _filter(stage: ast.SpansetFilter, sets: list[_Set], index: TraceIndex) -> list[_Set]:
    predicate = compile_expr(stage.expr)
    out = []
    for one in sets:
        kept = tuple(i for i in one.indices if predicate(i, index) is True)
        if kept:
            out.append(_Set(kept, one.attributes))
    return out


def _spanset_op(stage: ast.SpansetOp, one: _Set, index: TraceIndex) -> _Set | None:
    left_sets = _run(stage.left, [one], index)
    right_sets = _run(stage.right, [one], index)
    left = {i for s in left_sets for i in s.indices}
    right = {i for s in right_sets for i in s.indices}
    if stage.op == "&&":
        result = left | right if left_sets and right_sets else set()
    elif stage.op == "||":
        result = left | right
    else:
        result = _structural(stage.op, left, right, index) if right else set()
    return _Set(tuple(sorted(result)), one.attributes) if result else None


def _structural(op: str, left: set[int], right: set[int], index: TraceIndex) -> set[int]:
    relation = op.lstrip("&!")
    related = right & _RELATIONS[relation](left, index)
    if op.startswith("!"):
        return right - related
    if op.startswith("&") and related:
        return related | (left & _RELATIONS[_INVERSE[relation]](right, index))
    return related


def _children_of(spans: set[int], index: TraceIndex) -> set[int]:
    return {child for i in spans for child in index.children[i]}


def _parents_of(spans: set[int], index: TraceIndex) -> set[int]:
    return {parent for i in spans for parent in index.parents[i]}


def _descendants_of(spans: set[int], index: TraceIndex) -> set[int]:
    found: set[int] = set()
    frontier = _children_of(spans, index)
    while frontier:
        found |= frontier
        frontier = _children_of(frontier, index) - found
    return found


def _ancestors_of(spans: set[int], index: TraceIndex) -> set[int]:
    found: set[int] = set()
    frontier = _parents_of(spans, index)
    while frontier:
        found |= frontier
        frontier = _parents_of(frontier, index) - found
    return found


def _siblings_of(spans: set[int], index: TraceIndex) -> set[int]:
    """Spans sharing a non-empty parent id with a span of ``spans`` (a span is not its own sibling)."""
    count: dict[str, int] = {}
    for i in spans:
        parent = index.spans[i].parent_span_id
        if parent:
            count[parent] = count.get(parent, 0) + 1
    found = set()
    for j, span in enumerate(index.spans):
        parent = span.parent_span_id
        if parent in count and count[parent] - (j in spans) > 0:
            found.add(j)
    return found


_RELATIONS: dict[str, Callable[[set[int], TraceIndex], set[int]]] = {
    ">": _children_of,
    "<": _parents_of,
    ">>": _descendants_of,
    "<<": _ancestors_of,
    "~": _siblings_of,
}
_INVERSE = {">": "<", "<": ">", ">>": "<<", "<<": ">>", "~": "~"}


def _aggregate(stage: ast.Aggregate, one: _Set, index: TraceIndex) -> _Set | None:
    value = _aggregate_value(stage, one.indices, index)
    if value is None:
        return None
    passed = value_test(stage.op, stage.value)(("float", value))
    return _Set(one.indices, (*one.attributes, (stage.label, value))) if passed else None


def _aggregate_value(stage: ast.Aggregate, indices: tuple[int, ...], index: TraceIndex) -> int | float | None:
    if stage.field is None:
        return len(indices)
    get = getter(stage.field)
    numbers: list[int | float] = []
    for i in indices:
        value = next((raw for kind, raw in get(i, index) if kind in ("int", "float", "duration")), None)
        if value is not None:
            numbers.append(value)  # type: ignore[arg-type]
    if not numbers:
        return None
    if stage.func == "avg":
        return sum(numbers) / len(numbers)
    if stage.func == "min":
        return min(numbers)
    if stage.func == "max":
        return max(numbers)
    return sum(numbers)


def _group(stage: ast.By, one: _Set, index: TraceIndex) -> list[_Set]:
    getters = [getter(f) for f in stage.fields]
    groups: dict[tuple[object, ...], tuple[list[int], tuple[AttrValue, ...]]] = {}
    for i in one.indices:
        firsts = [get(i, index)[:1] for get in getters]
        key = tuple(_group_key(values[0]) if values else None for values in firsts)
        if key not in groups:
            groups[key] = ([], tuple(plain(values[0]) if values else None for values in firsts))
        groups[key][0].append(i)
    labels = [f"by({f.label})" for f in stage.fields]
    return [
        _Set(tuple(members), (*one.attributes, *zip(labels, values, strict=True)))
        for members, values in groups.values()
    ]


def _group_key(value: Typed) -> object:
    kind, raw = value
    if kind in ("array", "other"):
        return (kind, repr(raw))
    return (kind, raw)


# -- field expressions --------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def compile_expr(expr: ast.FieldExpr) -> Predicate:
    """A per-span test (True, False, or None for "not a boolean") for a field expression; compiled once."""
    if isinstance(expr, ast.Compare):
        return _compile_compare(expr)
    if isinstance(expr, ast.And):
        left, right = compile_expr(expr.left), compile_expr(expr.right)
        return lambda i, t: left(i, t) is True and right(i, t) is True
    if isinstance(expr, ast.Or):
        left, right = compile_expr(expr.left), compile_expr(expr.right)
        return lambda i, t: left(i, t) is True or right(i, t) is True
    if isinstance(expr, ast.Not):
        inner = compile_expr(expr.expr)
        return lambda i, t: None if (result := inner(i, t)) is None else not result
    if isinstance(expr, ast.IsTrue):
        return _compile_is_true(expr.field)
    value = expr.value
    return lambda i, t: value


def _compile_compare(expr: ast.Compare) -> Predicate:
    get = getter(expr.lhs)
    if expr.value.kind == "nil":
        present = expr.op == "!="
        return lambda i, t: bool(get(i, t)) == present
    test = value_test(expr.op, expr.value)
    return lambda i, t: any(test(value) for value in get(i, t))


def _compile_is_true(item: ast.Field) -> Predicate:
    get = getter(item)

    def is_true(i: int, t: TraceIndex) -> bool | None:
        flags = [raw for kind, raw in get(i, t) if kind == "bool"]
        return (True in flags) if flags else None

    return is_true
