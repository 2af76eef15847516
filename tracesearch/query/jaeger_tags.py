"""Jaeger's ``tags`` search parameter, with our extensions reachable from Grafana's search box.

Plain ``key=value`` keeps Jaeger's exact-match meaning (span, resource and event attributes).
Extensions, all typed in the same box:

* ``key=>=500``, ``key=>500``, ``key=<=0.5``, ``key=<10``: numeric comparison on numeric attributes;
* ``key=!=value``: the attribute is absent or has another value;
* ``_text=words``: full-text search (simple query string: words, "phrases", prefix*, -not, a | b).

The synthetic tags the Jaeger view shows (``codecs/jaeger_json.py``) map to the span fields they show:
``error`` (status), ``span.kind``, ``otel.status_code``, ``otel.status_description`` (status message),
``otel.scope.name`` / ``otel.library.name``, ``otel.scope.version`` / ``otel.library.version``,
``w3c.tracestate``; the log field ``event`` is an event's name (or an ``event`` attribute).
"""

from __future__ import annotations

import re

from tracesearch.query.conditions import (
    Any,
    AttrRange,
    Condition,
    FieldEquals,
    Not,
    Text,
    scoped,
    tag_equals,
)

TEXT_KEY = "_text"
_COMPARISON = re.compile(r"^(>=|<=|>|<)\s*(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$")


def parse_tag(key: str, value: str) -> list[Condition]:
    key = key.strip()
    if key == TEXT_KEY:
        return [Text(value)]
    if key == "error":
        failed = FieldEquals("status", "error")
        return [failed if value.strip().lower() not in ("false", "0") else Not(failed)]
    if key == "span.kind":
        return [FieldEquals("kind", value.strip().lower())]
    if key == "otel.status_code":
        return [FieldEquals("status", value.strip().lower())]
    if key in ("otel.scope.name", "otel.library.name"):
        return [FieldEquals("instrumentation:name", value)]
    if key in ("otel.scope.version", "otel.library.version"):
        return [FieldEquals("instrumentation:version", value)]
    if key == "otel.status_description":
        return [FieldEquals("statusMessage", value)]
    if key == "w3c.tracestate":
        return [FieldEquals("span:traceState", value)]
    if key == "event":
        return [Any((FieldEquals("event:name", value), tag_equals(key, value)))]
    comparison = _COMPARISON.match(value.strip())
    if comparison:
        return [AttrRange(scoped(key), comparison.group(1), float(comparison.group(2)))]
    if value.startswith("!="):
        return [Not(tag_equals(key, value[2:]))]
    return [tag_equals(key, value)]


def parse_tags(tags: dict[str, str]) -> list[Condition]:
    conditions: list[Condition] = []
    for key, value in tags.items():
        conditions.extend(parse_tag(key, value))
    return conditions
