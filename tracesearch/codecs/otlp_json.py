"""OTLP/JSON traces (the protobuf JSON mapping with OTLP's changes: hex ids, integer enums, int64 strings).

Decoding reuses the protobuf path: each span object is handed to ``json_format.ParseDict`` (which already
accepts camelCase and snake_case keys, enum names or numbers, int64 as strings or numbers, base64
bytes and "NaN"/"Infinity" doubles), after the hex ids have been re-spelt in the base64 that ParseDict
expects. Parsing span by span keeps exact paths in error messages, and lets a span with a bad id be
rejected on its own instead of failing the whole request.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Sequence
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from tracesearch.admission import Limits, admit
from tracesearch.codecs.common import group_spans, json_error_text, resource_attributes_with_service
from tracesearch.codecs.errors import DecodeError
from tracesearch.codecs.otlp_proto import resource_from_pb, scope_from_pb, span_from_pb
from tracesearch.model import AttrValue, DecodedBatch, Event, Link, Rejection, Resource, Scope, Span

_SPAN_ID_KEYS = (("traceId", "trace_id"), ("spanId", "span_id"), ("parentSpanId", "parent_span_id"))
_LINK_ID_KEYS = (("traceId", "trace_id"), ("spanId", "span_id"))
_PARSE_STEP = re.compile(r"Failed to parse (\w+) field: ")
JsonObject = dict[str, Any]


# ---------------------------------------------------------------------------------------------- decode


def decode_export_request(body: bytes, limits: Limits) -> DecodedBatch:
    """Decode an OTLP/JSON ``ExportTraceServiceRequest`` body.

    Raises ``DecodeError`` for invalid JSON or UTF-8, a body that is not an object, or a value of the
    wrong type anywhere; a span with a malformed id is rejected on its own.
    """
    doc = _load(body)
    if not isinstance(doc, dict):
        raise DecodeError(f"an OTLP/JSON request must be a JSON object, got {_json_type(doc)}")
    batch = DecodedBatch()
    for r_index, rs in enumerate(_list(doc, ("resourceSpans", "resource_spans"), "")):
        _decode_resource_spans(rs, f"resourceSpans[{r_index}]", limits, batch)
    return batch


def _load(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson reports the byte position; keep its wording (it says "not valid UTF-8" where relevant).
        raise DecodeError(json_error_text(exc)) from exc


def _decode_resource_spans(rs: Any, path: str, limits: Limits, batch: DecodedBatch) -> None:
    rs = _object(rs, path)
    if "instrumentationLibrarySpans" in rs:
        batch.warnings.append(f"{path}: ignored instrumentationLibrarySpans (pre-1.0 OTLP), send scopeSpans")
    pb_resource = _parse(rs.get("resource"), PbResource(), f"{path}.resource")
    resource = resource_from_pb(pb_resource, limits, batch.warnings)
    for s_index, ss in enumerate(_list(rs, ("scopeSpans", "scope_spans"), path)):
        s_path = f"{path}.scopeSpans[{s_index}]"
        ss = _object(ss, s_path)
        pb_scope = _parse(ss.get("scope"), InstrumentationScope(), f"{s_path}.scope")
        scope = scope_from_pb(pb_scope, limits, batch.warnings)
        for index, span in enumerate(_list(ss, ("spans",), s_path)):
            where = f"{s_path}.spans[{index}]"
            span = _object(span, where)
            problem = _hex_ids_to_base64(span)
            if problem:
                batch.rejected.append(Rejection(where, problem))
                continue
            admit(batch, span_from_pb(_parse(span, PbSpan(), where), resource, scope), where, limits)


def _hex_ids_to_base64(span: JsonObject) -> str | None:
    """Re-spell hex ids as base64 in place (ParseDict's bytes format); the problem with them, if any.

    Passing hex straight to ParseDict would be wrong silently: hex digits are base64 letters, so a
    32-char hex id base64-decodes into 24 wrong bytes.
    """
    problem = _respell(span, _SPAN_ID_KEYS, "")
    if problem:
        return problem
    links = span.get("links")
    if isinstance(links, list):
        for index, link in enumerate(links):
            if isinstance(link, dict):
                problem = _respell(link, _LINK_ID_KEYS, f"links[{index}].")
                if problem:
                    return problem
    return None


def _respell(obj: JsonObject, keys: tuple[tuple[str, str], ...], prefix: str) -> str | None:
    for camel, snake in keys:
        for key in (camel, snake):
            value = obj.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                return f"{prefix}{camel} must be a hex string, got {_json_type(value)}"
            try:
                # unhexlify, unlike bytes.fromhex, refuses spaces; it takes either letter case.
                raw = binascii.unhexlify(value)
            except (binascii.Error, ValueError):
                return f"{prefix}{camel} {value[:64]!r} is not valid hex"
            obj[key] = base64.b64encode(raw).decode("ascii")
    return None


def _parse(obj: Any, message: Any, path: str) -> Any:
    if obj is None:
        return message
    try:
        return json_format.ParseDict(obj, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        field, reason = _split_parse_error(str(exc))
        raise DecodeError(reason, f"{path}.{field}" if field else path) from exc
    except RecursionError as exc:  # belt and braces: ParseDict's own depth limit should come first
        raise DecodeError("value nested too deeply", path) from exc


def _split_parse_error(message: str) -> tuple[str, str]:
    """ParseDict says "Failed to parse a field: Failed to parse b field: why"; make that "a.b", "why"."""
    fields = _PARSE_STEP.findall(message)
    # Each nesting level appends a "." to the message; keep one sentence.
    reason = _PARSE_STEP.sub("", message).rstrip(".")
    field = ".".join(fields)
    if len(field) > 200:
        field = f"{field[:100]}...{field[-60:]}"
    return field, reason


def _list(obj: JsonObject, keys: tuple[str, ...], path: str) -> list[Any]:
    for key in keys:
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            where = f"{path}.{keys[0]}" if path else keys[0]
            raise DecodeError(f"expected a JSON array, got {_json_type(value)}", where)
        return value
    return []


def _object(value: Any, path: str) -> JsonObject:
    if not isinstance(value, dict):
        raise DecodeError(f"expected a JSON object, got {_json_type(value)}", path)
    return value


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


# ---------------------------------------------------------------------------------------------- encode


def encode_traces_json(spans: Sequence[Span]) -> JsonObject:
    """Spans as an OTLP/JSON ``TracesData`` object: camelCase, hex ids, integer enums, int64 as strings.

    This is what Tempo's trace-by-id and Jaeger's api_v3 return inside their envelopes.
    """
    resource_spans = []
    for resource, scope_groups in group_spans(spans):
        resource_spans.append(
            {
                "resource": _resource_json(resource),
                "scopeSpans": [
                    {"scope": _scope_json(scope), "spans": [_span_json(span) for span in group]}
                    for scope, group in scope_groups
                ],
            }
        )
    return {"resourceSpans": resource_spans}


def _resource_json(resource: Resource) -> JsonObject:
    return {"attributes": [_kv_json(key, value) for key, value in resource_attributes_with_service(resource)]}


def _scope_json(scope: Scope) -> JsonObject:
    out: JsonObject = {"name": scope.name}
    if scope.version:
        out["version"] = scope.version
    if scope.attributes:
        out["attributes"] = _attributes_json(scope.attributes)
    return out


def _span_json(span: Span) -> JsonObject:
    out: JsonObject = {"traceId": span.trace_id, "spanId": span.span_id}
    if span.trace_state:
        out["traceState"] = span.trace_state
    if span.parent_span_id:
        out["parentSpanId"] = span.parent_span_id
    if span.flags:
        out["flags"] = span.flags
    out["name"] = span.name
    out["kind"] = int(span.kind)
    out["startTimeUnixNano"] = str(span.start_ns)
    out["endTimeUnixNano"] = str(span.end_ns)
    if span.attributes:
        out["attributes"] = _attributes_json(span.attributes)
    if span.dropped_attributes_count:
        out["droppedAttributesCount"] = span.dropped_attributes_count
    if span.events:
        out["events"] = [_event_json(event) for event in span.events]
    if span.dropped_events_count:
        out["droppedEventsCount"] = span.dropped_events_count
    if span.links:
        out["links"] = [_link_json(link) for link in span.links]
    if span.dropped_links_count:
        out["droppedLinksCount"] = span.dropped_links_count
    status: JsonObject = {}
    if span.status_code:
        status["code"] = int(span.status_code)
    if span.status_message:
        status["message"] = span.status_message
    out["status"] = status
    return out


def _event_json(event: Event) -> JsonObject:
    out: JsonObject = {"timeUnixNano": str(event.time_ns), "name": event.name}
    if event.attributes:
        out["attributes"] = _attributes_json(event.attributes)
    if event.dropped_attributes_count:
        out["droppedAttributesCount"] = event.dropped_attributes_count
    return out


def _link_json(link: Link) -> JsonObject:
    out: JsonObject = {"traceId": link.trace_id, "spanId": link.span_id}
    if link.trace_state:
        out["traceState"] = link.trace_state
    if link.attributes:
        out["attributes"] = _attributes_json(link.attributes)
    if link.dropped_attributes_count:
        out["droppedAttributesCount"] = link.dropped_attributes_count
    if link.flags:
        out["flags"] = link.flags
    return out


def _attributes_json(attributes: dict[str, AttrValue]) -> list[JsonObject]:
    return [_kv_json(key, value) for key, value in attributes.items()]


def _kv_json(key: str, value: AttrValue) -> JsonObject:
    return {"key": key, "value": any_value_json(value)}


def any_value_json(value: AttrValue) -> JsonObject:
    """One attribute value as an OTLP/JSON ``AnyValue`` object."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value if math.isfinite(value) else _non_finite(value)}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value_json(item) for item in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [_kv_json(k, v) for k, v in value.items()]}}
    return {}


def _non_finite(value: float) -> str:
    # JSON has no literal for these; proto3 JSON spells them as strings.
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
