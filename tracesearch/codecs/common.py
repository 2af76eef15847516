"""Helpers shared by several codecs: attribute values as JSON text, and span grouping."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Sequence

import orjson

from tracesearch.model import AttrValue, Resource, Scope, Span

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# One resource with its scopes, each scope with its spans, in first-seen order.
ScopeGroup = tuple[Scope, list[Span]]
ResourceGroup = tuple[Resource, list[ScopeGroup]]


def _json_default(value: object) -> object:
    # OTLP bytes values have no JSON form; base64 is what every OTLP JSON producer uses.
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot represent {type(value).__name__} as JSON")


def _python_json_default(value: object) -> object:
    if isinstance(value, float):
        return None
    return _json_default(value)


def attribute_json(value: AttrValue) -> str:
    """JSON text of an attribute value: how arrays and kvlists are shown where only strings fit.

    Zipkin tags, Jaeger ``string`` tags and over-deep attribute values all use this one spelling:
    compact JSON, bytes as base64 strings, NaN and infinities as ``null``.
    """
    try:
        return orjson.dumps(value, default=_json_default).decode("utf-8")
    except (orjson.JSONEncodeError, TypeError):
        # orjson stops at 254 levels and 64-bit ints; the stdlib has neither limit.
        return json.dumps(_finite(value), default=_python_json_default, separators=(",", ":"))


def _finite(value: AttrValue) -> AttrValue:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def attribute_text(value: AttrValue) -> str:
    """A value as one string, the way OTLP's ``AsString`` prints it (Zipkin tags, Jaeger fallbacks)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_text(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if value is None:
        return ""
    return attribute_json(value)


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        # Go prints 3.0 as "3"; keeping ".0" would make round trips through Zipkin tags noisy.
        return str(int(value))
    return repr(value)


def json_error_text(exc: orjson.JSONDecodeError) -> str:
    """Where and why a body is not JSON (orjson says "not valid UTF-8" for bad encodings too)."""
    return f"invalid JSON at line {exc.lineno} column {exc.colno} (char {exc.pos}): {exc.msg}"


def group_spans(spans: Iterable[Span]) -> list[ResourceGroup]:
    """Group spans by their shared Resource and Scope objects (identity, not equality), keeping order."""
    groups: dict[int, tuple[Resource, dict[int, ScopeGroup]]] = {}
    for span in spans:
        entry = groups.get(id(span.resource))
        if entry is None:
            entry = groups[id(span.resource)] = (span.resource, {})
        scopes = entry[1]
        scope_group = scopes.get(id(span.scope))
        if scope_group is None:
            scope_group = scopes[id(span.scope)] = (span.scope, [])
        scope_group[1].append(span)
    return [(resource, list(scopes.values())) for resource, scopes in groups.values()]


def resource_attributes_with_service(resource: Resource) -> Sequence[tuple[str, AttrValue]]:
    """Resource attributes with ``service.name`` guaranteed and agreeing with ``Resource.service_name``."""
    items = list(resource.attributes.items())
    if resource.attributes.get("service.name") == resource.service_name:
        return items
    rest = [(key, value) for key, value in items if key != "service.name"]
    return [("service.name", resource.service_name), *rest]
