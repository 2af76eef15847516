"""Alert rules: the model, and the parsing and validation of the rules file (YAML) and of the API's
bodies (JSON, the same shape).

The file::

    rules:
      - name: checkout-p95              # unique, [A-Za-z0-9_.-]+
        metric: latency                 # latency | error_rate | request_rate | span_count | span_rate | traceql
        quantile: 0.95                  # latency only: 0.5, 0.9, 0.95, 0.99 (or p50, p90, p95, p99)
        scope:                          # which spans; not with metric traceql (its query says it)
          service: checkout
          operation: POST /pay          # span name
          span_kind: server
          attributes: {span.http.route: /pay}   # exact matches, TraceQL spelling (span. or resource.)
        op: ">"                         # > >= < <= (default >)
        threshold: 0.5                  # latency in seconds, rates per second, error_rate a fraction 0..1
        window: 5m                      # default 5m
        for: 2m                         # default 0s
        keep_firing_for: 5m             # default 0s
        group_by: [service, operation]  # one alert per label set: service, operation, span_kind
        labels: {team: payments}
        annotations: {summary: "p95 {{ .Value }}s over {{ .Threshold }}s on {{ .Labels.operation }}"}
        severity: critical              # default warning

``span_count`` / ``span_rate`` take ``filter``, a TraceQL spanset filter (``{ span.http.status_code >= 500 }``);
``traceql`` takes ``query``, a TraceQL metrics query whose every series is compared to the threshold
(``{ resource.service.name = "checkout" } | quantile_over_time(duration, .95) by (name)``). Both go through
the project's TraceQL parser and the query service's metrics rules, so a query an alert accepts is one
Grafana's panel can draw. Every error names its field: ``rules[2].threshold: must be a number``.
Annotation templates: ``tracesearch.alerting.templates``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import yaml

from tracesearch.alerting import templates
from tracesearch.query.errors import InvalidQuery
from tracesearch.query.traceql import MetricsQuery, Query, SpansetFilter, TraceQLError
from tracesearch.query.traceql.bounded import parse_bounded
from tracesearch.services.traceql_metrics import span_request
from tracesearch.settings import SettingsError, parse_seconds

METRICS = ("latency", "error_rate", "request_rate", "span_count", "span_rate", "traceql")
OPS = (">", ">=", "<", "<=")
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
SPAN_KINDS = ("server", "client", "producer", "consumer", "internal")
GROUP_BY = ("service", "operation", "span_kind")
# Set on every alert by the evaluator: a rule may not set them itself.
RESERVED_LABELS = ("alertname", "severity")
DEFAULT_WINDOW = "5m"
# A window longer than this would read days of spans on every evaluation.
MAX_WINDOW_S = 86400.0

_FILE_FIELDS = frozenset({"rules"})
_RULE_FIELDS = frozenset(
    {
        "name",
        "metric",
        "quantile",
        "filter",
        "query",
        "scope",
        "op",
        "threshold",
        "window",
        "for",
        "keep_firing_for",
        "group_by",
        "labels",
        "annotations",
        "severity",
    }
)
_SCOPE_FIELDS = frozenset({"service", "operation", "span_kind", "attributes"})
NAME = re.compile(r"[A-Za-z0-9_.-]+")
_SEVERITY = re.compile(r"[a-z][a-z0-9_-]*")
# Prometheus label names: Alertmanager refuses anything else.
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ATTRIBUTE = re.compile(r"(span|resource)\.[^\s{}()=~!<>&|^,\"]+")
_STEP_NS = 60_000_000_000


class RulesError(ValueError):
    """A rule or file is not valid; ``path`` names the wrong field (``rules[2].threshold``)."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class Scope:
    service: str | None = None
    operation: str | None = None  # span name
    span_kind: str | None = None  # "server", "client", ... (lowercase)
    # Exact-match attribute filters (span. or resource. prefixed, TraceQL spelling). Mappings are left
    # out of the hash (a dict has none), so scopes and rules stay usable as keys.
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Rule:
    name: str  # unique, [A-Za-z0-9_.-]+
    metric: str  # "latency" | "error_rate" | "request_rate" | "span_count" | "span_rate" | "traceql"
    quantile: float | None  # latency: 0.5, 0.9, 0.95 or 0.99
    filter: str | None  # span_count/span_rate: a TraceQL spanset filter
    query: str | None  # metric == "traceql": a TraceQL metrics query (its series compared to the threshold)
    scope: Scope
    op: str  # ">", ">=", "<", "<="
    threshold: float  # latency in seconds, rates per second, error_rate as a fraction 0..1
    window_s: float
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    group_by: tuple[str, ...] = ()  # e.g. ("service", "operation"): one alert per label set
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)  # templates.py's syntax
    severity: str = "warning"

    def breached(self, value: float) -> bool:
        """Whether ``value`` crosses the threshold the way ``op`` says (NaN never does)."""
        if self.op == ">":
            return value > self.threshold
        if self.op == ">=":
            return value >= self.threshold
        if self.op == "<":
            return value < self.threshold
        return value <= self.threshold

    def render_annotations(self, value: float, labels: Mapping[str, str]) -> dict[str, str]:
        """The annotations with their templates filled for one alert (``labels``: the alert's)."""
        return {
            key: templates.render(text, value=value, threshold=self.threshold, window_s=self.window_s, labels=labels)
            for key, text in self.annotations.items()
        }


