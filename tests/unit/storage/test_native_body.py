"""The compiled core's bulk bodies against the pure-Python reference, byte for byte.

``tracesearch_native.bulk_body`` (native/) must return exactly what ``document.bulk_body`` returns for
any spans: the same fields, search terms, ids, daily index names, JSON escaping and number formatting
as orjson. Compared here on the Elasticsearch goldens' write cases, the benchmark's synthetic corpus,
hypothesis-generated spans of every attribute type, values cut by admission's limits, and the spans the
core hands back to the Python path (which must then give the Python path's bytes, or its error).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import synth
from tests.unit.codecs import strategies
from tests.unit.codecs.factories import make_span
from tests.unit.storage import test_es_goldens as goldens
from tracesearch.admission import Limits, apply_limits
from tracesearch.model import Event, Link, Resource, Scope, Span, SpanKind, ZipkinOrigin
from tracesearch.query.remote_service import REMOTE_NAME_KEYS
from tracesearch.settings import Settings, SettingsError
from tracesearch.storage.es import native_body
from tracesearch.storage.es.document import bulk_body
from tracesearch.storage.es.indices import MAX_NS, NS_PER_DAY

NATIVE = native_body.native_module()
needs_native = pytest.mark.skipif(NATIVE is None, reason="the compiled core (native/) is not built: no cargo here")
PREFIXES = ("tracesearch", 'odd"prefix\\\x01')


def native(prefix: str, spans: Sequence[Span], *, strict: bool = False) -> bytes:
    """The core's body; ``strict``: every span built by the core itself, none handed to the Python path."""
    assert NATIVE is not None
    if not strict:
        return native_body.native_bulk_body(NATIVE)(prefix, spans)

    def refuse(span: Span) -> bytes:
        raise AssertionError(f"the core declined span {span.span_id!r}")

    body: bytes = NATIVE.bulk_body(prefix, spans, refuse, set())
    return body


def assert_same(spans: Sequence[Span], prefixes: Sequence[str] = PREFIXES, *, strict: bool = True) -> None:
    for prefix in prefixes:
        expected = bulk_body(prefix, spans)
        got = native(prefix, spans, strict=strict)
        if got != expected:  # the first differing line, rather than two megabytes
            pairs = zip(expected.split(b"\n"), got.split(b"\n"), strict=False)
            line, (want, have) = next((i, p) for i, p in enumerate(pairs) if p[0] != p[1])
            pytest.fail(f"line {line} differs:\npython: {want[:2000]!r}\nnative: {have[:2000]!r}")


# ---------------------------------------------------------------------------------------------- the modes


def test_off_is_the_python_path_and_on_needs_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    assert native_body.body_builder("off") is bulk_body
    monkeypatch.setattr(native_body, "native_module", lambda: None)
    assert native_body.body_builder("auto") is bulk_body
    with pytest.raises(native_body.NativeUnavailable, match="TRACESEARCH_NATIVE=on"):
        native_body.body_builder("on")


def test_the_setting_takes_auto_on_off_only() -> None:
    assert Settings.from_env({}).native == "auto"
    assert Settings.from_env({"TRACESEARCH_NATIVE": " ON "}).native == "on"
    with pytest.raises(SettingsError, match="TRACESEARCH_NATIVE"):
        Settings.from_env({"TRACESEARCH_NATIVE": "yes"})


@needs_native
def test_auto_and_on_use_the_core() -> None:
    assert native_body.body_builder("auto") is not bulk_body
    assert native_body.body_builder("on") is not bulk_body


# ------------------------------------------------------------------------------------- fixed span sets


def _plain_span(span_id: str, start_ns: int, **attributes: Any) -> Span:
    return make_span(
        span_id=span_id, start_ns=start_ns, end_ns=max(start_ns, 1), attributes=attributes, events=[], links=[]
    )


