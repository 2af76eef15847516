"""The Zipkin v2 read API, called exactly as Grafana's Zipkin data source calls it.

Grafana (grafana-zipkin-datasource, pkg/zipkin/client.go and src/QueryField.tsx) makes four calls:
``/api/v2/services``, ``/api/v2/spans?serviceName=``, ``/api/v2/traces?serviceName=&spanName=`` (no time
range, no limit) and ``/api/v2/trace/{id}``; it decodes every span with zipkin-go's model, labels each
trace of the picker ``<root.name> [<floor(root.duration/1000)> ms]`` where the root is the first span
without ``parentId``, and builds the trace frame from ``localEndpoint`` (else ``remoteEndpoint``).
The traces are made by the real OpenTelemetry SDK and sent by its Zipkin JSON and OTLP exporters.
"""

from __future__ import annotations

import ipaddress
import math
import random
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from tests.integration.conftest import Service
from tests.integration.otel_traces import end_ns, start_ns

HOUR_MS = 3_600_000


# ------------------------------------------------------------------------------------- Grafana's side


def grafana_get(service: Service, path: str, params: dict[str, str] | None = None) -> requests.Response:
    """The URL as Go builds it: ``url.JoinPath`` then ``url.Values.Encode`` (keys sorted, QueryEscape)."""
    url = service.url + path
    if params:
        url += "?" + urllib.parse.urlencode(sorted(params.items()))
    return requests.get(url, timeout=30)


def go_decode_span(span: dict[str, Any]) -> dict[str, Any]:
    """What zipkin-go's ``model.SpanModel`` JSON decoding needs; one failure fails the whole trace."""
    assert isinstance(span["traceId"], str) and len(span["traceId"]) in (16, 32), span
    int(span["traceId"], 16)
    assert len(span["id"]) == 16 and int(span["id"], 16) > 0, span
    if "parentId" in span:
        # An empty string would decode as parent 0000000000000000, not as "no parent".
        assert len(span["parentId"]) == 16 and int(span["parentId"], 16) > 0, span
    assert isinstance(span["timestamp"], int) and isinstance(span["duration"], int), span
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in span.get("tags", {}).items()), span
    for annotation in span.get("annotations", []):
        assert isinstance(annotation["timestamp"], int) and isinstance(annotation["value"], str)
    for name in ("localEndpoint", "remoteEndpoint"):
        endpoint = span.get(name) or {}
        for field in ("ipv4", "ipv6"):
            if field in endpoint:
                ipaddress.ip_address(endpoint[field])  # Go net.IP
        assert 0 <= endpoint.get("port", 0) < 65536
    assert isinstance(span.get("shared", False), bool)
    return span


def cascader_label(trace: list[dict[str, Any]]) -> tuple[str, str]:
    """``src/QueryField.tsx`` findTraces: (label, trace id) of one trace; a trace without a span
    lacking ``parentId`` throws there."""
    root = next((s for s in trace if not s.get("parentId")), None)
    assert root is not None, f"no root span: Grafana's cascader would throw on {trace}"
    return f"{root['name']} [{math.floor(root['duration'] / 1000)} ms]", root["traceId"]


