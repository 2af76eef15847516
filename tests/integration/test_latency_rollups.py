"""Latency panels from the per-service rollups, against the real Elasticsearch and the real service (two
gunicorn workers, so two processes write rollups that the reader adds up): the answer has the span path's
shape and steps, and its quantiles are within the histogram's stated error of the span path's; the newest
steps come from the spans; a range reaching back before the rollups began comes from the spans."""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.integration.conftest import Service, drop_prefix, start_service, stop_service
from tests.unit.servicegraph.topology import span
from tracesearch.model import Span, SpanKind
from tracesearch.servicegraph.histogram import STATED_RELATIVE_ERROR
from tracesearch.servicegraph.rollup import IDLE_NS
from tracesearch.storage.es.document import bulk_body

S = 1_000_000_000
MINUTE_NS = 60 * S
FLUSH_S = 1.0
SERVICES = ("checkout", "cart")
# Per service and minute: 20 spans of 10 ms, 15 of 40 ms, 5 of 160 ms. Nearest rank and interpolation
# (the span path's t-digest) agree at these quantiles, which fall inside a run of equal durations.
MIX = ((20, 10_000_000), (15, 40_000_000), (5, 160_000_000))
QUANTILES = (0.25, 0.7, 0.95)
EXPECTED_S = {0.25: 0.010, 0.7: 0.040, 0.95: 0.160}
PANEL = '{ resource.service.name = "checkout" } | quantile_over_time(duration, .25, .7, .95)'
# The same spans in a shape the rollups do not answer: from the spans.
RAW = '{ resource.service.name = "checkout" && duration >= 0ns } | quantile_over_time(duration, .25, .7, .95)'