@needs_native
def test_the_document_tests_spans() -> None:
    day = 1_700_000_000 * 1_000_000_000 // NS_PER_DAY * NS_PER_DAY
    assert_same(
        [
            make_span(),
            make_span(kind=SpanKind.CLIENT, start_ns=day - 1),
            make_span(parent_span_id="", status_message="", trace_state="", flags=0, dropped_attributes_count=0),
            make_span(dropped_events_count=0, dropped_links_count=0, dropped_attributes_count=0, scope=Scope()),
            _plain_span("1" * 16, day, s="x", i=-3, b=False, d=1.5, arr=["a", "b"], ints=[1, 2], mixed=["a", 1, True]),
            _plain_span("2" * 16, day + NS_PER_DAY - 1, floats=[0.5, 1.5], inf=math.inf, raw=b"\x00"),
            _plain_span("3" * 16, 0),
            _plain_span("4" * 16, -5),
            _plain_span("5" * 16, MAX_NS),
            _plain_span("6" * 16, 2**64 - 1),
            _plain_span('quote"back\\slash', day),
            _plain_span("ünïcode", day),
            _plain_span("7" * 16, day, nested={"k": [1, {"deep": math.nan}]}, empty={}, none=None, nothing=[]),
        ]
    )
    assert native("tracesearch", []) == b""


# Values at the edges of how Python and orjson print numbers and strings.
EDGE_FLOATS = [
    math.nan, math.inf, -math.inf, -0.0, 0.0, 1e16, -1e16, 1e15, 9999999999999998.0, 1e-4, 1e-5, 1e-6, 1e-7,
    5e-324, 2.2250738585072014e-308, 1.7e308, 1.6999999999999998e308, 1.7976931348623157e308, 0.1, 1 / 3,
    562949953421312.25, 123456789012345680.0, 1e21, 1e22, 12345.678, 2.5e-5, 100.0,
]  # fmt: skip
EDGE_INTS = [0, 1, -1, 1023, 1024, -1024, 2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1]
EDGE_TEXTS = ["", "\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f", '"\\/', "é€😀\u2028\u2029\ufeff", "a=b.c", "\n"]


@needs_native
def test_edge_values_everywhere_a_value_goes() -> None:
    values: list[Any] = [*EDGE_FLOATS, *EDGE_INTS, *EDGE_TEXTS, True, False, None, b"", b"\xff\x00", b"ab", b"abc"]
    attributes = {f"k{i}": v for i, v in enumerate(values)}
    attributes |= {t or "empty": t for t in EDGE_TEXTS}
    attributes["array"] = list(values)
    attributes["kvlist"] = {"in": dict(attributes), "list": [attributes.copy(), [values]]}
    resource = Resource({"service.name": "e\x01dge", **attributes}, "e\x01dge")
    scope = Scope("sc\nope", 'v"1', attributes)
    spans = [
        make_span(
            span_id=f"{i:016x}",
            name=text,
            status_message=text,
            trace_state=text,
            parent_span_id=text,
            attributes=attributes,
            resource=resource,
            scope=scope,
            events=[Event(1, text, attributes, 7), Event(2, "", {}, 0)],
            links=[Link("a" * 32, "b" * 16, text, attributes, 1, 2**32 - 1)],
        )
        for i, text in enumerate(EDGE_TEXTS)
    ]
    assert_same(spans)


@needs_native
@pytest.mark.parametrize("kind", list(SpanKind))
def test_the_remote_service_terms(kind: SpanKind) -> None:
    remote = ZipkinOrigin(
        tags={"error": ""},
        derived=("peer.service",),
        remote_endpoint={"serviceName": "db", "port": 5432},
        annotations=("ws",),
    )
    assert_same(
        [
            make_span(kind=kind, attributes={"peer.service": "billing", "server.address": "x"}),
            make_span(kind=kind, attributes={"peer.service": "", "net.peer.name": "n", "db.name": "d"}),
            make_span(kind=kind, attributes={"peer.service": 3, "peer.address": "p"}),
            make_span(kind=kind, attributes={"db.name": "orders"}),
            make_span(kind=kind, zipkin=remote),
            make_span(kind=kind, zipkin=ZipkinOrigin(remote_endpoint={"serviceName": 1})),
            make_span(kind=kind, zipkin=ZipkinOrigin(), attributes={"peer.service": "ignored"}),
        ]
    )


