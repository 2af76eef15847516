"""The TraceQL conformance table, run against the real Elasticsearch through the Tempo search API.

The same table (query → expected trace ids, derived by hand from a fixed fixture) is run against
the in-memory evaluator in tests/unit/query; here the fixture is ingested over OTLP into a service
of its own and every query goes through planner, Elasticsearch and evaluator, as Grafana sends it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests import traceql_fixture
from tests.integration.conftest import Service, drop_prefix, start_service, stop_service
from tests.integration.tempo_contract import search_schema_problems
from tracesearch.codecs.otlp_proto import encode_export_request

NS_PER_S = 1_000_000_000


@pytest.fixture(scope="module")
def fixture_service(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, int]]:
    prefix = f"it-tql-{uuid.uuid4().hex[:8]}"
    running = start_service(es_url, prefix, tmp_path_factory.mktemp("traceql"))
    base_ns = time.time_ns() - 1800 * NS_PER_S
    spans = [span for trace in traceql_fixture.traces(base_ns) for span in trace]
    answer = requests.post(
        f"{running.url}/v1/traces",
        data=encode_export_request(spans),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    running.refresh()
    assert running.count() == len(spans)
    yield running, base_ns
    stop_service(running)
    drop_prefix(es_url, prefix)


def search(service: Service, base_ns: int, q: str) -> dict[str, Any]:
    start = base_ns // NS_PER_S - 3600
    answer = service.get("/api/search", q=q, limit=100, spss=100, start=start, end=start + 3 * 3600)
    assert answer.status_code == 200, f"{q}: {answer.status_code} {answer.text}"
    body: dict[str, Any] = answer.json()
    assert search_schema_problems(body) == []
    return body


@pytest.mark.parametrize(
    ("query", "expected"), traceql_fixture.CONFORMANCE, ids=[q for q, _ in traceql_fixture.CONFORMANCE]
)
def test_conformance_trace_sets(fixture_service: tuple[Service, int], query: str, expected: frozenset[str]) -> None:
    service, base_ns = fixture_service
    found = {t["traceID"] for t in search(service, base_ns, query)["traces"]}
    assert found == set(expected)


@pytest.mark.parametrize(
    ("query", "expected"), traceql_fixture.CONFORMANCE_SPANS, ids=[q for q, _ in traceql_fixture.CONFORMANCE_SPANS]
)
def test_conformance_matched_spans(
    fixture_service: tuple[Service, int], query: str, expected: dict[str, frozenset[str]]
) -> None:
    service, base_ns = fixture_service
    found: dict[str, set[str]] = {}
    for trace in search(service, base_ns, query)["traces"]:
        for spanset in trace["spanSets"]:
            found.setdefault(trace["traceID"], set()).update(s["spanID"] for s in spanset["spans"])
    assert found == {t: set(s) for t, s in expected.items()}


def test_the_table_is_big_enough() -> None:
    assert len(traceql_fixture.CONFORMANCE) >= 60
    operators = ("} >", "} <", "} ~", "} &", "} !")
    structural = [q for q, _ in traceql_fixture.CONFORMANCE if any(op in q for op in operators)]
    pipelines = [q for q, _ in traceql_fixture.CONFORMANCE if "|" in q.replace("||", "")]
    assert len(structural) >= 5 and len(pipelines) >= 5
