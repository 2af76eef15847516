"""Typed field values of one span, and how a single value compares with a TraceQL literal.

A value is a ``(type, value)`` pair, type one of ``string int float bool duration status kind array
other``. Comparisons follow Tempo (``pkg/traceql/ast_execute.go``): ints, floats and durations compare
numerically with each other (durations in nanoseconds); strings only with strings (ordering is
lexicographic); bool, status and kind only with their own type and only with ``=``/``!=``; a value of
another type never matches, not even ``!=``. Arrays: ``= =~ > ...`` hold when any element matches,
``!= !~`` when every element does (none is equal / none matches).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from tracesearch.model import AttrValue, Span
from tracesearch.query.regex import fullmatch
from tracesearch.query.traceql import ast
from tracesearch.query.traceql.grammar import compile_regex

Typed = tuple[str, object]
ValueTest = Callable[[Typed], bool]
Getter = Callable[[int, "TraceIndex"], list[Typed]]

_NUMERIC: Final = frozenset(("int", "float", "duration"))
_MATCH_ALL_OPS: Final = ("!=", "!~")


@dataclass(slots=True)
class TraceIndex:
    """What every query on one trace needs, computed once: parent/child links, the root, the duration."""

    spans: Sequence[Span]
    parents: list[tuple[int, ...]] = field(default_factory=list)
    children: list[list[int]] = field(default_factory=list)
    root: Span | None = None
    duration_ns: int = 0
    trace_id: str = ""

    @classmethod
    def build(cls, spans: Sequence[Span]) -> TraceIndex:
        by_id: dict[str, list[int]] = {}
        for index, span in enumerate(spans):
            by_id.setdefault(span.span_id, []).append(index)
        parents: list[tuple[int, ...]] = []
        children: list[list[int]] = [[] for _ in spans]
        for index, span in enumerate(spans):
            found = tuple(p for p in by_id.get(span.parent_span_id, ()) if p != index) if span.parent_span_id else ()
            parents.append(found)
            for parent in found:
                children[parent].append(index)
        built = cls(spans, parents, children)
        built.root = _root(spans, parents)
        if spans:
            built.duration_ns = max(s.end_ns for s in spans) - min(s.start_ns for s in spans)
            built.trace_id = spans[0].trace_id
        return built


def _root(spans: Sequence[Span], parents: list[tuple[int, ...]]) -> Span | None:
    """The earliest span without a parent; failing that, the earliest whose parent is not in the trace."""
    true_roots = [s for s in spans if not s.parent_span_id]
    orphans = [s for s, found in zip(spans, parents, strict=True) if s.parent_span_id and not found]
    candidates = true_roots or orphans
    return min(candidates, key=lambda s: s.start_ns) if candidates else None


def typed(value: AttrValue) -> Typed | None:
    """The TraceQL type of a stored attribute value; None (and only None) is missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(t for t in map(typed, value) if t is not None))
    return ("other", value)


def plain(value: Typed) -> AttrValue:
    """Back to a model value for by()/select() results: status/kind as their word, durations in ns."""
    kind, raw = value
    if kind == "array":
        assert isinstance(raw, tuple)
        return [plain(item) for item in raw]
    return raw  # type: ignore[return-value]


@lru_cache(maxsize=4096)
def value_test(op: str, literal: ast.Literal) -> ValueTest:
    """A test of one typed value against ``op literal`` (literal not nil)."""
    scalar = _scalar_test(op, literal)
    compatible = _compatible(literal.kind)
    match_all = op in _MATCH_ALL_OPS

    def test(value: Typed) -> bool:
        kind, raw = value
        if kind != "array":
            return kind in compatible and scalar(raw)
        assert isinstance(raw, tuple)
        elements = [item for item in raw if item[0] in compatible]
        if not elements or (match_all and len(elements) != len(raw)):
            return False
        results = (scalar(item[1]) for item in elements)
        return all(results) if match_all else any(results)

    return test


def _compatible(kind: str) -> frozenset[str]:
    return _NUMERIC if kind in _NUMERIC else frozenset((kind,))


def _scalar_test(op: str, literal: ast.Literal) -> Callable[[object], bool]:
    expected = literal.value
    if op == "=~" or op == "!~":
        assert isinstance(expected, str)
        pattern = compile_regex(expected)
        matches = op == "=~"
        return lambda raw: fullmatch(pattern, str(raw)) == matches
    if op == "=":
        return lambda raw: raw == expected
    if op == "!=":
        return lambda raw: raw != expected
    return _ORDERING[op](expected)


