"""The alert rules API of the real service under gunicorn (2 workers, each with its own copy of the
rules): a PUT through one worker is served by every worker within the reload interval, a file made bad
by hand keeps the last good rules and says so on /metrics, and a bad file at start stops the service."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from devstack import launch
from tests.integration.conftest import Service, drop_prefix, start_service, stop_service

RELOAD_S = 1.0
RULES = "/api/v1/alerts/rules"
FILE = "rules:\n  - name: slow\n    metric: latency\n    quantile: p95\n    threshold: 0.5  # seconds\n"
NEW = {
    "rules": [
        {"name": "slow", "metric": "latency", "quantile": 0.99, "threshold": 1, "for": "2m"},
        {"name": "errors", "metric": "span_rate", "filter": "{ status = error }", "threshold": 0.5},
    ]
}


def alerts_env(path: Path) -> dict[str, str]:
    return {"TRACESEARCH_ALERTS_RULES_FILE": str(path), "TRACESEARCH_ALERTS_RELOAD_INTERVAL": f"{RELOAD_S}s"}


@pytest.fixture(scope="module")
def alerting(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Path]]:
    folder = tmp_path_factory.mktemp("alerts")
    path = folder / "rules.yaml"
    path.write_text(FILE)
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    running = start_service(es_url, prefix, folder, alerts_env(path))
    running.wait_for_workers(2)
    yield running, path
    stop_service(running)
    drop_prefix(es_url, prefix)


def put(service: Service, document: Any) -> requests.Response:
    return requests.put(f"{service.url}{RULES}", json=document, timeout=30)


def gauges(service: Service) -> dict[str, float]:
    text = service.get("/metrics").text
    wanted = ("tracesearch_alert_rules_file_valid", "tracesearch_alert_rules_loaded")
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith(wanted)}


def test_a_put_is_served_by_every_worker_within_the_reload_interval(alerting: tuple[Service, Path]) -> None:
    service, path = alerting
    assert service.get(RULES).json() == {
        "rules": [{"name": "slow", "metric": "latency", "quantile": "p95", "threshold": 0.5}]
    }
    refused = put(service, {"rules": [{"name": "x", "metric": "latency", "quantile": 0.95, "threshold": "high"}]})
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "code": 400,
        "message": "rules[0].threshold: must be a number",
        "field": "rules[0].threshold",
    }
    assert path.read_text() == FILE

    stored = put(service, NEW)
    assert stored.status_code == 200, stored.text
    assert yaml.safe_load(path.read_text()) == NEW
    time.sleep(RELOAD_S + 0.5)
    answers = [service.get(RULES).json() for _ in range(20)]
    assert all(answer == NEW for answer in answers)
    assert gauges(service) == {"tracesearch_alert_rules_file_valid": 1.0, "tracesearch_alert_rules_loaded": 2.0}


def test_a_bad_file_keeps_the_last_good_rules_and_metrics_say_so(alerting: tuple[Service, Path]) -> None:
    service, path = alerting
    put(service, NEW).raise_for_status()
    time.sleep(RELOAD_S * 2 + 0.5)  # every worker holds NEW (alone, this test must not lean on the one before)
    path.write_text("rules:\n  - name: slow\n    metric: latency\n")
    # Every worker's watcher sees it within the interval, whether or not it serves a request.
    time.sleep(RELOAD_S * 2 + 0.5)
    assert gauges(service) == {"tracesearch_alert_rules_file_valid": 0.0, "tracesearch_alert_rules_loaded": 2.0}
    assert all(service.get(RULES).json() == NEW for _ in range(10))
    assert "rules[0].quantile: is required with metric latency" in service.log_tail()
    put(service, NEW).raise_for_status()
    time.sleep(RELOAD_S * 2 + 0.5)
    assert gauges(service)["tracesearch_alert_rules_file_valid"] == 1.0


def test_alerts_and_history_answer(alerting: tuple[Service, Path]) -> None:
    service, _ = alerting
    assert service.get("/api/v1/alerts").json() == {"alerts": []}
    assert service.get("/api/v1/alerts/history", rule="slow", limit=5).json() == {"events": []}
    assert service.get("/api/v1/alerts/history", since="soon").status_code == 400
    document = service.get("/openapi.json").json()
    assert {"/api/v1/alerts", "/api/v1/alerts/history", RULES} <= set(document["paths"])


def test_a_bad_file_at_start_stops_the_service_naming_the_field(es_url: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: a, metric: error_rate, threshold: 5}\n")
    with pytest.raises(launch.LaunchError) as failed:
        start_service(es_url, f"it-{uuid.uuid4().hex[:8]}", tmp_path, alerts_env(path))
    assert (
        f"configuration error: TRACESEARCH_ALERTS_RULES_FILE={path}: rules[0].threshold: must be within [0, 1]"
        in str(failed.value)
    )


def test_without_a_file_the_api_says_why(service: Service) -> None:
    assert service.get(RULES).status_code == 404
    refused = put(service, {"rules": []})
    assert refused.status_code == 409 and "TRACESEARCH_ALERTS_RULES_FILE" in refused.json()["error"]["message"]
