"""Per-tenant overrides against the real service and Elasticsearch: a tenant's ingest rate (429 +
Retry-After, which the real OTLP exporter honours until every span is stored), its retention (its old days
go, no other tenant's), its sampling strategies file, and its alert rules (evaluated, notified with its name)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devstack import launch
from tests.integration import test_alerting as alerting
from tests.integration.conftest import Service, drop_prefix, start_service, stop_service
from tests.integration.test_retention import day, indices, otlp_body

HEADER = "X-Scope-OrgID"
RATE, BURST = 10, 30  # the tenant "slow": spans per second per worker, and the bucket
SHORT_DAYS, DEFAULT_DAYS = 2, 10  # retention of the tenant "short", and of everyone else
NS = 1_000_000_000
STRATEGY: dict[str, Any] = {"service_strategies": [{"service": "shop", "type": "probabilistic", "param": 0.125}]}


@pytest.fixture(scope="module")
def tenants(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Path]]:
    """A service reading tenants from X-Scope-OrgID, with the overrides file of the tests below; and the
    strategies file of the tenant "short"."""
    folder = tmp_path_factory.mktemp("tenants")
    strategies = folder / "short-strategies.json"
    strategies.write_text(json.dumps(STRATEGY))
    overrides = folder / "tenants.yaml"
    overrides.write_text(
        "tenants:\n"
        f"  slow:\n    TRACESEARCH_INGEST_SPANS_PER_SECOND: {RATE}\n    TRACESEARCH_INGEST_BURST_SPANS: {BURST}\n"
        f"  short:\n    TRACESEARCH_RETENTION: {SHORT_DAYS}d\n"
        f"    TRACESEARCH_SAMPLING_STRATEGIES_FILE: {strategies}\n"
    )
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    env = {
        "TRACESEARCH_TENANT_HEADER": "true",
        "TRACESEARCH_TENANTS_FILE": str(overrides),
        "TRACESEARCH_RETENTION": f"{DEFAULT_DAYS}d",
        "TRACESEARCH_RETENTION_SWEEP_INTERVAL": "1s",
    }
    running = start_service(es_url, prefix, folder, env)
    running.wait_for_workers(2)
    yield running, strategies
    stop_service(running)
    drop_prefix(es_url, prefix)


def otlp_request(trace_id: str, starts: list[int]) -> bytes:
    return otlp_body([(trace_id, start) for start in starts], "limits")


def post(service: Service, tenant: str | None, body: bytes) -> requests.Response:
    headers = {"Content-Type": "application/x-protobuf", **({HEADER: tenant} if tenant else {})}
    return requests.post(f"{service.url}/v1/traces", data=body, headers=headers, timeout=60)


def spans_of(service: Service, tenant: str | None, trace_id: str, expected: int, timeout_s: float = 20) -> int:
    """How many spans of the trace the Jaeger API gives ``tenant`` once ``expected`` are there (or the time is up)."""
    headers = {HEADER: tenant} if tenant else {}
    deadline = time.monotonic() + timeout_s
    count = -1
    while time.monotonic() < deadline:
        answer = requests.get(f"{service.url}/api/traces/{trace_id}", headers=headers, timeout=30)
        data = answer.json().get("data") or [] if answer.status_code == 200 else []
        count = len(data[0]["spans"]) if data else 0
        if count >= expected:
            return count
        time.sleep(0.5)
    return count


def sdk_spans(count: int) -> list[ReadableSpan]:
    """``count`` spans of one trace, made by the SDK: a root and its children."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "limited"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("root"):
        for index in range(count - 1):
            with tracer.start_as_current_span(f"child-{index}"):
                pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def refused_spans(service: Service, tenant: str, reason: str) -> float:
    text = service.get("/metrics").text
    line = f'tracesearch_ingest_refused_spans_total{{reason="{reason}",tenant="{tenant}"}}'
    return sum(float(row.split()[-1]) for row in text.splitlines() if row.startswith(line))


