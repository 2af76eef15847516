"""tracesearch-instrument with a real Flask app, the real SDK and the real service.

A plain Flask app runs in its own process, once under `opentelemetry-instrument` with no tracing
code (the distro), once calling `tracesearch.instrument.setup()`. Requests come in with the headers
each kind of neighbour speaks; the trace is read back through the Jaeger API Grafana uses, and the
app's log lines through the file its ECS handler writes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.conftest import Service

# SETUP comes first: setup() instruments the Flask class, which `from flask import Flask` copies.
APP = '''
SETUP
import logging, sys
import requests
from flask import Flask, jsonify, request

app = Flask(__name__)
log = logging.getLogger("shop.orders")
port = int(sys.argv[1])

@app.get("/order")
def order():
    log.warning("order received")
    echoed = requests.get(f"http://127.0.0.1:{port}/echo", timeout=5).json()
    return jsonify(echoed)

@app.get("/echo")
def echo():
    return jsonify({key.lower(): value for key, value in request.headers.items()})

app.run(host="127.0.0.1", port=port, threaded=True)
'''
ONE_CALL = (
    "import tracesearch.instrument\n"
    "tracesearch.instrument.setup(SERVICE, service_version='2.0.0', environment='staging',"
    " endpoint=ENDPOINT, logs=LOGS)"
)
PARENT_SPAN = "00f067aa0ba902b7"


@dataclass
class RunningApp:
    url: str
    service_name: str
    log_file: Path

    def order(self, headers: dict[str, str]) -> dict[str, str]:
        answer = requests.get(f"{self.url}/order", headers=headers, timeout=10)
        answer.raise_for_status()
        echoed: dict[str, str] = answer.json()
        return echoed

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_app(tmp: Path, service: Service, zero_code: bool) -> tuple[subprocess.Popen[bytes], RunningApp]:
    name = f"{'zero' if zero_code else 'setup'}-{uuid.uuid4().hex[:8]}"
    log_file = tmp / f"{name}.json"
    setup = "" if zero_code else ONE_CALL.replace("SERVICE", repr(name)).replace("ENDPOINT", repr(service.url))
    script = tmp / f"{name}.py"
    script.write_text(APP.replace("SETUP", setup.replace("LOGS", repr(str(log_file)))))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TRACESEARCH_"))}
    env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
    port = free_port()
    command = [sys.executable, str(script), str(port)]
    if zero_code:
        command = [str(Path(sys.executable).with_name("opentelemetry-instrument")), *command]
        env.update(
            OTEL_SERVICE_NAME=name,
            OTEL_RESOURCE_ATTRIBUTES="service.version=1.0.0",
            OTEL_EXPORTER_OTLP_ENDPOINT=service.url,
            TRACESEARCH_INSTRUMENT_LOGS=str(log_file),
        )
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=(tmp / f"{name}.err").open("wb"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited: {(tmp / f'{name}.err').read_text()[-2000:]}")
        try:
            requests.get(f"{url}/echo", timeout=1)
            return process, RunningApp(url, name, log_file)
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    pytest.fail("the app did not start in 20 s")


@pytest.fixture(params=[True, False], ids=["opentelemetry-instrument", "setup()"])
def app(request: pytest.FixtureRequest, tmp_path: Path, service: Service) -> Iterator[RunningApp]:
    process, running = start_app(tmp_path, service, zero_code=request.param)
    try:
        yield running
    finally:
        process.terminate()
        process.wait(10)


def wait_for_trace(service: Service, trace_id: str, spans: int, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = service.get(f"/api/traces/{trace_id}")
        if answer.status_code == 200:
            found: dict[str, Any] = answer.json()["data"][0]
            if len(found["spans"]) >= spans or time.monotonic() > deadline:
                return found
        elif time.monotonic() > deadline:
            pytest.fail(f"trace {trace_id} not found: {answer.status_code} {answer.text[:300]}")
        time.sleep(0.3)


def span_named(found: dict[str, Any], operation: str, kind: str) -> dict[str, Any]:
    for span in found["spans"]:
        tags = {tag["key"]: tag["value"] for tag in span["tags"]}
        if span["operationName"] == operation and tags.get("span.kind") == kind:
            named: dict[str, Any] = span
            return named
    pytest.fail(f"no {kind} span {operation!r} in {[s['operationName'] for s in found['spans']]}")


INCOMING = {
    "b3 multi": {"X-B3-TraceId": "TRACE", "X-B3-SpanId": PARENT_SPAN, "X-B3-Sampled": "1"},
    "b3 single": {"b3": f"TRACE-{PARENT_SPAN}-1"},
    "uber-trace-id": {"uber-trace-id": f"TRACE:{PARENT_SPAN}:0:1"},
    "w3c": {"traceparent": f"00-TRACE-{PARENT_SPAN}-01"},
}


@pytest.mark.parametrize("speaks", sorted(INCOMING))
def test_a_hop_keeps_the_callers_trace_whatever_header_it_speaks(
    app: RunningApp, service: Service, speaks: str
) -> None:
    trace_id = uuid.uuid4().hex
    headers = {key: value.replace("TRACE", trace_id) for key, value in INCOMING[speaks].items()}
    echoed = app.order(headers)
    # The outgoing call speaks W3C only, in the caller's trace.
    assert echoed["traceparent"].split("-")[1] == trace_id
    assert not {"uber-trace-id", "b3", "x-b3-traceid"} & echoed.keys()

    found = wait_for_trace(service, trace_id, spans=3)
    assert {process["serviceName"] for process in found["processes"].values()} == {app.service_name}
    server = span_named(found, "GET /order", "server")
    client = span_named(found, "GET", "client")
    inner = span_named(found, "GET /echo", "server")
    assert [(ref["refType"], ref["spanID"]) for ref in server["references"]] == [("CHILD_OF", PARENT_SPAN)]
    assert client["references"][0]["spanID"] == server["spanID"]
    assert inner["references"][0]["spanID"] == client["spanID"]

    logged = [line for line in app.log_lines() if line["message"] == "order received"]
    mine = [line for line in logged if line.get("trace", {}).get("id") == trace_id]
    assert len(mine) == 1, logged
    assert mine[0]["span"]["id"] == server["spanID"]
    assert mine[0]["service"]["name"] == app.service_name
    assert mine[0]["log.level"] == "warning" and "@timestamp" in mine[0]


def test_the_resource_names_the_service(app: RunningApp, service: Service) -> None:
    trace_id = uuid.uuid4().hex
    app.order({"traceparent": f"00-{trace_id}-{PARENT_SPAN}-01"})
    found = wait_for_trace(service, trace_id, spans=3)
    process = next(iter(found["processes"].values()))
    tags = {tag["key"]: tag["value"] for tag in process["tags"]}
    if app.service_name.startswith("setup-"):
        assert tags["service.version"] == "2.0.0" and tags["deployment.environment.name"] == "staging"
    else:
        assert tags["service.version"] == "1.0.0"
        # opentelemetry-instrument says it was there.
        assert "telemetry.auto.version" in tags
    assert tags["telemetry.sdk.language"] == "python"
