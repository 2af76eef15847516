"""OTLP/protobuf traces: ``ExportTraceServiceRequest`` in, ``TracesData``/``ExportTraceServiceRequest`` out.

The decoder is the ingest hot path. It walks the generated upb message objects once, builds one
``Resource`` per ResourceSpans and one ``Scope`` per ScopeSpans and shares them between the spans,
and reads each protobuf field once (upb builds a Python object per access, which is the main cost).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, TypeVar

import orjson
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, TracesData
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from tracesearch.admission import Limits, admit, limit_attributes, make_resource
from tracesearch.codecs.common import INT64_MAX, INT64_MIN, group_spans, resource_attributes_with_service
from tracesearch.codecs.errors import DecodeError
from tracesearch.codecs.otlp_vetting import vetted_spans
from tracesearch.model import (
    Attributes,
    AttrValue,
    DecodedBatch,
    Event,
    Link,
    Resource,
    Scope,
    Span,
    SpanKind,
    StatusCode,
    ZipkinOrigin,
)

# Tuple lookups are cheaper than calling the IntEnum per span; unknown numbers (proto3 enums are open)
# fall back to the "don't know" member rather than failing the span.
_KINDS = tuple(SpanKind)
_STATUS_CODES = tuple(StatusCode)
_SCALAR_FIELDS = frozenset({"string_value", "bool_value", "int_value", "double_value", "bytes_value"})
# A span sent through Zipkin crosses Kafka (whose messages are OTLP) with how it was sent
# (``model.ZipkinOrigin``) as this span attribute, JSON text; decoding takes it back out of the
# attributes. Reserved: the same attribute from an OTLP client is read the same way.
ZIPKIN_ORIGIN_ATTRIBUTE = "tracesearch.zipkin_origin"

# The compiled core (native/, ``tracesearch_native``) when the composition root turned it on
# (TRACESEARCH_NATIVE): it parses the protobuf and makes the model spans; admission stays here.
_native: ModuleType | None = None


def use_native(module: ModuleType | None) -> None:
    """Decode with the compiled core's parser from now on (None: the Python decoder only)."""
    global _native
    _native = module


# ---------------------------------------------------------------------------------------------- decode


def decode_export_request(body: bytes, limits: Limits, build_spans: bool = True) -> DecodedBatch:
    """Decode an OTLP/protobuf ``ExportTraceServiceRequest`` body.

    Raises ``DecodeError`` when the body is not a valid message (truncated, corrupt, bad UTF-8 in a
    string, nested too deep). Span-level problems become ``Rejection``s in the result. When nothing
    was trimmed, the batch also carries its spans' own bytes per trace (``per_trace``).
    With ``build_spans=False`` (a sink that forwards ``per_trace`` only), a request whose every span
    would be accepted unchanged gets no model spans: ``unbuilt`` counts them (``otlp_vetting``).
    """
    # Vetting without model spans (build_spans=False) is cheaper still than the core: it stays on upb.
    if build_spans and _native is not None and type(body) is bytes:
        decoded = decode_natively(_native, body, limits)
        if decoded is not None:
            return decoded
    return decode_in_python(body, limits, build_spans)


def decode_natively(native: ModuleType, body: bytes, limits: Limits) -> DecodedBatch | None:
    """The compiled core's parse, with this module's admission steps in the Python decoder's order:
    the same batch as ``decode_in_python``, or None for a body the core declines (anything but the
    plain encoding, which the Python decoder then decodes or refuses with its own error)."""
    batch = DecodedBatch()
    accepted, warnings = batch.spans, batch.warnings
    kept: list[tuple[str, int, int, int]] = []

    def resource(attributes: Attributes) -> Resource:
        attributes, _, found = limit_attributes(attributes, limits, "resource")
        warnings.extend(found)
        return make_resource(attributes)

    def scope(name: str, version: str, attributes: Attributes) -> Scope:
        if attributes:
            attributes, _, found = limit_attributes(attributes, limits, f"scope {name!r}")
            warnings.extend(found)
        return Scope(name=name, version=version, attributes=attributes)

    def admit_span(span: Span, r_index: int, s_index: int, index: int) -> None:
        before = len(accepted)
        admit(batch, span, f"resourceSpans[{r_index}].scopeSpans[{s_index}].spans[{index}]", limits)
        if len(accepted) > before:
            kept.append((accepted[-1].trace_id, r_index, s_index, index))

    if not native.decode_export_request(body, Span, Event, Link, _KINDS, _STATUS_CODES, resource, scope, admit_span):
        return None
    if not batch.warnings and batch.spans:
        batch.per_trace = _ParsedLater(body, kept)
    return batch


