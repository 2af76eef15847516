"""The remote-sampling endpoints and the admin API of the real service under gunicorn (2 workers, each
with its own copy of the strategies): a PUT through one worker is served by every worker within the
reload interval, and a bad file at start stops the service with the field named."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack import launch
from tests.integration.conftest import Service, drop_prefix, start_service, stop_service

RELOAD_S = 1.0
SHOP = {"service": "shop", "type": "ratelimiting", "param": 4}
FILE = {"default_strategy": {"type": "probabilistic", "param": 0.5}, "service_strategies": [SHOP]}
ADMIN = "/api/v1/sampling/strategies"


def sampling_env(path: Path) -> dict[str, str]:
    return {"TRACESEARCH_SAMPLING_STRATEGIES_FILE": str(path), "TRACESEARCH_SAMPLING_RELOAD_INTERVAL": f"{RELOAD_S}s"}


@pytest.fixture(scope="module")
def sampled(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Path]]:
    folder = tmp_path_factory.mktemp("sampling")
    path = folder / "strategies.json"
    path.write_text(json.dumps(FILE))
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    running = start_service(es_url, prefix, folder, sampling_env(path))
    running.wait_for_workers(2)
    yield running, path
    stop_service(running)
    drop_prefix(es_url, prefix)


def put(service: Service, document: dict[str, Any]) -> requests.Response:
    return requests.put(f"{service.url}{ADMIN}", json=document, timeout=30)


def test_both_paths_serve_the_files_strategies(sampled: tuple[Service, Path]) -> None:
    service, _ = sampled
    for path in ("/api/sampling", "/sampling"):
        shop = service.get(path, service="shop")
        assert shop.status_code == 200 and shop.headers["Content-Type"] == "application/json"
        assert shop.json() == {"strategyType": "RATE_LIMITING", "rateLimitingSampling": {"maxTracesPerSecond": 4}}
        other = service.get(path, service="other")
        assert other.json() == {"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.5}}
        missing = service.get(path)
        assert missing.status_code == 400
        assert missing.json()["error"] == {
            "code": 400,
            "message": "parameter 'service' is required",
            "field": "service",
        }


def test_a_put_is_served_by_every_worker_within_the_reload_interval(sampled: tuple[Service, Path]) -> None:
    service, path = sampled
    refused = put(service, {"service_strategies": [SHOP, {"service": "b", "type": "probabilistic", "param": 2}]})
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "service_strategies[1].param"
    assert json.loads(path.read_text()) == FILE

    new = {"default_strategy": {"type": "probabilistic", "param": 0.1}, "service_strategies": [SHOP]}
    stored = put(service, new)
    done = time.monotonic()
    assert stored.status_code == 200, stored.text
    assert json.loads(path.read_text()) == new
    # Past the interval (and a margin for a request in flight), every worker answers the new file.
    time.sleep(RELOAD_S + 0.5)
    answers = [service.get("/api/sampling", service="other").json() for _ in range(30)]
    assert all(a == {"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.1}} for a in answers)
    assert time.monotonic() - done < RELOAD_S + 5
    assert service.get(ADMIN).json() == new
    put(service, FILE).raise_for_status()


def test_a_bad_file_at_start_stops_the_service_naming_the_field(es_url: str, tmp_path: Path) -> None:
    path = tmp_path / "strategies.json"
    path.write_text(json.dumps({"service_strategies": [{"service": "a", "type": "probabilistic", "param": 1.5}]}))
    with pytest.raises(launch.LaunchError) as failed:
        start_service(es_url, f"it-{uuid.uuid4().hex[:8]}", tmp_path, sampling_env(path))
    assert (
        f"configuration error: TRACESEARCH_SAMPLING_STRATEGIES_FILE={path}: "
        "service_strategies[0].param: must be within [0, 1]" in str(failed.value)
    )


def test_without_a_file_everything_is_kept_and_the_admin_api_says_why(service: Service) -> None:
    answer = service.get("/sampling", service="anything")
    assert answer.json() == {"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 1.0}}
    assert service.get(ADMIN).status_code == 404
    refused = put(service, {})
    assert refused.status_code == 409
    assert "TRACESEARCH_SAMPLING_STRATEGIES_FILE" in refused.json()["error"]["message"]
