"""Tenants kept apart in Kafka mode and on /metrics, on the real broker and Elasticsearch: each
tenant's spans, sent through the receiver and the ingester, land in its own indices and are read back
by it alone (the same trace id sent by two tenants included); a record whose tenant header is invalid
goes to the dead-letter topic and is stored nowhere; tail sampling decides two tenants' traces of one
id apart; a tenant's /metrics holds its own series only.

The outage test (Elasticsearch stopped under two tenants' load, on the dev stack's own servers only, as
test_kafka_pipeline.py's) checks the ingester's retries and commits over batches written tenant by tenant:
every span each tenant's SDK got acknowledged is stored once, in its own indices."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Service, drop_prefix, start_service, stop_elasticsearch, stop_service
from tests.integration.kafka_stack import KafkaStack, stored_ids, wait_until_stored
from tests.integration.test_kafka_pipeline import OWN_STACK, Load, assert_exactly_once
from tracesearch import tenancy
from tracesearch.codecs import otlp_proto
from tracesearch.model import Resource, Scope, Span, SpanKind, StatusCode

HEADER = {"X-Scope-OrgID": ""}
TENANT_SETTINGS = {"TRACESEARCH_TENANT_HEADER": "true"}
TAIL_WAIT_S = 2.0


def tenant_prefix(prefix: str, tenant: str | None) -> str:
    return tenancy.index_prefix(prefix, tenant)


def make_spans(trace_id: str, service: str, count: int, error: bool = False) -> list[Span]:
    start = time.time_ns() - 10_000_000_000
    resource = Resource({"service.name": service}, service)
    return [
        Span(
            trace_id,
            uuid.uuid4().hex[:16],
            f"{service} op",
            start + i * 1_000_000,
            start + (i + 1) * 1_000_000,
            resource,
            Scope("tenant-test"),
            kind=SpanKind.SERVER,
            status_code=StatusCode.ERROR if error and i == 0 else StatusCode.UNSET,
        )
        for i in range(count)
    ]


def send(url: str, spans: list[Span], tenant: str | None) -> None:
    """Post as an SDK does (503/429 from a slow shared broker retried), as ``tenant``."""
    headers = {"Content-Type": "application/x-protobuf"}
    if tenant is not None:
        headers["X-Scope-OrgID"] = tenant
    body = otlp_proto.encode_export_request(spans)
    for _ in range(10):
        answer = requests.post(f"{url}/v1/traces", data=body, headers=headers, timeout=30)
        if answer.status_code not in (429, 503):
            break
        time.sleep(1)
    assert answer.status_code == 200, answer.text


def ids_of(spans: list[Span]) -> set[tuple[str, str]]:
    return {(s.trace_id, s.span_id) for s in spans}


def read_trace(service: Service, trace_id: str, tenant: str | None) -> set[str]:
    """The span ids of the trace as ``tenant`` reads it through the Jaeger API (none: 404)."""
    headers = {"X-Scope-OrgID": tenant} if tenant is not None else {}
    answer = requests.get(f"{service.url}/api/traces/{trace_id}", headers=headers, timeout=30)
    if answer.status_code == 404:
        return set()
    assert answer.status_code == 200, answer.text
    return {span["spanID"] for trace in answer.json()["data"] for span in trace["spans"]}


@pytest.fixture
def stack(es_url: str, bootstrap: str, tmp_path: Path) -> Iterator[KafkaStack]:
    running = KafkaStack(es_url, bootstrap, tmp_path)
    running.settings.update(TENANT_SETTINGS)
    running.start_service()
    yield running
    running.stop()
    drop_prefix(es_url, running.prefix)


def test_each_tenants_spans_land_in_its_own_indices_and_are_read_by_it_alone(stack: KafkaStack) -> None:
    stack.start_ingester()
    shared = uuid.uuid4().hex  # both tenants and the default one send this trace id
    sent = {
        "team-a": make_spans(shared, "a-shop", 3) + make_spans(uuid.uuid4().hex, "a-shop", 2),
        "team-b": make_spans(shared, "b-bank", 4),
        None: make_spans(shared, "default-svc", 1),
    }
    for tenant, spans in sent.items():
        send(stack.receiver.url, spans, tenant)
    for tenant, spans in sent.items():
        where = tenant_prefix(stack.prefix, tenant)
        stored = wait_until_stored(stack.es_url, where, ids_of(spans), 90)
        assert sorted(stored) == sorted(ids_of(spans)), f"{tenant}'s indices hold {len(stored)} spans"
    for tenant, spans in sent.items():
        own = {s.span_id for s in spans if s.trace_id == shared}
        assert read_trace(stack.receiver, shared, tenant) == own, tenant
    # On the topic: each tenant's records carry it in the header and key space, the default's as before.
    consumer = KafkaConsumer(
        stack.env["TRACESEARCH_KAFKA_TOPIC"],
        bootstrap_servers=stack.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    seen = {(m.key, tuple(m.headers)) for m in consumer if m.key is not None and shared.encode() in m.key}
    consumer.close()
    assert seen == {
        (f"team-a/{shared}".encode(), (("tenant", b"team-a"),)),
        (f"team-b/{shared}".encode(), (("tenant", b"team-b"),)),
        (shared.encode(), ()),
    }


def produce(stack: KafkaStack, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    try:
        producer.send(stack.env["TRACESEARCH_KAFKA_TOPIC"], key=key, value=value, headers=headers).get(timeout=30)
    finally:
        producer.close(timeout=10)


def test_a_record_with_an_invalid_tenant_header_is_dead_lettered_and_stored_nowhere(stack: KafkaStack) -> None:
    stack.start_ingester()
    bad_trace, good_trace = uuid.uuid4().hex, uuid.uuid4().hex
    bad = make_spans(bad_trace, "sneaky", 2)
    good = make_spans(good_trace, "honest", 2)
    produce(stack, otlp_proto.encode_export_request(bad), f"x/{bad_trace}".encode(), [("tenant", b"Team-A/../x")])
    produce(stack, otlp_proto.encode_export_request(good), f"team-a/{good_trace}".encode(), [("tenant", b"team-a")])
    # The good record after it is stored: the ingester went past the bad one.
    wait_until_stored(stack.es_url, tenant_prefix(stack.prefix, "team-a"), ids_of(good), 90)
    consumer = KafkaConsumer(
        stack.env["TRACESEARCH_KAFKA_DLQ_TOPIC"],
        bootstrap_servers=stack.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
    )
    dead = [m for m in consumer if m.key == f"x/{bad_trace}".encode()]
    consumer.close()
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert b"no tenant to store it in" in headers["reason"] and headers["tenant"] == b"Team-A/../x", headers
    everywhere = requests.post(
        f"{stack.es_url}/{stack.prefix}-*,{stack.prefix}.*/_count",
        json={"query": {"term": {"trace.id": bad_trace}}},
        timeout=30,
    ).json()
    assert everywhere["count"] == 0


@pytest.fixture
def sampled_stack(es_url: str, bootstrap: str, tmp_path: Path) -> Iterator[KafkaStack]:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"policies": [{"name": "errors", "type": "error"}]}))
    running = KafkaStack(es_url, bootstrap, tmp_path)
    running.settings.update(
        {
            **TENANT_SETTINGS,
            "TRACESEARCH_TAIL_SAMPLING_POLICY_FILE": str(policy),
            "TRACESEARCH_TAIL_SAMPLING_WAIT": f"{TAIL_WAIT_S:g}s",
        }
    )
    running.start_service()
    yield running
    running.stop()
    drop_prefix(es_url, running.prefix)


def test_tail_sampling_decides_two_tenants_traces_of_one_id_apart(sampled_stack: KafkaStack) -> None:
    """b's error span does not keep a's spans of the same trace id (one trace, it would), nor are b's
    spans written to a's indices; a's own error trace, sent with it, is kept in a's."""
    stack = sampled_stack
    stack.start_ingester()
    shared, a_error = uuid.uuid4().hex, uuid.uuid4().hex
    a_plain = make_spans(shared, "a-shop", 3)
    b_failing = make_spans(shared, "b-bank", 2, error=True)
    a_failing = make_spans(a_error, "a-shop", 2, error=True)
    send(stack.receiver.url, a_plain, "team-a")
    send(stack.receiver.url, b_failing, "team-b")
    send(stack.receiver.url, a_failing, "team-a")
    a_prefix, b_prefix = tenant_prefix(stack.prefix, "team-a"), tenant_prefix(stack.prefix, "team-b")
    # Generous: once, under a fully loaded CI run, b's trace was not stored within 90 s (not reproduced since).
    wait_until_stored(stack.es_url, b_prefix, ids_of(b_failing), 180)
    wait_until_stored(stack.es_url, a_prefix, ids_of(a_failing), 180)
    time.sleep(TAIL_WAIT_S + 2)  # a's plain trace went quiet with the others: decided by now
    assert set(stored_ids(stack.es_url, b_prefix)) == ids_of(b_failing)
    assert set(stored_ids(stack.es_url, a_prefix)) == ids_of(a_failing)
    assert not [s for t, s in stored_ids(stack.es_url, stack.prefix)]  # nothing in the default tenant
    assert read_trace(stack.receiver, shared, "team-a") == set()
    assert read_trace(stack.receiver, shared, "team-b") == {s.span_id for s in b_failing}