@dataclass(frozen=True)
class RuleFile:
    """A valid file: its rules in file order, and the document as given (what the API shows)."""

    rules: tuple[Rule, ...] = ()
    document: Mapping[str, Any] = field(default_factory=lambda: {"rules": []})


# -- the file and the API's bodies


def parse(text: str | bytes) -> RuleFile:
    """A rules file (YAML; JSON is YAML too), validated; ``RulesError`` names the first wrong field."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError("", f"not YAML: {_yaml_problem(exc)}") from None
    return from_document(document)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem


def from_document(document: Any) -> RuleFile:
    """A parsed document (the file's YAML or an API body's JSON), validated."""
    if document is None:
        raise RulesError("", "the file is empty: write rules: [] for no rules")
    top = _object(document, "", _FILE_FIELDS)
    if "rules" not in top:
        raise RulesError("rules", "is required (a list; [] for none)")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, item in enumerate(_list(top["rules"], "rules")):
        rule = parse_rule(item, f"rules[{index}]")
        if rule.name in seen:
            raise RulesError(f"rules[{index}].name", f"{rule.name!r} is used by an earlier rule")
        seen.add(rule.name)
        rules.append(rule)
    return RuleFile(tuple(rules), top)


def parse_rule(document: Any, path: str) -> Rule:
    entry = _object(document, path, _RULE_FIELDS)
    name = _string(entry, "name", path, required=True)
    if not NAME.fullmatch(name):
        raise RulesError(f"{path}.name", "use letters, digits, '_', '.' and '-' only")
    metric = _choice(entry, "metric", path, METRICS, default=None)
    window_s = _duration(entry, "window", path, DEFAULT_WINDOW, minimum=1.0)
    if window_s > MAX_WINDOW_S:
        raise RulesError(f"{path}.window", "must be at most 1d")
    return Rule(
        name=name,
        metric=metric,
        quantile=_quantile(entry, path, metric),
        filter=_filter(entry, path, metric),
        query=_query(entry, path, metric),
        scope=_scope(entry, path, metric),
        op=_choice(entry, "op", path, OPS, default=">"),
        threshold=_threshold(entry, path, metric),
        window_s=window_s,
        for_s=_duration(entry, "for", path, "0s"),
        keep_firing_for_s=_duration(entry, "keep_firing_for", path, "0s"),
        group_by=_group_by(entry, path, metric),
        labels=_labels(entry, path),
        annotations=_annotations(entry, path),
        severity=_severity(entry, path),
    )


# -- the fields


def _only_for(entry: Mapping[str, Any], key: str, path: str, metric: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``key`` belongs to this metric: required there, refused elsewhere."""
    wanted = metric in allowed
    if wanted and entry.get(key) is None:
        raise RulesError(f"{path}.{key}", f"is required with metric {metric}")
    if not wanted and entry.get(key) is not None:
        raise RulesError(f"{path}.{key}", f"is only for metric {' or '.join(allowed)}, not {metric}")
    return wanted


