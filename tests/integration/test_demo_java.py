"""The demo's Java service, inventory, under the real OpenTelemetry Java agent: its spans reach tracesearch
with the right parents (HTTP in with W3C, JDBC on H2, HTTP out with B3 multi, Kafka in with W3C), and its
ECS log lines carry the ids of the spans they were written in.

Needs java 17+ and mvn (skipped without them); the first run downloads the agent and builds the jar.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from kafka import KafkaAdminClient, KafkaProducer

from devstack import demo_java
from tests.integration.conftest import Service

START_TIMEOUT_S = 60.0
TRACE_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
RECOMMENDATIONS = [{"sku": "sku-7", "title": "Rain cover", "price": 12.5}]


@dataclass
class Recommendations:
    """A stand-in for the Node.js recommendations service that keeps the headers of every request."""

    url: str
    requests: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Inventory:
    url: str
    log_file: Path
    topic: str
    output: Path


@pytest.fixture(scope="module")
def jars() -> demo_java.InventoryJars:
    try:
        return demo_java.ensure_inventory()
    except demo_java.JavaToolsMissing as missing:
        pytest.skip(str(missing))


@pytest.fixture(scope="module")
def recommendations() -> Iterator[Recommendations]:
    stub = Recommendations(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stub.requests.append({key.lower(): value for key, value in self.headers.items()})
            body = json.dumps({"recommendations": RECOMMENDATIONS}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def inventory(
    service: Service,
    bootstrap: str,
    jars: demo_java.InventoryJars,
    recommendations: Recommendations,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Inventory]:
    folder = tmp_path_factory.mktemp("inventory")
    port = free_port()
    topic = f"it-orders-{uuid.uuid4().hex[:8]}"
    otel_env = {
        "OTEL_SERVICE_NAME": "inventory",
        "OTEL_RESOURCE_ATTRIBUTES": "service.version=test,deployment.environment.name=test,service.namespace=shop",
        "OTEL_EXPORTER_OTLP_ENDPOINT": service.url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
    }
    argv, env = demo_java.inventory_command(
        port,
        folder / "inventory.log.json",
        recommendations.url,
        bootstrap,
        otel_env,
        kafka_topic=topic,
        kafka_group=topic,
        jars=jars,
    )
    output = folder / "inventory.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        running = Inventory(f"http://127.0.0.1:{port}", folder / "inventory.log.json", topic, output)
        wait_healthy(running, process)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        drop_topic(bootstrap, topic)


def drop_topic(bootstrap: str, topic: str) -> None:
    """The test's topic goes, so the shared broker does not collect them (inventory made it)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        if topic in admin.list_topics():
            admin.delete_topics([topic])
    finally:
        admin.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_healthy(running: Inventory, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"inventory exited with {process.returncode}:\n{tail(running.output)}")
        try:
            if requests.get(f"{running.url}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"inventory did not answer /healthz within {START_TIMEOUT_S}s:\n{tail(running.output)}")


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no output)"


def new_ids() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(8)


def tag(span: dict[str, Any], key: str) -> Any:
    return next((t["value"] for t in span["tags"] if t["key"] == key), None)


