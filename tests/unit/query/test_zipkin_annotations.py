import pytest

from tests.unit.codecs.factories import make_span
from tracesearch.model import Event, Resource, StatusCode
from tracesearch.query.errors import InvalidQuery
from tracesearch.query.matching import facts, matches
from tracesearch.query.zipkin_annotations import annotation_conditions

SPANS = {
    "tagged": make_span(attributes={"http.route": "/cart"}, events=[], status_code=StatusCode.UNSET),
    "annotated": make_span(attributes={}, events=[Event(1, "http.route")], status_code=StatusCode.UNSET),
    "resource": make_span(
        attributes={},
        events=[],
        status_code=StatusCode.UNSET,
        resource=Resource({"service.name": "cart", "http.route": "/"}, "cart"),
    ),
    "failed": make_span(attributes={}, events=[], status_code=StatusCode.ERROR),
    "neither": make_span(attributes={"http.method": "GET"}, events=[], status_code=StatusCode.UNSET),
}


def found(query: str) -> set[str]:
    conditions = annotation_conditions(query)
    return {name for name, span in SPANS.items() if all(matches(c, facts(span)) for c in conditions)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Zipkin: a bare word, or key= with no value, is an annotation with this value or a tag with this key.
        ("http.route", {"tagged", "annotated", "resource"}),
        ("http.route=", {"tagged", "annotated", "resource"}),
        ("http.route=/cart", {"tagged"}),
        ("http.route and http.method", set()),
        ("http.method= and http.method=GET", {"neither"}),
        ("error", {"failed"}),
        ("helicopter", set()),
        ("", set(SPANS)),
    ],
)
def test_terms(query: str, expected: set[str]) -> None:
    assert found(query) == expected


def test_a_value_without_a_key_is_refused() -> None:
    with pytest.raises(InvalidQuery, match="no key"):
        annotation_conditions("=orphan")
