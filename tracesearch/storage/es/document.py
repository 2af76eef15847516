"""The Elasticsearch document of a span: one converter pair, ``to_document`` / ``from_document``.

The document is not the span model. Besides the span's own fields it carries search-only fields
that are rebuilt from ``source`` and therefore left out of ``_source``:

* ``tags``: one keyword per attribute key (``span.http.method``) and per key=value
  (``span.http.method=GET``), scoped ``span.``, ``resource.``, ``event.``, ``link.``,
  ``instrumentation.``; plus ``event:name=<name>`` for every event. Exact match, presence, autocomplete.
* ``tags_num``: ``<scope>.<key>=<16 hex digits>`` for every numeric value, the digits being an
  order-preserving encoding of the value as a double, so a keyword range query is a numeric range.
* ``text``: analysed words of span name, status message, string attribute values and event names.

``source`` (an object Elasticsearch stores but does not index) keeps the typed attributes,
resource, scope, events and links, so the span comes back exactly as it arrived.
"""

from __future__ import annotations

import base64
import math
import struct
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
)

NS_PER_MS = 1_000_000
_KIND_BY_LABEL = {k.label: k for k in SpanKind}
_STATUS_BY_LABEL = {s.label: s for s in StatusCode}
_SIGN_BIT = 1 << 63
_MASK64 = (1 << 64) - 1
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def document_id(span: Span) -> str:
    """Deterministic id, so a replayed batch is a no-op (409 on create).

    The kind is part of it because Zipkin's shared spans use one span id for the client and the
    server half.
    """
    return f"{span.trace_id}{span.span_id}{int(span.kind)}"


def encode_number(value: float) -> str:
    """16 hex digits whose lexicographic order is the numeric order of ``value``."""
    bits: int = struct.unpack(">Q", struct.pack(">d", value + 0.0))[0]
    bits = (~bits & _MASK64) if bits & _SIGN_BIT else (bits | _SIGN_BIT)
    return f"{bits:016x}"


def stringify(value: AttrValue) -> str:
    """The canonical text of a scalar, as it is matched by exact tag search."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return str(value)


class _SearchFields:
    """Collects the derived search fields of one span."""

    __slots__ = ("nums", "tags", "texts")

    def __init__(self) -> None:
        self.tags: list[str] = []
        self.nums: list[str] = []
        self.texts: list[str] = []

    def add_attributes(self, scope: str, attributes: Attributes) -> None:
        # Hot path (every attribute of every span): plain types inline, the rest through add_value.
        tags, texts = self.tags, self.texts
        for key, value in attributes.items():
            name = f"{scope}.{key}"
            kind = type(value)
            if kind is str:
                tags += (name, f"{name}={value}")  # type: ignore[str-bytes-safe]
                texts.append(value)  # type: ignore[arg-type]
            elif kind is int:
                tags += (name, f"{name}={value}")  # type: ignore[str-bytes-safe]
                self.nums.append(f"{name}={encode_number(value)}")  # type: ignore[arg-type]
            else:
                tags.append(name)
                self.add_value(name, value)

    def add_value(self, name: str, value: AttrValue) -> None:
        if isinstance(value, str):
            self.tags.append(f"{name}={value}")
            self.texts.append(value)
        elif isinstance(value, bool):
            self.tags.append(f"{name}={'true' if value else 'false'}")
        elif isinstance(value, int | float):
            self.tags.append(f"{name}={stringify(value)}")
            if math.isfinite(value) and abs(value) < 1.7e308:
                self.nums.append(f"{name}={encode_number(float(value))}")
        elif isinstance(value, bytes):
            self.tags.append(f"{name}={stringify(value)}")
        elif isinstance(value, list):
            for item in value:
                self.add_value(name, item)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.tags.append(f"{name}.{key}")
                self.add_value(f"{name}.{key}", item)


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
    return {k: v if type(v) in _AS_IS else _encode_value(v) for k, v in attributes.items()}


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


def to_document(span: Span) -> dict[str, Any]:
    search = _SearchFields()
    search.texts.append(span.name)
    search.add_attributes("span", span.attributes)
    resource = _resource_fields(span.resource)
    search.tags += resource.tags
    search.nums += resource.nums
    search.texts += resource.texts
    if span.scope.name:
        search.tags.append(f"instrumentation:name={span.scope.name}")
    if span.scope.attributes:
        search.add_attributes("instrumentation", span.scope.attributes)
    for event in span.events:
        search.tags.append(f"event:name={event.name}")
        search.texts.append(event.name)
        search.add_attributes("event", event.attributes)
    for link in span.links:
        search.add_attributes("link", link.attributes)
    if span.status_message:
        search.texts.append(span.status_message)

    doc: dict[str, Any] = {
        "@timestamp": span.start_ns // NS_PER_MS,
        "start_ns": span.start_ns,
        "duration_ns": span.end_ns - span.start_ns,
        "trace": {"id": span.trace_id},
        "span": {"id": span.span_id, "name": span.name, "kind": span.kind.label},
        "service": {"name": span.resource.service_name},
        "status": {"code": span.status_code.label},
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

    __slots__ = ("nums", "source", "tags", "texts")

    def __init__(self, resource: Resource):
        search = _SearchFields()
        search.add_attributes("resource", resource.attributes)
        self.tags, self.nums, self.texts = search.tags, search.nums, search.texts
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
    return source


def to_bulk_lines(index: str, span: Span) -> bytes:
    """The two NDJSON lines of a bulk ``create`` of this span."""
    action = orjson.dumps({"create": {"_index": index, "_id": document_id(span)}})
    return action + b"\n" + orjson.dumps(to_document(span)) + b"\n"


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
    )


def from_documents(docs: Iterable[dict[str, Any]]) -> list[Span]:
    interner = _Interner()
    return [from_document(doc, interner) for doc in docs]
