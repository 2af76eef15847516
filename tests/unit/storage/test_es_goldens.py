"""Every Elasticsearch request body tracesearch sends, checked against committed golden files.

Each case makes one request to the real Flask app (or one call to a storage adapter that no endpoint
reaches), with a client that records instead of sending (``es_recorder``), the clock frozen, and
compares what would have been sent with ``tests/goldens/es/<surface>.json``. A change of any query,
aggregation or bulk body fails here, so a refactoring that moves code proves it changed no query.

When a change is meant: ``pytest tests/unit/storage/test_es_goldens.py --update-goldens`` rewrites the
files from what the code sends now; review the diff and commit it with the change that explains it.

Search cases say whether the TraceQL pushdown was exact (the first page of candidates is the answer:
the candidate search asks for ``limit`` traces) or a superset (a larger page, evaluated exactly).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from flask.testing import FlaskClient

from tests import traceql_fixture
from tests.unit.storage.es_recorder import Answer, RecordingElasticsearch
from tracesearch.app import create_app
from tracesearch.codecs.otlp_proto import encode_export_request
from tracesearch.servicegraph.aggregator import Aggregator
from tracesearch.servicegraph.model import Call, SpanRef
from tracesearch.servicegraph.rollup import ServiceLatency
from tracesearch.settings import Settings
from tracesearch.storage.es.span_reader import EsSpanReader

GOLDENS = Path(__file__).resolve().parents[2] / "goldens" / "es"
NS_PER_S = 1_000_000_000
NOW_NS = 1_795_176_000 * NS_PER_S  # 2026-11-20 12:00:00 UTC
NOW_S = NOW_NS // NS_PER_S
PREFIX = "gold"
SEARCH_LIMIT = 20
TRACE = "0af7651916cd43dd8448eb211c80319c"
OTHER_TRACE = "00000000000000004bf92f3577b34da6"


@dataclass
class Case:
    name: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    respond: Callable[[str, dict[str, Any]], Answer | None] = lambda index, body: None
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    data: bytes | None = None


def one_trace_found(index: str, body: dict[str, Any]) -> Answer | None:
    """The newest-traces search finds one trace; everything else finds nothing."""
    if "collapse" in body:
        return {"hits": {"hits": [{"fields": {"trace.id": [TRACE], "start_ns": [NOW_NS - NS_PER_S]}}]}}
    return None


def tag_values_found(index: str, body: dict[str, Any]) -> Answer | None:
    """Autocomplete sees three values, two of them numeric-looking (so the numeric check is sent too)."""
    sample = body.get("aggs", {}).get("sample", {}).get("aggs", {})
    include = sample.get("values", {}).get("terms", {}).get("include", "")
    if include.startswith(("span\\.http\\.status_code=", "resource\\.http\\.status_code=")):
        prefix = include.removesuffix(".*").replace("\\", "")
        values = [f"{prefix}{v}" for v in ("200", "500.5", "abc")]
        return {"aggregations": {"sample": {"values": {"buckets": [{"key": v} for v in values]}}}}
    return None


# ------------------------------------------------------------------------------------------------ cases


def jaeger_cases() -> Iterator[Case]:
    yield Case("services", "/api/services")
    yield Case("service operations", "/api/services/frontend/operations")
    yield Case("operations of a kind", "/api/operations", {"service": "frontend", "spanKind": "SERVER"})
    yield Case("trace by id", f"/api/traces/{TRACE}")
    yield Case(
        "trace by id, range in µs", f"/api/traces/{TRACE}", {"start": NOW_NS // 1000 - 10**9, "end": NOW_NS // 1000}
    )
    yield Case(
        "trace by id, range in ms", f"/api/traces/{TRACE}", {"start": NOW_NS // 10**6 - 10**6, "end": NOW_NS // 10**6}
    )
    yield Case("traces by ids", "/api/traces", {"traceID": [TRACE, OTHER_TRACE[16:]]})
    range_us = {"start": NOW_NS // 1000 - 3600 * 10**6, "end": NOW_NS // 1000}
    tags: dict[str, dict[str, str]] = {
        "service only": {},
        "string tag": {"http.method": "GET"},
        "numeric-looking tag": {"http.status_code": "500"},
        "float tag": {"ratio": "0.25"},
        "at least": {"http.status_code": ">=500"},
        "more than": {"retries": ">3"},
        "at most": {"latency": "<=0.5"},
        "less than": {"latency": "<-2"},
        "beyond 2**53": {"big": ">9007199254740993"},
        "not equal": {"region": "!=eu"},
        "full text": {"_text": '"connection refused" -timeout'},
        "error true": {"error": "true"},
        "error false": {"error": "false"},
        "span kind": {"span.kind": "server"},
        "status code": {"otel.status_code": "ERROR"},
        "scope name": {"otel.scope.name": "io.opentelemetry.flask"},
        "library name": {"otel.library.name": "io.opentelemetry.flask"},
        "value with braces": {"q": "{a}"},
        "several": {"http.method": "GET", "http.status_code": ">=500", "_text": "timeout"},
    }
    for name, tag_set in tags.items():
        params = {"service": "frontend", **range_us, "tags": json.dumps(tag_set)}
        yield Case(f"search, {name}", "/api/traces", params, respond=one_trace_found)
    yield Case(
        "search, operation, durations, limit",
        "/api/traces",
        {
            "service": "frontend",
            "operation": "GET /cart",
            "minDuration": "1.2ms",
            "maxDuration": "1s",
            "limit": 7,
            **range_us,
        },
        respond=one_trace_found,
    )
    yield Case("search, repeated tag=", "/api/traces", {"service": "frontend", "tag": ["a:1", "b:two"], **range_us})
    yield Case("search, default window", "/api/traces", {"service": "frontend"})
    yield Case(
        "dependencies", "/api/dependencies", {"endTs": NOW_NS // 10**6, "lookback": 3_600_000, "service": "cart"}
    )
    yield Case("dependencies, defaults", "/api/dependencies")
    yield Case(
        "dependencies over a year", "/api/dependencies", {"endTs": NOW_NS // 10**6, "lookback": 365 * 86_400_000}
    )


def zipkin_cases() -> Iterator[Case]:
    yield Case("services", "/api/v2/services")
    yield Case("span names", "/api/v2/spans", {"serviceName": "frontend"})
    yield Case("remote services", "/api/v2/remoteServices", {"serviceName": "frontend"})
    yield Case("autocomplete keys", "/api/v2/autocompleteKeys")
    yield Case("autocomplete values", "/api/v2/autocompleteValues", {"key": "http.method"})
    yield Case("trace", f"/api/v2/trace/{OTHER_TRACE[16:]}")
    yield Case("trace many", "/api/v2/traceMany", {"traceIds": f"{TRACE},{OTHER_TRACE}"})
    yield Case("dependencies", "/api/v2/dependencies", {"endTs": NOW_NS // 10**6, "lookback": 86_400_000})
    window = {"endTs": NOW_NS // 10**6, "lookback": 3_600_000}
    searches: dict[str, dict[str, Any]] = {
        "service only, defaults": {"serviceName": "frontend"},
        "nothing at all": {},
        "span name": {"serviceName": "frontend", "spanName": "get /cart", **window},
        "span name all": {"serviceName": "frontend", "spanName": "all", **window},
        "remote service": {"serviceName": "frontend", "remoteServiceName": "cart", **window},
        "annotation error": {"serviceName": "frontend", "annotationQuery": "error", **window},
        "annotation tag and word": {"annotationQuery": "http.method=GET and timeout", **window},
        "annotation comparison": {"annotationQuery": "http.status_code=>=500", **window},
        "annotation quoted word": {"annotationQuery": 'say"hi"', **window},
        "durations and limit": {
            "serviceName": "frontend",
            "minDuration": 1000,
            "maxDuration": 5_000_000,
            "limit": 3,
            **window,
        },
    }
    for name, params in searches.items():
        yield Case(f"traces, {name}", "/api/v2/traces", params, respond=one_trace_found)


def conformance_queries() -> list[str]:
    queries = [q for q, _ in traceql_fixture.CONFORMANCE] + [q for q, _ in traceql_fixture.CONFORMANCE_SPANS]
    extra = [
        "{ span.big >= 9007199254740993 }",
        "{ span.big < -9007199254740993 }",
        '{ name =~ "a{2}" }',
        '{ span.x =~ "[0-9]+" }',
        '{ span.x !~ "a.*" }',
        '{ span.code = "500" }',
        "{ span.flag = false }",
        '{ statusMessage != "x" }',
        "{ duration = 5ms }",
        "{ duration != 5ms }",
        "{ span:parentID != nil }",
        "{ " + " && ".join(f'span.k{i} = "v{i}"' for i in range(40)) + " }",
        "{ " + " && ".join(f'(span.a{i} = "x" || span.b{i} = "y")' for i in range(25)) + " }",
        '{ span.a = "x" } && { span.b = 1 }',
        '{ span.a = "x" } || { }',
        '{ span.a = "x" } | select(span.b)',
        '{ span.a = "x" } | count() > 1',
    ]
    return list(dict.fromkeys(queries + extra))


def tempo_cases() -> Iterator[Case]:
    hour = {"start": NOW_S - 3600, "end": NOW_S}
    for q in conformance_queries():
        yield Case(f"search {q}", "/api/search", {"q": q, "limit": SEARCH_LIMIT, "spss": 3, **hour})
    yield Case("search, candidates fetched", "/api/search", {"q": '{ name = "x" }', **hour}, respond=one_trace_found)
    yield Case("search, legacy tags", "/api/search", {"tags": 'http.status_code=500 service.name="a b"', **hour})
    yield Case("search, legacy durations", "/api/search", {"minDuration": "10ms", "maxDuration": "2s", **hour})
    yield Case("search, default window", "/api/search", {"q": "{ status = error }"})
    yield Case("trace v2", f"/api/v2/traces/{TRACE}", hour)
    yield Case("trace v2, no range", f"/api/v2/traces/{TRACE}")
    yield Case("trace v1 protobuf", f"/api/traces/{TRACE}", hour, headers={"Accept": "application/protobuf"})
    yield Case("tags v2", "/api/v2/search/tags")
    yield Case(
        "tags v2, span scope, q",
        "/api/v2/search/tags",
        {"scope": "span", "q": '{ resource.service.name = "a" }', "limit": 10, **hour},
    )
    yield Case(
        "tags v2, q that does not parse", "/api/v2/search/tags", {"scope": "resource", "q": "{ span.a = ", **hour}
    )
    yield Case("tags v1", "/api/search/tags", hour)
    for tag in ("span.http.status_code", ".http.status_code", "resource.service.name", "event.exception.type"):
        yield Case(
            f"tag values v2 {tag}",
            f"/api/v2/search/tag/{tag}/values",
            {"q": "{ kind = server }", **hour},
            respond=tag_values_found,
        )
    for tag in (
        "name",
        "status",
        "kind",
        "statusMessage",
        "rootName",
        "rootServiceName",
        "event:name",
        "instrumentation:name",
    ):
        yield Case(f"tag values v2 {tag}", f"/api/v2/search/tag/{tag}/values", hour)
    yield Case(
        "tag values v2, encoded twice",
        "/api/v2/search/tag/" + quote(quote("span.a b", safe=""), safe="") + "/values",
        hour,
    )
    yield Case("tag values v1", "/api/search/tag/http.status_code/values", hour, respond=tag_values_found)
    metrics = {
        "rate": "{ } | rate()",
        # RED shapes: from the spans here (the service graph is off); the span metrics' request is below.
        "rate by name, RED shape": '{ resource.service.name = "frontend" } | rate() by (name)',
        "count by kind and status, RED shape": "{ kind = server } | count_over_time() by (kind, status)",
        "rate by attribute": '{ span.http.method = "GET" } | rate() by (span.http.route, resource.service.name)',
        "quantiles": '{ resource.service.name = "frontend" } | quantile_over_time(duration, .5, .95, .99) by (name)',
        "histogram": "{ status = error } | histogram_over_time(duration)",
        "avg": "{ } | avg_over_time(duration) by (status)",
        "min": "{ duration > 1ms } | min_over_time(duration)",
        "max": "{ } | max_over_time(duration) by (statusMessage)",
        "sum": '{ span.x >= 2 || span.y = "z" } | sum_over_time(duration)',
    }
    for name, q in metrics.items():
        yield Case(f"metrics range, {name}", "/api/metrics/query_range", {"q": q, "step": "60s", **hour})
    latency = '{ resource.service.name = "frontend" } | quantile_over_time(duration, .5, .95, .99)'
    # The service graph is off here: the spans answer, in steps aligned on the step as with the rollups.
    yield Case(
        "metrics range, latency panel, rollups asked", "/api/metrics/query_range", {"q": latency, "step": "60s", **hour}
    )
    yield Case("metrics range, default range and step", "/api/metrics/query_range", {"q": "{ } | rate()"})
    yield Case(
        "metrics range, odd step", "/api/metrics/query_range", {"q": "{ } | count_over_time()", "step": "45s", **hour}
    )
    yield Case("metrics instant", "/api/metrics/query", {"q": '{ name = "a" } | count_over_time()', **hour})
    yield Case("metrics refused", "/api/metrics/query_range", {"q": "{ } > { } | rate()", **hour})


def write_cases() -> Iterator[Case]:
    spans = [span for trace in traceql_fixture.traces(NOW_NS - 60 * NS_PER_S)[:9] for span in trace]
    yield Case(
        "otlp protobuf",
        "/v1/traces",
        method="POST",
        data=encode_export_request(spans),
        headers={"Content-Type": "application/x-protobuf"},
    )
    zipkin = [
        {
            "traceId": OTHER_TRACE[16:],
            "id": "a" * 16,
            "name": "get /",
            "kind": "SERVER",
            "timestamp": NOW_NS // 1000 - 5_000_000,
            "duration": 1500,
            "localEndpoint": {"serviceName": "web", "ipv4": "10.0.0.1"},
            "remoteEndpoint": {"serviceName": "browser", "port": 8080},
            "annotations": [{"timestamp": NOW_NS // 1000 - 4_999_000, "value": "ws"}],
            "tags": {"http.path": "/", "error": ""},
        },
        {
            "traceId": OTHER_TRACE[16:],
            "id": "a" * 16,
            "name": "get /",
            "kind": "CLIENT",
            "timestamp": NOW_NS // 1000 - 5_000_100,
            "duration": 1700,
            "localEndpoint": {"serviceName": "browser"},
            "shared": False,
        },
    ]
    yield Case(
        "zipkin json",
        "/api/v2/spans",
        method="POST",
        data=orjson.dumps(zipkin),
        headers={"Content-Type": "application/json"},
    )


def logs_cases() -> Iterator[Case]:
    """The trace is looked up first (not found here), then its logs are searched."""
    path = f"/api/v1/traces/{TRACE}/logs"
    yield Case("trace logs, default window", path)
    yield Case("trace logs, window and limit", path, {"start": NOW_S - 3600, "end": NOW_S, "limit": 20})
    yield Case("trace logs, 64-bit id", f"/api/v1/traces/{OTHER_TRACE[16:].upper()}/logs")


SURFACES: dict[str, Callable[[], Iterator[Case]]] = {
    "jaeger": jaeger_cases,
    "zipkin": zipkin_cases,
    "tempo": tempo_cases,
    "writes": write_cases,
    "logs": logs_cases,
}


# ------------------------------------------------------------------------------------------------ running


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: NOW_NS)
    monkeypatch.setattr(time, "time", lambda: NOW_NS / NS_PER_S)


def recording_app(recorder: RecordingElasticsearch) -> FlaskClient:
    settings = Settings(index_prefix=PREFIX, install_templates=False, servicegraph_enabled=False, retention_s=0)
    app = create_app(settings)
    app.extensions["tracesearch"].__dict__["_es"] = recorder
    return app.test_client()


def pushdown(sent: list[dict[str, Any]]) -> str | None:
    """Exact when the first candidate search asked for ``limit`` traces, superset when for a page."""
    searches = [s for s in sent if s["api"] == "search" and "collapse" in s["body"]]
    if not searches:
        return None
    return "exact" if searches[0]["body"]["size"] == SEARCH_LIMIT else "superset"


def run_case(case: Case) -> dict[str, Any]:
    recorder = RecordingElasticsearch(respond=case.respond)
    client = recording_app(recorder)
    if case.method == "POST":
        answer = client.post(case.path, data=case.data, headers=case.headers)
    else:
        answer = client.get(case.path, query_string=case.params, headers=case.headers)
    outcome: dict[str, Any] = {"status": answer.status_code, "sent": recorder.sent}
    if case.path == "/api/search" and case.params.get("limit") == SEARCH_LIMIT:
        outcome["pushdown"] = pushdown(recorder.sent)
    return outcome


def storage_outcomes() -> dict[str, Any]:
    """What the service-graph stage and the aggregate readers send; no endpoint reaches these alone."""
    from tracesearch.storage.es.aggregate_reader import EsAggregateReader
    from tracesearch.storage.es.aggregate_writer import EsAggregateWriter
    from tracesearch.storage.es.span_lookup import EsSpanLookup

    out: dict[str, Any] = {}
    minute = NOW_NS - NOW_NS % (60 * NS_PER_S)
    refs = [
        SpanRef(TRACE, "b" * 16, "checkout", NOW_NS - 5 * NS_PER_S),
        SpanRef(OTHER_TRACE, "c" * 16, "cart", NOW_NS - 86_400 * NS_PER_S),
    ]

    recorder = RecordingElasticsearch()
    EsSpanLookup(recorder, PREFIX, 3600).parents(refs)  # type: ignore[arg-type]
    out["span lookup, parents"] = recorder.sent
    recorder = RecordingElasticsearch()
    EsSpanLookup(recorder, PREFIX, 3600).served(refs)  # type: ignore[arg-type]
    out["span lookup, served"] = recorder.sent

    aggregator = Aggregator(100)
    spans = traceql_fixture.traces(minute)[0]
    aggregator.add_spans(spans)
    aggregator.add_calls(
        [
            Call("frontend", "checkout", "", False, 80_000_000, 95_000_000, minute + 10),
            Call("checkout", "postgres", "database", True, 10_000_000, -1, minute + 61 * NS_PER_S),
        ]
    )
    snapshot = aggregator.drain()
    rollup = ServiceLatency()
    rollup.add(spans, 0)
    snapshot.latency = rollup.drain(0, everything=True)
    recorder = RecordingElasticsearch()
    EsAggregateWriter(recorder, PREFIX).write(snapshot, "host-1-abc")  # type: ignore[arg-type]
    out["aggregates, write"] = recorder.sent

    reader = EsAggregateReader(RecordingElasticsearch(), PREFIX)  # type: ignore[arg-type]
    recorder = reader._client  # type: ignore[assignment]
    reader.span_metrics(NOW_NS - 3600 * NS_PER_S, NOW_NS, 60 * NS_PER_S, {"span_kind": "server"}, ("service",))
    reader.service_edges(NOW_NS - 3600 * NS_PER_S, NOW_NS)
    out["aggregates, span metrics and edges"] = recorder.sent

    reader = EsAggregateReader(RecordingElasticsearch(), PREFIX)  # type: ignore[arg-type]
    recorder = reader._client  # type: ignore[assignment]
    hour_ago = NOW_NS - 3600 * NS_PER_S
    reader.calls_per_step(hour_ago, NOW_NS, 60 * NS_PER_S, {"service": "frontend"}, ["span_name"])
    reader.calls_per_step(hour_ago, NOW_NS, 60 * NS_PER_S, {"span_kind": "server"}, ["span_kind", "status_code"])
    out["aggregates, RED calls per step (TraceQL rate, count_over_time)"] = recorder.sent

    reader = EsAggregateReader(RecordingElasticsearch(), PREFIX)  # type: ignore[arg-type]
    recorder = reader._client  # type: ignore[assignment]
    reader.service_latency_first(NOW_NS - 86400 * NS_PER_S, NOW_NS)
    reader.service_latency(NOW_NS - 86400 * NS_PER_S, NOW_NS, 60 * NS_PER_S, "frontend", by_service=False)
    out["aggregates, service latency rollups"] = recorder.sent

    recorder = RecordingElasticsearch()
    EsSpanReader(recorder, PREFIX, 7 * 86400, 3600, clock=lambda: NOW_NS).has_spans(  # type: ignore[arg-type]
        NOW_NS - 86400 * NS_PER_S, NOW_NS - 3600 * NS_PER_S
    )
    out["span reader, any span in a range"] = recorder.sent
    return out


def outcomes(surface: str) -> dict[str, Any]:
    if surface == "storage":
        return storage_outcomes()
    result: dict[str, Any] = {}
    for case in SURFACES[surface]():
        assert case.name not in result, f"duplicate case name {case.name!r}"
        result[case.name] = run_case(case)
    return result


@pytest.mark.parametrize("surface", [*SURFACES, "storage"])
def test_elasticsearch_requests_match_the_goldens(
    surface: str, frozen_clock: None, request: pytest.FixtureRequest
) -> None:
    actual = orjson.loads(orjson.dumps(outcomes(surface)))
    path = GOLDENS / f"{surface}.json"
    if request.config.getoption("--update-goldens"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    expected = json.loads(path.read_text())
    assert sorted(actual) == sorted(expected), "cases added or removed: run with --update-goldens"
    for name in expected:
        assert actual[name] == expected[name], f"{surface}: {name!r} sends something else now"
