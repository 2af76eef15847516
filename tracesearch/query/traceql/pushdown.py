"""TraceQL pushed down to storage: the span condition that selects *candidate* traces.

The pushed condition is always a superset: every span the exact evaluator (``traceql.evaluate``) would
match meets it, so candidates are never missed; the evaluator then decides on whole traces. What one
span's stored terms cannot express (trace-level intrinsics, negations over multi-valued fields, most
regexes) pushes nothing and is left to the evaluator. ``exact`` says the condition matches exactly the
spans of a lone ``{...}``, so the first page of candidates is also the answer.

The conditions are ``query.conditions``, the same model the Jaeger and Zipkin searches produce, so every
front end is compiled by one storage compiler with the same guards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracesearch.query.conditions import (
    COMPARISONS,
    NOTHING,
    All,
    Any,
    AttrEquals,
    AttrExists,
    AttrMatches,
    AttrRange,
    Condition,
    FieldEquals,
    FieldMatches,
    FieldRange,
    Not,
    depth,
)
from tracesearch.query.regex import MAX_REGEX_LENGTH
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
    Or,
    Pipeline,
    Select,
    SpansetExpr,
    SpansetFilter,
)
from tracesearch.query.traceql.ast import Not as NotExpr

# Intrinsics kept once per span, by the condition field that names them.
SINGLE_VALUED = {
    "name": "name",
    "status": "status",
    "kind": "kind",
    "statusMessage": "statusMessage",
    "duration": "duration",
    "span:id": "span:id",
    "span:parentID": "span:parentID",
    "trace:id": "trace:id",
}
# Intrinsics kept as zero or many values per span.
MULTI_VALUED = frozenset({"event:name", "instrumentation:name"})
# Regexes whose meaning is the same in RE2 and Lucene (both anchored here): literals, ., *, +, ?, |, ().
_PORTABLE_REGEX = re.compile(r"(?:[A-Za-z0-9 _/,:;=%'-]|\\\.|\.|[*+?|()])*")
_NUMBER_OR_BOOL = re.compile(r"-?[0-9.]+([eE][-+]?[0-9]+)?|true|false|NaN|-?Infinity")
# Pushed conditions nest at most this deep (Elasticsearch refuses bool queries nested past 30).
MAX_DEPTH = 20


@dataclass(frozen=True, slots=True)
class Pushdown:
    """``condition`` None = no restriction (every span)."""

    condition: Condition | None
    exact: bool
    weight: int = 0  # how many comparisons were pushed: the more, the more selective

    def conditions(self) -> list[Condition]:
        return [] if self.condition is None else [self.condition]


NOTHING_PUSHED = Pushdown(None, False)
EVERYTHING = Pushdown(None, True)


def _both(left: Pushdown, right: Pushdown) -> Pushdown:
    parts = [p.condition for p in (left, right) if p.condition is not None]
    condition = None if not parts else parts[0] if len(parts) == 1 else All(tuple(parts))
    if condition is not None and depth(condition) > MAX_DEPTH:
        # Alternating && and || nest; past the limit keep one side: still a superset.
        kept = min((left, right), key=lambda p: depth(p.condition) if p.condition is not None else 0)
        return Pushdown(kept.condition, False, kept.weight)
    return Pushdown(condition, left.exact and right.exact, left.weight + right.weight)


def _either(left: Pushdown, right: Pushdown) -> Pushdown:
    if left.condition is None or right.condition is None:
        everything = left.condition is None and right.condition is None
        return Pushdown(None, left.exact and right.exact and everything)
    condition = Any((left.condition, right.condition))
    if depth(condition) > MAX_DEPTH:
        return NOTHING_PUSHED  # the evaluator decides alone
    return Pushdown(condition, left.exact and right.exact, min(left.weight, right.weight))


def _portable_regex(pattern: str, name: str = "") -> bool:
    """Elasticsearch can run it the same (syntax), and within its `index.max_regex_length` once the
    compiler prefixes the attribute's name (``name=(pattern)``); else the evaluator decides alone."""
    return 2 * len(name) + len(pattern) + 3 <= MAX_REGEX_LENGTH and bool(_PORTABLE_REGEX.fullmatch(pattern))


def _literal_text(value: Literal) -> str | None:
    if value.kind in ("string", "status", "kind"):
        return str(value.value)
    if value.kind == "bool":
        return "true" if value.value else "false"
    return None


def _names(field: Attribute) -> tuple[str, ...]:
    scopes = ("span", "resource") if field.scope == "" else (field.scope,)
    return tuple(f"{s}.{field.name}" for s in scopes)


