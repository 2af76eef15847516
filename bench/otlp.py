"""Spans as OTLP ``ExportTraceServiceRequest`` bodies, built with the opentelemetry-proto classes.

The bench has its own encoder rather than tracesearch's ``encode_export_request``: the load must look
like what an OpenTelemetry SDK sends (one ResourceSpans per service, one ScopeSpans each) and must
not depend on the code under test.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracesearch.model import Attributes, Resource, Span

CONTENT_TYPE = "application/x-protobuf"


def encode_request(spans: Sequence[Span]) -> bytes:
    request = ExportTraceServiceRequest()
    by_resource: dict[int, list[Span]] = {}
    resources: dict[int, Resource] = {}
    for span in spans:
        key = id(span.resource)
        by_resource.setdefault(key, []).append(span)
        resources[key] = span.resource
    for key, group in by_resource.items():
        rs = request.resource_spans.add()
        _fill_attributes(rs.resource.attributes, resources[key].attributes)
        ss = rs.scope_spans.add()
        ss.scope.name = group[0].scope.name
        ss.scope.version = group[0].scope.version
        out = ss.spans
        for span in group:
            _fill_span(out.add(), span)
    body: bytes = request.SerializeToString()
    return body


def _fill_span(pb: Any, span: Span) -> None:
    pb.trace_id = bytes.fromhex(span.trace_id)
    pb.span_id = bytes.fromhex(span.span_id)
    if span.parent_span_id:
        pb.parent_span_id = bytes.fromhex(span.parent_span_id)
    pb.name = span.name
    pb.kind = int(span.kind)
    pb.start_time_unix_nano = span.start_ns
    pb.end_time_unix_nano = span.end_ns
    _fill_attributes(pb.attributes, span.attributes)
    for event in span.events:
        pb_event = pb.events.add()
        pb_event.time_unix_nano = event.time_ns
        pb_event.name = event.name
        _fill_attributes(pb_event.attributes, event.attributes)
    if span.status_code or span.status_message:
        pb.status.code = int(span.status_code)
        pb.status.message = span.status_message


def _fill_attributes(target: Any, attributes: Attributes) -> None:
    for key, value in attributes.items():
        kv = target.add()
        kv.key = key
        _fill_value(kv.value, value)


def _fill_value(target: Any, value: object) -> None:
    # bool before int: True is an int too.
    if isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, list):
        values = target.array_value.values
        for item in value:
            _fill_value(values.add(), item)
    else:
        raise TypeError(f"the generator made an attribute value of type {type(value).__name__}")


def encode_all(batches: Iterable[Sequence[Span]]) -> list[bytes]:
    return [encode_request(batch) for batch in batches]
