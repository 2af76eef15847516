import math
from typing import Any

from tests.unit.codecs.factories import make_span
from tracesearch.codecs.common import attribute_json, attribute_text, group_spans
from tracesearch.model import Resource, Scope


def test_attribute_json_spells_bytes_as_base64_and_non_finite_as_null() -> None:
    assert attribute_json({"b": b"\x01", "l": [1, 2.5, True, None, "x"]}) == '{"b":"AQ==","l":[1,2.5,true,null,"x"]}'
    assert attribute_json([math.nan, math.inf]) == "[null,null]"


def test_attribute_json_survives_what_orjson_refuses() -> None:
    assert attribute_json([2**70]) == "[1180591620717411303424]"
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    assert attribute_json(deep) == "[" * 300 + '"x"' + "]" * 300


def test_attribute_text() -> None:
    values: tuple[Any, ...] = ("s", True, False, 7, 2.5, 3.0, b"\x01", None, ["a"])
    assert [attribute_text(v) for v in values] == ["s", "true", "false", "7", "2.5", "3", "AQ==", "", '["a"]']


def test_group_spans_by_object_identity_in_first_seen_order() -> None:
    r1, r2 = Resource({"service.name": "a"}, "a"), Resource({"service.name": "a"}, "a")  # equal, not same
    s1, s2 = Scope("x"), Scope("y")
    spans = [
        make_span(resource=r1, scope=s1),
        make_span(resource=r2, scope=s1),
        make_span(resource=r1, scope=s2),
    ]
    groups = group_spans(spans)
    assert [(resource is r1, [(scope.name, len(group)) for scope, group in scopes]) for resource, scopes in groups] == [
        (True, [("x", 1), ("y", 1)]),
        (False, [("x", 1)]),
    ]
