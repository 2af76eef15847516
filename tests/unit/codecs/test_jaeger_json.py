import orjson

from tracesearch.codecs.jaeger_json import jaeger_tag, span_to_jaeger_tags, trace_to_jaeger
from tracesearch.model import Event, Link, Resource, Scope, Span, SpanKind, StatusCode

TRACE = "00000000000000005af7183fb1d4cf5f"
T0 = 1_716_800_000_000_000_000
MS = 1_000_000


def three_span_trace() -> list[Span]:
    frontend = Resource({"service.name": "frontend", "host.name": "web-1"}, "frontend")
    cart = Resource({"service.name": "cart"}, "cart")
    flask = Scope("io.opentelemetry.flask", "0.48b0")
    root = Span(
        TRACE, "6b221d5bc9e6496c", "GET /api/cart", T0, T0 + 12_500_000, frontend, flask,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "http.response.status_code": 200},
    )  # fmt: skip
    client = Span(
        TRACE, "352bff9a74ca9ad2", "SELECT cart", T0 + 2 * MS, T0 + 2 * MS + 4_100_999, frontend, Scope(),
        parent_span_id="6b221d5bc9e6496c",
        kind=SpanKind.CLIENT,
        status_code=StatusCode.ERROR,
        status_message="timeout",
        attributes={"big": 2**60, "raw": b"\x01\x02", "list": ["a", 1], "map": {"k": True}, "ratio": 0.5},
        events=[Event(T0 + 3 * MS, "retry", {"attempt": 2})],
        links=[Link("1" * 32, "2" * 16)],
        trace_state="congo=t61",
    )  # fmt: skip
    internal = Span(
        TRACE, "aaaaaaaaaaaaaaaa", "load", T0 + 2_500_000, T0 + 3 * MS, cart, Scope("cart.lib"),
        parent_span_id="352bff9a74ca9ad2",
        kind=SpanKind.INTERNAL,
        status_code=StatusCode.OK,
        events=[Event(T0 + 2_600_000, "ignored name", {"event": "cache.hit", "n": 1})],
        links=[Link(TRACE, "352bff9a74ca9ad2")],
    )  # fmt: skip
    return [internal, root, client]


