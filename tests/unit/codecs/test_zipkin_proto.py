import struct

import orjson
import pytest

from tests.unit.codecs.test_zipkin_json import TYPICAL
from tracesearch.admission import Limits
from tracesearch.codecs import zipkin_json, zipkin_proto
from tracesearch.codecs.errors import DecodeError
from tracesearch.model import SpanKind, StatusCode

LIMITS = Limits()


# A hand-rolled proto3 writer, so the test checks zipkin.proto's field numbers and wire types on its
# own rather than trusting the descriptor the codec builds.
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | 0) + _varint(value)


def _fixed64_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<Q", value)


def _wire_span(kind: int = 1, ipv4: bytes = bytes([10, 0, 0, 7])) -> bytes:
    local = _len_field(1, b"cart") + _len_field(2, ipv4) + _varint_field(4, 8080)
    remote = _len_field(3, bytes(15) + b"\x01") + _varint_field(4, 51234) + _len_field(1, b"postgres")
    annotation = _fixed64_field(1, 1_700_000_000_100_000) + _len_field(2, b"cache.miss")
    return b"".join(
        [
            _len_field(1, bytes.fromhex("0af7651916cd43dd8448eb211c80319c")),
            _len_field(2, bytes.fromhex("00f067aa0ba902b7")),
            _len_field(3, bytes.fromhex("b7ad6b7169203331")),
            _varint_field(4, kind),  # 1 is CLIENT in zipkin.proto (3 in OTLP)
            _len_field(5, b"get /cart"),
            _fixed64_field(6, 1_700_000_000_000_000),
            _varint_field(7, 250_000),
            _len_field(8, local),
            _len_field(9, remote),
            _len_field(10, annotation),
            _len_field(11, _len_field(1, b"http.method") + _len_field(2, b"GET")),
            _len_field(11, _len_field(1, b"error") + _len_field(2, b"boom")),
            _varint_field(12, 1),
            _varint_field(13, 1),
        ]
    )


def test_hand_encoded_span_decodes_field_by_field() -> None:
    batch = zipkin_proto.decode_spans(_len_field(1, _wire_span()), LIMITS)
    assert batch.rejected == []
    [span] = batch.spans
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        "00f067aa0ba902b7",
    )
    assert span.kind is SpanKind.CLIENT
    assert span.name == "get /cart"
    assert (span.start_ns, span.end_ns) == (1_700_000_000_000_000_000, 1_700_000_000_250_000_000)
    assert span.resource.attributes == {
        "service.name": "cart",
        "net.host.ip": "10.0.0.7",
        "net.host.port": 8080,
    }
    assert span.attributes == {
        "http.method": "GET",
        "peer.service": "postgres",
        "network.peer.address": "::1",
        "network.peer.port": 51234,
        "zipkin.shared": True,
        "zipkin.debug": True,
    }
    assert (span.status_code, span.status_message) == (StatusCode.ERROR, "boom")
    assert [(e.time_ns, e.name) for e in span.events] == [(1_700_000_000_100_000_000, "cache.miss")]


@pytest.mark.parametrize(("number", "kind"), [(1, "CLIENT"), (2, "SERVER"), (3, "PRODUCER"), (4, "CONSUMER")])
def test_kind_numbers_follow_zipkin_proto(number: int, kind: str) -> None:
    assert zipkin_proto.ZipkinSpan.Kind.Name(number) == kind
    body = _len_field(1, _wire_span(kind=number))
    [span] = zipkin_proto.decode_spans(body, LIMITS).spans
    assert span.kind is SpanKind[kind]


def test_proto_and_json_decoders_agree() -> None:
    from_json = zipkin_json.decode_spans(orjson.dumps([TYPICAL]), LIMITS).spans
    body = zipkin_proto.encode_spans(from_json)
    from_proto = zipkin_proto.decode_spans(body, LIMITS).spans
    assert from_proto == from_json
    assert zipkin_json.encode_spans(from_proto) == [TYPICAL]


def test_empty_body_is_no_spans() -> None:
    assert zipkin_proto.decode_spans(b"", LIMITS).spans == []


def test_truncated_body_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="ListOfSpans"):
        zipkin_proto.decode_spans(_len_field(1, _wire_span())[:-3], LIMITS)


def test_missing_ids_and_bad_addresses() -> None:
    no_trace_id = _len_field(3, bytes.fromhex("b7ad6b7169203331")) + _fixed64_field(6, 1)
    body = _len_field(1, no_trace_id) + _len_field(1, _wire_span(ipv4=bytes([10, 0, 7])))
    batch = zipkin_proto.decode_spans(body, LIMITS)
    assert [r.where for r in batch.rejected] == ["[0]"]
    assert "traceId is required" in batch.rejected[0].reason
    [span] = batch.spans
    assert "net.host.ip" not in span.resource.attributes  # a 3-byte IPv4 address is dropped, not fatal
