import pytest

from tests.unit.codecs.factories import SPAN_ID, make_span
from tracesearch.admission import (
    Limits,
    admit,
    apply_limits,
    check_span,
    is_lower_hex,
    limit_attributes,
    make_resource,
    normalize_span,
)
from tracesearch.model import UNKNOWN_SERVICE, Attributes, DecodedBatch, Event, Link, Rejection


def test_limits_defaults() -> None:
    assert Limits() == Limits(
        max_attributes_per_span=1000,
        max_attribute_value_bytes=65536,
        max_nesting_depth=8,
        max_events_per_span=1000,
        max_links_per_span=1000,
    )
    with pytest.raises(AttributeError):
        Limits().max_nesting_depth = 3  # type: ignore[misc]


def test_a_valid_span_passes() -> None:
    assert check_span(make_span(), "here") is None
    assert check_span(make_span(parent_span_id=""), "here") is None
    assert check_span(make_span(end_ns=make_span().start_ns), "here") is None  # zero duration is fine


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"trace_id": "ab" * 8}, "trace_id must be 16 bytes, got 8"),
        ({"trace_id": ""}, "trace_id must be 16 bytes, got 0"),
        ({"trace_id": "0" * 32}, "trace_id is all zeros"),
        ({"trace_id": "0AF7651916CD43DD8448EB211C80319C"}, "trace_id must be 32 lower-case hex characters"),
        ({"trace_id": "xyz"}, "trace_id must be 32 lower-case hex characters, got 'xyz'"),
        ({"span_id": "ab" * 4}, "span_id must be 8 bytes, got 4"),
        ({"span_id": "0" * 16}, "span_id is all zeros"),
        ({"span_id": "g" * 16}, "span_id must be 16 lower-case hex characters"),
        ({"parent_span_id": "abc"}, "parent_span_id must be 16 lower-case hex characters, got 'abc'"),
        ({"parent_span_id": "ab" * 10}, "parent_span_id must be 8 bytes, got 10"),
        ({"start_ns": 9, "end_ns": 5}, "end_time_unix_nano 5 is before start_time_unix_nano 9"),
        ({"start_ns": 0, "end_ns": 5}, "start_time_unix_nano is 0"),
    ],
)
def test_invalid_spans_are_rejected_with_a_reason(fields: dict[str, object], reason: str) -> None:
    rejection = check_span(make_span(**fields), "resourceSpans[0].scopeSpans[0].spans[3]")
    assert rejection is not None
    assert rejection.where == "resourceSpans[0].scopeSpans[0].spans[3]"
    assert rejection.reason.startswith(reason)


def test_normalize_turns_self_and_zero_parents_into_roots() -> None:
    span = make_span(parent_span_id=SPAN_ID)
    normalize_span(span)
    assert span.parent_span_id == ""
    span = make_span(parent_span_id="0" * 16)
    normalize_span(span)
    assert span.parent_span_id == ""
    span = make_span(name="")
    normalize_span(span)
    assert span.name == "" and span.parent_span_id == "00f067aa0ba902b7"


@pytest.mark.parametrize("attributes", [{}, {"service.name": ""}, {"service.name": 7}, {"host.name": "x"}])
def test_resources_without_a_usable_service_name_get_unknown_service(attributes: Attributes) -> None:
    resource = make_resource(dict(attributes))
    assert resource.service_name == UNKNOWN_SERVICE
    assert resource.attributes["service.name"] == UNKNOWN_SERVICE


def test_resource_service_name_comes_from_the_attribute() -> None:
    resource = make_resource({"service.name": "cart", "host.name": "x"})
    assert (resource.service_name, resource.attributes) == (
        "cart",
        {"service.name": "cart", "host.name": "x"},
    )


def test_is_lower_hex() -> None:
    assert is_lower_hex("0123456789abcdef")
    assert not is_lower_hex("") and not is_lower_hex("ABC") and not is_lower_hex("12 3") and not is_lower_hex("0x1")


# ---------------------------------------------------------------------------------------------- limits


def test_a_span_within_limits_is_untouched() -> None:
    span = make_span()
    attributes = span.attributes
    assert apply_limits(span, Limits()) == []
    assert span.attributes is attributes and span.dropped_attributes_count == 3


def test_ten_thousand_attributes_are_cut_and_counted() -> None:
    span = make_span(attributes={f"k{i}": i for i in range(10_000)}, dropped_attributes_count=3)
    [warning] = apply_limits(span, Limits())
    assert list(span.attributes) == [f"k{i}" for i in range(1000)]
    assert span.dropped_attributes_count == 9003
    assert warning == f"span {SPAN_ID}: dropped 9000 attributes over max_attributes_per_span=1000"


