"""A rule's scope written as TraceQL text: what the span path evaluates, what the examples search and
what the alert's search link opens in Grafana, so all three look at the same spans."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from tracesearch.alerting.rules import Rule, Scope
from tracesearch.query.traceql import SpansetFilter, parse

# group_by names of the scope's own fields, and the TraceQL field each one is.
GROUP_FIELDS = {"service": "resource.service.name", "operation": "name", "span_kind": "kind", "status": "status"}
KINDS = frozenset({"server", "client", "producer", "consumer", "internal", "unspecified"})
STATUSES = frozenset({"ok", "error", "unset"})
# Where a TraceQL metrics query's function starts (grafana-tempo-datasource's isMetricsQuery).
METRICS_FUNCTION = re.compile(
    r"\|\s*(rate|count_over_time|avg_over_time|max_over_time|min_over_time|sum_over_time|quantile_over_time"
    r"|histogram_over_time)\s*\("
)


def string(value: str) -> str:
    """A TraceQL string literal (double quotes, backslash escapes: JSON's spelling is TraceQL's)."""
    return json.dumps(value)


def equality(name: str, value: str) -> str:
    """``name = value`` for a group_by name or a scoped attribute, with the literal its type needs."""
    field = GROUP_FIELDS.get(name, name)
    if field == "kind" and value.lower() in KINDS:
        return f"kind = {value.lower()}"
    if field == "status" and value.lower() in STATUSES:
        return f"status = {value.lower()}"
    return f"{field} = {string(value)}"


def scope_clauses(scope: Scope, labels: Mapping[str, str] = {}) -> list[str]:
    """The scope's conditions, plus the equalities of one alert's group labels."""
    clauses = []
    if scope.service:
        clauses.append(equality("service", scope.service))
    if scope.operation:
        clauses.append(equality("operation", scope.operation))
    if scope.span_kind:
        clauses.append(equality("span_kind", scope.span_kind))
    clauses += [f"{key} = {string(value)}" for key, value in sorted(scope.attributes.items())]
    clauses += [equality(name, value) for name, value in sorted(labels.items())]
    return clauses


def filter_inner(spanset_filter: str) -> str:
    """The expression inside a rule's ``{ ... }`` span filter (checked to be one spanset filter)."""
    stages = parse(spanset_filter).spansets.stages
    if len(stages) != 1 or not isinstance(stages[0], SpansetFilter):
        raise ValueError(f"{spanset_filter!r} is not one spanset filter {{ ... }}")
    text = spanset_filter.strip()
    return text[text.index("{") + 1 : text.rindex("}")].strip()


def spanset(clauses: Sequence[str]) -> str:
    kept = [c for c in clauses if c]
    return "{ " + " && ".join(f"({c})" if "||" in c else c for c in kept) + " }" if kept else "{ }"


def by(names: Sequence[str]) -> str:
    return f" by ({', '.join(GROUP_FIELDS.get(n, n) for n in names)})" if names else ""


def rule_filter(rule: Rule, labels: Mapping[str, str] = {}, extra: Sequence[str] = ()) -> str:
    """The spans a rule looks at (for one alert's labels), as a TraceQL spanset filter."""
    if rule.metric == "traceql" and rule.query:
        base = METRICS_FUNCTION.split(rule.query, maxsplit=1)[0].strip()
        text = filter_inner(base) if base.startswith("{") and base.endswith("}") else ""
        return spanset([text, *scope_clauses(Scope(), labels), *extra])
    own = [filter_inner(rule.filter)] if rule.filter else []
    return spanset([*own, *scope_clauses(rule.scope, labels), *extra])