@pytest.fixture(scope="module")
def rollup_service(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    prefix = f"it-lr-{uuid.uuid4().hex[:8]}"
    env = {"TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL": f"{FLUSH_S}s", "TRACESEARCH_WORKERS": "2"}
    running = start_service(es_url, prefix, tmp_path_factory.mktemp("rollups"), extra_env=env)
    running.wait_for_workers(2)
    yield running
    stop_service(running)
    drop_prefix(es_url, prefix)


def minute_spans(minute_ns: int, rng: random.Random) -> list[Span]:
    spans = []
    for service in SERVICES:
        for count, duration in MIX:
            for _ in range(count):
                start = minute_ns + rng.randrange(MINUTE_NS - duration)
                trace = f"{rng.getrandbits(128):032x}"
                spans.append(
                    span(
                        trace,
                        f"{rng.getrandbits(64):016x}",
                        service,
                        SpanKind.SERVER,
                        start_ns=start,
                        duration_ns=duration,
                    )
                )
    return spans


def send(service: Service, spans: list[Span]) -> None:
    service.post_spans(spans, 50)


def query(service: Service, q: str, start_ns: int, end_ns: int) -> requests.Response:
    answer = service.get("/api/metrics/query_range", q=q, start=str(start_ns // S), end=str(end_ns // S), step="60s")
    assert answer.status_code == 200, answer.text
    return answer


def samples(body: dict[str, Any]) -> dict[tuple[str, int], float]:
    """(quantile label, step ms) -> value."""
    found = {}
    for series in body["series"]:
        [label] = [kv["value"]["stringValue"] for kv in series["labels"] if kv["key"] == "p"]
        for sample in series["samples"]:
            found[(label, int(sample["timestampMs"]))] = float(sample["value"])
    return found


@pytest.fixture(scope="module")
def past(rollup_service: Service) -> tuple[int, int]:
    """Twenty minutes of spans, 40 to 20 minutes ago (older than the rollups' lag), sent through the service."""
    now = time.time_ns()
    first = now - now % MINUTE_NS - 40 * MINUTE_NS
    rng = random.Random(11)
    spans = [s for m in range(20) for s in minute_spans(first + m * MINUTE_NS, rng)]
    send(rollup_service, spans)
    return first, first + 20 * MINUTE_NS


def rollup_totals(service: Service, start_ns: int, end_ns: int) -> dict[str, Any]:
    """Calls summed over the rollup documents of [start_ns, end_ns), and how many processes wrote them."""
    body: dict[str, Any] = {
        "size": 0,
        "query": {"range": {"@timestamp": {"gte": start_ns // 1_000_000, "lt": end_ns // 1_000_000}}},
        "aggs": {"calls": {"sum": {"field": "calls"}}, "processes": {"cardinality": {"field": "process"}}},
    }
    url = f"{service.es_url}/{service.prefix}-servicelatency-*/_search"
    answer: dict[str, Any] = requests.post(url, json=body, timeout=30).json()
    return answer


def wait_for_rollups(service: Service, start_ns: int, end_ns: int) -> requests.Response:
    """The entries close IDLE_NS after their last span, then the next flush writes them. Each of the two
    workers writes its own entries, so a panel with every minute can still lack one worker's part: wait
    until the rollups hold every span sent (a span never written times this out)."""
    deadline = time.monotonic() + IDLE_NS / S + 60
    every = 20 * len(SERVICES) * sum(n for n, _ in MIX)
    while True:
        service.refresh()
        answer = query(service, PANEL, start_ns, end_ns)
        complete = (
            answer.headers["X-Tracesearch-Metrics-Source"] == "span-metrics" and len(samples(answer.json())) == 60
        )
        calls = rollup_totals(service, start_ns, end_ns)["aggregations"]["calls"]["value"] if complete else 0
        if calls == every:
            return answer
        assert time.monotonic() < deadline, (answer.headers["X-Tracesearch-Metrics-Source"], calls, answer.text[:300])
        time.sleep(2)


def test_a_past_range_comes_from_the_rollups_within_the_stated_error_of_the_spans(
    rollup_service: Service, past: tuple[int, int]
) -> None:
    start, end = past
    fast = wait_for_rollups(rollup_service, start, end)
    slow = query(rollup_service, RAW, start, end)
    assert slow.headers["X-Tracesearch-Metrics-Source"] == "spans"
    rollup, spans = samples(fast.json()), samples(slow.json())
    assert rollup.keys() == spans.keys()
    assert {ms for _, ms in rollup} == {(start + m * MINUTE_NS) // 1_000_000 for m in range(20)}
    for key, value in spans.items():
        exact = EXPECTED_S[float(key[0])]
        assert value == pytest.approx(exact, rel=1e-6), key  # the spans' answer is exact here
        assert abs(rollup[key] - exact) <= STATED_RELATIVE_ERROR * exact, key
    # Same shape as the span path's answer: series labels and their order of keys.
    assert [s["labels"] for s in fast.json()["series"]] == [s["labels"] for s in slow.json()["series"]]


def test_every_span_is_in_one_rollup_of_one_process(rollup_service: Service, past: tuple[int, int]) -> None:
    start, end = past
    wait_for_rollups(rollup_service, start, end)
    answer = rollup_totals(rollup_service, start, end)
    assert answer["aggregations"]["calls"]["value"] == 20 * len(SERVICES) * sum(n for n, _ in MIX)
    # One document per minute, service and process (the two workers each wrote some), not one per flush.
    assert answer["hits"]["total"]["value"] <= 20 * len(SERVICES) * answer["aggregations"]["processes"]["value"]


def test_the_newest_steps_come_from_the_spans(rollup_service: Service, past: tuple[int, int]) -> None:
    start, _ = past
    now = time.time_ns()
    recent = now - now % MINUTE_NS - 2 * MINUTE_NS
    send(rollup_service, minute_spans(recent, random.Random(5)))
    rollup_service.refresh()
    wait_for_rollups(rollup_service, start, past[1])
    answer = query(rollup_service, PANEL, start, now)
    assert answer.headers["X-Tracesearch-Metrics-Source"] == "span-metrics+spans"
    found = samples(answer.json())
    assert found[("0.7", recent // 1_000_000)] == pytest.approx(0.040, rel=1e-6)  # from the spans, exact
    assert abs(found[("0.7", start // 1_000_000)] - 0.040) <= STATED_RELATIVE_ERROR * 0.040


RED = "{ } | count_over_time() by (resource.service.name)"
RED_RAW = "{ duration >= 0ns } | count_over_time() by (resource.service.name)"


def per_service(body: dict[str, Any], instant: bool = False) -> dict[str, float]:
    found: dict[str, float] = {}
    for series in body["series"]:
        [service] = [kv["value"]["stringValue"] for kv in series["labels"]]
        found[service] = float(series["value"]) if instant else sum(float(p["value"]) for p in series["samples"])
    return found


def instant(service: Service, q: str, start_ns: int, end_ns: int) -> requests.Response:
    answer = service.get("/api/metrics/query", q=q, start=str(start_ns), end=str(end_ns))  # unix ns
    assert answer.status_code == 200, answer.text
    return answer


def test_red_counts_of_a_past_range_come_from_the_span_metrics_and_equal_the_spans(
    rollup_service: Service, past: tuple[int, int]
) -> None:
    start, end = past
    wait_for_rollups(rollup_service, start, end)
    fast, slow = query(rollup_service, RED, start, end), query(rollup_service, RED_RAW, start, end)
    assert (fast.headers["X-Tracesearch-Metrics-Source"], slow.headers["X-Tracesearch-Metrics-Source"]) == (
        "span-metrics",
        "spans",
    )
    per_minute = sum(n for n, _ in MIX)
    assert per_service(fast.json()) == per_service(slow.json()) == dict.fromkeys(SERVICES, 20 * per_minute)
    # An instant query from mid-minute: its partial first minute from the spans, the rest from the metrics.
    from_ns = start + 90 * S + 500_000_000
    one, exact = instant(rollup_service, RED, from_ns, end), instant(rollup_service, RED_RAW, from_ns, end)
    assert one.headers["X-Tracesearch-Metrics-Source"] == "span-metrics+spans"
    assert per_service(one.json(), instant=True) == per_service(exact.json(), instant=True)


def test_red_counts_of_the_newest_minutes_come_from_the_spans(rollup_service: Service, past: tuple[int, int]) -> None:
    """The span metrics of a minute are written after it; counting the newest minutes from them would
    show a dip until the flush."""
    start, end = past
    wait_for_rollups(rollup_service, start, end)
    now = time.time_ns()
    recent = now - now % MINUTE_NS - MINUTE_NS
    send(rollup_service, minute_spans(recent, random.Random(8)))
    rollup_service.refresh()
    fast, slow = query(rollup_service, RED, start, now), query(rollup_service, RED_RAW, start, now)
    assert fast.headers["X-Tracesearch-Metrics-Source"] == "span-metrics+spans"
    assert per_service(fast.json()) == per_service(slow.json())
    assert per_service(fast.json())["checkout"] >= 21 * sum(n for n, _ in MIX)


def test_a_range_reaching_back_before_the_rollups_comes_from_the_spans(
    rollup_service: Service, past: tuple[int, int]
) -> None:
    start, end = past
    wait_for_rollups(rollup_service, start, end)
    # Spans stored while the service graph was off (straight into the span index): no rollup holds them.
    earlier = start - 10 * MINUTE_NS
    posted = requests.post(
        f"{rollup_service.es_url}/_bulk",
        data=bulk_body(rollup_service.prefix, minute_spans(earlier, random.Random(3))),
        headers={"Content-Type": "application/x-ndjson"},
        timeout=60,
    )
    assert posted.status_code == 200 and not posted.json()["errors"]
    rollup_service.refresh()
    answer = query(rollup_service, PANEL, earlier, end)
    assert answer.headers["X-Tracesearch-Metrics-Source"] == "spans"
    assert ("0.7", earlier // 1_000_000) in samples(answer.json())
    assert query(rollup_service, PANEL, start, end).headers["X-Tracesearch-Metrics-Source"] == "span-metrics"
    assert math.isclose(samples(answer.json())[("0.95", earlier // 1_000_000)], 0.160, rel_tol=1e-6)
