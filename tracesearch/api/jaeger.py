"""Jaeger-compatible query API, as Grafana's Jaeger data source calls it (mounted at the root).

Times: search ``start``/``end`` in microseconds; span ``startTime``/``duration`` in microseconds.
Every answer uses Jaeger's envelope ``{"data", "total", "limit", "offset", "errors"}``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from flask import Response
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from tracesearch.api import partial, tempo
from tracesearch.api.blueprint import REQUIRED, Blueprint, ErrorFormat
from tracesearch.api.context import query, settings
from tracesearch.api.http_errors import ApiError, BadRequest, NotFound
from tracesearch.api.params import TRACE_ID_PATH, GoDuration, Name, TraceId, path_parameter
from tracesearch.api.params import trace_id as parse_trace_id
from tracesearch.codecs.jaeger_json import trace_to_jaeger
from tracesearch.query.capped_trace import CappedTrace
from tracesearch.query.conditions import TraceQuery, span_fields
from tracesearch.query.jaeger_tags import parse_tags
from tracesearch.query.limits import MAX_JAEGER_TAGS, MAX_JAEGER_TAGS_BYTES

# Times are kept in nanosecond longs, which end in 2262.
MAX_MS = (2**63 - 1) // 1_000_000
NS_PER_US = 1_000
NS_PER_MS = 1_000_000
MAX_LIMIT = 1_500
DEFAULT_LIMIT = 100
DEFAULT_DEPENDENCIES_LOOKBACK_MS = 86_400_000


def envelope(data: Any, status: int = 200, errors: list[dict[str, Any]] | None = None) -> Response:
    total = len(data) if isinstance(data, list) else 0
    body = {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}
    return Response(orjson.dumps(body), status, mimetype="application/json")


def jaeger_error(error: ApiError) -> Response:
    response = envelope(None, error.status, [{"code": error.status, "msg": error.message}])
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


class JaegerErrorItem(Schema):
    code = fields.Integer(
        metadata={"description": "the HTTP status; 206 for a trace cut to the spans-per-trace limit (answer 200)"}
    )
    msg = fields.String()
    traceID = fields.String(metadata={"description": "the trace the entry is about, if one"})


class JaegerEnvelope(Schema):
    """Every Jaeger answer, errors included."""

    data = fields.Raw(metadata={"description": "the answer; null on error"})
    total = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()
    errors = fields.List(fields.Nested(JaegerErrorItem), allow_none=True)


bp = Blueprint(
    "jaeger",
    __name__,
    description="Jaeger query API (search times in µs; Jaeger's envelope)",
    errors=ErrorFormat(jaeger_error, JaegerEnvelope),
)


# ---------------------------------------------------------------------------------------------- parameters


class TagsJson(fields.Field[dict[str, str]]):
    """Grafana sends the logfmt the user typed as a JSON object of strings."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, str]:
        if len(str(value)) > MAX_JAEGER_TAGS_BYTES:
            raise ValidationError(f"longer than {MAX_JAEGER_TAGS_BYTES} characters")
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"not a JSON object: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ValidationError('must be a JSON object like {"http.status_code":"500"}')
        return {str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in parsed.items()}


