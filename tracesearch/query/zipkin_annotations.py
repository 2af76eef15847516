"""Zipkin's ``annotationQuery`` search parameter as span conditions."""

from __future__ import annotations

import re

from tracesearch.query.conditions import Any, AttrExists, Condition, FieldEquals, scoped
from tracesearch.query.errors import InvalidQuery
from tracesearch.query.jaeger_tags import parse_tag

_AND = re.compile(r"\s+and\s+")
# Where the tags of Zipkin's view of a span come from: its attributes and, for a span sent by OTLP, its
# resource's (the Zipkin encoder writes both as tags).
ZIPKIN_TAG_SCOPES = ("span", "resource")


def annotation_conditions(query: str) -> list[Condition]:
    """Terms joined by ``and``, every one held by the same span.

    ``key=value`` is a tag (attribute) condition with the Jaeger search-box meaning, so ``error=true``,
    ``http.status_code=>=500`` and ``_text=words`` work too. A bare word, or ``key=`` with nothing after
    it, means in Zipkin "an annotation with this value or a tag with this key" (``has_annotation_or_tag``).
    """
    conditions: list[Condition] = []
    for term in _AND.split(query.strip()):
        term = term.strip()
        if not term:
            continue
        key, equals, value = term.partition("=")
        key = key.strip()
        if equals and not key:
            raise InvalidQuery(f"annotationQuery: {term!r} has no key before '='", field="annotationQuery")
        if equals and value:
            conditions.extend(parse_tag(key, value))
        else:
            conditions.append(has_annotation_or_tag(key))
    return conditions


def has_annotation_or_tag(word: str) -> Condition:
    """An event named ``word`` (an annotation's value; an event with attributes is found by its name
    too, though Zipkin shows it as ``name {attributes}``), or an attribute with that key. ``error`` also
    finds failed spans: Zipkin's view of them carries the ``error`` tag."""
    alternatives: list[Condition] = [FieldEquals("event:name", word), AttrExists(scoped(word, ZIPKIN_TAG_SCOPES))]
    if word == "error":
        alternatives.append(FieldEquals("status", "error"))
    return Any(tuple(alternatives))
