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
from flask import Response, request
from marshmallow import Schema, fields

from tracesearch.api import partial
from tracesearch.api.blueprint import Blueprint, ErrorFormat, parse_query
from tracesearch.api.context import query, settings
from tracesearch.api.http_errors import ApiError, NotFound
from tracesearch.api.params import TRACE_ID_PATH, path_parameter
from tracesearch.api.params import trace_id as parse_trace_id
from tracesearch.api.tempo_params import (
    Metrics,
    MetricsArgs,
    Search,
    SearchArgs,
    TagNamesArgs,
    TagValuesArgs,
    TraceRangeArgs,
)
from tracesearch.codecs import tempo as tempo_codec
from tracesearch.query.capped_trace import SPANS_PER_TRACE, CappedTrace
from tracesearch.services.autocomplete import INTRINSICS

PROTOBUF = "application/protobuf"
TEMPO_VERSION = "2.9.0"
try:
    TRACESEARCH_VERSION = version("tracesearch")
except PackageNotFoundError:  # running from a checkout that was never installed
    TRACESEARCH_VERSION = "0.0.0"


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


class TempoErrorDetail(Schema):
    code = fields.Integer(metadata={"description": "the HTTP status"})
    message = fields.String()
    field = fields.String(metadata={"description": "the parameter at fault, if one is"})


class TempoError(Schema):
    message = fields.String(metadata={"description": "what Grafana's old frontend shows"})
    error = fields.Nested(TempoErrorDetail)


class BuildInfo(Schema):
    version = fields.String(metadata={"description": "a Tempo semver (Grafana gates features on it)"})
    revision = fields.String()
    branch = fields.String()
    buildUser = fields.String()
    buildDate = fields.String()
    goVersion = fields.String()


TRACE_RANGE = TraceRangeArgs()  # one instance: creating a schema costs more than loading with it
bp = Blueprint(
    "tempo",
    __name__,
    description="Tempo query API (times in unix seconds; JSON as tempopb's)",
    # A query Elasticsearch cannot run comes from ``q``: the client's to change, not ours to hide.
    errors=ErrorFormat(tempo_error, TempoError, query_field="q"),
)
_TAG = path_parameter("tag", "a scoped attribute (span.http.route) or an intrinsic (name); may be URL-encoded twice")
_TAG_V1 = path_parameter("tag", "an unscoped attribute (http.route) or an intrinsic; may be URL-encoded twice")
_PROTOBUF_BODY = {"type": "string", "format": "binary"}


def _object(description: str) -> dict[str, Any]:
    return {"type": "object", "description": description}


@bp.get("/api/echo")
@bp.answers("the text echo", {"type": "string"}, content_type="text/plain")
def echo() -> Response:
    """Grafana's save & test"""
    return Response("echo", 200, mimetype="text/plain")


@bp.get("/api/status/buildinfo")
@bp.answers("Tempo's version with ours as build metadata", BuildInfo)
def buildinfo() -> Response:
    """Tempo-style build info"""
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


def _trace(trace_id: str, args: dict[str, Any]) -> CappedTrace:
    trace = query().trace(parse_trace_id(trace_id), args["start"], args["end"])
    if not trace.spans:
        raise NotFound(f"trace not found: {trace_id}")
    return trace


def trace_v1_protobuf(trace_id: str) -> Response:
    """``/api/traces/{id}`` for Tempo clients (called by the Jaeger blueprint, which owns the path and
    documents its parameters: the same names, here in Tempo's unit). ``tempopb.Trace`` has no status: a
    cut trace says so in the header only."""
    trace = _trace(trace_id, parse_query(TRACE_RANGE))
    response = Response(tempo_codec.trace_v1_protobuf(trace.spans), 200, mimetype=PROTOBUF)
    return partial.marked(response, partial.reasons([trace]))


@bp.get("/api/v2/traces/<trace_id>", parameters=[TRACE_ID_PATH])
@bp.query(TraceRangeArgs)
@bp.answers(
    "TraceByIDResponse (tempopb); a trace cut to TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE spans (its earliest) has "
    "status PARTIAL and a message, and the header",
    _PROTOBUF_BODY,
    content_type=PROTOBUF,
    headers=partial.DOCUMENTED,
)
@bp.answers(
    "the trace as OTLP JSON; a cut trace also has status PARTIAL and a message, and the header",
    _object('{"trace": OTLP TracesData, "metrics": {}, "status": "PARTIAL" (only when cut), "message"}'),
    headers=partial.DOCUMENTED,
)
@bp.fails(400, 404, 503)
def trace_v2(args: dict[str, Any], trace_id: str) -> Response:
    """One trace: protobuf for Accept: application/protobuf, else OTLP JSON"""
    trace = _trace(trace_id, args)
    message = trace.message if trace.truncated else ""
    if wants_protobuf():
        response = Response(tempo_codec.trace_v2_protobuf(trace.spans, message), 200, mimetype=PROTOBUF)
    else:
        response = _json(tempo_codec.trace_v2_json(trace.spans, message))
    return partial.marked(response, partial.reasons([trace]))


