"""The demo's Node.js service with the real OpenTelemetry JS SDK: B3 multi in and out, spans in tracesearch,
ECS log lines carrying the trace.

It runs exactly as the demo runs it (``devstack.demo_node``: npm dependencies installed once into
``.devstack/``), exports to the session's tracesearch service, and calls a Python stub standing in for
the catalog, which records the headers it receives.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack import demo_node, launch
from devstack.settings import LOCALHOST
from tests.integration.conftest import Service

START_TIMEOUT_S = 30.0
TRACE_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.25
MISSING_SKU = "missing"
ECS_FIELDS = ("@timestamp", "log.level", "message", "service.name", "ecs.version")


@dataclass
class Catalog:
    """The stub catalog: every request's path and headers (lower-case names), in order."""

    url: str
    received: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, path: str, headers: dict[str, str]) -> None:
        with self.lock:
            self.received.append((path, headers))

    def since(self, index: int) -> list[tuple[str, dict[str, str]]]:
        with self.lock:
            return list(self.received[index:])


@dataclass
class Recommendations:
    url: str
    log_file: Path
    process: subprocess.Popen[bytes]
    output: Path


@pytest.fixture(scope="module")
def catalog() -> Iterator[Catalog]:
    stub = Catalog(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stub.record(self.path, {name.lower(): value for name, value in self.headers.items()})
            sku = self.path.rsplit("/", 1)[-1]
            if sku == MISSING_SKU:
                self.send_error(404)
                return
            body = json.dumps({"sku": sku, "title": f"Title of {sku}", "price": 12.5}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer((LOCALHOST, 0), Handler)
    stub.url = f"http://{LOCALHOST}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()


def start_recommendations(
    service: Service, catalog: Catalog, tmp: Path, extra_otel: dict[str, str] | None = None
) -> Recommendations:
    """The service as the demo starts it (devstack.demo_node), exporting to the session's tracesearch."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found: the Node.js demo service needs Node.js 18+ with npm")
    folder = demo_node.ensure_recommendations()
    port = launch.free_port()
    otel_env = {
        "OTEL_SERVICE_NAME": "recommendations",
        "OTEL_RESOURCE_ATTRIBUTES": "service.version=1.0.0,deployment.environment.name=test,service.namespace=shop",
        "OTEL_EXPORTER_OTLP_ENDPOINT": service.url,
        **(extra_otel or {}),
    }
    log_file = tmp / "recommendations.log"
    argv, env = demo_node.recommendations_command(port, log_file, catalog.url, otel_env, app_dir=folder)
    assert env["OTEL_PROPAGATORS"] == "b3multi"
    output = tmp / "node.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT)
    running = Recommendations(f"http://{LOCALHOST}:{port}", log_file, process, output)
    try:
        wait_until_healthy(running)
    except BaseException:
        stop(running)
        raise
    return running


@pytest.fixture(scope="module")
def recommendations(
    service: Service, catalog: Catalog, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Recommendations]:
    running = start_recommendations(service, catalog, tmp_path_factory.mktemp("recommendations"))
    try:
        yield running
    finally:
        stop(running)


def wait_until_healthy(running: Recommendations) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            pytest.fail(f"recommendations exited {running.process.returncode}:\n{running.output.read_text()}")
        try:
            if requests.get(f"{running.url}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    pytest.fail(f"recommendations not healthy after {START_TIMEOUT_S} s:\n{running.output.read_text()}")


def stop(running: Recommendations) -> int | None:
    """SIGTERM (the SDK flushes its spans and the process exits): its exit code; SIGKILL and None if it
    lingers."""
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
        try:
            return running.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()
            return None
    return running.process.returncode


def jaeger_spans(service: Service, trace_id: str, service_name: str, want: int) -> list[dict[str, Any]]:
    """The spans of ``service_name`` in the trace, once at least ``want`` of them are stored."""
    deadline = time.monotonic() + TRACE_TIMEOUT_S
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        service.refresh()
        answer = service.get(f"/api/traces/{trace_id}")
        if answer.status_code == 200:
            trace = answer.json()["data"][0]
            names = {pid: process["serviceName"] for pid, process in trace["processes"].items()}
            spans = [span for span in trace["spans"] if names[span["processID"]] == service_name]
            if len(spans) >= want:
                return spans
        time.sleep(POLL_S)
    pytest.fail(f"trace {trace_id}: {len(spans)} span(s) of {service_name} after {TRACE_TIMEOUT_S} s, wanted {want}")


def tag(span: dict[str, Any], key: str) -> Any:
    return next((t["value"] for t in span["tags"] if t["key"] == key), None)


def parent_of(span: dict[str, Any]) -> str | None:
    parents = [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]
    return parents[0] if parents else None


def hex_id(chars: int) -> str:
    return uuid.uuid4().hex[:chars]


@dataclass
class B3Exchange:
    trace_id: str
    caller_span_id: str
    answer: dict[str, Any]
    spans: list[dict[str, Any]]
    catalog_calls: list[tuple[str, dict[str, str]]]


@pytest.fixture(scope="module")
def b3_exchange(service: Service, catalog: Catalog, recommendations: Recommendations) -> B3Exchange:
    """One request carrying B3 multi headers (as the Java inventory service sends them), no traceparent."""
    trace_id, caller_span_id = hex_id(32), hex_id(16)
    before = len(catalog.since(0))
    answer = requests.get(
        f"{recommendations.url}/recommendations",
        params={"skus": "sku-1,sku-12"},
        headers={"X-B3-TraceId": trace_id, "X-B3-SpanId": caller_span_id, "X-B3-Sampled": "1"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    # One SERVER span and one CLIENT span per catalog call (sku-1 -> sku-2, sku-12 -> sku-1).
    spans = jaeger_spans(service, trace_id, "recommendations", want=3)
    return B3Exchange(trace_id, caller_span_id, answer.json(), spans, catalog.since(before))


def test_answer_comes_from_the_catalog(b3_exchange: B3Exchange) -> None:
    assert b3_exchange.answer == {
        "recommendations": [
            {"sku": "sku-2", "title": "Title of sku-2", "price": 12.5},
            {"sku": "sku-1", "title": "Title of sku-1", "price": 12.5},
        ]
    }
    assert [path for path, _ in b3_exchange.catalog_calls] == ["/catalog/sku-2", "/catalog/sku-1"]


def test_b3_multi_in_keeps_the_trace_and_the_parent(b3_exchange: B3Exchange) -> None:
    servers = [span for span in b3_exchange.spans if tag(span, "span.kind") == "server"]
    assert len(servers) == 1
    server = servers[0]
    assert server["traceID"] == b3_exchange.trace_id
    assert parent_of(server) == b3_exchange.caller_span_id
    assert server["operationName"] == "GET /recommendations"  # named by instrumentation.js's requestHook
    assert tag(server, "http.route") == "/recommendations"
    clients = [span for span in b3_exchange.spans if tag(span, "span.kind") == "client"]
    assert len(clients) == 2
    assert all(parent_of(client) == server["spanID"] for client in clients)


def test_b3_multi_out_only(b3_exchange: B3Exchange) -> None:
    """The catalog gets B3 multi headers naming the CLIENT span, and no W3C header."""
    clients = {span["spanID"]: span for span in b3_exchange.spans if tag(span, "span.kind") == "client"}
    assert len(b3_exchange.catalog_calls) == 2
    for path, headers in b3_exchange.catalog_calls:
        assert headers["x-b3-traceid"] == b3_exchange.trace_id
        assert headers["x-b3-sampled"] == "1"
        client = clients[headers["x-b3-spanid"]]
        assert tag(client, "url.full").endswith(path)
        assert "traceparent" not in headers
        assert "b3" not in headers  # multi, not single


def test_log_lines_carry_the_trace_with_ecs_fields(b3_exchange: B3Exchange, recommendations: Recommendations) -> None:
    lines = [json.loads(line) for line in recommendations.log_file.read_text().splitlines() if line.strip()]
    ours = [line for line in lines if line.get("trace.id") == b3_exchange.trace_id]
    assert len(ours) >= 2, lines[-5:]  # "recommending for ..." and "recommended ..."
    span_ids = {span["spanID"] for span in b3_exchange.spans}
    for line in ours:
        assert all(key in line for key in ECS_FIELDS), line
        assert line["service.name"] == "recommendations"
        assert line["log.level"] == "info"
        assert line["span.id"] in span_ids
        assert line["trace.flags"] == "01"
    # Outside a span (the start-up line) there is no trace.id.
    assert any("trace.id" not in line for line in lines)


def test_w3c_only_request_starts_a_new_trace(
    service: Service, catalog: Catalog, recommendations: Recommendations
) -> None:
    """Expected behaviour, not a bug: the service is configured OTEL_PROPAGATORS=b3multi, so it reads only
    X-B3-* headers; a request carrying only a W3C traceparent looks untraced to it, and it starts a new
    trace (a new root SERVER span). In the demo, the Java inventory service speaks both
    (tracecontext,baggage,b3multi) and sends B3 multi toward this service, so the trace continues."""
    w3c_trace_id = hex_id(32)
    before = len(catalog.since(0))
    answer = requests.get(
        f"{recommendations.url}/recommendations",
        params={"skus": "sku-5"},
        headers={"traceparent": f"00-{w3c_trace_id}-{hex_id(16)}-01"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    calls = catalog.since(before)
    assert len(calls) == 1
    headers = calls[0][1]
    assert "traceparent" not in headers
    new_trace_id = headers["x-b3-traceid"]
    assert new_trace_id != w3c_trace_id
    spans = jaeger_spans(service, new_trace_id, "recommendations", want=2)
    server = next(span for span in spans if tag(span, "span.kind") == "server")
    assert parent_of(server) is None
    # Both spans were exported together, so the W3C id's absence now is meaningful.
    service.refresh()
    assert service.get(f"/api/traces/{w3c_trace_id}").status_code == 404


def test_catalog_failure_is_a_502_and_an_error_line(recommendations: Recommendations) -> None:
    # "missing" matches no sku-N, so the service asks the catalog about it as is, and the stub answers 404.
    answer = requests.get(f"{recommendations.url}/recommendations", params={"skus": MISSING_SKU}, timeout=30)
    assert answer.status_code == 502
    assert "404" in answer.json()["error"]
    lines = [json.loads(line) for line in recommendations.log_file.read_text().splitlines() if line.strip()]
    errors = [line for line in lines if line["log.level"] == "error" and MISSING_SKU in line["message"]]
    assert len(errors) == 1
    assert errors[0]["error"]["type"] == "Error"
    assert len(errors[0]["trace.id"]) == 32 and len(errors[0]["span.id"]) == 16


def test_sigterm_flushes_the_spans(service: Service, catalog: Catalog, tmp_path: Path) -> None:
    """A batch delay of a minute: only the shutdown on SIGTERM can have exported the request's spans."""
    running = start_recommendations(service, catalog, tmp_path, {"OTEL_BSP_SCHEDULE_DELAY": "60000"})
    try:
        trace_id = hex_id(32)
        headers = {"X-B3-TraceId": trace_id, "X-B3-SpanId": hex_id(16), "X-B3-Sampled": "1"}
        answer = requests.get(f"{running.url}/recommendations", params={"skus": "sku-7"}, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
    finally:
        code = stop(running)
    assert code == 0, running.output.read_text()
    assert len(jaeger_spans(service, trace_id, "recommendations", want=2)) == 2