@needs_native
@pytest.mark.parametrize("rank", range(len(REMOTE_NAME_KEYS)))
def test_the_core_ranks_remote_name_keys_as_remote_service_py(rank: int) -> None:
    """native/src/lib.rs keeps its own copy of REMOTE_NAME_KEYS: each key must win over every key after it."""
    later = {key: f"v{i}" for i, key in enumerate(REMOTE_NAME_KEYS) if i >= rank}
    assert_same(
        [make_span(kind=SpanKind.CLIENT, attributes=later), make_span(kind=SpanKind.PRODUCER, attributes=later)]
    )


@needs_native
def test_key_sets_carried_kept_apart_and_shared_with_the_python_path() -> None:
    """Key sets as `span_terms.key_set` cuts them (a newline or a long set: one tag per key; a 300-character
    key fits a set), characters counted as Python counts them, and a body's carried sets shared with the spans the core
    hands to the Python path (a str subclass among the values)."""
    day = 1_700_000_000 * 1_000_000_000 // NS_PER_DAY * NS_PER_DAY
    wide = "ü" * 200  # 400 bytes, 200 characters: fits a set
    spans = [
        make_span(span_id="1" * 16, start_ns=day, attributes={"a": 1, wide: "x", 'quote"key': True}),
        make_span(span_id="2" * 16, start_ns=day, attributes={"a": Label("declined"), wide: "x", 'quote"key': 1}),
        make_span(span_id="3" * 16, start_ns=day, attributes={"a": 2, wide: "y", 'quote"key': False}),
        make_span(span_id="4" * 16, start_ns=day + NS_PER_DAY, attributes={"a": 1, wide: "x", 'quote"key': 0}),
        make_span(span_id="5" * 16, start_ns=day, attributes={"new\nline": 1, "k" * 300: 2}),
        make_span(span_id="6" * 16, start_ns=day, attributes={f"k{i:03}-{'ü' * 180}": i for i in range(23)}),
        make_span(span_id="7" * 16, start_ns=day, attributes={"m": {"nested": {"deeper": 1}, "x": []}}),
    ]
    assert_same(spans, strict=False)
    assert_same([s for s in spans if s.span_id != "2" * 16])


@needs_native
def test_the_benchmarks_synthetic_corpus() -> None:
    factory = synth.TraceFactory(synth.SERVICES, seed=7)
    start = 1_795_176_000 * 1_000_000_000
    spans = [s for trace in synth.traces(factory, 3000, start, start + 3 * NS_PER_DAY) for s in trace]
    assert_same(spans, ("tracesearch",))


