"""Properties of every codec, on generated spans and inputs (hypothesis; bounds and seed from the profile of
tests/conftest.py):

- round trips: decode(encode(x)) == x where both directions exist (OTLP protobuf and JSON, Zipkin JSON and
  proto3) or where the encoding is one the OTLP decoders read (Tempo's protobuf and JSON traces);
- encoders without a decoder (Jaeger JSON) give a JSON-serialisable answer for every valid span;
- decoders given anything (bytes, JSON, a valid document with one part replaced) return a batch or raise
  the codecs' ``DecodeError``, nothing else.

Spans are compared by ``repr``: NaN attributes are equal to themselves there, and every field is in it.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tests.unit.codecs.strategies import JSON_VALUES, batches, mutated, spans
from tracesearch.admission import Limits
from tracesearch.codecs import jaeger_json, otlp_json, otlp_proto, tempo, zipkin_json, zipkin_proto
from tracesearch.codecs.errors import DecodeError
from tracesearch.codecs.tempopb import TraceByIDResponse
from tracesearch.model import DecodedBatch, Span

LIMITS = Limits()
Decoder = Callable[[bytes, Limits], DecodedBatch]
DECODERS: dict[str, Decoder] = {
    "otlp_proto": otlp_proto.decode_export_request,
    "otlp_json": otlp_json.decode_export_request,
    "zipkin_json": zipkin_json.decode_spans,
    "zipkin_proto": zipkin_proto.decode_spans,
}


def same(got: Sequence[Span], want: Sequence[Span]) -> None:
    """The same spans; the encoders group spans by resource and scope, so the order may differ."""
    assert sorted(map(repr, got)) == sorted(map(repr, want))


def equal(got: Sequence[Span], want: Sequence[Span]) -> None:
    """The same spans, ignoring the order of attributes (Zipkin's tags are a protobuf map: unordered)."""

    def key(span: Span) -> tuple[str, str]:
        return span.trace_id, span.span_id

    assert sorted(got, key=key) == sorted(want, key=key)


def clean(batch: DecodedBatch) -> list[Span]:
    assert batch.rejected == [] and batch.warnings == [], (batch.rejected, batch.warnings)
    return batch.spans


# ------------------------------------------------------------------------------------------ round trips


@given(batches())
def test_otlp_proto_round_trip(original: list[Span]) -> None:
    same(clean(otlp_proto.decode_export_request(otlp_proto.encode_export_request(original), LIMITS)), original)


@given(batches())
def test_otlp_json_round_trip(original: list[Span]) -> None:
    body = orjson.dumps(otlp_json.encode_traces_json(original))
    same(clean(otlp_json.decode_export_request(body, LIMITS)), original)


@given(batches())
def test_tempo_protobuf_traces_are_otlp_traces_data(original: list[Span]) -> None:
    v1 = TracesData.FromString(tempo.trace_v1_protobuf(original))
    same(clean(otlp_proto.decode_resource_spans(v1.resource_spans, LIMITS)), original)
    v2 = TraceByIDResponse.FromString(tempo.trace_v2_protobuf(original))
    same(clean(otlp_proto.decode_resource_spans(v2.trace.resource_spans, LIMITS)), original)


@given(batches())
def test_tempo_json_trace_is_otlp_json(original: list[Span]) -> None:
    body = orjson.dumps(tempo.trace_v2_json(original)["trace"])
    same(clean(otlp_json.decode_export_request(body, LIMITS)), original)


@given(batches())
def test_jaeger_json_encodes_every_valid_span(original: list[Span]) -> None:
    trace = jaeger_json.trace_to_jaeger(original)
    orjson.loads(orjson.dumps(trace))
    assert sorted(s["spanID"] for s in trace["spans"]) == sorted(s.span_id for s in original)
    assert {s["processID"] for s in trace["spans"]} == set(trace["processes"])


@st.composite
def zipkin_spans(draw: st.DrawFn) -> list[Span]:
    """Model spans as Zipkin's decoder makes them (Zipkin holds less than the model: string tags, µs),
    from valid spans encoded into Zipkin's JSON (starting after the first µs: Zipkin's 0 is "no timestamp")."""
    sent = draw(st.lists(spans().filter(lambda span: span.start_ns >= 1000), min_size=1, max_size=3))
    return clean(zipkin_json.decode_spans(orjson.dumps(zipkin_json.encode_spans(sent)), LIMITS))


@given(zipkin_spans())
def test_zipkin_json_round_trip(original: list[Span]) -> None:
    body = orjson.dumps(zipkin_json.encode_spans(original))
    equal(clean(zipkin_json.decode_spans(body, LIMITS)), original)


@given(zipkin_spans())
def test_zipkin_proto_round_trip(original: list[Span]) -> None:
    equal(clean(zipkin_proto.decode_spans(zipkin_proto.encode_spans(original), LIMITS)), original)


# ------------------------------------------------------------------------------ anything else: DecodeError


def decodes_or_refuses(decoder: Decoder, body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decoder(body, LIMITS)


@given(st.sampled_from(sorted(DECODERS)), st.binary(max_size=200))
def test_arbitrary_bytes(name: str, body: bytes) -> None:
    decodes_or_refuses(DECODERS[name], body)


@given(st.sampled_from(sorted(DECODERS)), JSON_VALUES)
def test_arbitrary_json(name: str, doc: Any) -> None:
    decodes_or_refuses(DECODERS[name], json.dumps(doc).encode())


@given(st.data())
def test_otlp_json_with_one_part_replaced(data: st.DataObject) -> None:
    valid = otlp_json.encode_traces_json(data.draw(batches()))
    doc = data.draw(mutated(copy.deepcopy(valid)))
    decodes_or_refuses(otlp_json.decode_export_request, json.dumps(doc).encode())


@given(st.data())
def test_zipkin_json_with_one_part_replaced(data: st.DataObject) -> None:
    valid = zipkin_json.encode_spans(data.draw(st.lists(spans(), min_size=1, max_size=3)))
    doc = data.draw(mutated(copy.deepcopy(valid)))
    decodes_or_refuses(zipkin_json.decode_spans, json.dumps(doc).encode())


@given(st.data())
def test_protobuf_with_bytes_flipped(data: st.DataObject) -> None:
    """Valid protobuf requests with a few bytes changed: wrong lengths, wire types and field numbers."""
    sent = data.draw(st.lists(spans(), min_size=1, max_size=2))
    name = data.draw(st.sampled_from(["otlp_proto", "zipkin_proto"]))
    encode = otlp_proto.encode_export_request if name == "otlp_proto" else zipkin_proto.encode_spans
    body = bytearray(encode(sent))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        body[data.draw(st.integers(min_value=0, max_value=len(body) - 1))] = data.draw(st.integers(0, 255))
    decodes_or_refuses(DECODERS[name], bytes(body))
