"""Tempo-compatible query API, as Grafana's Tempo data source calls it (mounted at the root).

Times: ``start``/``end`` in unix seconds (the metrics endpoints also take nanoseconds or RFC 3339).
Trace by id answers protobuf for ``Accept: application/protobuf`` (all Grafana decodes) and OTLP
JSON otherwise. ``GET /api/traces/{id}`` is shared with the Jaeger API: protobuf when asked for,
Jaeger JSON otherwise (see ``api/jaeger.py``). Errors are ``{"message": ..., "error": {...}}``:
Grafana's old frontend shows ``message``, the new backend shows the body.
"""

from __future__ import annotations

import re
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import unquote

import elasticsearch
import orjson
from flask import Blueprint, Response, current_app, request

from tracesearch.api.params import trace_id as parse_trace_id
from tracesearch.codecs import tempo as tempo_codec
from tracesearch.errors import ApiError, BadRequest, NotFound, Unavailable
from tracesearch.query import tempo_params
from tracesearch.query.conditions import Condition
from tracesearch.query.traceql import TraceQLError
from tracesearch.runtime import Runtime
from tracesearch.storage.base import StorageUnavailable

bp = Blueprint("tempo", __name__)

PROTOBUF = "application/protobuf"
TEMPO_VERSION = "2.9.0"
try:
    TRACESEARCH_VERSION = version("tracesearch")
except PackageNotFoundError:  # running from a checkout that was never installed
    TRACESEARCH_VERSION = "0.0.0"
DEFAULT_TAG_LIMIT = 5_000
MAX_TAG_LIMIT = 10_000
INTRINSICS = [
    "duration",
    "event:name",
    "instrumentation:name",
    "kind",
    "name",
    "rootName",
    "rootServiceName",
    "span:id",
    "span:parentID",
    "status",
    "statusMessage",
    "trace:id",
    "traceDuration",
]
KEYWORD_INTRINSICS = frozenset({"status", "kind"})
ATTRIBUTE_SCOPES = ("resource", "span", "event", "link", "instrumentation")
_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["tracesearch"]
    return runtime


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, mimetype="application/json")


@bp.errorhandler(ApiError)
def tempo_error(error: ApiError) -> Response:
    inner: dict[str, Any] = {"code": error.status, "message": error.message}
    if error.field:
        inner["field"] = error.field
    response = _json({"message": error.message, "error": inner}, error.status)
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


@bp.errorhandler(TraceQLError)
def traceql_error(error: TraceQLError) -> Response:
    return tempo_error(BadRequest(f"invalid TraceQL query: {error}", field="q"))


@bp.errorhandler(elasticsearch.BadRequestError)
def query_refused(error: elasticsearch.BadRequestError) -> Response:
    # A query Elasticsearch cannot run (a limit of its own): the client's to change, not ours to hide.
    return tempo_error(BadRequest(f"Elasticsearch refused the query: {error.message}", field="q"))


@bp.errorhandler(StorageUnavailable)
def storage_down(error: StorageUnavailable) -> Response:
    return tempo_error(Unavailable(str(error), retry_after_s=_runtime().settings.retry_after_s))


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
    spans = _runtime().reader.get_trace(parse_trace_id(trace_id), start, end)
    if not spans:
        raise NotFound(f"trace not found: {trace_id}")
    return Response(tempo_codec.trace_v1_protobuf(spans), 200, mimetype=PROTOBUF)


@bp.get("/api/v2/traces/<trace_id>")
def trace_v2(trace_id: str) -> Response:
    start, end = seconds_range()
    spans = _runtime().reader.get_trace(parse_trace_id(trace_id), start, end)
    if not spans:
        raise NotFound(f"trace not found: {trace_id}")
    if wants_protobuf():
        return Response(tempo_codec.trace_v2_protobuf(spans), 200, mimetype=PROTOBUF)
    return _json(tempo_codec.trace_v2_json(spans))


@bp.get("/api/search")
def search() -> Response:
    runtime = _runtime()
    params = tempo_params.search_params(request.args, time.time_ns(), runtime.settings.search_lookback_s)
    result = runtime.traceql.search(params.query, params.start_ns, params.end_ns, params.limit, params.spss)
    return _json(
        tempo_codec.search_response(result.traces, result.inspected_traces, result.inspected_spans, result.complete)
    )


