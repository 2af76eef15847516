"""Jaeger's ``tags`` search parameter, with our extensions reachable from Grafana's search box.

Plain ``key=value`` keeps Jaeger's exact-match meaning (span, resource and event attributes).
Extensions, all typed in the same box:

* ``key=>=500``, ``key=>500``, ``key=<=0.5``, ``key=<10``: numeric comparison on numeric attributes;
* ``key=!=value``: the attribute is absent or has another value;
* ``_text=words``: full-text search (simple query string: words, "phrases", prefix*, -not, a | b).

Jaeger's own synthetic tags map to span fields: ``error`` (status), ``span.kind``,
``otel.status_code``, ``otel.scope.name`` / ``otel.library.name``.
"""

from __future__ import annotations

import re

from tracesearch.query.filters import Condition, Intrinsic, Op, TagCompare, TagEquals, TextMatch

TEXT_KEY = "_text"
_COMPARISON = re.compile(r"^(>=|<=|>|<)\s*(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$")
_OPS = {">=": Op.GE, "<=": Op.LE, ">": Op.GT, "<": Op.LT}


def parse_tag(key: str, value: str) -> list[Condition]:
    key = key.strip()
    if key == TEXT_KEY:
        return [TextMatch(value)]
    if key == "error":
        wants_error = value.strip().lower() not in ("false", "0")
        return [Intrinsic("status", "error", negate=not wants_error)]
    if key == "span.kind":
        return [Intrinsic("kind", value.strip().lower())]
    if key == "otel.status_code":
        return [Intrinsic("status", value.strip().lower())]
    if key in ("otel.scope.name", "otel.library.name"):
        return [Intrinsic("scope", value)]
    comparison = _COMPARISON.match(value.strip())
    if comparison:
        return [TagCompare(key, _OPS[comparison.group(1)], float(comparison.group(2)))]
    if value.startswith("!="):
        return [TagEquals(key, value[2:], negate=True)]
    return [TagEquals(key, value)]


def parse_tags(tags: dict[str, str]) -> list[Condition]:
    conditions: list[Condition] = []
    for key, value in tags.items():
        conditions.extend(parse_tag(key, value))
    return conditions
