"""``GET /openapi.json``: the OpenAPI document of every endpoint, built with apispec."""

from __future__ import annotations

from typing import Any

import orjson
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response

from tracesearch.api.jaeger import JaegerDependenciesParams, SearchParams
from tracesearch.api.zipkin import DependenciesParams, TracesParams

bp = Blueprint("openapi", __name__)

_ERROR = {"description": "JSON error naming the problem", "content": {"application/json": {}}}
_RETRY = {
    "description": "storage or broker unavailable; retry after the Retry-After seconds",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}
_JAEGER_ENVELOPE = {
    "description": 'Jaeger envelope {"data", "total", "limit", "offset", "errors"}',
    "content": {"application/json": {}},
}


def _ingest(summary: str, content_types: list[str], ok: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {t: {} for t in content_types}},
            "parameters": [
                {"name": "Content-Encoding", "in": "header", "schema": {"type": "string", "enum": ["gzip", "deflate"]}}
            ],
            "responses": {**ok, "400": _ERROR, "413": _ERROR, "415": _ERROR, "429": _RETRY, "503": _RETRY},
        }
    }


def _get(summary: str, parameters: list[dict[str, Any]] | None = None, **responses: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {"200": _JAEGER_ENVELOPE, **responses}}
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _zipkin_paths(spec: APISpec) -> None:
    """Zipkin v2 read API (units: ms for endTs/lookback, µs for durations); errors are JSON."""

    def get(summary: str, parameters: list[dict[str, Any]], **responses: Any) -> dict[str, Any]:
        ok = {"description": "JSON as in zipkin2-api.yaml", "content": {"application/json": {}}}
        return {"get": {"summary": summary, "parameters": parameters, "responses": {"200": ok, **responses}}}

    service = {"name": "serviceName", "in": "query", "required": True, "schema": {"type": "string"}}
    ids = {"name": "traceIds", "in": "query", "required": True, "schema": {"type": "string"}}
    spec.path("/api/v2/services", operations=get("Service names", []))
    spec.path("/api/v2/spans", operations=get("Span names of a service", [service], **{"400": _ERROR}))
    spec.path("/api/v2/remoteServices", operations=get("Remote service names", [service], **{"400": _ERROR}))
    traces = "Traces (lists of spans) with a span matching every parameter, newest first; each has a root span"
    query = [{"in": "query", "schema": TracesParams}]
    spec.path("/api/v2/traces", operations=get(traces, query, **{"400": _ERROR, "503": _RETRY}))
    one = [_path_param("traceID")]
    spec.path("/api/v2/trace/{traceID}", operations=get("One trace", one, **{"400": _ERROR, "404": _ERROR}))
    spec.path("/api/v2/traceMany", operations=get("Several traces, unknown ids left out", [ids], **{"400": _ERROR}))
    deps = [{"in": "query", "schema": DependenciesParams}]
    spec.path("/api/v2/dependencies", operations=get("Service dependency links", deps, **{"400": _ERROR}))


def _tempo_paths(spec: APISpec) -> None:
    """Tempo API (times in unix seconds; search and tags JSON in tempopb's schema)."""

    def get(summary: str, parameters: list[dict[str, Any]], ok: str, **responses: Any) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "parameters": parameters,
                "responses": {"200": {"description": ok}, **responses},
            }
        }

    def query(*names: str) -> list[dict[str, Any]]:
        return [{"name": n, "in": "query", "schema": {"type": "string"}} for n in names]

    bad = {"400": _ERROR, "503": _RETRY}
    spec.path("/api/echo", operations=get("Grafana's save & test", [], "text 'echo'"))
    spec.path("/api/status/buildinfo", operations=get("Tempo-style build info", [], "JSON"))
    trace = [_path_param("traceID"), *query("start", "end")]
    spec.path(
        "/api/v2/traces/{traceID}",
        operations=get(
            "One trace: TraceByIDResponse protobuf for Accept: application/protobuf, else OTLP JSON",
            trace,
            "trace",
            **{"404": _ERROR, **bad},
        ),
    )
    search = query("q", "limit", "spss", "start", "end", "tags", "minDuration", "maxDuration")
    spec.path("/api/search", operations=get("TraceQL search (SearchResponse JSON)", search, "traces", **bad))
    tags = query("scope", "q", "start", "end", "limit")
    spec.path("/api/search/tags", operations=get("Attribute names", tags, "tagNames", **bad))
    spec.path("/api/v2/search/tags", operations=get("Attribute names per scope", tags, "scopes", **bad))
    values = [_path_param("tag"), *query("q", "start", "end", "limit")]
    spec.path("/api/search/tag/{tag}/values", operations=get("Values of an unscoped tag", values, "strings", **bad))
    spec.path("/api/v2/search/tag/{tag}/values", operations=get("Typed values of a tag", values, "typed", **bad))
    metrics = query("q", "start", "end", "since", "step")
    spec.path("/api/metrics/query_range", operations=get("TraceQL metrics, range", metrics, "series", **bad))
    spec.path("/api/metrics/query", operations=get("TraceQL metrics, instant", metrics, "series", **bad))


