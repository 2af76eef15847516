from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import responses

from demo.query import showcase_traceql, wait_for_dependencies, wait_for_tempo_search, wait_for_trace

BASE = "http://tracesearch.test"
TRACE = "0af7651916cd43dd8448eb211c80319c"


def _span(span_id: str, process: str, kind: str, parent: str | None = None) -> dict[str, object]:
    references = [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": parent}] if parent else []
    tags = [{"key": "span.kind", "value": kind}]
    return {"spanID": span_id, "processID": process, "references": references, "tags": tags}


def _trace(*spans: dict[str, object]) -> dict[str, object]:
    processes = {"p1": {"serviceName": "storefront"}, "p2": {"serviceName": "frontend"}}
    return {"data": [{"traceID": TRACE, "spans": list(spans), "processes": processes}]}


ROOT = _span("00000000000000aa", "p1", "client")
# Leading zeros dropped in the parent reference, as some Jaeger encoders do.
CHILD = _span("00000000000000bb", "p2", "server", parent="aa")
ORPHAN = _span("00000000000000cc", "p2", "internal", parent="00000000000000ff")


@responses.activate
def test_waits_until_the_trace_is_whole_and_stopped_growing() -> None:
    url = f"{BASE}/api/traces/{TRACE}"
    responses.get(url, status=404, json={"data": None})
    responses.get(url, json=_trace(ROOT))  # frontend missing
    responses.get(url, json=_trace(ROOT, CHILD, ORPHAN))  # a span without its parent
    responses.get(url, json=_trace(ROOT, CHILD))
    responses.get(url, json=_trace(ROOT, CHILD))  # the same count twice: done
    wait = wait_for_trace(BASE, TRACE, {"storefront", "frontend"}, {("frontend", "server")}, timeout=5, interval=0)
    assert wait.complete and wait.view.spans == 2 and wait.view.roots == 1
    assert len(responses.calls) == 5


@responses.activate
def test_gives_up_after_the_timeout_and_says_what_it_saw() -> None:
    responses.get(f"{BASE}/api/traces/{TRACE}", json=_trace(ROOT, ORPHAN))
    wait = wait_for_trace(BASE, TRACE, {"storefront", "frontend"}, timeout=0.2, interval=0.05)
    assert not wait.complete
    assert (wait.view.orphans, wait.view.services, wait.last_status) == (1, frozenset({"storefront", "frontend"}), 200)


SEARCH = f"{BASE}/api/search"
DEPENDENCIES = f"{BASE}/api/dependencies"


@responses.activate
def test_tempo_search_waits_until_the_trace_is_returned() -> None:
    query = showcase_traceql(TRACE)
    responses.get(SEARCH, json={"traces": [], "metrics": {}})
    # Leading zeros dropped, as some Tempo versions print trace ids.
    responses.get(SEARCH, json={"traces": [{"traceID": "af7651916cd43dd8448eb211c80319c"}], "metrics": {}})
    wait = wait_for_tempo_search(BASE, query, "0" + TRACE[1:], timeout=5, interval=0)
    assert wait.found and wait.last_status == 200
    assert len(responses.calls) == 2
    sent = responses.calls[0].request.url
    assert sent is not None and "q=" in sent and "trace%3Aid" in sent


@responses.activate
def test_tempo_search_gives_up_after_the_timeout() -> None:
    responses.get(SEARCH, status=400, json={"message": "invalid TraceQL query"})
    wait = wait_for_tempo_search(BASE, showcase_traceql(TRACE), TRACE, timeout=0.2, interval=0.05)
    assert not wait.found and wait.last_status == 400


@responses.activate
def test_dependencies_are_polled_in_milliseconds_until_every_edge_is_there() -> None:
    def links(*edges: tuple[str, str]) -> dict[str, object]:
        return {"data": [{"parent": p, "child": c, "callCount": 2} for p, c in edges], "errors": None}

    responses.get(DEPENDENCIES, json=links())
    responses.get(DEPENDENCIES, status=503, json={"data": None})
    responses.get(DEPENDENCIES, json=links(("user", "frontend"), ("frontend", "checkout"), ("checkout", "payments")))
    since_ms = time.time_ns() // 1_000_000 - 5_000
    wait = wait_for_dependencies(BASE, {("frontend", "checkout"), ("checkout", "payments")}, since_ms, 5, interval=0)
    assert wait.complete and len(responses.calls) == 3
    assert ("frontend", "checkout", 2) in wait.links
    url = responses.calls[0].request.url
    assert url is not None
    params = parse_qs(urlparse(url).query)
    end_ms, lookback_ms = int(params["endTs"][0]), int(params["lookback"][0])
    assert abs(end_ms - time.time_ns() // 1_000_000) < 60_000  # ms, not µs or s
    assert 60_000 <= lookback_ms < 120_000  # the demo's window plus a minute


@responses.activate
def test_dependencies_wait_keeps_what_it_saw_when_edges_are_missing() -> None:
    responses.get(DEPENDENCIES, json={"data": [{"parent": "frontend", "child": "checkout", "callCount": 1}]})
    wait = wait_for_dependencies(BASE, {("checkout", "payments")}, 0, timeout=0.1, interval=0.05)
    assert not wait.complete and wait.links == (("frontend", "checkout", 1),)
