"""Kafka mode's receiver vets OTLP/protobuf requests without building model spans
(``otlp_vetting``): whenever it does, the full decoder accepts every span unchanged, with the same
per-trace messages; whenever the full decoder refuses, trims or warns, the vetting steps aside."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench import otlp, synth
from tests.unit.codecs.strategies import batches
from tracesearch.admission import Limits
from tracesearch.codecs import otlp_proto
from tracesearch.model import DecodedBatch, Span

MAX_MESSAGE = 900 * 1024
SMALL_LIMITS = st.builds(
    Limits,
    max_attributes_per_span=st.integers(0, 5),
    max_attribute_value_bytes=st.sampled_from([0, 8, 64, 4096, 65536]),
    max_nesting_depth=st.integers(0, 3),
    max_events_per_span=st.integers(0, 2),
    max_links_per_span=st.integers(0, 2),
    oldest_start_ns=st.sampled_from([0, 1, 2**61]),
)
# The defaults half the time: with small limits alone almost nothing is vetted.
LIMITS = st.one_of(st.just(Limits()), st.builds(Limits, oldest_start_ns=st.sampled_from([1, 2**61])), SMALL_LIMITS)


def both(body: bytes, limits: Limits) -> tuple[DecodedBatch, DecodedBatch]:
    return (
        otlp_proto.decode_export_request(body, limits),
        otlp_proto.decode_export_request(body, limits, build_spans=False),
    )


def messages(batch: DecodedBatch) -> list[tuple[str, bytes, int]]:
    return list(batch.per_trace.messages(MAX_MESSAGE)) if batch.per_trace else []


def assert_agree(full: DecodedBatch, fast: DecodedBatch) -> None:
    if fast.unbuilt:
        assert not fast.spans and not fast.rejected and not fast.warnings
        assert not full.rejected and not full.warnings
        assert len(full.spans) == fast.unbuilt == fast.accepted
        assert messages(full) == messages(fast)
    else:
        assert repr(fast.spans) == repr(full.spans)
        assert fast.rejected == full.rejected and fast.warnings == full.warnings
        assert messages(full) == messages(fast)


@given(batches(), LIMITS)
def test_a_vetted_request_is_one_the_full_decoder_accepts_unchanged(spans: list[Span], limits: Limits) -> None:
    assert_agree(*both(otlp_proto.encode_export_request(spans), limits))


def _corpus(count: int = 600) -> list[bytes]:
    now = time.time_ns()
    factory = synth.TraceFactory(synth.SERVICES, 11)
    spans = [s for trace in synth.traces(factory, count, now - 3_600 * 10**9, now) for s in trace]
    return otlp.encode_all(synth.batches(iter(spans), 100))


def test_realistic_requests_are_vetted_whole_and_agree() -> None:
    for body in _corpus():
        full, fast = both(body, Limits())
        assert fast.unbuilt == len(full.spans) > 0  # the fast path is taken: else this test proves nothing
        assert_agree(full, fast)


def _first_span(body: bytes) -> tuple[ExportTraceServiceRequest, Any]:
    request = ExportTraceServiceRequest.FromString(body)
    return request, request.resource_spans[0].scope_spans[0].spans[0]


def test_what_the_full_decoder_refuses_or_trims_is_left_to_it() -> None:
    body = _corpus(100)[0]
    cases: dict[str, Callable[[Any], None]] = {
        "zero trace id": lambda s: setattr(s, "trace_id", bytes(16)),
        "short span id": lambda s: setattr(s, "span_id", b"\x01" * 4),
        "ends before it starts": lambda s: setattr(s, "end_time_unix_nano", s.start_time_unix_nano - 1),
        "no start": lambda s: setattr(s, "start_time_unix_nano", 0),
        "a value over the limit": lambda s: s.attributes.add(key="big").value.__setattr__("string_value", "x" * 70_000),
    }
    for name, change in cases.items():
        request, span = _first_span(body)
        change(span)
        full, fast = both(request.SerializeToString(), Limits())
        assert fast.unbuilt == 0, name
        assert full.rejected or full.warnings, name
        assert_agree(full, fast)


def test_a_zero_parent_and_a_map_are_vetted_a_map_deeper_than_the_limit_is_not() -> None:
    request, span = _first_span(_corpus(100)[0])
    span.parent_span_id = bytes(8)
    value = span.attributes.add(key="map").value
    value.kvlist_value.values.add(key="k").value.array_value.values.add().string_value = "v"
    full, fast = both(request.SerializeToString(), Limits(max_nesting_depth=2))
    assert fast.unbuilt == len(full.spans)
    full, fast = both(request.SerializeToString(), Limits(max_nesting_depth=1))
    assert fast.unbuilt == 0 and full.warnings
    assert_agree(full, fast)
