"""Traces in the Jaeger UI JSON model (what ``GET /api/traces/{id}`` puts in ``data[]``).

The span mapping is the OTel Collector's OTLP → Jaeger translator (``traces_to_jaegerproto.go``); the JSON
spelling is Jaeger's ``uimodel``: microsecond times, typed tags, deduplicated processes ``p1``, ``p2``...
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import Any

import orjson

from tracesearch.codecs.common import attribute_json
from tracesearch.model import AttrValue, Event, Resource, Span, SpanKind, StatusCode, short_trace_id

JsonObject = dict[str, Any]
# Integers beyond this lose precision in JavaScript, so the UI model prints them as strings.
_MAX_SAFE_INT = 2**53 - 1


def trace_to_jaeger(spans: Sequence[Span], warnings: Sequence[str] = ()) -> JsonObject:
    """One trace as a Jaeger UI trace object, spans sorted by start time. ``warnings`` go on the trace and
    on its first span too: Grafana's Jaeger data source and Jaeger's UI show span warnings only."""
    ordered = sorted(spans, key=lambda span: span.start_ns)
    processes = _Processes()
    out_spans = [span_to_jaeger(span, processes.id_for(span.resource)) for span in ordered]
    if warnings and out_spans:
        out_spans[0]["warnings"] = list(warnings)
    return {
        "traceID": short_trace_id(ordered[0].trace_id) if ordered else "",
        "spans": out_spans,
        "processes": processes.by_id,
        "warnings": list(warnings) or None,
    }


class _Processes:
    """Jaeger processes keyed ``p1``, ``p2``... one per distinct (service name, resource attributes)."""

    def __init__(self) -> None:
        self.by_id: dict[str, JsonObject] = {}
        self._id_by_content: dict[bytes, str] = {}
        self._id_by_resource: dict[int, str] = {}

    def id_for(self, resource: Resource) -> str:
        # Spans of one batch share their Resource object: look the object up before its content.
        process_id = self._id_by_resource.get(id(resource))
        if process_id is None:
            process = resource_to_process(resource)
            content = orjson.dumps(process)
            process_id = self._id_by_content.get(content)
            if process_id is None:
                process_id = self._id_by_content[content] = f"p{len(self.by_id) + 1}"
                self.by_id[process_id] = process
            self._id_by_resource[id(resource)] = process_id
        return process_id


def resource_to_process(resource: Resource) -> JsonObject:
    tags = [jaeger_tag(key, value) for key, value in resource.attributes.items() if key != "service.name"]
    return {"serviceName": resource.service_name, "tags": tags}


def span_to_jaeger(span: Span, process_id: str) -> JsonObject:
    return {
        "traceID": short_trace_id(span.trace_id),
        "spanID": span.span_id,
        "operationName": span.name,
        "references": _references(span),
        "startTime": span.start_ns // 1000,
        "duration": (span.end_ns - span.start_ns) // 1000,
        "tags": span_to_jaeger_tags(span),
        "logs": [_log(event) for event in span.events],
        "processID": process_id,
        "warnings": None,
    }


def _references(span: Span) -> list[JsonObject]:
    # The parent goes first: Jaeger and Grafana take the first CHILD_OF reference as the parent.
    refs: list[JsonObject] = []
    trace_id = short_trace_id(span.trace_id)
    if span.parent_span_id:
        refs.append({"refType": "CHILD_OF", "traceID": trace_id, "spanID": span.parent_span_id})
    for link in span.links:
        ref_type = "CHILD_OF" if link.attributes.get("opentracing.ref_type") == "child_of" else "FOLLOWS_FROM"
        if span.parent_span_id and link.trace_id == span.trace_id and link.span_id == span.parent_span_id:
            refs[0]["refType"] = ref_type  # a link to the parent only says what kind of parent it is
            continue
        refs.append({"refType": ref_type, "traceID": short_trace_id(link.trace_id), "spanID": link.span_id})
    return refs


def span_to_jaeger_tags(span: Span) -> list[JsonObject]:
    """Span tags in the Collector's order: scope, attributes, kind, status, error, description, tracestate."""
    tags: list[JsonObject] = []
    if span.scope.name:
        tags.append(_string_tag("otel.scope.name", span.scope.name))
    if span.scope.version:
        tags.append(_string_tag("otel.scope.version", span.scope.version))
    tags.extend(jaeger_tag(key, value) for key, value in span.attributes.items())
    if span.kind != SpanKind.UNSPECIFIED:
        tags.append(_string_tag("span.kind", span.kind.label))
    if span.status_code != StatusCode.UNSET:
        tags.append(_string_tag("otel.status_code", span.status_code.name))
    if span.status_code == StatusCode.ERROR:
        # A bool error=true is what paints the span red in the Jaeger UI and Grafana's trace view.
        tags.append({"key": "error", "type": "bool", "value": True})
    if span.status_message:
        tags.append(_string_tag("otel.status_description", span.status_message))
    if span.trace_state:
        tags.append(_string_tag("w3c.tracestate", span.trace_state))
    return tags


def _log(event: Event) -> JsonObject:
    fields: list[JsonObject] = []
    if event.name and "event" not in event.attributes:
        fields.append(_string_tag("event", event.name))
    fields.extend(jaeger_tag(key, value) for key, value in event.attributes.items())
    return {"timestamp": event.time_ns // 1000, "fields": fields}


def _string_tag(key: str, value: str) -> JsonObject:
    return {"key": key, "type": "string", "value": value}


def jaeger_tag(key: str, value: AttrValue) -> JsonObject:
    """One attribute as a typed Jaeger key/value (arrays and kvlists as JSON text)."""
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        safe = -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
        return {"key": key, "type": "int64", "value": value if safe else str(value)}
    if isinstance(value, float):
        # JSON has no NaN or Infinity; the UI shows the string just as well.
        return {"key": key, "type": "float64", "value": value if math.isfinite(value) else str(value)}
    if isinstance(value, bytes):
        return {"key": key, "type": "binary", "value": base64.b64encode(value).decode("ascii")}
    if value is None:
        return {"key": key, "type": "string", "value": ""}
    return {"key": key, "type": "string", "value": attribute_json(value)}
