"""Tempo's wire shapes, as Grafana's Tempo data source decodes them (pure functions).

Trace by id: ``tempopb.Trace`` is wire-identical to OTLP ``TracesData`` (field 1 = repeated
ResourceSpans), and ``tempopb.TraceByIDResponse`` (``codecs.tempopb``) wraps it as field 1.

Search: ``tempopb.SearchResponse`` as JSON. Recent Grafana decodes it strictly (an unknown field
fails the query), so only fields of Tempo's own schema are emitted; 64-bit integers are strings,
as gogo jsonpb writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracesearch.codecs.otlp_json import any_value_json, encode_traces_json
from tracesearch.codecs.otlp_proto import encode_traces_data, spans_to_resource_spans
from tracesearch.codecs.tempopb import PARTIAL, TraceByIDResponse
from tracesearch.model import AttrValue, Span, StatusCode
from tracesearch.query.search_results import FoundSpanSet, FoundTrace, SearchResult
from tracesearch.query.span_aggregation import MetricsResult

JsonObject = dict[str, Any]
NS_PER_MS = 1_000_000


def trace_v1_protobuf(spans: Sequence[Span]) -> bytes:
    """``tempopb.Trace`` (``GET /api/traces/{id}`` with ``Accept: application/protobuf``)."""
    return encode_traces_data(spans)


def trace_v2_protobuf(spans: Sequence[Span], partial_message: str = "") -> bytes:
    """``tempopb.TraceByIDResponse{trace=1}``: a whole trace (``status`` COMPLETE, the default), or with
    ``partial_message`` a cut one (``status`` PARTIAL, ``message``), as Tempo answers a trace over its
    ``max_bytes_per_trace``."""
    response = TraceByIDResponse()
    response.trace.resource_spans.extend(spans_to_resource_spans(spans))
    if partial_message:
        response.status = PARTIAL
        response.message = partial_message
    return response.SerializeToString()  # type: ignore[no-any-return]


def trace_v2_json(spans: Sequence[Span], partial_message: str = "") -> JsonObject:
    """The same as JSON (jsonpb: the enum by name, COMPLETE left out as a default)."""
    body: JsonObject = {"trace": encode_traces_json(spans), "metrics": {}}
    if partial_message:
        body.update(status="PARTIAL", message=partial_message)
    return body


def key_value(key: str, value: AttrValue) -> JsonObject:
    return {"key": key, "value": any_value_json(value)}


def root_span(trace: Sequence[Span]) -> Span | None:
    """The span without a parent; else the earliest span whose parent is not in the trace."""
    ids = {s.span_id for s in trace}
    roots = [s for s in trace if not s.parent_span_id] or [s for s in trace if s.parent_span_id not in ids]
    return min(roots, key=lambda s: s.start_ns) if roots else None


def _span_json(span: Span, attributes: dict[str, AttrValue]) -> JsonObject:
    out: JsonObject = {
        "spanID": span.span_id,
        "name": span.name,
        "startTimeUnixNano": str(span.start_ns),
        "durationNanos": str(span.end_ns - span.start_ns),
    }
    if attributes:
        out["attributes"] = [key_value(k, v) for k, v in attributes.items()]
    return out


def _spanset_json(found: FoundSpanSet) -> JsonObject:
    out: JsonObject = {
        "spans": [_span_json(s, found.span_attributes.get(s.span_id, {})) for s in found.spans],
        "matched": found.matched,
    }
    if found.attributes:
        out["attributes"] = [key_value(k, v) for k, v in found.attributes.items()]
    return out


def _service_stats(trace: Sequence[Span]) -> JsonObject:
    stats: dict[str, JsonObject] = {}
    for span in trace:
        entry = stats.setdefault(span.service_name, {"spanCount": 0})
        entry["spanCount"] += 1
        if span.status_code is StatusCode.ERROR:
            entry["errorCount"] = entry.get("errorCount", 0) + 1
    return stats


def trace_metadata(found: FoundTrace) -> JsonObject:
    trace = found.trace
    start = min(s.start_ns for s in trace)
    duration_ms = (max(s.end_ns for s in trace) - start) // NS_PER_MS
    root = root_span(trace)
    out: JsonObject = {
        "traceID": trace[0].trace_id,
        "rootServiceName": root.service_name if root else "<root span not yet received>",
        "startTimeUnixNano": str(start),
    }
    if root is not None and root.name:
        out["rootTraceName"] = root.name
    if duration_ms:
        out["durationMs"] = duration_ms
    spansets = [_spanset_json(s) for s in found.spansets]
    if spansets:
        # Grafana's backend reads the deprecated single spanSet first, then spanSets.
        out["spanSet"] = spansets[0]
        out["spanSets"] = spansets
    out["serviceStats"] = _service_stats(trace)
    return out


def search_response(result: SearchResult) -> JsonObject:
    """``SearchResponse``; an incomplete search (a limit cut the candidates) reports fewer
    completed jobs than jobs, the only place Tempo's schema has for it."""
    return {
        "traces": [trace_metadata(t) for t in result.traces],
        "metrics": {
            "inspectedTraces": result.inspected_traces,
            "inspectedSpans": str(result.inspected_spans),
            "totalJobs": 2 if not result.complete else 1,
            "completedJobs": 1,
        },
    }


def _labels(labels: tuple[tuple[str, str], ...]) -> list[JsonObject]:
    return [{"key": k, "value": {"stringValue": v}} for k, v in labels]


def metrics_response(result: MetricsResult) -> JsonObject:
    """``QueryRangeResponse`` (samples per series) or, for an instant query, one value per series."""
    series = []
    for one in result.series:
        if result.instant:
            series.append({"labels": _labels(one.labels), "value": one.value})
        else:
            samples = [{"timestampMs": str(ms), "value": value} for ms, value in one.samples]
            series.append({"labels": _labels(one.labels), "samples": samples})
    return {"series": series, "metrics": {}}
