import base64
import copy
import math
from typing import Any, cast

import orjson
import pytest
from google.protobuf import json_format

from tests.unit.codecs.test_otlp_proto import full_request
from tracesearch.admission import Limits
from tracesearch.codecs import otlp_json, otlp_proto
from tracesearch.codecs.errors import DecodeError
from tracesearch.model import DecodedBatch, Event, Link, Resource, Scope, SpanKind, StatusCode

LIMITS = Limits()

# The minimal span of wire-formats.md §1.3.
EXAMPLE: dict[str, Any] = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "io.example.http", "version": "1.2.0"},
                    "spans": [
                        {
                            "traceId": "0af7651916cd43dd8448eb211c80319c",
                            "spanId": "b7ad6b7169203331",
                            "parentSpanId": "",
                            "name": "GET /cart",
                            "kind": 2,
                            "startTimeUnixNano": "1700000000000000000",
                            "endTimeUnixNano": "1700000000250000000",
                            "attributes": [{"key": "http.response.status_code", "value": {"intValue": "503"}}],
                            "status": {"code": 2, "message": "upstream timeout"},
                        }
                    ],
                }
            ],
        }
    ]
}


def decode(doc: object, limits: Limits = LIMITS) -> DecodedBatch:
    return otlp_json.decode_export_request(orjson.dumps(doc), limits)


def with_span(**fields: object) -> dict[str, Any]:
    doc = copy.deepcopy(EXAMPLE)
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(fields)
    return doc


def test_the_reference_example_decodes() -> None:
    batch = decode(EXAMPLE)
    assert batch.rejected == [] and batch.warnings == []
    [span] = batch.spans
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        "",
    )
    assert (span.start_ns, span.end_ns) == (1_700_000_000_000_000_000, 1_700_000_000_250_000_000)
    assert span.kind is SpanKind.SERVER
    assert (span.status_code, span.status_message) == (StatusCode.ERROR, "upstream timeout")
    assert span.attributes == {"http.response.status_code": 503}
    assert span.resource == Resource({"service.name": "cart"}, "cart")
    assert span.scope == Scope("io.example.http", "1.2.0")


def test_every_any_value_shape() -> None:
    attributes = [
        {"key": "s", "value": {"stringValue": "GET"}},
        {"key": "i", "value": {"intValue": "500"}},
        {"key": "i_number", "value": {"intValue": 500}},
        {"key": "big", "value": {"intValue": "-9223372036854775808"}},
        {"key": "d", "value": {"doubleValue": 0.25}},
        {"key": "d_int", "value": {"doubleValue": 3}},
        {"key": "nan", "value": {"doubleValue": "NaN"}},
        {"key": "inf", "value": {"doubleValue": "Infinity"}},
        {"key": "ninf", "value": {"doubleValue": "-Infinity"}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "arr", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}},
        {"key": "map", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}},
        {"key": "raw", "value": {"bytesValue": "3q2+7w=="}},
        {"key": "empty", "value": {}},
        {"key": "no_value"},
    ]
    [span] = decode(with_span(attributes=attributes)).spans
    got = span.attributes
    assert got["s"] == "GET" and got["i"] == 500 and got["i_number"] == 500 and got["big"] == -(2**63)
    assert got["d"] == 0.25 and got["d_int"] == 3.0 and type(got["d_int"]) is float
    assert math.isnan(cast(float, got["nan"])) and got["inf"] == math.inf and got["ninf"] == -math.inf
    assert got["b"] is True
    assert got["arr"] == ["a", 1] and got["map"] == {"k": "v"}
    assert got["raw"] == b"\xde\xad\xbe\xef"
    assert got["empty"] is None and got["no_value"] is None


def test_enum_names_are_accepted() -> None:
    [span] = decode(with_span(kind="SPAN_KIND_CLIENT", status={"code": "STATUS_CODE_OK"})).spans
    assert (span.kind, span.status_code) == (SpanKind.CLIENT, StatusCode.OK)


