"""Annotation templates: the four fields render, anything else is refused when the rule is loaded."""

from __future__ import annotations

import pytest

from tracesearch.alerting import templates
from tracesearch.alerting.rules import from_document


def render(text: str) -> str:
    return templates.render(text, value=0.73123456, threshold=0.5, window_s=300, labels={"operation": "POST /pay"})


def test_fields_render() -> None:
    assert render("p95 {{ .Value }}s > {{.Threshold}}s on {{ .Labels.operation }} over {{ .Window }}") == (
        "p95 0.731235s > 0.5s on POST /pay over 5m"
    )
    assert render("{{ .Labels.missing }}|") == "|"
    assert render("no actions") == "no actions"


def test_numbers_and_durations() -> None:
    assert templates.format_number(1250.0) == "1250" and templates.format_number(1e-7) == "1e-07"
    assert [templates.format_duration(s) for s in (30, 90, 300, 3600, 86400, 1.5)] == [
        "30s",
        "90s",
        "5m",
        "1h",
        "1d",
        "1.5s",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "{{ .Values }}",
        "{{ Value }}",
        "{{ .Labels }}",
        "{{ .Labels.a.b }}",
        '{{ printf "%s" .Value }}',
        "{{ .Value",
        "x }}",
        "{{ }}",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(templates.TemplateError):
        templates.check(text)


def test_a_refused_template_is_never_executed_only_echoed() -> None:
    assert render("{{ __import__('os') }}") == "{{ __import__('os') }}"


def test_a_rule_renders_its_annotations() -> None:
    document = {
        "rules": [
            {
                "name": "a",
                "metric": "error_rate",
                "threshold": 0.05,
                "window": "10m",
                "annotations": {"summary": "{{ .Value }} of {{ .Labels.service }} over {{ .Window }}"},
            }
        ]
    }
    rule = from_document(document).rules[0]
    assert rule.render_annotations(0.12, {"service": "checkout"}) == {"summary": "0.12 of checkout over 10m"}
