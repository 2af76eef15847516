"""Tag names and typed tag values for the TraceQL editor's autocomplete (Tempo's tag endpoints).

Stores keep every value as text and numeric values a second time (``query.span_terms``), so a value that
looks like a number is checked against the numeric terms: stored as a number it is ``int`` (no ``.`` or
exponent) or ``float``, and a value stored both as the string "500" and the number 500 is the number.
``true``/``false`` are ``bool``, the rest ``string``; ``status`` and ``kind`` values are ``keyword``
(Grafana completes them unquoted). A query typed so far (``q``) narrows the spans looked at; one that
does not parse yet narrows nothing, as in Tempo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracesearch.query.conditions import Condition
from tracesearch.query.errors import InvalidQuery
from tracesearch.query.traceql import TraceQLError, pushdown
from tracesearch.query.traceql.bounded import parse_bounded
from tracesearch.storage.contracts import SpanReader

INTRINSICS = [
    "duration",
    "event:name",
    "instrumentation:name",
    "kind",
    "name",
    "rootName",
    "rootServiceName",
    "span:id",
    "span:parentID",
    "status",
    "statusMessage",
    "trace:id",
    "traceDuration",
]
KEYWORD_INTRINSICS = frozenset({"status", "kind"})
ATTRIBUTE_SCOPES = ("resource", "span", "event", "link", "instrumentation")
_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@dataclass(frozen=True, slots=True)
class TypedValue:
    type: str  # "string", "int", "float", "bool", "keyword"
    value: str


def lenient_conditions(text: str) -> list[Condition]:
    """Span conditions of a possibly unfinished query; none when it does not parse."""
    if not text.strip():
        return []
    try:
        query = parse_bounded(text)
    except (TraceQLError, InvalidQuery):
        return []
    return pushdown.push_pipeline(query.spansets).conditions()


def _typed(value: str, numeric: set[str]) -> TypedValue:
    if value in numeric:
        return TypedValue("float" if re.search(r"[.eE]", value) else "int", value)
    if value in ("true", "false"):
        return TypedValue("bool", value)
    return TypedValue("string", value)


class Autocomplete:
    def __init__(self, reader: SpanReader):
        self._reader = reader

    def names_by_scope(
        self, scopes: list[str], start_ns: int | None, end_ns: int | None, limit: int, q: str
    ) -> list[tuple[str, list[str]]]:
        """(scope, sorted names) per scope; ``intrinsic`` lists the intrinsics."""
        conditions = lenient_conditions(q)
        found = []
        for scope in scopes:
            if scope == "intrinsic":
                names = INTRINSICS
            else:
                names = self._reader.tag_names(scope, start_ns, end_ns, limit, conditions)
            found.append((scope, sorted(names[:limit])))
        return found

    def names(self, scopes: list[str], start_ns: int | None, end_ns: int | None, limit: int) -> list[str]:
        """Attribute names of any of the scopes, the ``limit`` most frequent, sorted."""
        ranked: dict[str, int] = {}  # name -> its best rank by frequency in any scope
        for scope in scopes:
            if scope != "intrinsic":
                for rank, name in enumerate(self._reader.tag_names(scope, start_ns, end_ns, limit, [])):
                    ranked[name] = min(rank, ranked.get(name, rank))
        return sorted(sorted(ranked, key=ranked.__getitem__)[:limit])

    def values(self, tag: str, start_ns: int | None, end_ns: int | None, limit: int, q: str) -> list[TypedValue]:
        """Typed values of ``scope.name``, ``.name`` (span or resource) or an intrinsic."""
        conditions = lenient_conditions(q)
        if tag.startswith("."):
            scopes, key = ["span", "resource"], tag[1:]
        else:
            scope, _, key = tag.partition(".")
            if scope not in ATTRIBUTE_SCOPES or not key:
                return self._intrinsic_values(tag, start_ns, end_ns, limit, conditions)
            scopes = [scope]
        typed: dict[tuple[str, str], TypedValue] = {}
        for scope in scopes:
            values = self._reader.attribute_values(scope, key, start_ns, end_ns, limit, conditions)
            looks_numeric = [v for v in values if _NUMBER.fullmatch(v)]
            numeric = self._reader.numeric_attribute_values(scope, key, looks_numeric, start_ns, end_ns, conditions)
            for value in values:
                entry = _typed(value, numeric)
                typed[(entry.type, value)] = entry
        return sorted(typed.values(), key=lambda e: (e.value, e.type))[:limit]

    def _intrinsic_values(
        self, tag: str, start_ns: int | None, end_ns: int | None, limit: int, conditions: list[Condition]
    ) -> list[TypedValue]:
        values = self._reader.intrinsic_values(tag, start_ns, end_ns, limit, conditions)
        if values is None:
            raise InvalidQuery(f"unknown tag {tag!r}: use scope.name (span.http.method) or an intrinsic")
        kind = "keyword" if tag in KEYWORD_INTRINSICS else "string"
        return [TypedValue(kind, v) for v in sorted(values)[:limit]]
