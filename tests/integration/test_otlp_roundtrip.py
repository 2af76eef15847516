"""A trace from the real OpenTelemetry SDK comes back whole and exact through the Jaeger API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as JsonExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as ProtoExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter

from tests.integration.conftest import Service
from tests.integration.otel_traces import LONG_NOTE, ExportedTrace, end_ns, start_ns, three_service_trace

EXPORTERS: dict[str, Callable[[str], Callable[[], SpanExporter]]] = {
    "protobuf": lambda url: lambda: ProtoExporter(endpoint=f"{url}/v1/traces"),
    "json": lambda url: lambda: JsonExporter(endpoint=f"{url}/v1/traces"),
}


@pytest.fixture(scope="module", params=sorted(EXPORTERS))
def exported(request: pytest.FixtureRequest, service: Service) -> tuple[ExportedTrace, str]:
    tag = f"run-{uuid.uuid4().hex[:8]}"
    trace = three_service_trace(EXPORTERS[request.param](service.url), tag)
    assert len(trace.spans) == 4 and len(trace.linked) == 1
    service.refresh()
    return trace, tag


def jaeger_trace(service: Service, trace_id: str) -> dict[str, Any]:
    answer = service.get(f"/api/traces/{trace_id}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["errors"] is None and len(body["data"]) == 1
    trace: dict[str, Any] = body["data"][0]
    return trace


def tags_of(span: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    return {t["key"]: (t["type"], t["value"]) for t in span["tags"]}


def test_every_span_comes_back_with_exact_times_and_parents(
    service: Service, exported: tuple[ExportedTrace, str]
) -> None:
    trace, _ = exported
    got = jaeger_trace(service, trace.trace_id)
    assert got["traceID"] == trace.trace_id
    by_id = {s["spanID"]: s for s in got["spans"]}
    assert len(by_id) == len(trace.spans)
    for sdk_span in trace.spans:
        span = by_id[f"{sdk_span.context.span_id:016x}"]
        assert span["operationName"] == sdk_span.name
        assert span["startTime"] == start_ns(sdk_span) // 1000
        assert span["duration"] == (end_ns(sdk_span) - start_ns(sdk_span)) // 1000
        parent = [r for r in span["references"] if r["refType"] == "CHILD_OF"]
        if sdk_span.parent is None:
            assert parent == []
        else:
            assert parent[0]["spanID"] == f"{sdk_span.parent.span_id:016x}"
        process = got["processes"][span["processID"]]
        assert process["serviceName"] == sdk_span.resource.attributes["service.name"]


def test_one_process_per_service(service: Service, exported: tuple[ExportedTrace, str]) -> None:
    trace, _ = exported
    got = jaeger_trace(service, trace.trace_id)
    names = sorted(p["serviceName"] for p in got["processes"].values())
    assert names == ["checkout", "frontend", "inventory"]
    frontend = next(p for p in got["processes"].values() if p["serviceName"] == "frontend")
    assert {"key": "host.name", "type": "string", "value": "frontend-1"} in frontend["tags"]


def test_typed_tags_events_status_and_links(service: Service, exported: tuple[ExportedTrace, str]) -> None:
    trace, _ = exported
    got = jaeger_trace(service, trace.trace_id)
    spans = {s["operationName"]: s for s in got["spans"]}
    root = tags_of(spans["GET /cart"])
    assert root["http.request.method"] == ("string", "GET")
    assert root["http.response.status_code"] == ("int64", 200)
    assert root["cart.total"] == ("float64", 12.5)
    assert root["feature.flag"] == ("bool", True)
    assert json.loads(root["cart.items"][1]) == ["apple", "pear"]
    assert root["span.kind"] == ("string", "server")
    assert root["otel.scope.name"] == ("string", "demo.frontend")
    log = spans["GET /cart"]["logs"][0]
    fields = {f["key"]: f["value"] for f in log["fields"]}
    assert fields["event"] == "cache.miss" and fields["cache.key"] == "cart:42" and fields["retry"] == 2
    sdk_event = trace.by_name("GET /cart").events[0]
    assert log["timestamp"] == sdk_event.timestamp // 1000

    failing = tags_of(spans["checkout"])
    assert failing["error"] == ("bool", True)
    assert failing["otel.status_description"] == ("string", "payment backend down")
    assert any(f["value"] == "exception" for lg in spans["checkout"]["logs"] for f in lg["fields"])

    reserve = spans["reserve"]
    follows = [r for r in reserve["references"] if r["refType"] == "FOLLOWS_FROM"]
    batch: ReadableSpan = trace.by_name("batch-import")
    assert [r["spanID"] for r in follows] == [f"{batch.context.span_id:016x}"]
    assert follows[0]["traceID"] == f"{batch.context.trace_id:032x}"


def search(svc: Service, **params: str | int) -> list[str]:
    answer = svc.get("/api/traces", **params)
    assert answer.status_code == 200, answer.text
    return [t["traceID"] for t in answer.json()["data"]]


def test_services_and_operations_are_listed(service: Service, exported: tuple[ExportedTrace, str]) -> None:
    services = service.get("/api/services").json()["data"]
    assert {"frontend", "checkout", "inventory"} <= set(services)
    operations = service.get("/api/services/checkout/operations").json()["data"]
    assert {"POST /checkout", "checkout"} <= set(operations)


@pytest.mark.parametrize(
    ("service_name", "tags", "found"),
    [
        ("frontend", {"http.request.method": "GET"}, True),
        ("frontend", {"http.request.method": "POST"}, False),
        ("checkout", {"http.response.status_code": ">=500"}, True),
        ("checkout", {"http.response.status_code": ">503"}, False),
        ("checkout", {"http.response.status_code": "503"}, True),
        ("inventory", {"db.rows": ">1000"}, True),
        ("inventory", {"db.rows": "<1000"}, False),
        ("inventory", {"inventory.ratio": "<=0.75"}, True),
        ("frontend", {"cart.total": "12.5"}, True),
        ("frontend", {"feature.flag": "true"}, True),
        ("frontend", {"cart.items": "pear"}, True),
        ("frontend", {"host.name": "frontend-1"}, True),
        ("frontend", {"cache.key": "cart:42"}, True),
        ("checkout", {"error": "true"}, True),
        ("frontend", {"error": "true"}, False),
        ("frontend", {"_text": "concierge"}, True),
        ("frontend", {"_text": "CONCIERGE doorbell"}, True),
        ("frontend", {"_text": "concierge helicopter"}, False),
        ("frontend", {"_text": '"nobody answers"'}, True),
        ("frontend", {"span.kind": "server"}, True),
    ],
)
def test_search_finds_the_whole_trace_by_tags(
    service: Service, exported: tuple[ExportedTrace, str], service_name: str, tags: dict[str, str], found: bool
) -> None:
    trace, tag = exported
    query = json.dumps({**tags, "test.run": tag})
    answer = service.get("/api/traces", service=service_name, tags=query, limit=100)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert [t["traceID"] for t in data] == ([trace.trace_id] if found else [])
    if found:
        assert len(data[0]["spans"]) == len(trace.spans)


def test_search_by_operation_and_duration(service: Service, exported: tuple[ExportedTrace, str]) -> None:
    trace, tag = exported
    tags = json.dumps({"test.run": tag})
    assert search(service, service="frontend", operation="GET /cart", tags=tags) == [trace.trace_id]
    assert search(service, service="frontend", operation="nope", tags=tags) == []
    assert search(service, service="frontend", tags=tags, minDuration="1ns") == [trace.trace_id]
    assert search(service, service="frontend", tags=tags, minDuration="1h") == []


def test_long_value_word_search_reaches_text(service: Service, exported: tuple[ExportedTrace, str]) -> None:
    trace, _ = exported
    word = LONG_NOTE.split()[-1]
    assert trace.trace_id in search(service, service="frontend", tags=json.dumps({"_text": word}))


def test_unknown_trace_is_404_in_jaeger_shape(service: Service) -> None:
    answer = service.get(f"/api/traces/{'ab' * 16}")
    assert answer.status_code == 404
    body = answer.json()
    assert body["data"] is None and body["errors"][0]["code"] == 404