class _ParsedLater:
    """``OtlpTraceMessages`` of a natively decoded body, parsed by upb only if asked (Kafka mode)."""

    def __init__(self, body: bytes, kept: list[tuple[str, int, int, int]]):
        self._body = body
        self._kept = kept

    def messages(self, max_bytes: int) -> Iterator[tuple[str, bytes, int]]:
        request = ExportTraceServiceRequest()
        request.ParseFromString(self._body)
        rs = request.resource_spans
        kept = [(trace_id, r, s, rs[r].scope_spans[s].spans[i]) for trace_id, r, s, i in self._kept]
        return OtlpTraceMessages(rs, kept).messages(max_bytes)


def decode_in_python(body: bytes, limits: Limits, build_spans: bool = True) -> DecodedBatch:
    """The reference decoder, on the upb messages."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"cannot decode ExportTraceServiceRequest: {exc}") from exc
    if not build_spans:
        vetted = vetted_spans(request.resource_spans, limits)
        if vetted is not None:
            unbuilt = DecodedBatch(unbuilt=len(vetted))
            if vetted:
                unbuilt.per_trace = OtlpTraceMessages(request.resource_spans, vetted)
            return unbuilt
    kept: list[_Kept] = []
    batch = decode_resource_spans(request.resource_spans, limits, kept)
    if not batch.warnings and batch.spans:
        batch.per_trace = OtlpTraceMessages(request.resource_spans, kept)
    return batch


def decode_resource_spans(
    resource_spans: Sequence[ResourceSpans], limits: Limits, kept: list[_Kept] | None = None
) -> DecodedBatch:
    """Map parsed ``ResourceSpans`` onto the model, validated and trimmed; paths as in the request.
    ``kept`` receives where each accepted span was, with its protobuf message."""
    batch = DecodedBatch()
    accepted = batch.spans
    for r_index, rs in enumerate(resource_spans):
        resource = resource_from_pb(rs.resource, limits, batch.warnings)
        for s_index, ss in enumerate(rs.scope_spans):
            scope = scope_from_pb(ss.scope, limits, batch.warnings)
            prefix = f"resourceSpans[{r_index}].scopeSpans[{s_index}].spans["
            for index, pb_span in enumerate(ss.spans):
                before = len(accepted)
                admit(batch, span_from_pb(pb_span, resource, scope), f"{prefix}{index}]", limits)
                if kept is not None and len(accepted) > before:
                    kept.append((accepted[-1].trace_id, r_index, s_index, pb_span))
    return batch


def resource_from_pb(pb: PbResource, limits: Limits, warnings: list[str]) -> Resource:
    attributes = attributes_from_pb(pb.attributes)
    attributes, _, found = limit_attributes(attributes, limits, "resource")
    warnings.extend(found)
    return make_resource(attributes)


def scope_from_pb(pb: InstrumentationScope, limits: Limits, warnings: list[str]) -> Scope:
    attributes = attributes_from_pb(pb.attributes) if pb.attributes else {}
    if attributes:
        attributes, _, found = limit_attributes(attributes, limits, f"scope {pb.name!r}")
        warnings.extend(found)
    return Scope(name=pb.name, version=pb.version, attributes=attributes)


def span_from_pb(pb: PbSpan, resource: Resource, scope: Scope) -> Span:
    """One protobuf span as a model span, unvalidated (``admit`` does that)."""
    kind = pb.kind
    status = pb.status
    code = status.code
    attributes = attributes_from_pb(pb.attributes) if pb.attributes else {}
    origin = _zipkin_origin(attributes) if ZIPKIN_ORIGIN_ATTRIBUTE in attributes else None
    # Positional arguments in model field order: keyword construction of this 19-field slots class
    # costs twice as much, ~0.7 µs a span. tests pin the order (test_model_field_order).
    return Span(
        pb.trace_id.hex(),
        pb.span_id.hex(),
        pb.name,
        pb.start_time_unix_nano,
        pb.end_time_unix_nano,
        resource,
        scope,
        pb.parent_span_id.hex(),
        _KINDS[kind] if 0 <= kind < len(_KINDS) else SpanKind.UNSPECIFIED,
        _STATUS_CODES[code] if 0 <= code < len(_STATUS_CODES) else StatusCode.UNSET,
        status.message,
        attributes,
        [_event_from_pb(event) for event in pb.events] if pb.events else [],
        [_link_from_pb(link) for link in pb.links] if pb.links else [],
        pb.trace_state,
        pb.flags,
        pb.dropped_attributes_count,
        pb.dropped_events_count,
        pb.dropped_links_count,
        origin,
    )


def _zipkin_origin(attributes: Attributes) -> ZipkinOrigin | None:
    """The origin the attribute carries, taken out of the attributes; one that is not ours stays."""
    text = attributes[ZIPKIN_ORIGIN_ATTRIBUTE]
    if not isinstance(text, str):
        return None
    try:
        origin = ZipkinOrigin.from_json(orjson.loads(text))
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
        return None
    del attributes[ZIPKIN_ORIGIN_ATTRIBUTE]
    return origin


def _event_from_pb(pb: Any) -> Event:
    attributes = attributes_from_pb(pb.attributes) if pb.attributes else {}
    return Event(pb.time_unix_nano, pb.name, attributes, pb.dropped_attributes_count)


def _link_from_pb(pb: Any) -> Link:
    attributes = attributes_from_pb(pb.attributes) if pb.attributes else {}
    return Link(pb.trace_id.hex(), pb.span_id.hex(), pb.trace_state, attributes, pb.dropped_attributes_count, pb.flags)


def attributes_from_pb(key_values: Any) -> Attributes:
    # Duplicate keys are invalid OTLP; the last one wins, as in the Collector's pdata map.
    out: Attributes = {}
    for kv in key_values:
        value = kv.value
        # WhichOneof costs as much as two field reads, so try the common types first: in a oneof, a
        # non-empty string (or non-zero int) can only be there because that member is the one set.
        text = value.string_value
        if text:
            out[kv.key] = text
            continue
        number = value.int_value
        out[kv.key] = number if number else value_from_pb(value)
    return out


def value_from_pb(value: AnyValue) -> AttrValue:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind in _SCALAR_FIELDS:
        return getattr(value, kind)  # type: ignore[no-any-return]
    if kind == "array_value":
        return [value_from_pb(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value_from_pb(kv.value) for kv in value.kvlist_value.values}
    # Unset, or string_value_strindex (profiles only; the spec says to treat it as absent).
    return None


# ------------------------------------------------------------------------------- re-framing by trace

_T = TypeVar("_T")
# trace id, resource index, scope index, the span's message (or its bytes, when vetting serialised it)
_Kept = tuple[str, int, int, PbSpan | bytes]
# Tags of the length-delimited fields written below (field number << 3 | 2), the same in
# ExportTraceServiceRequest.resource_spans, ResourceSpans.{resource, scope_spans, schema_url}
# and ScopeSpans.{scope, spans, schema_url}.
_FIELD_1, _FIELD_2, _FIELD_3 = b"\x0a", b"\x12", b"\x1a"


class OtlpTraceMessages:
    """The accepted spans of one request as an ``ExportTraceServiceRequest`` per trace, framed from the
    request's own messages: each span is serialised once by upb and wrapped with its resource and
    scope by hand, about a fifth of the cost of encoding the model spans again. Decoding a message
    gives the same spans as decoding the request did (same resource, scope and span bytes)."""

    def __init__(self, resource_spans: Sequence[ResourceSpans], kept: list[_Kept]):
        self._resource_spans = resource_spans
        self._kept = kept
        self._resources: dict[int, bytes] = {}
        self._scopes: dict[tuple[int, int], bytes] = {}

    def messages(self, max_bytes: int) -> Iterator[tuple[str, bytes, int]]:
        """(trace id, message, span count); a trace bigger than ``max_bytes`` is split in halves."""
        by_trace: dict[str, list[tuple[int, int, bytes]]] = {}
        for trace_id, r_index, s_index, pb_span in self._kept:
            entry = (r_index, s_index, pb_span if isinstance(pb_span, bytes) else pb_span.SerializeToString())
            group = by_trace.get(trace_id)
            if group is None:
                by_trace[trace_id] = [entry]
            else:
                group.append(entry)
        for trace_id, spans in by_trace.items():
            yield from _fitted(trace_id, spans, self._frame, max_bytes)

    def _frame(self, spans: list[tuple[int, int, bytes]]) -> bytes:
        """Spans in request order, so those of one resource (and one scope) are consecutive."""
        out: list[bytes] = []
        resource_parts: list[bytes] = []
        scope_parts: list[bytes] = []
        current_r, current_s = -1, -1
        for r_index, s_index, data in spans:
            if r_index != current_r or s_index != current_s:
                if scope_parts:
                    resource_parts.append(_length_delimited(_FIELD_2, b"".join(scope_parts)))
                    scope_parts = []
                if r_index != current_r:
                    if resource_parts:
                        out.append(self._resource_message(current_r, resource_parts))
                    resource_parts = []
                current_r, current_s = r_index, s_index
                scope_parts.append(self._scope_head(r_index, s_index))
            scope_parts.append(_length_delimited(_FIELD_2, data))
        resource_parts.append(_length_delimited(_FIELD_2, b"".join(scope_parts)))
        out.append(self._resource_message(current_r, resource_parts))
        return b"".join(out)

    def _resource_message(self, r_index: int, scope_spans: list[bytes]) -> bytes:
        head = self._resources.get(r_index)
        if head is None:
            rs = self._resource_spans[r_index]
            head = _length_delimited(_FIELD_1, rs.resource.SerializeToString())
            if rs.schema_url:
                head += _length_delimited(_FIELD_3, rs.schema_url.encode())
            self._resources[r_index] = head
        return _length_delimited(_FIELD_1, head + b"".join(scope_spans))

    def _scope_head(self, r_index: int, s_index: int) -> bytes:
        """The scope field and the schema URL (protobuf allows fields in any order)."""
        key = (r_index, s_index)
        head = self._scopes.get(key)
        if head is None:
            ss = self._resource_spans[r_index].scope_spans[s_index]
            head = _length_delimited(_FIELD_1, ss.scope.SerializeToString())
            if ss.schema_url:
                head += _length_delimited(_FIELD_3, ss.schema_url.encode())
            self._scopes[key] = head
        return head


class SpanTraceMessages:
    """``PerTraceMessages`` for model spans (any codec's): one ``ExportTraceServiceRequest`` per trace."""

    def __init__(self, spans: Sequence[Span]):
        self._spans = spans

    def messages(self, max_bytes: int) -> Iterator[tuple[str, bytes, int]]:
        by_trace: dict[str, list[Span]] = {}
        for span in self._spans:
            by_trace.setdefault(span.trace_id, []).append(span)
        for trace_id, spans in by_trace.items():
            yield from _fitted(trace_id, spans, encode_export_request, max_bytes)


def _fitted(
    trace_id: str, items: list[_T], frame: Callable[[list[_T]], bytes], max_bytes: int
) -> Iterator[tuple[str, bytes, int]]:
    """``frame(items)`` as one message, or in halves until each fits (a lone span goes as it is)."""
    message = frame(items)
    if len(message) <= max_bytes or len(items) == 1:
        yield trace_id, message, len(items)
        return
    half = len(items) // 2
    yield from _fitted(trace_id, items[:half], frame, max_bytes)
    yield from _fitted(trace_id, items[half:], frame, max_bytes)


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    size = len(payload)
    if size < 0x80:
        return tag + bytes((size,)) + payload
    varint = bytearray()
    while size > 0x7F:
        varint.append((size & 0x7F) | 0x80)
        size >>= 7
    varint.append(size)
    return tag + bytes(varint) + payload


# ---------------------------------------------------------------------------------------------- encode


def spans_to_resource_spans(spans: Sequence[Span], with_zipkin_origin: bool = False) -> list[ResourceSpans]:
    """Spans as OTLP ``ResourceSpans``, one per shared Resource object, one ScopeSpans per shared Scope.

    Every resource carries ``service.name``; every span gets a scope and a status message, even empty.
    ``with_zipkin_origin``: a span sent through Zipkin carries how it was sent (only to Kafka; the read
    APIs show the span as the model has it).
    """
    out: list[ResourceSpans] = []
    for resource, scope_groups in group_spans(spans):
        rs = ResourceSpans()
        _fill_key_values(rs.resource.attributes, resource_attributes_with_service(resource))
        for scope, scope_spans in scope_groups:
            ss = rs.scope_spans.add()
            ss.scope.name = scope.name
            ss.scope.version = scope.version
            _fill_key_values(ss.scope.attributes, scope.attributes.items())
            pb_spans = ss.spans
            for span in scope_spans:
                _fill_span(pb_spans.add(), span, with_zipkin_origin)
        out.append(rs)
    return out


def encode_traces_data(spans: Sequence[Span]) -> bytes:
    """Spans as a serialized OTLP ``TracesData`` (the OTLP file/Tempo payload)."""
    data = TracesData()
    data.resource_spans.extend(spans_to_resource_spans(spans))
    return data.SerializeToString()  # type: ignore[no-any-return]


def encode_export_request(spans: Sequence[Span]) -> bytes:
    """Spans as a serialized ``ExportTraceServiceRequest``: the canonical Kafka message encoding.

    ``decode_export_request`` gives back equal spans for anything a decoder produced.
    """
    request = ExportTraceServiceRequest()
    request.resource_spans.extend(spans_to_resource_spans(spans, with_zipkin_origin=True))
    return request.SerializeToString()  # type: ignore[no-any-return]


def _fill_span(pb: Any, span: Span, with_zipkin_origin: bool = False) -> None:
    pb.trace_id = bytes.fromhex(span.trace_id)
    pb.span_id = bytes.fromhex(span.span_id)
    if span.parent_span_id:
        pb.parent_span_id = bytes.fromhex(span.parent_span_id)
    if span.trace_state:
        pb.trace_state = span.trace_state
    pb.flags = span.flags
    pb.name = span.name
    pb.kind = span.kind
    pb.start_time_unix_nano = span.start_ns
    pb.end_time_unix_nano = span.end_ns
    if span.attributes:
        _fill_key_values(pb.attributes, span.attributes.items())
    if with_zipkin_origin and span.zipkin is not None:
        origin = orjson.dumps(span.zipkin.to_json()).decode()
        _fill_key_values(pb.attributes, ((ZIPKIN_ORIGIN_ATTRIBUTE, origin),))
    pb.dropped_attributes_count = span.dropped_attributes_count
    for event in span.events:
        pb_event = pb.events.add()
        pb_event.time_unix_nano = event.time_ns
        pb_event.name = event.name
        _fill_key_values(pb_event.attributes, event.attributes.items())
        pb_event.dropped_attributes_count = event.dropped_attributes_count
    pb.dropped_events_count = span.dropped_events_count
    for link in span.links:
        pb_link = pb.links.add()
        pb_link.trace_id = bytes.fromhex(link.trace_id)
        pb_link.span_id = bytes.fromhex(link.span_id)
        pb_link.trace_state = link.trace_state
        _fill_key_values(pb_link.attributes, link.attributes.items())
        pb_link.dropped_attributes_count = link.dropped_attributes_count
        pb_link.flags = link.flags
    pb.dropped_links_count = span.dropped_links_count
    status = pb.status
    status.SetInParent()
    status.code = span.status_code
    if span.status_message:
        status.message = span.status_message


def _fill_key_values(target: Any, items: Any) -> None:
    for key, value in items:
        kv = target.add()
        kv.key = key
        _fill_value(kv.value, value)


def _fill_value(target: Any, value: Any) -> None:
    # Exact type tests, not isinstance: cheaper, and bool must not be taken for int.
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif kind is bool:
        target.bool_value = value
    elif kind is int:
        if INT64_MIN <= value <= INT64_MAX:
            target.int_value = value
        else:
            # Only hand-made or JSON-parsed values can overflow int64; a double keeps the magnitude.
            target.double_value = float(value)
    elif kind is float:
        target.double_value = value
    elif kind is bytes:
        target.bytes_value = value
    elif kind is list:
        array = target.array_value
        array.SetInParent()
        for item in value:
            _fill_value(array.values.add(), item)
    elif kind is dict:
        kvlist = target.kvlist_value
        kvlist.SetInParent()
        _fill_key_values(kvlist.values, value.items())
    # None stays an empty AnyValue, which decodes back to None.
