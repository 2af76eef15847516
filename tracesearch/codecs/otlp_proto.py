"""OTLP/protobuf traces: ``ExportTraceServiceRequest`` in, ``TracesData``/``ExportTraceServiceRequest`` out.

The decoder is the ingest hot path. It walks the generated upb message objects once, builds one
``Resource`` per ResourceSpans and one ``Scope`` per ScopeSpans and shares them between the spans,
and reads each protobuf field once (upb builds a Python object per access, which is the main cost).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, TracesData
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from tracesearch.codecs.common import INT64_MAX, INT64_MIN, group_spans, resource_attributes_with_service
from tracesearch.codecs.errors import DecodeError
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
)
from tracesearch.validation import Limits, admit, limit_attributes, make_resource

# Tuple lookups are cheaper than calling the IntEnum per span; unknown numbers (proto3 enums are open)
# fall back to the "don't know" member rather than failing the span.
_KINDS = tuple(SpanKind)
_STATUS_CODES = tuple(StatusCode)
_SCALAR_FIELDS = frozenset({"string_value", "bool_value", "int_value", "double_value", "bytes_value"})

# ---------------------------------------------------------------------------------------------- decode


def decode_export_request(body: bytes, limits: Limits) -> DecodedBatch:
    """Decode an OTLP/protobuf ``ExportTraceServiceRequest`` body.

    Raises ``DecodeError`` when the body is not a valid message (truncated, corrupt, bad UTF-8 in a
    string, nested too deep). Span-level problems become ``Rejection``s in the result.
    """
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"cannot decode ExportTraceServiceRequest: {exc}") from exc
    return decode_resource_spans(request.resource_spans, limits)


def decode_resource_spans(resource_spans: Sequence[ResourceSpans], limits: Limits) -> DecodedBatch:
    """Map parsed ``ResourceSpans`` onto the model, validated and trimmed; paths as in the request."""
    batch = DecodedBatch()
    for r_index, rs in enumerate(resource_spans):
        resource = resource_from_pb(rs.resource, limits, batch.warnings)
        for s_index, ss in enumerate(rs.scope_spans):
            scope = scope_from_pb(ss.scope, limits, batch.warnings)
            prefix = f"resourceSpans[{r_index}].scopeSpans[{s_index}].spans["
            for index, pb_span in enumerate(ss.spans):
                admit(batch, span_from_pb(pb_span, resource, scope), f"{prefix}{index}]", limits)
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
        attributes_from_pb(pb.attributes) if pb.attributes else {},
        [_event_from_pb(event) for event in pb.events] if pb.events else [],
        [_link_from_pb(link) for link in pb.links] if pb.links else [],
        pb.trace_state,
        pb.flags,
        pb.dropped_attributes_count,
        pb.dropped_events_count,
        pb.dropped_links_count,
    )


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


# ---------------------------------------------------------------------------------------------- encode


def spans_to_resource_spans(spans: Sequence[Span]) -> list[ResourceSpans]:
    """Spans as OTLP ``ResourceSpans``, one per shared Resource object, one ScopeSpans per shared Scope.

    Every resource carries ``service.name``; every span gets a scope and a status message, even empty.
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
                _fill_span(pb_spans.add(), span)
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
    request.resource_spans.extend(spans_to_resource_spans(spans))
    return request.SerializeToString()  # type: ignore[no-any-return]


def _fill_span(pb: Any, span: Span) -> None:
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