def _attribute(field: Attribute, op: str, value: Literal) -> Pushdown:
    if field.scope == "resource" and field.name == "service.name" and value.kind == "string" and op in ("=", "!="):
        # The evaluator reads it from Resource.service_name, which stores keep as the span's service.
        service = FieldEquals("service", str(value.value))
        return Pushdown(service if op == "=" else Not(service), True, 2)
    names = _names(field)
    exact = field.scope != ""
    present = Pushdown(AttrExists(names), False, 1)
    if value.kind == "nil":
        return present if op == "!=" else NOTHING_PUSHED
    if op == "=":
        text = _literal_text(value)
        if text is not None:
            # Numbers and booleans are also kept as text ("500", "true"): only other strings are exact.
            exact = exact and (value.kind != "string" or not _NUMBER_OR_BOOL.fullmatch(text))
            return Pushdown(AttrEquals(names, text=text), exact and value.kind != "bool", 2)
        if value.kind in ("int", "float", "duration"):
            return Pushdown(AttrEquals(names, number=float(value.value)), exact, 2)  # type: ignore[arg-type]
        return present
    if op in COMPARISONS and value.kind in ("int", "float", "duration"):
        compare = AttrRange(names, op, float(value.value))  # type: ignore[arg-type]
        return Pushdown(compare, exact and compare.is_precise, 2)
    if op == "=~" and value.kind == "string" and _portable_regex(str(value.value), max(names, key=len)):
        return Pushdown(AttrMatches(names, str(value.value)), False, 2)
    return present


def _intrinsic(field: IntrinsicField, op: str, value: Literal) -> Pushdown:
    name = field.name
    if name in MULTI_VALUED and op == "=" and value.kind == "string":
        return Pushdown(FieldEquals(name, str(value.value)), True, 2)
    target = SINGLE_VALUED.get(name)
    if target is None or value.kind == "nil":
        return NOTHING_PUSHED
    if name == "duration":
        return _duration(op, value)
    text = _literal_text(value)
    if text is None:
        return NOTHING_PUSHED
    if name in ("span:id", "span:parentID", "trace:id"):
        text = text.lower()
    if op == "=":
        return Pushdown(FieldEquals(target, text), True, 2)
    if op == "!=":
        return Pushdown(Not(FieldEquals(target, text)), name not in ("statusMessage", "span:parentID"), 1)
    if op in ("=~", "!~") and _portable_regex(text):
        matches = FieldMatches(target, text)
        return Pushdown(matches if op == "=~" else Not(matches), name in ("name", "status", "kind"), 2)
    return NOTHING_PUSHED


def _duration(op: str, value: Literal) -> Pushdown:
    if value.kind not in ("duration", "int"):
        return NOTHING_PUSHED
    if op == "=":
        return Pushdown(FieldEquals("duration", str(value.value)), True, 1)
    if op == "!=":
        return Pushdown(Not(FieldEquals("duration", str(value.value))), True, 1)
    if op in COMPARISONS:
        return Pushdown(FieldRange("duration", ((COMPARISONS[op], int(value.value)),)), True, 1)  # type: ignore[arg-type]
    return NOTHING_PUSHED


def push_field_expr(expr: FieldExpr) -> Pushdown:
    if isinstance(expr, And):
        return _both(push_field_expr(expr.left), push_field_expr(expr.right))
    if isinstance(expr, Or):
        return _either(push_field_expr(expr.left), push_field_expr(expr.right))
    if isinstance(expr, Const):
        return EVERYTHING if expr.value else Pushdown(NOTHING, True, 9)
    if isinstance(expr, IsTrue):
        if isinstance(expr.field, Attribute):
            return _attribute(expr.field, "=", Literal("bool", True))
        return NOTHING_PUSHED
    if isinstance(expr, Compare):
        if isinstance(expr.lhs, Attribute):
            return _attribute(expr.lhs, expr.op, expr.value)
        return _intrinsic(expr.lhs, expr.op, expr.value)
    if isinstance(expr, NotExpr):
        return NOTHING_PUSHED
    return NOTHING_PUSHED  # pragma: no cover - FieldExpr is closed


def push_spanset(expr: SpansetExpr) -> Pushdown:
    """The condition some span of every candidate trace meets."""
    if isinstance(expr, SpansetFilter):
        return push_field_expr(expr.expr)
    if isinstance(expr, Pipeline):
        return push_pipeline(expr)
    left, right = push_spanset(expr.left), push_spanset(expr.right)
    if expr.op == "||":
        return _either(left, right)
    if expr.op.startswith("!"):
        return Pushdown(right.condition, False, right.weight)
    # Both sides must be somewhere in the trace: drive with the more selective side.
    chosen = left if left.weight > right.weight else right
    return Pushdown(chosen.condition, False, chosen.weight)


def push_pipeline(pipeline: Pipeline) -> Pushdown:
    first = pipeline.stages[0] if pipeline.stages else None
    if first is None or isinstance(first, Aggregate | By | Select | Coalesce):
        return NOTHING_PUSHED
    pushed = push_spanset(first)
    # Later stages only filter within what the first one kept; they cannot widen it.
    later = pipeline.stages[1:]
    only_decorations = all(isinstance(s, Select | By | Coalesce) for s in later)
    return Pushdown(pushed.condition, pushed.exact and only_decorations, pushed.weight)


def is_lone_filter(pipeline: Pipeline) -> bool:
    return len(pipeline.stages) >= 1 and isinstance(pipeline.stages[0], SpansetFilter)


def plan(pipeline: Pipeline) -> Pushdown:
    """The pushdown of a search: exact only when a lone ``{...}`` pushes exactly (then candidates are the answer)."""
    pushed = push_pipeline(pipeline)
    return Pushdown(pushed.condition, pushed.exact and is_lone_filter(pipeline), pushed.weight)
