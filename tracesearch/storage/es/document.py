"""The Elasticsearch document of a span: one converter pair, ``to_document`` / ``from_document``.

The document is not the span model. Besides the span's own fields it carries the span's search
terms (``query/span_terms.py``, one definition for every store), rebuilt from ``source`` and therefore
never read back (reads ask for ``_source`` without them; docs/storage.md, "Index format"): ``tags``
(keywords ``span.http.method=GET``: exact match and value autocomplete; ``keys:<id>`` of the span's key
sets and the sets themselves, ``key_sets.py``: presence and key autocomplete),
``tags_num`` (order-preserving encodings of numeric values: a keyword range query is a numeric range)
and ``text`` (analysed words for full-text search).

``source`` (an object Elasticsearch stores but does not index) keeps the typed attributes,
resource, scope, events and links, and for a span sent through Zipkin how it was sent (``z``), so the
span comes back exactly as it arrived.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from typing import Any

import orjson

from tracesearch.model import (
    Attributes,
    AttrValue,
    Event,
    Link,
    Resource,
    Scope,
    Span,
    SpanKind,
    StatusCode,
    ZipkinOrigin,
)
from tracesearch.query.span_terms import SearchTerms, encode_number, stringify
from tracesearch.storage.es.indices import MAX_NS, NS_PER_DAY, span_index_for
from tracesearch.storage.es.key_sets import key_set_terms

__all__ = [
    "bulk_body",
    "document_id",
    "encode_number",
    "from_document",
    "from_documents",
    "stringify",
    "to_bulk_lines",
    "to_document",
]

NS_PER_MS = 1_000_000
_KIND_BY_LABEL = {k.label: k for k in SpanKind}
_STATUS_BY_LABEL = {s.label: s for s in StatusCode}
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# By number: the enum's ``label`` property costs ~0.2 µs per call, and every document asks for both.
_KIND_LABELS = tuple(k.label for k in SpanKind)
_STATUS_LABELS = tuple(s.label for s in StatusCode)


def document_id(span: Span) -> str:
    """Deterministic id, so a replayed batch is a no-op (409 on create).

    The kind is part of it because Zipkin's shared spans use one span id for the client and the
    server half.
    """
    return f"{span.trace_id}{span.span_id}{int(span.kind)}"


def _encode_value(value: AttrValue) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"f": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [_encode_value(v) for v in value]
    if isinstance(value, dict):
        return {"kv": {k: _encode_value(v) for k, v in value.items()}}
    return value


_AS_IS = frozenset((str, int, bool))


def _encode_attributes(attributes: Attributes) -> dict[str, Any]:
    """The map as JSON holds it. Most maps hold only values JSON takes as they are (strings, ints,
    bools, finite floats, flat lists of strings, ints and bools): then the map itself is its encoding,
    shared rather than copied (orjson writes the same bytes; copying was ~1 µs a span)."""
    for value in attributes.values():
        kind = type(value)
        if kind in _AS_IS or (kind is float and math.isfinite(value)):  # type: ignore[arg-type]
            continue
        if kind is list and all(type(item) in _AS_IS for item in value):  # type: ignore[union-attr]
            continue
        return {k: v if type(v) in _AS_IS else _encode_value(v) for k, v in attributes.items()}
    return attributes


def _decode_value(value: Any) -> AttrValue:
    if isinstance(value, dict):
        if "b" in value:
            return base64.b64decode(value["b"])
        if "f" in value:
            return _SPECIAL_FLOATS[value["f"]]
        return {k: _decode_value(v) for k, v in value.get("kv", {}).items()}
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    return value  # type: ignore[no-any-return]


def _decode_attributes(encoded: dict[str, Any] | None) -> Attributes:
    if not encoded:
        return {}
    return {k: _decode_value(v) for k, v in encoded.items()}


def to_document(span: Span, carried: set[tuple[int, str]] | None = None) -> dict[str, Any]:
    """``carried``: the (day, key set id) pairs whose set an earlier document of the same ``_bulk`` body
    already carries (updated); None: this document carries each of its key sets itself."""
    search = SearchTerms()
    search.add_span_own(span)
    resource = _resource_fields(span.resource)
    search.tags += resource.tags
    search.nums += resource.nums
    search.texts += resource.texts
    search.key_sets += resource.key_sets
    search.add_span_rest(span)
    if search.key_sets:
        search.tags += key_set_terms(search.key_sets, _day(span.start_ns), carried)

    doc: dict[str, Any] = {
        "@timestamp": span.start_ns // NS_PER_MS,
        "start_ns": span.start_ns,
        "duration_ns": span.end_ns - span.start_ns,
        "trace": {"id": span.trace_id},
        "span": {"id": span.span_id, "name": span.name, "kind": _KIND_LABELS[span.kind]},
        "service": {"name": span.resource.service_name},
        "status": {"code": _STATUS_LABELS[span.status_code]},
        "tags": search.tags,
        "text": "\n".join(search.texts),
        "source": _source_of(span),
    }
    if search.nums:
        doc["tags_num"] = search.nums
    if span.parent_span_id:
        doc["parent"] = {"id": span.parent_span_id}
    if span.status_message:
        doc["status"]["message"] = span.status_message
    return doc


class _ResourceFields:
    """What a resource contributes to each of its spans' documents, computed once per resource."""

    __slots__ = ("key_sets", "nums", "source", "tags", "texts")

    def __init__(self, resource: Resource):
        search = SearchTerms()
        search.add_attributes("resource", resource.attributes)
        self.tags, self.nums, self.texts, self.key_sets = search.tags, search.nums, search.texts, search.key_sets
        self.source = _encode_attributes(resource.attributes)


