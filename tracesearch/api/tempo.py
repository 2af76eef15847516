"""Tempo-compatible query API, as Grafana's Tempo data source calls it (mounted at the root).

Times: ``start``/``end`` in unix seconds (the metrics endpoints also take nanoseconds or RFC 3339).
Trace by id answers protobuf for ``Accept: application/protobuf`` (all Grafana decodes) and OTLP
JSON otherwise. ``GET /api/traces/{id}`` is shared with the Jaeger API: protobuf when asked for,
Jaeger JSON otherwise (see ``api/jaeger.py``). Errors are ``{"message": ..., "error": {...}}``:
Grafana's old frontend shows ``message``, the new backend shows the body.
"""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import unquote

import orjson
from flask import Blueprint, Response, request

from tracesearch.api import errors, tempo_params
from tracesearch.api.context import query, settings
from tracesearch.api.http_errors import ApiError, BadRequest, NotFound
from tracesearch.api.params import trace_id as parse_trace_id
from tracesearch.codecs import tempo as tempo_codec
from tracesearch.services.autocomplete import ATTRIBUTE_SCOPES, INTRINSICS

bp = Blueprint("tempo", __name__)

PROTOBUF = "application/protobuf"
TEMPO_VERSION = "2.9.0"
try:
    TRACESEARCH_VERSION = version("tracesearch")
except PackageNotFoundError:  # running from a checkout that was never installed
    TRACESEARCH_VERSION = "0.0.0"
DEFAULT_TAG_LIMIT = 5_000
MAX_TAG_LIMIT = 10_000


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, mimetype="application/json")


def tempo_error(error: ApiError) -> Response:
    inner: dict[str, Any] = {"code": error.status, "message": error.message}
    if error.field:
        inner["field"] = error.field
    response = _json({"message": error.message, "error": inner}, error.status)
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


# A query Elasticsearch cannot run comes from ``q``: the client's to change, not ours to hide.
errors.handle(bp, tempo_error, query_field="q")


@bp.get("/api/echo")
def echo() -> Response:
    return Response("echo", 200, mimetype="text/plain")


@bp.get("/api/status/buildinfo")
def buildinfo() -> Response:
    # Grafana gates features on a Tempo semver; the build metadata says who really answers.
    return _json(
        {
            "version": f"{TEMPO_VERSION}+tracesearch.{TRACESEARCH_VERSION}",
            "revision": "",
            "branch": "",
            "buildUser": "tracesearch",
            "buildDate": "",
            "goVersion": "",
        }
    )


def wants_protobuf() -> bool:
    return PROTOBUF in request.headers.get("Accept", "")


def seconds_range() -> tuple[int | None, int | None]:
    start, end = request.args.get("start"), request.args.get("end")
    if not start or not end or start == "0" or end == "0":
        return None, None
    return tempo_params.unix_ns(start, "start"), tempo_params.unix_ns(end, "end")


def trace_v1_protobuf(trace_id: str) -> Response:
    """``/api/traces/{id}`` for Tempo clients (called by the Jaeger blueprint, which owns the path)."""
    start, end = seconds_range()
    spans = query().trace(parse_trace_id(trace_id), start, end)
    if not spans:
        raise NotFound(f"trace not found: {trace_id}")
    return Response(tempo_codec.trace_v1_protobuf(spans), 200, mimetype=PROTOBUF)


@bp.get("/api/v2/traces/<trace_id>")
def trace_v2(trace_id: str) -> Response:
    start, end = seconds_range()
    spans = query().trace(parse_trace_id(trace_id), start, end)
    if not spans:
        raise NotFound(f"trace not found: {trace_id}")
    if wants_protobuf():
        return Response(tempo_codec.trace_v2_protobuf(spans), 200, mimetype=PROTOBUF)
    return _json(tempo_codec.trace_v2_json(spans))


@bp.get("/api/search")
def search() -> Response:
    params = tempo_params.search_params(request.args, time.time_ns(), settings().search_lookback_s)
    result = query().search(params.query, params.start_ns, params.end_ns, params.limit, params.spss)
    return _json(tempo_codec.search_response(result))


def _limit() -> int:
    return tempo_params.positive_int(request.args, "limit", DEFAULT_TAG_LIMIT, MAX_TAG_LIMIT)


def _scopes() -> list[str]:
    scope = request.args.get("scope") or ""
    if scope in ("", "all"):
        return [*ATTRIBUTE_SCOPES, "intrinsic"]
    if scope not in (*ATTRIBUTE_SCOPES, "intrinsic"):
        raise BadRequest(f"invalid scope {scope!r}: one of resource, span, event, link, instrumentation, intrinsic")
    return [scope]


def _q() -> str:
    return request.args.get("q") or ""


@bp.get("/api/v2/search/tags")
def tags_v2() -> Response:
    start, end = seconds_range()
    found = query().autocomplete.names_by_scope(_scopes(), start, end, _limit(), _q())
    return _json({"scopes": [{"name": scope, "tags": names} for scope, names in found], "metrics": {}})


@bp.get("/api/search/tags")
def tags_v1() -> Response:
    start, end = seconds_range()
    return _json({"tagNames": query().autocomplete.names(_scopes(), start, end, _limit()), "metrics": {}})


def decoded_tag(raw: str) -> str:
    """Old Grafana encodes the tag name twice; decode until it stops changing."""
    for _ in range(3):
        decoded = unquote(raw)
        if decoded == raw:
            break
        raw = decoded
    return raw


def tag_values(tag: str, limit: int) -> list[dict[str, str]]:
    start, end = seconds_range()
    return [{"type": v.type, "value": v.value} for v in query().autocomplete.values(tag, start, end, limit, _q())]


@bp.get("/api/v2/search/tag/<path:tag>/values")
def tag_values_v2(tag: str) -> Response:
    return _json({"tagValues": tag_values(decoded_tag(tag), _limit()), "metrics": {}})


@bp.get("/api/search/tag/<path:tag>/values")
def tag_values_v1(tag: str) -> Response:
    name = decoded_tag(tag)
    # The v1 tag is an unscoped name: span or resource attribute, or an intrinsic.
    qualified = name if name in INTRINSICS else f".{name}"
    values = sorted({e["value"] for e in tag_values(qualified, _limit())})
    return _json({"tagValues": values, "metrics": {}})


def _metrics(params: tempo_params.MetricsParams) -> Response:
    result = query().metrics(params.query, params.start_ns, params.end_ns, params.step_ns, params.instant)
    response = _json(tempo_codec.metrics_response(result))
    # Tempo's schema has no place for it; says whether the per-minute aggregates or the spans answered.
    response.headers["X-Tracesearch-Metrics-Source"] = result.source
    return response


@bp.get("/api/metrics/query_range")
def metrics_query_range() -> Response:
    return _metrics(tempo_params.metrics_params(request.args, time.time_ns(), instant=False))


@bp.get("/api/metrics/query")
def metrics_query() -> Response:
    return _metrics(tempo_params.metrics_params(request.args, time.time_ns(), instant=True))
