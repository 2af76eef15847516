import pytest

from tracesearch.query.conditions import Any, AttrEquals, AttrRange, Condition, FieldEquals, Not, Text
from tracesearch.query.durations import parse_go_duration
from tracesearch.query.jaeger_tags import parse_tag


def ANY(key: str) -> tuple[str, ...]:
    """Where Jaeger looks for an unscoped tag: span, process (resource) and log (event) fields."""
    return (f"span.{key}", f"resource.{key}", f"event.{key}")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("http.method", "GET", [AttrEquals(ANY("http.method"), text="GET")]),
        ("http.status_code", "500", [AttrEquals(ANY("http.status_code"), text="500", number=500.0)]),
        ("http.status_code", ">=500", [AttrRange(ANY("http.status_code"), ">=", 500.0)]),
        ("latency", "<0.5", [AttrRange(ANY("latency"), "<", 0.5)]),
        ("n", "> -3", [AttrRange(ANY("n"), ">", -3.0)]),
        ("n", ">=abc", [AttrEquals(ANY("n"), text=">=abc")]),
        ("region", "!=eu", [Not(AttrEquals(ANY("region"), text="eu"))]),
        ("_text", "connection refused", [Text("connection refused")]),
        ("error", "true", [FieldEquals("status", "error")]),
        ("error", "false", [Not(FieldEquals("status", "error"))]),
        ("span.kind", "SERVER", [FieldEquals("kind", "server")]),
        ("otel.status_code", "ERROR", [FieldEquals("status", "error")]),
        ("otel.scope.name", "lib", [FieldEquals("instrumentation:name", "lib")]),
        ("otel.scope.version", "1.2", [FieldEquals("instrumentation:version", "1.2")]),
        ("otel.status_description", "payment failed", [FieldEquals("statusMessage", "payment failed")]),
        ("w3c.tracestate", "shop=gold", [FieldEquals("span:traceState", "shop=gold")]),
        ("event", "retry", [Any((FieldEquals("event:name", "retry"), AttrEquals(ANY("event"), text="retry")))]),
    ],
)
def test_tag_syntax(key: str, value: str, expected: list[Condition]) -> None:
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
def test_go_durations(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize("text", ["", "5", "ms", "1x", "1s garbage"])
def test_bad_go_durations_say_so(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)
