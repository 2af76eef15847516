"""Spans as Zipkin v2 JSON (``POST /api/v2/spans``), mapped as OpenTelemetry's Zipkin exporters map them.

Resource attributes become tags beside the span's (Zipkin has no resource), the scope becomes
``otel.scope.name``/``otel.scope.version``, an error status ``otel.status_code=ERROR`` and ``error``, and
an event an annotation whose value is its name, or ``{"name":{attributes}}`` when it has attributes.
The bench encodes on its own, as ``bench.otlp`` does: the load must not depend on the code under test.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from tracesearch.model import Attributes, Span, SpanKind, StatusCode

CONTENT_TYPE = "application/json"
NS_PER_US = 1_000
_KINDS = {
    SpanKind.SERVER: "SERVER",
    SpanKind.CLIENT: "CLIENT",
    SpanKind.PRODUCER: "PRODUCER",
    SpanKind.CONSUMER: "CONSUMER",
}


def encode_request(spans: Sequence[Span]) -> bytes:
    return json.dumps([span_json(span) for span in spans], separators=(",", ":")).encode()


def span_json(span: Span) -> dict[str, object]:
    tags = {key: tag_value(value) for key, value in span.resource.attributes.items() if key != "service.name"}
    tags.update((key, tag_value(value)) for key, value in span.attributes.items())
    if span.scope.name:
        tags["otel.scope.name"] = span.scope.name
    if span.scope.version:
        tags["otel.scope.version"] = span.scope.version
    if span.status_code == StatusCode.ERROR:
        tags["otel.status_code"] = "ERROR"
        tags["error"] = span.status_message
    out: dict[str, object] = {
        "traceId": span.trace_id,
        "id": span.span_id,
        "name": span.name,
        "timestamp": span.start_ns // NS_PER_US,
        "duration": max(1, (span.end_ns - span.start_ns) // NS_PER_US),
        "localEndpoint": {"serviceName": span.resource.service_name},
        "tags": tags,
    }
    if span.parent_span_id:
        out["parentId"] = span.parent_span_id
    if span.kind in _KINDS:
        out["kind"] = _KINDS[span.kind]
    if span.events:
        out["annotations"] = [
            {"timestamp": event.time_ns // NS_PER_US, "value": _annotation(event.name, event.attributes)}
            for event in span.events
        ]
    return out


def tag_value(value: object) -> str:
    """Zipkin tags are strings: booleans lower-case, arrays as JSON, as the exporters write them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _annotation(name: str, attributes: Attributes) -> str:
    if not attributes:
        return name
    return json.dumps({name: attributes}, separators=(",", ":"))
