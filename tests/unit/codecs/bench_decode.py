"""Micro-benchmark of the OTLP decoders (not collected by pytest).

Run: ``.venv/bin/python tests/unit/codecs/bench_decode.py`` — prints microseconds per span for a
512-span ExportTraceServiceRequest with about 15 attributes per span, as protobuf and as OTLP/JSON,
and for the protobuf encoder used on the Kafka topic.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))

from tracesearch.admission import Limits
from tracesearch.codecs import otlp_json, otlp_proto

SPANS = 512


def _kv(key: str, value: object) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    else:
        kv.value.string_value = str(value)
    return kv


def build_request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in [
        ("service.name", "checkout"),
        ("service.version", "1.4.2"),
        ("host.name", "node-7"),
        ("k8s.pod.name", "checkout-7d9f8"),
        ("telemetry.sdk.language", "python"),
    ]:
        rs.resource.attributes.append(_kv(key, value))
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.flask"
    ss.scope.version = "0.48b0"
    start = 1_700_000_000_000_000_000
    for i in range(SPANS):
        span = ss.spans.add()
        span.trace_id = (i // 16 + 1).to_bytes(16, "big")
        span.span_id = (i + 1).to_bytes(8, "big")
        if i % 16:
            span.parent_span_id = (i // 16 * 16 + 1).to_bytes(8, "big")
        span.name = f"GET /api/items/{{id}} {i % 7}"
        span.kind = 2 if i % 16 == 0 else 3
        span.start_time_unix_nano = start + i * 1000
        span.end_time_unix_nano = start + i * 1000 + 250_000
        span.attributes.extend(
            [
                _kv("http.request.method", "GET"),
                _kv("http.route", "/api/items/{id}"),
                _kv("url.path", f"/api/items/{i}"),
                _kv("url.scheme", "https"),
                _kv("http.response.status_code", 200 + i % 3),
                _kv("server.address", "checkout.internal"),
                _kv("server.port", 8443),
                _kv("network.peer.address", "10.0.0.9"),
                _kv("network.peer.port", 51234),
                _kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
                _kv("db.system", "postgresql"),
                _kv("db.statement", "SELECT * FROM items WHERE id = $1"),
                _kv("retry", i % 2 == 0),
                _kv("ratio", 0.25),
                _kv("thread.id", 140000 + i),
            ]
        )
        span.status.code = 2 if i % 50 == 0 else 0
        if i % 8 == 0:
            event = span.events.add()
            event.time_unix_nano = start + i * 1000 + 10
            event.name = "cache.miss"
            event.attributes.append(_kv("key", f"item:{i}"))
    return request


def bench(label: str, func: Callable[[], object], spans: int, seconds: float = 2.0) -> None:
    func()  # warm up
    runs = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        func()
        runs += 1
    elapsed = time.perf_counter() - began
    print(f"{label:<34} {elapsed / runs / spans * 1e6:8.2f} µs/span  ({runs} runs)")


def main() -> None:
    limits = Limits()
    request = build_request()
    body = request.SerializeToString()
    json_body = orjson.dumps(_as_otlp_json(request))
    batch = otlp_proto.decode_export_request(body, limits)
    assert len(batch.spans) == SPANS, (len(batch.spans), batch.rejected[:3])
    print(f"request: {SPANS} spans, {len(body)} bytes protobuf, {len(json_body)} bytes JSON")
    bench("decode OTLP/protobuf", lambda: otlp_proto.decode_export_request(body, limits), SPANS)
    bench("decode OTLP/JSON", lambda: otlp_json.decode_export_request(json_body, limits), SPANS)
    bench("encode ExportTraceServiceRequest", lambda: otlp_proto.encode_export_request(batch.spans), SPANS)
    bench("encode OTLP/JSON dict", lambda: otlp_json.encode_traces_json(batch.spans), SPANS)


def _as_otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    # MessageToDict writes base64 ids; OTLP/JSON wants hex, so re-spell them.
    doc: dict[str, Any] = json_format.MessageToDict(request)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return doc


if __name__ == "__main__":
    main()
