"""Issue 11's acceptance test for head sampling with a real client from another language: OpenTelemetry
Go's ``jaegerremote`` sampler (tests/go/jaegerremote) polls ``/sampling`` every second while it starts
100 root spans a second and exports the sampled ones to the same service over OTLP/HTTP.

The strategy starts at probability 1.0 (every span sampled), then is changed to 0.1 through the admin
API: within the service's reload interval plus the client's refresh interval the client follows, and
the share of its traces *stored* (counted through the Jaeger API) follows the new probability.

Tolerance: over the N roots started once the client is at 0.1, the sampled count is Binomial(N, 0.1);
N is about 800 here, so its standard deviation is about 8.5 traces (1.1 points of share). Four standard
deviations either side are allowed: a correct client fails this less than once in 15,000 runs, while a
client that stayed at 1.0, or used a probability off by half (0.05 or 0.15), fails it for sure.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack import go_tools
from tests.integration.conftest import SAMPLING_RELOAD_S, Service

RATE = 100  # root spans per second
SECONDS = 14
PUT_AFTER = 3  # seconds at 1.0 before the change
RELOAD_S = SAMPLING_RELOAD_S  # the service's TRACESEARCH_SAMPLING_RELOAD_INTERVAL
REFRESH_S = 1.0  # the client's polling interval
NEW_PROBABILITY = 0.1
SIGMAS = 4.0
US = 1_000_000


def strategies(service_name: str, probability: float) -> dict[str, Any]:
    return {
        "default_strategy": {"type": "probabilistic", "param": 0.001},
        "service_strategies": [{"service": service_name, "type": "probabilistic", "param": probability}],
    }


@pytest.fixture(scope="module")
def client_binary() -> Path:
    try:
        return go_tools.build("jaegerremote")
    except go_tools.GoMissing as missing:
        pytest.skip(str(missing))


def run_client(binary: Path, service: Service, name: str) -> tuple[list[dict[str, Any]], int]:
    """Run the Go client; change the strategy after PUT_AFTER seconds. Returns its per-second lines and
    the index of the last second that ended before the change."""
    command = [
        str(binary),
        f"-sampling-url={service.url}/sampling",
        f"-otlp={service.url}/v1/traces",
        f"-service={name}",
        f"-rate={RATE}",
        f"-seconds={SECONDS}",
        f"-refresh={REFRESH_S:.0f}s",
    ]
    lines: list[dict[str, Any]] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as client:
        assert client.stdout is not None and client.stderr is not None
        for raw in client.stdout:
            lines.append(json.loads(raw))
            if len(lines) == PUT_AFTER:
                answer = requests.put(
                    f"{service.url}/api/v1/sampling/strategies",
                    json=strategies(name, NEW_PROBABILITY),
                    timeout=30,
                )
                assert answer.status_code == 200, answer.text
        errors = client.stderr.read()
        assert client.wait(timeout=60) == 0, errors
    assert len(lines) == SECONDS, errors
    return lines, PUT_AFTER - 1


def stored_traces(service: Service, name: str, start_us: int) -> list[dict[str, Any]]:
    service.refresh()
    answer = service.get("/api/traces", service=name, start=start_us, end=int(time.time() * US) + US, limit=1500)
    answer.raise_for_status()
    return list(answer.json()["data"])


def tag(span: dict[str, Any], key: str) -> Any:
    return next(t["value"] for t in span["tags"] if t["key"] == key)


def test_a_go_jaegerremote_client_follows_a_changed_strategy(
    client_binary: Path, sampled_service: tuple[Service, Path]
) -> None:
    service, path = sampled_service
    name = f"go-sampled-{uuid.uuid4().hex[:6]}"
    path.write_text(json.dumps(strategies(name, 1.0)))
    time.sleep(RELOAD_S + 0.5)  # every worker serves 1.0 before the client's first poll
    start_us = int(time.time() * US)

    lines, last_before = run_client(client_binary, service, name)

    # At 1.0 every root span is sampled.
    for line in lines[: last_before + 1]:
        assert line == {**line, "sampler": "probabilistic", "param": 1.0, "sampled": RATE, "started": RATE}, lines
    # The client follows within the service's reload interval plus its own refresh (whole seconds here).
    switched = next(i for i, line in enumerate(lines) if line["param"] == NEW_PROBABILITY)
    assert switched - last_before <= math.ceil(RELOAD_S + REFRESH_S) + 1, lines
    # From the first whole second at 0.1 on, the share sampled is 0.1 within the binomial tolerance.
    steady = lines[switched + 1 :]
    assert all(line["param"] == NEW_PROBABILITY for line in steady), lines
    started = sum(line["started"] for line in steady)
    sampled = sum(line["sampled"] for line in steady)
    expected = started * NEW_PROBABILITY
    allowed = SIGMAS * math.sqrt(started * NEW_PROBABILITY * (1 - NEW_PROBABILITY))
    assert abs(sampled - expected) <= allowed, (sampled, expected, allowed, lines)

    # What was stored is exactly what was sampled, and so follows the probability too.
    traces = stored_traces(service, name, start_us)
    assert len(traces) == sum(line["sampled"] for line in lines)
    seconds = [tag(trace["spans"][0], "test.second") for trace in traces]
    steady_seconds = {line["second"] for line in steady}
    stored_steady = sum(1 for second in seconds if second in steady_seconds)
    assert stored_steady == sampled
    assert all(len(trace["spans"]) == 1 for trace in traces)
    params = {tag(trace["spans"][0], "jaeger.sampler.param") for trace in traces}
    assert params == {1.0, NEW_PROBABILITY}