def _quantile(entry: Mapping[str, Any], path: str, metric: str) -> float | None:
    if not _only_for(entry, "quantile", path, metric, ("latency",)):
        return None
    value = entry["quantile"]
    if isinstance(value, str) and value in QUANTILES:
        return QUANTILES[value]
    if _is_number(value) and value in QUANTILES.values():
        return float(value)
    raise RulesError(f"{path}.quantile", "must be 0.5, 0.9, 0.95 or 0.99 (or p50, p90, p95, p99)")


def _filter(entry: Mapping[str, Any], path: str, metric: str) -> str | None:
    if not _only_for(entry, "filter", path, metric, ("span_count", "span_rate")):
        return None
    text = _string(entry, "filter", path, required=True)
    parsed = _traceql(text, f"{path}.filter")
    stages = parsed.spansets.stages
    if parsed.metrics is not None or len(stages) != 1 or not isinstance(stages[0], SpansetFilter):
        raise RulesError(f"{path}.filter", 'must be one spanset filter like { span.http.route = "/pay" }')
    # Counted as the metrics path counts `{ ... } | rate()`: the same refusals as a Grafana panel's.
    metrics = MetricsQuery(parsed.spansets, "rate", None, (), ())
    _metrics_request(Query(parsed.spansets, metrics), f"{path}.filter")
    return text


def _query(entry: Mapping[str, Any], path: str, metric: str) -> str | None:
    if not _only_for(entry, "query", path, metric, ("traceql",)):
        return None
    text = _string(entry, "query", path, required=True)
    parsed = _traceql(text, f"{path}.query")
    if parsed.metrics is None:
        raise RulesError(f"{path}.query", "must be a TraceQL metrics query, like { } | rate() by (name)")
    if parsed.metrics.func == "histogram_over_time":
        raise RulesError(f"{path}.query", "histogram_over_time() gives bucket counts, not a value to compare")
    _metrics_request(parsed, f"{path}.query")
    return text


def _traceql(text: str, path: str) -> Query:
    try:
        return parse_bounded(text)
    except TraceQLError as exc:
        raise RulesError(path, f"not TraceQL: {exc}") from None
    except InvalidQuery as exc:
        raise RulesError(path, exc.message) from None


def _metrics_request(query: Query, path: str) -> None:
    try:
        span_request(query, 0, _STEP_NS, _STEP_NS)
    except InvalidQuery as exc:
        raise RulesError(path, exc.message) from None


def _scope(entry: Mapping[str, Any], path: str, metric: str) -> Scope:
    value = entry.get("scope")
    if value is None:
        return Scope()
    where = f"{path}.scope"
    if metric == "traceql":
        raise RulesError(where, "not used with metric traceql: put the conditions in the query")
    scope = _object(value, where, _SCOPE_FIELDS)
    kind = _choice(scope, "span_kind", where, SPAN_KINDS, default="") or None
    attributes = _string_map(scope.get("attributes"), f"{where}.attributes")
    for key in attributes:
        if not _ATTRIBUTE.fullmatch(key):
            raise RulesError(f"{where}.attributes.{key}", "name it span.<name> or resource.<name>, as TraceQL does")
    return Scope(
        service=_string(scope, "service", where) or None,
        operation=_string(scope, "operation", where) or None,
        span_kind=kind,
        attributes=attributes,
    )


def _threshold(entry: Mapping[str, Any], path: str, metric: str) -> float:
    value = entry.get("threshold")
    if not _is_number(value):
        raise RulesError(f"{path}.threshold", "must be a number" if value is not None else "is required (a number)")
    threshold = float(value)
    if metric == "error_rate" and not 0 <= threshold <= 1:
        raise RulesError(f"{path}.threshold", "must be within [0, 1] for error_rate (a fraction: 0.05 is 5 %)")
    if metric in ("latency", "request_rate", "span_count", "span_rate") and threshold < 0:
        raise RulesError(f"{path}.threshold", f"must be at least 0 for {metric}")
    return threshold