def build_spec() -> dict[str, Any]:
    spec = APISpec(
        title="tracesearch",
        version="0.1.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Trace ingest (OTLP/HTTP, Zipkin v2) and the Jaeger query API."},
    )
    spec.path(
        "/v1/traces",
        operations=_ingest(
            "OTLP/HTTP trace export (ExportTraceServiceRequest); 200 may carry partialSuccess",
            ["application/x-protobuf", "application/json"],
            {"200": {"description": "ExportTraceServiceResponse"}},
        ),
    )
    spec.path(
        "/api/v2/spans",
        operations=_ingest(
            "Zipkin v2 spans (JSON list or proto3 ListOfSpans)",
            ["application/json", "application/x-protobuf"],
            {"202": {"description": "stored"}},
        ),
    )
    spec.path("/api/services", operations=_get("Service names"))
    spec.path(
        "/api/services/{service}/operations", operations=_get("Span names of a service", [_path_param("service")])
    )
    spec.path(
        "/api/operations",
        operations=_get(
            "Span names and kinds of a service",
            [
                {"name": "service", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "spanKind", "in": "query", "schema": {"type": "string"}},
            ],
            **{"400": _ERROR},
        ),
    )
    search = {
        "summary": "Whole traces with a span matching every condition, newest first. Tag values take "
        "`>=N`, `>N`, `<=N`, `<N`, `!=v`; the `_text` key searches words.",
        "parameters": [{"in": "query", "schema": SearchParams}],
        "responses": {"200": _JAEGER_ENVELOPE, "400": _ERROR, "503": _RETRY},
    }
    spec.path("/api/traces", operations={"get": search})
    spec.path(
        "/api/traces/{traceID}",
        operations=_get("One trace, every span", [_path_param("traceID")], **{"404": _JAEGER_ENVELOPE, "400": _ERROR}),
    )
    dependencies = {
        "summary": "Calls between services over [endTs - lookback, endTs] (ms; default now and 24h), from the "
        'service-graph aggregates: {"data": [{"parent", "child", "callCount"}], "errors": null}',
        "parameters": [{"in": "query", "schema": JaegerDependenciesParams}],
        "responses": {"200": _JAEGER_ENVELOPE, "400": _ERROR, "503": _RETRY},
    }
    spec.path("/api/dependencies", operations={"get": dependencies})
    _zipkin_paths(spec)
    _tempo_paths(spec)
    spec.path("/health", operations={"get": {"summary": "Liveness", "responses": {"200": {"description": "up"}}}})
    spec.path(
        "/ready",
        operations={
            "get": {
                "summary": "Readiness (Elasticsearch reachable)",
                "responses": {"200": {"description": "ready"}, "503": _RETRY},
            }
        },
    )
    spec.path(
        "/metrics",
        operations={"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text format"}}}},
    )
    document: dict[str, Any] = spec.to_dict()
    return document


@bp.get("/openapi.json")
def openapi() -> Response:
    return Response(orjson.dumps(build_spec()), 200, mimetype="application/json")
