import copy
from typing import Any

import orjson
import pytest

from tests.unit.codecs.factories import make_span
from tracesearch.admission import Limits
from tracesearch.codecs import zipkin_json
from tracesearch.codecs.errors import DecodeError
from tracesearch.model import (
    UNKNOWN_SERVICE,
    Attributes,
    DecodedBatch,
    Event,
    Link,
    Resource,
    Scope,
    Span,
    SpanKind,
    StatusCode,
)

LIMITS = Limits()

# wire-formats.md §2.2, without the error tag (see test_error_tag_* for that).
TYPICAL = {
    "traceId": "0af7651916cd43dd8448eb211c80319c",
    "id": "b7ad6b7169203331",
    "parentId": "00f067aa0ba902b7",
    "name": "get /cart",
    "kind": "SERVER",
    "timestamp": 1700000000000000,
    "duration": 250000,
    "localEndpoint": {"serviceName": "cart", "ipv4": "10.0.0.7", "port": 8080},
    "remoteEndpoint": {"ipv4": "10.0.0.9", "port": 51234},
    "annotations": [{"timestamp": 1700000000100000, "value": "cache.miss"}],
    "tags": {"http.method": "GET", "http.status_code": "503"},
}


def decode(spans: list[Any]) -> DecodedBatch:
    return zipkin_json.decode_spans(orjson.dumps(spans), LIMITS)


def one(**changes: object) -> Span:
    item = {**copy.deepcopy(TYPICAL), **changes}
    batch = decode([item])
    assert batch.rejected == [], batch.rejected
    [span] = batch.spans
    return span


def test_typical_span_maps_onto_the_model() -> None:
    span = one()
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        "00f067aa0ba902b7",
    )
    assert span.name == "get /cart" and span.kind is SpanKind.SERVER
    assert (span.start_ns, span.end_ns) == (1_700_000_000_000_000_000, 1_700_000_000_250_000_000)
    assert span.resource == Resource({"service.name": "cart", "net.host.ip": "10.0.0.7", "net.host.port": 8080}, "cart")
    assert span.scope == Scope()
    assert span.attributes == {
        "http.method": "GET",
        "http.status_code": "503",
        "network.peer.address": "10.0.0.9",
        "network.peer.port": 51234,
    }
    assert span.events == [Event(1_700_000_000_100_000_000, "cache.miss")]
    assert span.status_code is StatusCode.UNSET


def test_typical_span_round_trips_to_the_same_json() -> None:
    assert zipkin_json.encode_spans([one()]) == [TYPICAL]


def test_otel_exported_error_span_round_trips_to_the_same_json() -> None:
    item = {
        **TYPICAL,
        "tags": {"http.method": "GET", "otel.status_code": "ERROR", "error": "upstream timeout"},
    }
    assert zipkin_json.encode_spans(decode([item]).spans) == [item]


def test_error_tag_sets_error_status_with_its_value_as_message() -> None:
    span = one(tags={"error": "upstream timeout", "http.method": "GET"})
    assert (span.status_code, span.status_message) == (StatusCode.ERROR, "upstream timeout")
    assert "error" not in span.attributes
    span = one(tags={"error": "true"})
    assert (span.status_code, span.status_message) == (StatusCode.ERROR, "")
    span = one(tags={"error": "false"})
    assert span.status_code is StatusCode.UNSET and span.attributes["error"] == "false"


def test_otel_status_tags_set_the_status() -> None:
    span = one(tags={"otel.status_code": "OK", "otel.status_description": "fine"})
    assert (span.status_code, span.status_message) == (StatusCode.OK, "fine")
    assert "otel.status_code" not in span.attributes and "otel.status_description" not in span.attributes
    span = one(tags={"otel.status_code": "ERROR", "otel.status_description": "why", "error": "boom"})
    assert (span.status_code, span.status_message) == (StatusCode.ERROR, "why")


def test_scope_trace_state_and_dropped_count_tags() -> None:
    span = one(
        tags={
            "otel.scope.name": "io.example",
            "otel.scope.version": "1.2",
            "w3c.tracestate": "congo=t61",
            "otel.dropped_attributes_count": "3",
            "otel.dropped_events_count": "4",
            "otel.dropped_links_count": "5",
            "k": "v",
        }
    )
    assert span.scope == Scope("io.example", "1.2")
    assert span.trace_state == "congo=t61"
    assert (span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count) == (3, 4, 5)
    assert span.attributes == {"k": "v", "network.peer.address": "10.0.0.9", "network.peer.port": 51234}


def test_legacy_library_tags_are_the_scope() -> None:
    span = one(tags={"otel.library.name": "old.lib", "otel.library.version": "0.1"})
    assert span.scope == Scope("old.lib", "0.1")


