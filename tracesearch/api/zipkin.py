"""Zipkin v2 read API (``/api/v2/...``), as Grafana's Zipkin data source and the Zipkin UI call it.

Grafana calls four routes (services, spans, traces without any time range, trace by id); the others
are Zipkin's and cheap. Units are Zipkin's: ``endTs``/``lookback`` in milliseconds, durations in
microseconds. Every trace is a list of Zipkin v2 spans, adjusted on read the way Zipkin's own server
does (client/server halves of a shared span), and every trace of a ``/traces`` answer has a root span
(see ``ensure_root``). Errors use the service's JSON error shape with the offending parameter.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from tracesearch.api.errors import json_error
from tracesearch.api.params import trace_id as parse_trace_id
from tracesearch.codecs.zipkin_json import encode_spans
from tracesearch.errors import BadRequest, NotFound
from tracesearch.model import Span
from tracesearch.query.conditions import TraceQuery, span_fields, tag_equals
from tracesearch.query.errors import InvalidQuery
from tracesearch.query.zipkin_annotations import annotation_conditions
from tracesearch.runtime import Runtime
from tracesearch.servicegraph.model import USER
from tracesearch.storage.base import StorageUnavailable

# Times are kept in nanosecond longs, which end in 2262.
MAX_MS = (2**63 - 1) // 1_000_000
bp = Blueprint("zipkin_query", __name__)

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
DEFAULT_LIMIT = 10  # Zipkin's
MAX_LIMIT = 1_500
MAX_TRACE_IDS = 100
# Where a promoted root span keeps the parent id it pointed to (see ensure_root).
MISSING_PARENT_TAG = "tracesearch.missing_parent_id"


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["tracesearch"]
    return runtime


def _default_lookback_ms(runtime: Runtime) -> int:
    return int(runtime.settings.zipkin_lookback_s * 1000)


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), 200, mimetype="application/json")


@bp.errorhandler(StorageUnavailable)
def storage_down(error: StorageUnavailable) -> Response:
    return json_error(503, str(error), retry_after_s=_runtime().settings.retry_after_s)


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
    )
    try:
        conditions += annotation_conditions(params["annotationQuery"] or "")
    except InvalidQuery as exc:
        raise BadRequest(exc.message, field=exc.field) from exc
    if params["remoteServiceName"]:
        # The Zipkin codec keeps remoteEndpoint.serviceName as the span attribute peer.service.
        conditions.append(tag_equals("peer.service", params["remoteServiceName"], ("span",)))
    return TraceQuery(
        start_ns=max(0, end_ms - lookback_ms) * NS_PER_MS,
        end_ns=end_ms * NS_PER_MS,
        conditions=conditions,
        limit=min(params["limit"], MAX_LIMIT),
    )


def merge_shared(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Zipkin's read-time fixes for B3 shared spans (client and server halves with one span id):
    the server half is marked ``shared`` and inherits the client's parent when it has none."""
    clients = {s["id"]: s for s in spans if s.get("kind") == "CLIENT"}
    for span in spans:
        client = clients.get(span["id"])
        if client is None or span.get("kind") != "SERVER":
            continue
        span["shared"] = True
        if "parentId" not in span and "parentId" in client:
            span["parentId"] = client["parentId"]
    return spans


