"""A query parameter that does not load is a 400 naming it, in the format of the surface that was asked
(never webargs' 422 or flask-smorest's error shape); unknown parameters are ignored."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.unit.storage.es_recorder import RecordingElasticsearch
from tracesearch.api.tempo_params import metrics_params
from tracesearch.app import create_app
from tracesearch.settings import Settings


@pytest.fixture(scope="module")
def client() -> FlaskClient:
    app = create_app(Settings(index_prefix="params", install_templates=False, servicegraph_enabled=False))
    app.extensions["tracesearch"].__dict__["_es"] = RecordingElasticsearch()
    return app.test_client()


def get(client: FlaskClient, path: str, **params: Any) -> tuple[int, Any]:
    answer = client.get(path, query_string=params)
    return answer.status_code, answer.json


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"limit": "-1"}, "limit", "invalid limit '-1': must be a positive integer"),
        ({"spss": "+5"}, "spss", "invalid spss '+5': must be a positive integer"),
        ({"start": "10"}, "start", "parameters 'start' and 'end' go together: send both or neither"),
        ({"start": "20", "end": "10"}, "end", "parameter 'end' must be after 'start'"),
        ({"start": "x", "end": "10"}, "start", "parameter 'start': 'x' is not unix seconds or RFC 3339"),
        ({"start": "1e30", "end": "2e30"}, "start", "parameter 'start': '1e30' is after the year 2262"),
        ({"q": "{}", "tags": "a=b"}, "q", "can't specify tags and q"),
        ({"tags": "a=b a=c"}, "tags", "parameter 'tags': duplicate key 'a'"),
        ({"minDuration": "fast"}, "minDuration", "parameter 'minDuration': 'fast' is not a duration"),
        (
            {"minDuration": "2s", "maxDuration": "1s"},
            "maxDuration",
            "parameter 'maxDuration' must be greater than or equal to 'minDuration'",
        ),
        ({"q": "{} | rate()"}, "q", "a TraceQL metrics query goes to /api/metrics/query_range, not /api/search"),
        ({"q": "{ .a = }"}, "q", "invalid TraceQL query: "),
    ],
)
def test_tempo_search_refusals(client: FlaskClient, params: dict[str, str], field: str, message: str) -> None:
    status, body = get(client, "/api/search", **params)
    assert status == 400
    assert body["message"].startswith(message) and body["error"]["message"] == body["message"]
    assert body["error"]["code"] == 400 and body["error"]["field"] == field


@pytest.mark.parametrize(
    ("path", "params", "field", "message"),
    [
        ("/api/metrics/query_range", {}, "q", "parameter 'q' is required: a TraceQL metrics query"),
        ("/api/metrics/query_range", {"q": "{}"}, "q", "not a metrics query: end it with | rate()"),
        (
            "/api/metrics/query_range",
            {"q": "{} | rate()", "start": "1", "end": "100000", "step": "1s"},
            "step",
            "too many points: (end - start) / step must stay under 11000",
        ),
        ("/api/metrics/query", {"q": "{} | rate()", "since": "soon"}, "since", "parameter 'since': 'soon' is not"),
        ("/api/v2/search/tags", {"scope": "body"}, "scope", "invalid scope 'body': one of resource, span, event"),
        ("/api/search/tags", {"limit": "0"}, "limit", "invalid limit '0': must be a positive integer"),
        ("/api/v2/search/tag/name/values", {"start": "x", "end": "1"}, "start", "parameter 'start': 'x' is not"),
    ],
)
def test_tempo_refusals(client: FlaskClient, path: str, params: dict[str, str], field: str, message: str) -> None:
    status, body = get(client, path, **params)
    assert status == 400 and body["message"].startswith(message) and body["error"]["field"] == field


def test_tempo_lookups_ignore_half_ranges_and_empty_values(client: FlaskClient) -> None:
    assert get(client, "/api/v2/search/tags", start="garbage")[0] == 200  # no end: no range, as before
    assert get(client, "/api/v2/search/tags", start="0", end="garbage")[0] == 200
    assert get(client, "/api/search", q="", limit="", spss="", start="", end="")[0] == 200
    assert get(client, "/api/search", start="0", end="0")[0] == 200


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "parameter 'service' is required"),
        ({"service": ""}, "parameter 'service' is required"),
        ({"service": "x", "minDuration": "fast"}, "parameter 'minDuration': 'fast' is not a duration"),
        ({"service": "x", "tags": "not json"}, "parameter 'tags': not a JSON object"),
        ({"service": "x", "limit": "-1"}, "parameter 'limit': must not be negative"),
        ({"service": "x", "limit": "many"}, "parameter 'limit': Not a valid integer."),
        ({"service": "x", "start": "20", "end": "10"}, "parameter 'end' is before 'start'"),
        (
            {"service": "x", "minDuration": "2s", "maxDuration": "1s"},
            "parameter 'maxDuration': maxDuration must be greater than or equal to minDuration",
        ),
        ({"traceID": "xyz"}, "traceID: 'xyz' is not a trace id of 1 to 32 hex digits"),
    ],
)
def test_jaeger_search_refusals_use_the_envelope(client: FlaskClient, params: dict[str, str], message: str) -> None:
    status, body = get(client, "/api/traces", **params)
    assert status == 400
    assert body["data"] is None and body["errors"][0]["code"] == 400
    assert body["errors"][0]["msg"].startswith(message)


def test_zipkin_trace_many_of_commas_alone_is_no_traces(client: FlaskClient) -> None:
    assert get(client, "/api/v2/traceMany", traceIds=",") == (200, [])


def test_jaeger_lookup_by_ids_reads_no_search_parameter(client: FlaskClient) -> None:
    status, body = get(client, "/api/traces", traceID="ab", minDuration="fast", limit="many")
    assert status == 200 and body["data"] == []


def test_jaeger_trace_range_is_only_a_hint(client: FlaskClient) -> None:
    assert get(client, "/api/traces/ab", start="yesterday", end="2")[0] == 404  # not found, not refused


@pytest.mark.parametrize(
    ("path", "params", "field", "message"),
    [
        ("/api/v2/traces", {"limit": "ten"}, "limit", "parameter 'limit': Not a valid integer."),
        ("/api/v2/traces", {"endTs": "0"}, "endTs", "parameter 'endTs': Must be greater than or equal to 1"),
        ("/api/v2/spans", {"serviceName": " "}, "serviceName", "parameter 'serviceName' is required"),
        ("/api/v2/remoteServices", {}, "serviceName", "parameter 'serviceName' is required"),
        ("/api/v2/traceMany", {"traceIds": " "}, "traceIds", "parameter 'traceIds' is required"),
        ("/api/v2/traceMany", {"traceIds": "ab,xyz"}, "traceIds", "traceIds: 'xyz' is not a trace id"),
        ("/api/v2/traceMany", {"traceIds": ",".join(["ab"] * 101)}, "traceIds", "parameter 'traceIds': at most 100"),
        ("/api/v2/dependencies", {}, "endTs", "parameter 'endTs' is required"),
        # Found by the API fuzz: µs past a 64-bit ns count made a query Elasticsearch could not be sent (503).
        ("/api/v2/traces", {"minDuration": str(10**27)}, "minDuration", "parameter 'minDuration': Must be"),
        ("/api/v2/traces", {"maxDuration": str(2**63 // 1000 + 1)}, "maxDuration", "parameter 'maxDuration': Must be"),
        ("/api/dependencies", {"endTs": "-1"}, "endTs", "parameter 'endTs': Must be greater than or equal to 0"),
    ],
)
def test_zipkin_and_dependencies_refusals(
    client: FlaskClient, path: str, params: dict[str, str], field: str, message: str
) -> None:
    status, body = get(client, path, **params)
    assert status == 400
    if path == "/api/dependencies":  # Jaeger's
        assert body["errors"][0]["msg"].startswith(message)
        return
    assert body["error"]["code"] == 400 and body["error"]["field"] == field
    assert body["error"]["message"].startswith(message)


def test_unknown_parameters_are_ignored(client: FlaskClient) -> None:
    assert get(client, "/api/traces", service="x", lookback="custom", maxDuration="")[0] in (200, 400)
    assert get(client, "/api/traces", service="x", lookback="custom")[0] == 200
    assert get(client, "/api/search", q="{}", whatever="1")[0] == 200
    assert get(client, "/api/v2/traces", serviceName="x", sortBy="x")[0] == 200


def test_the_apps_http_errors_keep_our_json_shape(client: FlaskClient) -> None:
    status, body = get(client, "/no/such/path")
    assert status == 404 and body == {"error": {"code": 404, "message": body["error"]["message"]}}
    answer = client.post("/api/search")
    assert answer.status_code == 405 and answer.json is not None and answer.json["error"]["code"] == 405


def test_metrics_params_outside_a_request() -> None:
    params = metrics_params({"q": "{ } | rate()", "step": "60s"}, now_ns=3600 * 10**9, instant=False)
    assert (params.start_ns, params.end_ns, params.step_ns) == (0, 3600 * 10**9, 60 * 10**9)


@pytest.mark.parametrize("path", ["/api/services/a%0Ab/operations", "/api/search/tag/a%0Ab/values"])
def test_names_in_the_path_may_hold_a_newline(client: FlaskClient, path: str) -> None:
    # Found by the API fuzz: werkzeug's path converter stopped at "\n", so these were no route (an undocumented 404).
    assert get(client, path)[0] == 200