def test_remote_endpoint_becomes_peer_attributes_unless_tags_say_otherwise() -> None:
    span = one(remoteEndpoint={"serviceName": "postgres", "ipv6": "::1", "port": 5432})
    assert span.attributes["peer.service"] == "postgres"
    assert span.attributes["network.peer.address"] == "::1"
    assert span.attributes["network.peer.port"] == 5432
    span = one(remoteEndpoint={"serviceName": "postgres"}, tags={"peer.service": "pg-primary"})
    assert span.attributes["peer.service"] == "pg-primary"


# What the OpenTelemetry Zipkin exporters send beside plain tags: the scope under both names (the version
# empty when the tracer has none), status tags, peer.service as a tag, event attributes in annotations.
OTEL_EXPORTED = {
    **TYPICAL,
    "kind": "CLIENT",
    "remoteEndpoint": {"serviceName": "payments", "ipv4": "10.0.0.9", "port": 443},
    "annotations": [
        {"timestamp": 1700000000100000, "value": '{"cart loaded": {"items": 3}}'},
        {"timestamp": 1700000000100001, "value": '{"retry": {}}'},
        {"timestamp": 1700000000100002, "value": "plain"},
    ],
    "tags": {
        "otel.library.name": "shop.cart",
        "otel.library.version": "",
        "otel.scope.name": "shop.cart",
        "otel.scope.version": "",
        "peer.service": "payments-primary",
        "otel.status_code": "ERROR",
        "error": "500",
        "w3c.tracestate": "congo=t61",
        "otel.dropped_events_count": "2",
    },
}


@pytest.mark.parametrize(
    "item",
    [
        OTEL_EXPORTED,
        {**TYPICAL, "tags": {"error": "500"}},
        {**TYPICAL, "tags": {"error": "false"}, "remoteEndpoint": {"serviceName": "cart-db"}},
        {**TYPICAL, "kind": "CLIENT", "tags": {"server.address": "api.example.com"}, "remoteEndpoint": {"port": 80}},
    ],
    ids=["otel-exported", "error-only", "error-false", "client-without-remote-name"],
)
def test_a_span_sent_through_zipkin_is_given_back_as_sent(item: dict[str, Any]) -> None:
    assert zipkin_json.encode_spans(decode([item]).spans) == [item]


def test_what_other_apis_see_of_a_span_sent_through_zipkin_is_the_model() -> None:
    [span] = decode([OTEL_EXPORTED]).spans
    assert span.scope == Scope("shop.cart", "")
    assert (span.status_code, span.status_message, span.trace_state) == (StatusCode.ERROR, "500", "congo=t61")
    assert span.attributes == {
        "peer.service": "payments-primary",  # the tag wins over remoteEndpoint.serviceName
        "network.peer.address": "10.0.0.9",
        "network.peer.port": 443,
    }
    events = [(e.name, e.attributes) for e in span.events]
    assert events == [("cart loaded", {"items": 3}), ("retry", {}), ("plain", {})]
    assert span.zipkin is not None
    assert span.zipkin.derived == ("network.peer.address", "network.peer.port")
    assert span.zipkin.remote_endpoint == OTEL_EXPORTED["remoteEndpoint"]


def test_plain_annotations_are_not_kept_twice() -> None:
    [span] = decode([TYPICAL]).spans
    assert span.zipkin is not None and span.zipkin.annotations == ()


def test_an_otlp_span_is_encoded_as_the_otel_spec_maps_it() -> None:
    span = make_span(kind=SpanKind.CLIENT, attributes={"peer.service": "payments"}, events=[])
    assert span.zipkin is None
    [out] = zipkin_json.encode_spans([span])
    assert out["remoteEndpoint"] == {"serviceName": "payments"} and "peer.service" not in out["tags"]
    assert out["tags"]["otel.status_code"] == "ERROR"


def test_shared_and_debug_flags() -> None:
    span = one(shared=True, debug=True)
    assert span.attributes["zipkin.shared"] is True and span.attributes["zipkin.debug"] is True
    [encoded] = zipkin_json.encode_spans([span])
    assert encoded["shared"] is True and encoded["debug"] is True
    assert "zipkin.shared" not in encoded["tags"]


def test_a_trace_marks_the_server_half_of_a_shared_span() -> None:
    client = one(kind="CLIENT", id="b7ad6b7169203331")
    server = one(kind="SERVER", id="b7ad6b7169203331", parentId=None)
    other = one(kind="SERVER", id="00f067aa0ba902b7", parentId=None)
    encoded = zipkin_json.encode_trace([client, server, other])
    assert [e.get("shared") for e in encoded] == [None, True, None]


