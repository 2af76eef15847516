"""The text ``tracesearch alerts list`` and ``tracesearch alerts test`` print: plain, aligned tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from tracesearch.alerting.dry_run import WouldFire
from tracesearch.alerting.rules import Rule
from tracesearch.alerting.templates import format_duration, format_number
from tracesearch.alerting.views import AlertView


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = [header, *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def labels_text(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"


def when(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def what(rule: Rule) -> str:
    """The rule's metric in one phrase: ``p95 latency``, ``span_rate { ... }``, the TraceQL query."""
    if rule.metric == "latency" and rule.quantile is not None:
        return f"p{round(rule.quantile * 100)} latency"
    if rule.metric == "traceql":
        return rule.query or ""
    if rule.filter:
        return f"{rule.metric} {rule.filter}"
    return rule.metric


def scope_text(rule: Rule) -> str:
    scope = rule.scope
    parts = [
        f"{name}={value}"
        for name, value in (("service", scope.service), ("operation", scope.operation), ("span_kind", scope.span_kind))
        if value
    ]
    parts += [f"{key}={value}" for key, value in sorted(scope.attributes.items())]
    return ",".join(parts) or "-"


def rules_table(rules: Sequence[Rule], alerts: Sequence[AlertView]) -> str:
    header = ("RULE", "METRIC", "SCOPE", "CONDITION", "WINDOW", "FOR", "SEVERITY", "FIRING", "PENDING")
    rows = [
        (
            rule.name,
            what(rule),
            scope_text(rule),
            f"{rule.op} {format_number(rule.threshold)}",
            format_duration(rule.window_s),
            format_duration(rule.for_s),
            rule.severity,
            str(sum(1 for a in alerts if a.rule == rule.name and a.state == "firing")),
            str(sum(1 for a in alerts if a.rule == rule.name and a.state == "pending")),
        )
        for rule in rules
    ]
    return table(header, rows)


def alerts_table(alerts: Sequence[AlertView]) -> str:
    header = ("RULE", "STATE", "VALUE", "THRESHOLD", "SINCE", "LABELS")
    rows = [
        (
            a.rule,
            a.state,
            format_number(a.value),
            f"{a.op} {format_number(a.threshold)}",
            when(a.firing_since_ns if a.firing_since_ns is not None else a.active_since_ns),
            labels_text(a.labels),
        )
        for a in alerts
    ]
    return table(header, rows)


def would_fire_table(fired: Sequence[WouldFire]) -> str:
    header = ("RULE", "VALUE", "THRESHOLD", "FIRING FROM", "NOW", "LABELS")
    rows = [
        (
            f.rule.name,
            format_number(f.value),
            f"{f.rule.op} {format_number(f.rule.threshold)}",
            when(f.started_ns),
            "firing" if f.firing_now else "resolved",
            labels_text(f.labels),
        )
        for f in fired
    ]
    return table(header, rows)
