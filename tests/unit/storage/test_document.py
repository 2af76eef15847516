import dataclasses
import hashlib
import math
from typing import Any, cast

import orjson
import pytest

from tracesearch.model import Event, Link, Resource, Scope, Span, SpanKind, StatusCode, ZipkinOrigin
from tracesearch.storage.es.document import (
    bulk_body,
    document_id,
    encode_number,
    from_document,
    to_bulk_lines,
    to_document,
)
from tracesearch.storage.es.indices import MAX_NS, NS_PER_DAY, span_index_for
from tracesearch.storage.es.key_sets import parse_carrier


def make_span(**overrides: Any) -> Span:
    resource = Resource({"service.name": "cart", "host.name": "web-1"}, "cart")
    span = Span(
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        parent_span_id="00f067aa0ba902b7",
        name="GET /cart",
        start_ns=1_700_000_000_123_456_789,
        end_ns=1_700_000_000_373_456_789,
        resource=resource,
        scope=Scope("io.example", "1.2", {"lib": "x"}),
        kind=SpanKind.SERVER,
        status_code=StatusCode.ERROR,
        status_message="upstream timeout",
        attributes={
            "s": "GET",
            "i": 503,
            "d": 0.25,
            "b": True,
            "arr": ["a", "b"],
            "ints": [1, 2],
            "map": {"k": "v", "n": {"deep": 1}},
            "raw": b"\xde\xad",
            "nan": math.nan,
            "inf": -math.inf,
            "error": "x",
            "error.message": "dotted beside plain",
        },
        events=[Event(1_700_000_000_200_000_000, "cache.miss", {"key": "cart:1"}, 2)],
        links=[Link("1" * 32, "2" * 16, "a=b", {"kind": "batch"}, 1, 1)],
        trace_state="congo=t61",
        flags=257,
        dropped_attributes_count=3,
        dropped_events_count=4,
        dropped_links_count=5,
    )
    return dataclasses.replace(span, **overrides)


def strip_derived(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("tags", "tags_num", "text")}


def test_round_trip_keeps_every_field_and_type() -> None:
    span = make_span()
    back = from_document(strip_derived(to_document(span)))
    assert math.isnan(cast(float, back.attributes.pop("nan")))
    original = make_span()
    original.attributes.pop("nan")
    assert back == original


def test_a_span_sent_through_zipkin_keeps_how_it_was_sent() -> None:
    origin = ZipkinOrigin({"error": "500"}, ("network.peer.port",), {"serviceName": "db", "port": 5432}, ("{}",))
    span = make_span(attributes={"network.peer.port": 5432}, zipkin=origin)
    assert from_document(strip_derived(to_document(span))).zipkin == origin
    assert from_document(strip_derived(to_document(make_span(zipkin=ZipkinOrigin())))).zipkin == ZipkinOrigin()


def test_search_fields_hold_scoped_keys_values_numbers_and_words() -> None:
    doc = to_document(make_span())
    assert "span.s=GET" in doc["tags"] and "span.s" not in doc["tags"]
    carried = {key_set_id for key_set_id, keys in _carried_sets(doc["tags"]).items() if "span.s" in keys}
    assert len(carried) == 1 and f"keys:{carried.pop()}" in doc["tags"]
    assert "resource.host.name=web-1" in doc["tags"]
    assert "span.arr=a" in doc["tags"] and "span.arr=b" in doc["tags"]
    assert "span.map.n.deep=1" in doc["tags"]
    assert "event.key=cart:1" in doc["tags"] and "event:name=cache.miss" in doc["tags"]
    assert "instrumentation:name=io.example" in doc["tags"]
    assert f"span.i={encode_number(503)}" in doc["tags_num"]
    assert "upstream timeout" in doc["text"] and "GET /cart" in doc["text"]
    assert doc["@timestamp"] == 1_700_000_000_123
    assert doc["duration_ns"] == 250_000_000


@pytest.mark.parametrize("values", [[-1e300, -5, -0.5, 0, 0.25, 1, 2, 500, 1e18], [-3, -2.5, -2, 0.0, -0.0]])
def test_number_encoding_preserves_order(values: list[float]) -> None:
    ordered = sorted(values)
    assert sorted(ordered, key=encode_number) == ordered


def test_document_id_is_deterministic_and_tells_shared_zipkin_halves_apart() -> None:
    assert document_id(make_span()) == document_id(make_span())
    assert document_id(make_span(kind=SpanKind.CLIENT)) != document_id(make_span())


def _plain_span(span_id: str, start_ns: int, **attributes: Any) -> Span:
    return make_span(
        span_id=span_id, start_ns=start_ns, end_ns=max(start_ns, 1), attributes=attributes, events=[], links=[]
    )


