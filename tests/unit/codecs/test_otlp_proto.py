import dataclasses
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status, TracesData

from tests.unit.codecs.factories import (
    ALL_TYPES,
    END,
    PARENT_ID,
    SPAN_ID,
    START,
    TRACE_ID,
    any_value,
    key_value,
    make_span,
    request_with,
)
from tracesearch.admission import Limits
from tracesearch.codecs import otlp_proto
from tracesearch.codecs.errors import DecodeError
from tracesearch.model import (
    UNKNOWN_SERVICE,
    DecodedBatch,
    Event,
    Link,
    Resource,
    Scope,
    Span,
    SpanKind,
    StatusCode,
    ZipkinOrigin,
)

LIMITS = Limits()


def decode(request: ExportTraceServiceRequest, limits: Limits = LIMITS) -> DecodedBatch:
    return otlp_proto.decode_export_request(request.SerializeToString(), limits)


def full_request() -> ExportTraceServiceRequest:
    """Every field of every message set to a non-default value."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    rs.resource.attributes.extend([key_value("service.name", "cart"), key_value("host.name", "web-1")])
    ss = rs.scope_spans.add()
    ss.scope.name = "io.example.http"
    ss.scope.version = "1.2.0"
    ss.scope.attributes.append(key_value("lib.flavour", "sync"))
    span = ss.spans.add(
        trace_id=bytes.fromhex(TRACE_ID),
        span_id=bytes.fromhex(SPAN_ID),
        parent_span_id=bytes.fromhex(PARENT_ID),
        trace_state="congo=t61,rojo=00f067aa0ba902b7",
        flags=0x301,
        name="GET /cart",
        kind=PbSpan.SPAN_KIND_SERVER,
        start_time_unix_nano=START,
        end_time_unix_nano=END,
        dropped_attributes_count=3,
        dropped_events_count=4,
        dropped_links_count=5,
        status=Status(code=Status.STATUS_CODE_ERROR, message="upstream timeout"),
    )
    span.attributes.extend(key_value(key, value) for key, value in ALL_TYPES.items())
    span.events.add(time_unix_nano=START + 5, name="cache.miss", dropped_attributes_count=2).attributes.append(
        key_value("key", "cart:1")
    )
    link = span.links.add(
        trace_id=bytes.fromhex("1" * 32),
        span_id=bytes.fromhex("2" * 16),
        trace_state="a=b",
        dropped_attributes_count=1,
        flags=0x101,
    )
    link.attributes.append(key_value("kind", "batch"))
    return request


def test_every_field_is_decoded() -> None:
    batch = decode(full_request())
    assert batch.rejected == [] and batch.warnings == []
    [span] = batch.spans
    assert (span.trace_id, span.span_id, span.parent_span_id) == (TRACE_ID, SPAN_ID, PARENT_ID)
    assert (span.start_ns, span.end_ns, span.duration_ns) == (START, END, END - START)
    assert span.name == "GET /cart"
    assert span.kind is SpanKind.SERVER
    assert (span.status_code, span.status_message) == (StatusCode.ERROR, "upstream timeout")
    assert span.trace_state == "congo=t61,rojo=00f067aa0ba902b7"
    assert span.flags == 0x301
    assert (span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count) == (3, 4, 5)
    assert span.resource == Resource({"service.name": "cart", "host.name": "web-1"}, "cart")
    assert span.service_name == "cart"
    assert span.scope == Scope("io.example.http", "1.2.0", {"lib.flavour": "sync"})
    assert span.events == [Event(START + 5, "cache.miss", {"key": "cart:1"}, 2)]
    assert span.links == [Link("1" * 32, "2" * 16, "a=b", {"kind": "batch"}, 1, 0x101)]


def test_attribute_values_keep_their_otlp_types() -> None:
    [span] = decode(full_request()).spans
    # repr() compares NaN equal to NaN and tells True from 1.
    assert repr(span.attributes) == repr(ALL_TYPES)
    assert type(span.attributes["b"]) is bool and type(span.attributes["i"]) is int
    assert type(span.attributes["d"]) is float


def test_empty_and_zero_values_are_not_mistaken_for_other_types() -> None:
    values = {"empty": "", "zero": 0, "zero_float": 0.0, "false": False, "no_bytes": b""}
    request = request_with([{"attributes": [key_value(k, v) for k, v in values.items()]}])
    request.resource_spans[0].scope_spans[0].spans[0].attributes.append(key_value("unset", None))
    [span] = decode(request).spans
    assert repr(span.attributes) == repr({**values, "unset": None})


def test_spans_of_one_resource_and_scope_share_the_objects() -> None:
    request = request_with([{"span_id": bytes([0, 0, 0, 0, 0, 0, 0, i])} for i in range(1, 4)])
    spans = decode(request).spans
    assert len(spans) == 3
    assert spans[0].resource is spans[1].resource is spans[2].resource
    assert spans[0].scope is spans[1].scope is spans[2].scope


def test_resource_without_service_name_gets_unknown_service() -> None:
    [span] = decode(request_with([{}], service=None)).spans
    assert span.service_name == UNKNOWN_SERVICE
    assert span.resource.attributes["service.name"] == UNKNOWN_SERVICE


def test_empty_body_is_an_empty_request() -> None:
    batch = otlp_proto.decode_export_request(b"", LIMITS)
    assert (batch.spans, batch.rejected, batch.warnings) == ([], [], [])


def test_truncated_body_is_a_decode_error() -> None:
    body = full_request().SerializeToString()
    with pytest.raises(DecodeError, match="cannot decode ExportTraceServiceRequest") as caught:
        otlp_proto.decode_export_request(body[:-7], LIMITS)
    assert caught.value.field == ""


def test_invalid_utf8_in_a_string_field_is_a_decode_error() -> None:
    body = request_with([{"name": "caf\u00e9"}]).SerializeToString()
    broken = body.replace("caf\u00e9".encode(), b"caf\xff\xfe")
    assert len(broken) == len(body)
    with pytest.raises(DecodeError, match="UTF-8"):
        otlp_proto.decode_export_request(broken, LIMITS)


def test_garbage_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        otlp_proto.decode_export_request(b"\xff" * 20, LIMITS)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"trace_id": b"\x00" * 16}, "trace_id is all zeros"),
        ({"trace_id": b"\x01" * 8}, "trace_id must be 16 bytes, got 8"),
        ({"trace_id": b""}, "trace_id must be 16 bytes, got 0"),
        ({"span_id": b"\x00" * 8}, "span_id is all zeros"),
        ({"span_id": b"\x01" * 16}, "span_id must be 8 bytes, got 16"),
        ({"parent_span_id": b"\x01" * 4}, "parent_span_id must be 8 bytes, got 4"),
        (
            {"start_time_unix_nano": 9, "end_time_unix_nano": 5},
            "end_time_unix_nano 5 is before start_time_unix_nano 9",
        ),
        ({"start_time_unix_nano": 0}, "start_time_unix_nano is 0"),
    ],
)
def test_invalid_spans_are_rejected_alone(fields: dict[str, object], reason: str) -> None:
    request = request_with([{}, fields, {"span_id": bytes.fromhex("00000000000000aa")}])
    batch = decode(request)
    assert [span.span_id for span in batch.spans] == [SPAN_ID, "00000000000000aa"]
    [rejection] = batch.rejected
    assert rejection.where == "resourceSpans[0].scopeSpans[0].spans[1]"
    assert rejection.reason.startswith(reason)


def test_rejection_path_counts_resources_and_scopes() -> None:
    request = ExportTraceServiceRequest()
    request.resource_spans.append(request_with([{}]).resource_spans[0])
    second = request.resource_spans.add()
    second.scope_spans.add()
    second.scope_spans.add().spans.add(trace_id=b"\x00" * 16, span_id=b"\x01" * 8, start_time_unix_nano=1)
    [rejection] = decode(request).rejected
    assert rejection.where == "resourceSpans[1].scopeSpans[1].spans[0]"


def test_parent_equal_to_self_becomes_a_root() -> None:
    [span] = decode(request_with([{"parent_span_id": bytes.fromhex(SPAN_ID)}])).spans
    assert span.parent_span_id == ""


def test_unknown_enum_numbers_fall_back_to_unspecified_and_unset() -> None:
    status: Any = Status()
    status.code = 7
    [span] = decode(request_with([{"kind": 42, "status": status}])).spans
    assert (span.kind, span.status_code) == (SpanKind.UNSPECIFIED, StatusCode.UNSET)


def test_ten_thousand_attributes_are_cut_to_the_limit_with_a_warning() -> None:
    attributes = [key_value(f"k{i}", i) for i in range(10_000)]
    batch = decode(request_with([{"attributes": attributes, "dropped_attributes_count": 1}]))
    [span] = batch.spans
    assert len(span.attributes) == 1000
    assert list(span.attributes)[:2] == ["k0", "k1"]
    assert span.dropped_attributes_count == 9001
    [warning] = batch.warnings
    assert "dropped 9000 attributes" in warning and SPAN_ID in warning


def _nested_kvlist(depth: int) -> AnyValue:
    value = AnyValue(string_value="bottom")
    for _ in range(depth):
        outer = AnyValue()
        outer.kvlist_value.values.add(key="k").value.CopyFrom(value)
        value = outer
    return value


def test_kvlist_nested_200_deep_is_a_decode_error_not_a_crash() -> None:
    request = request_with([{}])
    request.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="deep").value.CopyFrom(_nested_kvlist(200))
    with pytest.raises(DecodeError):
        decode(request)


def test_kvlist_deeper_than_the_limit_is_collapsed_to_json_text() -> None:
    request = request_with([{}])
    request.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="deep").value.CopyFrom(_nested_kvlist(12))
    batch = decode(request, Limits(max_nesting_depth=3))
    [span] = batch.spans
    level3: Any = span.attributes["deep"]
    for _ in range(2):
        level3 = level3["k"]
    assert isinstance(level3, dict) and isinstance(level3["k"], str)
    assert level3["k"].startswith('{"k":{"k":') and '"bottom"' in level3["k"]
    assert any("max_nesting_depth=3" in warning for warning in batch.warnings)


# --------------------------------------------------------------------------------------------- encode


def test_export_request_round_trip_is_lossless() -> None:
    original = decode(full_request()).spans
    again = otlp_proto.decode_export_request(otlp_proto.encode_export_request(original), LIMITS).spans
    assert repr(again) == repr(original)


def test_round_trip_of_a_hand_built_model_span() -> None:
    span = make_span(attributes=dict(ALL_TYPES))
    [again] = otlp_proto.decode_export_request(otlp_proto.encode_export_request([span]), LIMITS).spans
    assert repr(again) == repr(span)


def test_a_span_sent_through_zipkin_crosses_kafka_with_how_it_was_sent() -> None:
    origin = ZipkinOrigin({"error": "500", "otel.library.name": "x"}, ("peer.service",), {"serviceName": "db"}, ("x",))
    span = make_span(zipkin=origin)
    [again] = otlp_proto.decode_export_request(otlp_proto.encode_export_request([span]), LIMITS).spans
    assert again.zipkin == origin and again.attributes == span.attributes
    # The read APIs (Tempo's OTLP) show the span as the model has it, without the Kafka-only attribute.
    [shown] = otlp_proto.decode_export_request(otlp_proto.encode_traces_data([span]), LIMITS).spans
    assert shown.zipkin is None and otlp_proto.ZIPKIN_ORIGIN_ATTRIBUTE not in shown.attributes


def test_a_reserved_attribute_that_is_not_an_origin_stays_an_attribute() -> None:
    span = make_span(attributes={otlp_proto.ZIPKIN_ORIGIN_ATTRIBUTE: "not json"})
    [again] = otlp_proto.decode_export_request(otlp_proto.encode_export_request([span]), LIMITS).spans
    assert again.zipkin is None and again.attributes == {otlp_proto.ZIPKIN_ORIGIN_ATTRIBUTE: "not json"}


def test_round_trip_keeps_resource_and_scope_sharing() -> None:
    first, second = make_span(), make_span(span_id="1" * 16)
    second.resource, second.scope = first.resource, first.scope
    third = make_span(span_id="2" * 16, resource=Resource({"service.name": "db"}, "db"))
    spans = otlp_proto.decode_export_request(otlp_proto.encode_export_request([first, third, second]), LIMITS).spans
    assert [s.span_id for s in spans] == [first.span_id, second.span_id, third.span_id]
    assert spans[0].resource is spans[1].resource and spans[0].scope is spans[1].scope
    assert spans[2].service_name == "db"


def test_resource_spans_grouping_scopes_and_statuses() -> None:
    shared_resource = Resource({"host.name": "web-1"}, "cart")  # service.name missing on purpose
    scope_a, scope_b = Scope("a"), Scope("b", "2")
    spans = [
        make_span(span_id=f"{i + 1:016x}", resource=shared_resource, scope=scope, status_code=StatusCode.UNSET)
        for i, scope in enumerate([scope_a, scope_b, scope_a])
    ]
    [rs] = otlp_proto.spans_to_resource_spans(spans)
    assert [(kv.key, kv.value.string_value) for kv in rs.resource.attributes] == [
        ("service.name", "cart"),
        ("host.name", "web-1"),
    ]
    assert [ss.scope.name for ss in rs.scope_spans] == ["a", "b"]
    assert [len(ss.spans) for ss in rs.scope_spans] == [2, 1]
    for ss in rs.scope_spans:
        assert ss.HasField("scope")
        assert all(span.HasField("status") for span in ss.spans)


def test_encode_traces_data_is_a_parsable_traces_data() -> None:
    span = make_span()
    data = TracesData.FromString(otlp_proto.encode_traces_data([span]))
    [rs] = data.resource_spans
    pb_span = rs.scope_spans[0].spans[0]
    assert pb_span.trace_id == bytes.fromhex(TRACE_ID)
    assert pb_span.parent_span_id == bytes.fromhex(PARENT_ID)
    assert pb_span.kind == PbSpan.SPAN_KIND_SERVER
    assert pb_span.status.code == Status.STATUS_CODE_ERROR
    assert rs.scope_spans[0].scope.name == "io.example"


def test_out_of_range_integers_are_encoded_as_doubles() -> None:
    span = make_span(attributes={"big": 2**70, "ok": 2**63 - 1})
    [again] = otlp_proto.decode_export_request(otlp_proto.encode_export_request([span]), LIMITS).spans
    assert again.attributes == {"big": float(2**70), "ok": 2**63 - 1}


def test_any_value_helper_agrees_with_decoder() -> None:
    assert otlp_proto.value_from_pb(any_value({"a": [1, "x"]})) == {"a": [1, "x"]}


def test_model_field_order_matches_positional_construction() -> None:
    # span_from_pb, _event_from_pb and _link_from_pb pass arguments by position for speed.
    assert [f.name for f in dataclasses.fields(Span)] == [
        "trace_id", "span_id", "name", "start_ns", "end_ns", "resource", "scope", "parent_span_id", "kind",
        "status_code", "status_message", "attributes", "events", "links", "trace_state", "flags",
        "dropped_attributes_count", "dropped_events_count", "dropped_links_count", "zipkin",
    ]  # fmt: skip
    assert [f.name for f in dataclasses.fields(Event)] == [
        "time_ns",
        "name",
        "attributes",
        "dropped_attributes_count",
    ]
    assert [f.name for f in dataclasses.fields(Link)] == [
        "trace_id", "span_id", "trace_state", "attributes", "dropped_attributes_count", "flags",
    ]  # fmt: skip


# ------------------------------------------------------------------ per-trace messages (Kafka mode)


def _mixed_request() -> ExportTraceServiceRequest:
    """Three traces interleaved over two resources (one without service.name) and three scopes,
    schema URLs at both levels, and one invalid span that must not travel."""
    request = ExportTraceServiceRequest()
    traces = [f"{n}af7651916cd43dd8448eb211c80319c" for n in range(3)]
    for r_index, service in enumerate(["cart", None]):
        rs = request.resource_spans.add(schema_url=f"https://example.com/r{r_index}")
        if service:
            rs.resource.attributes.append(key_value("service.name", service))
        rs.resource.attributes.append(key_value("host.name", f"web-{r_index}"))
        for s_index in range(2 if r_index == 0 else 1):
            ss = rs.scope_spans.add(schema_url=f"https://example.com/s{s_index}")
            ss.scope.name = f"lib-{r_index}-{s_index}"
            ss.scope.attributes.append(key_value("flavour", s_index))
            for n in range(5):
                span = ss.spans.add(
                    trace_id=bytes.fromhex(traces[n % 3]),
                    span_id=bytes.fromhex(f"{r_index + 1:02x}{s_index:02x}{n:012x}"),
                    name=f"op-{n}",
                    start_time_unix_nano=START,
                    end_time_unix_nano=END,
                )
                span.attributes.append(key_value("n", n))
    request.resource_spans[0].scope_spans[1].spans[2].end_time_unix_nano = START - 1  # invalid: rejected
    return request


def _by_id(spans: list[Span]) -> dict[str, Span]:
    return {span.span_id: span for span in spans}


@pytest.mark.parametrize("framing", ["request bytes", "model spans"])
def test_per_trace_messages_decode_to_the_accepted_spans_of_their_trace(framing: str) -> None:
    batch = decode(_mixed_request())
    assert len(batch.rejected) == 1 and len(batch.spans) == 14
    assert batch.per_trace is not None
    per_trace = batch.per_trace if framing == "request bytes" else otlp_proto.SpanTraceMessages(batch.spans)
    messages = list(per_trace.messages(1 << 20))
    assert sorted(trace_id for trace_id, _, _ in messages) == sorted({s.trace_id for s in batch.spans})
    again: list[Span] = []
    for trace_id, value, count in messages:
        decoded = otlp_proto.decode_export_request(value, LIMITS)
        assert not decoded.rejected and not decoded.warnings
        assert {s.trace_id for s in decoded.spans} == {trace_id} and len(decoded.spans) == count
        again.extend(decoded.spans)
    assert _by_id(again) == _by_id(batch.spans)  # resources, scopes, attributes: all equal
    if framing == "model spans":
        return  # the model keeps no schema URLs
    schema_urls = set()
    for _, value, _ in messages:
        parsed = ExportTraceServiceRequest.FromString(value)
        schema_urls |= {rs.schema_url for rs in parsed.resource_spans}
        schema_urls |= {ss.schema_url for rs in parsed.resource_spans for ss in rs.scope_spans}
    assert schema_urls == {
        "https://example.com/r0",
        "https://example.com/r1",
        "https://example.com/s0",
        "https://example.com/s1",
    }


@pytest.mark.parametrize("framing", ["request bytes", "model spans"])
def test_a_trace_bigger_than_the_message_bound_is_split_into_valid_halves(framing: str) -> None:
    request = request_with([{"span_id": bytes.fromhex(f"{n + 1:016x}"), "name": "x" * 300} for n in range(40)])
    batch = decode(request)
    assert batch.per_trace is not None
    per_trace = batch.per_trace if framing == "request bytes" else otlp_proto.SpanTraceMessages(batch.spans)
    messages = list(per_trace.messages(2_000))
    assert len(messages) > 4
    assert all(len(value) <= 2_000 for _, value, _ in messages)
    again = [s for _, value, _ in messages for s in otlp_proto.decode_export_request(value, LIMITS).spans]
    assert _by_id(again) == _by_id(batch.spans)
    assert sum(count for _, _, count in messages) == 40


def test_a_request_the_limits_trimmed_has_no_per_trace_bytes() -> None:
    request = request_with([{"name": "GET /cart"}])
    request.resource_spans[0].scope_spans[0].spans[0].attributes.extend(key_value(f"k{i}", i) for i in range(200))
    batch = decode(request, Limits(max_attributes_per_span=10))
    assert batch.warnings and batch.per_trace is None  # the trimmed model spans are encoded instead
