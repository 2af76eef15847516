"""A tenant's ingest limits: the token bucket on a fake clock, the limiter's refusals, and what the OTLP and
Zipkin receivers answer (Flask's test client; the spans refused never reach a sink)."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tracesearch.app import create_app
from tracesearch.pipeline.ingest_limits import (
    BURST,
    RATE,
    REQUEST_SPANS,
    IngestConfig,
    IngestLimiter,
    RateLimited,
    TokenBucket,
    TooManySpans,
)
from tracesearch.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_starts_full_refills_at_the_rate_and_never_past_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=50, clock=clock)
    assert bucket.take(50) == 0
    assert bucket.take(1) == pytest.approx(0.1)  # refused whole: nothing taken
    clock.now += 1.0
    assert bucket.take(20) == pytest.approx(1.0)  # 10 there, 10 more take a second
    assert bucket.take(10) == 0
    clock.now += 3600
    assert bucket.take(51) == math.inf  # more than it ever holds
    assert bucket.take(50) == 0  # full again, not fuller


def test_the_limiter_says_when_to_retry_and_refuses_for_good_what_can_never_pass() -> None:
    clock, refused = Clock(), []
    limiter = IngestLimiter(
        IngestConfig(spans_per_second=100, burst_spans=200, max_spans_per_request=500),
        "team-a",
        on_refused=lambda reason, spans: refused.append((reason, spans)),
        clock=clock,
    )
    limiter.admit(150)
    with pytest.raises(RateLimited) as rate:
        limiter.admit(151)  # 50 left: 101 more need 1.01 s
    assert rate.value.retry_after_s == 2
    assert "team-a" in str(rate.value) and "TRACESEARCH_INGEST_SPANS_PER_SECOND" in str(rate.value)
    with pytest.raises(TooManySpans, match="TRACESEARCH_INGEST_BURST_SPANS") as burst:
        limiter.admit(201)
    assert burst.value.reason == BURST
    with pytest.raises(TooManySpans, match="TRACESEARCH_MAX_SPANS_PER_REQUEST") as per_request:
        limiter.admit(501)
    assert per_request.value.reason == REQUEST_SPANS
    clock.now += 1.02
    limiter.admit(151)
    assert refused == [(RATE, 151), (BURST, 201), (REQUEST_SPANS, 501)]


def test_no_rate_means_no_bucket_and_the_burst_defaults_to_one_second_of_the_rate() -> None:
    unlimited = IngestLimiter(IngestConfig(), None)
    for _ in range(100):
        unlimited.admit(1_000_000)
    assert IngestConfig(spans_per_second=2.5).burst == 3
    assert IngestConfig(spans_per_second=0.1).burst == 1
    assert IngestConfig(spans_per_second=10, burst_spans=7).burst == 7


def bad_span(index: int) -> dict[str, Any]:
    """A span every decoder refuses (its trace id is too short): it counts towards the limits, reaches no sink."""
    return {
        "traceId": "ab",
        "spanId": f"{index + 1:016x}",
        "name": "x",
        "startTimeUnixNano": "1",
        "endTimeUnixNano": "2",
    }


def otlp_body(spans: int) -> bytes:
    request = {"resourceSpans": [{"scopeSpans": [{"spans": [bad_span(i) for i in range(spans)]}]}]}
    return orjson.dumps(request)


def zipkin_body(spans: int) -> bytes:
    return orjson.dumps([{"traceId": "ab", "id": f"{i + 1:016x}", "name": "x", "timestamp": 1} for i in range(spans)])


def client(tmp_path: Any) -> FlaskClient:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(
        "tenants:\n  slow:\n    TRACESEARCH_INGEST_SPANS_PER_SECOND: 1\n    TRACESEARCH_INGEST_BURST_SPANS: 5\n"
        "    TRACESEARCH_MAX_SPANS_PER_REQUEST: 8\n"
        "  small:\n    TRACESEARCH_MAX_REQUEST_BYTES: 1024\n"
    )
    settings = Settings(
        install_templates=False, servicegraph_enabled=False, tenant_header=True, tenants_file=str(tenants)
    )
    return create_app(settings).test_client()


SLOW = {"X-Scope-OrgID": "slow"}


def test_otlp_answers_429_with_retry_after_as_a_google_rpc_status(tmp_path: Any) -> None:
    c = client(tmp_path)
    headers = {**SLOW, "Content-Type": "application/json"}
    assert c.post("/v1/traces", data=otlp_body(5), headers=headers).status_code == 200  # the burst, spent
    answer = c.post("/v1/traces", data=otlp_body(2), headers=headers)
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) == 2
    assert answer.json is not None and answer.json["code"] == 8 and "slow sends more than 1" in answer.json["message"]
    assert c.post("/v1/traces", data=otlp_body(1), headers=headers).status_code == 429
    # Another tenant (here the default) has its own bucket, unlimited by default.
    assert c.post("/v1/traces", data=otlp_body(6), headers={"Content-Type": "application/json"}).status_code == 200


def test_otlp_protobuf_gets_the_status_in_protobuf_and_over_the_burst_a_413(tmp_path: Any) -> None:
    c = client(tmp_path)
    answer = c.post("/v1/traces", data=otlp_body(6), headers={**SLOW, "Content-Type": "application/json"})
    assert answer.status_code == 413 and "Retry-After" not in answer.headers
    assert answer.json is not None and "TRACESEARCH_INGEST_BURST_SPANS" in answer.json["message"]
    answer = c.post("/v1/traces", data=otlp_body(9), headers={**SLOW, "Content-Type": "application/json"})
    assert answer.status_code == 413 and "TRACESEARCH_MAX_SPANS_PER_REQUEST" in answer.get_data(as_text=True)
    request = trace_service_pb2.ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for i in range(6):
        spans.add(trace_id=b"ab", span_id=(i + 1).to_bytes(8, "big"), name="x")
    answer = c.post(
        "/v1/traces", data=request.SerializeToString(), headers={**SLOW, "Content-Type": "application/x-protobuf"}
    )
    assert answer.status_code == 413
    assert "TRACESEARCH_INGEST_BURST_SPANS" in status_pb2.Status.FromString(answer.data).message


def test_zipkin_answers_429_with_retry_after_in_its_json_error(tmp_path: Any) -> None:
    c = client(tmp_path)
    first = c.post("/api/v2/spans", data=zipkin_body(5), headers=SLOW)
    assert first.status_code == 400  # the spans are refused by the decoder, after taking their tokens
    answer = c.post("/api/v2/spans", data=zipkin_body(1), headers=SLOW)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    assert answer.json is not None and answer.json["error"]["code"] == 429


def test_a_tenants_request_bytes_are_its_own(tmp_path: Any) -> None:
    c = client(tmp_path)
    body = otlp_body(12)
    assert len(body) > 1024
    answer = c.post("/v1/traces", data=body, headers={"X-Scope-OrgID": "small", "Content-Type": "application/json"})
    assert answer.status_code == 413 and "larger than 1024 bytes" in answer.get_data(as_text=True)
    assert c.post("/v1/traces", data=body, headers={"Content-Type": "application/json"}).status_code == 200
