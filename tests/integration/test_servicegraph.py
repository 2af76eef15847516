"""The service map and span metrics of a known topology, through the real service (2 gunicorn
workers, direct mode): spans of one trace go to different workers in separate requests, and the
answers equal a brute-force count from the raw spans, exactly."""

from __future__ import annotations

import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import requests
from elastic_transport import ObjectApiResponse
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Service, drop_prefix, start_service, stop_service
from tests.unit.servicegraph.topology import brute_force, random_traces
from tracesearch.model import Span, StatusCode
from tracesearch.servicegraph.histogram import quantile
from tracesearch.settings import Settings
from tracesearch.storage.es.aggregate_reader import EsAggregateReader
from tracesearch.storage.es.client import make_client

# The spans sent, and the brute-force (client, server, connection type) call and error counts.
Topology = tuple[list[Span], Counter[tuple[str, str, str]], Counter[tuple[str, str, str]]]
T = TypeVar("T")

WAIT_S = 3.0
FLUSH_S = 1.0
SETTLE_S = 30.0


@pytest.fixture(scope="module")
def graph_service(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    prefix = f"it-sg-{uuid.uuid4().hex[:8]}"
    env = {
        "TRACESEARCH_SERVICEGRAPH_WAIT": f"{WAIT_S}s",
        "TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL": f"{FLUSH_S}s",
        "TRACESEARCH_WORKERS": "2",
    }
    running = start_service(es_url, prefix, tmp_path_factory.mktemp("servicegraph"), extra_env=env)
    running.wait_for_workers(2)  # the map must be built across two processes
    yield running
    stop_service(running)
    drop_prefix(es_url, prefix)


def send(service: Service, spans: list[Span]) -> None:
    """Shuffled, 25 spans a request, several requests at once: the two workers share them."""
    shuffled = spans[:]
    random.Random(7).shuffle(shuffled)
    service.post_spans(shuffled, 25)


def dependencies(service: Service) -> dict[tuple[str, str], int]:
    answer = service.get("/api/dependencies", endTs=str(time.time_ns() // 1_000_000 + 60_000))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["errors"] is None
    pairs = [(d["parent"], d["child"]) for d in body["data"]]
    assert len(pairs) == len(set(pairs)), "duplicates must be summed"
    return {(d["parent"], d["child"]): d["callCount"] for d in body["data"]}


def metric_samples(service: Service, name: str) -> dict[tuple[str, str, str], float]:
    text = service.get("/metrics").text
    found: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                labels = sample.labels
                found[(labels["client"], labels["server"], labels["connection_type"])] = sample.value
    return found


def wait_for(check: Callable[[], T], expected: T) -> T | None:
    """Poll until the flushes caught up; a daily aggregate index just being created may answer 503."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        try:
            got = check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            got = None
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


@pytest.fixture(scope="module")
def topology(graph_service: Service) -> Topology:
    now = time.time_ns()
    spans = random_traces(seed=42, count=40, t0=now - 5 * 60 * 1_000_000_000)
    send(graph_service, spans)
    calls, errors = brute_force(spans)
    return spans, calls, errors


def by_pair(calls: Counter[tuple[str, str, str]]) -> dict[tuple[str, str], int]:
    summed: Counter[tuple[str, str]] = Counter()
    for (client, server, _), count in calls.items():
        summed[(client, server)] += count
    return dict(summed)


def test_jaeger_dependencies_equal_the_brute_force_edges(graph_service: Service, topology: Topology) -> None:
    _, calls, _ = topology
    expected = by_pair(calls)
    assert wait_for(lambda: dependencies(graph_service), expected) == expected
    # Both workers wrote aggregates: the pairing really crossed processes.
    graph_service.refresh()
    answer = requests.post(
        f"{graph_service.es_url}/{graph_service.prefix}-servicegraph-*/_search",
        json={"size": 0, "aggs": {"p": {"terms": {"field": "process"}}}},
        timeout=30,
    ).json()
    assert len(answer["aggregations"]["p"]["buckets"]) == 2


def test_prometheus_series_carry_the_same_counts(graph_service: Service, topology: Topology) -> None:
    _, calls, errors = topology
    expected_calls = {k: float(v) for k, v in calls.items()}
    got = wait_for(lambda: metric_samples(graph_service, "traces_service_graph_request_total"), expected_calls)
    assert got == expected_calls
    expected_errors = {k: float(v) for k, v in errors.items() if v}
    assert metric_samples(graph_service, "traces_service_graph_request_failed_total") == expected_errors
    counts = metric_samples(graph_service, "traces_service_graph_request_server_seconds_count")
    assert counts == expected_calls


def test_a_replayed_batch_does_not_count_twice(graph_service: Service, topology: Topology) -> None:
    spans, calls, _ = topology
    expected = by_pair(calls)
    assert wait_for(lambda: dependencies(graph_service), expected) == expected
    send(graph_service, spans)  # the exporter retried everything: all 409 in Elasticsearch
    time.sleep(WAIT_S + 3 * FLUSH_S + 1)
    assert dependencies(graph_service) == expected
    assert metric_samples(graph_service, "traces_service_graph_request_total") == {
        k: float(v) for k, v in calls.items()
    }


def test_dependencies_filtered_by_service_and_empty_ranges(graph_service: Service, topology: Topology) -> None:
    _, calls, _ = topology
    expected = {pair: n for pair, n in by_pair(calls).items() if "web" in pair}
    wait_for(lambda: dependencies(graph_service), by_pair(calls))
    answer = graph_service.get("/api/dependencies", service="web", endTs=str(time.time_ns() // 1_000_000 + 60_000))
    assert {(d["parent"], d["child"]): d["callCount"] for d in answer.json()["data"]} == expected
    old = graph_service.get("/api/dependencies", endTs="1000000", lookback="1000")
    assert old.status_code == 200 and old.json()["data"] == []
    bad = graph_service.get("/api/dependencies", endTs="yesterday")
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == 400


def test_span_metrics_and_edges_from_the_reader(graph_service: Service, topology: Topology) -> None:
    spans, calls, errors = topology
    wait_for(lambda: dependencies(graph_service), by_pair(calls))
    time.sleep(2 * FLUSH_S)  # span metrics go with the same flushes; one more for the refresh
    graph_service.refresh()
    settings = Settings(es_urls=(graph_service.es_url,), index_prefix=graph_service.prefix)
    reader = EsAggregateReader(make_client(settings), graph_service.prefix)
    start = min(s.start_ns for s in spans)
    end = max(s.start_ns for s in spans)
    series = reader.span_metrics(start, end, 60_000_000_000, by=("service",))
    got = {s.labels["service"]: sum(p.calls for p in s.points) for s in series}
    assert got == dict(Counter(s.service_name for s in spans))
    errors_only = reader.span_metrics(start, end, end - start + 1, filters={"status_code": "error"})
    assert sum(p.errors for s in errors_only for p in s.points) == sum(s.status_code == StatusCode.ERROR for s in spans)
    web_durations = sorted(s.end_ns - s.start_ns for s in spans if s.service_name == "web")
    (web,) = reader.span_metrics(start, end, end - start + 1, filters={"service": "web"})
    (point,) = web.points
    exact = web_durations[max(1, math.ceil(0.95 * len(web_durations))) - 1] / 1e9
    assert abs(quantile(point.bucket_counts, web.bounds, 0.95) - exact) <= 0.05 * exact
    edges = {(e.client, e.server, e.connection_type): (e.calls, e.errors) for e in reader.service_edges(start, end)}
    assert edges == {k: (v, errors[k]) for k, v in calls.items()}


def test_a_flush_bigger_than_one_bulk_request_is_stored_whole(es_url: str) -> None:
    """A flush after an outage or over a backfill holds days of minutes: it must not become one
    request Elasticsearch refuses (413), which would keep it in memory for ever."""
    from tracesearch.servicegraph.aggregator import Aggregator
    from tracesearch.storage.es.aggregate_writer import MAX_BULK_DOCS, EsAggregateWriter
    from tracesearch.storage.es.templates import install_templates

    prefix = f"it-agg-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env({"TRACESEARCH_ES_URL": es_url, "TRACESEARCH_INDEX_PREFIX": prefix})
    client = make_client(settings)
    try:
        install_templates(client, settings)
        aggregator = Aggregator(max_series=100_000)
        start = time.time_ns() - 3 * 86_400 * 10**9
        spans = random_traces(7, 40)
        minutes = 3 * MAX_BULK_DOCS // max(1, len({(s.service_name, s.name) for s in spans})) + 1
        for minute in range(minutes):
            for span in spans:
                span.start_ns, span.end_ns = start + minute * 60 * 10**9, start + minute * 60 * 10**9 + 1_000
            aggregator.add_spans(spans)
        snapshot = aggregator.drain()
        assert len(snapshot) > 2 * MAX_BULK_DOCS
        sizes: list[int] = []
        real_bulk = client.bulk

        def counted_bulk(**kwargs: Any) -> ObjectApiResponse[Any]:
            sizes.append(kwargs["operations"].count(b"\n") // 2)
            return real_bulk(**kwargs)

        client.bulk = counted_bulk  # type: ignore[method-assign]  # counting the requests the writer sends
        EsAggregateWriter(client, prefix).write(snapshot, "test")
        # Elasticsearch refuses requests over http.max_content_length (100 MB by default); a backfill
        # flush can exceed it, so requests are bounded in documents.
        assert len(sizes) > 1 and max(sizes) <= MAX_BULK_DOCS
        requests.post(f"{es_url}/{prefix}-*/_refresh", timeout=30).raise_for_status()
        stored = requests.get(f"{es_url}/{prefix}-spanmetrics-*/_count", timeout=30).json()["count"]
        assert stored == len(snapshot.spans)
    finally:
        client.close()
        drop_prefix(es_url, prefix)
