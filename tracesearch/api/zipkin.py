"""Zipkin v2 read API (``/api/v2/...``), as Grafana's Zipkin data source and the Zipkin UI call it.

Grafana calls four routes (services, spans, traces without any time range, trace by id); the others
are Zipkin's and cheap. Units are Zipkin's: ``endTs``/``lookback`` in milliseconds, durations in
microseconds. Every trace is a list of Zipkin v2 spans, adjusted on read the way Zipkin's own server
does (client/server halves of a shared span), and every trace of a ``/traces`` answer has a root span
(see ``services.adjusters``). Errors use the service's JSON error shape with the offending parameter.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from flask import Blueprint, Response, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from tracesearch.api import errors
from tracesearch.api.context import query, settings
from tracesearch.api.http_errors import BadRequest, NotFound
from tracesearch.api.params import trace_id as parse_trace_id
from tracesearch.codecs.zipkin_json import encode_trace
from tracesearch.query.conditions import TraceQuery, span_fields, tag_equals
from tracesearch.query.zipkin_annotations import annotation_conditions

# Times are kept in nanosecond longs, which end in 2262.
MAX_MS = (2**63 - 1) // 1_000_000
bp = Blueprint("zipkin_query", __name__)

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
DEFAULT_LIMIT = 10  # Zipkin's
MAX_LIMIT = 1_500
MAX_TRACE_IDS = 100


def _default_lookback_ms() -> int:
    return int(settings().zipkin_lookback_s * 1000)


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), 200, mimetype="application/json")


errors.handle(bp, errors.render_json)


# ---------------------------------------------------------------------------------------------- parameters


class TracesParams(Schema):
    """``GET /api/v2/traces``; Grafana sends only serviceName and spanName, so the defaults matter."""

    class Meta:
        unknown = EXCLUDE

    serviceName = fields.String(load_default=None)
    remoteServiceName = fields.String(load_default=None)
    spanName = fields.String(load_default=None)
    annotationQuery = fields.String(load_default=None, metadata={"description": "`key=value and word and ...`"})
    minDuration = fields.Integer(load_default=None, validate=validate.Range(min=0), metadata={"description": "µs"})
    maxDuration = fields.Integer(load_default=None, validate=validate.Range(min=0), metadata={"description": "µs"})
    endTs = fields.Integer(
        load_default=None, validate=validate.Range(min=1, max=MAX_MS), metadata={"description": "epoch ms, default now"}
    )
    lookback = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=MAX_MS),
        metadata={"description": "ms before endTs, default TRACESEARCH_ZIPKIN_DEFAULT_LOOKBACK"},
    )
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1), metadata={"description": "default 10, at most 1500"}
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


def _load(schema: Schema) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(request.args)
    except ValidationError as exc:
        messages: dict[str, Any] = exc.normalized_messages()  # type: ignore[no-untyped-call]
        field, problems = next(iter(messages.items()))
        text = " ".join(map(str, problems)) if isinstance(problems, list) else str(problems)
        raise BadRequest(f"parameter {field!r}: {text}", field=str(field)) from exc
    return loaded


def _required(name: str) -> str:
    value = request.args.get(name, "").strip()
    if not value:
        raise BadRequest(f"parameter {name!r} is required", field=name)
    return value


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
        # The Zipkin codec keeps remoteEndpoint.serviceName as the span attribute peer.service.
        conditions.append(tag_equals("peer.service", params["remoteServiceName"], ("span",), ignore_case=True))
    return TraceQuery(
        start_ns=max(0, end_ms - lookback_ms) * NS_PER_MS,
        end_ns=end_ms * NS_PER_MS,
        conditions=conditions,
        limit=min(params["limit"], MAX_LIMIT),
    )


# ---------------------------------------------------------------------------------------------- routes


@bp.get("/api/v2/services")
def services() -> Response:
    return _json(query().services())


@bp.get("/api/v2/spans")
def span_names() -> Response:
    return _json(query().span_names(_required("serviceName"), ignore_case=True))


@bp.get("/api/v2/remoteServices")
def remote_services() -> Response:
    """The services this one called or was called by in the default window, from the service graph
    (Zipkin reads remoteEndpoint names; ours come from matched client/server pairs and peer.service)."""
    service = _required("serviceName")
    end_ns = time.time_ns()
    return _json(
        query().remote_services(service, end_ns - _default_lookback_ms() * NS_PER_MS, end_ns, ignore_case=True)
    )


@bp.get("/api/v2/traces")
def traces() -> Response:
    search = traces_query(_load(TracesParams()), _default_lookback_ms(), time.time_ns() // NS_PER_MS)
    return _json([encode_trace(spans) for spans in query().zipkin_search(search)])


@bp.get("/api/v2/trace/<trace_id>")
def trace(trace_id: str) -> Response:
    spans = query().zipkin_trace(parse_trace_id(trace_id, "traceId"))
    if not spans:
        raise NotFound(f"trace {trace_id.strip()} not found", field="traceId")
    return _json(encode_trace(spans))


@bp.get("/api/v2/traceMany")
def trace_many() -> Response:
    texts = [t for t in _required("traceIds").split(",") if t.strip()]
    if len(texts) > MAX_TRACE_IDS:
        raise BadRequest(f"parameter 'traceIds': at most {MAX_TRACE_IDS} ids, got {len(texts)}", field="traceIds")
    trace_ids = list(dict.fromkeys(parse_trace_id(t, "traceIds") for t in texts))
    return _json([encode_trace(spans) for spans in query().zipkin_traces(trace_ids)])


@bp.get("/api/v2/dependencies")
def dependencies() -> Response:
    params = _load(DependenciesParams())
    lookback_ms = params["lookback"] if params["lookback"] is not None else _default_lookback_ms()
    end_ns = params["endTs"] * NS_PER_MS
    links = query().dependencies(max(0, end_ns - lookback_ms * NS_PER_MS), end_ns)
    return _json(
        [
            {"parent": link.parent, "child": link.child, "callCount": link.call_count, "errorCount": link.error_count}
            for link in links
        ]
    )