@pytest.mark.parametrize(
    ("ip", "expected"),
    [("10.0.0.7", {"ipv4": "10.0.0.7"}), ("::1", {"ipv6": "::1"}), ("pod-7.local", {}), ("10.0.0", {}), ("1::x", {})],
)
def test_the_local_endpoint_carries_only_addresses(ip: str, expected: dict[str, str]) -> None:
    """Grafana decodes ipv4/ipv6 as Go's net.IP: one unparsable address would fail the whole trace."""
    span = one()
    span.resource = Resource({**span.resource.attributes, "net.host.ip": ip}, span.resource.service_name)
    [encoded] = zipkin_json.encode_spans([span])
    assert {k: v for k, v in encoded["localEndpoint"].items() if k in ("ipv4", "ipv6")} == expected


def test_absent_kind_is_internal_and_stays_absent() -> None:
    item = {k: v for k, v in TYPICAL.items() if k not in ("kind", "remoteEndpoint")}
    [span] = decode([item]).spans
    assert span.kind is SpanKind.INTERNAL
    assert zipkin_json.encode_spans([span]) == [item]


def test_missing_local_endpoint_is_unknown_service() -> None:
    span = one(localEndpoint=None)
    assert span.service_name == UNKNOWN_SERVICE
    assert span.resource.attributes == {"service.name": UNKNOWN_SERVICE}


def test_spans_with_the_same_local_endpoint_share_one_resource_and_scope() -> None:
    items = [
        {**TYPICAL, "id": "0000000000000001"},
        {**TYPICAL, "id": "0000000000000002", "localEndpoint": {"serviceName": "db"}},
        {**TYPICAL, "id": "0000000000000003"},
    ]
    spans = decode(items).spans
    assert spans[0].resource is spans[2].resource and spans[0].scope is spans[2].scope
    assert spans[1].resource is not spans[0].resource and spans[1].service_name == "db"


def test_64_bit_ids_are_padded() -> None:
    span = one(traceId="48485a3953bb6124", id="53bb6124", parentId="1")
    assert span.trace_id == "000000000000000048485a3953bb6124"
    assert (span.span_id, span.parent_span_id) == ("0000000053bb6124", "0000000000000001")
    assert zipkin_json.encode_spans([span])[0]["traceId"] == "48485a3953bb6124"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"traceId": "0AF7651916CD43DD8448EB211C80319C"}, "must be lower-hex"),
        ({"id": "B7AD6B7169203331"}, "id 'B7AD6B7169203331' must be lower-hex without a prefix"),
        ({"traceId": None}, "traceId is required"),
        ({"id": 12}, "id is required and must be a hex string"),
        ({"traceId": "0" * 32}, "trace_id is all zeros"),
        ({"traceId": "1" * 33}, "longer than 32 hex characters"),
        ({"kind": "SIDEWAYS"}, "kind 'SIDEWAYS' is not one of"),
        ({"timestamp": "yesterday"}, "timestamp must be a non-negative number"),
        ({"timestamp": None}, "start_time_unix_nano is 0"),
        ({"tags": ["a"]}, "tags must be a JSON object"),
        ({"annotations": [{"timestamp": 1}]}, "annotations[0] must be an object with a string value"),
    ],
)
def test_bad_spans_are_rejected_alone(changes: dict[str, object], reason: str) -> None:
    batch = decode([TYPICAL, {**TYPICAL, **changes}, "not a span"])
    assert len(batch.spans) == 1
    assert [r.where for r in batch.rejected] == ["[1]", "[2]"]
    assert reason in batch.rejected[0].reason
    assert "must be a JSON object" in batch.rejected[1].reason


@pytest.mark.parametrize("body", [b"", b"  \n", b"[]"])
def test_empty_bodies_are_no_spans(body: bytes) -> None:
    batch = zipkin_json.decode_spans(body, LIMITS)
    assert (batch.spans, batch.rejected) == ([], [])


def test_zipkin_v1_is_refused_with_a_pointer_to_v1() -> None:
    v1 = [{"traceId": "1", "id": "1", "name": "x", "annotations": [], "binaryAnnotations": []}]
    with pytest.raises(DecodeError, match="/api/v1/spans"):
        zipkin_json.decode_spans(orjson.dumps(v1), LIMITS)


@pytest.mark.parametrize("body", [b"{}", b'{"traceId": "1"}', b'"x"', b"3"])
def test_body_that_is_not_a_list_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError, match="expected a JSON list"):
        zipkin_json.decode_spans(body, LIMITS)


def test_invalid_json_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="invalid JSON"):
        zipkin_json.decode_spans(b"[{", LIMITS)