def test_long_strings_are_cut_on_a_character_boundary() -> None:
    span = make_span(attributes={"s": "é" * 10, "ok": "short"})
    [warning] = apply_limits(span, Limits(max_attribute_value_bytes=7))
    assert span.attributes["s"] == "ééé"  # 6 bytes: the 4th "é" would need bytes 7 and 8
    assert span.attributes["ok"] == "short"
    assert "'s' of 20 bytes truncated" in warning
    assert span.dropped_attributes_count == 3  # truncation drops nothing


def test_long_bytes_and_nested_strings_are_cut() -> None:
    span = make_span(attributes={"raw": b"x" * 100, "arr": ["y" * 100, 1], "map": {"k": "z" * 100}})
    warnings = apply_limits(span, Limits(max_attribute_value_bytes=10))
    assert span.attributes == {"raw": b"x" * 10, "arr": ["y" * 10, 1], "map": {"k": "z" * 10}}
    assert len(warnings) == 3


def test_nesting_deeper_than_the_limit_becomes_json_text() -> None:
    value: object = "bottom"
    for _ in range(20):
        value = [value, {"b": b"\x01"}]
    span = make_span(attributes={"deep": value, "flat": [1, [2]]})
    [warning] = apply_limits(span, Limits(max_nesting_depth=2))
    level2 = span.attributes["deep"][0]  # type: ignore[index]
    assert isinstance(level2, list)
    assert isinstance(level2[0], str) and level2[0].startswith("[[[") and '"AQ=="' in level2[0]
    assert level2[1] == '{"b":"AQ=="}'
    assert span.attributes["flat"] == [1, [2]]
    assert "'deep' is nested deeper than max_nesting_depth=2" in warning


def test_two_hundred_levels_never_raise() -> None:
    value: object = {"leaf": 1}
    for _ in range(200):
        value = {"k": value}
    span = make_span(attributes={"deep": value})
    assert apply_limits(span, Limits())
    assert isinstance(span.attributes["deep"], dict)


def test_events_and_links_are_capped_and_counted() -> None:
    events = [Event(i, f"e{i}", {f"a{j}": j for j in range(5)}) for i in range(1, 8)]
    links = [Link("1" * 32, f"{i:016x}") for i in range(1, 6)]
    span = make_span(events=events, links=links, dropped_events_count=1, dropped_links_count=0)
    limits = Limits(max_events_per_span=3, max_links_per_span=2, max_attributes_per_span=4)
    warnings = apply_limits(span, limits)
    assert [e.name for e in span.events] == ["e1", "e2", "e3"] and span.dropped_events_count == 5
    assert len(span.links) == 2 and span.dropped_links_count == 3
    assert all(len(e.attributes) == 4 and e.dropped_attributes_count == 1 for e in span.events)
    assert any("dropped 4 events" in w for w in warnings) and any("dropped 3 links" in w for w in warnings)
    assert any("event 0: dropped 1 attributes" in w for w in warnings)


def test_link_attributes_are_capped() -> None:
    span = make_span(links=[Link("1" * 32, "2" * 16, attributes={"a": 1, "b": 2, "c": 3})])
    apply_limits(span, Limits(max_attributes_per_span=1))
    assert span.links[0].attributes == {"a": 1} and span.links[0].dropped_attributes_count == 2


def test_limit_attributes_for_resources() -> None:
    kept, dropped, warnings = limit_attributes({"a": 1, "b": "x" * 50}, Limits(2, 10), "resource")
    assert (kept, dropped) == ({"a": 1, "b": "x" * 10}, 0)
    assert warnings == ["resource: attribute 'b' of 50 bytes truncated to max_attribute_value_bytes=10"]


def test_admit_files_spans_as_accepted_or_rejected() -> None:
    batch = DecodedBatch()
    admit(batch, make_span(parent_span_id=SPAN_ID), "a", Limits())
    admit(batch, make_span(trace_id="0" * 32), "b", Limits())
    admit(batch, make_span(attributes={"x": 1, "y": 2}), "c", Limits(max_attributes_per_span=1))
    assert [span.parent_span_id for span in batch.spans] == ["", "00f067aa0ba902b7"]
    assert batch.rejected == [Rejection("b", "trace_id is all zeros")]
    assert len(batch.warnings) == 1
