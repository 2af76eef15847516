"""The OpenAPI document is derived from the views: every route is in it, each operation's query
parameters are the fields of the schema its view loads, a view reads no parameter the document does
not list, and errors are documented in the shape each surface really answers."""

from __future__ import annotations

import dataclasses
import re
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask, Request
from werkzeug.datastructures import ImmutableMultiDict

from tests.unit.storage.es_recorder import RecordingElasticsearch
from tracesearch.app import create_app
from tracesearch.settings import Settings

TRACE = "0af7651916cd43dd8448eb211c80319c"
# What each surface's errors look like in the document (components/schemas).
ERROR_SCHEMAS = {
    "jaeger": "JaegerEnvelope",
    "tempo": "TempoError",
    "zipkin_query": "JsonError",
    "zipkin_ingest": "JsonError",
    "otlp": "RpcStatus",
    "trace_logs": "JsonError",
    "sampling": "JsonError",
    "alerts": "JsonError",
}
# Enough for each view to get past its parameters to the store (which answers empty).
VALID: dict[str, dict[str, str]] = {
    "/api/operations": {"service": "frontend"},
    "/api/traces": {"service": "frontend"},
    "/api/v2/spans": {"serviceName": "frontend"},
    "/api/v2/remoteServices": {"serviceName": "frontend"},
    "/api/v2/autocompleteValues": {"key": "http.method"},
    "/api/v2/traceMany": {"traceIds": TRACE},
    "/api/v2/dependencies": {"endTs": "1795176000000"},
    "/api/metrics/query_range": {"q": "{ } | rate()"},
    "/api/metrics/query": {"q": "{ } | rate()"},
    "/api/sampling": {"service": "frontend"},
    "/sampling": {"service": "frontend"},
}
METHODS = {"get", "post", "put", "patch", "delete"}
PATH_VALUES = {"trace_id": TRACE, "service": "frontend", "tag": "name"}


class Recorder(RecordingElasticsearch):
    """Also answers the readiness check."""

    cluster = SimpleNamespace(health=lambda **params: SimpleNamespace(body={"status": "green"}))


class RecordingArgs(ImmutableMultiDict):  # type: ignore[type-arg]
    """Query arguments that note every name looked up (iterating is not a look-up)."""

    read: set[str]

    def __getitem__(self, key: Any) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None, type: Any = None) -> Any:  # type: ignore[override]  # records, same answer
        self.read.add(key)
        return super().get(key, default, type)

    def getlist(self, key: Any, type: Any = None) -> Any:
        self.read.add(key)
        return super().getlist(key, type)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


class RecordingRequest(Request):
    parameter_storage_class = RecordingArgs
    names_read: set[str] = set()

    @property
    def args(self) -> RecordingArgs:
        args = super().args
        assert isinstance(args, RecordingArgs)
        args.read = RecordingRequest.names_read
        return args


@pytest.fixture(scope="module")
def app() -> Flask:
    app = create_app(Settings(index_prefix="doc", install_templates=False, servicegraph_enabled=False))
    app.extensions["tracesearch"].__dict__["_es"] = Recorder()
    return app


@pytest.fixture(scope="module")
def document(app: Flask) -> dict[str, Any]:
    answer = app.test_client().get("/openapi.json")
    assert answer.status_code == 200
    return answer.json  # type: ignore[return-value]


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def operations(app: Flask) -> list[tuple[str, str, str]]:
    """(OpenAPI path, method, endpoint) of every route."""
    return [
        (openapi_path(rule.rule), method.lower(), rule.endpoint)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    ]


def query_parameters(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}


def schema_fields(app: Flask, endpoint: str) -> set[str]:
    """The query parameters the view's schemas load (what ``@bp.query`` attached to it)."""
    documented = getattr(app.view_functions[endpoint], "_apidoc", {})
    schemas = [p["schema"] for p in documented.get("arguments", {}).get("parameters", []) if p["in"] == "query"]
    instances = [schema() if isinstance(schema, type) else schema for schema in schemas]
    return {field.data_key or name for schema in instances for name, field in schema.load_fields.items()}


def test_every_route_and_method_is_in_the_openapi_document(app: Flask, document: dict[str, Any]) -> None:
    routes = {(path, method) for path, method, _ in operations(app)}
    documented = {(path, method) for path, item in document["paths"].items() for method in item if method in METHODS}
    assert routes == documented
    assert "/openapi.json" in document["paths"]


