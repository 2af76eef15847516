"""A hostile query against the real service: the catastrophic regex `(a+)+$` over long runs of "a"
answers within the query budget, and another client's searches keep answering meanwhile."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.integration.conftest import Service, drop_prefix, start_service, stop_service

BUDGET_S = 3.0
HOSTILE_TRACES = 300
VALUE = "a" * 20_000 + "b"  # with Python's re, one match of (a+)+$ would never end


@pytest.fixture(scope="module")
def budgeted(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    env = {"TRACESEARCH_QUERY_TIMEOUT": f"{BUDGET_S}s", "TRACESEARCH_MAX_CONCURRENT_QUERIES": "4"}
    running = start_service(es_url, prefix, tmp_path_factory.mktemp("budget"), env)
    yield running
    stop_service(running)
    drop_prefix(es_url, prefix)


def _otlp(service: str, traces: int, attributes: dict[str, str], now_ns: int) -> dict[str, Any]:
    spans = [
        {
            "traceId": uuid.uuid4().hex,
            "spanId": uuid.uuid4().hex[:16],
            "name": "op",
            "kind": 2,
            "startTimeUnixNano": str(now_ns - (i + 1) * 1_000_000),
            "endTimeUnixNano": str(now_ns - i * 1_000_000),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()],
        }
        for i in range(traces)
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}


def _send(service: Service, body: dict[str, Any]) -> None:
    answer = requests.post(f"{service.url}/v1/traces", json=body, timeout=60)
    assert answer.status_code == 200, answer.text


def _victim_latencies(service: Service, count: int, start: int, end: int) -> list[float]:
    latencies = []
    for _ in range(count):
        began = time.perf_counter()
        answer = service.get("/api/search", q='{ resource.service.name = "victim" }', start=start, end=end, limit=5)
        latencies.append(time.perf_counter() - began)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["traces"]) == 5
    return latencies


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def test_a_catastrophic_regex_answers_within_the_budget_and_others_keep_answering(budgeted: Service) -> None:
    now_ns = time.time_ns()
    for _ in range(HOSTILE_TRACES // 100):
        _send(budgeted, _otlp("hostile", 100, {"x": VALUE}, now_ns))
    _send(budgeted, _otlp("victim", 20, {"y": "ok"}, now_ns))
    budgeted.refresh()
    start, end = now_ns // 1_000_000_000 - 3600, now_ns // 1_000_000_000 + 60

    _victim_latencies(budgeted, 3, start, end)  # warm up both workers
    before = _victim_latencies(budgeted, 20, start, end)

    hostile: list[tuple[float, int, dict[str, Any]]] = []

    def attack() -> None:
        for _ in range(3):
            began = time.perf_counter()
            answer = budgeted.get("/api/search", q='{ span.x =~ "(a+)+$" }', start=start, end=end, limit=20)
            hostile.append((time.perf_counter() - began, answer.status_code, answer.json()))

    attacker = threading.Thread(target=attack)
    attacker.start()
    during = _victim_latencies(budgeted, 20, start, end)
    attacker.join(60)

    assert len(hostile) == 3
    for elapsed, status, body in hostile:
        assert status == 200, body
        assert elapsed < BUDGET_S + 5.0  # within the budget, plus fetching and answering
        assert body["traces"] == []  # no value ends in "a": nothing matches
    print(
        f"\nhostile (a+)+$ over {HOSTILE_TRACES} spans of {len(VALUE)} chars: "
        f"{', '.join(f'{e * 1000:.0f} ms' for e, _, _ in hostile)}; "
        f"victim p50/p95 before {statistics.median(before) * 1000:.1f}/{p95(before) * 1000:.1f} ms, "
        f"during {statistics.median(during) * 1000:.1f}/{p95(during) * 1000:.1f} ms"
    )
    assert p95(during) < max(1.0, 10 * p95(before))


def test_a_regex_re2_refuses_is_a_400_naming_it(budgeted: Service) -> None:
    answer = budgeted.get("/api/search", q='{ span.x =~ "(a)\\\\1" }')
    assert answer.status_code == 400
    assert "'(a)\\\\1'" in answer.json()["message"] and "backreferences" in answer.json()["message"]
