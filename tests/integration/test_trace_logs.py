"""``GET /api/v1/traces/{trace_id}/logs`` against the real Elasticsearch and the real service.

Two traces are sent through the service with the OpenTelemetry SDK; ECS log lines of both (and lines
just outside the window) go into two logs indices as shippers leave them: one under an ECS-like
template (``trace.id`` a keyword, ``@timestamp`` date_nanos), one with no mapping at all (dynamically
mapped: ``trace.id`` text with a ``.keyword`` subfield, ``@timestamp`` date). The endpoint must find a
trace's lines in both, and no other. Everything lives under this module's own index prefix.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from tests.integration.conftest import Service, drop_prefix, start_service, stop_service
from tests.integration.otel_traces import ExportedTrace, end_ns, start_ns, three_service_trace

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
MARGIN_S = 60  # TRACESEARCH_LOGS_TIME_MARGIN of the service under test
LEVELS = ("debug", "info", "warn", "error")


@dataclass
class Sent:
    trace: ExportedTrace
    expected: list[str]  # messages of the trace's lines inside its window, oldest first


def iso(ns: int) -> str:
    """RFC 3339 with nanoseconds, as ECS loggers write @timestamp."""
    seconds, fraction = divmod(ns, NS_PER_S)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def ecs_line(trace: ExportedTrace, at_ns: int, message: str, number: int) -> dict[str, Any]:
    span = trace.spans[number % len(trace.spans)]
    return {
        "@timestamp": iso(at_ns),
        "log": {"level": LEVELS[number % len(LEVELS)], "logger": "app"},
        "message": message,
        "trace": {"id": trace.trace_id},
        "span": {"id": f"{span.context.span_id:016x}"},
        "service": {"name": span.resource.attributes["service.name"]},
        "ecs": {"version": "8.11.0"},
    }


def put_ecs_template(es_url: str, prefix: str) -> None:
    template: dict[str, Any] = {
        "index_patterns": [f"{prefix}-logs-ecs-*"],
        "priority": 500,
        "template": {
            "mappings": {
                "properties": {
                    "@timestamp": {"type": "date_nanos"},
                    "message": {"type": "text"},
                    "log": {"properties": {"level": {"type": "keyword"}}},
                    "trace": {"properties": {"id": {"type": "keyword"}}},
                    "span": {"properties": {"id": {"type": "keyword"}}},
                    "service": {"properties": {"name": {"type": "keyword"}}},
                }
            }
        },
    }
    requests.put(f"{es_url}/_index_template/{prefix}-logs-ecs", json=template, timeout=30).raise_for_status()


def bulk(es_url: str, lines: list[tuple[str, dict[str, Any]]]) -> None:
    body = b"".join(
        orjson.dumps({"create": {"_index": index}}) + b"\n" + orjson.dumps(doc) + b"\n" for index, doc in lines
    )
    answer = requests.post(
        f"{es_url}/_bulk?refresh=true", data=body, headers={"Content-Type": "application/x-ndjson"}, timeout=60
    )
    answer.raise_for_status()
    assert not answer.json()["errors"], answer.text[:2000]


def lines_of(trace: ExportedTrace, indices: tuple[str, str]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """Lines inside the trace's window, alternating between the two indices, and two just outside it."""
    first = min(start_ns(s) for s in trace.spans)
    last = max(end_ns(s) for s in trace.spans)
    moments = [first - (MARGIN_S - 5) * NS_PER_S, first, (first + last) // 2, last, last + (MARGIN_S - 5) * NS_PER_S]
    inside = [
        (indices[n % 2], ecs_line(trace, at + n * NS_PER_MS, f"{trace.trace_id} line {n}", n))
        for n, at in enumerate(moments)
    ]
    outside = [
        (indices[0], ecs_line(trace, first - (MARGIN_S + 5) * NS_PER_S, f"{trace.trace_id} too early", 0)),
        (indices[1], ecs_line(trace, last + (MARGIN_S + 5) * NS_PER_S, f"{trace.trace_id} too late", 1)),
    ]
    return inside + outside, [doc["message"] for _, doc in inside]


@pytest.fixture(scope="module")
def prefix(es_url: str) -> Iterator[str]:
    prefix = f"itlogs-{uuid.uuid4().hex[:8]}"
    yield prefix
    drop_prefix(es_url, prefix)  # the span and logs indices and the logs template


@pytest.fixture(scope="module")
def logs_service(es_url: str, prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # A concrete index that does not exist in the list: every request also checks it is skipped.
    env = {"TRACESEARCH_LOGS_INDEX": f"{prefix}-logs-*,{prefix}-absent", "TRACESEARCH_LOGS_TIME_MARGIN": f"{MARGIN_S}s"}
    running = start_service(es_url, prefix, tmp_path_factory.mktemp("logs-service"), env)
    yield running
    stop_service(running)


@pytest.fixture(scope="module")
def sent(es_url: str, prefix: str, logs_service: Service) -> list[Sent]:
    put_ecs_template(es_url, prefix)
    indices = (f"{prefix}-logs-ecs-app", f"{prefix}-logs-plain")
    out: list[Sent] = []
    all_lines: list[tuple[str, dict[str, Any]]] = []
    for tag in ("a", "b"):
        trace = three_service_trace(lambda: OTLPSpanExporter(endpoint=f"{logs_service.url}/v1/traces"), tag)
        lines, expected = lines_of(trace, indices)
        all_lines += lines
        out.append(Sent(trace, expected))
    bulk(es_url, all_lines)
    logs_service.refresh()
    return out


def trace_logs(service: Service, trace_id: str, **params: str | int) -> dict[str, Any]:
    answer = service.get(f"/api/v1/traces/{trace_id}/logs", **params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = answer.json()
    return body


def test_the_indices_map_the_trace_id_as_shippers_do(es_url: str, prefix: str, sent: list[Sent]) -> None:
    mappings = requests.get(f"{es_url}/{prefix}-logs-*/_mapping", timeout=30).json()
    ecs = mappings[f"{prefix}-logs-ecs-app"]["mappings"]["properties"]["trace"]["properties"]["id"]
    plain = mappings[f"{prefix}-logs-plain"]["mappings"]["properties"]["trace"]["properties"]["id"]
    assert ecs == {"type": "keyword"}
    assert plain["type"] == "text" and plain["fields"]["keyword"]["type"] == "keyword"


def test_a_trace_gets_exactly_its_lines_of_both_indices_within_the_window_oldest_first(
    logs_service: Service, prefix: str, sent: list[Sent]
) -> None:
    for one in sent:
        body = trace_logs(logs_service, one.trace.trace_id)
        assert body["window"] == "trace" and body["truncated"] is False
        assert body["index"] == f"{prefix}-logs-*,{prefix}-absent" and body["field"] == "trace.id"
        assert [line["message"] for line in body["logs"]] == one.expected
        assert {line["_index"] for line in body["logs"]} == {f"{prefix}-logs-ecs-app", f"{prefix}-logs-plain"}


def test_lines_keep_their_ecs_fields(logs_service: Service, sent: list[Sent]) -> None:
    trace = sent[0].trace
    body = trace_logs(logs_service, trace.trace_id)
    span_ids = {f"{s.context.span_id:016x}" for s in trace.spans}
    for line in body["logs"]:
        assert line["trace"] == {"id": trace.trace_id} and line["span"]["id"] in span_ids
        assert line["log"]["level"] in LEVELS and line["service"]["name"] in {"frontend", "checkout", "inventory"}
        assert line["@timestamp"].endswith("Z") and line["_id"]
    stamps = [line["@timestamp"] for line in body["logs"]]
    assert stamps == sorted(stamps)  # nanosecond text of one length: sorted as text is sorted in time


def test_the_window_is_the_trace_plus_the_margin(logs_service: Service, sent: list[Sent]) -> None:
    trace = sent[0].trace
    body = trace_logs(logs_service, trace.trace_id)
    first = min(start_ns(s) for s in trace.spans) - MARGIN_S * NS_PER_S
    last = max(end_ns(s) for s in trace.spans) + MARGIN_S * NS_PER_S
    # The end is read without the spans (SpanReader.trace_extent): the last start plus the longest duration,
    # never before the last end.
    bound = max(start_ns(s) for s in trace.spans) + max(end_ns(s) - start_ns(s) for s in trace.spans)
    assert body["start"] == iso(first // NS_PER_MS * NS_PER_MS)[:23] + "Z"
    assert iso(-(-last // NS_PER_MS) * NS_PER_MS)[:23] + "Z" <= body["end"]
    assert body["end"] <= iso(-(-(bound + MARGIN_S * NS_PER_S) // NS_PER_MS) * NS_PER_MS)[:23] + "Z"


def test_uppercase_ids_and_limit(logs_service: Service, sent: list[Sent]) -> None:
    one = sent[1]
    body = trace_logs(logs_service, one.trace.trace_id.upper(), limit=2)
    assert [line["message"] for line in body["logs"]] == one.expected[:2] and body["truncated"] is True


def test_a_trace_not_stored_is_searched_in_the_window_asked_for(
    es_url: str, prefix: str, logs_service: Service, sent: list[Sent]
) -> None:
    sampled_out = uuid.uuid4().hex
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    at_ns = int(at.timestamp()) * NS_PER_S
    line = {"@timestamp": iso(at_ns), "message": "no span of mine was kept", "trace": {"id": sampled_out}}
    bulk(es_url, [(f"{prefix}-logs-plain", line)])
    body = trace_logs(logs_service, sampled_out, start=int(at.timestamp()) - 60, end=int(at.timestamp()) + 60)
    assert body["window"] == "request" and [entry["message"] for entry in body["logs"]] == [line["message"]]
    elsewhere = trace_logs(logs_service, sampled_out, start=int(at.timestamp()) + 60, end=int(at.timestamp()) + 120)
    assert elsewhere["logs"] == []


def test_bad_id_is_a_400_saying_so(logs_service: Service) -> None:
    answer = logs_service.get("/api/v1/traces/not-hex/logs")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["field"] == "trace_id" and "not a trace id" in error["message"]


def test_no_logs_index_at_all_is_an_empty_200(
    es_url: str, prefix: str, sent: list[Sent], tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {"TRACESEARCH_LOGS_INDEX": f"{prefix}-nothing-*"}
    running = start_service(es_url, prefix, tmp_path_factory.mktemp("no-logs-service"), env)
    try:
        body = trace_logs(running, sent[0].trace.trace_id)
    finally:
        stop_service(running)
    assert body["window"] == "trace" and body["logs"] == [] and body["truncated"] is False


def test_the_service_log_is_clean(logs_service: Service, sent: list[Sent]) -> None:
    assert "Traceback" not in logs_service.log_tail()
