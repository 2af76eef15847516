"""Zipkin's ``annotationQuery`` search parameter as span conditions."""

from __future__ import annotations

import re

from tracesearch.query.conditions import Condition, FieldEquals, Text
from tracesearch.query.errors import InvalidQuery
from tracesearch.query.jaeger_tags import parse_tag

_AND = re.compile(r"\s+and\s+")


def annotation_conditions(query: str) -> list[Condition]:
    """Terms joined by ``and``, every one held by the same span.

    ``key=value`` is a tag (attribute) condition with the Jaeger search-box meaning, so ``error=true``,
    ``http.status_code=>=500`` and ``_text=words`` work too. A bare word means, in Zipkin, "an annotation
    with this value or a tag with this key"; our conditions cannot say "or", so a bare word searches the
    words of annotation (event) names, span names and tag values, and the bare word ``error`` finds
    failed spans (Zipkin's ``error`` tag is a failed status here).
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
        elif key == "error":
            conditions.append(FieldEquals("status", "error"))
        else:
            conditions.append(Text('"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'))
    return conditions