@pytest.mark.parametrize(
    ("value", "name", "attributes", "dropped"),
    [
        ("cache.miss", "cache.miss", {}, 0),
        ('retry {"attempt":2,"backoff":0.5}', "retry", {"attempt": 2, "backoff": 0.5}, 0),
        ('retry: {"attempt":2}', "retry", {"attempt": 2}, 0),
        ('"retry":{"attempt":2}', "retry", {"attempt": 2}, 0),
        ('{"retry": {"attempt": 2, "ok": true}}', "retry", {"attempt": 2, "ok": True}, 0),
        ('retry|{"attempt":2}|3', "retry", {"attempt": 2}, 3),
        ("set {not json}", "set {not json}", {}, 0),
        ('{"a": 1, "b": 2}', '{"a": 1, "b": 2}', {}, 0),
        ('ev {"n":{"m":[1,"x"]}}', "ev", {"n": {"m": [1, "x"]}}, 0),
    ],
)
def test_annotation_values_in_otel_exporter_spellings(
    value: str, name: str, attributes: Attributes, dropped: int
) -> None:
    assert zipkin_json.parse_annotation(value) == (name, attributes, dropped)


# --------------------------------------------------------------------------------------------- encode


def test_encode_an_otlp_span() -> None:
    span = make_span(
        kind=SpanKind.CLIENT,
        start_ns=1_700_000_000_123_456_789,
        end_ns=1_700_000_000_123_457_000,  # 211 ns: rounds up to Zipkin's minimum of 1 µs
        attributes={
            "s": "x",
            "b": False,
            "i": 7,
            "d": 2.5,
            "arr": ["a", 1],
            "peer.service": "payments",
            "network.peer.address": "10.1.1.1",
            "network.peer.port": 443,
            "error": "false",
        },
        events=[Event(1_700_000_000_123_456_999, "retry", {"attempt": 2})],
        links=[],
        trace_state="",
        dropped_attributes_count=0,
        dropped_events_count=2,
        dropped_links_count=0,
        status_code=StatusCode.ERROR,
        status_message="",
    )
    assert zipkin_json.encode_spans([span]) == [
        {
            "traceId": "0af7651916cd43dd8448eb211c80319c",
            "id": "b7ad6b7169203331",
            "parentId": "00f067aa0ba902b7",
            "name": "GET /cart",
            "kind": "CLIENT",
            "timestamp": 1_700_000_000_123_456,
            "duration": 1,
            "localEndpoint": {"serviceName": "cart"},
            "remoteEndpoint": {"serviceName": "payments", "ipv4": "10.1.1.1", "port": 443},
            "annotations": [{"timestamp": 1_700_000_000_123_456, "value": 'retry {"attempt":2}'}],
            "tags": {
                "host.name": "web-1",
                "otel.scope.name": "io.example",
                "otel.scope.version": "1.2",
                "s": "x",
                "b": "false",
                "i": "7",
                "d": "2.5",
                "arr": '["a",1]',
                "otel.status_code": "ERROR",
                "error": "",
                "otel.dropped_events_count": "2",
            },
        }
    ]


def test_encode_root_internal_span_with_ok_status() -> None:
    span = make_span(
        parent_span_id="",
        kind=SpanKind.INTERNAL,
        status_code=StatusCode.OK,
        status_message="",
        attributes={"error": "stale"},
        events=[],
        links=[Link("1" * 32, "2" * 16)],
    )
    [out] = zipkin_json.encode_spans([span])
    assert "parentId" not in out and "kind" not in out and "annotations" not in out
    assert out["tags"]["otel.status_code"] == "OK" and "error" not in out["tags"]
    assert out["tags"]["w3c.tracestate"] == "congo=t61"
    assert out["tags"]["otel.dropped_attributes_count"] == "3"


def test_encode_client_span_names_remote_service_from_server_address() -> None:
    span = make_span(kind=SpanKind.CLIENT, attributes={"server.address": "api.example.com"})
    [out] = zipkin_json.encode_spans([span])
    assert out["remoteEndpoint"] == {"serviceName": "api.example.com"}
    server = make_span(kind=SpanKind.SERVER, attributes={"server.address": "api.example.com"})
    assert "remoteEndpoint" not in zipkin_json.encode_spans([server])[0]


def test_encode_then_decode_keeps_events_and_status() -> None:
    span = make_span(
        links=[],
        trace_state="",
        events=[Event(1_700_000_000_200_000_000, "retry", {"attempt": 2, "why": "timeout"})],
        dropped_attributes_count=0,
        dropped_events_count=0,
        dropped_links_count=0,
    )
    [again] = decode(zipkin_json.encode_spans([span])).spans
    assert again.events == [Event(1_700_000_000_200_000_000, "retry", {"attempt": 2, "why": "timeout"})]
    assert (again.status_code, again.status_message) == (StatusCode.ERROR, "upstream timeout")
    assert again.scope == Scope("io.example", "1.2")
    assert again.attributes["host.name"] == "web-1"  # resource attributes come back as span tags
