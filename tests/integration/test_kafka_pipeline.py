"""The Kafka topology loses nothing it acknowledged and duplicates nothing, through crashes and outages."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.integration.conftest import drop_prefix, stop_elasticsearch
from tests.integration.kafka_stack import KafkaStack, LedgerExporter, span_ids, stored_ids, wait_until_stored
from tests.integration.otel_traces import three_service_trace
from tests.integration.test_storage_properties import request_of, spans_for

OWN_STACK = not os.environ.get("TRACESEARCH_ES_URL") and not os.environ.get("TRACESEARCH_KAFKA_BOOTSTRAP")


@pytest.fixture
def stack(es_url: str, bootstrap: str, tmp_path: Path) -> Iterator[KafkaStack]:
    running = KafkaStack(es_url, bootstrap, tmp_path)
    running.start_service()
    yield running
    running.stop()
    drop_prefix(es_url, running.prefix)


class Load:
    """A real OpenTelemetry SDK exporting to the receiver at a steady rate, recording what was acked."""

    def __init__(self, url: str, spans_per_s: int, headers: dict[str, str] | None = None) -> None:
        self.exporter = LedgerExporter(OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=30, headers=headers))
        self.provider = TracerProvider(resource=Resource.create({"service.name": "load"}))
        self.provider.add_span_processor(
            BatchSpanProcessor(
                self.exporter, max_queue_size=200_000, max_export_batch_size=512, schedule_delay_millis=200
            )
        )
        self.tracer = self.provider.get_tracer("load")
        self.spans_per_s = spans_per_s
        self.stop = threading.Event()
        self.created = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - started) * self.spans_per_s)
            while self.created < due:
                with self.tracer.start_as_current_span("request") as root:
                    root.set_attribute("n", self.created)
                    for _ in range(4):
                        with self.tracer.start_as_current_span("step"):
                            pass
                self.created += 5
            time.sleep(0.01)

    def run_for(self, seconds: float) -> None:
        self.thread.start()
        time.sleep(seconds)
        self.finish()

    def finish(self) -> None:
        """Stop making spans and wait until the SDK exported (or gave up on) every one of them."""
        self.stop.set()
        self.thread.join()
        self.provider.force_flush(120_000)
        self.provider.shutdown()


def assert_exactly_once(
    stack: KafkaStack, acked: set[tuple[str, str]], timeout_s: float = 180, prefix: str | None = None
) -> list[tuple[str, str]]:
    ids = wait_until_stored(stack.es_url, prefix or stack.prefix, acked, timeout_s)
    missing = acked - set(ids)
    assert not missing, f"{len(missing)} acknowledged spans never stored, e.g. {sorted(missing)[:3]}"
    assert len(ids) == len(set(ids)), "a span was stored twice"
    return ids


def test_spans_flow_through_kafka_and_two_ingesters_share_the_work(stack: KafkaStack) -> None:
    first, second = stack.start_ingester(), stack.start_ingester()
    load = Load(stack.receiver.url, 1000)
    load.run_for(10)
    assert load.exporter.acked and not load.exporter.failed
    assert_exactly_once(stack, load.exporter.acked)
    assert first.indexed() > 0 and second.indexed() > 0, (first.indexed(), second.indexed())
    metrics = requests.get(f"{stack.receiver.url}/metrics", timeout=10).text
    assert "tracesearch_spans_produced_total" in metrics


def test_grafana_apis_answer_in_kafka_mode_service_map_included(stack: KafkaStack) -> None:
    stack.start_ingester()
    exported = three_service_trace(lambda: OTLPSpanExporter(endpoint=f"{stack.receiver.url}/v1/traces"), "kafka-map")
    wait_until_stored(stack.es_url, stack.prefix, span_ids(exported.spans))
    requests.post(f"{stack.es_url}/{stack.prefix}-*/_refresh", timeout=30)
    # Once in an ES 9 make test under load the first search missed the trace just stored: poll briefly.
    traces: set[str] = set()
    deadline = time.monotonic() + 15
    while exported.trace_id not in traces and time.monotonic() < deadline:
        now = int(time.time())
        search = stack.receiver.get("/api/search", q="{status=error}", start=now - 600, end=now + 60)
        traces = {t["traceID"] for t in search.json().get("traces", [])} if search.status_code == 200 else set()
        if exported.trace_id not in traces:
            time.sleep(0.5)
    assert exported.trace_id in traces
    expected = {("frontend", "checkout"), ("checkout", "inventory"), ("user", "frontend")}
    deadline = time.monotonic() + 60
    while True:  # the ingester pairs and flushes within a few seconds (2 s window, 1 s flush)
        answer = stack.receiver.get("/api/dependencies")
        assert answer.status_code == 200, answer.text
        links = answer.json()["data"]
        found = {(link["parent"], link["child"]) for link in links}
        if expected <= found or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert expected <= found
    assert all(link["callCount"] == 1 for link in links)


def test_ingester_killed_mid_batch_loses_and_duplicates_nothing(stack: KafkaStack) -> None:
    victim = stack.start_ingester()
    load = Load(stack.receiver.url, 1000)
    load.thread.start()
    time.sleep(4)
    stack.kill_ingester(victim, signal.SIGKILL)
    time.sleep(3)
    stack.start_ingester()
    time.sleep(3)
    load.finish()
    assert not load.exporter.failed
    assert_exactly_once(stack, load.exporter.acked)


def test_ingester_stopped_with_sigterm_commits_what_it_stored_and_nothing_more(stack: KafkaStack) -> None:
    first = stack.start_ingester()
    load = Load(stack.receiver.url, 1000)
    load.thread.start()
    time.sleep(4)
    stack.kill_ingester(first, signal.SIGTERM)  # mid-load: a batch is being written, the next one read
    assert first.process.returncode == 0, first.log_path.read_text()[-2000:]
    second = stack.start_ingester()
    time.sleep(3)
    load.finish()
    assert not load.exporter.failed
    assert_exactly_once(stack, load.exporter.acked)
    # Everything the first one stored was committed: the second one read none of it again (no 409s),
    # and what the first one had read but not stored, the second one stored.
    assert second.counter("tracesearch_spans_duplicate_total") == 0
    assert second.indexed() > 0


def test_poison_span_goes_to_the_dead_letter_topic_and_the_rest_is_stored(stack: KafkaStack) -> None:
    stack.start_ingester()
    trace_id = f"{random.getrandbits(128):032x}"
    good = spans_for(trace_id, 10, time.time_ns())
    # Start time past 2262: a valid OTLP fixed64 that Elasticsearch's long field refuses.
    poison = {"trace_id": trace_id, "span_id": "f" * 16, "start": 2**63 + 10, "end": 2**63 + 20}
    answer = requests.post(
        f"{stack.receiver.url}/v1/traces",
        data=request_of([*good, poison]),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    ids = wait_until_stored(stack.es_url, stack.prefix, {(trace_id, s["span_id"]) for s in good}, 60)
    assert sorted(s for t, s in ids if t == trace_id) == sorted(s["span_id"] for s in good)
    consumer = KafkaConsumer(
        stack.env["TRACESEARCH_KAFKA_DLQ_TOPIC"],
        bootstrap_servers=stack.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
    )
    dead = [m for m in consumer if m.key == trace_id.encode()]
    consumer.close()
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["span_id"] == b"f" * 16 and b"start_ns" in headers["reason"], headers


def test_a_span_too_big_for_a_kafka_message_is_refused_alone_not_retried_for_ever(stack: KafkaStack) -> None:
    """1.2 MB of attributes is within the default limits (and stored in direct mode), but over what a
    Kafka message holds: that span is refused with the reason, the rest of the request is stored."""
    stack.start_ingester()
    trace_id = f"{random.getrandbits(128):032x}"
    big_trace = f"{random.getrandbits(128):032x}"
    good = spans_for(trace_id, 3, time.time_ns())
    huge = {f"blob.{i}": "x" * 60_000 for i in range(20)}
    big = spans_for(big_trace, 1, time.time_ns(), attributes=huge)
    answer = requests.post(
        f"{stack.receiver.url}/v1/traces",
        data=request_of([*good, *big]),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.content
    partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
    assert partial.rejected_spans == 1
    assert f"trace {big_trace}" in partial.error_message and "Kafka message" in partial.error_message
    wait_until_stored(stack.es_url, stack.prefix, {(trace_id, s["span_id"]) for s in good}, 60)
    assert not [s for t, s in stored_ids(stack.es_url, stack.prefix) if t == big_trace]


@pytest.mark.skipif(not OWN_STACK, reason="stops the dev stack's Elasticsearch")
def test_elasticsearch_down_for_a_minute_under_load_loses_nothing(stack: KafkaStack) -> None:
    from devstack import elasticsearch

    stack.start_ingester()
    load = Load(stack.receiver.url, 1000)
    load.thread.start()
    time.sleep(30)
    stop_elasticsearch(stack.es_url)
    try:
        time.sleep(60)
    finally:
        elasticsearch.start()
    time.sleep(30)
    load.finish()
    assert len(load.exporter.acked) >= 100_000
    assert not load.exporter.failed, f"{len(load.exporter.failed)} spans refused while Elasticsearch was down"
    assert_exactly_once(stack, load.exporter.acked, timeout_s=300)


@pytest.mark.skipif(not OWN_STACK, reason="stops the dev stack's Kafka")
def test_broker_down_gets_503_then_the_sdk_retries_and_nothing_acked_is_lost(stack: KafkaStack) -> None:
    from devstack import kafka

    stack.start_ingester()
    load = Load(stack.receiver.url, 500)
    load.thread.start()
    time.sleep(5)
    kafka.stop()
    try:
        with pytest.raises(KafkaError):
            KafkaConsumer(bootstrap_servers=stack.bootstrap, request_timeout_ms=2000, bootstrap_timeout_ms=2000)
        time.sleep(3)
        answer = requests.post(
            f"{stack.receiver.url}/v1/traces",
            data=request_of(spans_for(f"{random.getrandbits(128):032x}", 3, time.time_ns())),
            headers={"Content-Type": "application/x-protobuf"},
            timeout=60,
        )
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["Retry-After"]) >= 1
        time.sleep(27)
    finally:
        kafka.start()
    time.sleep(15)
    load.finish()
    assert load.exporter.acked
    assert_exactly_once(stack, load.exporter.acked, timeout_s=180)
    ids = set(stored_ids(stack.es_url, stack.prefix))
    assert len(ids) >= len(load.exporter.acked)