def _duration(entry: Mapping[str, Any], key: str, path: str, default: str, minimum: float = 0.0) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RulesError(f"{path}.{key}", "must be a duration like 30s, 5m or 1h")
    try:
        seconds = parse_seconds(f"{path}.{key}", str(value))
    except SettingsError:
        raise RulesError(f"{path}.{key}", f"{value!r} is not a duration like 30s, 5m or 1h") from None
    if not math.isfinite(seconds) or seconds < minimum:
        raise RulesError(f"{path}.{key}", f"must be at least {templates.format_duration(minimum)}")
    return seconds


def _group_by(entry: Mapping[str, Any], path: str, metric: str) -> tuple[str, ...]:
    names: list[str] = []
    for index, item in enumerate(_list(entry.get("group_by"), f"{path}.group_by")):
        where = f"{path}.group_by[{index}]"
        if metric == "traceql":
            raise RulesError(where, "not used with metric traceql: group with by() in the query")
        if item not in GROUP_BY:
            raise RulesError(where, f"must be one of {', '.join(GROUP_BY)}, not {item!r}")
        if item in names:
            raise RulesError(where, f"{item!r} is listed twice")
        names.append(item)
    return tuple(names)


def _labels(entry: Mapping[str, Any], path: str) -> dict[str, str]:
    labels = _string_map(entry.get("labels"), f"{path}.labels")
    for key in labels:
        if not _LABEL.fullmatch(key):
            raise RulesError(f"{path}.labels.{key}", "a label name is [A-Za-z_][A-Za-z0-9_]* (as Prometheus's)")
        if key in RESERVED_LABELS or key in GROUP_BY:
            raise RulesError(f"{path}.labels.{key}", "is set by the alert itself (alertname, severity, group_by)")
    return labels


def _annotations(entry: Mapping[str, Any], path: str) -> dict[str, str]:
    annotations = _string_map(entry.get("annotations"), f"{path}.annotations")
    for key, text in annotations.items():
        try:
            templates.check(text)
        except templates.TemplateError as exc:
            raise RulesError(f"{path}.annotations.{key}", str(exc)) from None
    return annotations


def _severity(entry: Mapping[str, Any], path: str) -> str:
    severity = _string(entry, "severity", path) or "warning"
    if not _SEVERITY.fullmatch(severity):
        raise RulesError(f"{path}.severity", "use lowercase letters, digits, '_' and '-' (critical, warning, info)")
    return severity


# -- shapes


def _is_number(value: Any) -> TypeGuard[int | float]:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _object(value: Any, path: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise RulesError(path, "must be a mapping (an object)")
    unknown = sorted(str(key) for key in set(value) - allowed)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise RulesError(where, f"unknown field (expected {', '.join(sorted(allowed))})")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RulesError(path, "must be a list")
    return value


def _string(entry: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str:
    value = entry.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise RulesError(
            f"{path}.{key}", "is required and must be a non-empty string" if required else "must be a non-empty string"
        )
    return value


def _choice(entry: Mapping[str, Any], key: str, path: str, allowed: Sequence[str], default: str | None) -> str:
    value = entry.get(key)
    if value is None and default is not None:
        return default
    if value not in allowed:
        expected = ", ".join(allowed)
        problem = f"is required: one of {expected}" if value is None else f"must be one of {expected}, not {value!r}"
        raise RulesError(f"{path}.{key}", problem)
    return str(value)


def _string_map(value: Any, path: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RulesError(path, "must be a mapping of names to strings")
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise RulesError(path, f"{key!r}: names must be non-empty strings")
        if not isinstance(item, str):
            raise RulesError(f"{path}.{key}", f"must be a string (quote it: '{item}')")
    return dict(value)