def _resource_fields(resource: Resource) -> _ResourceFields:
    fields = resource.encoded
    if not isinstance(fields, _ResourceFields):
        fields = resource.encoded = _ResourceFields(resource)
    return fields


def _source_of(span: Span) -> dict[str, Any]:
    source: dict[str, Any] = {"e": span.end_ns, "a": _encode_attributes(span.attributes)}
    if span.resource.attributes:
        source["r"] = _resource_fields(span.resource).source
    if span.scope.name or span.scope.version or span.scope.attributes:
        source["sc"] = [span.scope.name, span.scope.version, _encode_attributes(span.scope.attributes)]
    if span.events:
        source["ev"] = [
            [e.time_ns, e.name, _encode_attributes(e.attributes), e.dropped_attributes_count] for e in span.events
        ]
    if span.links:
        source["ln"] = [
            [
                lk.trace_id,
                lk.span_id,
                lk.trace_state,
                _encode_attributes(lk.attributes),
                lk.dropped_attributes_count,
                lk.flags,
            ]
            for lk in span.links
        ]
    if span.trace_state:
        source["ts"] = span.trace_state
    if span.flags:
        source["fl"] = span.flags
    dropped = (span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count)
    if any(dropped):
        source["d"] = list(dropped)
    if span.zipkin is not None:
        source["z"] = span.zipkin.to_json()
    return source


def to_bulk_lines(index: str, span: Span, carried: set[tuple[int, str]] | None = None) -> bytes:
    """The two NDJSON lines of a bulk ``create`` of this span (``carried``: see ``to_document``)."""
    action = orjson.dumps({"create": {"_index": index, "_id": document_id(span)}})
    return action + b"\n" + orjson.dumps(to_document(span, carried)) + b"\n"


def _day(start_ns: int) -> int:
    """The number of the UTC day whose daily index holds a span starting then."""
    return min(max(start_ns, 0), MAX_NS) // NS_PER_DAY


