import pytest

from tracesearch.query.durations import parse_go_duration
from tracesearch.query.filters import Intrinsic, Op, TagCompare, TagEquals, TextMatch
from tracesearch.query.jaeger_tags import parse_tag


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("http.method", "GET", [TagEquals("http.method", "GET")]),
        ("http.status_code", ">=500", [TagCompare("http.status_code", Op.GE, 500.0)]),
        ("latency", "<0.5", [TagCompare("latency", Op.LT, 0.5)]),
        ("n", "> -3", [TagCompare("n", Op.GT, -3.0)]),
        ("n", ">=abc", [TagEquals("n", ">=abc")]),
        ("region", "!=eu", [TagEquals("region", "eu", negate=True)]),
        ("_text", "connection refused", [TextMatch("connection refused")]),
        ("error", "true", [Intrinsic("status", "error")]),
        ("error", "false", [Intrinsic("status", "error", negate=True)]),
        ("span.kind", "SERVER", [Intrinsic("kind", "server")]),
        ("otel.status_code", "ERROR", [Intrinsic("status", "error")]),
        ("otel.scope.name", "lib", [Intrinsic("scope", "lib")]),
    ],
)
def test_tag_syntax(key, value, expected):
    assert parse_tag(key, value) == expected


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1ns", 1),
        ("250us", 250_000),
        ("1.5ms", 1_500_000),
        ("2s", 2_000_000_000),
        ("1h30m", 5_400_000_000_000),
        ("100µs", 100_000),
    ],
)
def test_go_durations(text, ns):
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize("text", ["", "5", "ms", "1x", "1s garbage"])
def test_bad_go_durations_say_so(text):
    with pytest.raises(ValueError):
        parse_go_duration(text)
