"""Bad input gets the right 4xx with a body that names the problem, and the service stays healthy."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest
import requests
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.integration.conftest import Service

PROTO = "application/x-protobuf"
JSON = "application/json"
TRACE = "5b8efff798038103d269b633813fc60c"
START_NS = (time.time_ns() // 1_000_000_000 - 60) * 1_000_000_000


def otlp_json(span: dict[str, Any]) -> bytes:
    base: dict[str, Any] = {
        "traceId": TRACE,
        "spanId": "eee19b7ec3c1b174",
        "name": "x",
        "kind": 2,
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(START_NS + 100_000_000),
    }
    base.update(span)
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bad-input"}}]},
                    "scopeSpans": [{"spans": [base]}],
                }
            ]
        }
    ).encode()


def nested_kvlist(depth: int) -> str:
    """JSON text of a kvlist nested ``depth`` levels (built as text: json.dumps would recurse)."""
    return '{"kvlistValue":{"values":[{"key":"k","value":' * depth + '{"stringValue":"leaf"}' + "}]}}" * depth


def otlp_json_with_raw_attribute(span_id: str, raw_value: str) -> bytes:
    marker = '"__RAW__"'
    body = otlp_json({"spanId": span_id, "attributes": [{"key": "deep", "value": "__RAW__"}]}).decode()
    return body.replace(marker, raw_value).encode()


def proto_request(**span_fields: object) -> bytes:
    span = trace_pb2.Span(
        trace_id=bytes.fromhex(TRACE),
        span_id=bytes.fromhex("eee19b7ec3c1b174"),
        name="x",
        start_time_unix_nano=START_NS,
        end_time_unix_nano=START_NS + 100_000_000,
    )
    for key, value in span_fields.items():
        setattr(span, key, value)
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name", value=common_pb2.AnyValue(string_value="bad-input"))
    resource_spans.scope_spans.add().spans.append(span)
    body: bytes = request.SerializeToString()
    return body


def post(service: Service, body: bytes, content_type: str | None, **headers: str) -> requests.Response:
    if content_type:
        headers["Content-Type"] = content_type
    return requests.post(f"{service.url}/v1/traces", data=body, headers=headers, timeout=60)


def json_error(answer: requests.Response) -> str:
    return str(answer.json()["message"])


def proto_error(answer: requests.Response) -> str:
    status = status_pb2.Status()
    status.ParseFromString(answer.content)
    message: str = status.message
    return message


def partial(answer: requests.Response) -> tuple[int, str]:
    body = answer.json()["partialSuccess"]
    return int(body.get("rejectedSpans", 0)), body.get("errorMessage", "")


GZIP_BOMB = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)


def invalid_utf8_request() -> bytes:
    """A span name of bytes that are not UTF-8 (protobuf string fields must be UTF-8)."""
    body = proto_request(name="NAMEX")
    return body.replace(b"NAMEX", b"\xff\xfe\xfd\xfc\xfb")


@pytest.mark.parametrize(
    ("case", "body", "content_type", "headers", "status", "says"),
    [
        ("empty protobuf body is an empty request", b"", PROTO, {}, 200, None),
        ("truncated protobuf", proto_request(name="y" * 50)[:-20], PROTO, {}, 400, "decode"),
        ("invalid JSON", b'{"resourceSpans": [', JSON, {}, 400, "decode"),
        ("JSON that is not an object", b"[1, 2]", JSON, {}, 400, "decode"),
        ("wrong content type", b"hello", "text/plain", {}, 415, "Content-Type"),
        ("no content type", b"hello", None, {}, 415, "Content-Type"),
        ("unknown content encoding", b"x", JSON, {"Content-Encoding": "br"}, 415, "Content-Encoding"),
        ("broken gzip", b"\x1f\x8bnot really gzip", JSON, {"Content-Encoding": "gzip"}, 400, "gzip"),
        ("50 MB body", b"\0" * (50 * 1024 * 1024), PROTO, {}, 413, "larger than"),
        ("gzip bomb", GZIP_BOMB, PROTO, {"Content-Encoding": "gzip"}, 413, "after decompression"),
        ("invalid UTF-8 in a string", invalid_utf8_request(), PROTO, {}, 400, "decode"),
    ],
)
def test_undecodable_requests(
    service: Service,
    case: str,
    body: bytes,
    content_type: str | None,
    headers: dict[str, str],
    status: int,
    says: str | None,
) -> None:
    answer = post(service, body, content_type, **headers)
    assert answer.status_code == status, (case, answer.text[:500])
    if says:
        message = proto_error(answer) if answer.headers["Content-Type"].startswith(PROTO) else json_error(answer)
        assert says.lower() in message.lower(), (case, message)
    assert service.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("case", "span", "says"),
    [
        ("trace id of the wrong length", {"traceId": "abcd"}, "trace_id"),
        ("trace id all zeros", {"traceId": "0" * 32}, "trace_id"),
        ("trace id not hex", {"traceId": "z" * 32}, "trace_id"),
        ("span id all zeros", {"spanId": "0" * 16}, "span_id"),
        ("end before start", {"endTimeUnixNano": str(START_NS - 1)}, "before"),
    ],
)
def test_span_level_problems_are_partial_success(service: Service, case: str, span: dict[str, str], says: str) -> None:
    answer = post(service, otlp_json(span), JSON)
    assert answer.status_code == 200, answer.text
    rejected, message = partial(answer)
    assert rejected == 1, case
    assert says.replace("_", "") in message.lower().replace("_", ""), (case, message)


def test_span_level_problem_in_protobuf_is_partial_success(service: Service) -> None:
    answer = post(service, proto_request(trace_id=b"\0" * 16), PROTO)
    assert answer.status_code == 200
    reply = trace_service_pb2.ExportTraceServiceResponse()
    reply.ParseFromString(answer.content)
    assert reply.partial_success.rejected_spans == 1
    assert "trace_id" in reply.partial_success.error_message


def test_ten_thousand_attributes_are_cut_to_the_limit_and_said(service: Service) -> None:
    attributes = [{"key": f"k{i}", "value": {"intValue": str(i)}} for i in range(10_000)]
    answer = post(service, otlp_json({"spanId": "aaaaaaaaaaaaaaa1", "attributes": attributes}), JSON)
    assert answer.status_code == 200, answer.text
    rejected, message = partial(answer)
    assert rejected == 0 and "attributes" in message
    service.refresh()
    got = service.get(f"/api/traces/{TRACE}").json()["data"][0]
    span = next(s for s in got["spans"] if s["spanID"] == "aaaaaaaaaaaaaaa1")
    assert 900 <= len(span["tags"]) <= 1100


def test_deeply_nested_kvlist_is_refused_or_flattened_never_a_crash(service: Service) -> None:
    shallow = post(
        service,
        otlp_json_with_raw_attribute("aaaaaaaaaaaaaaa2", nested_kvlist(20)),
        JSON,
    )
    assert shallow.status_code == 200, shallow.text
    abysmal = post(
        service,
        otlp_json_with_raw_attribute("aaaaaaaaaaaaaaa3", nested_kvlist(5000)),
        JSON,
    )
    assert abysmal.status_code in (200, 400), abysmal.text
    if abysmal.status_code == 400:
        assert "decode" in json_error(abysmal).lower()
    assert service.get("/health").status_code == 200


def test_zipkin_bad_input(service: Service) -> None:
    url = f"{service.url}/api/v2/spans"
    answer = requests.post(url, data=b"{not json", headers={"Content-Type": JSON}, timeout=30)
    assert answer.status_code == 400 and "Zipkin" in answer.json()["error"]["message"]
    v1 = json.dumps([{"traceId": "a" * 16, "id": "b" * 16, "binaryAnnotations": []}]).encode()
    answer = requests.post(url, data=v1, headers={"Content-Type": JSON}, timeout=30)
    assert answer.status_code == 400 and "v1" in answer.json()["error"]["message"]
    answer = requests.post(url, data=b"[]", headers={"Content-Type": "text/csv"}, timeout=30)
    assert answer.status_code == 415
    assert requests.post(url, data=b"[]", headers={"Content-Type": JSON}, timeout=30).status_code == 202


def test_jaeger_bad_parameters(service: Service) -> None:
    answer = service.get("/api/traces", service="x", minDuration="fast")
    assert answer.status_code == 400 and "minDuration" in answer.json()["errors"][0]["msg"]
    answer = service.get("/api/traces", service="x", minDuration="2s", maxDuration="1s")
    assert answer.status_code == 400
    answer = service.get("/api/traces", service="x", tags="not json")
    assert answer.status_code == 400 and "tags" in answer.json()["errors"][0]["msg"]
    assert service.get("/api/traces").status_code == 400
    assert service.get("/api/traces/nothex!").status_code == 400