def bulk_body(prefix: str, spans: Iterable[Span]) -> bytes:
    """The ``_bulk`` body that creates these spans in their daily indices: byte for byte
    ``b"".join(to_bulk_lines(span_index_for(prefix, s.start_ns), s) for s in spans)``, built cheaper.

    The action line's start is made once per day rather than per span (the index name alone cost
    ~2 µs a span), and ids that need no JSON escaping are spliced in as they are. Each span's two lines
    are concatenated at once, so orjson's buffer is freed before the next span's: holding every
    span's buffers until one final join made the body twice as slow (malloc stops reusing them)."""
    heads: dict[int, bytes] = {}  # day number -> b'{"create":{"_index":"<index>","_id":"'
    carried: set[tuple[int, str]] = set()
    return b"".join(_bulk_lines(prefix, span, heads, carried) for span in spans)


def _bulk_lines(prefix: str, span: Span, heads: dict[int, bytes], carried: set[tuple[int, str]]) -> bytes:
    day = _day(span.start_ns)
    head = heads.get(day)
    if head is None:
        head = heads[day] = orjson.dumps({"create": {"_index": span_index_for(prefix, span.start_ns), "_id": ""}})[:-3]
    span_id = document_id(span)
    if not span_id.isalnum():  # hex ids and the kind digit need no escaping; anything else goes through orjson
        return to_bulk_lines(span_index_for(prefix, span.start_ns), span, carried)
    document = orjson.dumps(to_document(span, carried), option=orjson.OPT_APPEND_NEWLINE)
    return head + span_id.encode() + b'"}}\n' + document


class _Interner:
    """Spans of one trace share Resource and Scope objects again, as they did when decoded."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, bytes], Resource] = {}
        self.scopes: dict[bytes, Scope] = {}

    def resource(self, service: str, encoded: dict[str, Any] | None) -> Resource:
        key = (service, orjson.dumps(encoded or {}, option=orjson.OPT_SORT_KEYS))
        found = self.resources.get(key)
        if found is None:
            found = self.resources[key] = Resource(_decode_attributes(encoded), service)
        return found

    def scope(self, encoded: list[Any] | None) -> Scope:
        key = orjson.dumps(encoded or [], option=orjson.OPT_SORT_KEYS)
        found = self.scopes.get(key)
        if found is None:
            found = self.scopes[key] = (
                Scope(encoded[0], encoded[1], _decode_attributes(encoded[2])) if encoded else Scope()
            )
        return found


def from_document(doc: dict[str, Any], interner: _Interner | None = None) -> Span:
    interner = interner or _Interner()
    source = doc["source"]
    span_fields = doc["span"]
    status = doc.get("status", {})
    start_ns = doc["start_ns"]
    return Span(
        trace_id=doc["trace"]["id"],
        span_id=span_fields["id"],
        name=span_fields.get("name", ""),
        start_ns=start_ns,
        end_ns=source.get("e", start_ns + doc.get("duration_ns", 0)),
        resource=interner.resource(doc["service"]["name"], source.get("r")),
        scope=interner.scope(source.get("sc")),
        parent_span_id=doc.get("parent", {}).get("id", ""),
        kind=_KIND_BY_LABEL.get(span_fields.get("kind", ""), SpanKind.UNSPECIFIED),
        status_code=_STATUS_BY_LABEL.get(status.get("code", ""), StatusCode.UNSET),
        status_message=status.get("message", ""),
        attributes=_decode_attributes(source.get("a")),
        events=[Event(t, n, _decode_attributes(a), d) for t, n, a, d in source.get("ev", [])],
        links=[Link(t, s, ts, _decode_attributes(a), d, f) for t, s, ts, a, d, f in source.get("ln", [])],
        trace_state=source.get("ts", ""),
        flags=source.get("fl", 0),
        dropped_attributes_count=source.get("d", [0, 0, 0])[0],
        dropped_events_count=source.get("d", [0, 0, 0])[1],
        dropped_links_count=source.get("d", [0, 0, 0])[2],
        zipkin=ZipkinOrigin.from_json(source["z"]) if "z" in source else None,
    )


def from_documents(docs: Iterable[dict[str, Any]]) -> list[Span]:
    interner = _Interner()
    return [from_document(doc, interner) for doc in docs]