def test_bulk_body_is_byte_for_byte_the_joined_bulk_lines() -> None:
    """The writer's body (per-day action heads, ids spliced in, shared plain attribute maps) against the
    reference expression, over days, clamped times, plain and encoded attribute maps and unusual ids."""
    day = 1_700_000_000 * 1_000_000_000 // NS_PER_DAY * NS_PER_DAY
    spans = [
        make_span(),
        make_span(kind=SpanKind.CLIENT, start_ns=day - 1),
        _plain_span("1" * 16, day, s="x", i=-3, b=False, d=1.5, arr=["a", "b"], ints=[1, 2], mixed=["a", 1, True]),
        _plain_span("2" * 16, day + NS_PER_DAY - 1, floats=[0.5, 1.5], inf=math.inf, raw=b"\x00"),
        _plain_span("3" * 16, 0),
        _plain_span("4" * 16, -5),
        _plain_span("5" * 16, MAX_NS),
        _plain_span("6" * 16, 2**64 - 1),
        _plain_span('quote"back\\slash', day),  # not an id admission lets through; escaped all the same
        _plain_span("ünïcode", day),
        _plain_span("7" * 16, day, nested={"k": [1, {"deep": math.nan}]}),
    ]
    for prefix in ("tracesearch", 'odd"prefix'):
        carried: set[tuple[int, str]] = set()
        expected = b"".join(to_bulk_lines(span_index_for(prefix, s.start_ns), s, carried) for s in spans)
        assert bulk_body(prefix, spans) == expected
    assert bulk_body("tracesearch", []) == b""


def test_a_plain_attribute_map_is_stored_as_it_is() -> None:
    span = _plain_span("1" * 16, 1, s="x", i=1, b=True, d=0.5, arr=["a"])
    assert to_document(span)["source"]["a"] == {"s": "x", "i": 1, "b": True, "d": 0.5, "arr": ["a"]}
    assert to_document(make_span())["source"]["a"]["raw"] == {"b": "3q0="}


def test_numeric_tags_of_small_and_other_ints_are_their_encoded_numbers() -> None:
    """Small ints' codes come from a table; every int gets the code ``encode_number`` gives."""
    values = [0, 1, 200, 1023, 1024, 8080, -1, 2**53 + 1, -(2**63)]
    span = _plain_span("1" * 16, 1, **{f"n{i}": v for i, v in enumerate(values)})
    expected = [f"span.n{i}={encode_number(float(v))}" for i, v in enumerate(values)]
    assert to_document(span)["tags_num"] == expected
    assert [to_document(_plain_span("1" * 16, 1, n=n))["tags_num"] for n in range(1030)] == [
        [f"span.n={encode_number(float(n))}"] for n in range(1030)
    ]


def _carried_sets(tags: list[str], scope: str = "span.") -> dict[str, list[str]]:
    """The key sets carried among these terms, of one scope's keys."""
    found = (parsed for parsed in map(parse_carrier, tags) if parsed is not None)
    return {set_id: keys for set_id, keys in found if keys[0].startswith(scope)}


def _documents(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in body.splitlines()[1::2]]


def test_a_body_carries_each_key_set_once_per_day_and_every_span_names_it() -> None:
    day = 1_700_000_000 * 1_000_000_000 // NS_PER_DAY * NS_PER_DAY
    spans = [_plain_span(str(i) * 16, day + i, a="x", b=[], c=None) for i in range(1, 4)]
    spans.append(_plain_span("9" * 16, day + NS_PER_DAY, a="y", b=[], c=None))  # the next day's index
    docs = _documents(bulk_body("tracesearch", spans))
    expected_id = hashlib.blake2b(b"span.a\nspan.b\nspan.c", digest_size=8).hexdigest()
    assert [_carried_sets(d["tags"]) for d in docs] == [
        {expected_id: ["span.a", "span.b", "span.c"]},
        {},
        {},
        {expected_id: ["span.a", "span.b", "span.c"]},
    ]
    assert all(f"keys:{expected_id}" in d["tags"] for d in docs)
    assert all(not {"span.a", "span.b", "span.c"} & set(d["tags"]) for d in docs)
    assert _carried_sets(to_document(spans[2])["tags"]) == {expected_id: ["span.a", "span.b", "span.c"]}


@pytest.mark.parametrize(
    "attributes",
    [
        {"a": "x", "new\nline": "y"},
        {f"key{i:04}-{'x' * 200}": i for i in range(20)},
    ],
    ids=["a key with a newline", "a set over the limit"],
)
def test_keys_that_cannot_share_a_set_stay_one_term_each(attributes: dict[str, Any]) -> None:
    doc = to_document(_plain_span("1" * 16, 1, **attributes))
    assert not _carried_sets(doc["tags"])
    assert {f"span.{key}" for key in attributes} <= set(doc["tags"])