def test_documented_query_parameters_are_the_fields_of_the_views_schema(app: Flask, document: dict[str, Any]) -> None:
    for path, method, endpoint in operations(app):
        operation = document["paths"][path][method]
        assert set(query_parameters(operation)) == schema_fields(app, endpoint), path
        for parameter in query_parameters(operation).values():
            assert parameter["schema"].get("type"), f"{path} {parameter['name']}: no type"
            assert parameter.get("description"), f"{path} {parameter['name']}: no description"


def test_views_read_no_parameter_the_document_does_not_list(app: Flask, document: dict[str, Any]) -> None:
    app.request_class = RecordingRequest
    client = app.test_client()
    try:
        for path, method, _ in operations(app):
            if method != "get":
                continue
            RecordingRequest.names_read.clear()
            url = re.sub(r"{(\w+)}", lambda m: PATH_VALUES[m.group(1)], path)
            answer = client.get(url, query_string=VALID.get(path, {}))
            assert answer.status_code in (200, 404), (path, answer.data[:300])
            documented = set(query_parameters(document["paths"][path]["get"]))
            assert RecordingRequest.names_read <= documented, path
    finally:
        app.request_class = Request


def test_tempo_search_parameters_are_typed(document: dict[str, Any]) -> None:
    parameters = query_parameters(document["paths"]["/api/search"]["get"])
    assert set(parameters) == {"q", "tags", "minDuration", "maxDuration", "start", "end", "limit", "spss"}
    assert parameters["limit"]["schema"] == {"type": "integer", "default": 20, "minimum": 1, "maximum": 1000}
    assert parameters["spss"]["schema"]["type"] == "integer" and parameters["spss"]["schema"]["maximum"] == 1000
    assert parameters["start"]["schema"]["type"] == "integer" and "unix seconds" in parameters["start"]["description"]
    assert parameters["minDuration"]["schema"]["type"] == "string"
    assert "Go duration" in parameters["minDuration"]["description"]


def test_units_are_said(document: dict[str, Any]) -> None:
    jaeger = query_parameters(document["paths"]["/api/traces"]["get"])
    assert "µs" in jaeger["start"]["description"] and "µs" in jaeger["end"]["description"]
    zipkin = query_parameters(document["paths"]["/api/v2/traces"]["get"])
    assert "ms" in zipkin["endTs"]["description"] and "µs" in zipkin["minDuration"]["description"]
    metrics = query_parameters(document["paths"]["/api/metrics/query_range"]["get"])
    assert set(metrics) == {"q", "start", "end", "since", "step"}


def test_errors_are_documented_in_the_shape_each_surface_answers(app: Flask, document: dict[str, Any]) -> None:
    for path, method, endpoint in operations(app):
        operation = document["paths"][path][method]
        responses = operation["responses"]
        assert any(status.startswith("2") for status in responses), path
        if query_parameters(operation):
            assert "400" in responses, f"{path}: parameters but no 400"
        blueprint = endpoint.split(".")[0]
        for status, response in responses.items():
            assert "$ref" not in response, f"{path} {status}: flask-smorest's generic answer"
            if int(status) < 400:
                continue
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref == f"#/components/schemas/{ERROR_SCHEMAS.get(blueprint, 'Readiness')}", (path, status)
            if status in ("429", "503"):
                assert "Retry-After" in response["headers"], (path, status)


def test_storage_and_ingest_answers_are_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    reads = (
        "/api/search",
        "/api/traces",
        "/api/v2/traces",
        "/api/metrics/query_range",
        "/api/v1/traces/{trace_id}/logs",
    )
    for path in (*reads, "/ready"):
        assert "503" in paths[path]["get"]["responses"], path
    for path in ("/v1/traces", "/api/v2/spans"):
        post = paths[path]["post"]
        assert {"400", "413", "415", "429", "503"} <= set(post["responses"]), path
        assert post["requestBody"]["content"], path
    assert "application/x-protobuf" in paths["/v1/traces"]["post"]["responses"]["400"]["content"]


def test_with_the_ui_on_every_route_is_in_the_document_too(tmp_path: Any) -> None:
    """Zipkin's UI adds routes (its pages, config.json, its files, the read API under its base path): the
    API fuzz only covers what the document lists, so they must be in it; Flask's own ``static`` is not ours."""
    (tmp_path / "index.html").write_text("<html></html>")
    settings = Settings(index_prefix="doc", install_templates=False, servicegraph_enabled=False, ui=True)
    app = create_app(dataclasses.replace(settings, ui_dir=str(tmp_path)))
    document = app.test_client().get("/openapi.json").json
    assert document is not None
    routes = {(path, method) for path, method, _ in operations(app)}
    documented = {(path, method) for path, item in document["paths"].items() for method in item if method in METHODS}
    assert routes == documented
    assert any(path.startswith("/zipkin/") for path, _ in routes)
