"""What the Elasticsearch layout promises: bounded mappings, no type conflicts, idempotent writes,
whole traces of any size, traces across midnight UTC."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import requests
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from tests.integration.conftest import Service

NS = 1_000_000_000


def new_trace_id() -> str:
    return f"{random.getrandbits(128):032x}"


def value(v: object) -> common_pb2.AnyValue:
    if isinstance(v, bool):
        return common_pb2.AnyValue(bool_value=v)
    if isinstance(v, int):
        return common_pb2.AnyValue(int_value=v)
    if isinstance(v, float):
        return common_pb2.AnyValue(double_value=v)
    return common_pb2.AnyValue(string_value=str(v))


def request_of(spans: list[dict[str, Any]], service: str = "props") -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name", value=value(service))
    scope = resource_spans.scope_spans.add()
    for s in spans:
        span = scope.spans.add(
            trace_id=bytes.fromhex(s["trace_id"]),
            span_id=bytes.fromhex(s["span_id"]),
            name=s.get("name", "op"),
            start_time_unix_nano=s["start"],
            end_time_unix_nano=s.get("end", s["start"] + 1000),
            parent_span_id=bytes.fromhex(s.get("parent", "")),
        )
        for key, v in s.get("attributes", {}).items():
            span.attributes.add(key=key, value=value(v))
    body: bytes = request.SerializeToString()
    return body


def send(service: Service, body: bytes) -> None:
    answer = requests.post(
        f"{service.url}/v1/traces",
        data=body,
        headers={"Content-Type": "application/json" if body[:1] == b"{" else "application/x-protobuf"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text[:300]
    reply = trace_service_pb2.ExportTraceServiceResponse()
    reply.ParseFromString(answer.content)
    assert reply.partial_success.rejected_spans == 0, reply.partial_success.error_message


def spans_for(trace_id: str, count: int, start: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"trace_id": trace_id, "span_id": f"{i + 1:016x}", "start": start + i * 1000, **extra} for i in range(count)
    ]


def now_ns() -> int:
    return int(datetime.now(tz=UTC).timestamp()) * NS


def test_replayed_batch_does_not_duplicate_spans(service: Service) -> None:
    trace_id = new_trace_id()
    body = request_of(spans_for(trace_id, 50, now_ns()))
    send(service, body)
    send(service, body)
    assert service.count({"term": {"trace.id": trace_id}}) == 50
    assert len(service.get(f"/api/traces/{trace_id}").json()["data"][0]["spans"]) == 50


def test_ten_thousand_distinct_keys_keep_the_mapping_small(service: Service) -> None:
    trace_id = new_trace_id()
    start = now_ns()
    spans = []
    for i in range(1000):
        attrs = {f"key.{i}.{j}.{'x' * (i % 7)}": (j if j % 2 else f"v{j}") for j in range(10)}
        spans.append({"trace_id": trace_id, "span_id": f"{i + 1:016x}", "start": start + i, "attributes": attrs})
    send(service, request_of(spans))
    assert service.count({"term": {"trace.id": trace_id}}) == 1000
    mappings = requests.get(f"{service.es_url}/{service.prefix}-span-*/_mapping", timeout=30).json()
    for index in mappings.values():
        assert count_fields(index["mappings"]) < 200


def count_fields(mapping: dict[str, Any]) -> int:
    total = 0
    for field in mapping.get("properties", {}).values():
        total += 1 + count_fields(field)
    return total


def test_conflicting_types_and_dotted_keys_are_all_indexed(service: Service) -> None:
    trace_id = new_trace_id()
    start = now_ns()
    spans = [
        {
            "trace_id": trace_id,
            "span_id": f"{1:016x}",
            "start": start,
            "attributes": {"conflict": "text", "error": True},
        },
        {
            "trace_id": trace_id,
            "span_id": f"{2:016x}",
            "start": start + 1,
            "attributes": {"conflict": 42, "error.message": "boom", "db": "x", "db.system": "pg"},
        },
        {"trace_id": trace_id, "span_id": f"{3:016x}", "start": start + 2, "attributes": {"conflict": 2.5}},
    ]
    send(service, request_of(spans, service="conflicts"))
    assert service.count({"term": {"trace.id": trace_id}}) == 3
    for tags in (
        {"conflict": "text"},
        {"conflict": ">40"},
        {"conflict": "2.5"},
        {"error.message": "boom"},
        {"db.system": "pg"},
        {"db": "x"},
    ):
        found = service.get("/api/traces", service="conflicts", tags=json.dumps(tags)).json()["data"]
        assert [t["traceID"] for t in found] == [trace_id], tags


def test_a_trace_of_more_than_ten_thousand_spans_comes_back_whole(service: Service) -> None:
    trace_id = new_trace_id()
    start = now_ns() - 60 * NS
    all_spans = spans_for(trace_id, 10_250, start)
    for chunk in range(0, len(all_spans), 2500):
        send(service, request_of(all_spans[chunk : chunk + 2500]))
    service.refresh()
    got = service.get(f"/api/traces/{trace_id}").json()["data"][0]
    assert len(got["spans"]) == 10_250
    assert len({s["spanID"] for s in got["spans"]}) == 10_250


def test_a_trace_across_midnight_utc_comes_back_whole(service: Service) -> None:
    trace_id = new_trace_id()
    midnight = int(datetime.now(tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()) * NS
    root: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": "a" * 16,
        "start": midnight - 2 * NS,
        "end": midnight + 3 * NS,
        "name": "nightly",
        "attributes": {"job": "midnight"},
    }
    child: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": "b" * 16,
        "parent": "a" * 16,
        "start": midnight + NS,
        "end": midnight + 2 * NS,
        "name": "after-midnight",
    }
    send(service, request_of([root, child], service="nightly"))
    service.refresh()
    indices = requests.get(
        f"{service.es_url}/_cat/indices/{service.prefix}-span-*?h=index&format=json", timeout=30
    ).json()
    days = {datetime.fromtimestamp(t / NS, tz=UTC).date().isoformat() for t in (root["start"], child["start"])}
    assert {f"{service.prefix}-span-{d}" for d in days} <= {i["index"] for i in indices}
    got = service.get(f"/api/traces/{trace_id}").json()["data"][0]
    assert sorted(s["operationName"] for s in got["spans"]) == ["after-midnight", "nightly"]
    found = service.get(
        "/api/traces",
        service="nightly",
        tags=json.dumps({"job": "midnight"}),
        start=(midnight - 10 * NS) // 1000,
        end=(midnight + 10 * NS) // 1000,
    ).json()["data"]
    assert [len(t["spans"]) for t in found] == [2]
