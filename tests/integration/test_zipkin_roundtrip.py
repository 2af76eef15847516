"""A trace sent by the real OpenTelemetry Zipkin JSON exporter round-trips through the Jaeger API."""

from __future__ import annotations

import json
import uuid

import pytest
from opentelemetry.exporter.zipkin.json import ZipkinExporter

from tests.integration.conftest import Service
from tests.integration.otel_traces import ExportedTrace, end_ns, start_ns, three_service_trace


@pytest.fixture(scope="module")
def zipkin_trace(service: Service) -> tuple[ExportedTrace, str]:
    tag = f"zipkin-{uuid.uuid4().hex[:8]}"
    trace = three_service_trace(lambda: ZipkinExporter(endpoint=f"{service.url}/api/v2/spans"), tag)
    service.refresh()
    return trace, tag


def test_zipkin_spans_come_back_with_parents_times_and_services(
    service: Service, zipkin_trace: tuple[ExportedTrace, str]
) -> None:
    trace, _ = zipkin_trace
    answer = service.get(f"/api/traces/{trace.trace_id}")
    assert answer.status_code == 200, answer.text
    got = answer.json()["data"][0]
    by_id = {s["spanID"]: s for s in got["spans"]}
    assert len(by_id) == len(trace.spans)
    for sdk_span in trace.spans:
        span = by_id[f"{sdk_span.context.span_id:016x}"]
        assert span["operationName"] == sdk_span.name
        # Zipkin carries microseconds and the exporter rounds: start and duration within 1 µs.
        assert abs(span["startTime"] - start_ns(sdk_span) // 1000) <= 1
        assert abs(span["duration"] - (end_ns(sdk_span) - start_ns(sdk_span)) // 1000) <= 1
        parents = [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]
        assert parents == ([f"{sdk_span.parent.span_id:016x}"] if sdk_span.parent else [])
        assert got["processes"][span["processID"]]["serviceName"] == sdk_span.resource.attributes["service.name"]


def test_zipkin_error_and_tags_are_searchable(service: Service, zipkin_trace: tuple[ExportedTrace, str]) -> None:
    trace, tag = zipkin_trace
    for service_name, tags in (
        ("checkout", {"error": "true"}),
        ("frontend", {"http.request.method": "GET"}),
        ("frontend", {"_text": "concierge"}),
    ):
        found = service.get("/api/traces", service=service_name, tags=json.dumps({**tags, "test.run": tag}))
        assert [t["traceID"] for t in found.json()["data"]] == [trace.trace_id], tags