def test_over_its_rate_a_tenant_gets_429_and_the_otlp_exporter_then_delivers_every_span(
    tenants: tuple[Service, Path], caplog: pytest.LogCaptureFixture
) -> None:
    service, _ = tenants
    # Raw: a request over the burst can never pass (413); within it, a worker's bucket runs dry (429).
    assert post(service, "slow", otlp_request(uuid.uuid4().hex, [time.time_ns()] * (BURST + 1))).status_code == 413
    answers = [post(service, "slow", otlp_request(uuid.uuid4().hex, [time.time_ns()] * BURST)) for _ in range(4)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert 1 <= int(limited[0].headers["Retry-After"]) <= BURST // RATE
    assert "TRACESEARCH_INGEST_SPANS_PER_SECOND" in status_pb2.Status.FromString(limited[0].content).message
    # Other tenants are not limited by slow's bucket.
    assert post(service, "fast", otlp_request(uuid.uuid4().hex, [time.time_ns()] * 100)).status_code == 200

    # The real exporter: 6 batches of 25 spans, sent back to back, at 10 spans/s per worker.
    spans = sdk_spans(150)
    trace_id = format(spans[0].context.trace_id, "032x")
    exporter = OTLPSpanExporter(endpoint=f"{service.url}/v1/traces", headers={HEADER: "slow"}, timeout=60)
    with caplog.at_level(logging.WARNING):
        results = [exporter.export(spans[i : i + 25]) for i in range(0, len(spans), 25)]
    exporter.shutdown()  # type: ignore[no-untyped-call]
    assert results == [SpanExportResult.SUCCESS] * 6
    retried = [r for r in caplog.records if "Transient error" in r.getMessage()]
    assert retried, "the exporter never met a 429: the rate did not limit it"
    assert spans_of(service, "slow", trace_id, 150) == 150
    assert spans_of(service, None, trace_id, 1, timeout_s=1) == 0  # and only slow sees them
    assert refused_spans(service, "slow", "rate") > 0 and refused_spans(service, "slow", "burst") == BURST + 1


def test_a_tenants_retention_deletes_its_old_days_only(tenants: tuple[Service, Path], es_url: str) -> None:
    service, _ = tenants
    prefix = service.prefix
    expired = {
        f"{prefix}.short.-span-{day(SHORT_DAYS + 1)}",
        f"{prefix}.short.-spanmetrics-{day(SHORT_DAYS + 5)}",
        f"{prefix}.never-served.-span-{day(DEFAULT_DAYS + 1)}",  # a tenant no process served: the default's
        f"{prefix}-span-{day(DEFAULT_DAYS + 1)}",
    }
    kept = {
        f"{prefix}.short.-span-{day(SHORT_DAYS)}",
        f"{prefix}.slow.-span-{day(SHORT_DAYS + 1)}",  # another tenant, with the default's 10 days
        f"{prefix}.never-served.-span-{day(DEFAULT_DAYS)}",
        f"{prefix}-span-{day(SHORT_DAYS + 1)}",  # the default tenant's
    }
    for name in expired | kept:
        requests.put(f"{es_url}/{name}", timeout=30).raise_for_status()
    deadline = time.monotonic() + 30
    while indices(es_url, prefix) & expired and time.monotonic() < deadline:
        time.sleep(0.5)
    left = indices(es_url, prefix)
    assert not left & expired, f"still there after 30 s: {left & expired}"
    assert kept <= left

    # Its receivers refuse spans of its deleted days; another tenant's keep them.
    # A day no test made an index of, so that slow's writer makes it, from its template.
    old = int(datetime.fromisoformat(day(SHORT_DAYS + 2)).replace(tzinfo=UTC).timestamp()) * NS + NS
    trace_id = uuid.uuid4().hex
    refused = trace_service_pb2.ExportTraceServiceResponse.FromString(
        post(service, "short", otlp_request(trace_id, [old])).content
    )
    assert refused.partial_success.rejected_spans == 1
    assert "TRACESEARCH_RETENTION" in refused.partial_success.error_message
    stored = trace_service_pb2.ExportTraceServiceResponse.FromString(
        post(service, "slow", otlp_request(trace_id, [old])).content
    )
    assert stored.partial_success.rejected_spans == 0
    assert spans_of(service, "slow", trace_id, 1) == 1


def sampling(service: Service, tenant: str | None) -> Any:
    headers = {HEADER: tenant} if tenant else {}
    return requests.get(f"{service.url}/api/sampling", params={"service": "shop"}, headers=headers, timeout=30)


def test_a_tenants_strategies_file_is_what_it_is_served_and_written(tenants: tuple[Service, Path]) -> None:
    service, path = tenants
    assert sampling(service, "short").json() == {
        "strategyType": "PROBABILISTIC",
        "probabilisticSampling": {"samplingRate": 0.125},
    }
    default = {"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 1.0}}
    assert sampling(service, "slow").json() == default  # no file of its own: the default probability
    assert sampling(service, None).json() == default
    admin = f"{service.url}/api/v1/sampling/strategies"
    # Without a file of its own a tenant's PUT answers what it answers without a file (409), writing nothing.
    assert requests.put(admin, json=STRATEGY, headers={HEADER: "slow"}, timeout=30).status_code == 409
    changed: dict[str, Any] = {"service_strategies": [{"service": "shop", "type": "probabilistic", "param": 0.5}]}
    assert requests.put(admin, json=changed, headers={HEADER: "short"}, timeout=30).status_code == 200
    assert json.loads(path.read_text()) == changed


def test_a_bad_overrides_file_stops_the_start_naming_tenant_and_field(es_url: str, tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text("tenants:\n  team-a:\n    TRACESEARCH_KAFKA_TOPIC: mine\n")
    env = {"TRACESEARCH_TENANTS_FILE": str(path)}
    with pytest.raises(launch.LaunchError) as failed:
        start_service(es_url, f"it-{uuid.uuid4().hex[:8]}", tmp_path, env)
    assert (
        f"configuration error: TRACESEARCH_TENANTS_FILE={path}: tenants.team-a.TRACESEARCH_KAFKA_TOPIC: "
        "TRACESEARCH_KAFKA_TOPIC cannot be overridden per tenant"
    ) in str(failed.value)


def send_slow(service: Service, tenant: str) -> None:
    """Slow server spans of the operation rules_file's p95 rule watches, as ``tenant``."""
    now = time.time_ns()
    spans = [
        alerting._span(uuid.uuid4().hex, alerting.SLOW_OP, now - int(alerting.SLOW_S * 1e9) - i * NS // 100, now)
        for i in range(10)
    ]
    body: dict[str, Any] = {"resourceSpans": [{"resource": alerting._resource(), "scopeSpans": [{"spans": spans}]}]}
    answer = requests.post(f"{service.url}/v1/traces", json=body, headers={HEADER: tenant}, timeout=30)
    assert answer.status_code == 200, answer.text


def test_a_listed_tenants_rules_are_evaluated_and_its_notifications_name_it(es_url: str, tmp_path: Path) -> None:
    receiver = alerting.Receiver()
    overrides = tmp_path / "tenants.yaml"
    overrides.write_text(f"tenants:\n  team-a:\n    TRACESEARCH_ALERTS_RULES_FILE: {alerting.rules_file(tmp_path)}\n")
    env = {
        **alerting.settings(tmp_path / "unused.yaml", receiver),
        "TRACESEARCH_ALERTS_RULES_FILE": "",  # the default tenant has no rules
        "TRACESEARCH_TENANT_HEADER": "true",
        "TRACESEARCH_TENANTS_FILE": str(overrides),
    }
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    service = start_service(es_url, prefix, tmp_path, env)
    try:
        deadline = time.monotonic() + 4 * alerting.INTERVAL_S + 10
        while not receiver.bodies and time.monotonic() < deadline:
            send_slow(service, "team-a")
            send_slow(service, "team-b")  # no rules: its slow spans fire nothing
            service.refresh()
            time.sleep(0.5)
        assert receiver.states() == ["firing"], f"nothing fired: {service.log_tail()}"
        assert receiver.bodies[0]["labels"] == {
            "team": "payments",
            "alertname": "pay-p95",
            "severity": "critical",
            "tenant": "team-a",
        }
        # Its state is the tenant's, in the tenant's own alert index.
        current = requests.get(f"{service.url}/api/v1/alerts", headers={HEADER: "team-a"}, timeout=30).json()
        assert [a["state"] for a in current["alerts"]] == ["firing"], current
        default = requests.get(f"{service.url}/api/v1/alerts", timeout=30)
        assert default.status_code in (200, 404) and "firing" not in default.text
    finally:
        stop_service(service)
        receiver.server.shutdown()
        drop_prefix(es_url, prefix)
