"""Elasticsearch query bodies, built by small functions from storage-independent conditions.

A span query is a ``bool`` filter: every condition must hold on the same span document.
"""

from __future__ import annotations

from typing import Any

from tracesearch.query.filters import (
    Condition,
    Intrinsic,
    Op,
    Scope,
    TagCompare,
    TagEquals,
    TagExists,
    TextMatch,
    TraceQuery,
)
from tracesearch.storage.es.document import encode_number

Query = dict[str, Any]
NS_PER_MS = 1_000_000
# Scopes an unscoped key is looked up in, as Jaeger does (span tags, process tags, log fields).
ANY_SCOPES = (Scope.SPAN, Scope.RESOURCE, Scope.EVENT)
INTRINSIC_FIELDS = {"status": "status.code", "kind": "span.kind", "name": "span.name", "service": "service.name"}
_LOWEST = encode_number(float("-inf"))
_HIGHEST = encode_number(float("inf"))


def term(field: str, value: str) -> Query:
    return {"term": {field: value}}


def terms(field: str, values: list[str]) -> Query:
    return {"terms": {field: values}}


def range_(field: str, **bounds: Any) -> Query:
    return {"range": {field: bounds}}


def bool_(
    filter: list[Query] | None = None, should: list[Query] | None = None, must_not: list[Query] | None = None
) -> Query:
    body: dict[str, Any] = {}
    if filter:
        body["filter"] = filter
    if should:
        body["should"] = should
        body["minimum_should_match"] = 1
    if must_not:
        body["must_not"] = must_not
    return {"bool": body}


def _scoped_names(key: str, scope: Scope) -> list[str]:
    scopes = ANY_SCOPES if scope is Scope.ANY else (scope,)
    return [f"{s.value}.{key}" for s in scopes]


def _as_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def tag_equals(cond: TagEquals) -> Query:
    names = _scoped_names(cond.key, cond.scope)
    alternatives = [terms("tags", [f"{n}={cond.value}" for n in names])]
    number = _as_number(cond.value)
    if number is not None:
        encoded = encode_number(number)
        alternatives.append(terms("tags_num", [f"{n}={encoded}" for n in names]))
    query = alternatives[0] if len(alternatives) == 1 else bool_(should=alternatives)
    return bool_(must_not=[query]) if cond.negate else query


def tag_compare(cond: TagCompare) -> Query:
    encoded = encode_number(cond.number)
    if cond.op is Op.EQ:
        return tag_equals(TagEquals(cond.key, repr(cond.number), cond.scope))
    if cond.op is Op.NE:
        return bool_(
            must_not=[tag_compare(TagCompare(cond.key, Op.EQ, cond.number, cond.scope))],
            filter=[tag_exists(TagExists(cond.key, cond.scope))],
        )
    per_scope = []
    for name in _scoped_names(cond.key, cond.scope):
        lower = {Op.GT: ("gt", encoded), Op.GE: ("gte", encoded)}.get(cond.op, ("gte", _LOWEST))
        upper = {Op.LT: ("lt", encoded), Op.LE: ("lte", encoded)}.get(cond.op, ("lte", _HIGHEST))
        per_scope.append(range_("tags_num", **{lower[0]: f"{name}={lower[1]}", upper[0]: f"{name}={upper[1]}"}))
    return per_scope[0] if len(per_scope) == 1 else bool_(should=per_scope)


def tag_exists(cond: TagExists) -> Query:
    query = terms("tags", _scoped_names(cond.key, cond.scope))
    return bool_(must_not=[query]) if cond.negate else query


def text_match(cond: TextMatch) -> Query:
    return {"simple_query_string": {"query": cond.text, "fields": ["text"], "default_operator": "and"}}


def intrinsic(cond: Intrinsic) -> Query:
    if cond.field == "scope":
        query = term("tags", f"instrumentation:name={cond.value}")
    else:
        query = term(INTRINSIC_FIELDS[cond.field], cond.value)
    return bool_(must_not=[query]) if cond.negate else query


def condition(cond: Condition) -> Query:
    if isinstance(cond, TagEquals):
        return tag_equals(cond)
    if isinstance(cond, TagCompare):
        return tag_compare(cond)
    if isinstance(cond, TagExists):
        return tag_exists(cond)
    if isinstance(cond, TextMatch):
        return text_match(cond)
    return intrinsic(cond)


def span_filter(query: TraceQuery) -> Query:
    """The spans that meet every condition of the query, inside its time window."""
    clauses: list[Query] = [
        range_("@timestamp", gte=query.start_ns // NS_PER_MS, lte=query.end_ns // NS_PER_MS, format="epoch_millis")
    ]
    if query.service:
        clauses.append(term("service.name", query.service))
    if query.operation:
        clauses.append(term("span.name", query.operation))
    if query.min_duration_ns is not None or query.max_duration_ns is not None:
        bounds = {}
        if query.min_duration_ns is not None:
            bounds["gte"] = query.min_duration_ns
        if query.max_duration_ns is not None:
            bounds["lte"] = query.max_duration_ns
        clauses.append(range_("duration_ns", **bounds))
    clauses.extend(condition(c) for c in query.conditions)
    return bool_(filter=clauses)


def latest_traces(query: TraceQuery) -> dict[str, Any]:
    """Search body: the newest ``limit`` distinct traces with a matching span.

    Field collapsing on ``trace.id`` returns one hit per trace, newest first, without the costly
    terms aggregation ordered by a sub-aggregation that Jaeger and Zipkin use.
    """
    return {
        "query": span_filter(query),
        "collapse": {"field": "trace.id"},
        "sort": [{"start_ns": "desc"}],
        "size": query.limit,
        "_source": False,
        "track_total_hits": False,
    }


def spans_of_traces(trace_ids: list[str], page_size: int, search_after: list[Any] | None) -> dict[str, Any]:
    """One page of the spans of these traces, in a stable order for ``search_after`` paging."""
    body: dict[str, Any] = {
        "query": bool_(filter=[terms("trace.id", trace_ids)]),
        "sort": [{"start_ns": "asc"}, {"span.id": "asc"}, {"span.kind": "asc"}, {"trace.id": "asc"}],
        "size": page_size,
        "track_total_hits": False,
    }
    if search_after is not None:
        body["search_after"] = search_after
    return body
