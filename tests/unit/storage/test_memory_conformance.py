"""The storage conformance suite against the in-memory store, and the TraceQL conformance table through
the query service over it (pushdown, memory evaluation of the pushed conditions, exact evaluator)."""

from __future__ import annotations

import time

import pytest

from tests import traceql_fixture
from tests.storage_conformance import StorageConformance, Store
from tracesearch.services.query import QueryService
from tracesearch.storage.memory import MemoryStore

NS_PER_S = 1_000_000_000


@pytest.fixture(scope="module")
def store() -> Store:
    memory = MemoryStore()
    aggregates = memory.aggregates
    return Store(memory, memory, aggregates, aggregates, memory, lambda: None, time.time_ns(), aggregates, memory)


class TestMemoryStore(StorageConformance):
    pass


@pytest.fixture(scope="module")
def fixture_service() -> tuple[QueryService, int]:
    memory = MemoryStore()
    base_ns = time.time_ns() - 1800 * NS_PER_S
    written = memory.write([span for trace in traceql_fixture.traces(base_ns) for span in trace])
    assert written.rejected == []
    return QueryService(memory, memory.aggregates), base_ns


def search(service: QueryService, base_ns: int, q: str) -> dict[str, set[str]]:
    """Matching span ids by trace id, every span of every spanset."""
    from tracesearch.query.traceql import parse

    result = service.search(parse(q), base_ns - 3600 * NS_PER_S, base_ns + 3600 * NS_PER_S, 100, 100)
    assert result.complete
    found: dict[str, set[str]] = {}
    for trace in result.traces:
        for spanset in trace.spansets:
            found.setdefault(trace.trace[0].trace_id, set()).update(s.span_id for s in spanset.spans)
    return found


@pytest.mark.parametrize(
    ("query", "expected"), traceql_fixture.CONFORMANCE, ids=[q for q, _ in traceql_fixture.CONFORMANCE]
)
def test_traceql_conformance_trace_sets(
    fixture_service: tuple[QueryService, int], query: str, expected: frozenset[str]
) -> None:
    service, base_ns = fixture_service
    assert set(search(service, base_ns, query)) == set(expected)


@pytest.mark.parametrize(
    ("query", "expected"), traceql_fixture.CONFORMANCE_SPANS, ids=[q for q, _ in traceql_fixture.CONFORMANCE_SPANS]
)
def test_traceql_conformance_matched_spans(
    fixture_service: tuple[QueryService, int], query: str, expected: dict[str, frozenset[str]]
) -> None:
    service, base_ns = fixture_service
    assert search(service, base_ns, query) == {t: set(s) for t, s in expected.items()}
