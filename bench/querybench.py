"""Benchmark 3: query latency of the Jaeger API over the stored data set.

Searches use many different one-hour windows, services, tags and durations, so the figures are not
those of one query answered from Elasticsearch's caches again and again.
"""

from __future__ import annotations

import json
import random
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from bench import dataset, latency, procs, service, stats, synth
from bench.config import Config
from bench.log import say

NS_PER_US = 1_000
HOUR_US = 3600 * 1_000_000
SEARCH_TAGS = (
    {"http.request.method": "POST"},
    {"db.system": "postgresql"},
    {"app.tenant": "tenant-07"},
    {"http.response.status_code": "503"},
    {"app.sampled": "true"},
)
MIN_DURATIONS = ("5ms", "20ms", "50ms")
LIMIT = 20


@dataclass
class Kind:
    """One kind of request: its latencies and what the answers held."""

    name: str
    example: str
    seconds: list[float]
    traces: list[int]
    spans: list[int]
    # Cores busy with processes other than the service, Elasticsearch and this one, while measuring.
    other_cores: float = 0.0

    @property
    def p50_ms(self) -> float:
        return stats.median(self.seconds) * 1000

    @property
    def p95_ms(self) -> float:
        return stats.percentile(self.seconds, 95) * 1000

    @property
    def max_ms(self) -> float:
        return max(self.seconds) * 1000

    @property
    def mean_traces(self) -> float:
        return sum(self.traces) / len(self.traces)

    @property
    def mean_spans(self) -> float:
        return sum(self.spans) / len(self.spans)

    @property
    def empty_share(self) -> float:
        return sum(1 for t in self.traces if t == 0) / len(self.traces)


@dataclass
class QueryResult:
    data: dataset.Dataset
    kinds: list[Kind]

    def kind(self, name: str) -> Kind:
        return next(k for k in self.kinds if k.name == name)