class RangeHint(fields.Field[int | None]):
    """An integer that only narrows a lookup: anything else is no hint rather than an error."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | None:
        text = str(value)
        if not text.removeprefix("-").isdecimal():
            return None
        return int(text)


class SearchParams(Schema):
    class Meta:
        unknown = EXCLUDE  # Grafana adds lookback=custom and friends

    traceID = fields.List(
        TraceId(), load_default=list, metadata={"description": "repeatable; when given, these traces and nothing else"}
    )
    service = fields.String(load_default=None, metadata={"description": "required unless traceID is given"})
    operation = fields.String(load_default=None, metadata={"description": "span name"})
    tags = TagsJson(
        load_default=None,
        metadata={
            "description": 'JSON object of tag conditions {"http.status_code":"500"}; values also take `>=N`, '
            "`>N`, `<=N`, `<N`, `!=v`; the `_text` key searches words"
        },
    )
    tag = fields.List(fields.String(), load_default=list, metadata={"description": "repeatable `key:value`"})
    minDuration = GoDuration(load_default=None, metadata={"description": "shortest span, Go duration (1.2ms)"})
    maxDuration = GoDuration(load_default=None, metadata={"description": "longest span, Go duration (1s)"})
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=0, error="must not be negative"),
        metadata={"description": f"at most this many traces (0: {DEFAULT_LIMIT}; cut to {MAX_LIMIT})"},
    )
    start = fields.Integer(load_default=None, metadata={"description": "start of the range, unix µs"})
    end = fields.Integer(load_default=None, metadata={"description": "end of the range, unix µs (default now)"})

    @pre_load
    def _ids_alone(self, data: Mapping[str, Any], **kwargs: Any) -> Mapping[str, Any]:
        # A lookup by ids is not a search: the search parameters are not read at all.
        return {"traceID": data["traceID"]} if "traceID" in data else data

    @validates_schema
    def check(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high = data["minDuration"], data["maxDuration"]
        if low is not None and high is not None and high < low:
            raise ValidationError("maxDuration must be greater than or equal to minDuration", "maxDuration")
        if not data["traceID"] and not data["service"]:
            raise ValidationError(REQUIRED, "service")

    @post_load
    def _all_tags(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Jaeger also takes ``tag=key:value`` (repeatable), over the same keys of ``tags``."""
        tags = dict(data["tags"] or {})
        for item in data["tag"]:
            key, _, value = item.partition(":")
            tags[key] = value
        if len(tags) > MAX_JAEGER_TAGS:
            raise ValidationError(f"more than {MAX_JAEGER_TAGS} tags (tags and tag together)", "tags")
        return {**data, "tags": tags}


class OperationsParams(Schema):
    class Meta:
        unknown = EXCLUDE

    service = Name(metadata={"description": "the service whose span names to list"})
    spanKind = fields.String(
        load_default=None, metadata={"description": "only spans of this kind: server, client, producer, consumer..."}
    )


class TraceParams(Schema):
    class Meta:
        unknown = EXCLUDE

    start = RangeHint(
        load_default=None,
        metadata={
            "description": "narrows the lookup: unix µs, or ms (Grafana's backend); with "
            "Accept: application/protobuf (Tempo) unix seconds"
        },
    )
    end = RangeHint(load_default=None, metadata={"description": "as start"})


class JaegerDependenciesParams(Schema):
    class Meta:
        unknown = EXCLUDE

    endTs = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0, max=MAX_MS),
        metadata={"description": "end of the range, unix ms (default: now)"},
    )
    lookback = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0, max=MAX_MS),
        metadata={"description": "range length in ms (default: 24h)"},
    )
    service = fields.String(load_default=None, metadata={"description": "only the links this service is a side of"})


# ---------------------------------------------------------------------------------------------- routes


@bp.get("/api/services")
@bp.answers("service names in data", JaegerEnvelope)
@bp.fails(503)
def services() -> Response:
    """Service names"""
    return envelope(query().services())


@bp.get("/api/services/<path:service>/operations", parameters=[path_parameter("service", "a service name")])
@bp.answers("span names in data", JaegerEnvelope)
@bp.fails(503)
def service_operations(service: str) -> Response:
    """Span names of a service"""
    return envelope(query().span_names(service))


@bp.get("/api/operations")
@bp.query(OperationsParams)
@bp.answers('[{"name", "spanKind"}] in data', JaegerEnvelope)
@bp.fails(400, 503)
def operations(args: dict[str, Any]) -> Response:
    """Span names and kinds of a service"""
    kind = args["spanKind"] or None
    pairs = query().operations(args["service"], kind.lower() if kind else None)
    return envelope([{"name": name, "spanKind": span_kind} for name, span_kind in pairs])


@bp.get("/api/traces/<trace_id>", parameters=[TRACE_ID_PATH])
@bp.query(TraceParams)
@bp.answers(
    "the trace in data, every span up to TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE (the earliest); a trace cut "
    "there has a warning (on the trace and its first span), an `errors` entry (code 206) and the header",
    JaegerEnvelope,
    headers=partial.DOCUMENTED,
)
@bp.answers(
    "for Accept: application/protobuf (Tempo's path): tempopb Trace (OTLP TracesData); a cut trace has the header",
    {"type": "string", "format": "binary"},
    content_type=tempo.PROTOBUF,
    headers=partial.DOCUMENTED,
)
@bp.fails(400, 404, 503)
def get_trace(args: dict[str, Any], trace_id: str) -> Response:
    """One trace, every span"""
    if tempo.wants_protobuf():
        # Grafana's Tempo data source falls back to this path and decodes protobuf only.
        return tempo.trace_v1_protobuf(trace_id)
    tid = parse_trace_id(trace_id)
    start, end = _optional_range_ns(args["start"], args["end"])
    trace = query().trace(tid, start, end)
    if not trace.spans:
        raise NotFound(f"trace not found: {trace_id}")
    return traces_envelope([trace])


