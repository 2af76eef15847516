"""The remote-sampling endpoints and the admin API through the real app (Flask's test client)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tracesearch.app import create_app
from tracesearch.settings import Settings

FILE = {"service_strategies": [{"service": "shop", "type": "ratelimiting", "param": 4}]}


def client(strategies_file: str = "") -> FlaskClient:
    settings = Settings(
        install_templates=False,
        servicegraph_enabled=False,
        sampling_strategies_file=strategies_file,
        sampling_reload_interval_s=3600,
    )
    return create_app(settings).test_client()


def error(answer: TestResponse) -> dict[str, Any]:
    body = answer.json
    assert isinstance(body, dict)
    return dict(body["error"])


@pytest.fixture
def strategies(tmp_path: Path) -> Path:
    path = tmp_path / "strategies.json"
    path.write_text(json.dumps(FILE))
    return path


@pytest.mark.parametrize("path", ["/api/sampling", "/sampling"])
def test_both_paths_serve_jaegers_response(strategies: Path, path: str) -> None:
    c = client(str(strategies))
    answer = c.get(path, query_string={"service": "shop"})
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert answer.json == {"strategyType": "RATE_LIMITING", "rateLimitingSampling": {"maxTracesPerSecond": 4}}
    assert c.get(path, query_string={"service": "other"}).json == {
        "strategyType": "PROBABILISTIC",
        "probabilisticSampling": {"samplingRate": 1.0},
    }


@pytest.mark.parametrize("path", ["/api/sampling", "/sampling"])
def test_a_missing_service_is_a_400_that_says_so(path: str) -> None:
    answer = client().get(path)
    assert answer.status_code == 400
    assert answer.json == {"error": {"code": 400, "message": "parameter 'service' is required", "field": "service"}}


def test_put_validates_and_names_the_field(strategies: Path) -> None:
    c = client(str(strategies))
    bad = {"service_strategies": [{"service": "shop", "type": "probabilistic", "param": 1.5}]}
    answer = c.put("/api/v1/sampling/strategies", json=bad)
    assert answer.status_code == 400
    assert error(answer)["field"] == "service_strategies[0].param"
    assert error(answer)["message"] == "service_strategies[0].param: must be within [0, 1] (a probability)"
    not_json = c.put("/api/v1/sampling/strategies", data=b"{nope", content_type="application/json")
    assert not_json.status_code == 400 and error(not_json)["field"] == "body"
    assert json.loads(strategies.read_text()) == FILE


def test_put_then_get_and_serve(strategies: Path) -> None:
    c = client(str(strategies))
    new = {"default_strategy": {"type": "probabilistic", "param": 0.1}}
    answer = c.put("/api/v1/sampling/strategies", json=new)
    assert answer.status_code == 200 and answer.json == new
    assert c.get("/api/v1/sampling/strategies").json == new
    served = c.get("/sampling", query_string={"service": "shop"}).json
    assert served == {"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.1}}
    assert json.loads(strategies.read_text()) == new


def test_without_a_file_the_admin_api_says_which_setting() -> None:
    c = client()
    got = c.get("/api/v1/sampling/strategies")
    put = c.put("/api/v1/sampling/strategies", json={})
    assert got.status_code == 404 and put.status_code == 409
    for answer in (got, put):
        assert "TRACESEARCH_SAMPLING_STRATEGIES_FILE" in error(answer)["message"]


def test_a_process_without_a_good_file_answers_503(tmp_path: Path) -> None:
    path = tmp_path / "strategies.json"
    path.write_text('{"default_strategy": {"type": "probabilistic"}}')
    answer = client(str(path)).get("/sampling", query_string={"service": "shop"})
    assert answer.status_code == 503 and "Retry-After" in answer.headers
    assert "default_strategy.param" in error(answer)["message"]