def test_snake_case_keys_are_accepted() -> None:
    doc = {
        "resource_spans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"string_value": "cart"}}]},
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": "0af7651916cd43dd8448eb211c80319c",
                                "span_id": "b7ad6b7169203331",
                                "parent_span_id": "00f067aa0ba902b7",
                                "start_time_unix_nano": 10,
                                "end_time_unix_nano": 20,
                                "dropped_attributes_count": 2,
                                "links": [{"trace_id": "1" * 32, "span_id": "2" * 16}],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    [span] = decode(doc).spans
    assert (span.parent_span_id, span.start_ns, span.end_ns) == ("00f067aa0ba902b7", 10, 20)
    assert span.service_name == "cart" and span.dropped_attributes_count == 2
    assert span.links == [Link("1" * 32, "2" * 16)]


def test_hex_ids_are_case_insensitive() -> None:
    [span] = decode(with_span(traceId="0AF7651916CD43DD8448EB211C80319C", spanId="B7AD6B7169203331")).spans
    assert (span.trace_id, span.span_id) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")


def test_unknown_fields_are_ignored() -> None:
    doc = with_span(futureField={"x": 1}, droppedWhatever=3)
    doc["resourceSpans"][0]["futureField"] = [1, 2]
    doc["somethingElse"] = True
    assert len(decode(doc).spans) == 1


def test_events_links_flags_and_trace_state() -> None:
    [span] = decode(
        with_span(
            traceState="congo=t61",
            flags=257,
            events=[
                {
                    "timeUnixNano": "1700000000100000000",
                    "name": "cache.miss",
                    "attributes": [{"key": "k", "value": {"stringValue": "v"}}],
                    "droppedAttributesCount": 1,
                }
            ],
            droppedEventsCount=2,
            links=[
                {
                    "traceId": "11111111111111111111111111111111",
                    "spanId": "2222222222222222",
                    "traceState": "a=b",
                    "attributes": [{"key": "kind", "value": {"stringValue": "batch"}}],
                    "droppedAttributesCount": 3,
                    "flags": 1,
                }
            ],
            droppedLinksCount=4,
        )
    ).spans
    assert (span.trace_state, span.flags, span.dropped_events_count, span.dropped_links_count) == (
        "congo=t61",
        257,
        2,
        4,
    )
    assert span.events == [Event(1_700_000_000_100_000_000, "cache.miss", {"k": "v"}, 1)]
    assert span.links == [Link("1" * 32, "2" * 16, "a=b", {"kind": "batch"}, 3, 1)]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"traceId": "not-hex-at-all-not-hex-at-all-xx"},
            "traceId 'not-hex-at-all-not-hex-at-all-xx' is not valid hex",
        ),
        ({"spanId": "b7ad 6b7169203331"}, "spanId 'b7ad 6b7169203331' is not valid hex"),
        ({"traceId": "abc"}, "traceId 'abc' is not valid hex"),
        ({"traceId": 12345}, "traceId must be a hex string, got a number"),
        ({"traceId": "0af7651916cd"}, "trace_id must be 16 bytes, got 6"),
        ({"traceId": ""}, "trace_id must be 16 bytes, got 0"),
        ({"traceId": "0" * 32}, "trace_id is all zeros"),
        ({"spanId": "0" * 16}, "span_id is all zeros"),
        ({"parentSpanId": "zz"}, "parentSpanId 'zz' is not valid hex"),
        ({"links": [{"traceId": "xyz", "spanId": "2" * 16}]}, "links[0].traceId 'xyz' is not valid hex"),
        (
            {"startTimeUnixNano": "9", "endTimeUnixNano": "5"},
            "end_time_unix_nano 5 is before start_time_unix_nano 9",
        ),
    ],
)
def test_bad_ids_and_times_reject_the_span_not_the_request(fields: dict[str, object], reason: str) -> None:
    doc = copy.deepcopy(EXAMPLE)
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    bad = {**spans[0], **fields}
    spans.extend([bad, {**spans[0], "spanId": "00000000000000aa"}])
    batch = decode(doc)
    assert [span.span_id for span in batch.spans] == ["b7ad6b7169203331", "00000000000000aa"]
    [rejection] = batch.rejected
    assert rejection.where == "resourceSpans[0].scopeSpans[0].spans[1]"
    assert rejection.reason == reason


def test_invalid_json_is_a_decode_error_with_a_position() -> None:
    with pytest.raises(DecodeError, match=r"invalid JSON at line 1 column \d+"):
        otlp_json.decode_export_request(b'{"resourceSpans": [', LIMITS)


def test_invalid_utf8_is_a_decode_error() -> None:
    body = orjson.dumps(EXAMPLE).replace(b"GET /cart", b"GET /\xff\xfe")
    with pytest.raises(DecodeError, match="UTF-8"):
        otlp_json.decode_export_request(body, LIMITS)


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError, match="must be a JSON object"):
        otlp_json.decode_export_request(body, LIMITS)


def test_empty_object_is_an_empty_request() -> None:
    batch = otlp_json.decode_export_request(b"{}", LIMITS)
    assert (batch.spans, batch.rejected) == ([], [])


def test_structure_of_the_wrong_type_names_the_path() -> None:
    with pytest.raises(DecodeError) as caught:
        decode({"resourceSpans": {"not": "a list"}})
    assert caught.value.field == "resourceSpans"
    doc = copy.deepcopy(EXAMPLE)
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"].append("a string")
    with pytest.raises(DecodeError) as caught:
        decode(doc)
    assert caught.value.field == "resourceSpans[0].scopeSpans[0].spans[1]"


