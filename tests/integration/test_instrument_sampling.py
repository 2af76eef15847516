"""The Python remote sampler (tracesearch.instrument, ``setup(sampler="remote")``) follows a strategy changed
through the admin API, and the share of its traces stored follows the new probability.

The same shape as the Go client's test (tests/integration/test_sampling_go.py, which says why the tolerance
is four binomial standard deviations): a process starts RATE root spans a second, polls every second, and
prints per second how many it started and sampled at which probability.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from tests.integration.conftest import SAMPLING_RELOAD_S, Service

RATE = 100
SECONDS = 12
PUT_AFTER = 3
RELOAD_S = SAMPLING_RELOAD_S  # the service's TRACESEARCH_SAMPLING_RELOAD_INTERVAL
NEW_PROBABILITY = 0.1
SIGMAS = 4.0
US = 1_000_000

CLIENT = """
import json, sys, time
import tracesearch.instrument
from opentelemetry import trace

name, endpoint, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
provider = tracesearch.instrument.setup(name, endpoint=endpoint, sampler="remote")
root = provider.sampler._root  # the JaegerRemoteSampler ParentBased wraps
tracer = trace.get_tracer("sampling-test")
deadline = time.monotonic() + 10
while root.strategy.rate == 0.001 and time.monotonic() < deadline:  # the first poll is asynchronous
    time.sleep(0.01)
for second in range(seconds):
    start, sampled = time.monotonic(), 0
    param = root.strategy.rate
    for i in range(rate):
        with tracer.start_as_current_span("work", attributes={"test.second": second}) as span:
            sampled += span.is_recording()
        time.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
    print(json.dumps({"second": second, "started": rate, "sampled": sampled, "param": param}), flush=True)
provider.shutdown()
"""


def strategies(service_name: str, probability: float) -> dict[str, Any]:
    return {"service_strategies": [{"service": service_name, "type": "probabilistic", "param": probability}]}


def run_client(service: Service, name: str, tmp: Path) -> list[dict[str, Any]]:
    script = tmp / "client.py"
    script.write_text(CLIENT)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TRACESEARCH_"))}
    env.update(
        OTEL_TRACES_SAMPLER_ARG="pollingIntervalMs=1000,initialSamplingRate=0.001", OTEL_BSP_SCHEDULE_DELAY="200"
    )
    command = [sys.executable, str(script), name, service.url, str(RATE), str(SECONDS)]
    lines: list[dict[str, Any]] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as client:
        assert client.stdout is not None and client.stderr is not None
        for raw in client.stdout:
            lines.append(json.loads(raw))
            if len(lines) == PUT_AFTER:
                answer = requests.put(
                    f"{service.url}/api/v1/sampling/strategies", json=strategies(name, NEW_PROBABILITY), timeout=30
                )
                assert answer.status_code == 200, answer.text
        errors = client.stderr.read()
        assert client.wait(timeout=60) == 0, errors
    assert len(lines) == SECONDS, errors
    return lines


def test_the_python_remote_sampler_follows_a_changed_strategy(
    sampled_service: tuple[Service, Path], tmp_path: Path
) -> None:
    service, path = sampled_service
    name = f"py-sampled-{uuid.uuid4().hex[:6]}"
    path.write_text(json.dumps(strategies(name, 1.0)))
    time.sleep(RELOAD_S + 0.5)
    start_us = int(time.time() * US)

    lines = run_client(service, name, tmp_path)

    # Once the first poll answered (the client waits for it), 1.0 is served and followed.
    for line in lines[:PUT_AFTER]:
        assert (line["param"], line["sampled"]) == (1.0, RATE), lines
    switched = next(i for i, line in enumerate(lines) if line["param"] == NEW_PROBABILITY)
    assert switched - (PUT_AFTER - 1) <= math.ceil(RELOAD_S + 1.0) + 1, lines
    steady = lines[switched + 1 :]
    started = sum(line["started"] for line in steady)
    sampled = sum(line["sampled"] for line in steady)
    allowed = SIGMAS * math.sqrt(started * NEW_PROBABILITY * (1 - NEW_PROBABILITY))
    assert abs(sampled - started * NEW_PROBABILITY) <= allowed, (sampled, started, lines)

    service.refresh()
    answer = service.get("/api/traces", service=name, start=start_us, end=int(time.time() * US) + US, limit=1500)
    traces = answer.json()["data"]
    assert len(traces) == sum(line["sampled"] for line in lines)
    params = {
        next(tag["value"] for tag in trace["spans"][0]["tags"] if tag["key"] == "jaeger.sampler.param")
        for trace in traces
    }
    assert params == {1.0, NEW_PROBABILITY}