def parent_of(span: dict[str, Any]) -> str | None:
    return next((r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"), None)


Spans = list[dict[str, Any]]


def inventory_spans(service: Service, trace_id: str, complete: Callable[[Spans], bool]) -> Spans:
    """The trace's spans written by inventory, once ``complete`` holds (the agent exports every second)."""
    deadline = time.monotonic() + TRACE_TIMEOUT_S
    spans: Spans = []
    while time.monotonic() < deadline:
        answer = service.get(f"/api/traces/{trace_id}")
        if answer.status_code == 200:
            trace = answer.json()["data"][0]
            spans = [s for s in trace["spans"] if trace["processes"][s["processID"]]["serviceName"] == "inventory"]
            if complete(spans):
                return spans
        time.sleep(0.5)
    pytest.fail(f"trace {trace_id} not complete within {TRACE_TIMEOUT_S}s; inventory's spans: {spans}")


def log_lines(inventory: Inventory, trace_id: str) -> list[dict[str, Any]]:
    lines = inventory.log_file.read_text().splitlines() if inventory.log_file.exists() else []
    return [line for line in map(json.loads, lines) if line.get("trace.id") == trace_id]


def test_reserve_joins_the_callers_trace_and_calls_on_with_b3(
    service: Service, inventory: Inventory, recommendations: Recommendations
) -> None:
    trace_id, caller_span = new_ids()
    answer = requests.post(
        f"{inventory.url}/reserve",
        json={"order_id": "o-1", "items": ["sku-1", "sku-2"]},
        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"reserved": ["sku-1", "sku-2"], "recommendations": RECOMMENDATIONS}

    def kinds(spans: Spans) -> list[str]:
        return sorted(tag(s, "span.kind") for s in spans)

    spans = inventory_spans(service, trace_id, lambda spans: kinds(spans) == ["client", "client", "client", "server"])
    (server,) = [s for s in spans if tag(s, "span.kind") == "server"]
    assert parent_of(server) == caller_span
    assert server["operationName"] == "POST /reserve"
    database = [s for s in spans if tag(s, "db.system") == "h2"]
    assert sorted(s["operationName"] for s in database) == ["SELECT inventory.stock", "UPDATE inventory.stock"]
    assert all(parent_of(s) == server["spanID"] for s in database)
    (http_client,) = [s for s in spans if tag(s, "span.kind") == "client" and tag(s, "db.system") is None]
    assert parent_of(http_client) == server["spanID"]
    assert tag(http_client, "url.full").startswith(f"{recommendations.url}/recommendations?skus=sku-1")

    (headers,) = [h for h in recommendations.requests if h.get("x-b3-traceid") == trace_id]
    assert headers["x-b3-spanid"] == http_client["spanID"]
    assert headers.get("x-b3-parentspanid", server["spanID"]) == server["spanID"]  # OTel's B3 leaves it out
    assert headers["x-b3-sampled"] == "1"
    # The agent injects every propagator in OTEL_PROPAGATORS, so W3C goes along, with the same ids.
    assert headers["traceparent"] == f"00-{trace_id}-{http_client['spanID']}-01"

    lines = log_lines(inventory, trace_id)
    assert [line["message"] for line in lines] == ["order o-1: reserved [sku-1, sku-2]"]
    (line,) = lines
    assert line["span.id"] == server["spanID"]
    assert line["log.level"] == "INFO"
    assert line["service.name"] == "inventory"
    assert {"@timestamp", "ecs.version", "log.logger"} <= set(line)


def test_unknown_sku_is_a_409_with_a_warning_in_the_trace(service: Service, inventory: Inventory) -> None:
    trace_id, caller_span = new_ids()
    answer = requests.post(
        f"{inventory.url}/reserve",
        json={"order_id": "o-2", "items": ["sku-1", "sku-404"]},
        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
        timeout=10,
    )
    assert answer.status_code == 409
    assert answer.json() == {"error": "unknown sku", "skus": ["sku-404"]}
    spans = inventory_spans(service, trace_id, lambda spans: any(tag(s, "span.kind") == "server" for s in spans))
    (server,) = [s for s in spans if tag(s, "span.kind") == "server"]
    assert tag(server, "http.response.status_code") == 409
    (line,) = log_lines(inventory, trace_id)
    assert (line["log.level"], line["span.id"]) == ("WARN", server["spanID"])


def test_an_order_record_is_consumed_under_the_producers_span(
    service: Service, inventory: Inventory, bootstrap: str
) -> None:
    trace_id, producer_span = new_ids()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        producer.send(
            inventory.topic,
            json.dumps({"order_id": "o-3", "items": ["sku-3"]}).encode(),
            headers=[("traceparent", f"00-{trace_id}-{producer_span}-01".encode())],
        )
        producer.flush(10)
    finally:
        producer.close()

    spans = inventory_spans(service, trace_id, lambda spans: len(spans) >= 2)
    (consumer,) = [s for s in spans if tag(s, "span.kind") == "consumer"]
    assert parent_of(consumer) == producer_span
    assert consumer["operationName"] == f"{inventory.topic} process"
    assert tag(consumer, "messaging.system") == "kafka"
    (insert,) = [s for s in spans if tag(s, "db.system") == "h2"]
    assert (insert["operationName"], parent_of(insert)) == ("INSERT inventory.picking", consumer["spanID"])

    (line,) = log_lines(inventory, trace_id)
    assert line["span.id"] == consumer["spanID"]
    assert line["message"] == 'order o-3 queued for picking: ["sku-3"]'