@needs_native
def test_the_golden_write_cases_send_the_same_bulk_bodies(frozen_clock: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app as the golden files record it (OTLP protobuf and JSON, Zipkin, Jaeger), once with the core
    and once without: the same requests to Elasticsearch, and some of them bulk bodies."""
    cases = list(goldens.write_cases())
    with_core = [goldens.run_case(case) for case in cases]
    monkeypatch.setattr(native_body, "native_module", lambda: None)
    without = [goldens.run_case(case) for case in cases]
    assert with_core == without
    assert sum(1 for outcome in with_core for sent in outcome["sent"] if sent["api"] == "bulk") >= len(cases) // 2


frozen_clock = goldens.frozen_clock


# ----------------------------------------------------------------------------------------- hypothesis

ALL_TEXT = st.text(max_size=20)  # every code point but surrogates, control characters included
WIDE_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(),
    st.sampled_from(EDGE_FLOATS),
    ALL_TEXT,
    st.binary(max_size=10),
)
WIDE_VALUES = st.recursive(
    WIDE_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(ALL_TEXT, inner, max_size=3)),
    max_leaves=8,
)
WIDE_ATTRIBUTES = st.dictionaries(ALL_TEXT, WIDE_VALUES, max_size=5)
ZIPKIN = st.builds(
    ZipkinOrigin,
    st.dictionaries(ALL_TEXT, ALL_TEXT, max_size=2),
    st.lists(ALL_TEXT, max_size=2).map(tuple),
    st.dictionaries(st.sampled_from(["serviceName", "ipv4", "port"]), st.one_of(ALL_TEXT, st.integers(0, 65535))),
    st.lists(ALL_TEXT, max_size=2).map(tuple),
)


@st.composite
def wide_spans(draw: st.DrawFn) -> Span:
    """A span of the model's whole range: the strategies' valid span with wider values put in."""
    span: Span = draw(strategies.spans())
    return dataclasses.replace(
        span,
        name=draw(ALL_TEXT),
        parent_span_id=draw(st.one_of(st.just(""), ALL_TEXT)),
        start_ns=draw(st.integers(min_value=-(2**63), max_value=2**63 - 1)),
        attributes=draw(WIDE_ATTRIBUTES),
        resource=draw(st.one_of(st.just(span.resource), st.builds(Resource, WIDE_ATTRIBUTES, ALL_TEXT))),
        scope=Scope(draw(ALL_TEXT), draw(ALL_TEXT), draw(WIDE_ATTRIBUTES)),
        events=draw(
            st.lists(st.builds(Event, strategies.TIMES, ALL_TEXT, WIDE_ATTRIBUTES, strategies.UINT32), max_size=2)
        ),
        status_message=draw(ALL_TEXT),
        trace_state=draw(ALL_TEXT),
        zipkin=draw(st.one_of(st.none(), ZIPKIN)),
    )


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@needs_native
@PROPERTY
@given(strategies.batches())
def test_valid_batches(spans: list[Span]) -> None:
    assert_same(spans)


@needs_native
@PROPERTY
@given(st.lists(wide_spans(), min_size=1, max_size=4))
def test_spans_of_every_value_type(spans: list[Span]) -> None:
    assert_same(spans)


@needs_native
@PROPERTY
@given(strategies.batches(), st.integers(min_value=1, max_value=3), st.integers(min_value=4, max_value=40))
def test_spans_cut_by_the_limits(spans: list[Span], count: int, size: int) -> None:
    limits = Limits(max_attributes_per_span=count, max_attribute_value_bytes=size, max_nesting_depth=2,
                    max_events_per_span=1, max_links_per_span=1)  # fmt: skip
    for span in spans:
        span.attributes["long"] = "ü" * 50
        span.attributes["list"] = ["x" * 30, [["deep"]]]
        apply_limits(span, limits)
    assert_same(spans)


# ------------------------------------------------------------ what the core hands back to the Python path


class Label(str):
    pass


class Code(enum.IntEnum):
    OK = 200


@needs_native
def test_values_the_core_declines_give_the_python_bytes() -> None:
    deep: Any = "bottom"
    for _ in range(80):
        deep = [deep]
    declined = [
        make_span(attributes={"label": Label("x")}),
        make_span(attributes={"code": Code.OK, "nested": [Code.OK]}),
        make_span(name=Label("n")),
        make_span(attributes={"deep": deep}),
        make_span(attributes={"t": (1, 2)}),  # not an OTLP value; the Python path writes a tuple as a list
        make_span(events=(Event(1, "e"),)),
    ]
    for span in declined:
        assert_same([make_span(), span, make_span(span_id="f" * 16)], strict=False)


@needs_native
@pytest.mark.parametrize(
    "span",
    [
        make_span(attributes={"big": 2**64}),
        make_span(attributes={"small": [-(2**63) - 1]}),
        make_span(end_ns=2**70),
        make_span(attributes={1: "key not a string"}),
        make_span(attributes={"obj": object()}),
        make_span(attributes={"bad": "\ud800"}),
        make_span(name="\udfff"),
    ],
)
def test_what_the_python_path_refuses_the_core_refuses_alike(span: Span) -> None:
    with pytest.raises(Exception) as python_error:
        bulk_body("tracesearch", [span])
    with pytest.raises(type(python_error.value)):
        native("tracesearch", [make_span(), span])
