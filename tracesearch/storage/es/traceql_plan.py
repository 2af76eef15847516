"""TraceQL pushed down into Elasticsearch: the span query that selects *candidate* traces.

The pushed query is always a superset: every span the exact evaluator
(``tracesearch.query.traceql.evaluate``) would match is matched here, so candidates are never
missed; the evaluator then decides on whole traces. What cannot be expressed on one span document
(trace-level intrinsics, negations over multi-valued fields, most regexes) pushes nothing and is left
to the evaluator. ``exact`` says the pushed query matches exactly the spans of a lone ``{...}``, so
the first page of candidates is also the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tracesearch.query.traceql.ast import (
    Aggregate,
    And,
    Attribute,
    By,
    Coalesce,
    Compare,
    Const,
    FieldExpr,
    IntrinsicField,
    IsTrue,
    Literal,
    Not,
    Or,
    Pipeline,
    Select,
    SpansetExpr,
    SpansetFilter,
)
from tracesearch.storage.es.document import encode_number
from tracesearch.storage.es.queries import Query, bool_, range_, term, terms
from tracesearch.storage.es.tag_queries import lucene_literal

# Intrinsics stored once per span document, in these fields.
SINGLE_VALUED = {
    "name": "span.name",
    "status": "status.code",
    "kind": "span.kind",
    "statusMessage": "status.message",
    "duration": "duration_ns",
    "span:id": "span.id",
    "span:parentID": "parent.id",
    "trace:id": "trace.id",
}
# Intrinsics kept as ``tags`` entries ``<name>=<value>`` (zero or many per span).
TAGGED = {"event:name": "event:name", "instrumentation:name": "instrumentation:name"}
_RANGE_OPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}  # for exact (long) fields
_LOWEST = encode_number(float("-inf"))
_HIGHEST = encode_number(float("inf"))
# Regexes whose meaning is the same in RE2 and Lucene (both anchored here): literals, ., *, +, ?, |, ().
_PORTABLE_REGEX = re.compile(r"(?:[A-Za-z0-9 _/,:;=%'-]|\\\.|\.|[*+?|()])*")
_NUMBER_OR_BOOL = re.compile(r"-?[0-9.]+([eE][-+]?[0-9]+)?|true|false|NaN|-?Infinity")
MATCH_NONE: Query = {"match_none": {}}
# Elasticsearch refuses bool queries nested deeper than 30 (indices.query.bool.max_nested_depth).
MAX_BOOL_DEPTH = 20


@dataclass(frozen=True, slots=True)
class Pushed:
    """``query`` None = no restriction (match all)."""

    query: Query | None
    exact: bool
    weight: int = 0  # how many conditions were pushed: the more, the more selective


NOTHING = Pushed(None, False)
EVERYTHING = Pushed(None, True)


def _clauses(query: Query, key: str) -> list[Query]:
    """The clauses of a bool query that has nothing but ``key`` (filter, or should with
    minimum_should_match 1), so chains stay one flat bool: Elasticsearch refuses bool queries nested
    deeper than 30 levels, and ``a && b && c`` parses as nested pairs."""
    inner = query.get("bool")
    if isinstance(inner, dict) and set(inner) <= {key, "minimum_should_match"} and key in inner:
        clauses: list[Query] = inner[key]
        return clauses
    return [query]


def _bool_depth(query: Any) -> int:
    if isinstance(query, dict):
        inner = max((_bool_depth(v) for v in query.values()), default=0)
        return inner + 1 if "bool" in query else inner
    if isinstance(query, list):
        return max((_bool_depth(v) for v in query), default=0)
    return 0


def _both(left: Pushed, right: Pushed) -> Pushed:
    clauses = [c for p in (left, right) if p.query is not None for c in _clauses(p.query, "filter")]
    query = None if not clauses else clauses[0] if len(clauses) == 1 else bool_(filter=clauses)
    if query is not None and _bool_depth(query) > MAX_BOOL_DEPTH:
        # Alternating && and || nest; past Elasticsearch's limit keep one side: still a superset.
        kept = min((left, right), key=lambda p: _bool_depth(p.query))
        return Pushed(kept.query, False, kept.weight)
    return Pushed(query, left.exact and right.exact, left.weight + right.weight)


def _either(left: Pushed, right: Pushed) -> Pushed:
    if left.query is None or right.query is None:
        return Pushed(None, left.exact and right.exact and left.query is None and right.query is None)
    clauses = [*_clauses(left.query, "should"), *_clauses(right.query, "should")]
    query = bool_(should=clauses)
    if _bool_depth(query) > MAX_BOOL_DEPTH:
        return NOTHING  # the evaluator decides alone
    return Pushed(query, left.exact and right.exact, min(left.weight, right.weight))


def _portable_regex(pattern: str) -> bool:
    return bool(_PORTABLE_REGEX.fullmatch(pattern))


def _literal_text(value: Literal) -> str | None:
    if value.kind in ("string", "status", "kind"):
        return str(value.value)
    if value.kind == "bool":
        return "true" if value.value else "false"
    return None


def _tag_names(field: Attribute) -> list[str]:
    scopes = ("span", "resource") if field.scope == "" else (field.scope,)
    return [f"{s}.{field.name}" for s in scopes]


def _attribute(field: Attribute, op: str, value: Literal) -> Pushed:
    if field.scope == "resource" and field.name == "service.name" and value.kind == "string" and op in ("=", "!="):
        # The evaluator reads it from Resource.service_name, which the document keeps in service.name.
        query = term("service.name", str(value.value))
        return Pushed(query if op == "=" else bool_(must_not=[query]), True, 2)
    names = _tag_names(field)
    exact = field.scope != ""
    present = Pushed(terms("tags", names), False, 1)
    if value.kind == "nil":
        return present if op == "!=" else NOTHING
    if op == "=":
        text = _literal_text(value)
        if text is not None:
            # Numbers and booleans are also kept as text ("500", "true"): only other strings are exact.
            exact = exact and (value.kind != "string" or not _NUMBER_OR_BOOL.fullmatch(text))
            return Pushed(terms("tags", [f"{n}={text}" for n in names]), exact and value.kind != "bool", 2)
        if value.kind in ("int", "float", "duration"):
            encoded = encode_number(float(value.value))  # type: ignore[arg-type]
            return Pushed(terms("tags_num", [f"{n}={encoded}" for n in names]), exact, 2)
        return present
    if op in _RANGE_OPS and value.kind in ("int", "float", "duration"):
        encoded = encode_number(float(value.value))  # type: ignore[arg-type]
        per_name = []
        # Numbers are kept as doubles: beyond 2**53 an int may encode equal to the literal while being
        # greater, so there the bounds are inclusive and the evaluator makes the comparison strict.
        precise = abs(float(value.value)) < 2**53  # type: ignore[arg-type]
        low_op, high_op = (_RANGE_OPS[op], _RANGE_OPS[op]) if precise else ("gte", "lte")
        for n in names:
            low = ("gte", f"{n}={_LOWEST}") if op in ("<", "<=") else (low_op, f"{n}={encoded}")
            high = ("lte", f"{n}={_HIGHEST}") if op in (">", ">=") else (high_op, f"{n}={encoded}")
            per_name.append(range_("tags_num", **{low[0]: low[1], high[0]: high[1]}))
        return Pushed(per_name[0] if len(per_name) == 1 else bool_(should=per_name), exact and precise, 2)
    if op == "=~" and value.kind == "string" and _portable_regex(str(value.value)):
        patterns = [{"regexp": {"tags": {"value": f"{lucene_literal(n)}=({value.value})"}}} for n in names]
        return Pushed(patterns[0] if len(patterns) == 1 else bool_(should=patterns), False, 2)
    return present


def _intrinsic(field: IntrinsicField, op: str, value: Literal) -> Pushed:
    name = field.name
    if name in TAGGED and op == "=" and value.kind == "string":
        return Pushed(term("tags", f"{TAGGED[name]}={value.value}"), True, 2)
    target = SINGLE_VALUED.get(name)
    if target is None or value.kind == "nil":
        return NOTHING
    if name == "duration":
        if value.kind not in ("duration", "int"):
            return NOTHING
        if op == "=":
            return Pushed(term(target, str(value.value)), True, 1)
        if op == "!=":
            return Pushed(bool_(must_not=[term(target, str(value.value))]), True, 1)
        if op in _RANGE_OPS:
            return Pushed(range_(target, **{_RANGE_OPS[op]: value.value}), True, 1)
        return NOTHING
    text = _literal_text(value)
    if text is None:
        return NOTHING
    if name in ("span:id", "span:parentID", "trace:id"):
        text = text.lower()
    if op == "=":
        return Pushed(term(target, text), True, 2)
    if op == "!=":
        return Pushed(bool_(must_not=[term(target, text)]), name not in ("statusMessage", "span:parentID"), 1)
    if op in ("=~", "!~") and _portable_regex(text):
        query: Query = {"regexp": {target: {"value": text}}}
        return Pushed(query if op == "=~" else bool_(must_not=[query]), name in ("name", "status", "kind"), 2)
    return NOTHING


def push_field_expr(expr: FieldExpr) -> Pushed:
    if isinstance(expr, And):
        return _both(push_field_expr(expr.left), push_field_expr(expr.right))
    if isinstance(expr, Or):
        return _either(push_field_expr(expr.left), push_field_expr(expr.right))
    if isinstance(expr, Const):
        return EVERYTHING if expr.value else Pushed(MATCH_NONE, True, 9)
    if isinstance(expr, IsTrue):
        if isinstance(expr.field, Attribute):
            return _attribute(expr.field, "=", Literal("bool", True))
        return NOTHING
    if isinstance(expr, Compare):
        if isinstance(expr.lhs, Attribute):
            return _attribute(expr.lhs, expr.op, expr.value)
        return _intrinsic(expr.lhs, expr.op, expr.value)
    if isinstance(expr, Not):
        return NOTHING
    return NOTHING  # pragma: no cover - FieldExpr is closed


def push_spanset(expr: SpansetExpr) -> Pushed:
    """The span query every candidate trace must have a span for."""
    if isinstance(expr, SpansetFilter):
        return push_field_expr(expr.expr)
    if isinstance(expr, Pipeline):
        return push_pipeline(expr)
    left, right = push_spanset(expr.left), push_spanset(expr.right)
    if expr.op == "||":
        return _either(left, right)
    if expr.op.startswith("!"):
        return Pushed(right.query, False, right.weight)
    # Both sides must be somewhere in the trace: drive with the more selective side.
    chosen = left if left.weight > right.weight else right
    return Pushed(chosen.query, False, chosen.weight)


def push_pipeline(pipeline: Pipeline) -> Pushed:
    first = pipeline.stages[0] if pipeline.stages else None
    if first is None or isinstance(first, Aggregate | By | Select | Coalesce):
        return NOTHING
    pushed = push_spanset(first)
    # Later stages only filter within what the first one kept; they cannot widen it.
    later = pipeline.stages[1:]
    only_decorations = all(isinstance(s, Select | By | Coalesce) for s in later)
    return Pushed(pushed.query, pushed.exact and only_decorations, pushed.weight)


def is_lone_filter(pipeline: Pipeline) -> bool:
    return len(pipeline.stages) >= 1 and isinstance(pipeline.stages[0], SpansetFilter)


def filters(pushed: Pushed) -> list[dict[str, Any]]:
    return [] if pushed.query is None else [pushed.query]