@bp.get("/api/search")
@bp.query(SearchArgs)
@bp.answers(
    "SearchResponse: traces with their matching span sets",
    _object("tempopb SearchResponse"),
    headers=partial.DOCUMENTED,
)
@bp.fails(400, 429, 503)
def search(args: Search) -> Response:
    """TraceQL search"""
    start_ns, end_ns = args.window(time.time_ns(), settings().search_lookback_s)
    result = query().search(args.query, start_ns, end_ns, args.limit, args.spss)
    response = _json(tempo_codec.search_response(result))
    # Tempo's body says an incomplete search with completedJobs < totalJobs; the header says why, and
    # also when a trace was judged on its first spans only (over the spans-per-trace limit).
    why = [result.partial_reason] if not result.complete else []
    if result.truncated_traces:
        why.append(SPANS_PER_TRACE)
    return partial.marked(response, why)


@bp.get("/api/v2/search/tags")
@bp.query(TagNamesArgs)
@bp.answers("attribute names per scope", _object('{"scopes": [{"name", "tags"}], "metrics"}'))
@bp.fails(400, 503)
def tags_v2(args: dict[str, Any]) -> Response:
    """Attribute names per scope"""
    found = query().autocomplete.names_by_scope(args["scopes"], args["start"], args["end"], args["limit"], args["q"])
    return _json({"scopes": [{"name": scope, "tags": names} for scope, names in found], "metrics": {}})


@bp.get("/api/search/tags")
@bp.query(TagNamesArgs)
@bp.answers("attribute names", _object('{"tagNames": [...], "metrics"}'))
@bp.fails(400, 503)
def tags_v1(args: dict[str, Any]) -> Response:
    """Attribute names"""
    names = query().autocomplete.names(args["scopes"], args["start"], args["end"], args["limit"])
    return _json({"tagNames": names, "metrics": {}})


def decoded_tag(raw: str) -> str:
    """Old Grafana encodes the tag name twice; decode until it stops changing."""
    for _ in range(3):
        decoded = unquote(raw)
        if decoded == raw:
            break
        raw = decoded
    return raw


def tag_values(tag: str, args: dict[str, Any]) -> list[dict[str, str]]:
    found = query().autocomplete.values(tag, args["start"], args["end"], args["limit"], args["q"])
    return [{"type": v.type, "value": v.value} for v in found]


@bp.get("/api/v2/search/tag/<path:tag>/values", parameters=[_TAG])
@bp.query(TagValuesArgs)
@bp.answers("typed values", _object('{"tagValues": [{"type", "value"}], "metrics"}'))
@bp.fails(400, 503)
def tag_values_v2(args: dict[str, Any], tag: str) -> Response:
    """Typed values of a tag"""
    return _json({"tagValues": tag_values(decoded_tag(tag), args), "metrics": {}})


@bp.get("/api/search/tag/<path:tag>/values", parameters=[_TAG_V1])
@bp.query(TagValuesArgs)
@bp.answers("values as strings", _object('{"tagValues": [...], "metrics"}'))
@bp.fails(400, 503)
def tag_values_v1(args: dict[str, Any], tag: str) -> Response:
    """Values of an unscoped tag"""
    name = decoded_tag(tag)
    # The v1 tag is an unscoped name: span or resource attribute, or an intrinsic.
    qualified = name if name in INTRINSICS else f".{name}"
    values = sorted({e["value"] for e in tag_values(qualified, args)})
    return _json({"tagValues": values, "metrics": {}})


def _metrics(args: Metrics, instant: bool) -> Response:
    params = args.resolve(time.time_ns(), instant)
    result = query().metrics(params.query, params.start_ns, params.end_ns, params.step_ns, params.instant)
    response = _json(tempo_codec.metrics_response(result))
    # Tempo's schema has no place for it; says whether the per-minute aggregates or the spans answered.
    response.headers["X-Tracesearch-Metrics-Source"] = result.source
    return response


_SERIES = "QueryRangeResponse: series of samples"
_SOURCE = {
    "X-Tracesearch-Metrics-Source": {
        "description": (
            "what answered: span-metrics, spans, or span-metrics+spans "
            "(older steps from the per-minute aggregates, the newest from the spans)"
        ),
        "schema": {"type": "string"},
    }
}


@bp.get("/api/metrics/query_range")
@bp.query(MetricsArgs)
@bp.answers(_SERIES, _object("tempopb QueryRangeResponse"), headers=_SOURCE)
@bp.fails(400, 429, 503)
def metrics_query_range(args: Metrics) -> Response:
    """TraceQL metrics, range"""
    return _metrics(args, instant=False)


@bp.get("/api/metrics/query")
@bp.query(MetricsArgs)
@bp.answers("QueryInstantResponse: one value per series", _object("tempopb QueryInstantResponse"), headers=_SOURCE)
@bp.fails(400, 429, 503)
def metrics_query(args: Metrics) -> Response:
    """TraceQL metrics, instant"""
    return _metrics(args, instant=True)