def ensure_root(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Make sure one span has no ``parentId``: Grafana's trace picker labels each trace by the first
    span without one and breaks on a trace that has none (its root span not stored, or not yet).

    The earliest span whose parent is absent from the trace, the entry point of the part we have, loses
    its ``parentId`` (both halves of a shared span), which is kept in the ``tracesearch.missing_parent_id``
    tag so nothing is hidden. Only trace lists are adjusted; ``/trace/{id}`` returns spans as stored.
    """
    if not spans or any("parentId" not in s for s in spans):
        return spans
    ids = {s["id"] for s in spans}
    orphans = [s for s in spans if s["parentId"] not in ids] or spans  # a parent cycle: any span will do
    root = min(orphans, key=lambda s: (s.get("timestamp", 0), s["id"]))
    missing_parent = root["parentId"]
    for span in spans:
        if span["id"] == root["id"] and span.get("parentId") == missing_parent:
            del span["parentId"]
            span.setdefault("tags", {})[MISSING_PARENT_TAG] = missing_parent
    return spans


def _valid_ip(text: Any, version: int) -> bool:
    try:
        return isinstance(text, str) and ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def _clean_endpoints(span: dict[str, Any]) -> dict[str, Any]:
    """Grafana decodes ``ipv4``/``ipv6`` as Go ``net.IP``: one unparsable address fails the whole trace,
    and resource attributes (``net.host.ip``) are free text, so drop what is not an address."""
    for name in ("localEndpoint", "remoteEndpoint"):
        endpoint = span.get(name)
        if endpoint is None:
            continue
        for field, version in (("ipv4", 4), ("ipv6", 6)):
            if field in endpoint and not _valid_ip(endpoint[field], version):
                del endpoint[field]
    return span


def zipkin_trace(spans: list[Span]) -> list[dict[str, Any]]:
    return merge_shared([_clean_endpoints(s) for s in encode_spans(spans)])


# ---------------------------------------------------------------------------------------------- routes


@bp.get("/api/v2/services")
def services() -> Response:
    return _json(_runtime().reader.services())


@bp.get("/api/v2/spans")
def span_names() -> Response:
    service = _required("serviceName")
    return _json(sorted({name for name, _ in _runtime().reader.operations(service)}))


@bp.get("/api/v2/remoteServices")
def remote_services() -> Response:
    """The services this one called or was called by in the default window, from the service graph
    (Zipkin reads remoteEndpoint names; ours come from matched client/server pairs and peer.service),
    without the graph's stand-in ``user`` for callers that sent no span."""
    service = _required("serviceName")
    runtime = _runtime()
    end_ns = time.time_ns()
    links = runtime.aggregates.dependencies(end_ns - _default_lookback_ms(runtime) * NS_PER_MS, end_ns, service)
    return _json(sorted({name for link in links for name in (link.parent, link.child)} - {service, USER}))


@bp.get("/api/v2/traces")
def traces() -> Response:
    runtime = _runtime()
    params = _load(TracesParams())
    query = traces_query(params, _default_lookback_ms(runtime), time.time_ns() // NS_PER_MS)
    return _json([ensure_root(zipkin_trace(spans)) for spans in runtime.reader.find_traces(query)])


@bp.get("/api/v2/trace/<trace_id>")
def trace(trace_id: str) -> Response:
    spans = _runtime().reader.get_trace(parse_trace_id(trace_id, "traceId"))
    if not spans:
        raise NotFound(f"trace {trace_id.strip()} not found", field="traceId")
    return _json(zipkin_trace(spans))


@bp.get("/api/v2/traceMany")
def trace_many() -> Response:
    texts = [t for t in _required("traceIds").split(",") if t.strip()]
    if len(texts) > MAX_TRACE_IDS:
        raise BadRequest(f"parameter 'traceIds': at most {MAX_TRACE_IDS} ids, got {len(texts)}", field="traceIds")
    trace_ids = list(dict.fromkeys(parse_trace_id(t, "traceIds") for t in texts))
    reader = _runtime().reader
    found = [reader.get_trace(t) for t in trace_ids]
    return _json([zipkin_trace(spans) for spans in found if spans])


@bp.get("/api/v2/dependencies")
def dependencies() -> Response:
    runtime = _runtime()
    params = _load(DependenciesParams())
    lookback_ms = params["lookback"] if params["lookback"] is not None else _default_lookback_ms(runtime)
    end_ns = params["endTs"] * NS_PER_MS
    links = runtime.aggregates.dependencies(max(0, end_ns - lookback_ms * NS_PER_MS), end_ns)
    return _json(
        [
            {"parent": link.parent, "child": link.child, "callCount": link.call_count, "errorCount": link.error_count}
            for link in links
        ]
    )