@pytest.fixture
def metrics_service(es_url: str, tmp_path: Path) -> Iterator[Service]:
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    settings = {
        **TENANT_SETTINGS,
        "TRACESEARCH_SERVICEGRAPH_WAIT": "1s",
        "TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL": "1s",
    }
    running = start_service(es_url, prefix, tmp_path, settings)
    yield running
    stop_service(running)
    drop_prefix(es_url, prefix)


def samples(service: Service, tenant: str | None) -> list[tuple[str, dict[str, Any]]]:
    headers = {"X-Scope-OrgID": tenant} if tenant is not None else {}
    text = requests.get(f"{service.url}/metrics", headers=headers, timeout=30).text
    return [(s.name, s.labels) for family in text_string_to_metric_families(text) for s in family.samples]


def test_metrics_as_a_tenant_show_its_own_series_and_none_of_another(metrics_service: Service) -> None:
    """Under gunicorn (multiprocess /metrics): a's page holds a's span metrics only; the operator's
    (no tenant) holds both tenants' and the process-wide series."""
    service = metrics_service
    send(service.url, make_spans(uuid.uuid4().hex, "a-metrics-svc", 2), "team-a")
    send(service.url, make_spans(uuid.uuid4().hex, "b-metrics-svc", 2), "team-b")
    deadline = time.monotonic() + 30
    while True:
        everything = samples(service, None)
        services = {labels.get("service") for name, labels in everything if name == "traces_spanmetrics_calls_total"}
        if {"a-metrics-svc", "b-metrics-svc"} <= services or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {"a-metrics-svc", "b-metrics-svc"} <= services
    tenants = {labels.get("tenant") for name, labels in everything if name == "traces_spanmetrics_calls_total"}
    assert {"team-a", "team-b"} <= tenants
    assert any(name == "tracesearch_spans_received_total" for name, _ in everything)
    own = samples(service, "team-a")
    assert own and all(labels.get("tenant") == "team-a" for _, labels in own), own
    assert {labels["service"] for name, labels in own if name == "traces_spanmetrics_calls_total"} == {"a-metrics-svc"}
    assert not any("b-metrics-svc" in str(labels) for _, labels in own)
    assert samples(service, "team-c") == []


@pytest.mark.skipif(not OWN_STACK, reason="stops the dev stack's Elasticsearch")
def test_elasticsearch_down_under_two_tenants_load_loses_and_mixes_nothing(stack: KafkaStack) -> None:
    from devstack import elasticsearch

    stack.start_ingester()
    loads = {
        tenant: Load(stack.receiver.url, 400, headers={"X-Scope-OrgID": tenant}) for tenant in ("team-a", "team-b")
    }
    for load in loads.values():
        load.thread.start()
    time.sleep(15)
    stop_elasticsearch(stack.es_url)
    try:
        time.sleep(30)
    finally:
        elasticsearch.start()
    time.sleep(15)
    for load in loads.values():
        load.finish()
    for tenant, load in loads.items():
        assert len(load.exporter.acked) >= 10_000, tenant
        assert not load.exporter.failed, f"{tenant}: {len(load.exporter.failed)} spans refused"
    for tenant, load in loads.items():
        assert_exactly_once(stack, load.exporter.acked, timeout_s=300, prefix=tenant_prefix(stack.prefix, tenant))
    assert not stored_ids(stack.es_url, stack.prefix), "a tenant's spans reached the default tenant's indices"
