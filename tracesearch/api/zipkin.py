"""Zipkin v2 read API (``/api/v2/...``), as Grafana's Zipkin data source and the Zipkin UI call it.

Grafana calls four routes (services, spans, traces without any time range, trace by id); Zipkin's UI
(Lens) also the autocomplete keys and values when its search page opens; the others are Zipkin's and
cheap. Units are Zipkin's: ``endTs``/``lookback`` in milliseconds, durations in microseconds. Every
trace is a list of Zipkin v2 spans, adjusted on read the way Zipkin's own server does (client/server
halves of a shared span), and every trace of a ``/traces`` answer has a root span (see
``services.adjusters``). Errors use the service's JSON error shape with the offending parameter.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from flask import Response
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from tracesearch.api import errors, partial
from tracesearch.api.blueprint import Blueprint, ErrorFormat
from tracesearch.api.context import query, settings
from tracesearch.api.http_errors import NotFound
from tracesearch.api.params import TRACE_ID_PATH, Name, TraceIds
from tracesearch.api.params import trace_id as parse_trace_id
from tracesearch.codecs.zipkin_json import LOCAL_ENDPOINT_KEYS, encode_trace
from tracesearch.query.capped_trace import CappedTrace
from tracesearch.query.conditions import FieldEquals, TraceQuery, span_fields
from tracesearch.query.remote_service import REMOTE_SERVICE_FIELD
from tracesearch.query.zipkin_annotations import ZIPKIN_TAG_SCOPES, annotation_conditions

# Times are kept in nanosecond longs, which end in 2262.
MAX_MS = (2**63 - 1) // 1_000_000
bp = Blueprint(
    "zipkin_query",
    __name__,
    description="Zipkin v2 read API (endTs/lookback in ms, durations in µs; JSON errors)",
    errors=ErrorFormat(errors.render_json, errors.JsonError),
)

NS_PER_US = 1_000
MAX_US = (2**63 - 1) // NS_PER_US  # durations are compared in ns with Elasticsearch longs
NS_PER_MS = 1_000_000
DEFAULT_LIMIT = 10  # Zipkin's
MAX_LIMIT = 1_500
MAX_TRACE_IDS = 100
# Keys and values of the tag index offered to Lens's search box, the most frequent first.
MAX_AUTOCOMPLETE = 1_000


def _default_lookback_ms() -> int:
    return int(settings().zipkin_lookback_s * 1000)


def _default_window() -> tuple[int, int]:
    """[now - TRACESEARCH_ZIPKIN_DEFAULT_LOOKBACK, now] in nanoseconds."""
    end_ns = time.time_ns()
    return end_ns - _default_lookback_ms() * NS_PER_MS, end_ns


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), 200, mimetype="application/json")


# ---------------------------------------------------------------------------------------------- parameters


class TracesParams(Schema):
    """``GET /api/v2/traces``; Grafana sends only serviceName and spanName, so the defaults matter."""

    class Meta:
        unknown = EXCLUDE

    serviceName = fields.String(load_default=None, metadata={"description": "local service, ignoring case"})
    remoteServiceName = fields.String(
        load_default=None, metadata={"description": "the service called or calling, ignoring case"}
    )
    spanName = fields.String(load_default=None, metadata={"description": "ignoring case; all is any"})
    annotationQuery = fields.String(load_default=None, metadata={"description": "`key=value and word and ...`"})
    minDuration = fields.Integer(
        load_default=None, validate=validate.Range(min=0, max=MAX_US), metadata={"description": "µs"}
    )
    maxDuration = fields.Integer(
        load_default=None, validate=validate.Range(min=0, max=MAX_US), metadata={"description": "µs"}
    )
    endTs = fields.Integer(
        load_default=None, validate=validate.Range(min=1, max=MAX_MS), metadata={"description": "epoch ms, default now"}
    )
    lookback = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=MAX_MS),
        metadata={"description": "ms before endTs, default TRACESEARCH_ZIPKIN_DEFAULT_LOOKBACK"},
    )
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1),
        metadata={"description": f"at most this many traces (larger is cut to {MAX_LIMIT})", "maximum": MAX_LIMIT},
    )

    @validates_schema
    def check(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high = data.get("minDuration"), data.get("maxDuration")
        if low is not None and high is not None and high < low:
            raise ValidationError("must be greater than or equal to minDuration", "maxDuration")


class DependenciesParams(Schema):
    class Meta:
        unknown = EXCLUDE

    endTs = fields.Integer(
        required=True, validate=validate.Range(min=1, max=MAX_MS), metadata={"description": "epoch ms"}
    )
    lookback = fields.Integer(
        load_default=None, validate=validate.Range(min=1, max=MAX_MS), metadata={"description": "ms"}
    )


class ServiceParams(Schema):
    class Meta:
        unknown = EXCLUDE

    serviceName = Name(strip=True, metadata={"description": "ignoring case"})


class AutocompleteValuesParams(Schema):
    class Meta:
        unknown = EXCLUDE

    key = Name(strip=True, metadata={"description": "a tag key"})


class TraceManyParams(Schema):
    class Meta:
        unknown = EXCLUDE

    traceIds = TraceIds(MAX_TRACE_IDS, metadata={"description": f"comma-separated trace ids, at most {MAX_TRACE_IDS}"})


def traces_query(params: dict[str, Any], default_lookback_ms: int, now_ms: int) -> TraceQuery:
    end_ms = params["endTs"] if params["endTs"] is not None else now_ms
    lookback_ms = params["lookback"] if params["lookback"] is not None else default_lookback_ms
    span_name = params["spanName"]
    conditions = span_fields(
        service=params["serviceName"] or None,
        # "all" is what Zipkin's older UIs send for any span name.
        name=None if not span_name or span_name == "all" else span_name,
        min_duration_ns=None if params["minDuration"] is None else params["minDuration"] * NS_PER_US,
        max_duration_ns=None if params["maxDuration"] is None else params["maxDuration"] * NS_PER_US,
        # Zipkin lowercases names at ingest and in its query; ours keep their case and match ignoring it.
        ignore_case=True,
    )
    conditions += annotation_conditions(params["annotationQuery"] or "")
    if params["remoteServiceName"]:
        # The name the span's remoteEndpoint shows, as remoteServices lists it (query.remote_service).
        conditions.append(FieldEquals(REMOTE_SERVICE_FIELD, params["remoteServiceName"], ignore_case=True))
    return TraceQuery(
        start_ns=max(0, end_ms - lookback_ms) * NS_PER_MS,
        end_ns=end_ms * NS_PER_MS,
        conditions=conditions,
        limit=min(params["limit"], MAX_LIMIT),
    )


# ---------------------------------------------------------------------------------------------- routes


class DependencyLink(Schema):
    parent = fields.String()
    child = fields.String()
    callCount = fields.Integer()
    errorCount = fields.Integer()


_NAMES = {"type": "array", "items": {"type": "string"}}
_TRACES = {"type": "array", "items": {"type": "array", "items": {"type": "object"}}}
_SPANS = {"type": "array", "items": {"type": "object", "description": "a Zipkin v2 span"}}
_CUT = (
    "; a trace with more spans than TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE holds its earliest only, and the "
    "answer has the header"
)


@bp.get("/api/v2/services")
@bp.answers("service names", _NAMES)
@bp.fails(503)
def services() -> Response:
    """Service names"""
    return _json(query().services())


@bp.get("/api/v2/spans")
@bp.query(ServiceParams)
@bp.answers("span names", _NAMES)
@bp.fails(400, 503)
def span_names(args: dict[str, Any]) -> Response:
    """Span names of a service"""
    return _json(query().span_names(args["serviceName"], ignore_case=True))


@bp.get("/api/v2/remoteServices")
@bp.query(ServiceParams)
@bp.answers("remote service names", _NAMES)
@bp.fails(400, 503)
def remote_services(args: dict[str, Any]) -> Response:
    """The remote services the service's spans name in the default window: the remoteEndpoint names
    Zipkin shows (query.remote_service), each of which remoteServiceName= finds."""
    start_ns, end_ns = _default_window()
    return _json(query().remote_services(args["serviceName"], start_ns, end_ns, ignore_case=True))


@bp.get("/api/v2/autocompleteKeys")
@bp.answers("tag keys", _NAMES)
@bp.fails(503)
def autocomplete_keys() -> Response:
    """Tag keys whose values Zipkin's UI offers: TRACESEARCH_ZIPKIN_AUTOCOMPLETE_KEYS, or if empty the
    keys of the span and resource attributes in the default window (the tags of Zipkin's view of the
    spans, but for the resource attributes that are its localEndpoint)"""
    configured = settings().zipkin_autocomplete_keys
    if configured:
        return _json(sorted(set(configured)))
    start_ns, end_ns = _default_window()
    names = query().autocomplete.names(list(ZIPKIN_TAG_SCOPES), start_ns, end_ns, MAX_AUTOCOMPLETE)
    return _json([name for name in names if name not in LOCAL_ENDPOINT_KEYS])


@bp.get("/api/v2/autocompleteValues")
@bp.query(AutocompleteValuesParams)
@bp.answers("the values of the tag key in the default window, sorted", _NAMES)
@bp.fails(400, 503)
def autocomplete_values(args: dict[str, Any]) -> Response:
    """Values of a tag key (span or resource attribute), from the tag index"""
    start_ns, end_ns = _default_window()
    typed = query().autocomplete.values(f".{args['key']}", start_ns, end_ns, MAX_AUTOCOMPLETE, "")
    return _json(sorted({value.value for value in typed}))


@bp.get("/api/v2/traces")
@bp.query(TracesParams)
@bp.answers(
    "traces (lists of spans) matching every parameter, newest first; each has a root span" + _CUT,
    _TRACES,
    headers=partial.DOCUMENTED,
)
@bp.fails(400, 429, 503)
def traces(args: dict[str, Any]) -> Response:
    """Search traces"""
    search = traces_query(args, _default_lookback_ms(), time.time_ns() // NS_PER_MS)
    return _traces(query().zipkin_search(search))


@bp.get("/api/v2/trace/<trace_id>", parameters=[TRACE_ID_PATH])
@bp.answers("the trace's spans" + _CUT, _SPANS, headers=partial.DOCUMENTED)
@bp.fails(400, 404, 503)
def trace(trace_id: str) -> Response:
    """One trace"""
    found = query().zipkin_trace(parse_trace_id(trace_id, "traceId"))
    if not found.spans:
        raise NotFound(f"trace {trace_id.strip()} not found", field="traceId")
    return partial.marked(_json(encode_trace(found.spans)), partial.reasons([found]))


@bp.get("/api/v2/traceMany")
@bp.query(TraceManyParams)
@bp.answers("the traces found (unknown ids left out)" + _CUT, _TRACES, headers=partial.DOCUMENTED)
@bp.fails(400, 503)
def trace_many(args: dict[str, Any]) -> Response:
    """Several traces"""
    return _traces(query().zipkin_traces(args["traceIds"]))


def _traces(found: list[CappedTrace]) -> Response:
    """Zipkin's format has no place to say a trace was cut: the header says it."""
    return partial.marked(_json([encode_trace(t.spans) for t in found]), partial.reasons(found))


@bp.get("/api/v2/dependencies")
@bp.query(DependenciesParams)
@bp.answers("service dependency links", DependencyLink(many=True))
@bp.fails(400, 503)
def dependencies(args: dict[str, Any]) -> Response:
    """Service dependency links over [endTs - lookback, endTs], from the service graph"""
    lookback_ms = args["lookback"] if args["lookback"] is not None else _default_lookback_ms()
    end_ns = args["endTs"] * NS_PER_MS
    links = query().dependencies(max(0, end_ns - lookback_ms * NS_PER_MS), end_ns)
    return _json(
        [
            {"parent": link.parent, "child": link.child, "callCount": link.call_count, "errorCount": link.error_count}
            for link in links
        ]
    )