EXPECTED = {
    "traceID": "5af7183fb1d4cf5f",
    "spans": [
        {
            "traceID": "5af7183fb1d4cf5f",
            "spanID": "6b221d5bc9e6496c",
            "operationName": "GET /api/cart",
            "references": [],
            "startTime": 1716800000000000,
            "duration": 12500,
            "tags": [
                {"key": "otel.scope.name", "type": "string", "value": "io.opentelemetry.flask"},
                {"key": "otel.scope.version", "type": "string", "value": "0.48b0"},
                {"key": "http.request.method", "type": "string", "value": "GET"},
                {"key": "http.response.status_code", "type": "int64", "value": 200},
                {"key": "span.kind", "type": "string", "value": "server"},
            ],
            "logs": [],
            "processID": "p1",
            "warnings": None,
        },
        {
            "traceID": "5af7183fb1d4cf5f",
            "spanID": "352bff9a74ca9ad2",
            "operationName": "SELECT cart",
            "references": [
                {"refType": "CHILD_OF", "traceID": "5af7183fb1d4cf5f", "spanID": "6b221d5bc9e6496c"},
                {
                    "refType": "FOLLOWS_FROM",
                    "traceID": "11111111111111111111111111111111",
                    "spanID": "2222222222222222",
                },
            ],
            "startTime": 1716800000002000,
            "duration": 4100,
            "tags": [
                {"key": "big", "type": "int64", "value": "1152921504606846976"},
                {"key": "raw", "type": "binary", "value": "AQI="},
                {"key": "list", "type": "string", "value": '["a",1]'},
                {"key": "map", "type": "string", "value": '{"k":true}'},
                {"key": "ratio", "type": "float64", "value": 0.5},
                {"key": "span.kind", "type": "string", "value": "client"},
                {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                {"key": "error", "type": "bool", "value": True},
                {"key": "otel.status_description", "type": "string", "value": "timeout"},
                {"key": "w3c.tracestate", "type": "string", "value": "congo=t61"},
            ],
            "logs": [
                {
                    "timestamp": 1716800000003000,
                    "fields": [
                        {"key": "event", "type": "string", "value": "retry"},
                        {"key": "attempt", "type": "int64", "value": 2},
                    ],
                }
            ],
            "processID": "p1",
            "warnings": None,
        },
        {
            "traceID": "5af7183fb1d4cf5f",
            "spanID": "aaaaaaaaaaaaaaaa",
            "operationName": "load",
            "references": [
                {"refType": "FOLLOWS_FROM", "traceID": "5af7183fb1d4cf5f", "spanID": "352bff9a74ca9ad2"},
            ],
            "startTime": 1716800000002500,
            "duration": 500,
            "tags": [
                {"key": "otel.scope.name", "type": "string", "value": "cart.lib"},
                {"key": "span.kind", "type": "string", "value": "internal"},
                {"key": "otel.status_code", "type": "string", "value": "OK"},
            ],
            "logs": [
                {
                    "timestamp": 1716800000002600,
                    "fields": [
                        {"key": "event", "type": "string", "value": "cache.hit"},
                        {"key": "n", "type": "int64", "value": 1},
                    ],
                }
            ],
            "processID": "p2",
            "warnings": None,
        },
    ],
    "processes": {
        "p1": {"serviceName": "frontend", "tags": [{"key": "host.name", "type": "string", "value": "web-1"}]},
        "p2": {"serviceName": "cart", "tags": []},
    },
    "warnings": None,
}


def test_three_span_trace_exact_json() -> None:
    got = trace_to_jaeger(three_span_trace())
    assert got == EXPECTED
    # The document must be serialisable as is (no bytes, no NaN left behind).
    assert orjson.loads(orjson.dumps(got)) == EXPECTED


def test_processes_are_deduplicated_by_content_not_object() -> None:
    spans = three_span_trace()
    spans[0].resource = Resource({"service.name": "frontend", "host.name": "web-1"}, "frontend")
    got = trace_to_jaeger(spans)
    assert list(got["processes"]) == ["p1"]
    assert {span["processID"] for span in got["spans"]} == {"p1"}


def test_same_service_with_other_attributes_is_another_process() -> None:
    spans = three_span_trace()
    spans[0].resource = Resource({"service.name": "frontend", "host.name": "web-2"}, "frontend")
    assert list(trace_to_jaeger(spans)["processes"]) == ["p1", "p2"]


def test_long_trace_ids_stay_32_chars_and_empty_trace_is_harmless() -> None:
    span = three_span_trace()[1]
    span.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_to_jaeger([span])["traceID"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_to_jaeger([]) == {"traceID": "", "spans": [], "processes": {}, "warnings": None}


def test_unspecified_kind_and_unset_status_add_no_tags() -> None:
    span = three_span_trace()[1]
    span.kind, span.scope, span.attributes = SpanKind.UNSPECIFIED, Scope(), {}
    assert span_to_jaeger_tags(span) == []


def test_child_of_link_reference_type() -> None:
    span = three_span_trace()[2]
    span.links = [Link("3" * 32, "4" * 16, attributes={"opentracing.ref_type": "child_of"})]
    refs = trace_to_jaeger([span])["spans"][0]["references"]
    assert [r["refType"] for r in refs] == ["CHILD_OF", "CHILD_OF"]


def test_tag_types() -> None:
    assert jaeger_tag("n", -(2**53) + 1)["value"] == -(2**53) + 1
    assert jaeger_tag("n", -(2**53))["value"] == "-9007199254740992"
    assert jaeger_tag("f", float("nan")) == {"key": "f", "type": "float64", "value": "nan"}
    assert jaeger_tag("b", False) == {"key": "b", "type": "bool", "value": False}
    assert jaeger_tag("none", None) == {"key": "none", "type": "string", "value": ""}
