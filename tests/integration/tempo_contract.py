"""What Grafana's Tempo data source can decode: the protobuf trace-by-id body and the strict JSON
schema of ``tempopb.SearchResponse`` (recent Grafana fails a query on any unknown field)."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.trace.v1 import trace_pb2


def _trace_by_id_response_class() -> Any:
    """``tempopb.TraceByIDResponse`` built from its field list (tempo.proto): trace = 1 (wire-identical
    to OTLP TracesData), metrics = 2, status = 3 (enum COMPLETE/PARTIAL), message = 4. Declared here
    on its own, not taken from ``tracesearch.codecs.tempopb``, so that a mistake there shows."""
    pool = descriptor_pool.Default()
    name = "tracesearch_test/tempo_trace_by_id.proto"
    try:
        pool.FindFileByName(name)
    except KeyError:
        proto = descriptor_pb2.FileDescriptorProto(
            name=name, package="tempopb_test", dependency=[trace_pb2.DESCRIPTOR.name], syntax="proto3"
        )
        enum = proto.enum_type.add(name="PartialStatus")
        enum.value.add(name="COMPLETE", number=0)
        enum.value.add(name="PARTIAL", number=1)
        message = proto.message_type.add(name="TraceByIDResponse")
        field = descriptor_pb2.FieldDescriptorProto
        message.field.add(
            name="trace",
            number=1,
            type=field.TYPE_MESSAGE,
            type_name=".opentelemetry.proto.trace.v1.TracesData",
            label=field.LABEL_OPTIONAL,
        )
        message.field.add(
            name="status",
            number=3,
            type=field.TYPE_ENUM,
            type_name=".tempopb_test.PartialStatus",
            label=field.LABEL_OPTIONAL,
        )
        message.field.add(name="message", number=4, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tempopb_test.TraceByIDResponse"))


TraceByIDResponse = _trace_by_id_response_class()

# Field names of tempopb's JSON messages (tempo.proto / common.proto), as Grafana vendors them.
SCHEMA: dict[str, set[str]] = {
    "SearchResponse": {"traces", "metrics"},
    "TraceSearchMetadata": {
        "traceID",
        "rootServiceName",
        "rootTraceName",
        "startTimeUnixNano",
        "durationMs",
        "spanSet",
        "spanSets",
        "serviceStats",
    },
    "SpanSet": {"spans", "matched", "attributes"},
    "Span": {"spanID", "name", "startTimeUnixNano", "durationNanos", "attributes"},
    "KeyValue": {"key", "value"},
    "AnyValue": {"stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue", "bytesValue"},
    "ServiceStats": {"spanCount", "errorCount"},
    "SearchMetrics": {
        "inspectedTraces",
        "inspectedBytes",
        "totalBlocks",
        "completedJobs",
        "totalJobs",
        "totalBlockBytes",
        "inspectedSpans",
    },
}


def _check(obj: Any, kind: str, path: str, problems: list[str]) -> None:
    if not isinstance(obj, dict):
        problems.append(f"{path}: expected an object, got {type(obj).__name__}")
        return
    for key in obj:
        if key not in SCHEMA[kind]:
            problems.append(f"{path}.{key}: not a field of {kind}")


def _check_attributes(items: Any, path: str, problems: list[str]) -> None:
    for i, kv in enumerate(items or []):
        _check(kv, "KeyValue", f"{path}[{i}]", problems)
        _check(kv.get("value"), "AnyValue", f"{path}[{i}].value", problems)


def _check_spanset(spanset: Any, path: str, problems: list[str]) -> None:
    _check(spanset, "SpanSet", path, problems)
    _check_attributes(spanset.get("attributes"), f"{path}.attributes", problems)
    for i, span in enumerate(spanset.get("spans", [])):
        _check(span, "Span", f"{path}.spans[{i}]", problems)
        if not isinstance(span.get("startTimeUnixNano"), str) or not isinstance(span.get("durationNanos"), str):
            problems.append(f"{path}.spans[{i}]: uint64 fields must be JSON strings")
        _check_attributes(span.get("attributes"), f"{path}.spans[{i}].attributes", problems)


def search_schema_problems(body: Any) -> list[str]:
    """Every field outside tempopb's schema, with its path; [] when Grafana can decode the body."""
    problems: list[str] = []
    _check(body, "SearchResponse", "$", problems)
    _check(body.get("metrics", {}), "SearchMetrics", "$.metrics", problems)
    for i, trace in enumerate(body.get("traces", [])):
        path = f"$.traces[{i}]"
        _check(trace, "TraceSearchMetadata", path, problems)
        if not isinstance(trace.get("startTimeUnixNano"), str):
            problems.append(f"{path}.startTimeUnixNano: must be a JSON string")
        if "durationMs" in trace and not isinstance(trace["durationMs"], int):
            problems.append(f"{path}.durationMs: must be a number")
        if "spanSet" in trace:
            _check_spanset(trace["spanSet"], f"{path}.spanSet", problems)
        for j, spanset in enumerate(trace.get("spanSets", [])):
            _check_spanset(spanset, f"{path}.spanSets[{j}]", problems)
        for name, stats in (trace.get("serviceStats") or {}).items():
            _check(stats, "ServiceStats", f"{path}.serviceStats.{name}", problems)
    return problems
