"""Grafana's Tempo data source against the running service, request for request.

The requests are the ones Grafana sends (grafana-contracts.md section 4: paths, parameters, units,
Accept headers, double-encoded tag names); the answers are decoded as Grafana decodes them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.integration.conftest import Service
from tests.integration.otel_traces import ExportedTrace, end_ns, start_ns, three_service_trace
from tests.integration.tempo_contract import TraceByIDResponse, search_schema_problems

PROTOBUF = {"Accept": "application/protobuf"}


@pytest.fixture(scope="module")
def exported(service: Service) -> ExportedTrace:
    tag = f"tempo-{uuid.uuid4().hex[:8]}"
    trace = three_service_trace(lambda: OTLPSpanExporter(endpoint=f"{service.url}/v1/traces"), tag)
    service.refresh()
    return trace


def window() -> dict[str, int]:
    now = int(time.time())
    return {"start": now - 3600, "end": now + 60}


def tempo_search(service: Service, q: str, **extra: str | int) -> dict[str, Any]:
    answer = service.get("/api/search", q=q, limit=20, spss=3, **window(), **extra)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert search_schema_problems(body) == []
    return body


def test_save_and_test_and_buildinfo(service: Service) -> None:
    echo = service.get("/api/echo")
    assert echo.status_code == 200 and echo.text == "echo"
    info = service.get("/api/status/buildinfo").json()
    major, minor, _ = info["version"].split("+")[0].split(".")
    assert (int(major), int(minor)) >= (2, 6)
    assert set(info) == {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}


def _resource_service(resource_spans: trace_pb2.ResourceSpans) -> str:
    name: str = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
    return name


def _decoded_spans(traces_data: trace_pb2.TracesData) -> dict[str, tuple[str, trace_pb2.Span, InstrumentationScope]]:
    spans = {}
    for rs in traces_data.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                spans[span.span_id.hex()] = (_resource_service(rs), span, ss.scope)
    return spans


def test_trace_by_id_v2_is_protobuf_grafana_can_decode(service: Service, exported: ExportedTrace) -> None:
    answer = requests.get(f"{service.url}/api/v2/traces/{exported.trace_id}", headers=PROTOBUF, timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/protobuf")
    decoded = TraceByIDResponse()
    decoded.ParseFromString(answer.content)
    assert decoded.status == 0  # COMPLETE
    spans = _decoded_spans(decoded.trace)
    expected = {f"{s.context.span_id:016x}": s for s in exported.spans}
    assert set(spans) == set(expected)
    for span_id, (service_name, span, scope) in spans.items():
        sdk = expected[span_id]
        assert service_name == sdk.resource.attributes["service.name"]
        assert span.start_time_unix_nano == sdk.start_time and span.end_time_unix_nano == sdk.end_time
        assert sdk.instrumentation_scope is not None
        assert span.name == sdk.name and scope.name == sdk.instrumentation_scope.name
        parent = f"{sdk.parent.span_id:016x}" if sdk.parent else ""
        assert span.parent_span_id.hex() == parent
    statuses = {spans[i][1].name: spans[i][1].status.code for i in spans}
    assert statuses["checkout"] == trace_pb2.Status.STATUS_CODE_ERROR


def test_trace_by_id_v1_protobuf_fallback_and_jaeger_json_share_the_path(
    service: Service, exported: ExportedTrace
) -> None:
    answer = requests.get(f"{service.url}/api/traces/{exported.trace_id}", headers=PROTOBUF, timeout=30)
    assert answer.status_code == 200
    data = trace_pb2.TracesData()
    data.ParseFromString(answer.content)
    assert len(_decoded_spans(data)) == 4
    assert all(_resource_service(rs) for rs in data.resource_spans)
    jaeger = service.get(f"/api/traces/{exported.trace_id}")
    assert jaeger.headers["Content-Type"].startswith("application/json")
    assert len(jaeger.json()["data"][0]["spans"]) == 4


def test_trace_by_id_json_for_other_clients(service: Service, exported: ExportedTrace) -> None:
    body = service.get(f"/api/v2/traces/{exported.trace_id}").json()
    spans = [s for rs in body["trace"]["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert len(spans) == 4


@pytest.mark.parametrize("path", ["/api/v2/traces/", "/api/traces/"])
def test_unknown_trace_is_404_so_grafana_falls_back(service: Service, path: str) -> None:
    answer = requests.get(f"{service.url}{path}{'ab' * 16}", headers=PROTOBUF, timeout=30)
    assert answer.status_code == 404


def test_search_tab_query_finds_the_trace_with_spansets(service: Service, exported: ExportedTrace) -> None:
    body = tempo_search(service, '{resource.service.name="checkout" && name="checkout" && status=error}')
    found = {t["traceID"]: t for t in body["traces"]}
    assert exported.trace_id in found
    trace = found[exported.trace_id]
    assert trace["rootServiceName"] == "frontend" and trace["rootTraceName"] == "GET /cart"
    root = exported.by_name("GET /cart")
    assert trace["startTimeUnixNano"] == str(min(start_ns(s) for s in exported.spans))
    assert trace["durationMs"] == (max(end_ns(s) for s in exported.spans) - start_ns(root)) // 1_000_000
    spanset = trace["spanSets"][0]
    assert spanset["matched"] == 1
    assert [s["name"] for s in spanset["spans"]] == ["checkout"]
    shown = {kv["key"]: kv["value"] for kv in spanset["spans"][0]["attributes"]}
    assert shown["service.name"] == {"stringValue": "checkout"} and shown["status"] == {"stringValue": "error"}
    assert trace["serviceStats"]["checkout"] == {"spanCount": 2, "errorCount": 1}


def test_search_spss_limits_spans_but_not_matched(service: Service, exported: ExportedTrace) -> None:
    body = tempo_search(service, '{resource.test.run="' + exported.run + '"}')
    trace = next(t for t in body["traces"] if t["traceID"] == exported.trace_id)
    assert trace["spanSets"][0]["matched"] == 4 and len(trace["spanSets"][0]["spans"]) == 3


def test_structural_and_pipeline_queries(service: Service, exported: ExportedTrace) -> None:
    run = exported.run
    child = tempo_search(service, f'{{resource.test.run="{run}" && kind=client}} > {{kind=server}}')
    spans = [s["name"] for t in child["traces"] if t["traceID"] == exported.trace_id for s in t["spanSets"][0]["spans"]]
    assert spans == ["checkout"]
    counted = tempo_search(service, f'{{resource.test.run="{run}"}} | count() > 3')
    assert exported.trace_id in {t["traceID"] for t in counted["traces"]}
    too_many = tempo_search(service, f'{{resource.test.run="{run}"}} | count() > 4')
    assert exported.trace_id not in {t["traceID"] for t in too_many["traces"]}


def test_legacy_tag_search(service: Service, exported: ExportedTrace) -> None:
    answer = service.get("/api/search", tags="http.response.status_code=503", minDuration="0ms", **window())
    assert answer.status_code == 200
    assert exported.trace_id in {t["traceID"] for t in answer.json()["traces"]}


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"q": "{ .a = }"}, "line 1, column"),
        ({"q": '{ name = "x" '}, "line 1"),
        ({"q": "{}", "tags": "a=b"}, "can't specify tags and q"),
        ({"q": "{}", "limit": "-1"}, "limit"),
        ({"q": "{}", "start": "10"}, "start"),
        ({"q": "{} | rate()"}, "/api/metrics/query_range"),
    ],
)
def test_bad_search_is_400_with_a_message(service: Service, params: dict[str, str], words: str) -> None:
    answer = service.get("/api/search", **params)
    assert answer.status_code == 400
    assert words in answer.json()["message"]


def test_tag_names_by_scope(service: Service, exported: ExportedTrace) -> None:
    body = service.get("/api/v2/search/tags", limit=5000).json()
    scopes = {s["name"]: set(s["tags"]) for s in body["scopes"]}
    assert {"service.name", "host.name", "test.run"} <= scopes["resource"]
    assert {"http.response.status_code", "cart.total", "feature.flag"} <= scopes["span"]
    assert {"name", "status", "duration", "kind", "rootServiceName"} <= scopes["intrinsic"]
    assert "cache.key" in scopes["event"] and "link.kind" in scopes["link"]
    v1 = service.get("/api/search/tags").json()["tagNames"]
    assert "http.response.status_code" in v1 and "service.name" in v1


def tag_values(service: Service, tag: str, **params: str | int) -> list[dict[str, Any]]:
    answer = service.get(f"/api/v2/search/tag/{tag}/values", limit=5000, **params)
    assert answer.status_code == 200, answer.text
    values: list[dict[str, Any]] = answer.json()["tagValues"]
    return values


def test_tag_values_are_typed_as_grafana_quotes_them(service: Service, exported: ExportedTrace) -> None:
    services = tag_values(service, "resource.service.name")
    assert {"type": "string", "value": "checkout"} in services
    codes = tag_values(service, "span.http.response.status_code")
    assert {"type": "int", "value": "503"} in codes and {"type": "int", "value": "200"} in codes
    assert {"type": "float", "value": "12.5"} in tag_values(service, "span.cart.total")
    assert {"type": "keyword", "value": "error"} in tag_values(service, "status")
    assert {"type": "keyword", "value": "server"} in tag_values(service, "kind")
    names = {v["value"] for v in tag_values(service, "name", q='{resource.service.name="checkout"}')}
    assert names >= {"checkout", "POST /checkout"} and "GET /cart" not in names


def test_v1_tag_values_are_plain_strings_of_unscoped_names(service: Service, exported: ExportedTrace) -> None:
    answer = service.get("/api/search/tag/service.name/values").json()
    assert {"frontend", "checkout", "inventory"} <= set(answer["tagValues"])
    codes = service.get("/api/search/tag/http.response.status_code/values").json()["tagValues"]
    assert "503" in codes


def test_tag_values_with_double_encoded_names(service: Service, exported: ExportedTrace) -> None:
    # Old Grafana runs encodeURIComponent twice: event:name arrives as event%253Aname on the wire.
    twice = quote(quote("event:name", safe=""), safe="")
    values = {v["value"] for v in tag_values(service, twice)}
    assert "cache.miss" in values and "exception" in values


def test_tag_values_with_unparsable_q_are_unfiltered(service: Service, exported: ExportedTrace) -> None:
    values = {v["value"] for v in tag_values(service, "resource.service.name", q="{ resource.service.name = ")}
    assert {"frontend", "checkout", "inventory"} <= values


def metrics(service: Service, q: str, path: str = "/api/metrics/query_range", **extra: str | int) -> dict[str, Any]:
    now = int(time.time())
    answer = service.get(path, q=q, start=now - 3600, end=now + 60, step="60s", **extra)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_metrics_count_rate_and_quantiles(service: Service, exported: ExportedTrace) -> None:
    run = exported.run
    counted = metrics(service, f'{{resource.test.run="{run}"}} | count_over_time() by (resource.service.name)')
    totals = {s["labels"][0]["value"]["stringValue"]: sum(p["value"] for p in s["samples"]) for s in counted["series"]}
    # The run tag is on the resource of every span, the linked batch-import trace's included.
    assert totals == {"frontend": 1, "checkout": 2, "inventory": 2}
    rate = metrics(service, f'{{resource.test.run="{run}" && status=error}} | rate()')
    assert sum(p["value"] for s in rate["series"] for p in s["samples"]) == pytest.approx(1 / 60)
    quantiles = metrics(service, f'{{resource.test.run="{run}" && name="reserve"}} | quantile_over_time(duration, .5)')
    reserve = exported.by_name("reserve")
    [series] = quantiles["series"]
    assert series["labels"] == [{"key": "p", "value": {"stringValue": "0.5"}}]
    [sample] = series["samples"]
    assert sample["value"] == pytest.approx((end_ns(reserve) - start_ns(reserve)) / 1e9, rel=0.01)


def test_metrics_instant_and_histogram(service: Service, exported: ExportedTrace) -> None:
    run = exported.run
    instant = metrics(service, f'{{resource.test.run="{run}"}} | count_over_time()', path="/api/metrics/query")
    assert sum(s["value"] for s in instant["series"]) == 5
    histogram = metrics(service, f'{{resource.test.run="{run}"}} | histogram_over_time(duration)')
    assert sum(p["value"] for s in histogram["series"] for p in s["samples"]) == 5
    assert all(s["labels"][0]["key"] == "__bucket" for s in histogram["series"])


def test_metrics_refuse_what_they_cannot_count_exactly(service: Service) -> None:
    answer = service.get("/api/metrics/query_range", q="{kind=client} > {kind=server} | rate()")
    assert answer.status_code == 400 and "structural" in answer.json()["message"]
    not_metrics = service.get("/api/metrics/query_range", q="{}")
    assert not_metrics.status_code == 400


def _totals(body: dict[str, Any]) -> dict[str, float]:
    return {
        next((kv["value"]["stringValue"] for kv in s["labels"]), ""): sum(p["value"] for p in s["samples"])
        for s in body["series"]
    }


def test_red_queries_of_fresh_spans_count_every_span_at_once(service: Service, exported: ExportedTrace) -> None:
    """A RED shape the span metrics could answer counts its newest minutes over the spans (their span
    metrics are written a flush later): the same counts as a shape only the spans answer, with no wait.
    Past ranges from the span metrics: test_latency_rollups.py."""
    now = int(time.time())
    window: dict[str, str | int] = {"start": now - 3600, "end": now + 60, "step": "60s"}
    red = '{resource.service.name="checkout"} | count_over_time() by (name)'
    raw = '{resource.service.name="checkout" && duration >= 0ns} | count_over_time() by (name)'
    fast = service.get("/api/metrics/query_range", q=red, **window)
    slow = service.get("/api/metrics/query_range", q=raw, **window)
    assert fast.headers["X-Tracesearch-Metrics-Source"] in ("spans", "span-metrics+spans")
    assert slow.headers["X-Tracesearch-Metrics-Source"] == "spans"
    assert _totals(fast.json()) == _totals(slow.json())
    assert _totals(fast.json())["checkout"] >= 1 and _totals(fast.json())["POST /checkout"] >= 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/search?q={}",
        "/api/v2/search/tags",
        "/api/search/tags",
        "/api/v2/search/tag/name/values",
        "/api/v2/search/tag/span.http.route/values",
        '/api/metrics/query_range?q={resource.service.name="a"} | rate() by (name)',
        '/api/metrics/query_range?q={span.a="b"} | quantile_over_time(duration, .9) by (span.a)',
        "/api/metrics/query?q={} | count_over_time()",
        "/api/dependencies",
        "/api/v2/dependencies?endTs=1795324358000",
    ],
)
def test_a_store_with_no_index_yet_answers_empty_not_500(
    es_url: str, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    from tracesearch.app import create_app
    from tracesearch.settings import Settings

    monkeypatch.setenv("TRACESEARCH_ES_URL", es_url)
    monkeypatch.setenv("TRACESEARCH_INDEX_PREFIX", f"never-written-{uuid.uuid4().hex[:8]}")
    answer = create_app(Settings.from_env()).test_client().get(path)
    assert answer.status_code == 200, answer.data


@pytest.mark.parametrize(
    ("q", "status"),
    [
        # A flat chain: one Elasticsearch bool with 60 clauses.
        ("{" + " && ".join(f'span.k{i}="v"' for i in range(60)) + "}", 200),
        # Alternating && and || nest: past Elasticsearch's bool depth the planner pushes less, never errs.
        ("{" + " || ".join(f'name="GET /cart" && span.k{i}="v"' for i in range(60)) + "}", 200),
        ("{" + "||".join(f".k={i}" for i in range(140)) + "}", 400),
    ],
)
def test_long_queries_answer_or_are_refused_never_500(service: Service, q: str, status: int) -> None:
    answer = service.get("/api/search", q=q, **window())
    assert answer.status_code == status, answer.text
    if status == 400:
        assert "too deeply nested" in answer.json()["message"]


def test_times_past_2262_are_refused(service: Service) -> None:
    answer = service.get("/api/search", q="{}", start="1e30", end="2e30")
    assert answer.status_code == 400 and "2262" in answer.json()["message"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/dependencies?endTs=99999999999999999999&lookback=1", 400),
        ("/api/v2/dependencies?endTs=99999999999999999999", 400),
        ("/api/v2/traces?serviceName=frontend&endTs=99999999999999999999", 400),
        # Ranges of centuries: answered (by index pattern), not refused for a too long request line.
        ("/api/dependencies?endTs=9223372036854&lookback=9223372036854", 200),
        ("/api/v2/dependencies?endTs=9223372036854&lookback=9223372036854", 200),
        ("/api/traces/ab?start=99999999999999999999&end=99999999999999999999", 404),
    ],
)
def test_out_of_range_times_are_4xx_or_answered_never_500(service: Service, path: str, status: int) -> None:
    assert requests.get(f"{service.url}{path}", timeout=30).status_code == status
