"""Rule validation: a valid file becomes rules; every invalid field is refused with its path named."""

from __future__ import annotations

from typing import Any

import pytest

from tracesearch.alerting.rules import Rule, RulesError, Scope, from_document, parse

FULL = """
rules:
  - name: checkout-p95            # a comment, as YAML allows
    metric: latency
    quantile: p95
    scope:
      service: checkout
      operation: POST /pay
      span_kind: server
      attributes: {span.http.route: /pay}
    op: ">="
    threshold: 0.5
    window: 10m
    for: 2m
    keep_firing_for: 5m
    group_by: [service, operation]
    labels: {team: payments}
    annotations: {summary: "p95 is {{ .Value }}s"}
    severity: critical
  - name: errors
    metric: span_rate
    filter: '{ span.http.status_code >= 500 }'
    threshold: 1
  - name: by-route
    metric: traceql
    query: '{ resource.service.name = "checkout" } | quantile_over_time(duration, .95) by (span.http.route)'
    threshold: 2
"""


def base(**fields: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": "r", "metric": "error_rate", "threshold": 0.05}
    rule.update(fields)
    return {"rules": [{"name": "ok", "metric": "request_rate", "threshold": 1}, rule]}


def refused(document: Any) -> str:
    with pytest.raises(RulesError) as failed:
        from_document(document)
    return str(failed.value)


def test_a_full_file_becomes_rules() -> None:
    rules = parse(FULL).rules
    assert rules[0] == Rule(
        name="checkout-p95",
        metric="latency",
        quantile=0.95,
        filter=None,
        query=None,
        scope=Scope("checkout", "POST /pay", "server", {"span.http.route": "/pay"}),
        op=">=",
        threshold=0.5,
        window_s=600.0,
        for_s=120.0,
        keep_firing_for_s=300.0,
        group_by=("service", "operation"),
        labels={"team": "payments"},
        annotations={"summary": "p95 is {{ .Value }}s"},
        severity="critical",
    )
    errors, by_route = rules[1], rules[2]
    assert (errors.filter, errors.op, errors.window_s, errors.for_s, errors.severity) == (
        "{ span.http.status_code >= 500 }",
        ">",
        300.0,
        0.0,
        "warning",
    )
    assert by_route.query is not None and by_route.scope == Scope()
    assert len({*rules}) == 3, "rules are hashable"


def test_defaults_and_quantile_spellings() -> None:
    rule = from_document({"rules": [{"name": "a", "metric": "latency", "quantile": 0.99, "threshold": 1}]}).rules[0]
    assert (rule.quantile, rule.op, rule.window_s, rule.keep_firing_for_s, rule.group_by) == (0.99, ">", 300.0, 0.0, ())
    assert from_document({"rules": []}).rules == ()


def test_breached_follows_op() -> None:
    rule = from_document(base(op="<", threshold=0.5)).rules[1]
    assert rule.breached(0.4) and not rule.breached(0.5) and not rule.breached(float("nan"))
    assert from_document(base(op="<=", threshold=0.5)).rules[1].breached(0.5)
    assert from_document(base(op=">=", threshold=0.5)).rules[1].breached(0.5)
    assert not from_document(base(op=">", threshold=0.5)).rules[1].breached(0.5)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (None, "the file is empty: write rules: [] for no rules"),
        ([], "must be a mapping (an object)"),
        ({}, "rules: is required (a list; [] for none)"),
        ({"rules": [], "extra": 1}, "extra: unknown field (expected rules)"),
        ({"rules": {}}, "rules: must be a list"),
        ({"rules": ["x"]}, "rules[0]: must be a mapping (an object)"),
        (base(colour="red"), "rules[1].colour: unknown field"),
        (base(name=None), "rules[1].name: is required and must be a non-empty string"),
        (base(name="a b"), "rules[1].name: use letters, digits, '_', '.' and '-' only"),
        (base(name="ok"), "rules[1].name: 'ok' is used by an earlier rule"),
        (base(metric=None), "rules[1].metric: is required: one of latency, error_rate"),
        (
            base(metric="apdex"),
            "rules[1].metric: must be one of latency, error_rate, request_rate, span_count, "
            "span_rate, traceql, not 'apdex'",
        ),
        (base(metric="latency"), "rules[1].quantile: is required with metric latency"),
        (base(metric="latency", quantile=0.8), "rules[1].quantile: must be 0.5, 0.9, 0.95 or 0.99"),
        (base(metric="latency", quantile="p80"), "rules[1].quantile: must be 0.5, 0.9, 0.95 or 0.99"),
        (base(quantile=0.5), "rules[1].quantile: is only for metric latency, not error_rate"),
        (base(metric="span_count"), "rules[1].filter: is required with metric span_count"),
        (base(filter="{ }"), "rules[1].filter: is only for metric span_count or span_rate, not error_rate"),
        (base(metric="span_rate", filter=5), "rules[1].filter: is required and must be a non-empty string"),
        (base(metric="span_rate", filter="{ span.a = "), "rules[1].filter: not TraceQL: line 1, column"),
        (base(metric="span_rate", filter="{ } | rate()"), "rules[1].filter: must be one spanset filter"),
        (base(metric="span_rate", filter="{ .a = 1 } && { .b = 2 }"), "rules[1].filter: must be one spanset filter"),
        (
            base(metric="span_rate", filter="{ traceDuration > 1s }"),
            "rules[1].filter: metrics need a span filter the store can count exactly",
        ),
        (base(metric="span_rate", filter="{" * 200 + "}" * 200), "rules[1].filter:"),
        (base(metric="traceql"), "rules[1].query: is required with metric traceql"),
        (base(query="{ } | rate()"), "rules[1].query: is only for metric traceql, not error_rate"),
        (base(metric="traceql", query="{ }"), "rules[1].query: must be a TraceQL metrics query"),
        (base(metric="traceql", query="{ } | histogram_over_time(duration)"), "rules[1].query: histogram_over_time()"),
        (base(metric="traceql", query="{ } | rate() by (.x)"), "rules[1].query: by(.x): name the scope"),
        (base(metric="traceql", query="{ } | rate(", threshold=1), "rules[1].query: not TraceQL"),
        (
            base(metric="traceql", query="{ } | rate()", scope={"service": "a"}),
            "rules[1].scope: not used with metric traceql",
        ),
        (
            base(metric="traceql", query="{ } | rate()", group_by=["service"]),
            "rules[1].group_by[0]: not used with metric traceql",
        ),
        (base(scope="checkout"), "rules[1].scope: must be a mapping"),
        (base(scope={"svc": "a"}), "rules[1].scope.svc: unknown field"),
        (base(scope={"service": ""}), "rules[1].scope.service: must be a non-empty string"),
        (base(scope={"operation": 3}), "rules[1].scope.operation: must be a non-empty string"),
        (base(scope={"span_kind": "SERVER"}), "rules[1].scope.span_kind: must be one of server, client"),
        (base(scope={"attributes": ["a"]}), "rules[1].scope.attributes: must be a mapping of names to strings"),
        (base(scope={"attributes": {"http.route": "/"}}), "rules[1].scope.attributes.http.route: name it span.<name>"),
        (
            base(scope={"attributes": {"span.code": 500}}),
            "rules[1].scope.attributes.span.code: must be a string (quote it: '500')",
        ),
        (base(op="=="), "rules[1].op: must be one of >, >=, <, <=, not '=='"),
        (base(threshold=None), "rules[1].threshold: is required (a number)"),
        (base(threshold="high"), "rules[1].threshold: must be a number"),
        (base(threshold=True), "rules[1].threshold: must be a number"),
        (base(threshold=float("nan")), "rules[1].threshold: must be a number"),
        (base(threshold=5), "rules[1].threshold: must be within [0, 1] for error_rate"),
        (base(metric="request_rate", threshold=-1), "rules[1].threshold: must be at least 0 for request_rate"),
        (base(window="five minutes"), "rules[1].window: 'five minutes' is not a duration like 30s, 5m or 1h"),
        (base(window=[5]), "rules[1].window: must be a duration like 30s, 5m or 1h"),
        (base(window="0s"), "rules[1].window: must be at least 1s"),
        (base(window="2d"), "rules[1].window: must be at most 1d"),
        (base(**{"for": -5}), "rules[1].for: must be at least 0s"),
        (base(keep_firing_for="soon"), "rules[1].keep_firing_for: 'soon' is not a duration"),
        (base(group_by="service"), "rules[1].group_by: must be a list"),
        (base(group_by=["host"]), "rules[1].group_by[0]: must be one of service, operation, span_kind, not 'host'"),
        (base(group_by=["service", "service"]), "rules[1].group_by[1]: 'service' is listed twice"),
        (base(labels={"team-name": "x"}), "rules[1].labels.team-name: a label name is"),
        (base(labels={"severity": "x"}), "rules[1].labels.severity: is set by the alert itself"),
        (base(labels={"service": "x"}), "rules[1].labels.service: is set by the alert itself"),
        (base(labels={"team": 1}), "rules[1].labels.team: must be a string"),
        (base(labels={1: "x"}), "rules[1].labels: 1: names must be non-empty strings"),
        (base(annotations={"s": "{{ .Value | printf }}"}), "rules[1].annotations.s: unknown template action"),
        (base(annotations={"s": "{{ .Value"}), "rules[1].annotations.s: unbalanced {{ or }}"),
        (base(severity="CRITICAL"), "rules[1].severity: use lowercase letters"),
        (base(severity=""), "rules[1].severity: must be a non-empty string"),
    ],
)
def test_every_invalid_field_is_named(document: Any, message: str) -> None:
    assert refused(document).startswith(message) or message in refused(document)


def test_the_path_is_kept_apart_from_the_problem() -> None:
    with pytest.raises(RulesError) as failed:
        from_document(base(threshold="x"))
    assert (failed.value.path, failed.value.problem) == ("rules[1].threshold", "must be a number")


def test_yaml_errors_say_where() -> None:
    with pytest.raises(RulesError) as failed:
        parse("rules: [{name: a\n")
    assert str(failed.value).startswith("not YAML: line 2, column 1:")
    with pytest.raises(RulesError, match="must be a mapping"):
        parse("just text")
