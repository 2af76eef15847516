"""The compiled core's OTLP/protobuf decoder against the Python decoder (upb), which stays the reference.

``otlp_proto.decode_export_request`` with the core turned on (``use_native``) must give what the Python
decoder gives for every body: the same spans, rejections (admission's errors and their paths), warnings
(limits), per-trace messages, and for a body that is not a valid message the same ``DecodeError``. The
core declines anything but the plain encoding, which the Python decoder then handles: compared here on
hypothesis batches, trimmed ones, bodies broken or padded byte by byte, and every test of
``test_otlp_proto.py`` run again with the core on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import synth
from tests.unit.codecs import strategies
from tests.unit.codecs import test_otlp_proto as reference
from tests.unit.codecs.factories import make_span
from tracesearch.admission import Limits
from tracesearch.codecs import otlp_proto
from tracesearch.codecs.errors import DecodeError
from tracesearch.model import ZipkinOrigin
from tracesearch.storage.es import native_body

NATIVE = native_body.native_module()
pytestmark = pytest.mark.skipif(NATIVE is None, reason="the compiled core (native/) is not built: no cargo here")
LIMITS = Limits()
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def native_decoder() -> Iterator[None]:
    """Every test here, the reference tests included, decodes with the core on."""
    otlp_proto.use_native(NATIVE)
    try:
        yield
    finally:
        otlp_proto.use_native(None)


# test_otlp_proto.py's tests, collected again here: with the core on, they must pass unchanged.
globals().update({name: test for name, test in vars(reference).items() if name.startswith("test_")})


def outcome(body: bytes, limits: Limits, *, native: bool) -> Any:
    """What a decoder makes of a body, in comparable form."""
    otlp_proto.use_native(NATIVE if native else None)
    try:
        batch = otlp_proto.decode_export_request(body, limits)
    except DecodeError as error:
        return ("DecodeError", str(error), error.field)
    finally:
        otlp_proto.use_native(NATIVE)
    messages = list(batch.per_trace.messages(4096)) if batch.per_trace is not None else None
    return batch.spans, batch.rejected, batch.warnings, messages


def assert_same(body: bytes, limits: Limits = LIMITS, *, decoded_natively: bool | None = None) -> None:
    # By repr: NaN attribute values are equal there (and 1, 1.0 and True are not).
    assert repr(outcome(body, limits, native=True)) == repr(outcome(body, limits, native=False))
    if decoded_natively is not None:
        assert (otlp_proto.decode_natively(NATIVE, body, limits) is not None) is decoded_natively  # type: ignore[arg-type]


def test_the_benchmarks_corpus_is_decoded_by_the_core() -> None:
    factory = synth.TraceFactory(synth.SERVICES, seed=11)
    start = 1_795_176_000 * 1_000_000_000
    spans = [s for trace in synth.traces(factory, 600, start, start + 3_600_000_000_000) for s in trace]
    for at in range(0, len(spans), 100):
        assert_same(otlp_proto.encode_export_request(spans[at : at + 100]), decoded_natively=True)


@PROPERTY
@given(strategies.batches())
def test_valid_batches_are_decoded_by_the_core(spans: list[Any]) -> None:
    assert_same(otlp_proto.encode_export_request(spans), decoded_natively=True)


@PROPERTY
@given(strategies.batches(), st.integers(1, 3), st.integers(4, 40), st.integers(1, 3))
def test_batches_cut_by_the_limits(spans: list[Any], count: int, size: int, depth: int) -> None:
    limits = Limits(
        max_attributes_per_span=count,
        max_attribute_value_bytes=size,
        max_nesting_depth=depth,
        max_events_per_span=1,
        max_links_per_span=1,
    )
    assert_same(otlp_proto.encode_export_request(spans), limits)


@PROPERTY
@given(strategies.batches(), st.data())
def test_broken_bodies_fail_alike(spans: list[Any], data: st.DataObject) -> None:
    """A byte changed, cut or inserted anywhere: the same batch or the same DecodeError."""
    body = bytearray(otlp_proto.encode_export_request(spans))
    at = data.draw(st.integers(0, max(0, len(body) - 1)))
    change = data.draw(st.sampled_from(["flip", "cut", "insert", "unknown field"]))
    if change == "flip" and body:
        body[at] ^= data.draw(st.integers(1, 255))
    elif change == "cut":
        del body[at:]
    elif change == "insert":
        body[at:at] = data.draw(st.binary(min_size=1, max_size=3))
    else:
        body += data.draw(st.sampled_from([b"\x20\x05", b"\x29" + bytes(8), b"\x35" + bytes(4), b"\x3a\x01x"]))
    assert_same(bytes(body))


def test_what_the_core_declines_the_python_decoder_decodes() -> None:
    body = otlp_proto.encode_export_request([make_span(), make_span(span_id="1" * 16, events=[], links=[])])
    origin = ZipkinOrigin(tags={"error": ""}, remote_endpoint={"serviceName": "db"})
    zipkin = otlp_proto.encode_export_request([make_span(zipkin=origin)])
    cases = {
        "two requests concatenated (protobuf merges them)": body + body,
        "a group": body + b"\x0b\x0c",
        "the Zipkin origin attribute": zipkin,
    }
    for _name, case in cases.items():
        assert_same(case)  # one case at a time: a failure names it in the traceback
    assert_same(zipkin, decoded_natively=False)
    assert_same(body + b"\x0b\x0c", decoded_natively=False)