_ORDERING: Final[dict[str, Callable[[object], Callable[[object], bool]]]] = {
    ">": lambda expected: lambda raw: raw > expected,  # type: ignore[operator]
    ">=": lambda expected: lambda raw: raw >= expected,  # type: ignore[operator]
    "<": lambda expected: lambda raw: raw < expected,  # type: ignore[operator]
    "<=": lambda expected: lambda raw: raw <= expected,  # type: ignore[operator]
}


# -- field getters ----------------------------------------------------------------------------------


def _one(value: Typed | None) -> list[Typed]:
    return [] if value is None else [value]


def _span_attribute(name: str) -> Getter:
    return lambda i, trace: _one(typed(trace.spans[i].attributes.get(name)))


def _resource_value(span: Span, name: str) -> AttrValue:
    if name == "service.name":
        return span.resource.service_name
    return span.resource.attributes.get(name)


def _resource_attribute(name: str) -> Getter:
    return lambda i, trace: _one(typed(_resource_value(trace.spans[i], name)))


def _unscoped_attribute(name: str) -> Getter:
    def get(i: int, trace: TraceIndex) -> list[Typed]:
        span = trace.spans[i]
        value = span.attributes.get(name)
        return _one(typed(value if value is not None else _resource_value(span, name)))

    return get


def _event_attribute(name: str) -> Getter:
    return lambda i, trace: [t for e in trace.spans[i].events if (t := typed(e.attributes.get(name))) is not None]


def _link_attribute(name: str) -> Getter:
    return lambda i, trace: [t for k in trace.spans[i].links if (t := typed(k.attributes.get(name))) is not None]


def _scope_attribute(name: str) -> Getter:
    return lambda i, trace: _one(typed(trace.spans[i].scope.attributes.get(name)))


_ATTRIBUTE_GETTERS: Final[dict[str, Callable[[str], Getter]]] = {
    "span": _span_attribute,
    "resource": _resource_attribute,
    "": _unscoped_attribute,
    "event": _event_attribute,
    "link": _link_attribute,
    "instrumentation": _scope_attribute,
}


def _non_empty(kind: str, text: str) -> list[Typed]:
    return [(kind, text)] if text else []


def _root_value(trace: TraceIndex, attribute: str) -> list[Typed]:
    root = trace.root
    return [] if root is None else [("string", getattr(root, attribute))]


_INTRINSIC_GETTERS: Final[dict[str, Getter]] = {
    "name": lambda i, t: [("string", t.spans[i].name)],
    "status": lambda i, t: [("status", t.spans[i].status_code.label)],
    "statusMessage": lambda i, t: [("string", t.spans[i].status_message)],
    "kind": lambda i, t: [("kind", t.spans[i].kind.label)],
    "duration": lambda i, t: [("duration", t.spans[i].end_ns - t.spans[i].start_ns)],
    "childCount": lambda i, t: [("int", len(t.children[i]))],
    "span:id": lambda i, t: [("string", t.spans[i].span_id)],
    "span:parentID": lambda i, t: _non_empty("string", t.spans[i].parent_span_id),
    "trace:id": lambda i, t: [("string", t.trace_id)],
    "rootName": lambda i, t: _root_value(t, "name"),
    "rootServiceName": lambda i, t: _root_value(t, "service_name"),
    "traceDuration": lambda i, t: [("duration", t.duration_ns)],
    "event:name": lambda i, t: [("string", e.name) for e in t.spans[i].events],
    "event:timeSinceStart": lambda i, t: [("duration", e.time_ns - t.spans[i].start_ns) for e in t.spans[i].events],
    "link:traceID": lambda i, t: [("string", k.trace_id) for k in t.spans[i].links],
    "link:spanID": lambda i, t: [("string", k.span_id) for k in t.spans[i].links],
    "instrumentation:name": lambda i, t: _non_empty("string", t.spans[i].scope.name),
    "instrumentation:version": lambda i, t: _non_empty("string", t.spans[i].scope.version),
}


@lru_cache(maxsize=4096)
def getter(field: ast.Field) -> Getter:
    """All values of ``field`` on the span at an index: none (missing), one, or one per event/link."""
    if isinstance(field, ast.IntrinsicField):
        return _INTRINSIC_GETTERS[field.name]
    return _ATTRIBUTE_GETTERS[field.scope](field.name)