def test_parse_dict_errors_become_decode_errors_with_the_path() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(with_span(startTimeUnixNano="soon"))
    assert caught.value.field == "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano"
    assert "soon" in caught.value.reason and "Failed to parse" not in caught.value.reason
    with pytest.raises(DecodeError) as caught:
        decode(with_span(kind=[2]))
    assert caught.value.field == "resourceSpans[0].scopeSpans[0].spans[0].kind"
    with pytest.raises(DecodeError) as caught:
        doc = copy.deepcopy(EXAMPLE)
        doc["resourceSpans"][0]["resource"]["attributes"][0]["value"] = {"intValue": "x"}
        decode(doc)
    assert caught.value.field.startswith("resourceSpans[0].resource.attributes")


def _nested_text(depth: int) -> bytes:
    # Built as text: orjson refuses to serialise anything this deep itself.
    return b'{"kvlistValue":{"values":[{"key":"k","value":' * depth + b'{"stringValue":"bottom"}' + b"}]}}" * depth


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "bottom"}
    for _ in range(depth):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


@pytest.mark.parametrize("depth", [200, 2000])
def test_deep_nesting_is_a_decode_error_not_a_recursion_error(depth: int) -> None:
    body = orjson.dumps(with_span(attributes=[{"key": "deep", "value": _nested(10)}])).replace(
        b'{"stringValue":"bottom"}', _nested_text(depth)
    )
    assert orjson.loads(_nested_text(3)) == _nested(3)
    with pytest.raises(DecodeError) as caught:
        otlp_json.decode_export_request(body, LIMITS)
    assert len(caught.value.field) < 300


def test_moderate_nesting_is_collapsed_by_the_limits() -> None:
    batch = decode(with_span(attributes=[{"key": "deep", "value": _nested(20)}]), Limits(max_nesting_depth=8))
    [span] = batch.spans
    value = span.attributes["deep"]
    for _ in range(8):
        assert isinstance(value, dict)
        value = value["k"]
    assert isinstance(value, str) and value.startswith('{"k":')
    assert batch.warnings


def test_deprecated_instrumentation_library_spans_are_reported() -> None:
    doc: dict[str, Any] = {"resourceSpans": [{"instrumentationLibrarySpans": [{"spans": []}]}]}
    assert "instrumentationLibrarySpans" in decode(doc).warnings[0]


def test_json_and_protobuf_decoders_agree() -> None:
    request = full_request()
    doc = json_format.MessageToDict(request)
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    for obj, keys in [
        (span, ("traceId", "spanId", "parentSpanId")),
        (span["links"][0], ("traceId", "spanId")),
    ]:
        for key in keys:
            obj[key] = base64.b64decode(obj[key]).hex().upper()
    from_json = decode(doc).spans
    from_proto = otlp_proto.decode_export_request(request.SerializeToString(), LIMITS).spans
    assert repr(from_json) == repr(from_proto)


# --------------------------------------------------------------------------------------------- encode


def test_encode_writes_otlp_json_conventions() -> None:
    [span] = decode(
        with_span(
            events=[{"timeUnixNano": "1700000000100000000", "name": "e"}],
            attributes=[
                {"key": "i", "value": {"intValue": "503"}},
                {"key": "nan", "value": {"doubleValue": "NaN"}},
                {"key": "raw", "value": {"bytesValue": "3q2+7w=="}},
                {"key": "arr", "value": {"arrayValue": {"values": [{"boolValue": False}]}}},
                {"key": "none", "value": {}},
            ],
        )
    ).spans
    doc = otlp_json.encode_traces_json([span])
    [rs] = doc["resourceSpans"]
    assert rs["resource"] == {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]}
    [ss] = rs["scopeSpans"]
    assert ss["scope"] == {"name": "io.example.http", "version": "1.2.0"}
    assert ss["spans"] == [
        {
            "traceId": "0af7651916cd43dd8448eb211c80319c",
            "spanId": "b7ad6b7169203331",
            "name": "GET /cart",
            "kind": 2,
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000250000000",
            "attributes": [
                {"key": "i", "value": {"intValue": "503"}},
                {"key": "nan", "value": {"doubleValue": "NaN"}},
                {"key": "raw", "value": {"bytesValue": "3q2+7w=="}},
                {"key": "arr", "value": {"arrayValue": {"values": [{"boolValue": False}]}}},
                {"key": "none", "value": {}},
            ],
            "events": [{"timeUnixNano": "1700000000100000000", "name": "e"}],
            "status": {"code": 2, "message": "upstream timeout"},
        }
    ]


def test_encode_then_decode_is_lossless() -> None:
    original = otlp_proto.decode_export_request(full_request().SerializeToString(), LIMITS).spans
    again = decode(otlp_json.encode_traces_json(original)).spans
    assert repr(again) == repr(original)


def test_unset_status_is_an_empty_object() -> None:
    [span] = decode(with_span(status={})).spans
    assert otlp_json.encode_traces_json([span])["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["status"] == {}
