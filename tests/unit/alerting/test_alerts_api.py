"""The alerts API over the app (memory state store, rules in a temporary file): rules read and replaced
(400 naming the field, 409 without a file), current alerts and history as JSON, parameters checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tracesearch.alerting.views import AlertEvent, AlertView, MemoryAlertState
from tracesearch.app import create_app
from tracesearch.settings import Settings

RULES = "/api/v1/alerts/rules"
S = 1_000_000_000
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z
LABELS = {"alertname": "p95", "severity": "warning", "service": "checkout"}
FIRING = AlertView(
    "p95", "f1", LABELS, {"summary": "slow"}, "firing", 0.8, 0.5, ">", T0, T0 + 60 * S, T0 + 120 * S, ("a" * 32,)
)
PENDING = AlertView("errors", "f2", {"alertname": "errors"}, {}, "pending", 0.2, 0.1, ">", T0, None, T0 + 120 * S)
EVENTS = [
    AlertEvent("p95", "f1", LABELS, "pending", "ok", T0, 0.7, 0.5, ">"),
    AlertEvent("p95", "f1", LABELS, "firing", "pending", T0 + 60 * S, 0.8, 0.5, ">", ("a" * 32,)),
    AlertEvent("errors", "f2", {}, "pending", "ok", T0 + 90 * S, 0.2, 0.1, ">"),
]


def body(answer: TestResponse) -> Any:
    return answer.json


def client(rules_file: str = "", state: MemoryAlertState | None = None) -> FlaskClient:
    settings = Settings(install_templates=False, servicegraph_enabled=False, alerts_rules_file=rules_file)
    app = create_app(settings)
    app.extensions["tracesearch"].__dict__["alert_state"] = state or MemoryAlertState()
    return app.test_client()


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: a, metric: request_rate, threshold: 1}  # kept until a PUT\n")
    return path


def test_get_and_put_rules(rules_file: Path) -> None:
    api = client(str(rules_file))
    assert api.get(RULES).json == {"rules": [{"name": "a", "metric": "request_rate", "threshold": 1}]}
    new = {
        "rules": [
            {
                "name": "p95",
                "metric": "latency",
                "quantile": 0.95,
                "threshold": 0.5,
                "window": "5m",
                "group_by": ["service"],
                "annotations": {"summary": "{{ .Value }}"},
            }
        ]
    }
    stored = api.put(RULES, json=new)
    assert stored.status_code == 200 and stored.json == new
    assert api.get(RULES).json == new
    assert "p95" in rules_file.read_text()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"rules": [{"name": "a", "metric": "latency", "quantile": 0.95, "threshold": "x"}]},
            "rules[0].threshold",
            "rules[0].threshold: must be a number",
        ),
        ({"rules": [{}, {}]}, "rules[0].name", "rules[0].name: is required and must be a non-empty string"),
        ({"rulez": []}, "rulez", "rulez: unknown field (expected rules)"),
        ([], "body", "must be a mapping (an object)"),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(rules_file: Path, body: Any, field: str, message: str) -> None:
    before = rules_file.read_text()
    answer = client(str(rules_file)).put(RULES, json=body)
    assert answer.status_code == 400
    assert answer.json == {"error": {"code": 400, "message": message, "field": field}}
    assert rules_file.read_text() == before


def test_not_json_and_too_large(rules_file: Path) -> None:
    api = client(str(rules_file))
    answer = api.put(RULES, data=b"rules: []", content_type="application/json")
    assert answer.status_code == 400 and body(answer)["error"]["field"] == "body"
    assert "not JSON" in body(answer)["error"]["message"]
    assert api.put(RULES, data=b" " * (4 * 1024 * 1024 + 1)).status_code == 413


def test_without_a_rules_file() -> None:
    api = client()
    missing = api.get(RULES)
    assert missing.status_code == 404 and "TRACESEARCH_ALERTS_RULES_FILE" in body(missing)["error"]["message"]
    conflict = api.put(RULES, json={"rules": []})
    assert conflict.status_code == 409 and "TRACESEARCH_ALERTS_RULES_FILE" in body(conflict)["error"]["message"]


def test_a_bad_file_at_worker_start_is_a_503(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules: [{name: a}]")
    answer = client(str(path)).get(RULES)
    assert answer.status_code == 503 and "rules[0].metric" in body(answer)["error"]["message"]
    assert answer.headers["Retry-After"]


def test_current_alerts() -> None:
    answer = client(state=MemoryAlertState([FIRING, PENDING])).get("/api/v1/alerts")
    assert answer.status_code == 200
    assert answer.json == {
        "alerts": [
            {
                "rule": "errors",
                "fingerprint": "f2",
                "labels": {"alertname": "errors"},
                "annotations": {},
                "state": "pending",
                "value": 0.2,
                "threshold": 0.1,
                "op": ">",
                "active_since": "2026-01-01T00:00:00.000Z",
                "firing_since": None,
                "evaluated_at": "2026-01-01T00:02:00.000Z",
                "example_trace_ids": [],
            },
            {
                "rule": "p95",
                "fingerprint": "f1",
                "labels": LABELS,
                "annotations": {"summary": "slow"},
                "state": "firing",
                "value": 0.8,
                "threshold": 0.5,
                "op": ">",
                "active_since": "2026-01-01T00:00:00.000Z",
                "firing_since": "2026-01-01T00:01:00.000Z",
                "evaluated_at": "2026-01-01T00:02:00.000Z",
                "example_trace_ids": ["a" * 32],
            },
        ]
    }
    assert client().get("/api/v1/alerts").json == {"alerts": []}


def test_history_filters() -> None:
    api = client(state=MemoryAlertState(events=EVENTS))

    def history(**params: Any) -> list[tuple[str, str, str]]:
        answer = api.get("/api/v1/alerts/history", query_string=params)
        assert answer.status_code == 200, answer.json
        return [(e["rule"], e["state"], e["at"]) for e in body(answer)["events"]]

    assert history() == [
        ("errors", "pending", "2026-01-01T00:01:30.000Z"),
        ("p95", "firing", "2026-01-01T00:01:00.000Z"),
        ("p95", "pending", "2026-01-01T00:00:00.000Z"),
    ]
    assert history(rule="p95", limit=1) == [("p95", "firing", "2026-01-01T00:01:00.000Z")]
    assert history(since="2026-01-01T00:01:00Z") == history()[:2]
    assert history(since=str(T0 // S + 61)) == history()[:1]
    first = body(api.get("/api/v1/alerts/history"))["events"][1]
    assert first == {
        "rule": "p95",
        "fingerprint": "f1",
        "labels": LABELS,
        "state": "firing",
        "previous": "pending",
        "at": "2026-01-01T00:01:00.000Z",
        "value": 0.8,
        "threshold": 0.5,
        "op": ">",
        "example_trace_ids": ["a" * 32],
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"rule": "a b"}, "rule"),
        ({"since": "yesterday"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
    ],
)
def test_history_parameters_are_checked(params: dict[str, str], field: str) -> None:
    answer = client().get("/api/v1/alerts/history", query_string=params)
    assert answer.status_code == 400 and body(answer)["error"]["field"] == field


def test_in_the_openapi_document() -> None:
    document = body(client().get("/openapi.json"))
    paths = document["paths"]
    assert set(paths[RULES]) == {"get", "put"}
    assert {"400", "409", "413"} <= set(paths[RULES]["put"]["responses"])
    assert paths[RULES]["put"]["requestBody"]["content"]["application/json"]
    assert {p["name"] for p in paths["/api/v1/alerts/history"]["get"]["parameters"]} == {"rule", "since", "limit"}
    assert "get" in paths["/api/v1/alerts"]
