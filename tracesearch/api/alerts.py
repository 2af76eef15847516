"""The alerts API: the rules file, the current alerts and their history.

- ``GET /api/v1/alerts/rules``: the rules file (``TRACESEARCH_ALERTS_RULES_FILE``) as this process serves
  it, as JSON; ``PUT``: a new one (JSON, the file's shape), validated (400 naming the wrong field, like
  ``rules[2].threshold``) and written atomically; every process reloads it on change.
- ``GET /api/v1/alerts``: every pending or firing alert; ``GET /api/v1/alerts/history``: their
  transitions, newest first (``rule``, ``since``, ``limit``).

Our own API (no other project's to follow): JSON, times in RFC 3339 (UTC), errors in our JSON shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Response, request
from marshmallow import EXCLUDE, Schema, fields, validate

from tracesearch.alerting import rules as rule_model
from tracesearch.alerting.ruleset import NoRulesFile, RulesUnavailable
from tracesearch.alerting.views import AlertEvent, AlertView
from tracesearch.api import errors
from tracesearch.api.blueprint import Blueprint, ErrorFormat
from tracesearch.api.context import alert_rules, alert_state, settings
from tracesearch.api.http_errors import ApiError, BadRequest, NotFound, PayloadTooLarge, Unavailable
from tracesearch.api.params import CappedInt, UnixTime

# Thousands of rules are far below this; more is a mistake, not a file.
MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_HISTORY = 100
MAX_HISTORY = 10_000
NO_FILE = (
    "no rules file: set TRACESEARCH_ALERTS_RULES_FILE (a YAML file, 'rules: []' to start) to manage alert rules here"
)

bp = Blueprint(
    "alerts",
    __name__,
    description="Alert rules (TRACESEARCH_ALERTS_RULES_FILE), current alerts and their history; JSON errors",
    errors=ErrorFormat(errors.render_json, errors.JsonError),
)


class Conflict(ApiError):
    status = 409


# -- documentation of the bodies (the views validate the rules themselves: errors name the field)


class ScopeSchema(Schema):
    service = fields.String(metadata={"description": "resource.service.name"})
    operation = fields.String(metadata={"description": "span name"})
    span_kind = fields.String(metadata={"enum": list(rule_model.SPAN_KINDS)})
    attributes = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "exact matches, keys in TraceQL spelling: span.http.route, resource.deployment"},
    )


class RuleSchema(Schema):
    name = fields.String(required=True, metadata={"description": "unique, [A-Za-z0-9_.-]+"})
    metric = fields.String(required=True, metadata={"enum": list(rule_model.METRICS)})
    quantile = fields.Raw(metadata={"description": "latency only: 0.5, 0.9, 0.95, 0.99 or p50, p90, p95, p99"})
    filter = fields.String(metadata={"description": "span_count and span_rate: a TraceQL spanset filter"})
    query = fields.String(metadata={"description": "traceql: a TraceQL metrics query; each series is compared"})
    scope = fields.Nested(ScopeSchema, metadata={"description": "which spans (not with metric traceql)"})
    op = fields.String(metadata={"enum": list(rule_model.OPS), "default": ">"})
    threshold = fields.Float(
        required=True,
        metadata={"description": "latency in seconds, rates per second, error_rate a fraction within [0, 1]"},
    )
    window = fields.String(metadata={"description": "evaluation window, like 5m (default 5m)"})
    # "for" is a Python keyword: the field is named by data_key.
    for_ = fields.String(data_key="for", metadata={"description": "how long it holds before firing (default 0s)"})
    keep_firing_for = fields.String(metadata={"description": "how long it keeps firing after it stops holding"})
    group_by = fields.List(fields.String(metadata={"enum": list(rule_model.GROUP_BY)}))
    labels = fields.Dict(keys=fields.String(), values=fields.String())
    annotations = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "templates: {{ .Value }}, {{ .Threshold }}, {{ .Window }}, {{ .Labels.<name> }}"},
    )
    severity = fields.String(metadata={"description": "default warning"})


class RulesFileSchema(Schema):
    rules = fields.List(fields.Nested(RuleSchema), required=True)


class AlertSchema(Schema):
    rule = fields.String()
    fingerprint = fields.String(metadata={"description": "stable id of the rule and the label set"})
    labels = fields.Dict(keys=fields.String(), values=fields.String())
    annotations = fields.Dict(keys=fields.String(), values=fields.String(), metadata={"description": "rendered"})
    state = fields.String(metadata={"enum": ["pending", "firing"]})
    value = fields.Float(metadata={"description": "at the last evaluation"})
    threshold = fields.Float()
    op = fields.String(metadata={"enum": list(rule_model.OPS)})
    active_since = fields.String(metadata={"description": "RFC 3339: since when the condition holds"})
    firing_since = fields.String(metadata={"description": "RFC 3339; null while pending"})
    evaluated_at = fields.String(metadata={"description": "RFC 3339: the last evaluation"})
    example_trace_ids = fields.List(fields.String(), metadata={"description": "up to 5 traces behind the value"})


class AlertsSchema(Schema):
    alerts = fields.List(fields.Nested(AlertSchema))


class EventSchema(Schema):
    rule = fields.String()
    fingerprint = fields.String()
    labels = fields.Dict(keys=fields.String(), values=fields.String())
    state = fields.String(metadata={"enum": ["pending", "firing", "resolved", "ok"], "description": "entered"})
    previous = fields.String(metadata={"description": "the state left"})
    at = fields.String(metadata={"description": "RFC 3339"})
    value = fields.Float()
    threshold = fields.Float()
    op = fields.String()
    example_trace_ids = fields.List(fields.String())


class EventsSchema(Schema):
    events = fields.List(fields.Nested(EventSchema))


class HistoryParams(Schema):
    class Meta:
        unknown = EXCLUDE

    rule = fields.String(
        load_default=None,
        validate=validate.Regexp(rf"^{rule_model.NAME.pattern}$", error="is not a rule name ([A-Za-z0-9_.-]+)"),
        metadata={"description": "only this rule's events"},
    )
    since = UnixTime(
        load_default=None, metadata={"description": "unix seconds, nanoseconds or RFC 3339: only events from then on"}
    )
    limit = CappedInt(
        MAX_HISTORY, load_default=DEFAULT_HISTORY, metadata={"description": "at most this many, the newest"}
    )


# -- answers


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, mimetype="application/json")


def _time(ns: int | None) -> str | None:
    if ns is None:
        return None
    moment = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_json(alert: AlertView) -> dict[str, Any]:
    return {
        "rule": alert.rule,
        "fingerprint": alert.fingerprint,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "state": alert.state,
        "value": alert.value,
        "threshold": alert.threshold,
        "op": alert.op,
        "active_since": _time(alert.active_since_ns),
        "firing_since": _time(alert.firing_since_ns),
        "evaluated_at": _time(alert.evaluated_at_ns),
        "example_trace_ids": list(alert.example_trace_ids),
    }


def event_json(event: AlertEvent) -> dict[str, Any]:
    return {
        "rule": event.rule,
        "fingerprint": event.fingerprint,
        "labels": dict(event.labels),
        "state": event.state,
        "previous": event.previous,
        "at": _time(event.at_ns),
        "value": event.value,
        "threshold": event.threshold,
        "op": event.op,
        "example_trace_ids": list(event.example_trace_ids),
    }


def _unavailable(exc: RulesUnavailable) -> Unavailable:
    return Unavailable(f"alert rules not loaded: {exc}", retry_after_s=settings().retry_after_s)


# -- views


@bp.get("/api/v1/alerts/rules")
@bp.answers("the rules file as this process serves it", RulesFileSchema)
@bp.fails(404, 503)
def get_rules() -> Response:
    """The alert rules file"""
    try:
        return _json(alert_rules().document())
    except NoRulesFile:
        raise NotFound(NO_FILE) from None
    except RulesUnavailable as exc:
        raise _unavailable(exc) from None


@bp.put("/api/v1/alerts/rules")
@bp.json_body("the rules file's document as JSON; replaces the file whole", RulesFileSchema)
@bp.answers("stored: the file as it is now served", RulesFileSchema)
@bp.fails(400, 409, 413)
def put_rules() -> Response:
    """Replace the alert rules file

    Validated first (400 naming the wrong field, e.g. rules[2].threshold), then written atomically as YAML;
    this process serves it at once, the others within TRACESEARCH_ALERTS_RELOAD_INTERVAL.
    """
    ruleset = alert_rules()
    if not ruleset.configured:
        raise Conflict(NO_FILE)
    document = _body()
    try:
        ruleset.replace(document)
    except rule_model.RulesError as exc:
        raise BadRequest(str(exc), field=exc.path or "body") from None
    return _json(document)


def _body() -> Any:
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the rules file is over {MAX_BODY_BYTES} bytes", field="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}", field="body") from None


@bp.get("/api/v1/alerts")
@bp.answers("every pending or firing alert", AlertsSchema)
@bp.fails(503)
def get_alerts() -> Response:
    """Current alerts"""
    return _json({"alerts": [alert_json(alert) for alert in alert_state().current()]})


@bp.get("/api/v1/alerts/history")
@bp.query(HistoryParams)
@bp.answers("transitions, newest first", EventsSchema)
@bp.fails(400, 503)
def get_history(args: Mapping[str, Any]) -> Response:
    """Alert history: every transition of every alert"""
    events = alert_state().history(args["rule"], args["since"], args["limit"])
    return _json({"events": [event_json(event) for event in events]})