def grafana_frame(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``pkg/zipkin/handler_querydata.go`` transformResponse: one row per span."""
    rows = []
    for span in map(go_decode_span, spans):
        local, remote = span.get("localEndpoint") or {}, span.get("remoteEndpoint") or {}
        tags = []
        for key, value in span.get("tags", {}).items():
            if key == "error":  # Grafana shows the error icon for error=true, the text as errorValue
                tags += [{"key": "error", "value": True}, {"key": "errorValue", "value": value}]
            else:
                tags.append({"key": key, "value": value})
        rows.append(
            {
                "traceID": span["traceId"],
                "spanID": span["id"],
                "parentSpanID": span.get("parentId"),
                "operationName": span.get("name", ""),
                "serviceName": local.get("serviceName") or remote.get("serviceName") or "unknown",
                "startTime": span["timestamp"] / 1000,
                "duration": span["duration"] / 1000,
                "logs": [{"fields": [{"key": "annotation", "value": a["value"]}]} for a in span.get("annotations", [])],
                "tags": ([{"key": "kind", "value": span["kind"]}] if span.get("kind") else []) + tags,
            }
        )
    return rows


# ------------------------------------------------------------------------------------- traces


@dataclass
class Sent:
    trace_id: str
    spans: list[ReadableSpan]

    def by_name(self, name: str) -> ReadableSpan:
        return next(s for s in self.spans if s.name == name)


@dataclass
class World:
    tag: str
    frontend: str
    checkout: str
    inventory: str
    zipkin: Sent  # via the OpenTelemetry Zipkin JSON exporter
    otlp: Sent  # via the OpenTelemetry OTLP/HTTP protobuf exporter
    headless: Sent  # via OTLP; its root span was never sent
    missing_parent: str


def _providers(
    names: list[str], exporter: Callable[[], SpanExporter], tag: str, memory: InMemorySpanExporter
) -> dict[str, TracerProvider]:
    providers = {}
    for name in names:
        resource = Resource.create({"service.name": name, "test.run": tag, "host.name": f"{name}-1"})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(exporter()))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        providers[name] = provider
    return providers


def _shop_trace(world: dict[str, str], exporter: Callable[[], SpanExporter], tag: str) -> Sent:
    """frontend GET /cart (SERVER) → checkout POST /checkout (CLIENT) → checkout (SERVER, error) →
    inventory reserve (SERVER)."""
    memory = InMemorySpanExporter()
    providers = _providers([world["frontend"], world["checkout"], world["inventory"]], exporter, tag, memory)
    front = providers[world["frontend"]].get_tracer("shop.frontend")
    checkout = providers[world["checkout"]].get_tracer("shop.checkout")
    inventory = providers[world["inventory"]].get_tracer("shop.inventory")
    with front.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.request.method", "GET")
        root.add_event("cache.miss", {"cache.key": "cart:42"})
        time.sleep(0.012)
        with (
            checkout.start_as_current_span("POST /checkout", kind=SpanKind.CLIENT),
            checkout.start_as_current_span("checkout", kind=SpanKind.SERVER) as server,
        ):
            server.set_status(Status(StatusCode.ERROR, "payment backend down"))
            with inventory.start_as_current_span("reserve", kind=SpanKind.SERVER):
                time.sleep(0.002)
    for provider in providers.values():
        provider.shutdown()
    return Sent(f"{root.get_span_context().trace_id:032x}", list(memory.get_finished_spans()))


def _headless_trace(inventory_name: str, url: str, tag: str) -> tuple[Sent, str]:
    """A server span whose caller's span never reached us (the caller exports elsewhere, or not yet)."""
    memory = InMemorySpanExporter()
    providers = _providers([inventory_name], lambda: OTLPSpanExporter(endpoint=f"{url}/v1/traces"), tag, memory)
    tracer = providers[inventory_name].get_tracer("shop.inventory")
    caller = SpanContext(
        random.getrandbits(128), random.getrandbits(64), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    with (
        tracer.start_as_current_span("reserve", set_span_in_context(NonRecordingSpan(caller)), SpanKind.SERVER),
        tracer.start_as_current_span("SELECT stock", kind=SpanKind.CLIENT),
    ):
        time.sleep(0.001)
    providers[inventory_name].shutdown()
    return Sent(f"{caller.trace_id:032x}", list(memory.get_finished_spans())), f"{caller.span_id:016x}"


@pytest.fixture(scope="module")
def world(service: Service) -> World:
    tag = uuid.uuid4().hex[:8]
    names = {"frontend": f"frontend-{tag}", "checkout": f"checkout-{tag}", "inventory": f"inventory-{tag}"}
    zipkin = _shop_trace(names, lambda: ZipkinExporter(endpoint=f"{service.url}/api/v2/spans"), tag)
    otlp = _shop_trace(names, lambda: OTLPSpanExporter(endpoint=f"{service.url}/v1/traces"), tag)
    headless, missing_parent = _headless_trace(names["inventory"], service.url, tag)
    service.refresh()
    return World(tag, zipkin=zipkin, otlp=otlp, headless=headless, missing_parent=missing_parent, **names)


def post_zipkin(service: Service, spans: list[dict[str, Any]]) -> None:
    answer = requests.post(f"{service.url}/api/v2/spans", json=spans, timeout=30)
    assert answer.status_code == 202, answer.text
    service.refresh()


def ids_of(traces: list[list[dict[str, Any]]]) -> set[str]:
    return {trace[0]["traceId"].rjust(32, "0") for trace in traces}


# ------------------------------------------------------------------------------------- Grafana's four calls


def test_grafana_picker_and_trace_view(service: Service, world: World) -> None:
    # 1. Save & test, then cascader level 1.
    services = grafana_get(service, "/api/v2/services")
    assert services.status_code == 200 and services.headers["Content-Type"] == "application/json"
    assert {world.frontend, world.checkout, world.inventory} <= set(services.json())

    # 2. Level 2: the span names of the chosen service.
    names = grafana_get(service, "/api/v2/spans", {"serviceName": world.checkout})
    assert names.status_code == 200
    assert names.json() == ["POST /checkout", "checkout"]

    # 3. Level 3: traces, with no time range and no limit.
    found = grafana_get(service, "/api/v2/traces", {"serviceName": world.frontend, "spanName": "GET /cart"})
    assert found.status_code == 200, found.text
    traces = found.json()
    assert ids_of(traces) == {world.zipkin.trace_id, world.otlp.trace_id}
    labels = {trace_id: label for label, trace_id in map(cascader_label, traces)}
    for sent in (world.zipkin, world.otlp):
        root = sent.by_name("GET /cart")
        [api_root] = [s for t in traces for s in t if s["id"] == f"{root.context.span_id:016x}"]
        # Zipkin carries whole microseconds; the label is the root span's duration in whole ms.
        assert abs(api_root["duration"] - (end_ns(root) - start_ns(root)) / 1000) <= 1
        assert labels[sent.trace_id] == f"GET /cart [{api_root['duration'] // 1000} ms]"
        assert api_root["duration"] // 1000 >= 12
        trace_id = sent.trace_id

        # 4. The trace view, with the id the picker took from the root span.
        answer = grafana_get(service, f"/api/v2/trace/{urllib.parse.quote_plus(trace_id)}")
        assert answer.status_code == 200, answer.text
        rows = {row["spanID"]: row for row in grafana_frame(answer.json())}
        assert len(rows) == len(sent.spans)
        for sdk_span in sent.spans:
            row = rows[f"{sdk_span.context.span_id:016x}"]
            assert row["operationName"] == sdk_span.name
            assert row["serviceName"] == sdk_span.resource.attributes["service.name"]
            assert row["parentSpanID"] == (f"{sdk_span.parent.span_id:016x}" if sdk_span.parent else None)
            assert abs(row["startTime"] - start_ns(sdk_span) / 1e6) <= 0.002  # 1 µs, and float ms
            assert abs(row["duration"] - (end_ns(sdk_span) - start_ns(sdk_span)) / 1e6) <= 0.002
        failing = rows[f"{sent.by_name('checkout').context.span_id:016x}"]
        assert {"key": "error", "value": True} in failing["tags"]
        assert {"key": "errorValue", "value": "payment backend down"} in failing["tags"]
        assert {"key": "kind", "value": "SERVER"} in failing["tags"]
        root_row = rows[f"{root.context.span_id:016x}"]
        assert root_row["logs"] and "cache.miss" in root_row["logs"][0]["fields"][0]["value"]


def test_a_trace_whose_root_was_never_sent_still_has_a_root_for_the_picker(service: Service, world: World) -> None:
    answer = grafana_get(service, "/api/v2/traces", {"serviceName": world.inventory, "spanName": "reserve"})
    traces = answer.json()
    assert ids_of(traces) == {world.zipkin.trace_id, world.otlp.trace_id, world.headless.trace_id}
    for trace in traces:
        cascader_label(trace)
        [go_decode_span(s) for s in trace]
    [headless] = [t for t in traces if t[0]["traceId"] == world.headless.trace_id]
    roots = [s for s in headless if "parentId" not in s]
    # The entry point of what we have stands in for the missing root, and says which parent it lost.
    assert [s["name"] for s in roots] == ["reserve"]
    assert roots[0]["tags"]["tracesearch.missing_parent_id"] == world.missing_parent
    child = next(s for s in headless if s["name"] == "SELECT stock")
    assert child["parentId"] == roots[0]["id"]
    # The trace view gets the spans as stored.
    stored = grafana_get(service, f"/api/v2/trace/{world.headless.trace_id}").json()
    assert next(s for s in stored if s["name"] == "reserve")["parentId"] == world.missing_parent


def test_shared_client_and_server_halves_come_back_as_zipkin_merges_them(service: Service, world: World) -> None:
    """B3 instrumentation (Brave, zipkin-go) reports one span id for the client and the server side."""
    trace_id, root_id, shared_id, other_id = (f"{random.getrandbits(64):016x}" for _ in range(4))
    now_us = time.time_ns() // 1000
    web, api = f"web-{world.tag}", f"api-{world.tag}"

    def span(span_id: str, kind: str, service_name: str, start: int, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"traceId": trace_id, "id": span_id, "name": f"{kind.lower()} call", "kind": kind}
        body |= {"timestamp": now_us + start, "duration": 1000, "localEndpoint": {"serviceName": service_name}}
        return body | extra

    post_zipkin(
        service,
        [
            span(root_id, "SERVER", web, 0, name="get /home"),
            span(shared_id, "CLIENT", web, 10, parentId=root_id, remoteEndpoint={"serviceName": api}),
            # Shared server half without its parent id (propagation lost it): Zipkin's read fixes it.
            span(shared_id, "SERVER", api, 20, shared=True),
            # Another pair whose server half forgot the shared flag.
            span(other_id, "CLIENT", web, 30, parentId=root_id),
            span(other_id, "SERVER", api, 40, parentId=root_id),
        ],
    )
    # A 64-bit trace id keeps its 16-digit form on the way back.
    got = grafana_get(service, f"/api/v2/trace/{trace_id}")
    assert got.status_code == 200, got.text
    spans = got.json()
    assert {s["traceId"] for s in spans} == {trace_id} and len(spans) == 5
    halves = {(s["id"], s["kind"]): s for s in spans}
    assert halves[(shared_id, "SERVER")]["shared"] is True
    assert halves[(shared_id, "SERVER")]["parentId"] == root_id
    assert halves[(other_id, "SERVER")]["shared"] is True
    assert "shared" not in halves[(shared_id, "CLIENT")] and "shared" not in halves[(other_id, "CLIENT")]
    assert halves[(shared_id, "CLIENT")]["remoteEndpoint"] == {"serviceName": api}
    rows = grafana_frame(spans)
    assert [r["parentSpanID"] for r in rows].count(None) == 1

    picked = grafana_get(service, "/api/v2/traces", {"serviceName": api, "spanName": "server call"}).json()
    assert ids_of(picked) == {trace_id.rjust(32, "0")}
    assert cascader_label(picked[0]) == ("get /home [1 ms]", trace_id)
    remote = grafana_get(service, "/api/v2/traces", {"serviceName": web, "remoteServiceName": api}).json()
    assert ids_of(remote) == {trace_id.rjust(32, "0")}


def test_unknown_trace_is_a_404_with_a_json_error(service: Service) -> None:
    answer = grafana_get(service, f"/api/v2/trace/{'ab' * 16}")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == 404 and "not found" in answer.json()["error"]["message"]


def test_trace_many_returns_the_known_traces(service: Service, world: World) -> None:
    ids = ",".join([world.zipkin.trace_id, "cd" * 16, world.otlp.trace_id, world.zipkin.trace_id])
    answer = grafana_get(service, "/api/v2/traceMany", {"traceIds": ids})
    assert answer.status_code == 200, answer.text
    assert ids_of(answer.json()) == {world.zipkin.trace_id, world.otlp.trace_id}


# ------------------------------------------------------------------------------------- Zipkin's defaults


def test_without_a_time_range_the_window_is_one_day_and_the_limit_ten(service: Service, world: World) -> None:
    svc = f"batch-{world.tag}"
    now_us = time.time_ns() // 1000
    old_id = f"{random.getrandbits(64):016x}"
    recent = [f"{random.getrandbits(64):016x}" for _ in range(12)]

    def single(trace_id: str, start_us: int) -> dict[str, Any]:
        span = {"traceId": trace_id, "id": trace_id, "name": "tick", "timestamp": start_us, "duration": 5}
        return span | {"localEndpoint": {"serviceName": svc}}

    post_zipkin(
        service,
        [single(t, now_us - i * 1000) for i, t in enumerate(recent)]
        + [single(old_id, now_us - 30 * HOUR_MS * 1000)],  # 30 hours ago: outside the default day
    )
    default = grafana_get(service, "/api/v2/traces", {"serviceName": svc, "spanName": "tick"}).json()
    assert [t[0]["id"] for t in default] == recent[:10]  # newest first, Zipkin's limit of 10
    wide = {"serviceName": svc, "lookback": str(48 * HOUR_MS), "limit": "100"}
    assert ids_of(grafana_get(service, "/api/v2/traces", wide).json()) == {t.rjust(32, "0") for t in [*recent, old_id]}
    end_ts = str(time.time_ns() // 1_000_000 - 29 * HOUR_MS)
    past = {"serviceName": svc, "endTs": end_ts, "lookback": str(2 * HOUR_MS)}
    assert ids_of(grafana_get(service, "/api/v2/traces", past).json()) == {old_id.rjust(32, "0")}


@pytest.mark.parametrize(
    ("service_key", "params", "expected"),
    [
        ("frontend", {"annotationQuery": "http.request.method=GET"}, {"zipkin", "otlp"}),
        ("frontend", {"annotationQuery": "http.request.method=POST"}, set()),
        ("frontend", {"annotationQuery": "cache.miss"}, {"zipkin", "otlp"}),
        ("frontend", {"annotationQuery": "cache.miss and http.request.method=GET"}, {"zipkin", "otlp"}),
        ("frontend", {"annotationQuery": "cache.miss and helicopter"}, set()),
        ("checkout", {"annotationQuery": "error"}, {"zipkin", "otlp"}),
        ("frontend", {"annotationQuery": "error"}, set()),
        ("frontend", {"minDuration": "10000"}, {"zipkin", "otlp"}),
        ("frontend", {"minDuration": "3600000000"}, set()),
        ("inventory", {"spanName": "reserve", "maxDuration": "1000000"}, {"zipkin", "otlp", "headless"}),
        ("inventory", {"spanName": "all"}, {"zipkin", "otlp", "headless"}),
        ("inventory", {"spanName": "SELECT stock"}, {"headless"}),
    ],
)
def test_search_parameters(
    service: Service, world: World, service_key: str, params: dict[str, str], expected: set[str]
) -> None:
    query = {"serviceName": getattr(world, service_key), **params}
    if "annotationQuery" in query:
        query["annotationQuery"] += f" and test.run={world.tag}"
    answer = grafana_get(service, "/api/v2/traces", query)
    assert answer.status_code == 200, answer.text
    assert ids_of(answer.json()) == {getattr(world, name).trace_id for name in expected}


def test_autocomplete_keys_and_values_come_from_the_tag_index_when_none_are_configured(
    service: Service, world: World
) -> None:
    """Lens asks for them when its search page opens (tests/integration/test_read_api_parity.py compares
    the configured keys with the real Zipkin's)."""
    keys = grafana_get(service, "/api/v2/autocompleteKeys").json()
    assert {"http.request.method", "test.run", "host.name"} <= set(keys) and keys == sorted(keys)
    values = grafana_get(service, "/api/v2/autocompleteValues", {"key": "test.run"}).json()
    assert world.tag in values and values == sorted(values)
    assert grafana_get(service, "/api/v2/autocompleteValues", {"key": "no.such.key"}).json() == []


# ------------------------------------------------------------------------------------- bad parameters


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v2/traces", {"endTs": "yesterday"}, "endTs"),
        ("/api/v2/traces", {"endTs": "0"}, "endTs"),
        ("/api/v2/traces", {"lookback": "-5"}, "lookback"),
        ("/api/v2/traces", {"limit": "0"}, "limit"),
        ("/api/v2/traces", {"limit": "ten"}, "limit"),
        ("/api/v2/traces", {"minDuration": "-1"}, "minDuration"),
        ("/api/v2/traces", {"minDuration": "1.5ms"}, "minDuration"),
        ("/api/v2/traces", {"minDuration": "1000", "maxDuration": "10"}, "maxDuration"),
        ("/api/v2/traces", {"annotationQuery": "=orphan"}, "annotationQuery"),
        ("/api/v2/spans", {}, "serviceName"),
        ("/api/v2/spans", {"serviceName": " "}, "serviceName"),
        ("/api/v2/remoteServices", {}, "serviceName"),
        ("/api/v2/autocompleteValues", {}, "key"),
        ("/api/v2/autocompleteValues", {"key": " "}, "key"),
        ("/api/v2/trace/not-a-trace-id", {}, "traceId"),
        (f"/api/v2/trace/{'a' * 33}", {}, "traceId"),
        ("/api/v2/traceMany", {}, "traceIds"),
        ("/api/v2/traceMany", {"traceIds": "abc,xyz"}, "traceIds"),
        ("/api/v2/traceMany", {"traceIds": ",".join(["ab"] * 101)}, "traceIds"),
        ("/api/v2/dependencies", {}, "endTs"),
        ("/api/v2/dependencies", {"endTs": "now"}, "endTs"),
        ("/api/v2/dependencies", {"endTs": "1", "lookback": "0"}, "lookback"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_parameter(
    service: Service, path: str, params: dict[str, str], field: str
) -> None:
    answer = grafana_get(service, path, params)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == 400 and error["field"] == field
    assert field in error["message"]


# ------------------------------------------------------------------------------------- service graph


def test_dependencies_come_from_the_service_graph_and_remote_services_from_the_spans(
    service: Service, world: World
) -> None:
    client, server = f"shop-{world.tag}", f"payments-{world.tag}"
    trace_id, root_id, client_id, server_id = (f"{random.getrandbits(64):016x}" for _ in range(4))
    start_us = time.time_ns() // 1000

    def span(span_id: str, name: str, kind: str, service_name: str, offset_us: int, **extra: Any) -> dict[str, Any]:
        body = {"traceId": trace_id, "id": span_id, "name": name, "kind": kind, "duration": 2000}
        return body | {"timestamp": start_us + offset_us, "localEndpoint": {"serviceName": service_name}} | extra

    post_zipkin(
        service,
        [
            span(root_id, "get /pay", "SERVER", client, 0),
            span(
                client_id,
                "post /charge",
                "CLIENT",
                client,
                100,
                parentId=root_id,
                remoteEndpoint={"serviceName": server},
            ),
            span(server_id, "charge", "SERVER", server, 200, parentId=client_id, tags={"error": "declined"}),
        ],
    )
    # The service graph pairs spans and writes its aggregates in the background: wait for them.
    params = {"endTs": str(time.time_ns() // 1_000_000 + 60_000), "lookback": str(HOUR_MS)}
    deadline = time.monotonic() + 90
    links: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not links:
        answer = grafana_get(service, "/api/v2/dependencies", params)
        assert answer.status_code == 200, answer.text
        links = [link for link in answer.json() if link["parent"] == client]
        time.sleep(0.5)
    assert links == [{"parent": client, "child": server, "callCount": 1, "errorCount": 1}]
    # As in Zipkin, the remote services are the remoteEndpoint names of the service's spans: the server
    # span names no caller (tests/integration/test_read_api_parity.py compares with the real Zipkin).
    assert grafana_get(service, "/api/v2/remoteServices", {"serviceName": client}).json() == [server]
    assert grafana_get(service, "/api/v2/remoteServices", {"serviceName": server}).json() == []
    # Before the spans happened there was nothing.
    before = {"endTs": str(start_us // 1000 - 60_000), "lookback": str(HOUR_MS)}
    assert [
        link for link in grafana_get(service, "/api/v2/dependencies", before).json() if link["parent"] == client
    ] == []


def test_service_and_span_names_match_ignoring_case_as_in_zipkin(service: Service) -> None:
    """Zipkin lowercases names at ingest and in its query; ours keep the case they were sent with."""
    tag = uuid.uuid4().hex[:8]
    name, trace_id = f"Frontend-{tag}", f"{random.getrandbits(64):016x}"
    start_us = time.time_ns() // 1000
    post_zipkin(
        service,
        [
            {
                "traceId": trace_id,
                "id": trace_id,
                "name": "GET /Cart",
                "kind": "CLIENT",
                "timestamp": start_us,
                "duration": 10,
                "localEndpoint": {"serviceName": name},
                "remoteEndpoint": {"serviceName": f"Cart-{tag}"},
            }
        ],
    )
    params = {"serviceName": name.lower(), "spanName": "get /cart", "remoteServiceName": f"cart-{tag}"}
    found = grafana_get(service, "/api/v2/traces", params).json()
    assert [[(s["name"], s["localEndpoint"]["serviceName"]) for s in trace] for trace in found] == [
        [("GET /Cart", name)]
    ]
    assert grafana_get(service, "/api/v2/spans", {"serviceName": name.upper()}).json() == ["GET /Cart"]
    assert name in grafana_get(service, "/api/v2/services").json()
