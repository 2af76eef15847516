"""Jaeger-compatible query API, as Grafana's Jaeger data source calls it (mounted at the root).

Times: search ``start``/``end`` in microseconds; span ``startTime``/``duration`` in microseconds.
Every answer uses Jaeger's envelope ``{"data", "total", "limit", "offset", "errors"}``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from flask import Blueprint, Response, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from tracesearch.api import errors, tempo
from tracesearch.api.context import query, settings
from tracesearch.api.http_errors import ApiError, BadRequest, NotFound
from tracesearch.api.params import trace_id as parse_trace_id
from tracesearch.codecs.jaeger_json import trace_to_jaeger
from tracesearch.query.conditions import TraceQuery, span_fields
from tracesearch.query.durations import parse_go_duration
from tracesearch.query.jaeger_tags import parse_tags

# Times are kept in nanosecond longs, which end in 2262.
MAX_MS = (2**63 - 1) // 1_000_000
bp = Blueprint("jaeger", __name__)

NS_PER_US = 1_000
MAX_LIMIT = 1_500
DEFAULT_LIMIT = 100


def envelope(data: Any, status: int = 200, errors: list[dict[str, Any]] | None = None) -> Response:
    total = len(data) if isinstance(data, list) else 0
    body = {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}
    return Response(orjson.dumps(body), status, mimetype="application/json")


def jaeger_error(error: ApiError) -> Response:
    response = envelope(None, error.status, [{"code": error.status, "msg": error.message}])
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


errors.handle(bp, jaeger_error)


class GoDuration(fields.Field[int]):
    """A Go duration string (``1.2ms``) deserialized to nanoseconds."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return parse_go_duration(str(value))
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class TagsJson(fields.Field[dict[str, str]]):
    """Grafana sends the logfmt the user typed as a JSON object of strings."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, str]:
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"not a JSON object: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ValidationError('must be a JSON object like {"http.status_code":"500"}')
        return {str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in parsed.items()}


class SearchParams(Schema):
    class Meta:
        unknown = EXCLUDE  # Grafana adds lookback=custom and friends

    service = fields.String(load_default=None)
    operation = fields.String(load_default=None)
    tags = TagsJson(load_default=None)
    minDuration = GoDuration(load_default=None)
    maxDuration = GoDuration(load_default=None)
    limit = fields.Integer(load_default=DEFAULT_LIMIT)
    start = fields.Integer(load_default=None)
    end = fields.Integer(load_default=None)

    @validates_schema
    def check(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high = data.get("minDuration"), data.get("maxDuration")
        if low is not None and high is not None and high < low:
            raise ValidationError("maxDuration must be greater than or equal to minDuration", "maxDuration")
        if data.get("limit", DEFAULT_LIMIT) < 0:
            raise ValidationError("must not be negative", "limit")


def _load(schema: Schema, args: Any) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(args)
    except ValidationError as exc:
        messages: dict[str, Any] = exc.normalized_messages()  # type: ignore[no-untyped-call]
        field, problems = next(iter(messages.items()))
        raise BadRequest(f"parameter {field!r}: {' '.join(map(str, problems))}", field=str(field)) from exc
    return loaded


def _repeated_tags(values: list[str]) -> dict[str, str]:
    """Jaeger also takes ``tag=key:value`` (repeatable)."""
    tags: dict[str, str] = {}
    for item in values:
        key, _, value = item.partition(":")
        tags[key] = value
    return tags


@bp.get("/api/services")
def services() -> Response:
    return envelope(query().services())


@bp.get("/api/services/<path:service>/operations")
def service_operations(service: str) -> Response:
    return envelope(query().span_names(service))


@bp.get("/api/operations")
def operations() -> Response:
    service = request.args.get("service")
    if not service:
        raise BadRequest("parameter 'service' is required", field="service")
    kind = request.args.get("spanKind") or None
    pairs = query().operations(service, kind.lower() if kind else None)
    return envelope([{"name": name, "spanKind": span_kind} for name, span_kind in pairs])


@bp.get("/api/traces/<trace_id>")
def get_trace(trace_id: str) -> Response:
    if tempo.wants_protobuf():
        # Grafana's Tempo data source falls back to this path and decodes protobuf only.
        return tempo.trace_v1_protobuf(trace_id)
    tid = parse_trace_id(trace_id)
    start, end = _optional_range_ns()
    spans = query().trace(tid, start, end)
    if not spans:
        raise NotFound(f"trace not found: {trace_id}")
    return envelope([trace_to_jaeger(spans)])


def _optional_range_ns() -> tuple[int | None, int | None]:
    """Grafana sends ms from its backend and µs from old frontends; Jaeger means µs."""
    values = []
    for name in ("start", "end"):
        raw = request.args.get(name)
        if raw is None or not raw.lstrip("-").isdigit():
            return None, None
        number = int(raw)
        values.append(number * (1_000_000 if number < 10**14 else NS_PER_US))
    return values[0], values[1]


@bp.get("/api/traces")
def search_traces() -> Response:
    trace_ids = request.args.getlist("traceID")
    if trace_ids:
        found = query().traces([parse_trace_id(t) for t in trace_ids])
        return envelope([trace_to_jaeger(spans) for spans in found])
    params = _load(SearchParams(), request.args)
    if not params["service"]:
        raise BadRequest("parameter 'service' is required", field="service")
    tags = dict(params["tags"] or {})
    tags.update(_repeated_tags(request.args.getlist("tag")))
    now_ns = time.time_ns()
    end_ns = params["end"] * NS_PER_US if params["end"] is not None else now_ns
    start_ns = (
        params["start"] * NS_PER_US if params["start"] is not None else end_ns - int(settings().search_lookback_s * 1e9)
    )
    if end_ns < start_ns:
        raise BadRequest("parameter 'end' is before 'start'", field="end")
    fields = span_fields(params["service"], params["operation"] or None, params["minDuration"], params["maxDuration"])
    limit = min(params["limit"] or DEFAULT_LIMIT, MAX_LIMIT)
    found = query().find_traces(TraceQuery(start_ns, end_ns, fields + parse_tags(tags), limit))
    return envelope([trace_to_jaeger(spans) for spans in found])


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


DEFAULT_DEPENDENCIES_LOOKBACK_MS = 86_400_000
NS_PER_MS = 1_000_000


@bp.get("/api/dependencies")
def dependencies() -> Response:
    """Calls between services (from the service-graph aggregates), duplicates summed."""
    params = _load(JaegerDependenciesParams(), request.args)
    end_ms = params["endTs"] if params["endTs"] is not None else time.time_ns() // NS_PER_MS
    lookback_ms = params["lookback"] if params["lookback"] is not None else DEFAULT_DEPENDENCIES_LOOKBACK_MS
    if lookback_ms < 0:
        raise BadRequest("parameter 'lookback' must not be negative", field="lookback")
    links = query().dependencies((end_ms - lookback_ms) * NS_PER_MS, end_ms * NS_PER_MS, params["service"] or None)
    data = [{"parent": link.parent, "child": link.child, "callCount": link.call_count} for link in links]
    return envelope(data)
