"""The spans-per-trace cap against the real service and Elasticsearch: with
TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE=100, a trace of 300 spans comes back from every API that returns
traces as its earliest 100 spans, marked partial; a trace under the cap comes back whole, unmarked."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.integration.conftest import Service, drop_prefix, start_service, stop_service
from tracesearch.codecs.tempopb import PARTIAL, TraceByIDResponse

CAP = 100
BIG_SPANS = 300
SMALL_SPANS = 5
PROTOBUF = {"Accept": "application/protobuf"}
CUT = "spans per trace"


@pytest.fixture(scope="module")
def capped(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    env = {"TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE": str(CAP)}
    running = start_service(es_url, prefix, tmp_path_factory.mktemp("cap"), env)
    yield running
    stop_service(running)
    drop_prefix(es_url, prefix)


class Stored:
    def __init__(self, service: str, now_ns: int) -> None:
        self.service = service
        self.now_ns = now_ns
        self.big = uuid.uuid4().hex
        self.small = uuid.uuid4().hex


def _spans(trace_id: str, count: int, base_ns: int, name: str) -> list[dict[str, Any]]:
    """``count`` spans 1 ms apart named by their rank, the first the root of the others."""
    root = uuid.uuid4().hex[:16]
    spans = [
        {
            "traceId": trace_id,
            "spanId": root if i == 0 else uuid.uuid4().hex[:16],
            "parentSpanId": "" if i == 0 else root,
            "name": f"{name} {i:03d}",
            "kind": 2 if i == 0 else 1,
            "startTimeUnixNano": str(base_ns + i * 1_000_000),
            "endTimeUnixNano": str(base_ns + i * 1_000_000 + (BIG_SPANS * 1_000_000 if i == 0 else 500_000)),
        }
        for i in range(count)
    ]
    random.shuffle(spans)  # stored in no particular order: the earliest must still be the ones kept
    return spans


@pytest.fixture(scope="module")
def stored(capped: Service) -> Stored:
    now_ns = time.time_ns()
    found = Stored(f"cap-{uuid.uuid4().hex[:8]}", now_ns)
    base = now_ns - 60 * 10**9
    spans = _spans(found.big, BIG_SPANS, base, "op") + _spans(found.small, SMALL_SPANS, base + 10**9, "small")
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": found.service}}]}
    body: dict[str, Any] = {
        "resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "cap"}, "spans": spans}]}]
    }
    answer = requests.post(f"{capped.url}/v1/traces", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    capped.refresh()
    return found


EARLIEST = [f"op {i:03d}" for i in range(CAP)]
SMALL_NAMES = [f"small {i:03d}" for i in range(SMALL_SPANS)]


def get(capped: Service, path: str, headers: dict[str, str] | None = None, **params: Any) -> requests.Response:
    answer = requests.get(f"{capped.url}{path}", params=params, headers=headers or {}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer


def names_jaeger(trace: dict[str, Any]) -> list[str]:
    return sorted(span["operationName"] for span in trace["spans"])


def names_otlp(data: Any) -> list[str]:
    return sorted(span.name for r in data.resource_spans for s in r.scope_spans for span in s.spans)


def names_zipkin(spans: list[dict[str, Any]]) -> list[str]:
    return sorted(span["name"] for span in spans)


def test_jaeger_trace_by_id(capped: Service, stored: Stored) -> None:
    answer = get(capped, f"/api/traces/{stored.big}")
    body = answer.json()
    (trace,) = body["data"]
    assert names_jaeger(trace) == EARLIEST
    assert answer.headers["X-Tracesearch-Partial"] == CUT
    (error,) = body["errors"]
    assert error["code"] == 206 and error["traceID"] == stored.big
    assert stored.big in error["msg"] and f"more than {CAP} spans" in error["msg"]
    assert trace["warnings"] == [error["msg"]] == trace["spans"][0]["warnings"]

    whole = get(capped, f"/api/traces/{stored.small}")
    assert names_jaeger(whole.json()["data"][0]) == SMALL_NAMES
    assert whole.json()["errors"] is None and "X-Tracesearch-Partial" not in whole.headers


def test_jaeger_search_and_lookup(capped: Service, stored: Stored) -> None:
    start, end = (stored.now_ns - 3600 * 10**9) // 1000, (stored.now_ns + 10**9) // 1000
    searched = get(capped, "/api/traces", service=stored.service, start=start, end=end)
    looked_up = get(capped, "/api/traces", traceID=[stored.big, stored.small])
    for answer in (searched, looked_up):
        body = answer.json()
        by_id = {t["traceID"]: names_jaeger(t) for t in body["data"]}
        assert by_id == {stored.big: EARLIEST, stored.small: SMALL_NAMES}
        assert [e["traceID"] for e in body["errors"]] == [stored.big]
        assert answer.headers["X-Tracesearch-Partial"] == CUT
    whole = get(capped, "/api/traces", traceID=stored.small)
    assert whole.json()["errors"] is None and "X-Tracesearch-Partial" not in whole.headers


def test_tempo_trace_v1_protobuf(capped: Service, stored: Stored) -> None:
    answer = get(capped, f"/api/traces/{stored.big}", headers=PROTOBUF)
    assert names_otlp(trace_pb2.TracesData.FromString(answer.content)) == EARLIEST
    assert answer.headers["X-Tracesearch-Partial"] == CUT
    whole = get(capped, f"/api/traces/{stored.small}", headers=PROTOBUF)
    assert names_otlp(trace_pb2.TracesData.FromString(whole.content)) == SMALL_NAMES
    assert "X-Tracesearch-Partial" not in whole.headers


def test_tempo_trace_v2(capped: Service, stored: Stored) -> None:
    answer = get(capped, f"/api/v2/traces/{stored.big}", headers=PROTOBUF)
    message = TraceByIDResponse.FromString(answer.content)
    assert names_otlp(message.trace) == EARLIEST
    assert message.status == PARTIAL and stored.big in message.message and str(CAP) in message.message
    assert answer.headers["X-Tracesearch-Partial"] == CUT
    body = get(capped, f"/api/v2/traces/{stored.big}").json()
    assert body["status"] == "PARTIAL" and body["message"] == message.message
    assert sum(len(s["spans"]) for r in body["trace"]["resourceSpans"] for s in r["scopeSpans"]) == CAP

    whole = get(capped, f"/api/v2/traces/{stored.small}", headers=PROTOBUF)
    complete = TraceByIDResponse.FromString(whole.content)
    assert names_otlp(complete.trace) == SMALL_NAMES and complete.status == 0 and complete.message == ""
    assert "X-Tracesearch-Partial" not in whole.headers
    assert "status" not in get(capped, f"/api/v2/traces/{stored.small}").json()


def test_tempo_search_says_a_trace_was_judged_on_its_first_spans(capped: Service, stored: Stored) -> None:
    start, end = stored.now_ns // 10**9 - 3600, stored.now_ns // 10**9 + 60
    q = f'{{ resource.service.name = "{stored.service}" }}'
    answer = get(capped, "/api/search", q=q, start=start, end=end)
    assert {t["traceID"] for t in answer.json()["traces"]} == {stored.big, stored.small}
    assert answer.headers["X-Tracesearch-Partial"] == CUT
    # The small trace alone: nothing was cut.
    q = f'{{ resource.service.name = "{stored.service}" && name = "small 004" }}'
    alone = get(capped, "/api/search", q=q, start=start, end=end)
    assert [t["traceID"] for t in alone.json()["traces"]] == [stored.small]
    assert "X-Tracesearch-Partial" not in alone.headers


def test_zipkin(capped: Service, stored: Stored) -> None:
    one = get(capped, f"/api/v2/trace/{stored.big}")
    assert names_zipkin(one.json()) == EARLIEST and one.headers["X-Tracesearch-Partial"] == CUT
    many = get(capped, "/api/v2/traceMany", traceIds=f"{stored.big},{stored.small}")
    assert [names_zipkin(t) for t in many.json()] == [EARLIEST, SMALL_NAMES]
    assert many.headers["X-Tracesearch-Partial"] == CUT
    end_ms = stored.now_ns // 10**6 + 1000
    found = get(capped, "/api/v2/traces", serviceName=stored.service, endTs=end_ms, lookback=3_600_000)
    assert sorted(map(names_zipkin, found.json())) == sorted([EARLIEST, SMALL_NAMES])
    assert found.headers["X-Tracesearch-Partial"] == CUT

    for answer in (
        get(capped, f"/api/v2/trace/{stored.small}"),
        get(capped, "/api/v2/traceMany", traceIds=stored.small),
    ):
        assert "X-Tracesearch-Partial" not in answer.headers
        body = answer.json()
        assert names_zipkin(body if isinstance(body[0], dict) else body[0]) == SMALL_NAMES