def _limit() -> int:
    return tempo_params.positive_int(request.args, "limit", DEFAULT_TAG_LIMIT, MAX_TAG_LIMIT)


def _scopes() -> list[str]:
    scope = request.args.get("scope") or ""
    if scope in ("", "all"):
        return [*ATTRIBUTE_SCOPES, "intrinsic"]
    if scope not in (*ATTRIBUTE_SCOPES, "intrinsic"):
        raise BadRequest(f"invalid scope {scope!r}: one of resource, span, event, link, instrumentation, intrinsic")
    return [scope]


def _filters() -> list[Condition]:
    """Span conditions from the ``q`` TraceQL of the other search fields; like Tempo, a query
    that does not parse (the user is still typing) filters nothing."""
    return _runtime().traceql.lenient_conditions(request.args.get("q") or "")


@bp.get("/api/v2/search/tags")
def tags_v2() -> Response:
    reader, limit = _runtime().reader, _limit()
    start, end = seconds_range()
    filters = _filters()
    scopes = []
    for scope in _scopes():
        names = INTRINSICS if scope == "intrinsic" else reader.tag_names(scope, start, end, limit, filters)
        scopes.append({"name": scope, "tags": sorted(names[:limit])})
    return _json({"scopes": scopes, "metrics": {}})


@bp.get("/api/search/tags")
def tags_v1() -> Response:
    reader, limit = _runtime().reader, _limit()
    start, end = seconds_range()
    ranked: dict[str, int] = {}  # name -> its best rank by frequency in any scope
    for scope in _scopes():
        if scope != "intrinsic":
            for rank, name in enumerate(reader.tag_names(scope, start, end, limit, [])):
                ranked[name] = min(rank, ranked.get(name, rank))
    kept = sorted(ranked, key=ranked.__getitem__)[:limit]
    return _json({"tagNames": sorted(kept), "metrics": {}})


def decoded_tag(raw: str) -> str:
    """Old Grafana encodes the tag name twice; decode until it stops changing."""
    for _ in range(3):
        decoded = unquote(raw)
        if decoded == raw:
            break
        raw = decoded
    return raw


def _typed(value: str, numeric: set[str]) -> dict[str, str]:
    if value in numeric:
        return {"type": "float" if re.search(r"[.eE]", value) else "int", "value": value}
    if value in ("true", "false"):
        return {"type": "bool", "value": value}
    return {"type": "string", "value": value}


def tag_values(tag: str, limit: int) -> list[dict[str, str]]:
    reader = _runtime().reader
    start, end = seconds_range()
    filters = _filters()
    if tag.startswith("."):
        scopes, key = ["span", "resource"], tag[1:]
    else:
        scope, _, key = tag.partition(".")
        if scope not in ATTRIBUTE_SCOPES or not key:
            values = reader.intrinsic_values(tag, start, end, limit, filters)
            if values is None:
                raise BadRequest(f"unknown tag {tag!r}: use scope.name (span.http.method) or an intrinsic")
            kind = "keyword" if tag in KEYWORD_INTRINSICS else "string"
            return [{"type": kind, "value": v} for v in sorted(values)[:limit]]
        scopes = [scope]
    typed: dict[tuple[str, str], dict[str, str]] = {}
    for scope in scopes:
        values = reader.attribute_values(scope, key, start, end, limit, filters)
        numeric = reader.numeric_attribute_values(
            scope, key, [v for v in values if _NUMBER.fullmatch(v)], start, end, filters
        )
        for value in values:
            entry = _typed(value, numeric)
            typed[(entry["type"], value)] = entry
    return sorted(typed.values(), key=lambda e: (e["value"], e["type"]))[:limit]


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
    answer, source = _runtime().traceql.metrics(params)
    response = _json(answer)
    # Tempo's schema has no place for it; says whether the per-minute aggregates or the spans answered.
    response.headers["X-Tracesearch-Metrics-Source"] = source
    return response


@bp.get("/api/metrics/query_range")
def metrics_query_range() -> Response:
    return _metrics(tempo_params.metrics_params(request.args, time.time_ns(), instant=False))


@bp.get("/api/metrics/query")
def metrics_query() -> Response:
    return _metrics(tempo_params.metrics_params(request.args, time.time_ns(), instant=True))
