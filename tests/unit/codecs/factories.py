"""Builders for codec tests: model spans, and OTLP protobuf requests made with the real generated classes."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tracesearch.model import Event, Link, Resource, Scope, Span, SpanKind, StatusCode

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"
PARENT_ID = "00f067aa0ba902b7"
START = 1_700_000_000_123_456_789
END = 1_700_000_000_373_456_789

# Every attribute type the model knows, including the awkward ones.
ALL_TYPES = {
    "s": "GET",
    "i": 503,
    "neg": -(2**63),
    "d": 0.25,
    "b": True,
    "f": False,
    "arr": ["a", 1, 2.5, True, None],
    "map": {"k": "v", "n": {"deep": [1, {"x": b"\x00"}]}},
    "raw": b"\xde\xad\xbe\xef",
    "empty_arr": [],
    "empty_map": {},
    "nothing": None,
    "nan": math.nan,
    "inf": -math.inf,
    "unicode": "héllo ✓",
}


def make_span(**overrides: Any) -> Span:
    span = Span(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        parent_span_id=PARENT_ID,
        name="GET /cart",
        start_ns=START,
        end_ns=END,
        resource=Resource({"service.name": "cart", "host.name": "web-1"}, "cart"),
        scope=Scope("io.example", "1.2", {"lib": "x"}),
        kind=SpanKind.SERVER,
        status_code=StatusCode.ERROR,
        status_message="upstream timeout",
        attributes={"http.request.method": "GET", "http.response.status_code": 503},
        events=[Event(START + 1000, "cache.miss", {"key": "cart:1"}, 2)],
        links=[Link("1" * 32, "2" * 16, "a=b", {"kind": "batch"}, 1, 1)],
        trace_state="congo=t61",
        flags=257,
        dropped_attributes_count=3,
        dropped_events_count=4,
        dropped_links_count=5,
    )
    return dataclasses.replace(span, **overrides)


def any_value(value: object) -> AnyValue:
    """A Python value as an OTLP AnyValue, built field by field (independent of the codec under test)."""
    out = AnyValue()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    elif isinstance(value, list):
        out.array_value.SetInParent()
        for item in value:
            out.array_value.values.append(any_value(item))
    elif isinstance(value, dict):
        out.kvlist_value.SetInParent()
        for key, item in value.items():
            out.kvlist_value.values.append(key_value(key, item))
    return out


def key_value(key: str, value: object) -> KeyValue:
    return KeyValue(key=key, value=any_value(value))


def request_with(spans: list[dict[str, object]], service: str | None = "cart") -> ExportTraceServiceRequest:
    """One resource, one scope, spans given as keyword dicts for the protobuf Span constructor."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    if service is not None:
        rs.resource.attributes.append(key_value("service.name", service))
    ss = rs.scope_spans.add()
    ss.scope.name = "io.example"
    for fields in spans:
        values = {
            "trace_id": bytes.fromhex(TRACE_ID),
            "span_id": bytes.fromhex(SPAN_ID),
            "name": "op",
            "start_time_unix_nano": START,
            "end_time_unix_nano": END,
        }
        values.update(fields)
        ss.spans.add(**values)
    return request