def _window(rng: random.Random, data: dataset.Dataset) -> tuple[int, int]:
    start_us = rng.randrange(data.start_ns // NS_PER_US, data.end_ns // NS_PER_US - HOUR_US)
    return start_us, start_us + HOUR_US


def _search_path(service_name: str, tags: dict[str, str], window: tuple[int, int], min_duration: str = "") -> str:
    params = {"service": service_name, "tags": json.dumps(tags), "start": window[0], "end": window[1], "limit": LIMIT}
    if min_duration:
        params["minDuration"] = min_duration
    return "/api/traces?" + urllib.parse.urlencode(params)


def _seconds_window(rng: random.Random, data: dataset.Dataset) -> tuple[int, int]:
    start_us, end_us = _window(rng, data)
    return start_us // 1_000_000, end_us // 1_000_000


def _tempo_search(q: str, window: tuple[int, int]) -> str:
    params = {"q": q, "limit": LIMIT, "spss": 3, "start": window[0], "end": window[1]}
    return "/api/search?" + urllib.parse.urlencode(params)


def _tempo_path(kind: str, rng: random.Random, data: dataset.Dataset) -> str:
    services, end_ms = data.services, data.end_ns // 1_000_000
    if kind == "service_map_1h":
        end = rng.randrange(data.start_ns // 1_000_000 + 3_600_000, end_ms)
        return f"/api/dependencies?endTs={end}&lookback=3600000"
    if kind == "service_map_24h":
        return f"/api/dependencies?endTs={end_ms}&lookback=86400000"
    if kind == "latency_panel_24h":
        q = f'{{resource.service.name="{rng.choice(services)}"}} | quantile_over_time(duration, .5, .95, .99)'
        params = {"q": q, "start": data.start_ns // 10**9, "end": data.end_ns // 10**9, "step": "60s"}
        return "/api/metrics/query_range?" + urllib.parse.urlencode(params)
    if kind == "traceql_attribute":
        return _tempo_search(rng.choice(TRACEQL_ATTRIBUTE), _seconds_window(rng, data))
    if kind == "traceql_structural":
        return _tempo_search(rng.choice(TRACEQL_STRUCTURAL), _seconds_window(rng, data))
    return f"/api/v2/search/tag/{rng.choice(TAGS_FOR_VALUES)}/values?limit=5000"


def request_paths(kind: str, n: int, rng: random.Random, data: dataset.Dataset) -> list[str]:
    services = data.services
    if kind in TEMPO_KINDS:
        return [_tempo_path(kind, rng, data) for _ in range(n)]
    if kind == "trace_by_id":
        return [f"/api/traces/{rng.choice(data.big_trace_ids)}" for _ in range(n)]
    if kind == "search":
        return [
            _search_path(rng.choice(services), rng.choice(SEARCH_TAGS), _window(rng, data), rng.choice(MIN_DURATIONS))
            for _ in range(n)
        ]
    if kind == "services":
        return ["/api/services"] * n
    words = synth.WORDS
    return [_search_path(rng.choice(services), {"_text": rng.choice(words)}, _window(rng, data)) for _ in range(n)]


def _check_tempo(kind: str, answer: dict[str, object]) -> tuple[int, int]:
    """(items, spans) held by a Tempo-API or dependencies answer; an empty service map is an error."""
    if kind.startswith("service_map"):
        links = answer["data"]
        assert isinstance(links, list)
        if not links:
            raise RuntimeError(f"{kind}: the service map is empty")
        return len(links), 0
    if kind == "latency_panel_24h":
        series = answer["series"]
        assert isinstance(series, list)
        if not series:
            raise RuntimeError("latency panel: no series")
        return len(series), sum(len(s["samples"]) for s in series)
    if kind == "tag_values":
        values = answer["tagValues"]
        assert isinstance(values, list)
        return len(values), 0
    traces = answer["traces"]
    assert isinstance(traces, list)
    return len(traces), sum(s["matched"] for t in traces for s in t.get("spanSets", []))


def check_answers(data: dataset.Dataset) -> Callable[[str, dict[str, object]], tuple[int, int]]:
    def check(kind: str, answer: dict[str, object]) -> tuple[int, int]:
        if kind in TEMPO_KINDS:
            return _check_tempo(kind, answer)
        traces = answer["data"]
        assert isinstance(traces, list)
        if kind == "services":
            if sorted(traces) != sorted(data.services):
                raise RuntimeError(f"/api/services answered {traces}, expected {data.services}")
            return 0, 0
        spans = sum(len(t["spans"]) for t in traces)
        if kind == "trace_by_id" and (len(traces) != 1 or spans != data.big_trace_spans):
            raise RuntimeError(f"a 200-span trace came back with {len(traces)} traces, {spans} spans")
        return len(traces), spans

    return check


TRACEQL_ATTRIBUTE = (
    '{span.http.request.method="POST"}',
    '{span.db.system="redis"}',
    '{resource.service.name="payments" && span.http.response.status_code=503}',
    '{span.app.tenant="tenant-07"}',
)
TRACEQL_STRUCTURAL = (
    '{resource.service.name="frontend" && kind=server} >> {span.db.system="mongodb"}',
    "{kind=client} > {kind=server && status=error}",
    '{span.http.request.method="DELETE"} ~ {span.db.system="postgresql"}',
)
TAGS_FOR_VALUES = (
    "resource.service.name",
    "span.http.route",
    "span.db.system",
    "name",
    "span.http.response.status_code",
)
TEMPO_KINDS = (
    "service_map_1h",
    "service_map_24h",
    "latency_panel_24h",
    "traceql_attribute",
    "traceql_structural",
    "tag_values",
)
KINDS = ("trace_by_id", "search", "services", "text_search", *TEMPO_KINDS)


class OtherCpu:
    """Cores kept busy by processes other than the service, Elasticsearch and the bench, between
    ``start`` and ``stop``: a latency measured while something else ran is flagged, not hidden."""

    def __init__(self, running: service.Service, es_pid: int | None) -> None:
        self._running = running
        self._es_pid = es_pid
        self._before = self._began = 0.0

    def _outside(self) -> float:
        ours = self._running.cpu_seconds() + (procs.cpu_seconds(self._es_pid) if self._es_pid else 0.0)
        return procs.machine_busy_seconds() - ours - procs.own_cpu()

    def start(self) -> None:
        self._before, self._began = self._outside(), time.perf_counter()

    def stop(self) -> float:
        return max(0.0, (self._outside() - self._before) / (time.perf_counter() - self._began))


def run(config: Config, es_url: str, es_pid: int | None) -> QueryResult:
    data = dataset.ensure(config, es_url)
    rng = random.Random(config.seed + 2)
    check = check_answers(data)
    running = service.start(es_url, config.query_prefix, config.workers, config.threads)
    kinds = []
    watch = OtherCpu(running, es_pid)
    try:
        for kind in KINDS:
            latency.get_each(running.port, request_paths(kind, config.warmup_requests, rng, data))
            paths = request_paths(kind, config.requests, rng, data)
            watch.start()
            answers = latency.get_each(running.port, paths)
            measured = Kind(kind, paths[0], [], [], [], watch.stop())
            for path, answer in zip(paths, answers, strict=True):
                if answer.status != 200:
                    raise RuntimeError(f"GET {path}: HTTP {answer.status} {answer.body[:300]!r}")
                # Parsed after the timing, so the client's JSON work is not part of any latency.
                traces, spans = check(kind, json.loads(answer.body))
                measured.seconds.append(answer.seconds)
                measured.traces.append(traces)
                measured.spans.append(spans)
            kinds.append(measured)
            say(f"{kind}: p50 {measured.p50_ms:.1f} ms, p95 {measured.p95_ms:.1f} ms over {len(answers)} requests")
    finally:
        running.stop()
    if not config.keep_query_data:
        dataset.drop(es_url, config.query_prefix)
    return QueryResult(data, kinds)
