"""Span conditions (``query.conditions``) compiled into Elasticsearch query JSON: the only place that
writes it, whichever front end (Jaeger, Zipkin, TraceQL) produced the conditions.

A span query is a ``bool`` filter: every condition of the list must hold on the same span document,
inside the time window. Combinations are flattened (``a && (b && c)`` is one ``bool``), as
``conditions.members`` and ``conditions.depth`` describe, so long chains stay within the nesting
Elasticsearch accepts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tracesearch.query.conditions import (
    All,
    AttrEquals,
    AttrExists,
    AttrMatches,
    AttrRange,
    Condition,
    FieldEquals,
    FieldMatches,
    FieldRange,
    Not,
    Nothing,
    Text,
    alternatives,
    members,
)
from tracesearch.query.conditions import Any as AnyOf
from tracesearch.query.span_terms import HIGHEST, LOWEST, encode_number
from tracesearch.storage.es.key_sets import KEY_SET_ID_PREFIX

Query = dict[str, Any]
# Fields of the span document that only searches read (``document.to_document``): never sent back.
SEARCH_ONLY_FIELDS = ("tags", "tags_num", "text")
NS_PER_MS = 1_000_000
# Span fields of the document, by the condition field that names them.
DOCUMENT_FIELDS = {
    "service": "service.name",
    "name": "span.name",
    "status": "status.code",
    "kind": "span.kind",
    "statusMessage": "status.message",
    "duration": "duration_ns",
    "span:id": "span.id",
    "span:parentID": "parent.id",
    "trace:id": "trace.id",
}
# Fields kept as ``tags`` terms ``<field>=<value>`` (zero or many per span).
TAGGED_FIELDS = frozenset(
    {"event:name", "instrumentation:name", "instrumentation:version", "span:traceState", "zipkin:remoteServiceName"}
)
_INCLUSIVE = {"gt": "gte", "lt": "lte", "gte": "gte", "lte": "lte"}
_BOUND_OPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def term(field: str, value: str) -> Query:
    return {"term": {field: value}}


def case_insensitive_term(field: str, value: str) -> Query:
    """ASCII letters of keyword terms compared ignoring case (Elasticsearch's ``case_insensitive``)."""
    return {"term": {field: {"value": value, "case_insensitive": True}}}


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


def time_filter(start_ns: int, end_ns: int) -> Query:
    return range_("@timestamp", gte=start_ns // NS_PER_MS, lte=end_ns // NS_PER_MS, format="epoch_millis")


def lucene_literal(text: str) -> str:
    """``text`` as a Lucene regexp matching only itself (each of .?+*|{}[]()"\\#@&<>~ is special)."""
    return re.sub(r'([.?+*|{}\[\]()"\\#@&<>~])', r"\\\1", text)


def lucene_prefix(prefix: str) -> str:
    """A Lucene regexp (anchored, as they all are) matching every term that starts with ``prefix``."""
    return lucene_literal(prefix) + ".*"


def has_key(names: Sequence[str], key_sets: Sequence[str] = ()) -> Query:
    """Spans with any of these attribute keys: as a term of its own (a key kept out of a key set, and
    every key in daily indices written before key sets), or through the id of a key set listing it
    (``key_sets.py``: the reader finds the ids)."""
    if not key_sets:
        return terms("tags", list(names))
    return bool_(should=[terms("tags", list(names)), terms("tags", [KEY_SET_ID_PREFIX + i for i in key_sets])])


def _one_or_any(queries: list[Query]) -> Query:
    return queries[0] if len(queries) == 1 else bool_(should=queries)


def _attr_equals(cond: AttrEquals) -> list[Query]:
    found = []
    if cond.text is not None and cond.ignore_case:
        found += [case_insensitive_term("tags", f"{n}={cond.text}") for n in cond.names]
    elif cond.text is not None:
        found.append(terms("tags", [f"{n}={cond.text}" for n in cond.names]))
    if cond.number is not None:
        encoded = encode_number(cond.number)
        found.append(terms("tags_num", [f"{n}={encoded}" for n in cond.names]))
    return found


def _attr_range(cond: AttrRange) -> list[Query]:
    encoded = encode_number(cond.number)
    op = _BOUND_OPS[cond.op]
    # Past 2**53 a value kept equal to the bound may be beyond it: inclusive, a superset (see AttrRange).
    op = op if cond.is_precise else _INCLUSIVE[op]
    per_name = []
    for n in cond.names:
        low = ("gte", f"{n}={LOWEST}") if op in ("lt", "lte") else (op, f"{n}={encoded}")
        high = ("lte", f"{n}={HIGHEST}") if op in ("gt", "gte") else (op, f"{n}={encoded}")
        per_name.append(range_("tags_num", **{low[0]: low[1], high[0]: high[1]}))
    return per_name


def _attr_matches(cond: AttrMatches) -> list[Query]:
    return [{"regexp": {"tags": {"value": f"{lucene_literal(n)}=({cond.pattern})"}}} for n in cond.names]


def _field_equals(cond: FieldEquals) -> Query:
    if cond.field in TAGGED_FIELDS:
        if cond.ignore_case:
            return case_insensitive_term("tags", f"{cond.field}={cond.value}")
        return term("tags", f"{cond.field}={cond.value}")
    if cond.ignore_case:
        return case_insensitive_term(DOCUMENT_FIELDS[cond.field], cond.value)
    return term(DOCUMENT_FIELDS[cond.field], cond.value)


def _alternatives(cond: Condition) -> list[Query]:
    """A leaf as the list of queries any of which makes it hold."""
    if isinstance(cond, AttrEquals):
        return _attr_equals(cond)
    if isinstance(cond, AttrRange):
        return _attr_range(cond)
    if isinstance(cond, AttrMatches):
        return _attr_matches(cond)
    return [compile_condition(cond)]


def compile_condition(cond: Condition) -> Query:
    if isinstance(cond, All):
        clauses = [compile_condition(m) for m in members(cond)]
        return clauses[0] if len(clauses) == 1 else bool_(filter=clauses)
    if isinstance(cond, AnyOf):
        clauses = [q for m in members(cond) for q in _any_member(m)]
        return clauses[0] if len(clauses) == 1 else bool_(should=clauses)
    if isinstance(cond, Not):
        return bool_(must_not=[compile_condition(cond.condition)])
    if isinstance(cond, AttrEquals | AttrRange | AttrMatches):
        return _one_or_any(_alternatives(cond))
    if isinstance(cond, AttrExists):
        return has_key(cond.names, cond.key_sets)
    if isinstance(cond, FieldEquals):
        return _field_equals(cond)
    if isinstance(cond, FieldRange):
        return range_(DOCUMENT_FIELDS[cond.field], **dict(cond.bounds))
    if isinstance(cond, FieldMatches):
        return {"regexp": {DOCUMENT_FIELDS[cond.field]: {"value": cond.pattern}}}
    if isinstance(cond, Text):
        return {"simple_query_string": {"query": cond.text, "fields": ["text"], "default_operator": "and"}}
    if isinstance(cond, Nothing):
        return {"match_none": {}}
    raise TypeError(f"not a condition: {cond!r}")  # pragma: no cover - Condition is closed


def _any_member(member: Condition) -> list[Query]:
    """A member of an ``Any``: its own alternatives join the enclosing ``should`` (one level, not two)."""
    if not isinstance(member, Not | All | AnyOf) and alternatives(member) > 1:
        return _alternatives(member)
    return [compile_condition(member)]


def span_filter(conditions: Sequence[Condition], start_ns: int, end_ns: int) -> Query:
    """The spans in [start_ns, end_ns] that meet every condition."""
    return bool_(filter=[time_filter(start_ns, end_ns), *(compile_condition(c) for c in conditions)])


def latest_traces(conditions: Sequence[Condition], start_ns: int, end_ns: int, limit: int) -> dict[str, Any]:
    """Search body: the newest ``limit`` distinct traces with a matching span.

    Field collapsing on ``trace.id`` returns one hit per trace, newest first, without the costly
    terms aggregation ordered by a sub-aggregation that Jaeger and Zipkin use.
    """
    return {
        "query": span_filter(conditions, start_ns, end_ns),
        "collapse": {"field": "trace.id"},
        "sort": [{"start_ns": "desc"}],
        "size": limit,
        "_source": False,
        "track_total_hits": False,
    }


def candidate_traces(conditions: Sequence[Condition], start_ns: int, end_ns: int, size: int) -> dict[str, Any]:
    """The newest ``size`` traces with a matching span, with the start of that span (to page on)."""
    body = latest_traces(conditions, start_ns, end_ns, size)
    body["docvalue_fields"] = ["start_ns"]
    return body


def spans_of_traces(trace_ids: list[str], page_size: int, search_after: list[Any] | None) -> dict[str, Any]:
    """One page of the spans of these traces, in a stable order for ``search_after`` paging.

    The search-only fields are not sent: daily indices made since issue 14 keep them in ``_source`` (so
    Elasticsearch writes no ``_recovery_source`` copy), older ones left them out, and the span is rebuilt
    without them either way; asking for less keeps hits as small as before on both."""
    body: dict[str, Any] = {
        "query": bool_(filter=[terms("trace.id", trace_ids)]),
        "sort": [{"start_ns": "asc"}, {"span.id": "asc"}, {"span.kind": "asc"}, {"trace.id": "asc"}],
        "size": page_size,
        "_source": {"excludes": list(SEARCH_ONLY_FIELDS)},
        "track_total_hits": False,
    }
    if search_after is not None:
        body["search_after"] = search_after
    return body