def jaeger_trace(trace: CappedTrace) -> dict[str, Any]:
    """A trace in Jaeger's model; a cut one says so in its warnings."""
    return trace_to_jaeger(trace.spans, [trace.message] if trace.truncated else ())


def traces_envelope(
    traces: list[CappedTrace], errors: Sequence[dict[str, Any]] = (), why: Sequence[str] = ()
) -> Response:
    """Traces in the envelope; each cut trace adds an ``errors`` entry (status 200, as Jaeger answers
    trace ids it could not find) and the answer the ``X-Tracesearch-Partial`` header."""
    cut = [{"code": 206, "msg": t.message, "traceID": t.trace_id} for t in traces if t.truncated]
    response = envelope([jaeger_trace(t) for t in traces], errors=[*errors, *cut] or None)
    return partial.marked(response, partial.reasons(traces, *why))


def _optional_range_ns(start: int | None, end: int | None) -> tuple[int | None, int | None]:
    """Grafana sends ms from its backend and µs from old frontends; Jaeger means µs."""
    if start is None or end is None:
        return None, None
    return _as_ns(start), _as_ns(end)


def _as_ns(number: int) -> int:
    return number * (1_000_000 if number < 10**14 else NS_PER_US)


def _search_window(args: dict[str, Any]) -> tuple[int, int]:
    """The range asked for; without an end, now; without a start, the configured lookback before the end."""
    end_ns = args["end"] * NS_PER_US if args["end"] is not None else time.time_ns()
    lookback_ns = int(settings().search_lookback_s * 1e9)
    start_ns = args["start"] * NS_PER_US if args["start"] is not None else end_ns - lookback_ns
    if end_ns < start_ns:
        raise BadRequest("parameter 'end' is before 'start'", field="end")
    return start_ns, end_ns


@bp.get("/api/traces")
@bp.query(SearchParams)
@bp.answers(
    "whole traces with a span matching every condition, newest first, in data; partial answers (time budget, "
    "a trace cut to TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE) have `errors` entries and the header",
    JaegerEnvelope,
    headers=partial.DOCUMENTED,
)
@bp.fails(400, 429, 503)
def search_traces(args: dict[str, Any]) -> Response:
    """Search traces (or look them up by traceID)"""
    if args["traceID"]:
        return traces_envelope(query().traces(args["traceID"]))
    start_ns, end_ns = _search_window(args)
    fields = span_fields(args["service"], args["operation"] or None, args["minDuration"], args["maxDuration"])
    limit = min(args["limit"] or DEFAULT_LIMIT, MAX_LIMIT)
    service = query()
    found, complete = service.find_traces_within(TraceQuery(start_ns, end_ns, fields + parse_tags(args["tags"]), limit))
    if complete:
        return traces_envelope(found)
    return traces_envelope(found, [partial_error(service.limits.timeout_s)], ["time budget"])


def partial_error(timeout_s: float) -> dict[str, Any]:
    """Jaeger's envelope says a search is partial in ``errors`` beside its ``data``, as Jaeger does for
    trace ids it could not find: the status stays 200 and the UI shows the traces found."""
    return {
        "code": 504,
        "msg": f"partial result: the search ran past its time budget of {timeout_s:g}s (TRACESEARCH_QUERY_TIMEOUT); "
        "narrow the time range or the tags for a complete answer",
    }


@bp.get("/api/dependencies")
@bp.query(JaegerDependenciesParams)
@bp.answers('[{"parent", "child", "callCount"}] in data', JaegerEnvelope)
@bp.fails(400, 503)
def dependencies(args: dict[str, Any]) -> Response:
    """Calls between services over [endTs - lookback, endTs], from the service-graph aggregates"""
    end_ms = args["endTs"] if args["endTs"] is not None else time.time_ns() // NS_PER_MS
    lookback_ms = args["lookback"] if args["lookback"] is not None else DEFAULT_DEPENDENCIES_LOOKBACK_MS
    links = query().dependencies((end_ms - lookback_ms) * NS_PER_MS, end_ms * NS_PER_MS, args["service"] or None)
    data = [{"parent": link.parent, "child": link.child, "callCount": link.call_count} for link in links]
    return envelope(data)
